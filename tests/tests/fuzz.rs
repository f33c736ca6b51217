//! No input makes the compiler panic or hang: random bytes, random YAML built
//! from the language's own keys, and mutations of the real schema and of every
//! fixture. Each run must end in a model or in diagnostics that point inside
//! the file. Large inputs (thousands of entities, deep nesting, a very long
//! line, a flood of errors) must compile or fail, too.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use strata_codegen::{Diagnostics, Sources};

/// Compiles, and when that fails checks that every diagnostic is located
/// inside its file and renders. A model goes through every back end.
fn check(sources: &Sources) -> Result<(), TestCaseError> {
    match strata_codegen::compile(sources) {
        Ok(model) => {
            let _ = strata_codegen::generate(&model, &strata_codegen::Settings::default());
        }
        Err(d) => check_located(sources, &d)?,
    }
    Ok(())
}

fn check_located(sources: &Sources, d: &Diagnostics) -> Result<(), TestCaseError> {
    prop_assert!(!d.items.is_empty(), "an error without a diagnostic");
    for item in &d.items {
        let span = item.problem().span;
        prop_assert!(span.file < sources.files.len());
        let file = &sources.files[span.file];
        prop_assert!(
            span.start <= file.text.len(),
            "{} points past the end of the file",
            item.location()
        );
        let prefix = format!("{}:", file.name);
        prop_assert!(item.location().starts_with(&prefix), "{}", item.location());
    }
    let rendered = d.render_plain();
    prop_assert!(rendered.contains("error: "));
    Ok(())
}

fn one(name: &str, text: &str) -> Sources {
    let mut s = Sources::default();
    s.add(name, text);
    s
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every schema file we have: the trading schema and all fixtures (read once).
fn corpus() -> &'static [(String, String)] {
    static CORPUS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(read_corpus)
}

fn read_corpus() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join("../schema"), &mut paths);
    walk(&root().join("fixtures"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture is UTF-8");
            (p.display().to_string(), text)
        })
        .collect()
}

