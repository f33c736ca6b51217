//! `strata health <schema>` against real servers that are stopped and
//! started again: a private primary and its streaming replica (the shared
//! servers are never stopped), the shared Redis, and a ClickHouse URL
//! nothing listens on marked `--optional`. Green, degraded when the
//! replica stops, red (exit 1) when the primary stops, green again when
//! both return.

mod ops_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ops_support::PrivatePair;
use serde_json::Value;

/// The `strata` binary, built first (`cargo test` does not build another
/// package's binaries).
fn strata_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "strata-codegen", "--bin", "strata"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the strata binary failed");
    dir.join(format!("strata{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `strata health <schema> --json`: exit code and report.
fn health(bin: &Path, schema: &Path, pair: &PrivatePair, table: bool) -> (i32, Value, String) {
    let mut cmd = Command::new(bin);
    cmd.arg("health")
        .arg(schema)
        .args(["--optional", "analytics", "--timeout-ms", "1500"])
        .env("OPS_PRIMARY_URL", pair.primary_url())
        .env("OPS_REPLICA_URL", pair.replica_url());
    if !table {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("strata runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = match table {
        true => Value::Null,
        false => serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")),
    };
    (out.status.code().unwrap_or(-1), report, stdout)
}

fn status<'a>(report: &'a Value, store: &str) -> &'a str {
    report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["store"] == store)
        .unwrap()["status"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn strata_health_turns_red_when_a_store_stops_and_green_when_it_returns() {
    let bin = strata_bin();
    let pair = PrivatePair::start().await;
    let dir = tempdir();
    let schema = dir.join("schema.yaml");
    std::fs::write(
        &schema,
        r#"version: 1
stores:
  main:
    kind: postgres
    url: "${OPS_PRIMARY_URL}"
    replicas: ["${OPS_REPLICA_URL}"]
  cache: { kind: redis, url: "${REDIS_URL:redis://127.0.0.1:6379}" }
  analytics: { kind: clickhouse, url: "http://127.0.0.1:9" }
entities:
  Thing: { store: main, fields: { id: i64 } }
"#,
    )
    .unwrap();

    let (code, r, _) = health(&bin, &schema, &pair, false);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(status(&r, "main"), "up", "{r}");
    assert_eq!(status(&r, "cache"), "up", "{r}");
    assert_eq!(
        status(&r, "analytics"),
        "down",
        "optional, so still ok: {r}"
    );
    let replica = &r["stores"][2]["servers"][1];
    assert_eq!(replica["role"], "replica", "{r}");
    assert!(replica["replay_lag_seconds"].as_f64().is_some(), "{r}");
    assert!(replica["replay_lag_bytes"].as_u64().is_some(), "{r}");
    let (code, _, table) = health(&bin, &schema, &pair, true);
    assert_eq!(code, 0);
    assert!(table.contains("every required store is up"), "{table}");

    pair.stop_replica();
    let (code, r, _) = health(&bin, &schema, &pair, false);
    assert_eq!(code, 0, "reads still work on the primary: {r}");
    assert_eq!(status(&r, "main"), "degraded", "{r}");

    pair.stop_primary();
    let (code, r, _) = health(&bin, &schema, &pair, false);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(status(&r, "main"), "down", "{r}");
    let (code, _, table) = health(&bin, &schema, &pair, true);
    assert_eq!(code, 1);
    assert!(table.contains("DOWN"), "{table}");

    pair.start_primary();
    pair.start_replica();
    let (code, r, _) = health(&bin, &schema, &pair, false);
    assert_eq!(code, 0, "{r}");
    assert_eq!(status(&r, "main"), "up", "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-health-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
