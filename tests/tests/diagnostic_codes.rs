//! The diagnostic codes are one registry (`strata_codegen::Code`), and the
//! README's table lists exactly its codes with their meanings, in order.

use strata_codegen::Code;

fn readme_table() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `strata::"))
        .map(|rest| {
            let (code, meaning) = rest.split_once("` | ").expect("| `code` | meaning |");
            let meaning = meaning.strip_suffix(" |").expect("row ends with |");
            (format!("strata::{code}"), meaning.replace("\\|", "|"))
        })
        .collect()
}

#[test]
fn the_readme_lists_every_code_with_its_meaning() {
    let registry: Vec<(String, String)> = Code::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.meaning().to_string()))
        .collect();
    assert_eq!(readme_table(), registry);
}

#[test]
fn codes_are_distinct_and_named_strata_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for c in Code::ALL {
        let name = c.as_str();
        assert!(seen.insert(name), "{name} twice");
        let rest = name.strip_prefix("strata::").expect("strata:: prefix");
        assert!(
            rest.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
            "{name}"
        );
        assert_eq!(c.to_string(), name);
        assert!(c.meaning().ends_with('.'), "{name}: a sentence");
    }
}

#[test]
fn a_name_declared_twice_points_at_both_places() {
    let text = "stores:\n  main: { kind: postgres, url: \"${DATABASE_URL}\" }\nentities:\n  A1:\n    key: id\n    fields:\n      id: uuid\n      name: text\n      name: text\n";
    let d = strata_codegen::compile_str("twice.yaml", text).expect_err("a key written twice");
    let item = &d.items[0];
    assert_eq!(item.code(), "strata::duplicate_key");
    use miette::Diagnostic;
    let labels: Vec<_> = item.labels().expect("labels").collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    let at = |l: &miette::LabeledSpan| &text[l.offset()..l.offset() + l.len()];
    assert_eq!(at(&labels[0]), "name");
    assert_eq!(labels[0].label(), Some("written again here"));
    assert_eq!(labels[1].label(), Some("first written here"));
    assert!(labels[1].offset() < labels[0].offset());
    let plain = d.render_plain();
    assert!(plain.contains("first written here"), "{plain}");
}
