//! Live round trip on the real ClickHouse 18.16 server (CLICKHOUSE_URL,
//! default http://127.0.0.1:8123): the 18.16 DDL is created in a database of
//! the test's own, typed rows go through the SDK writer and read back equal.

#[allow(dead_code)]
mod trading {
    pub use deepalpha_db::clickhouse::*;
}
#[allow(dead_code)]
mod analytics {
    pub use strata_tests::fixtures::analytics::clickhouse::*;
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use strata_sdk::clickhouse::{Writer, WriterConfig};
use trading::analytics::OrderRow;

use strata_tests::support::{model, order_row as order, ClickHouseDb};

/// A database for one test with the 18.16 tables of `entities` of `store`.
async fn test_db(schema: &str, store: &str, entities: &[&str]) -> ClickHouseDb {
    let db = ClickHouseDb::new();
    db.create_tables(&model(schema), store, |e| {
        entities.contains(&e.name.schema.as_str())
    })
    .await;
    db
}

#[tokio::test]
async fn rows_round_trip_through_the_writer_on_18_16() {
    let db = test_db("../schema", "analytics", &["Order"]).await;
    let config = WriterConfig::default()
        .with_max_rows(7)
        .with_max_age(Duration::from_secs(60));
    let mut w = Writer::<OrderRow>::new(db.client(), config);
    let mut expected = Vec::new();
    for i in 1..=20u128 {
        for v in 1..=3 {
            w.write(&order(i, v, 0)).await.expect("write");
        }
        if i % 5 == 0 {
            // Deleted: a tombstone with a higher version.
            w.write(&order(i, 4, 1)).await.expect("tombstone");
        } else {
            expected.push(order(i, 3, 0));
        }
    }
    assert!(w.sent() > 0, "batches of 7 rows went out before the flush");
    w.flush().await.expect("flush");
    assert_eq!(w.pending(), 0);

    let client = db.client();
    let mut back = client
        .query("SELECT ?fields FROM live_order FINAL WHERE _deleted = 0 ORDER BY id")
        .fetch_all::<OrderRow>()
        .await
        .expect("read back");
    assert_eq!(back.len(), expected.len());
    for (got, want) in back.iter().zip(&expected) {
        assert_eq!(got, want);
    }

    // Replaying every row (a retried batch) changes nothing.
    for r in back.drain(..) {
        w.write(&r).await.expect("replay");
    }
    w.flush().await.expect("flush replay");
    let ids: Vec<String> = client
        .query("SELECT toString(id) FROM live_order_current ORDER BY id")
        .fetch_all::<String>()
        .await
        .expect("view");
    assert_eq!(ids.len(), expected.len());
    assert_eq!(ids[0], uuid::Uuid::from_u128(1).to_string());
}

#[tokio::test]
async fn a_row_that_does_not_fit_is_an_error_not_rounded() {
    // The row is refused by `write` itself (it is encoded there) and leaves
    // the batch whole: the rows around it arrive, it does not.
    let db = test_db("../schema", "analytics", &["Order"]).await;
    let mut w = Writer::<OrderRow>::new(db.client(), WriterConfig::default());
    w.write(&order(1, 1, 0)).await.expect("buffered");
    let mut bad = order(2, 1, 0);
    bad.fee = Decimal::new(1, 9); // 9 decimal places into Decimal(20, 8)
    let err = w.write(&bad).await.expect_err("refused");
    assert!(
        matches!(
            err,
            strata_sdk::clickhouse::Error::Encode {
                table: "live_order",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("decimal places"), "{err}");
    assert_eq!(w.pending(), 1);
    w.write(&order(3, 1, 0)).await.expect("buffered");
    w.flush().await.expect("the good rows go");
    let back = db
        .client()
        .query("SELECT ?fields FROM live_order FINAL ORDER BY id")
        .fetch_all::<OrderRow>()
        .await
        .unwrap();
    assert_eq!(back, vec![order(1, 1, 0), order(3, 1, 0)]);
}

#[tokio::test]
async fn fixture_rows_with_every_type_round_trip_on_18_16() {
    use analytics::legacy::InvoiceRow;
    let db = test_db("fixtures/valid/analytics.yaml", "legacy", &["Invoice"]).await;
    // The fixture's legacy store is its own database name; rows go to ours.
    let row = InvoiceRow {
        id: uuid::Uuid::new_v4(),
        number: "INV-1".into(),
        customer: "ACME \"Intl\"".into(),
        plan: "PRO".into(),
        amount: Decimal::new(-123_456_789_012_345_678, 2),
        tax_rate: Decimal::new(2_000, 4),
        total: Some(Decimal::new(1_234_567_890_123_456_789, 10)),
        paid: true,
        due_on: chrono::NaiveDate::from_ymd_opt(1901, 2, 3).unwrap(),
        lines: r#"[{"sku":"a","n":2}]"#.into(),
        paid_at: Some(chrono::DateTime::from_timestamp_micros(-1_000_001).unwrap()),
        created_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap(),
        updated_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_002).unwrap(),
        version: 1,
        _version: 1,
        _deleted: 0,
    };
    let mut w = Writer::<InvoiceRow>::new(db.client(), WriterConfig::default());
    w.write(&row).await.unwrap();
    w.flush().await.unwrap();
    let back = db
        .client()
        .query("SELECT ?fields FROM invoices FINAL")
        .fetch_all::<InvoiceRow>()
        .await
        .unwrap();
    assert_eq!(back, vec![row]);
}

#[tokio::test]
async fn arrays_bytes_and_low_cardinality_round_trip_on_18_16() {
    use analytics::lake::PageViewRow;
    let db = test_db("fixtures/valid/analytics.yaml", "lake", &["PageView"]).await;
    let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
    let rows: Vec<PageViewRow> = (0..50)
        .map(|i| PageViewRow {
            id: uuid::Uuid::from_u128(i + 1),
            site: format!("site-{}", i % 3),
            viewed_at: at + chrono::Duration::microseconds(i as i64),
            day: chrono::NaiveDate::from_ymd_opt(2026, 1, 1 + (i % 28) as u32).unwrap(),
            path: format!("/p/{i}?q=a,b c=d"),
            referrer: (i % 2 == 0).then(|| "https://example.com/ü".to_string()),
            plan: (i % 3 == 0).then(|| "PRO".to_string()),
            bot: i % 5 == 0,
            load_ms: i as i32 * 10,
            depth: (i % 4 == 0).then_some(i as i16),
            bytes_out: -(i as i64),
            score: Some(i as f64 / 3.0),
            tags: vec!["a".into(), format!("t{i}")],
            ab_groups: vec![uuid::Uuid::from_u128(i * 99)],
            payload: (i % 2 == 1).then(|| vec![0u8, 255, b'\n', i as u8]),
            prices: vec![Decimal::new(12_345_678, 4), Decimal::new(-1, 4)],
            seen_at: vec![at, at + chrono::Duration::days(400)],
            r#type: (i % 2 == 0).then(|| "landing".to_string()),
            _version: 1,
            _deleted: 0,
        })
        .collect();
    let mut w =
        Writer::<PageViewRow>::new(db.client(), WriterConfig::default().with_max_bytes(1000));
    for r in &rows {
        w.write(r).await.unwrap();
    }
    assert!(
        w.sent() > 0,
        "the 1000-byte limit sent batches before the flush"
    );
    w.flush().await.unwrap();
    let back = db
        .client()
        .query("SELECT ?fields FROM page_view FINAL ORDER BY id")
        .fetch_all::<PageViewRow>()
        .await
        .unwrap();
    assert_eq!(back, rows);
}

#[tokio::test]
async fn an_unreachable_server_is_retried_and_the_batch_kept() {
    // Port 9 on localhost is closed: every attempt is a network error.
    let client = strata_sdk::clickhouse::client("http://127.0.0.1:9", "nowhere");
    let config = WriterConfig::default().with_retry(strata_sdk::writer::Retry::new(
        2,
        Duration::from_millis(5),
        Duration::from_millis(5) * 1024,
    ));
    let mut w = Writer::<OrderRow>::new(client, config);
    for i in 1..=3 {
        w.write(&order(i, 1, 0)).await.expect("buffered");
    }
    match w.flush().await {
        Err(strata_sdk::clickhouse::Error::Insert { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected an insert error, got {other:?}"),
    }
    assert_eq!(w.pending(), 3, "the rows stay for the next flush");
    assert_eq!(w.sent(), 0);
}

#[tokio::test]
async fn a_full_writer_refuses_rows_instead_of_growing() {
    let client = strata_sdk::clickhouse::client("http://127.0.0.1:9", "nowhere");
    let config =
        WriterConfig::default()
            .with_max_rows(2)
            .with_retry(strata_sdk::writer::Retry::new(
                0,
                Duration::from_millis(1),
                Duration::from_millis(1) * 1024,
            ));
    let mut w = Writer::<OrderRow>::new(client, config);
    let mut refused = 0;
    for i in 1..=10 {
        match w.write(&order(i, 1, 0)).await {
            Err(strata_sdk::clickhouse::Error::Backlog { rows, .. }) => {
                assert_eq!(rows, 4);
                refused += 1;
            }
            // The batch limit is reached: the flush fails, the row is kept.
            Err(strata_sdk::clickhouse::Error::Insert { .. }) | Ok(()) => {}
            Err(e @ strata_sdk::clickhouse::Error::Encode { .. }) => panic!("{e}"),
        }
    }
    assert!(refused > 0);
    assert!(
        w.pending() <= 4,
        "never more than twice a batch: {}",
        w.pending()
    );
}

#[tokio::test]
async fn rows_kept_after_a_failed_flush_are_all_sent_by_the_next() {
    // The first flush fails (the table is missing), a row is written after
    // it, the table comes back: the next flush must send all three rows.
    let db = test_db("../schema", "analytics", &["Order"]).await;
    // The generated client of the store (CLICKHOUSE_URL), on the test's database.
    let client = trading::analytics::client()
        .expect("url")
        .with_database(&db.name);
    client
        .query("RENAME TABLE live_order TO live_order_away")
        .execute()
        .await
        .unwrap();
    let mut w = Writer::<OrderRow>::new(
        client.clone(),
        WriterConfig::default().with_retry(strata_sdk::writer::Retry::new(
            0,
            Duration::from_millis(1),
            Duration::from_millis(1) * 1024,
        )),
    );
    w.write(&order(1, 1, 0)).await.unwrap();
    w.write(&order(2, 1, 0)).await.unwrap();
    assert!(w.flush().await.is_err(), "no table yet");
    w.write(&order(3, 1, 0)).await.unwrap();
    client
        .query("RENAME TABLE live_order_away TO live_order")
        .execute()
        .await
        .unwrap();
    w.flush().await.expect("replayed");
    assert_eq!(w.sent(), 3);
    let n: u64 = client
        .query("SELECT count() FROM live_order FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(n, 3, "rows from before and after the failure all arrived");
}

/// A proxy to the ClickHouse server whose first connection is dropped after
/// `cut` bytes of the request (a connection lost in the middle of an
/// insert); later connections are forwarded whole. Returns its url, the
/// number of connections it has accepted and the bytes the first one got.
async fn proxy_dropping_the_first_insert(
    cut: usize,
) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let upstream = strata_tests::support::clickhouse_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let first_bytes = Arc::new(AtomicUsize::new(0));
    let (count, first) = (accepted.clone(), first_bytes.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                // Reads until `cut` bytes came (or the client went quiet), then hangs up.
                let mut seen = 0;
                let mut buf = vec![0; 8192];
                while seen < cut {
                    let read = tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf));
                    match read.await {
                        Ok(Ok(n)) if n > 0 => seen += n,
                        _ => break,
                    }
                }
                first.store(seen, Ordering::SeqCst);
                drop(sock);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut sock, &mut server).await;
            });
        }
    });
    (url, accepted, first_bytes)
}

