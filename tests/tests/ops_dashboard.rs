//! The Grafana dashboard `strata generate` writes (`grafana/dashboard.json`):
//! it loads as JSON, every query names only metrics the SDK really emits
//! (`strata_sdk::metrics::every_metric`, with Prometheus' `_bucket`,
//! `_count` and `_sum` series of a histogram), each panel's unit is the unit
//! of every query in it, and it has the panels the schema's stores call for.

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

/// The trading schema and every valid fixture.
fn schemas() -> Vec<String> {
    let mut out = vec!["../schema".to_string()];
    let mut fixtures: Vec<String> = std::fs::read_dir("fixtures/valid")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    fixtures.sort();
    out.extend(fixtures);
    out
}

/// The Grafana unit of what a query computes, from the metric's name
/// (Prometheus names carry the unit: `_seconds`, `_bytes`, `_total`) and
/// the function over it.
fn unit_of(expr: &str) -> &'static str {
    let names = metric_names(expr);
    let n = names[0].as_str();
    if expr.contains("histogram_quantile(") {
        assert!(
            n.ends_with("_seconds_bucket"),
            "`{expr}`: a quantile of what?"
        );
        "s"
    } else if expr.contains(" / ") {
        "percentunit"
    } else if expr.contains("increase(") {
        "short"
    } else if expr.contains("rate(") {
        if n.ends_with("_bytes_total") {
            "Bps"
        } else if n.contains("_rows") {
            "rowsps"
        } else {
            // Events: a counter, or the `_count` of a histogram.
            "reqps"
        }
    } else if n.ends_with("_seconds") {
        "s"
    } else if n.ends_with("_bytes") {
        "bytes"
    } else if n.ends_with("_up") {
        "none"
    } else {
        "short"
    }
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
fn every_panel_has_the_unit_of_its_queries() {
    for schema in schemas() {
        let d = dashboard(&schema);
        for p in d["panels"].as_array().unwrap() {
            if p["type"] == "row" {
                continue;
            }
            let title = &p["title"];
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap();
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                assert_eq!(
                    unit,
                    unit_of(expr),
                    "{schema}: panel {title} (unit `{unit}`) shows `{expr}`"
                );
            }
        }
    }
}

fn row_titles(d: &Value) -> Vec<String> {
    (d["panels"].as_array().unwrap().iter())
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

/// `strata_writer_*` comes only from the application's batch writers: a
/// store only `strata sync run` writes gets a row of what sync applied.
#[test]
fn writer_rows_only_for_stores_the_application_writes() {
    let d = dashboard("fixtures/valid/analytics.yaml");
    let rows = row_titles(&d);
    let all: String = exprs(&d).into_iter().map(|(_, e)| e).collect();
    // `lake` is PageView's home store; `legacy` only a sync target.
    assert!(
        rows.contains(&"clickhouse store `lake` (batch writer)".into()),
        "{rows:?}"
    );
    assert!(
        all.contains("writer=\"clickhouse\", store=\"lake\""),
        "{all}"
    );
    assert!(!all.contains("store=\"legacy\""), "{all}");
    assert!(
        rows.contains(&"clickhouse store `legacy` (filled by `strata sync run`)".into()),
        "{rows:?}"
    );
    assert!(all.contains("target=\"legacy\""), "{all}");
    // The trading schema's `analytics` is only a sync target; `search` holds
    // its entities' `search:` indexes (bulk_config) and `series` is home.
    let d = dashboard("../schema");
    let rows = row_titles(&d);
    assert!(
        rows.contains(&"clickhouse store `analytics` (filled by `strata sync run`)".into()),
        "{rows:?}"
    );
    let all: String = exprs(&d).into_iter().map(|(_, e)| e).collect();
    assert!(!all.contains("writer=\"clickhouse\""), "{all}");
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
    // has writer rows for its Elasticsearch and InfluxDB stores.
    let all: String = exprs(&d).into_iter().map(|(_, e)| e).collect();
    assert!(all.contains("store=\"main\""), "{all}");
    assert!(all.contains("Decision"), "{all}");
    for w in ["elasticsearch", "influxdb"] {
        assert!(all.contains(&format!("writer=\"{w}\"")), "{w}");
    }
    // Dead letters, cache fills (and those refused), sync batches.
    for m in [
        "strata_sync_dead_letters_total",
        "strata_cache_fills_total",
        "strata_cache_fills_refused_total",
        "strata_sync_batches_total",
    ] {
        assert!(all.contains(m), "no panel shows {m}");
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
