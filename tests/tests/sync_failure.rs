//! A pipeline that fails inside a running `strata sync run` (a row its
//! target refuses) is seen at once: the error on stderr with the pipeline's
//! name, `/health` 503 naming it, `strata_sync_up` 0 for it. The other
//! pipeline keeps copying; the process stays up until SIGTERM and then
//! exits 1 (a pipeline failed). See docs/sync.md, "When a pipeline fails".

mod pg_common;
mod sync_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pg_common::strata_bin;
use sync_common::Fixture;

const SCHEMA: &str = r#"
version: 1
stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
  analytics: { kind: clickhouse, url: "${CLICKHOUSE_URL:http://127.0.0.1:8123}", database: sync_test, server_version: "18.16" }
  archive: { kind: clickhouse, url: "${CLICKHOUSE_URL:http://127.0.0.1:8123}", database: sync_test, server_version: "18.16" }
entities:
  Loan:
    table: loan
    store: main
    key: id
    fields:
      id: { type: i64 }
      fine: { type: "decimal(8,2)", nullable: true }
  Book:
    table: book
    store: main
    key: id
    fields:
      id: { type: i64 }
      title: { type: string(40) }
sync:
  - { from: Loan, to: analytics }
  - { from: Book, to: archive }
"#;

fn value(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Waits up to `secs` for `f` to return `Some`.
async fn until<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what} within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_failed_pipeline_is_reported_at_once_and_the_healthy_one_keeps_running() {
    let model = strata_codegen::compile_str("schema.yaml", SCHEMA).expect("schema compiles");
    let f = Fixture::from_model(model, &["analytics"]).await;
    let mut c = f.conn().await;
    sqlx::raw_sql(
        "INSERT INTO loan VALUES (1, 1.50), (2, NULL); INSERT INTO book VALUES (1, 'Dune')",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let dir = pg_common::TempDir::new("sync_failure");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let common = [
        schema.to_str().unwrap(),
        "--database-url",
        &f.pg.url,
        "--clickhouse-database",
        &f.ch.name,
    ];
    let mut child = Command::new(strata_bin())
        .args(["sync", "run"])
        .args(common)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata sync run");
    let (tx, lines) = mpsc::channel::<String>();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the address on stderr");
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.trim().to_string();
        }
    };
    f.caught_up(Duration::from_secs(60)).await;
    let books = &format!(
        "SELECT count() FROM `{}`.book FINAL WHERE _deleted = 0",
        f.ch.name
    );
    until(60, "the book copied", async || {
        (f.ch_query(books).await.trim() == "1").then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let metrics = async || {
        let r = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .ok()?;
        r.text().await.ok()
    };
    let up = metrics().await.expect("/metrics");
    assert_eq!(
        value(&up, "strata_sync_up", "main_analytics"),
        Some(1.0),
        "{up}"
    );
    assert_eq!(
        value(&up, "strata_sync_up", "main_archive"),
        Some(1.0),
        "{up}"
    );

    // A value the ClickHouse Decimal cannot hold: the analytics pipeline fails.
    sqlx::query("UPDATE loan SET fine = 'NaN' WHERE id = 1")
        .execute(&mut c)
        .await
        .unwrap();
    let said = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the failure on stderr at once");
        if line.starts_with("error: pipeline `main_analytics` failed") {
            break line;
        }
    };
    assert!(
        said.contains("fine") && said.contains("1 other pipeline(s) still running"),
        "{said}"
    );
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let report: serde_json::Value = health.json().await.unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        report["pipelines"]["main_analytics"]["state"], "failed",
        "{report}"
    );
    assert!(
        report["pipelines"]["main_analytics"]["error"]
            .as_str()
            .unwrap()
            .contains("fine"),
        "{report}"
    );
    assert_eq!(
        report["pipelines"]["main_archive"]["state"], "running",
        "{report}"
    );
    let down = metrics().await.expect("/metrics");
    assert_eq!(
        value(&down, "strata_sync_up", "main_analytics"),
        Some(0.0),
        "{down}"
    );
    assert_eq!(
        value(&down, "strata_sync_up", "main_archive"),
        Some(1.0),
        "{down}"
    );

    // The healthy pipeline still copies, and the process is still up.
    sqlx::query("INSERT INTO book VALUES (2, 'Emma')")
        .execute(&mut c)
        .await
        .unwrap();
    until(30, "the new book copied", async || {
        (f.ch_query(books).await.trim() == "2").then_some(())
    })
    .await;
    assert!(child.try_wait().unwrap().is_none(), "the process stays up");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a pipeline failed: exit 1");
    let (code, _, err) =
        pg_common::strata(&[&["sync", "drop"][..], &common[..], &["--to", "archive"]].concat());
    assert_eq!(code, 0, "{err}");
}

/// A ClickHouse server that refuses the generated DDL in a way waiting
/// cannot cure (18.16 does not know `DateTime64`, the default 24.8 DDL's
/// type) ends the run at once with the way out, instead of retrying for
/// 24 hours.
#[tokio::test]
async fn a_target_refusing_the_ddl_for_good_ends_the_run_with_a_hint() {
    let schema = r#"
version: 1
stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
  analytics: { kind: clickhouse, url: "${CLICKHOUSE_URL:http://127.0.0.1:8123}", database: sync_test }
entities:
  Loan:
    table: loan
    store: main
    key: id
    fields:
      id: { type: i64 }
      due: { type: timestamptz }
sync:
  - { from: Loan, to: analytics }
"#;
    let f = Fixture::new(schema).await;
    let (_stop, run) = f.start(strata_sdk::sync::RunOptions::default());
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends instead of retrying")
        .unwrap();
    match out {
        Err(e @ strata_sdk::sync::SyncError::TargetRefused { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("Code: 50") && text.contains("server_version"),
                "{text}"
            );
            assert!(!e.is_transient());
        }
        other => panic!("expected TargetRefused, got {other:?}"),
    }
}

/// A ClickHouse URL that does not parse is refused naming where it came
/// from (the store's `url:` template and its variable), not only
/// "relative URL without a base".
#[test]
fn a_target_url_that_does_not_parse_names_its_template_and_variable() {
    let dir = pg_common::TempDir::new("sync_bad_url");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let out = Command::new(strata_bin())
        .args([
            "sync",
            "verify",
            schema.to_str().unwrap(),
            "--to",
            "analytics",
        ])
        .env("CLICKHOUSE_URL", "not-a-url")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("run strata sync verify");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for said in [
        "store `analytics`",
        "${CLICKHOUSE_URL:http://127.0.0.1:8123}",
        "CLICKHOUSE_URL from the environment",
        "relative URL without a base",
    ] {
        assert!(err.contains(said), "{said} not in: {err}");
    }
}
