//! Every writer's `write` error says whether the row or point was taken
//! (`taken()`), and a caller who writes again exactly the ones not taken,
//! as the docs advise, stores each once: through a gate (a loopback proxy)
//! in front of the real VictoriaMetrics and ClickHouse 18.16 servers,
//! closed while the writes fail and opened for the retries.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;
use strata_sdk::clickhouse::{Writer, WriterConfig};
use strata_sdk::elasticsearch;
use strata_sdk::influx;

use strata_sdk::influx::{EncodeError, Line, Point};
use strata_tests::support::{clickhouse_url, model, order_row, ClickHouseDb, Gate, GateMode};

fn victoria_url() -> String {
    std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into())
}

struct P {
    run: String,
    i: i64,
}

impl Point for P {
    const MEASUREMENT: &'static str = "strata_taken";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("run", &self.run)?;
        line.field("v", &self.i)?;
        line.time(DateTime::from_timestamp_millis(self.base() + self.i).unwrap())
    }
}

impl P {
    fn base(&self) -> i64 {
        // Whole minutes in the recent past, the same for every point of a run.
        1_700_000_000_000
    }
}

#[tokio::test]
async fn influx_points_not_taken_written_again_are_stored_once() {
    let run = format!("r{}", uuid::Uuid::new_v4().simple());
    let gate = Gate::new(&victoria_url(), GateMode::Closed).await;
    let config = influx::WriterConfig::new(&gate.url, "o", "b")
        .with_max_rows(5)
        .with_buffer_bytes(400)
        .with_retry(strata_sdk::writer::Retry::new(
            1,
            Duration::from_millis(1),
            Duration::from_millis(1),
        ));
    let mut w = influx::Writer::new(config);
    let (mut taken_errors, mut again) = (0, Vec::new());
    for i in 0..40 {
        match w
            .write(&P {
                run: run.clone(),
                i,
            })
            .await
        {
            Ok(()) => {}
            Err(e) if e.taken() => {
                assert!(matches!(e, influx::Error::Unavailable { .. }), "{e}");
                taken_errors += 1;
            }
            Err(e) => {
                assert!(matches!(e, influx::Error::Backlog { .. }), "{e}");
                again.push(i);
            }
        }
    }
    assert!(
        taken_errors > 0 && !again.is_empty(),
        "{taken_errors} {again:?}"
    );
    assert_eq!(
        w.pending() + again.len(),
        40,
        "every point is held or handed back, none both"
    );
    gate.set(GateMode::Open);
    for i in again {
        w.write(&P {
            run: run.clone(),
            i,
        })
        .await
        .expect("taken now");
    }
    w.flush().await.expect("the server is back");
    assert_eq!(w.sent(), 40);

    let http = reqwest::Client::new();
    http.post(format!("{}/internal/force_flush", victoria_url()))
        .send()
        .await
        .unwrap();
    let text = http
        .post(format!("{}/api/v1/export", victoria_url()))
        .form(&[(
            "match[]",
            format!("{{__name__=\"strata_taken_v\",run=\"{run}\"}}"),
        )])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(text.trim()).expect("one series");
    let values: Vec<i64> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as i64)
        .collect();
    assert_eq!(values.len(), 40, "each point once: {values:?}");
    assert_eq!(
        values.iter().copied().collect::<BTreeSet<_>>(),
        (0..40).collect::<BTreeSet<_>>()
    );
}

#[tokio::test]
async fn clickhouse_rows_not_taken_written_again_are_stored_once() {
    let db = ClickHouseDb::new();
    db.create_tables(&model("../schema"), "analytics", |e| {
        e.name.schema == "Order"
    })
    .await;
    let gate = Gate::new(&clickhouse_url(), GateMode::Closed).await;
    let config =
        WriterConfig::default()
            .with_max_rows(5)
            .with_retry(strata_sdk::writer::Retry::new(
                0,
                Duration::from_millis(1),
                Duration::from_millis(1) * 1024,
            ));
    let mut w = Writer::new(strata_sdk::clickhouse::client(&gate.url, &db.name), config);
    let (mut taken_errors, mut again) = (0, Vec::new());
    for i in 1..=40u128 {
        match w.write(&order_row(i, 1, 0)).await {
            Ok(()) => {}
            Err(e) if e.taken() => {
                assert!(
                    matches!(e, strata_sdk::clickhouse::Error::Insert { .. }),
                    "{e}"
                );
                taken_errors += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e, strata_sdk::clickhouse::Error::Backlog { .. }),
                    "{e}"
                );
                again.push(i);
            }
        }
    }
    assert!(
        taken_errors > 0 && !again.is_empty(),
        "{taken_errors} {again:?}"
    );
    assert_eq!(w.pending() + again.len(), 40);
    gate.set(GateMode::Open);
    for i in again {
        w.write(&order_row(i, 1, 0)).await.expect("taken now");
    }
    w.flush().await.expect("the server is back");
    let (n, distinct) = db
        .client()
        .query("SELECT count(), uniqExact(id) FROM live_order")
        .fetch_one::<(u64, u64)>()
        .await
        .unwrap();
    assert_eq!((n, distinct), (40, 40), "each row once");
}

#[tokio::test]
async fn a_document_refused_for_a_backlog_is_not_taken() {
    let gate = Gate::new("http://127.0.0.1:9", GateMode::Closed).await;
    let config = elasticsearch::WriterConfig::new(&gate.url)
        .with_max_bytes(1)
        .with_retry(strata_sdk::writer::Retry::new(
            0,
            Duration::from_millis(1),
            Duration::from_millis(1) * 1024,
        ));
    let mut bulk = elasticsearch::Writer::new(config);
    let doc = |n: i64| serde_json::json!({ "n": n });
    // The first document is buffered; the second needs the first sent.
    bulk.write(&Doc(doc(1))).await.expect("buffered");
    match bulk.write(&Doc(doc(2))).await {
        Err(e @ elasticsearch::Error::Backlog { .. }) => assert!(!e.taken(), "{e}"),
        other => panic!("expected a backlog, got {other:?}"),
    }
    assert_eq!(bulk.pending(), 1, "the refused document is not held");
}

#[derive(serde::Serialize)]
struct Doc(Value);

impl strata_sdk::elasticsearch::Document for Doc {
    const ALIAS: &'static str = "a";
    const INDEX: &'static str = "a_v1";
    fn id(&self) -> String {
        self.0["n"].to_string()
    }
    fn version(&self) -> Option<u64> {
        None
    }
}
