//! The generated conversions from PostgreSQL entities to their synced copies:
//! a Decision written through the PostgreSQL repository, converted with
//! `DecisionRow::from`, written through the SDK's ClickHouse writer to the
//! real 18.16 server (a database of the test's own) and read back equal;
//! and the same Decision as its Elasticsearch document.

mod sdk_support;

use std::time::Duration;

use deepalpha_db::clickhouse::analytics::DecisionRow;
use deepalpha_db::elasticsearch::search::DecisionDoc;
use deepalpha_db::*;
use strata_sdk::clickhouse::{Table, Writer, WriterConfig};
use strata_sdk::elasticsearch::Document;

use strata_tests::support::{model, ClickHouseDb};

/// A database for one test with the 18.16 `Decision` table of `analytics`.
async fn decisions_db() -> ClickHouseDb {
    let db = ClickHouseDb::new();
    db.create_tables(&model("../schema"), "analytics", |e| {
        e.name.schema == "Decision"
    })
    .await;
    db
}

fn new_decision(symbol: &str, price: &str) -> NewDecision {
    NewDecision {
        id: None,
        symbol: symbol.into(),
        timeframe: "1h".into(),
        decision_type: DecisionType::Buy,
        status: None,
        confidence: Some(0.75),
        price: Some(price.parse().unwrap()),
        quantity: None,
        reasoning: Some(serde_json::json!({"why": ["trend", "volume"], "q": "it's \"ok\""})),
        summary: Some("naïve \u{1F680}, with 'quotes'\nand lines".into()),
        strategy_id: None,
        executed_at: None,
    }
}

#[tokio::test]
async fn a_decision_from_postgres_round_trips_through_clickhouse_18_16() {
    let pg = sdk_support::TestDb::trading().await;
    let a = Decision::insert(&pg.pool, &new_decision("BTCUSDT", "43210.12345678"))
        .await
        .unwrap();
    let b = Decision::insert(&pg.pool, &new_decision("ETH'USDT", "-0.5"))
        .await
        .unwrap();
    // What PostgreSQL holds, not what we sent.
    let a = Decision::get(&pg.pool, &a.id).await.unwrap();
    let b = Decision::get(&pg.pool, &b.id).await.unwrap();

    let row_a = DecisionRow::from(&a);
    assert_eq!(row_a.id, a.id);
    assert_eq!(row_a.decision_type, "BUY");
    assert_eq!(row_a.status, a.status.as_str());
    let reasoning: serde_json::Value =
        serde_json::from_str(row_a.reasoning.as_deref().unwrap()).unwrap();
    assert_eq!(Some(reasoning), a.reasoning);
    // Decision has no version column: the version is updated_at in micros.
    assert_eq!(row_a._version, a.updated_at.timestamp_micros() as u64);
    assert_eq!(row_a._deleted, 0);
    assert_eq!(DecisionRow::from_entity(&a, 7)._version, 7);
    assert_eq!(DecisionRow::tombstone(&a, 8)._deleted, 1);

    let ch = decisions_db().await;
    let mut w = Writer::<DecisionRow>::new(
        ch.client(),
        WriterConfig::default().with_max_age(Duration::from_secs(60)),
    );
    // An older copy of `a`, then the current ones: the current row wins.
    let mut old = DecisionRow::from_entity(&a, 1);
    old.symbol = "STALE".into();
    w.write(&old).await.unwrap();
    w.write(&DecisionRow::from(&a)).await.unwrap();
    w.write(&DecisionRow::from(&b)).await.unwrap();
    w.flush().await.unwrap();

    let sql = format!(
        "SELECT ?fields FROM {} FINAL WHERE _deleted = 0 ORDER BY id",
        DecisionRow::TABLE
    );
    let mut back = ch
        .client()
        .query(&sql)
        .fetch_all::<DecisionRow>()
        .await
        .unwrap();
    // ClickHouse orders UUIDs by its own byte order.
    back.sort_by_key(|r| r.id);
    let mut expected = vec![DecisionRow::from(&a), DecisionRow::from(&b)];
    expected.sort_by_key(|r| r.id);
    assert_eq!(back, expected);
}

#[tokio::test]
async fn a_decision_from_postgres_becomes_its_search_document() {
    let pg = sdk_support::TestDb::trading().await;
    let d = Decision::insert(&pg.pool, &new_decision("BTCUSDT", "1.5"))
        .await
        .unwrap();
    let doc = DecisionDoc::from(&d);
    assert_eq!(doc.id(), d.id.to_string());
    assert_eq!(doc.version(), Some(d.updated_at.timestamp_micros() as u64));
    assert_eq!(doc.decision_type, "BUY");
    assert_eq!(doc.price, d.price);
    // `reasoning` is declared full text: its JSON text.
    let text = doc.reasoning.clone().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        d.reasoning.clone().unwrap()
    );
    assert_eq!(doc.summary, d.summary);
    // The JSON a bulk request sends names the columns, no more.
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["decision_type"], "BUY");
    assert_eq!(json["symbol"], "BTCUSDT");
}

#[test]
fn nullable_arrays_become_empty_in_the_search_document() {
    use strata_tests::fixtures::search_arrays::elasticsearch::find::NoteDoc;
    use strata_tests::fixtures::search_arrays::entities::{Mood, Note};
    let note = Note {
        id: uuid::Uuid::new_v4(),
        title: "t".into(),
        tags: None,
        moods: Some(vec![Mood::Busy, Mood::Calm]),
        counts: Some(vec![3, 1]),
        history: vec![Mood::Calm],
    };
    let doc = NoteDoc::from(&note);
    assert!(doc.tags.is_empty());
    assert_eq!(doc.moods, ["BUSY", "CALM"]);
    assert_eq!(doc.counts, [3, 1]);
    assert_eq!(doc.history, ["CALM"]);
}

#[tokio::test]
async fn conversions_refuse_what_the_copy_cannot_hold_naming_the_field() {
    let pg = sdk_support::TestDb::trading().await;
    let mut d = Decision::insert(&pg.pool, &new_decision("BTCUSDT", "1.5"))
        .await
        .unwrap();
    assert!(DecisionDoc::try_from_entity(&d).is_ok());
    assert!(DecisionRow::try_from_entity(&d, 1).is_ok());
    // NaN is a legal f64 in PostgreSQL and the entity, but JSON has none:
    // the document is refused, never sent with `"confidence": null`.
    d.confidence = Some(f64::NAN);
    let e = DecisionDoc::try_from_entity(&d).expect_err("NaN refused");
    assert_eq!(
        (e.target, e.key.clone(), e.field),
        (DecisionDoc::ALIAS, d.id.to_string(), "confidence")
    );
    // ClickHouse's Float64 holds NaN: the row is fine.
    assert!(DecisionRow::try_from_entity(&d, 1).is_ok());
    // A price with more places than its Decimal(20,8) column is refused.
    d.price = Some("0.123456789".parse().unwrap());
    let e = DecisionRow::try_from_entity(&d, 1).expect_err("9 places refused");
    assert_eq!((e.key, e.field), (d.id.to_string(), "price"));
}
