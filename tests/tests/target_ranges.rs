//! Values a target store's type cannot hold exactly are refused, naming the
//! copy, key and field, before a writer takes them; never replaced (NaN as
//! `null` in a search document, a date clamped to ClickHouse's last day).
//! The boundaries themselves are accepted.

#[allow(dead_code)]
mod search {
    pub use strata_tests::fixtures::search::elasticsearch::*;
}
#[allow(dead_code)]
mod analytics {
    pub use strata_tests::fixtures::analytics::clickhouse::*;
}

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use strata_sdk::clickhouse::row_binary::EncodeError;
use strata_sdk::clickhouse::{client, Error as ChError, Table, Writer, WriterConfig};
use strata_sdk::elasticsearch;
use strata_sdk::elasticsearch::{rules, Document};
use strata_sdk::ValueError;

fn ticket() -> search::find::TicketDoc {
    search::find::TicketDoc {
        id: uuid::Uuid::from_u128(7),
        number: 7,
        subject: "s".into(),
        body: "b".into(),
        priority: "LOW".into(),
        labels: vec![],
        amount: None,
        big_amount: None,
        rating: Some(4.5),
        escalated: false,
        due_on: None,
        context: None,
        tries: 0,
        level: 0,
        created_at: DateTime::from_timestamp_micros(1).unwrap(),
        updated_at: DateTime::from_timestamp_micros(2).unwrap(),
        version: 1,
    }
}

fn refusal(e: Result<(), ValueError>) -> (&'static str, String, &'static str) {
    let e = e.expect_err("refused");
    assert!(!e.reason.is_empty());
    (e.target, e.key, e.field)
}

#[test]
fn nan_and_infinities_are_refused_in_search_documents_never_null() {
    let key = uuid::Uuid::from_u128(7).to_string();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let doc = search::find::TicketDoc {
            rating: Some(bad),
            ..ticket()
        };
        assert_eq!(
            refusal(doc.check()),
            ("helpdesk_tickets", key.clone(), "rating"),
            "{bad}"
        );
    }
    ticket().check().expect("a finite rating is fine");
    search::find::TicketDoc {
        rating: None,
        ..ticket()
    }
    .check()
    .expect("None is not NaN");
}

