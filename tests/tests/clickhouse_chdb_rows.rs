//! The typed rows agree with the modern DDL on the wire: the RowBinary body
//! the SDK writer sends is captured (a plain TCP listener that answers 200)
//! and loaded into the modern table on chdb (ClickHouse 26.x), then read
//! back and compared. The 18.16 server covers the old types live
//! (clickhouse_live.rs); this covers DateTime64, Date32, Bool and
//! LowCardinality, which it lacks.

#[allow(dead_code)]
mod analytics {
    pub use strata_tests::fixtures::analytics::clickhouse::*;
}

use analytics::lake::PageViewRow;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use strata_codegen::clickhouse::{self, DdlOptions, MODERN};
use strata_sdk::clickhouse::{Writer, WriterConfig};
use strata_tests::support::{capture_one, chdb, model, RowsFile};

fn rows() -> Vec<PageViewRow> {
    let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
    (0..3u128)
        .map(|i| PageViewRow {
            id: uuid::Uuid::from_u128(i + 1),
            site: format!("site-{i}"),
            viewed_at: at + chrono::Duration::microseconds(i as i64),
            day: chrono::NaiveDate::from_ymd_opt(1950 + i as i32, 3, 4).unwrap(),
            path: format!("/p/{i}"),
            referrer: (i == 1).then(|| "https://ü.example".to_string()),
            plan: (i != 1).then(|| "PRO".to_string()),
            bot: i == 2,
            load_ms: -7,
            depth: Some(3),
            bytes_out: 1 << 40,
            score: None,
            tags: vec!["a".into(), "b,c".into()],
            ab_groups: vec![uuid::Uuid::from_u128(99)],
            payload: Some(vec![0, 1, 255]),
            prices: vec![Decimal::new(-12_345, 4)],
            seen_at: vec![at],
            r#type: None,
            _version: 1,
            _deleted: 0,
        })
        .collect()
}

#[tokio::test]
async fn rows_from_the_writer_load_into_the_modern_table() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(capture_one(listener));
    let client = ::clickhouse::Client::default()
        .with_url(url)
        .with_validation(false)
        .with_compression(::clickhouse::Compression::None);
    let mut w = Writer::<PageViewRow>::new(client, WriterConfig::default());
    for r in rows() {
        w.write(&r).await.unwrap();
    }
    w.flush().await.expect("the capture answers 200");
    let (head, body) = server.await.unwrap();
    assert!(head.contains("RowBinary"), "{head}");

    let m = model("fixtures/valid/analytics.yaml");
    let e = m.entity("PageView").unwrap();
    let opts = DdlOptions::default()
        .with_target(MODERN)
        .with_database("t")
        .single_node();
    let mut statements = clickhouse::statements(m.store("lake").unwrap(), e, &opts);
    // The file's structure is the table's own columns, in order.
    let file = RowsFile::new(&statements[1], "t.page_view", &body);
    statements.push(file.insert.clone());
    let r = chdb(
        &statements,
        &["SELECT toString(id) AS id, site, toString(viewed_at) AS viewed_at, toString(day) AS day, referrer, plan, bot, bytes_out, tags, toString(prices) AS prices, toString(seen_at) AS seen_at, hex(payload) AS payload FROM t.page_view_current ORDER BY id"],
    );
    let got = &r[0];
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["id"], "00000000-0000-0000-0000-000000000001");
    assert_eq!(got[0]["viewed_at"], "2023-11-14 22:13:20.123456");
    assert_eq!(got[0]["day"], "1950-03-04");
    assert_eq!(got[1]["referrer"], "https://ü.example");
    assert_eq!(got[1]["plan"], Value::Null);
    assert_eq!(got[2]["bot"], true);
    assert_eq!(got[0]["tags"], json!(["a", "b,c"]));
    assert_eq!(got[0]["prices"], "[-1.2345]");
    assert_eq!(got[0]["seen_at"], "['2023-11-14 22:13:20.123456']");
    assert_eq!(got[0]["payload"], "0001FF");
    let big = &got[2]["bytes_out"];
    assert_eq!(
        big.as_str().map(str::to_string).unwrap_or(big.to_string()),
        (1i64 << 40).to_string()
    );
}
