//! One expansion snapshot per combination of entity properties, as diesel
//! keeps its derive snapshots beside the derive (`src/tests/`): each shows
//! what the derive declares for that shape. (The trading schema's `Config`
//! — composite key, version, timestamps, a finder, a sort field — is
//! pinned in `tests/tests/sdk_snapshots.rs`, with the proof that the
//! generated and the hand-written struct expand alike.)

use super::expand;
use crate::rust::format_file;

fn check(name: &str, source: &str) {
    let input: syn::DeriveInput = syn::parse_str(source).expect("test input parses");
    let text = format_file(expand(&input).expect("derive accepts the input"));
    // Every generated line is short enough to read, except SQL-ish string
    // constants (`COLUMNS`).
    for line in text.lines().filter(|l| !l.contains("pub const COLUMNS")) {
        assert!(
            line.len() <= 160,
            "{name}: a {}-character line: {line}",
            line.len()
        );
    }
    insta::with_settings!({ description => source, omit_expression => true }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn generated_uuid_key_with_an_enum_and_an_array() {
    check(
        "uuid_key_enum_array",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "strategies", query(by_status(params(status), order = "name desc", limit = 50)))]
pub struct Strategy {
    #[strata(ty = "uuid", default = generated)]
    pub id: uuid::Uuid,
    #[strata(ty = "string(100)")]
    pub name: String,
    #[strata(ty = "StrategyStatus", default = "DRAFT")]
    pub status: StrategyStatus,
    #[strata(ty = "string(20)[]", default = empty)]
    pub symbols: Vec<String>,
}
"#,
    );
}

#[test]
fn secrets_and_a_version() {
    check(
        "secret_version",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "users", query(by_name(params(username), one)))]
pub struct User {
    #[strata(ty = "uuid", default = generated)]
    pub id: uuid::Uuid,
    #[strata(ty = "string(50)")]
    pub username: String,
    #[strata(ty = "secret")]
    pub hashed_password: strata_sdk::Secret,
    #[strata(ty = "secret")]
    pub api_secret: Option<strata_sdk::Secret>,
    #[strata(ty = "i64", default = "1", version)]
    pub version: i64,
}
"#,
    );
}

#[test]
fn identity_key_without_timestamps_or_version() {
    check(
        "identity_key",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "audit_log", schema = "ops", sort(occurred_at))]
pub struct AuditEntry {
    #[strata(ty = "i64", default = identity)]
    pub id: i64,
    #[strata(ty = "text")]
    pub action: String,
    #[strata(ty = "timestamptz", default = now)]
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}
"#,
    );
}

#[test]
fn decimals_dates_and_fixed_finders() {
    check(
        "decimal_date_fixed",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "positions", key(account, symbol), query(open(fixed(status = "OPEN"), limit = 100)))]
pub struct Position {
    #[strata(ty = "string(20)")]
    pub account: String,
    #[strata(ty = "string(20)")]
    pub symbol: String,
    #[strata(ty = "decimal(28,8)")]
    pub quantity: rust_decimal::Decimal,
    #[strata(ty = "decimal(20,8)")]
    pub entry_price: Option<rust_decimal::Decimal>,
    #[strata(ty = "date")]
    pub opened_on: chrono::NaiveDate,
    #[strata(ty = "PositionStatus")]
    pub status: PositionStatus,
    #[strata(ty = "timestamptz", default = now, updated_at)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}
"#,
    );
}

#[test]
fn every_column_generated() {
    check(
        "all_generated",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "tickets")]
pub struct Ticket {
    #[strata(ty = "i64", default = identity)]
    pub id: i64,
    #[strata(ty = "timestamptz", default = now, created_at)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}
"#,
    );
}

#[test]
fn a_cached_entity() {
    check(
        "cached",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "quotes", key(symbol), cache(ttl_ms = 5000))]
pub struct Quote {
    #[strata(ty = "string(20)")]
    pub symbol: String,
    #[strata(ty = "f64")]
    pub price: f64,
}
"#,
    );
}

#[test]
fn an_entity_with_events_and_a_secret() {
    check(
        "events_secret",
        r#"
#[derive(sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "users", key(id), events(partitions = 4, max_len = 5000, pubsub = false))]
pub struct User {
    #[strata(ty = "i64")]
    pub id: i64,
    #[strata(ty = "text")]
    pub email: String,
    #[strata(ty = "secret")]
    pub password: strata_sdk::Secret,
}
"#,
    );
}

#[test]
fn events_settings_are_checked() {
    let out = |a: &str| {
        refused(&format!(
            "#[strata(table = \"t\", {a})] pub struct T {{ pub id: i64 }}"
        ))
    };
    assert!(out("events(partitions = 0)").contains("1 to 1024"));
    assert!(out("events(partitions = 1025)").contains("1 to 1024"));
    assert!(out("events(max_len = 999)").contains("at least 1000"));
    assert!(out("events(ttl = 1)").contains("`partitions`, `max_len` and `pubsub`"));
}

fn refused(source: &str) -> String {
    let input: syn::DeriveInput = syn::parse_str(source).expect("test input parses");
    match expand(&input) {
        Ok(_) => panic!("the derive accepted: {source}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cache_settings_are_checked_and_secrets_refused() {
    let secret = refused(
        r#"
#[strata(table = "users", cache(ttl_ms = 1000))]
pub struct User {
    pub id: i64,
    pub password: strata_sdk::Secret,
}
"#,
    );
    assert!(secret.contains("`password` is a secret"), "{secret}");
    assert!(secret.contains("never copied to a cache"), "{secret}");
    let bad = refused(
        r#"
#[strata(table = "users", cache(ttl = 1000))]
pub struct User { pub id: i64 }
"#,
    );
    assert!(bad.contains("ttl_ms"), "{bad}");
}

#[test]
fn the_cache_fingerprint_follows_the_shape() {
    let fp = |src: &str| {
        let input: syn::DeriveInput = syn::parse_str(src).unwrap();
        let def = super::attrs::parse(&input).unwrap();
        crate::rust::table_impl::fingerprint(&crate::rust::plan::Plan::new(&def))
    };
    let a = fp("#[strata(cache)] pub struct Q { pub id: i64, pub p: f64 }");
    assert_eq!(
        a,
        fp("#[strata(cache(ttl_ms = 9))] pub struct Q { pub id: i64, pub p: f64 }"),
        "the TTL is not the shape"
    );
    assert_ne!(
        a,
        fp("#[strata(cache)] pub struct Q { pub id: i64, pub p: Option<f64> }")
    );
    assert_ne!(
        a,
        fp("#[strata(cache)] pub struct Q { pub id: i64, pub q: f64 }")
    );
    assert_ne!(
        a,
        fp("#[strata(cache)] pub struct Q { pub p: f64, pub id: i64 }")
    );
    assert_ne!(
        a,
        fp("#[strata(cache)] pub struct Q { pub id: i64, pub p: f64, pub r: bool }")
    );
}