#[tokio::test]
async fn the_bulk_indexer_does_not_take_a_document_its_index_cannot_hold() {
    // Nothing listens here: a refused document never reaches the network.
    let mut bulk =
        elasticsearch::Writer::new(elasticsearch::WriterConfig::new("http://127.0.0.1:9"));
    bulk.write(&ticket())
        .await
        .expect("a good document is buffered");
    let doc = search::find::TicketDoc {
        rating: Some(f64::NAN),
        ..ticket()
    };
    match bulk.write(&doc).await {
        Err(elasticsearch::Error::Value(e)) => assert_eq!(e.field, "rating"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(bulk.pending(), 1, "only the good document is held");
}

#[test]
fn date_nanos_and_strict_date_keep_their_ranges() {
    let at = |y, mo, d, h, mi, s, n| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + chrono::Duration::nanoseconds(n)
    };
    let with_created = |t| search::find::TicketDoc {
        created_at: t,
        ..ticket()
    };
    assert!(with_created(at(1970, 1, 1, 0, 0, 0, 0)).check().is_ok());
    assert!(with_created(at(2262, 4, 11, 23, 47, 16, 854_775_807))
        .check()
        .is_ok());
    for bad in [
        at(1969, 12, 31, 23, 59, 59, 999_999_999),
        at(2262, 4, 11, 23, 47, 16, 854_775_808),
        at(9999, 1, 1, 0, 0, 0, 0),
    ] {
        assert_eq!(refusal(with_created(bad).check()).2, "created_at", "{bad}");
    }
    let with_due = |y| search::find::TicketDoc {
        due_on: NaiveDate::from_ymd_opt(y, 6, 1),
        ..ticket()
    };
    assert!(with_due(0).check().is_ok());
    assert!(with_due(9999).check().is_ok());
    assert_eq!(refusal(with_due(10000).check()).2, "due_on");
    assert_eq!(refusal(with_due(-1).check()).2, "due_on");
}

#[test]
fn flattened_takes_objects_within_its_depth_and_leaf_limits() {
    for bad in [
        json!("plain"),
        json!(42),
        json!([1, 2, 3]),
        json!(true),
        json!(null),
    ] {
        assert!(rules::flattened(&bad).is_err(), "{bad}");
    }
    assert!(rules::flattened(&json!({})).is_ok());
    assert!(rules::flattened(&json!({"a": [1, {"b": "c"}], "d": null})).is_ok());
    let nested = |depth: usize| (0..depth).fold(json!("leaf"), |inner, _| json!({ "k": inner }));
    assert!(rules::flattened(&nested(rules::FLATTENED_DEPTH)).is_ok());
    assert!(rules::flattened(&nested(rules::FLATTENED_DEPTH + 1)).is_err());
    let leaf = |n: usize| json!({ "k": "x".repeat(n) });
    // "k" + the separator + the leaf.
    assert!(rules::flattened(&leaf(rules::FLATTENED_LEAF - 2)).is_ok());
    assert!(rules::flattened(&leaf(rules::FLATTENED_LEAF - 1)).is_err());
}

fn page_view(day: NaiveDate, viewed_at: DateTime<Utc>) -> analytics::lake::PageViewRow {
    analytics::lake::PageViewRow {
        id: uuid::Uuid::from_u128(9),
        site: "s".into(),
        viewed_at,
        day,
        path: "/".into(),
        referrer: None,
        plan: None,
        bot: false,
        load_ms: 1,
        depth: None,
        bytes_out: 0,
        score: None,
        tags: vec![],
        ab_groups: vec![],
        payload: None,
        prices: vec![],
        seen_at: vec![],
        r#type: None,
        _version: 1,
        _deleted: 0,
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn modern_clickhouse_date32_and_datetime64_ranges_are_refused_by_the_writer() {
    let noon = |d: NaiveDate| d.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let ok = ymd(2026, 1, 1);
    // Nothing listens here: refused rows never reach the network.
    let mut w = Writer::<analytics::lake::PageViewRow>::new(
        client("http://127.0.0.1:9", "x"),
        WriterConfig::default(),
    );
    for good in [ymd(1900, 1, 1), ymd(2299, 12, 31)] {
        w.write(&page_view(good, noon(good))).await.unwrap();
    }
    let last = ymd(2299, 12, 31)
        .and_hms_micro_opt(23, 59, 59, 999_999)
        .unwrap()
        .and_utc();
    w.write(&page_view(ok, last)).await.unwrap();
    let key = uuid::Uuid::from_u128(9).to_string();
    for (row, field) in [
        (page_view(ymd(10000, 1, 1), noon(ok)), "day"),
        (page_view(ymd(1899, 12, 31), noon(ok)), "day"),
        (page_view(ymd(2300, 1, 1), noon(ok)), "day"),
        (page_view(ok, noon(ymd(2300, 1, 1))), "viewed_at"),
        (page_view(ok, noon(ymd(1899, 12, 31))), "viewed_at"),
    ] {
        match w.write(&row).await {
            Err(ChError::Encode {
                source: EncodeError::Value(e),
                ..
            }) => {
                assert_eq!((e.target, e.field), ("shop_lake.page_view", field));
                // The key is composite (site, viewed_at, id): all its parts.
                assert!(
                    e.key.starts_with("[\"s\",") && e.key.ends_with(&format!(",\"{key}\"]")),
                    "{}",
                    e.key
                );
            }
            other => panic!("{field}: expected a refusal, got {other:?}"),
        }
    }
    // An array of timestamps is checked value by value.
    let mut row = page_view(ok, noon(ok));
    row.seen_at = vec![noon(ok), noon(ymd(2300, 1, 1))];
    assert!(
        matches!(w.write(&row).await, Err(ChError::Encode { source: EncodeError::Value(e), .. }) if e.field == "seen_at")
    );
    // A time finer than a microsecond is not refused: the encoder truncates
    // it, the SDK's one rule before every store (see sdk_timestamps.rs).
    w.write(&page_view(ok, noon(ok) + chrono::Duration::nanoseconds(1)))
        .await
        .unwrap();
    assert_eq!(w.pending(), 4, "only the rows in range are held");
}

fn lake_invoice(tax: &str, due: NaiveDate) -> analytics::lake::InvoiceRow {
    analytics::lake::InvoiceRow {
        id: uuid::Uuid::from_u128(3),
        number: "n".into(),
        customer: "c".into(),
        plan: "PRO".into(),
        amount: Decimal::new(100, 2),
        tax_rate: tax.parse().unwrap(),
        total: None,
        paid: false,
        due_on: due,
        lines: "[]".into(),
        paid_at: None,
        created_at: DateTime::from_timestamp_micros(0).unwrap(),
        updated_at: DateTime::from_timestamp_micros(0).unwrap(),
        version: 1,
        _version: 1,
        _deleted: 0,
    }
}

fn legacy_invoice(due: NaiveDate) -> analytics::legacy::InvoiceRow {
    let r = lake_invoice("0.1", due);
    analytics::legacy::InvoiceRow {
        id: r.id,
        number: r.number,
        customer: r.customer,
        plan: r.plan,
        amount: r.amount,
        tax_rate: r.tax_rate,
        total: r.total,
        paid: r.paid,
        due_on: r.due_on,
        lines: r.lines,
        paid_at: r.paid_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
        _version: 1,
        _deleted: 0,
    }
}

#[test]
fn decimals_are_refused_naming_the_field_not_rounded() {
    let ok = ymd(2026, 1, 1);
    assert!(
        lake_invoice("0.1250", ok).check().is_ok(),
        "trailing zeros are not places"
    );
    let key = uuid::Uuid::from_u128(3).to_string();
    assert_eq!(
        refusal(lake_invoice("0.12345", ok).check()),
        ("shop_lake.invoices", key, "tax_rate")
    );
    assert_eq!(refusal(lake_invoice("12.5", ok).check()).2, "tax_rate");
}

/// The 18.16 target stores dates as Int32 days, so 10000-01-01 fits and is
/// kept; the modern one's `Date32` does not hold it.
#[test]
fn each_target_refuses_only_what_its_own_type_cannot_hold() {
    let far = ymd(10000, 1, 1);
    assert!(legacy_invoice(far).check().is_ok());
    assert_eq!(refusal(lake_invoice("0.1", far).check()).2, "due_on");
}

/// `strata check` says what each copy store keeps: the same ranges the
/// writers enforce above, per target.
#[test]
fn strata_check_says_which_ranges_each_target_keeps() {
    let lines = strata_codegen::ranges::kept(&strata_tests::support::model(
        "fixtures/valid/analytics.yaml",
    ));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with("store `lake` keeps: clickhouse 24.8:"));
    assert!(lines[0].contains("1900-01-01 to 2299-12-31"));
    assert!(lines[1].starts_with("store `legacy` keeps: clickhouse 18.16:"));
    assert!(lines[1].contains("any date and time"));
    let schema = strata_codegen::ranges::kept(&strata_tests::support::model("../schema"));
    let search = schema
        .iter()
        .find(|l| l.starts_with("store `search` keeps: elasticsearch"))
        .expect("the search store");
    assert!(search.contains("finite") && search.contains("1970-01-01 to 2262-04-11"));
    assert!(schema.iter().any(
        |l| l.starts_with("store `series` keeps: influxdb") && l.contains("trailing backslash")
    ));
    assert!(!schema.iter().any(|l| l.contains("postgres")));
}