#[tokio::test]
async fn a_batch_lost_in_flight_is_replayed_from_its_kept_bytes() {
    // 3,000 orders are about 600 KB of RowBinary (tens of KB once lz4
    // compressed): chunks stream into the first insert while rows are
    // written, and that connection is cut after 16 KiB. The flush replays
    // the kept chunks on a new connection.
    let db = test_db("../schema", "analytics", &["Order"]).await;
    let (url, accepted, first_bytes) = proxy_dropping_the_first_insert(16 << 10).await;
    let client = strata_sdk::clickhouse::client(&url, &db.name);
    let config = WriterConfig::default()
        .with_max_age(Duration::from_secs(60))
        .with_retry(strata_sdk::writer::Retry::new(
            3,
            Duration::from_millis(10),
            Duration::from_millis(10) * 1024,
        ));
    let mut w = Writer::<OrderRow>::new(client, config);
    let rows: Vec<OrderRow> = (1..=3_000).map(|i| order(i, 1, 0)).collect();
    for r in &rows {
        w.write(r).await.expect("buffered");
    }
    w.flush().await.expect("replayed");
    assert_eq!(w.sent(), rows.len() as u64);
    assert_eq!(w.pending(), 0);
    assert!(
        first_bytes.load(Ordering::SeqCst) >= 16 << 10,
        "the first insert was cut in flight"
    );
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "a second insert replayed the batch"
    );

    let client = db.client();
    let back = client
        .query("SELECT ?fields FROM live_order FINAL ORDER BY id")
        .fetch_all::<OrderRow>()
        .await
        .expect("read back");
    assert_eq!(back.len(), rows.len(), "each row exactly once after FINAL");
    assert!(back == rows, "the rows read back equal the rows written");
}

