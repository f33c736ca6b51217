//! Metrics and health over HTTP, as a new user meets them: a load on a real
//! PostgreSQL (primary and the streaming replica), VictoriaMetrics and a
//! server that is down, then `/metrics` from `strata_sdk::serve` shows every
//! metric `docs/operations.md` lists, with values that match the load; and
//! `/health` turns 503 when a required store is down.
//!
//! One test per process owns the global recorder (a test binary of its own).

mod ops_support;

#[allow(dead_code)]
mod trading {
    include!(concat!(env!("OUT_DIR"), "/trading/influx.rs"));
}

use std::collections::BTreeSet;
use std::time::Duration;

use ops_support::{replica_url, wait_for_replica};
use strata_sdk::health::Check;
use strata_sdk::postgres::{PoolConfig, ReplicaPolicy, Replicated};
use strata_sdk::serve::Endpoints;
use strata_sdk::Error;
use strata_tests::fixtures::ops_replicas::entities::{NewNote, Note};
use strata_tests::support::{model, order_row, ClickHouseDb, PgDatabase};

const DDL: &str = r#"CREATE TABLE "ops_notes" ("id" bigint PRIMARY KEY, "body" text NOT NULL);"#;

/// Every metric name `docs/operations.md` lists in its tables.
fn documented() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("| `strata_"))
        .map(|rest| format!("strata_{}", rest.split('`').next().unwrap()))
        .collect()
}

#[test]
fn the_document_lists_exactly_what_the_sdk_records() {
    let recorded: BTreeSet<String> = strata_sdk::metrics::every_metric()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(documented(), recorded);
}

/// The value of the first sample of `name` whose labels include all of
/// `labels` (`key="value"` pairs).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (labelset, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labelset.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

fn note(id: i64) -> NewNote {
    NewNote {
        id,
        body: format!("note {id}"),
    }
}

