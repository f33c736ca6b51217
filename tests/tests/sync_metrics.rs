//! `strata sync run --metrics-addr`: while the sync runs, `/metrics` shows
//! change capture's metrics with the load's values and `/health` reports
//! the schema's stores; SIGTERM stops both.

mod pg_common;
mod sync_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pg_common::strata_bin;
use sync_common::{insert_accounts, metrics_addr, Fixture, SCHEMA};

fn value(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn sync_run_serves_metrics_and_health() {
    let f = Fixture::new(SCHEMA).await;
    insert_accounts(&mut f.conn().await, 1, 500).await;
    let dir = std::env::temp_dir().join(format!("strata_sync_metrics_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();

    let mut child = Command::new(strata_bin())
        .args([
            "sync",
            "run",
            schema.to_str().unwrap(),
            "--database-url",
            &f.pg.url,
        ])
        .args([
            "--clickhouse-database",
            &f.ch.name,
            // A host name, not only an IP (issue 9).
            "--metrics-addr",
            "localhost:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata sync run");
    // The bound address is printed on stderr.
    let addr = metrics_addr(&mut child);

    f.caught_up(Duration::from_secs(60)).await;
    insert_accounts(&mut f.conn().await, 1_000, 200).await;
    f.caught_up(Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let start = Instant::now();
    let text = loop {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .unwrap();
        // The position is recorded every 2 s.
        if text.contains("strata_sync_confirmed_lsn") || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let snap = value(&text, "strata_sync_snapshot_rows_total", "main_analytics");
    assert_eq!(snap, Some(500.0), "{text}");
    let applied = value(
        &text,
        "strata_sync_rows_applied_total",
        "target=\"analytics\"",
    );
    assert_eq!(applied, Some(700.0), "snapshot 500 + streamed 200: {text}");
    assert!(
        value(&text, "strata_sync_confirmed_lsn", "main_analytics").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert!(
        text.contains("strata_sync_batch_duration_seconds_bucket"),
        "{text}"
    );

    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .expect("/health answers");
    let status = health.status();
    let report: serde_json::Value = health.json().await.unwrap();
    assert_eq!(status, 200, "{report}");
    let stores: Vec<&str> = report["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .filter_map(|s| s["store"].as_str())
        .collect();
    assert!(
        stores.contains(&"main") && stores.contains(&"analytics"),
        "{report}"
    );

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