#[tokio::test]
async fn a_flush_given_up_half_way_leaves_its_rows_for_the_next() {
    // The first insert goes into a connection that never answers, and the
    // caller gives up on that flush. The rows of that batch must still go
    // out with the next flush, together with the rows written after it.
    let db = test_db("../schema", "analytics", &["Order"]).await;
    let (url, accepted, _) = proxy_dropping_the_first_insert(usize::MAX).await;
    let client = strata_sdk::clickhouse::client(&url, &db.name);
    let config = WriterConfig::default().with_max_age(Duration::from_secs(60));
    let mut w = Writer::<OrderRow>::new(client, config);
    for i in 1..=10 {
        w.write(&order(i, 1, 0)).await.expect("buffered");
    }
    let gave_up = tokio::time::timeout(Duration::from_millis(300), w.flush()).await;
    assert!(gave_up.is_err(), "the first insert hangs");
    assert_eq!(w.pending(), 10);
    for i in 11..=20 {
        w.write(&order(i, 1, 0)).await.expect("buffered");
    }
    w.flush().await.expect("flush");
    assert_eq!(w.sent(), 20);
    assert!(accepted.load(Ordering::SeqCst) >= 2);
    let back = db
        .client()
        .query("SELECT ?fields FROM live_order FINAL ORDER BY id")
        .fetch_all::<OrderRow>()
        .await
        .expect("read back");
    let want: Vec<OrderRow> = (1..=20).map(|i| order(i, 1, 0)).collect();
    assert!(back == want, "all 20 rows, once: got {}", back.len());
}

