//! Snapshots of the generated Rust: the trading schema's `rust/entities.rs`,
//! each valid fixture's, and the derive expansion of a hand-written struct
//! (which must equal the expansion of the generated struct it copies).

use strata_codegen::rust::{format_file, repository};

fn entities_of(path: &str) -> String {
    let sources = strata_codegen::load(path).unwrap();
    let model = strata_codegen::compile(&sources).unwrap();
    let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
    files.get("rust/entities.rs").unwrap().to_string()
}

#[test]
fn trading_schema_entities() {
    let text = entities_of(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema"));
    insta::with_settings!({ description => "schema/*.yaml → rust/entities.rs", omit_expression => true }, {
        insta::assert_snapshot!("trading_entities", text);
    });
}

#[test]
fn fixture_entities() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/valid");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for p in paths {
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let text = entities_of(p.to_str().unwrap());
        let input = format!("tests/fixtures/valid/{name}.yaml");
        insta::with_settings!({ description => input, omit_expression => true }, {
            insta::assert_snapshot!(format!("fixture_{name}_entities"), text);
        });
    }
}

/// A struct a user writes by hand, with the attributes codegen would emit
/// for the trading schema's `Config`.
const HAND_WRITTEN: &str = r#"
#[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize, ::sqlx::FromRow, ::strata_derive::Entity)]
#[strata(table = "config", key(scope, name), store = "main", sort(created_at), query(in_scope(params(scope), order = "name", limit = 1000)))]
pub struct Config {
    #[strata(ty = "string(50)")]
    pub scope: ::std::string::String,
    #[strata(ty = "string(100)")]
    pub name: ::std::string::String,
    #[strata(ty = "json")]
    pub value: ::serde_json::Value,
    #[strata(ty = "text")]
    pub description: ::std::option::Option<::std::string::String>,
    #[strata(ty = "uuid")]
    pub updated_by: ::std::option::Option<::uuid::Uuid>,
    #[strata(ty = "timestamptz", default = now, created_at)]
    pub created_at: ::chrono::DateTime<::chrono::Utc>,
    #[strata(ty = "timestamptz", default = now, updated_at)]
    pub updated_at: ::chrono::DateTime<::chrono::Utc>,
    #[strata(ty = "i64", default = "1", version)]
    pub version: i64,
}
"#;

fn expand(item: &syn::DeriveInput) -> String {
    format_file(repository::expand(item).unwrap())
}

#[test]
fn derive_expansion_of_a_hand_written_struct() {
    let hand: syn::DeriveInput = syn::parse_str(HAND_WRITTEN).unwrap();
    let text = expand(&hand);
    insta::with_settings!({ description => HAND_WRITTEN, omit_expression => true }, {
        insta::assert_snapshot!("derive_config_expansion", text);
    });
    // The generated `Config` expands to exactly the same repository.
    let generated = entities_of(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema"));
    let file = syn::parse_file(&generated).unwrap();
    let config = file
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Struct(s) if s.ident == "Config" => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(expand(&config.into()), text);
}

#[test]
fn derive_rejects_bad_attributes() {
    let cases = [
        (
            "#[strata(table = \"a\", table = \"b\")] struct A { id: i64 }",
            "duplicate `table`",
        ),
        (
            "#[strata(tabel = \"a\")] struct A { id: i64 }",
            "unknown setting `tabel`",
        ),
        (
            "#[strata(key(nope))] struct A { id: i64 }",
            "no field `nope`",
        ),
        ("struct A { x: i64 }", "no key"),
        (
            "struct A { #[strata(version, version)] id: i64 }",
            "duplicate `version`",
        ),
        (
            "#[strata(table = \"Bad Name\")] struct A { id: i64 }",
            "snake_case",
        ),
        (
            "#[strata(query(q(params(zz))))] struct A { id: i64 }",
            "no field `zz`",
        ),
        (
            "#[strata(query(q(limit = 1), q(limit = 2)))] struct A { id: i64 }",
            "one query per",
        ),
        ("enum A { X }", "takes a struct"),
        // An unknown type is an error at the attribute, never a silent enum.
        (
            "struct A { #[strata(ty = \"strng\")] id: i64 }",
            "unknown type `strng`; did you mean `string`?",
        ),
        (
            "struct A { #[strata(ty = \"varchar\")] id: i64 }",
            "unknown type `varchar`; did you mean `string(n)`?",
        ),
        (
            "struct A { #[strata(ty = \"String\")] id: i64 }",
            "unknown type `String`; did you mean `string`?",
        ),
        (
            "struct A { #[strata(ty = \"decimal(20\")] id: i64 }",
            "invalid type `decimal(20`: unclosed `(`",
        ),
    ];
    for (src, want) in cases {
        let input: syn::DeriveInput = syn::parse_str(src).unwrap();
        let err = repository::expand(&input)
            .err()
            .unwrap_or_else(|| panic!("{src} accepted"));
        assert!(err.to_string().contains(want), "{src}: {err}");
    }
}
