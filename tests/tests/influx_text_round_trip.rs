//! Text with line protocol's special characters, written by the SDK writer
//! to a real InfluxDB 1.6 (INFLUX_V1_URL, default http://127.0.0.1:8186; its
//! parser is InfluxDB's own) and to VictoriaMetrics (VICTORIA_URL): every
//! tag value the encoder accepts reads back byte-identical from both, what
//! it cannot carry is refused before anything is sent, and a batch InfluxDB
//! refuses in part loses none of its good points.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use strata_sdk::influx;
use strata_sdk::influx::{EncodeError, Line, Point};

fn influx_url() -> String {
    std::env::var("INFLUX_V1_URL").unwrap_or_else(|_| "http://127.0.0.1:8186".into())
}

fn victoria_url() -> String {
    std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into())
}

/// Tag values every reader keeps as they are: backslashes before ordinary
/// characters, separators that are escaped, quotes, `#`, non-ASCII.
const TRICKY: &[&str] = &[
    "C:\\temp",
    "a\\tb",
    "x=y, z",
    " lead and trail ",
    "é\\é",
    "q\"q'",
    "#hash",
    "=",
    ",",
    "\\x\\y",
    "ü/ß\\ü",
];

/// A point of measurement `strata_text` with a run tag, a free tag and a
/// string and a float field.
struct T {
    run: String,
    mount: String,
    note: String,
    v: f64,
    at: DateTime<Utc>,
}

impl Point for T {
    const MEASUREMENT: &'static str = "strata_text";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("mount", &self.mount)?;
        line.tag("run", &self.run)?;
        line.field("note", &self.note)?;
        line.field("v", &self.v)?;
        line.time(self.at)
    }
}

