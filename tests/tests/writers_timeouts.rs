//! Every network call of the writers ends within its configured timeout:
//! a server that stops answering (a gate that accepts connections and never
//! answers, as a server stopped with `kill -STOP` looks to a client) fails
//! the request with a timeout, the retry policy retries it (the gate counts
//! the attempts), the data stays buffered, and once the server answers
//! again the next flush delivers it once.

use std::time::{Duration, Instant};

use chrono::DateTime;
use serde_json::Value;
use strata_sdk::clickhouse::{Writer, WriterConfig};
use strata_sdk::elasticsearch;
use strata_sdk::influx;

use strata_sdk::influx::{EncodeError, Line, Point};
use strata_tests::support::{clickhouse_url, model, order_row, ClickHouseDb, Gate, GateMode};

const TIMEOUT: Duration = Duration::from_millis(300);

fn victoria_url() -> String {
    std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into())
}

struct P {
    run: String,
    i: i64,
}

impl Point for P {
    const MEASUREMENT: &'static str = "strata_frozen";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("run", &self.run)?;
        line.field("v", &self.i)?;
        line.time(DateTime::from_timestamp_millis(1_700_000_000_000 + self.i).unwrap())
    }
}

#[tokio::test]
async fn a_frozen_influx_server_times_out_is_retried_and_loses_nothing() {
    let run = format!("r{}", uuid::Uuid::new_v4().simple());
    let gate = Gate::new(&victoria_url(), GateMode::Frozen).await;
    let config = influx::WriterConfig::new(&gate.url, "o", "b")
        .with_timeout(TIMEOUT)
        .with_retry(strata_sdk::writer::Retry::new(
            1,
            Duration::from_millis(10),
            Duration::from_millis(10),
        ));
    let mut w = influx::Writer::new(config);
    for i in 0..3 {
        w.write(&P {
            run: run.clone(),
            i,
        })
        .await
        .unwrap();
    }
    let start = Instant::now();
    match w.flush().await {
        Err(influx::Error::Unavailable {
            attempts,
            points,
            last,
        }) => {
            assert_eq!((attempts, points), (2, 3));
            assert!(last.contains("timed out"), "{last}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(gate.accepted() >= 2, "the timeout was retried");
    gate.set(GateMode::Open);
    w.flush().await.expect("the server answers again");
    assert_eq!((w.pending(), w.sent()), (0, 3));

    let http = reqwest::Client::new();
    http.post(format!("{}/internal/force_flush", victoria_url()))
        .send()
        .await
        .unwrap();
    let text = http
        .post(format!("{}/api/v1/export", victoria_url()))
        .form(&[(
            "match[]",
            format!("{{__name__=\"strata_frozen_v\",run=\"{run}\"}}"),
        )])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(text.trim()).expect("one series");
    assert_eq!(v["values"], serde_json::json!([0, 1, 2]));
}

#[tokio::test]
async fn a_frozen_clickhouse_server_times_out_is_retried_and_loses_nothing() {
    let db = ClickHouseDb::new();
    db.create_tables(&model("../schema"), "analytics", |e| {
        e.name.schema == "Order"
    })
    .await;
    let gate = Gate::new(&clickhouse_url(), GateMode::Frozen).await;
    let config =
        WriterConfig::default()
            .with_timeout(TIMEOUT)
            .with_retry(strata_sdk::writer::Retry::new(
                1,
                Duration::from_millis(10),
                Duration::from_millis(10) * 1024,
            ));
    let mut w = Writer::new(strata_sdk::clickhouse::client(&gate.url, &db.name), config);
    for i in 1..=3 {
        w.write(&order_row(i, 1, 0)).await.unwrap();
    }
    let start = Instant::now();
    match w.flush().await {
        Err(strata_sdk::clickhouse::Error::Insert {
            attempts, source, ..
        }) => {
            assert_eq!(attempts, 2);
            assert!(
                matches!(source, clickhouse::error::Error::TimedOut),
                "{source}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(gate.accepted() >= 2, "the timeout was retried");
    assert_eq!(w.pending(), 3);
    gate.set(GateMode::Open);
    w.flush().await.expect("the server answers again");
    let n = db
        .client()
        .query("SELECT count() FROM live_order")
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[derive(serde::Serialize)]
struct Doc(i64);

impl strata_sdk::elasticsearch::Document for Doc {
    const ALIAS: &'static str = "a";
    const INDEX: &'static str = "a_v1";
    fn id(&self) -> String {
        self.0.to_string()
    }
    fn version(&self) -> Option<u64> {
        None
    }
}

#[tokio::test]
async fn a_frozen_elasticsearch_server_times_out_and_keeps_the_documents() {
    let gate = Gate::new("http://127.0.0.1:9", GateMode::Frozen).await;
    let config = elasticsearch::WriterConfig::new(&gate.url)
        .with_timeout(TIMEOUT)
        .with_retry(strata_sdk::writer::Retry::new(
            1,
            Duration::from_millis(10),
            Duration::from_millis(10) * 1024,
        ));
    let mut bulk = elasticsearch::Writer::new(config);
    bulk.write(&Doc(1)).await.unwrap();
    let start = Instant::now();
    match bulk.flush().await {
        Err(elasticsearch::Error::Unavailable {
            attempts,
            docs,
            last,
        }) => {
            assert_eq!((attempts, docs), (2, 1));
            assert!(last.contains("timed out"), "{last}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(gate.accepted() >= 2, "the timeout was retried");
    assert_eq!(bulk.pending(), 1);
}

#[test]
fn the_timeouts_show_in_debug_and_have_a_default() {
    let c = influx::WriterConfig::new("http://x", "o", "b");
    assert!(format!("{c:?}").contains("timeout: 30s"), "{c:?}");
    let b = elasticsearch::WriterConfig::new("http://x");
    assert!(format!("{b:?}").contains("timeout: 30s"), "{b:?}");
    let w = WriterConfig::default();
    assert!(format!("{w:?}").contains("timeout: 30s"), "{w:?}");
}