/// The 18.16 cluster DDL is read by the 18.16 parser itself: sent to the
/// live server (which has no cluster), every statement fails with "cluster
/// not found" (code 170), which the server says only after parsing, never
/// with a syntax error (code 62).
#[tokio::test]
async fn cluster_ddl_for_18_16_parses_on_the_18_16_server() {
    use strata_codegen::clickhouse::{self as ch, DdlOptions, Target};
    let m = model("fixtures/valid/analytics.yaml");
    let opts = DdlOptions::default().with_target(Target {
        major: 18,
        minor: 16,
    });
    let lake = m.store_id("lake").unwrap();
    let statements: Vec<String> = ch::tables(&m)
        .into_iter()
        .filter(|&(store, _)| store == lake)
        .flat_map(|(store, e)| ch::statements(&m[store], e, &opts))
        .collect();
    assert!(statements.len() >= 3, "{statements:#?}");
    let http = reqwest::Client::new();
    for st in &statements {
        assert!(st.contains("ON CLUSTER"), "{st}");
        let body = http
            .post(strata_tests::support::clickhouse_url())
            .body(st.clone())
            .send()
            .await
            .expect("ClickHouse 18.16 at CLICKHOUSE_URL")
            .text()
            .await
            .unwrap();
        assert!(
            body.starts_with("Code: 170") && body.contains("shop_cluster"),
            "expected only the missing cluster, got:\n{body}\nfor:\n{st}"
        );
    }
}
