//! Literals of the schema — a field's `default:`, the fixed values of an
//! index's or a finder's `where:` — are read by one rule: `now`,
//! `generated` and `empty` are keywords only unquoted and only in a
//! `default:`; unquoted on a text field they are refused (quoted, they are
//! the text); a `where:` never compares a secret.

mod diag_support;

use diag_support::problems;

fn schema(fields: &str, extra: &str) -> String {
    format!(
        "version: 1\nstores:\n  main: {{ kind: postgres, url: \"postgres://h/db\" }}\nentities:\n  Book:\n    table: books\n    store: main\n    fields:\n      id: i64\n{fields}{extra}"
    )
}

/// The one problem of `schema`, which must have `code` at the last `word`
/// of the schema's last line.
fn one(schema: &str, word: &str, code: &str) -> (String, String) {
    let (n, last) = schema.lines().enumerate().last().unwrap();
    let at = format!("{}:{}", n + 1, last.rfind(word).unwrap() + 1);
    let p = problems(schema);
    assert_eq!(p.len(), 1, "{p:?}");
    let (line, help) = p.into_iter().next().unwrap();
    assert!(
        line.starts_with(&format!("{at}: error[strata::{code}]")),
        "{line}"
    );
    (line, help)
}

#[test]
fn an_unquoted_keyword_on_a_text_field_is_refused_and_quoted_it_is_the_text() {
    for (ty, word) in [
        ("string(17)", "generated"),
        ("text", "now"),
        ("text", "empty"),
    ] {
        let plain = format!("      isbn: {{ type: {ty}, default: {word} }}\n");
        let (line, help) = one(&schema(&plain, ""), word, "bad_default");
        assert!(
            line.contains(&format!("`{word}` is not a valid value")),
            "{line}"
        );
        assert!(help.contains(&format!("`'{word}'` in quotes")), "{help}");
        let quoted = format!("      isbn: {{ type: {ty}, default: '{word}' }}\n");
        strata_codegen::compile_str("s.yaml", &schema(&quoted, "")).expect("quoted: the text");
    }
}

#[test]
fn a_finders_where_compares_with_values_not_keywords_and_never_a_secret() {
    let fields = "      copies: i64\n      pin: secret\n      at: timestamptz\n";
    let finder = |w: &str| format!("    queries:\n      q: {{ where: {{ {w} }} }}\n");
    strata_codegen::compile_str("s.yaml", &schema(fields, &finder("copies: 3"))).expect("a number");

    let (line, help) = one(
        &schema(fields, &finder("copies: generated")),
        "generated",
        "bad_default",
    );
    assert!(line.contains("`generated` is not a valid value"), "{line}");
    assert!(!help.contains("generated"), "no keyword in a where: {help}");
    assert!(help.contains("whole number"), "{help}");

    let (_, help) = one(&schema(fields, &finder("at: now")), "now", "bad_default");
    assert!(help.contains("finder parameter (`params:`)"), "{help}");

    let (line, _) = one(&schema(fields, &finder("pin: 'x'")), "pin", "secret_query");
    assert!(
        line.contains("a finder cannot look up by a secret"),
        "{line}"
    );
}

#[test]
fn an_index_where_has_no_keywords_either() {
    let fields = "      ref: uuid\n      n: i64\n";
    let index = "    indexes:\n      - { fields: [n], where: { ref: generated } }\n";
    let (_, help) = one(&schema(fields, index), "generated", "bad_default");
    assert!(help.contains("SQL text"), "{help}");
}
