//! The Grafana dashboard `strata generate` writes (`grafana/dashboard.json`):
//! it loads as JSON, every query names only metrics the SDK really emits
//! (`strata_sdk::metrics::every_metric`, with Prometheus' `_bucket`,
//! `_count` and `_sum` series of a histogram), and it has the panels the
//! schema's stores call for.

use std::collections::BTreeSet;

use serde_json::Value;
use strata_sdk::metrics::Kind;

fn dashboard(schema: &str) -> Value {
    let model = strata_tests::support::model(schema);
    let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
    let text = files.get("grafana/dashboard.json").expect("a dashboard");
    serde_json::from_str(text).expect("the dashboard is JSON")
}

/// The series names Prometheus shows for what the SDK records.
fn emitted() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, kind) in strata_sdk::metrics::every_metric() {
        match kind {
            Kind::Histogram => {
                for s in ["_bucket", "_count", "_sum"] {
                    out.insert(format!("{name}{s}"));
                }
            }
            _ => {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// Every `strata_…` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("strata_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn exprs(d: &Value) -> Vec<(String, String)> {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect()
}

#[test]
fn every_query_names_a_metric_the_sdk_emits() {
    let emitted = emitted();
    for schema in ["../schema", "fixtures/valid/ops_replicas.yaml"] {
        let d = dashboard(schema);
        let exprs = exprs(&d);
        assert!(exprs.len() >= 10, "{schema}: {} queries", exprs.len());
        for (title, expr) in &exprs {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: `{expr}` names no metric");
            for n in names {
                assert!(
                    emitted.contains(&n),
                    "{schema}: {title}: `{n}` is not emitted by the SDK"
                );
            }
        }
    }
}

#[test]
fn the_panels_follow_the_schema() {
    let d = dashboard("../schema");
    assert_eq!(d["uid"], "strata-data-layer");
    let titles: Vec<String> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    for t in [
        "Requests per second by entity and operation",
        "Statement latency p50 / p95 / p99",
        "Errors per second by kind",
        "Pool saturation (in use / max)",
        "Stores up (1 = serving)",
    ] {
        assert!(titles.iter().any(|x| x == t), "no panel `{t}`: {titles:?}");
    }
    // The trading schema's postgres store filters on its own entities and
    // has writer rows for its ClickHouse, Elasticsearch and InfluxDB stores.
    let all: String = exprs(&d).into_iter().map(|(_, e)| e).collect();
    assert!(all.contains("store=\"main\""), "{all}");
    assert!(all.contains("Decision"), "{all}");
    for w in ["clickhouse", "elasticsearch", "influxdb"] {
        assert!(all.contains(&format!("writer=\"{w}\"")), "{w}");
    }
    // No replicas in the trading schema: no replica panels; the fixture with
    // replicas has them.
    assert!(!titles.iter().any(|t| t == "Replica replay lag"));
    let with = dashboard("fixtures/valid/ops_replicas.yaml");
    let titles: Vec<&str> = with["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Replica replay lag"), "{titles:?}");
    // Panels sit on the 24-column grid without overlapping.
    let mut cells = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        let g = &p["gridPos"];
        let key = (g["y"].as_u64().unwrap(), g["x"].as_u64().unwrap());
        assert!(cells.insert(key), "two panels at {key:?}");
        assert!(g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24);
    }
}

/// Every query parses and runs on a real PromQL engine: VictoriaMetrics'
/// `/api/v1/query` (MetricsQL, a superset of PromQL), with Grafana's
/// `$__rate_interval` as `1m`.
#[tokio::test]
async fn every_query_runs_on_a_promql_engine() {
    let url = std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into());
    let http = reqwest::Client::new();
    for (title, expr) in exprs(&dashboard("../schema")) {
        let q = expr.replace("$__rate_interval", "1m");
        let resp = http
            .get(format!("{url}/api/v1/query"))
            .query(&[("query", q.as_str())])
            .send()
            .await
            .expect("VictoriaMetrics answers (scripts/services.sh starts it)");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(
            status.is_success() && body["status"] == "success",
            "{title}: `{q}`: {status} {body}"
        );
    }
}