/// The trading schema as one multi-file source set.
fn trading_schema() -> Sources {
    strata_codegen::load(root().join("../schema")).expect("schema loads")
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    DeleteChar(usize),
    Insert(usize, String),
    Replace(usize, char),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let garbage = prop_oneof![
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("]".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("#".to_string()),
        Just("${".to_string()),
        Just("?".to_string()),
        Just("[]".to_string()),
        Just("(".to_string()),
        Just(",".to_string()),
        Just("é".to_string()),
        Just("\u{feff}".to_string()),
        "[a-z_]{1,8}",
        any::<String>(),
    ];
    let pos = any::<usize>();
    prop_oneof![
        pos.prop_map(Mutation::DeleteLine),
        pos.prop_map(Mutation::DuplicateLine),
        (pos, any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        pos.prop_map(Mutation::DeleteChar),
        (pos, garbage).prop_map(|(p, g)| Mutation::Insert(p, g)),
        (pos, any::<char>()).prop_map(|(p, c)| Mutation::Replace(p, c)),
        pos.prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let chars: Vec<char> = text.chars().collect();
    let n_lines = lines.len().max(1);
    let n_chars = chars.len().max(1);
    match m {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % n_lines);
            lines.join("\n")
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let l = lines[i % n_lines];
            lines.insert(i % n_lines, l);
            lines.join("\n")
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            lines.swap(a % n_lines, b % n_lines);
            lines.join("\n")
        }
        Mutation::DeleteChar(i) if !chars.is_empty() => {
            let mut c = chars;
            c.remove(i % n_chars);
            c.into_iter().collect()
        }
        Mutation::Insert(i, g) => {
            let at = i % (chars.len() + 1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(g);
            out.extend(&chars[at..]);
            out
        }
        Mutation::Replace(i, ch) if !chars.is_empty() => {
            let mut c = chars;
            c[i % n_chars] = *ch;
            c.into_iter().collect()
        }
        Mutation::Truncate(i) => chars[..i % (chars.len() + 1)].iter().collect(),
        _ => text.to_string(),
    }
}

/// Random YAML made of the language's own words, so that it gets past the
/// parser and deep into the resolver.
fn yaml_value() -> impl Strategy<Value = String> {
    let words = prop_oneof![
        Just("uuid"),
        Just("string(20)"),
        Just("string?"),
        Just("decimal(20,8)"),
        Just("decimal(99,2)"),
        Just("i64[]"),
        Just("timestamptz"),
        Just("secret"),
        Just("json"),
        Just("Side"),
        Just("Order"),
        Just("Order.id"),
        Just("main"),
        Just("series"),
        Just("cache"),
        Just("postgres"),
        Just("influxdb"),
        Just("redis"),
        Just("elasticsearch"),
        Just("clickhouse"),
        Just("now"),
        Just("generated"),
        Just("empty"),
        Just("BUY"),
        Just("true"),
        Just("false"),
        Just("0"),
        Just("-1"),
        Just("30s"),
        Just("id"),
        Just("ts"),
        Just("symbol"),
        Just("created_at desc"),
        Just("set_null"),
        Just("cascade"),
        Just("${DATABASE_URL}"),
        Just("${X:default}"),
        Just("${"),
        Just("~"),
        Just("\"quoted\""),
        Just("order"),
    ]
    .prop_map(str::to_string);
    let leaf = prop_oneof![words, "[a-zA-Z_]{1,6}"];
    let keys = prop_oneof![
        proptest::sample::select(all_keys()),
        Just("Order".to_string()),
        Just("Side".to_string()),
        Just("main".to_string()),
        Just("id".to_string()),
        Just("symbol".to_string()),
        "[a-z]{1,5}",
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((keys.clone(), inner), 0..6).prop_map(|entries| {
                let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

fn all_keys() -> Vec<String> {
    strata_codegen::syntax::SECTIONS
        .iter()
        .flat_map(|(_, keys)| keys.iter().map(|k| k.to_string()))
        .collect()
}

fn yaml_schema() -> impl Strategy<Value = String> {
    let stores = Just(
        "stores:\n  main: { kind: postgres }\n  cache: { kind: redis }\n  series: { kind: influxdb }\n  search: { kind: elasticsearch }\n  analytics: { kind: clickhouse }\n",
    );
    let enums = yaml_value().prop_map(|v| format!("enums:\n  Side: [BUY, SELL]\n  Other: {v}\n"));
    let entity =
        proptest::collection::vec((proptest::sample::select(all_keys()), yaml_value()), 0..8)
            .prop_map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| format!("    {k}: {v}\n"))
                    .collect::<String>()
            });
    let entities = proptest::collection::vec(entity, 0..4).prop_map(|es| {
        let mut out =
            String::from("entities:\n  Order:\n    fields: { id: uuid, symbol: string(20) }\n");
        for (i, e) in es.iter().enumerate() {
            out.push_str(&format!("  E{i}:\n{e}"));
        }
        out
    });
    let sync = yaml_value().prop_map(|v| format!("sync:\n  - {v}\n"));
    (stores, enums, entities, sync).prop_map(|(s, e, n, y)| format!("version: 1\n{s}{e}{n}{y}"))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    // 256 cases each by default; `PROPTEST_CASES=5000` runs a longer hunt.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in any::<String>()) {
        check(&one("random.yaml", &text))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&one("bytes.yaml", &String::from_utf8_lossy(&bytes)))?;
    }

    #[test]
    fn random_yaml_of_the_language_never_panics(text in yaml_schema()) {
        check(&one("random.yaml", &text))?;
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let (name, text) = &corpus[pick.index(corpus.len())];
        let mutated = mutations.iter().fold(text.clone(), |t, m| apply(&t, m));
        check(&one(name, &mutated))?;
    }

    #[test]
    fn mutated_trading_schema_never_panics(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut sources = trading_schema();
        let i = pick.index(sources.files.len());
        let mutated = mutations.iter().fold(sources.files[i].text.to_string(), |t, m| apply(&t, m));
        sources.files[i].text = mutated.into();
        check(&sources)?;
    }
}

fn entity_yaml(i: usize) -> String {
    format!(
        "  Entity{i}:\n    timestamps: true\n    fields:\n      id: {{ type: uuid, default: generated }}\n      name: string(64)\n      amount: decimal(20,8)\n      parent_id: {{ type: uuid, nullable: true, references: Entity{}, on_delete: set_null }}\n    indexes:\n      - [name, created_at desc]\n    queries:\n      by_name: {{ where: [name], limit: 10 }}\n",
        i.saturating_sub(1)
    )
}

#[test]
fn two_thousand_entities_compile() {
    let mut text = String::from("version: 1\nstores:\n  main: { kind: postgres }\nentities:\n");
    for i in 0..2000 {
        text.push_str(&entity_yaml(i));
    }
    let model = strata_codegen::compile_str("big.yaml", &text)
        .unwrap_or_else(|d| panic!("{}", d.render_short()));
    assert_eq!(model.entities.len(), 2000);
    assert_eq!(model.entities[1999].fields.len(), 6);
}

#[test]
fn two_thousand_broken_entities_report_every_error() {
    let mut text = String::from("version: 1\nstores:\n  main: { kind: postgres }\nentities:\n");
    for i in 0..2000 {
        text.push_str(&entity_yaml(i).replace("decimal(20,8)", "decimel(20,8)"));
    }
    let d = strata_codegen::compile_str("big.yaml", &text).expect_err("misspelt types");
    assert_eq!(d.items.len(), 2000);
    assert!(d.items.iter().all(|i| i.code() == "strata::unknown_type"));
    let rendered = d.render_plain();
    assert_eq!(rendered.matches("error: big.yaml:").count(), 2000);
}

#[test]
fn a_flood_of_unknown_references_is_reported() {
    let mut text = String::from("version: 1\nstores:\n  main: { kind: postgres }\nentities:\n");
    for i in 0..5000 {
        text.push_str(&format!(
            "  E{i}:\n    fields: {{ id: uuid, x: {{ type: uuid, references: Missing{i} }} }}\n"
        ));
    }
    let d = strata_codegen::compile_str("refs.yaml", &text).expect_err("unknown entities");
    assert_eq!(d.items.len(), 5000);
}

#[test]
fn a_mapping_with_a_hundred_thousand_keys_is_handled() {
    let mut text = String::from("version: 1\nstores:\n  main: { kind: postgres }\nentities:\n  Wide:\n    fields:\n      id: uuid\n");
    for i in 0..100_000 {
        text.push_str(&format!("      f{i}: i32\n"));
    }
    text.push_str("      f5: i64\n");
    let d = strata_codegen::compile_str("wide.yaml", &text).expect_err("duplicate key");
    let mut codes: Vec<&str> = d.items.iter().map(|i| i.code()).collect();
    codes.sort();
    // The entity is also past the generation limits (1,000 fields, 40,000 columns).
    assert_eq!(
        codes,
        [
            "strata::duplicate_key",
            "strata::too_large_output",
            "strata::too_many_fields"
        ]
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for open in ["[", "{a: ", "- "] {
        let text = if open == "- " {
            (0..10_000)
                .map(|i| format!("{}- \n", " ".repeat(i * 2)))
                .collect::<String>()
        } else {
            open.repeat(100_000)
        };
        let d = strata_codegen::compile_str("deep.yaml", &text).expect_err("too deep");
        assert_eq!(d.items.len(), 1, "{}", d.render_short());
    }
}

#[test]
fn a_very_long_line_is_handled() {
    let long = "x".repeat(2_000_000);
    let text = format!("version: 1\nstores:\n  main: {{ kind: postgres }}\nentities:\n  Note:\n    doc: {long}\n    fields:\n      id: uuid\n      body: {long}\n");
    let d = strata_codegen::compile_str("long.yaml", &text).expect_err("unknown type");
    assert_eq!(d.items.len(), 1);
    assert_eq!(d.items[0].code(), "strata::unknown_type");
    assert!(
        d.render_plain().len() < 10_000,
        "the rendered line is cut short"
    );
}