/// Creates database `db` and waits until InfluxDB lists it: CREATE DATABASE
/// statements run at once by the tests of this file were seen to be lost
/// (InfluxDB 1.6 answered 200, then 404 on the first write), so creation is
/// one at a time and checked.
async fn create_database(db: &str) {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    let http = reqwest::Client::new();
    for _ in 0..20 {
        http.post(format!("{}/query", influx_url()))
            .form(&[("q", format!("CREATE DATABASE \"{db}\""))])
            .send()
            .await
            .expect("InfluxDB 1.6 answers (start it with scripts/services.sh)")
            .error_for_status()
            .unwrap();
        let listed: Value = http
            .post(format!("{}/query", influx_url()))
            .form(&[("q", "SHOW DATABASES")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed.to_string().contains(db) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("InfluxDB did not create database {db}");
}

/// Drops a test's database (its name is unique to the run).
async fn drop_database(db: &str) {
    let _ = reqwest::Client::new()
        .post(format!("{}/query", influx_url()))
        .form(&[("q", format!("DROP DATABASE \"{db}\""))])
        .send()
        .await;
}

/// `SELECT <what> FROM strata_text` on InfluxDB 1.6: the rows as JSON arrays.
async fn influx_rows(db: &str, what: &str) -> Vec<Vec<Value>> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/query", influx_url()))
        .query(&[
            ("db", db),
            ("q", &format!("SELECT {what} FROM strata_text")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Some(values) = v["results"][0]["series"][0]["values"].as_array() else {
        return Vec::new();
    };
    values
        .iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect()
}

fn points(run: &str, base: i64) -> Vec<T> {
    TRICKY
        .iter()
        .enumerate()
        .map(|(i, m)| T {
            run: run.into(),
            mount: m.to_string(),
            note: format!("{m} \"quoted\" \\ ends\\"),
            v: i as f64 + 0.5,
            at: DateTime::from_timestamp_millis(base + i as i64).unwrap(),
        })
        .collect()
}

#[tokio::test]
async fn tricky_tag_values_read_back_byte_identical_from_influxdb_and_victoria() {
    let run = format!("r{}", uuid::Uuid::new_v4().simple());
    let base = Utc::now().timestamp_millis() - 60_000;
    create_database(&run).await;
    let mut influx = influx::Writer::new(influx::WriterConfig::v1(influx_url(), &run));
    let mut victoria = influx::Writer::new(influx::WriterConfig::new(victoria_url(), "o", "b"));
    for p in points(&run, base) {
        influx.write(&p).await.expect("InfluxDB takes it");
        victoria.write(&p).await.expect("VictoriaMetrics takes it");
    }
    influx
        .flush()
        .await
        .expect("InfluxDB 1.6 accepts every line");
    victoria
        .flush()
        .await
        .expect("VictoriaMetrics accepts every line");

    let want: BTreeSet<String> = TRICKY.iter().map(|s| s.to_string()).collect();
    let rows = influx_rows(&run, "mount, note, v").await;
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| r[1].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want, "InfluxDB 1.6 tag values");
    for r in &rows {
        let m = r[1].as_str().unwrap();
        assert_eq!(r[2], format!("{m} \"quoted\" \\ ends\\"), "string field");
    }

    let http = reqwest::Client::new();
    http.post(format!("{}/internal/force_flush", victoria_url()))
        .send()
        .await
        .unwrap();
    let text = http
        .post(format!("{}/api/v1/export", victoria_url()))
        .form(&[(
            "match[]",
            format!("{{__name__=\"strata_text_v\",run=\"{run}\"}}"),
        )])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let got: BTreeSet<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["metric"]["mount"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(got, want, "VictoriaMetrics tag values");
    drop_database(&run).await;
}

#[tokio::test]
async fn text_the_readers_disagree_on_is_refused_before_anything_is_sent() {
    let run = format!("r{}", uuid::Uuid::new_v4().simple());
    create_database(&run).await;
    let mut w = influx::Writer::new(influx::WriterConfig::v1(influx_url(), &run));
    let at = Utc::now();
    for mount in ["C:\\", "C:\\\\", "tab\\\\there", "a\\ b", "a\tb", ""] {
        let p = T {
            run: run.clone(),
            mount: mount.into(),
            note: "n".into(),
            v: 1.0,
            at,
        };
        match w.write(&p).await {
            Err(influx::Error::Encode(EncodeError::Unrepresentable { field, .. }))
            | Err(influx::Error::Encode(EncodeError::EmptyTag(field))) => {
                assert_eq!(field, "mount", "{mount:?}")
            }
            other => panic!("{mount:?} gave {other:?}"),
        }
    }
    assert_eq!(w.pending(), 0);
    w.flush().await.unwrap();
    assert!(influx_rows(&run, "v").await.is_empty());
    drop_database(&run).await;
}

/// A point whose `v` is an integer, where the others' is a float: InfluxDB
/// refuses it (field type conflict, HTTP 400) and writes the rest.
struct Mixed {
    i: i64,
    int: bool,
}

impl Point for Mixed {
    const MEASUREMENT: &'static str = "strata_text";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("run", &"mixed".to_string())?;
        if self.int {
            line.field("v", &self.i)?;
        } else {
            line.field("v", &(self.i as f64 + 0.25))?;
        }
        line.time(DateTime::from_timestamp_nanos(1_000_000_000 + self.i))
    }
}

#[tokio::test]
async fn a_batch_influxdb_refuses_in_part_keeps_every_good_point() {
    let run = format!("r{}", uuid::Uuid::new_v4().simple());
    create_database(&run).await;
    // Establish `v` as a float, then send a batch with two integer points.
    let config = influx::WriterConfig::v1(influx_url(), &run)
        .with_max_rows(1_000)
        .with_retry(strata_sdk::writer::Retry::new(
            1,
            Duration::from_millis(10),
            Duration::from_millis(10),
        ));
    let mut w = influx::Writer::new(config);
    w.write(&Mixed { i: 0, int: false }).await.unwrap();
    w.flush().await.unwrap();
    for i in 1..=20 {
        let int = i == 7 || i == 13;
        w.write(&Mixed { i, int }).await.unwrap();
    }
    match w.flush().await {
        Err(influx::Error::Rejected {
            status,
            points,
            lines,
            body,
        }) => {
            assert_eq!((status, points), (400, 2), "{body}");
            let lines = std::str::from_utf8(&lines).unwrap();
            assert_eq!(
                lines,
                "strata_text,run=mixed v=7i 1000000007\nstrata_text,run=mixed v=13i 1000000013\n"
            );
        }
        other => panic!("expected the two integer points handed back, got {other:?}"),
    }
    assert_eq!((w.pending(), w.sent()), (0, 19));
    let rows = influx_rows(&run, "v").await;
    let got: Vec<f64> = rows.iter().map(|r| r[1].as_f64().unwrap()).collect();
    let want: Vec<f64> = (0..=20)
        .filter(|i| *i != 7 && *i != 13)
        .map(|i| i as f64 + 0.25)
        .collect();
    assert_eq!(got, want, "every good point once, none lost");
    drop_database(&run).await;
}
