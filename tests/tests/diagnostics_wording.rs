//! Messages that must say the right thing (each was found wrong once and
//! fixed with its kind): a store refused for its name is never suggested;
//! an entity without fields says so; a boolean written `yes` is not told
//! to drop quotes it lacks; one table used twice is one problem.

mod diag_support;

use diag_support::problems;

const STORES: &str = "version: 1\nstores:\n  main: { kind: postgres, url: \"postgres://h/db\" }\n";

#[test]
fn a_store_refused_for_its_name_is_not_suggested() {
    let schema = format!(
        "{STORES}  my-cache: {{ kind: redis, url: \"redis://h\" }}\nentities:\n  A:\n    fields: {{ id: i64 }}\n    cache: {{ store: cache, ttl: 30s }}\n"
    );
    let p = problems(&schema);
    assert!(
        p.iter()
            .any(|(l, h)| l.contains("bad_identifier") && h.contains("my_cache")),
        "{p:?}"
    );
    let unknown = p
        .iter()
        .find(|(l, _)| l.contains("unknown_store"))
        .expect("unknown store");
    assert!(
        !unknown.1.contains("my-cache"),
        "suggests a refused name: {unknown:?}"
    );
}

#[test]
fn an_entity_without_fields_says_so() {
    let p = problems(&format!("{STORES}entities:\n  Empty:\n    fields: {{}}\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].0.contains("entity `Empty` has no fields"), "{p:?}");
    assert!(p[0].1.contains("declare its fields"), "{p:?}");
}

#[test]
fn a_boolean_help_speaks_of_quotes_only_when_there_are_some() {
    let entity = |v: &str| {
        format!("{STORES}entities:\n  A:\n    fields: {{ id: i64 }}\n    timestamps: {v}\n")
    };
    let p = problems(&entity("yes"));
    assert!(
        !p[0].1.contains("quotes") && p[0].1.contains("are not booleans"),
        "{p:?}"
    );
    let p = problems(&entity("\"true\""));
    assert!(p[0].1.contains("without quotes"), "{p:?}");
}

#[test]
fn one_table_used_by_two_entities_is_one_problem() {
    let schema = format!(
        "{STORES}entities:\n  Book:\n    fields: {{ id: {{ type: i64, default: generated }} }}\n  Volume:\n    table: book\n    fields: {{ id: {{ type: i64, default: generated }} }}\n"
    );
    let p = problems(&schema);
    assert_eq!(p.len(), 1, "no derived _pkey or _seq clash besides: {p:?}");
    assert!(
        p[0].0.contains("table `book` is used by two entities"),
        "{p:?}"
    );
}
