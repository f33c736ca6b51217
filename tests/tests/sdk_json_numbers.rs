//! A `json` value reads back as it was written, numbers included.
//!
//! PostgreSQL's `jsonb` keeps a number as `numeric` and prints it in full
//! (`1.7976931348623157e308` comes back as 309 digits). serde_json's default
//! float parser is not exact on such text: it read `1.2345678901234567e200`
//! back as a different f64 (a silent change, and a later `update` of the
//! row stores the changed value) and failed on ±f64::MAX ("number out of
//! range", which made every read of that row fail). strata-sdk enables
//! serde_json's `float_roundtrip`; this test holds every path to it: the
//! row returned by `insert`, `get`, `list` and rows written in a batch.

mod sdk_support;

use deepalpha_db::*;
use sdk_support::TestDb;
use serde_json::{json, Value};
use strata_sdk::postgres::PageRequest;

fn cfg(i: usize, value: Value) -> NewConfig {
    NewConfig {
        scope: "numbers".into(),
        name: format!("n{i:05}"),
        value,
        description: None,
        updated_by: None,
    }
}

/// Numbers at the edges of f64 and of the integers serde_json keeps.
fn edges() -> Vec<Value> {
    let floats = [
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        1.2345678901234567e200,
        9.999999999999999e307,
        0.1,
        -0.0,
        1e22,
        123456.789e-300,
    ];
    let mut v: Vec<Value> = floats.iter().map(|f| json!(f)).collect();
    v.extend([json!(u64::MAX), json!(i64::MIN), json!(i64::MAX)]);
    v.push(json!({ "nested": [f64::MAX, { "x": 1.2345678901234567e200 }] }));
    v
}

/// Finite f64s spread over every exponent (a fixed xorshift sequence of
/// bit patterns, so a failure names a value that fails again).
fn spread(n: usize) -> Vec<Value> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        if f.is_finite() {
            out.push(json!(f));
        }
    }
    out
}

#[tokio::test]
async fn edge_numbers_read_back_as_written_on_every_path() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    for (i, v) in edges().into_iter().enumerate() {
        let c = Config::insert(pool, &cfg(i, v.clone())).await.unwrap();
        assert_eq!(c.value, v, "insert returned");
        let key = (c.scope.clone(), c.name.clone());
        assert_eq!(Config::get(pool, &key).await.unwrap().value, v, "get");
    }
    let page = Config::list(pool, &PageRequest::first(100)).await.unwrap();
    assert_eq!(page.items.len(), edges().len());
    for (c, v) in page.items.iter().zip(edges()) {
        assert_eq!(c.value, v, "list, {}", c.name);
    }
}

#[tokio::test]
async fn random_finite_floats_read_back_as_written() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let values = spread(1_000); // the finder returns up to 1,000 rows
    let rows = values.iter().enumerate().map(|(i, v)| cfg(i, v.clone()));
    Config::insert_many(pool, rows).await.unwrap();
    let got = Config::in_scope(pool, "numbers").await.unwrap();
    assert_eq!(got.len(), values.len());
    for (c, v) in got.iter().zip(&values) {
        // jsonb prints a float with no fraction as digits (-4.8e18 comes
        // back as -4796566914205686000, an integer to serde_json): the
        // same number, which is what must hold.
        let (back, want) = (c.value.as_f64().unwrap(), v.as_f64().unwrap());
        assert_eq!(
            back.to_bits(),
            want.to_bits(),
            "{}: {v} read back as {}",
            c.name,
            c.value
        );
    }
}
