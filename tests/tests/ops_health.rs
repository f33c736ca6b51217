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

/// `/health` probed by many clients at once (load balancers, Kubernetes)
/// runs the checks once for all of them, and reuses the report for
/// `max_age`: a store that does not answer sees one connection, not one
/// per probe, and is not flooded.
#[tokio::test]
async fn concurrent_health_probes_share_one_run_of_the_checks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    // A "Redis" that accepts connections and never answers, counting them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    let (_recorder, handle) = strata_sdk::metrics::prometheus_recorder();
    let checks = vec![strata_sdk::health::Check::redis(
        "cache",
        &format!("redis://127.0.0.1:{port}"),
    )];
    let endpoints = strata_sdk::serve::Endpoints::new(handle)
        .with_checks(checks)
        .with_timeout(Duration::from_millis(300))
        .with_max_age(Duration::from_secs(5));
    let probes = (0..50).map(|_| {
        let e = endpoints.clone();
        tokio::spawn(async move { e.health().await })
    });
    for h in futures_util::future::join_all(probes).await {
        let health = h.unwrap();
        assert!(!health.report.ok, "the store never answers: down");
    }
    let n = accepted.load(Ordering::SeqCst);
    assert!(n <= 2, "{n} connections for 50 concurrent probes");
    // Within max_age: no new connection.
    endpoints.health().await;
    assert_eq!(accepted.load(Ordering::SeqCst), n);
    server.abort();
}

/// A Redis Cluster or Sentinel store's URL forms (as the cache takes them)
/// are checked node by node, not refused as "not a redis:// URL".
#[tokio::test]
async fn redis_cluster_urls_are_checked_node_by_node() {
    use std::time::Duration;
    let nodes = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        "redis://127.0.0.1:7100,redis://127.0.0.1:7101,redis://127.0.0.1:7102".into()
    });
    let plus = format!(
        "redis+cluster://{}",
        nodes.replace("redis://", "").replace(' ', "")
    );
    for url in [nodes.clone(), plus] {
        let checks = [strata_sdk::health::Check::redis("cache", &url)];
        let report = strata_sdk::health::run(&checks, Duration::from_secs(2)).await;
        let store = &report.stores[0];
        assert!(report.ok, "{url}: {store:?}");
        assert_eq!(store.servers.len(), 3, "{url}: {store:?}");
        assert!(store.servers.iter().all(|s| s.up), "{url}: {store:?}");
    }
}

/// A Redis URL the cache could not use is down, as the cache's client
/// finds it: a password given to a server that has none (Redis refuses the
/// `AUTH`), a database index the server does not have. The check used to
/// send `AUTH` and `PING` together and take any `+PONG` as up.
#[tokio::test]
async fn a_redis_url_the_cache_cannot_use_is_down() {
    use std::time::Duration;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let host = url.trim_start_matches("redis://").trim_end_matches('/');
    let check = |url: String| async move {
        let checks = [strata_sdk::health::Check::redis("cache", &url)];
        strata_sdk::health::run(&checks, Duration::from_secs(2)).await
    };
    let up = check(format!("redis://{host}/3")).await;
    assert!(up.ok, "{:?}", up.stores[0]);
    for (bad, says) in [
        (format!("redis://:n0t-the-password@{host}"), "AUTH refused"),
        (format!("redis://{host}/99999"), "SELECT refused"),
    ] {
        let report = check(bad.clone()).await;
        let server = &report.stores[0].servers[0];
        assert!(!report.ok && !server.up, "{bad}: {server:?}");
        let error = server.error.as_deref().unwrap_or_default();
        assert!(error.contains(says), "{bad}: {error}");
        assert!(!error.contains("n0t-the-password"), "{error}");
    }
}