#[tokio::test]
async fn metrics_and_health_after_a_load() {
    let prometheus = strata_sdk::metrics::install_prometheus().unwrap();
    let db = PgDatabase::new().await;
    sqlx::raw_sql(DDL)
        .execute(&mut db.connect().await)
        .await
        .unwrap();
    wait_for_replica(&replica_url(&db.name), "ops_notes").await;
    let config = PoolConfig {
        store: "ops".into(),
        replicas: vec![replica_url(&db.name)],
        max: Some(4),
        ..PoolConfig::new(db.url.clone())
    };
    let r = Replicated::connect(
        &config,
        ReplicaPolicy::default().with_wait(Duration::from_secs(5)),
    )
    .await
    .unwrap();

    // Statements: 20 inserts, one conflict, reads routed by token.
    for id in 0..20 {
        Note::insert(r.primary(), &note(id)).await.unwrap();
    }
    let e = Note::insert(r.primary(), &note(0)).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    let t = r.token().await.unwrap();
    for id in 0..20 {
        let got = r.read_after(&t, |p| Note::get(p, &id)).await.unwrap();
        assert_eq!(got.id, id);
    }
    // Transactions: a batch commits, a batch with a missing key rolls back.
    let rows: Vec<NewNote> = (100..150).map(note).collect();
    Note::insert_many(r.primary(), rows).await.unwrap();
    let missing = Note {
        id: 9_999,
        body: "x".into(),
    };
    let e = Note::update_many(r.primary(), vec![missing])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BatchIncomplete { .. }), "{e:?}");
    // Transactions of the caller's own (`Replicated::begin`, a `Tx`): one
    // commits, one rolls back, one is dropped unfinished (rolled back).
    let mut tx = r.begin().await.unwrap();
    Note::insert(&mut tx, &note(300)).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = r.begin().await.unwrap();
    Note::insert(&mut tx, &note(301)).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = r.begin().await.unwrap();
    Note::insert(&mut tx, &note(302)).await.unwrap();
    drop(tx);
    assert!(Note::get(r.primary(), &300).await.is_ok());
    for id in [301, 302] {
        let e = Note::get(r.primary(), &id).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{id}: {e:?}");
    }
    // An acquire timeout on a pool of one held connection.
    let tiny = PoolConfig {
        store: "ops".into(),
        max: Some(1),
        acquire_timeout_ms: Some(200),
        ..PoolConfig::new(db.url.clone())
    }
    .connect()
    .await
    .unwrap();
    let held = tiny.acquire().await.unwrap();
    let e = Note::count(&tiny).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    drop(held);

    // Batch writers: points to VictoriaMetrics, and to a server that is down.
    let victoria = std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into());
    let mut w = strata_sdk::influx::Writer::new(
        strata_sdk::influx::WriterConfig::new(victoria, "deepalpha", "ops_metrics")
            .with_store("series"),
    );
    let point = |i: i64| trading::series::PerformanceMetricPoint {
        ts: chrono::Utc::now(),
        strategy: "ops".into(),
        metric: "pnl".into(),
        value: i as f64,
    };
    for i in 0..30 {
        w.write(&point(i)).await.unwrap();
    }
    w.flush().await.unwrap();
    let retry =
        strata_sdk::writer::Retry::new(2, Duration::from_millis(5), Duration::from_millis(10));
    let mut down = strata_sdk::influx::Writer::new(
        strata_sdk::influx::WriterConfig::new("http://127.0.0.1:9", "o", "down_bucket")
            .with_retry(retry),
    );
    down.write(&point(1)).await.unwrap();
    assert!(down.flush().await.is_err());

    // A ClickHouse writer of a generated row type: its store label comes
    // from the row type (`Table::STORE`), with no `with_store`.
    let ch = ClickHouseDb::new();
    ch.create_tables(&model("../schema"), "analytics", |e| {
        e.name.schema == "Order"
    })
    .await;
    let mut orders =
        strata_sdk::clickhouse::Writer::<deepalpha_db::clickhouse::analytics::OrderRow>::new(
            ch.client(),
            strata_sdk::clickhouse::WriterConfig::default(),
        );
    for i in 1..=5u128 {
        orders.write(&order_row(i, 1, 0)).await.unwrap();
    }
    orders.flush().await.unwrap();
    // The endpoints.
    let checks = vec![
        Check::postgres("ops", &config),
        Check::redis("cache", "${REDIS_URL:redis://127.0.0.1:6379}"),
    ];
    let endpoints = Endpoints::new(prometheus.clone())
        .with_pools(vec![r.clone()])
        .with_checks(checks);
    let (addr, server) = strata_sdk::serve::spawn("127.0.0.1:0".parse().unwrap(), endpoints)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let report: serde_json::Value = health.json().await.unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["stores"][0]["servers"][1]["role"], "replica",
        "{report}"
    );

    let resp = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    // The cache's and change capture's metrics need their own loads:
    // cache_metrics.rs and sync_metrics.rs check them the same way.
    let own_load = |n: &String| n.starts_with("strata_cache_") || n.starts_with("strata_sync_");
    for name in documented().into_iter().filter(|n| !own_load(n)) {
        assert!(
            text.contains(&format!("\n{name}")),
            "/metrics lacks {name}:\n{text}"
        );
    }
    let ops = [("store", "ops"), ("entity", "Note")];
    let v = |name: &str, extra: &[(&str, &str)]| {
        let labels: Vec<(&str, &str)> = ops.iter().chain(extra).copied().collect();
        sample(&text, name, &labels).unwrap_or_else(|| panic!("no {name} {extra:?}:\n{text}"))
    };
    assert_eq!(
        v("strata_statement_rows_total", &[("operation", "insert")]),
        23.0,
        "20 inserts, and one in each of the three transactions"
    );
    assert_eq!(
        v(
            "strata_statement_rows_total",
            &[("operation", "insert_many")]
        ),
        50.0
    );
    assert_eq!(
        v(
            "strata_statement_errors_total",
            &[("operation", "insert"), ("kind", "conflict")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "strata_statement_duration_seconds_count",
            &[("operation", "insert")]
        ),
        24.0
    );
    assert_eq!(
        v("strata_transactions_total", &[("outcome", "committed")]),
        1.0
    );
    assert_eq!(
        v("strata_transactions_total", &[("outcome", "rolled_back")]),
        1.0
    );
    // Errors are counted wherever they arise: a missing row (the two gets
    // after the rolled-back transactions), a pool timeout.
    assert_eq!(
        v(
            "strata_statement_errors_total",
            &[("operation", "find"), ("kind", "not_found")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "strata_statement_errors_total",
            &[("operation", "count"), ("kind", "timeout")]
        ),
        1.0
    );
    let own = |outcome: &str| {
        let labels = [("store", "ops"), ("entity", "*"), ("outcome", outcome)];
        sample(&text, "strata_transactions_total", &labels)
    };
    assert_eq!(own("committed"), Some(1.0), "{text}");
    assert_eq!(own("rolled_back"), Some(2.0), "{text}");
    let store = [("store", "ops")];
    assert_eq!(
        sample(&text, "strata_pool_acquire_timeouts_total", &store),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "strata_pool_connections_max",
            &[("store", "ops"), ("server", "primary")]
        ),
        Some(4.0)
    );
    let replica = format!("127.0.0.1:5433/{}", db.name);
    let rep = [("store", "ops"), ("replica", replica.as_str())];
    assert_eq!(sample(&text, "strata_replica_up", &rep), Some(1.0));
    let reached = [
        ("store", "ops"),
        ("target", "replica"),
        ("reason", "token_reached"),
    ];
    let to_primary = [("store", "ops"), ("target", "primary")];
    let routed = sample(&text, "strata_read_routes_total", &reached).unwrap_or(0.0)
        + sample(&text, "strata_read_routes_total", &to_primary).unwrap_or(0.0);
    assert_eq!(routed, 20.0, "every token read was routed once");
    let vm = [
        ("writer", "influxdb"),
        ("store", "series"),
        ("target", "ops_metrics"),
    ];
    assert_eq!(sample(&text, "strata_writer_rows_total", &vm), Some(30.0));
    let ch_rows = [
        ("writer", "clickhouse"),
        ("store", "analytics"),
        ("target", "live_order"),
    ];
    assert_eq!(
        sample(&text, "strata_writer_rows_total", &ch_rows),
        Some(5.0)
    );
    // gzip-compressed (the writer's default): smaller than the lines, not empty.
    assert!(sample(&text, "strata_writer_bytes_total", &vm).unwrap() > 100.0);
    // No `with_store`: the writer's kind is its store label.
    let dead = [
        ("writer", "influxdb"),
        ("store", "influxdb"),
        ("target", "down_bucket"),
        ("kind", "unavailable"),
    ];
    assert_eq!(
        sample(&text, "strata_writer_failures_total", &dead),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "strata_writer_backlog_rows",
            &[("target", "down_bucket")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "strata_writer_retries_total",
            &[("writer", "influxdb"), ("store", "influxdb")]
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        sample(
            &text,
            "strata_health_up",
            &[("store", "ops"), ("kind", "postgres")]
        ),
        Some(1.0)
    );
    // Histograms have the documented buckets; no label holds a value or key.
    assert!(text.contains("le=\"0.0001\""), "{text}");
    assert!(!text.contains("note 1"), "a value leaked into a label");
    server.abort();

    // A required store that is down: 503 and `ok: false`.
    let endpoints = Endpoints::new(prometheus)
        .with_checks(vec![Check::redis("cache", "redis://127.0.0.1:9")])
        .with_timeout(Duration::from_millis(500));
    let (addr, server) = strata_sdk::serve::spawn("127.0.0.1:0".parse().unwrap(), endpoints)
        .await
        .unwrap();
    // A scrape alone sets `strata_health_up` (it used to be set only when
    // someone asked `/health`).
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(
            &text,
            "strata_health_up",
            &[("store", "cache"), ("kind", "redis")]
        ),
        Some(0.0),
        "{text}"
    );
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let report: serde_json::Value = health.json().await.unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["stores"][0]["status"], "down");
    server.abort();
}
