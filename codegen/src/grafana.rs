//! `grafana/dashboard.json`: a Grafana dashboard (JSON model, schema
//! version 39) over the metrics `strata_sdk` records, one row per store of
//! the schema: for a postgres store, request rate, latency percentiles and
//! errors per entity, pool saturation, connection waits and transactions,
//! and (with `replicas:`) replica lag and read routing; for a ClickHouse,
//! Elasticsearch or InfluxDB store the application writes, the batch
//! writers' rows, bytes, failures, backlog and flush time; for one only
//! change capture writes, what `strata sync run` applied to it; for a redis
//! store, the cache hit ratio, loads, fills and refused fills,
//! invalidations and errors of the entities it caches; when the schema has
//! `sync:` rules or cached entities, change capture's lag, throughput and
//! dead letters; and store health. Each panel shows one quantity in one
//! unit (seconds, bytes, a rate, a ratio, 0/1). The metric names are the
//! SDK's (`docs/operations.md`); `tests/tests/ops_dashboard.rs` checks
//! that every query names one the SDK emits, in a panel of its unit.

use serde_json::{json, Value};

use crate::files::{Artifact, Files};
use crate::model::{Model, Store, StoreId, StoreKind, StoreKindTag};

/// Adds `grafana/dashboard.json`.
pub fn generate(model: &Model, files: &mut Files) {
    let mut text = serde_json::to_string_pretty(&dashboard(model)).unwrap_or_default();
    text.push('\n');
    files.add(Artifact::GrafanaDashboard, text);
}

/// Lays panels out on Grafana's 24-column grid, two per row.
struct Grid {
    panels: Vec<Value>,
    y: u32,
    x: u32,
    id: u32,
}

impl Grid {
    fn row(&mut self, title: &str) {
        if self.x > 0 {
            self.y += 8;
            self.x = 0;
        }
        self.id += 1;
        self.panels.push(json!({
            "type": "row", "id": self.id, "title": title, "collapsed": false,
            "gridPos": { "h": 1, "w": 24, "x": 0, "y": self.y },
            "panels": [],
        }));
        self.y += 1;
    }
    fn panel(&mut self, title: &str, unit: &str, targets: &[(&str, String)]) {
        self.id += 1;
        let targets: Vec<Value> = targets
            .iter()
            .enumerate()
            .map(|(i, (legend, expr))| {
                json!({
                    "refId": ((b'A' + i as u8) as char).to_string(),
                    "expr": expr,
                    "legendFormat": legend,
                    "datasource": { "type": "prometheus", "uid": "${datasource}" },
                })
            })
            .collect();
        self.panels.push(json!({
            "type": "timeseries", "id": self.id, "title": title,
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
            "options": { "legend": { "displayMode": "table", "placement": "bottom" } },
            "gridPos": { "h": 8, "w": 12, "x": self.x, "y": self.y },
            "targets": targets,
        }));
        if self.x == 0 {
            self.x = 12;
        } else {
            self.x = 0;
            self.y += 8;
        }
    }
}

fn dashboard(model: &Model) -> Value {
    let mut g = Grid {
        panels: Vec::new(),
        y: 0,
        x: 0,
        id: 0,
    };
    g.row("Health");
    g.panel(
        "Stores up (1 = serving)",
        "none",
        &[(
            "{{store}} ({{kind}})",
            "min by (store, kind) (strata_health_up)".into(),
        )],
    );
    for (id, store) in model.stores_by_id() {
        let s = &store.name;
        match &store.kind {
            StoreKind::Postgres { replicas, .. } => {
                let entities: Vec<&str> = model
                    .entities
                    .iter()
                    .filter(|e| e.store == id)
                    .map(|e| e.name.schema.as_str())
                    .collect();
                let sel = format!("store=\"{s}\", entity=~\"{}\"", entities.join("|"));
                g.row(&format!("PostgreSQL store `{s}`"));
                g.panel(
                    "Requests per second by entity and operation",
                    "reqps",
                    &[(
                        "{{entity}}.{{operation}}",
                        format!("sum by (entity, operation) (rate(strata_statement_duration_seconds_count{{{sel}}}[$__rate_interval]))"),
                    )],
                );
                let q = |p: &str| {
                    format!("histogram_quantile({p}, sum by (le, entity) (rate(strata_statement_duration_seconds_bucket{{{sel}}}[$__rate_interval])))")
                };
                g.panel(
                    "Statement latency p50 / p95 / p99",
                    "s",
                    &[
                        ("p50 {{entity}}", q("0.5")),
                        ("p95 {{entity}}", q("0.95")),
                        ("p99 {{entity}}", q("0.99")),
                    ],
                );
                g.panel(
                    "Errors per second by kind",
                    "reqps",
                    &[(
                        "{{entity}} {{kind}}",
                        format!("sum by (entity, kind) (rate(strata_statement_errors_total{{{sel}}}[$__rate_interval]))"),
                    )],
                );
                g.panel(
                    "Rows per second",
                    "rowsps",
                    &[(
                        "{{entity}}.{{operation}}",
                        format!("sum by (entity, operation) (rate(strata_statement_rows_total{{{sel}}}[$__rate_interval]))"),
                    )],
                );
                let st = format!("store=\"{s}\"");
                g.panel(
                    "Pool saturation (in use / max)",
                    "percentunit",
                    &[
                        (
                            "{{server}}",
                            format!("sum by (server) (strata_pool_connections_in_use{{{st}}}) / sum by (server) (strata_pool_connections_max{{{st}}})"),
                        ),
                        (
                            "idle {{server}}",
                            format!("sum by (server) (strata_pool_connections_idle{{{st}}}) / sum by (server) (strata_pool_connections_max{{{st}}})"),
                        ),
                    ],
                );
                g.panel(
                    "Connection wait p95",
                    "s",
                    &[(
                        "wait p95",
                        format!("histogram_quantile(0.95, sum by (le) (rate(strata_pool_acquire_duration_seconds_bucket{{{st}}}[$__rate_interval])))"),
                    )],
                );
                g.panel(
                    "Acquire timeouts per second",
                    "reqps",
                    &[(
                        "timeouts",
                        format!("sum (rate(strata_pool_acquire_timeouts_total{{{st}}}[$__rate_interval]))"),
                    )],
                );
                g.panel(
                    "Transactions per second",
                    "reqps",
                    &[(
                        "{{outcome}}",
                        format!("sum by (outcome) (rate(strata_transactions_total{{{st}}}[$__rate_interval]))"),
                    )],
                );
                if !replicas.is_empty() {
                    g.panel(
                        "Replica replay lag",
                        "s",
                        &[(
                            "{{replica}}",
                            format!("max by (replica) (strata_replica_lag_seconds{{{st}}})"),
                        )],
                    );
                    g.panel(
                        "Replicas up (1 = usable)",
                        "none",
                        &[(
                            "{{replica}}",
                            format!("min by (replica) (strata_replica_up{{{st}}})"),
                        )],
                    );
                    g.panel(
                        "Reads routed",
                        "reqps",
                        &[(
                            "{{target}} ({{reason}})",
                            format!("sum by (target, reason) (rate(strata_read_routes_total{{{st}}}[$__rate_interval]))"),
                        )],
                    );
                    g.panel(
                        "Causality token wait p95",
                        "s",
                        &[(
                            "{{outcome}}",
                            format!("histogram_quantile(0.95, sum by (le, outcome) (rate(strata_replica_token_wait_seconds_bucket{{{st}}}[$__rate_interval])))"),
                        )],
                    );
                }
            }
            StoreKind::Redis { .. } => cache_panels(&mut g, model, id),
            other => {
                let writer = match other.tag() {
                    StoreKindTag::ClickHouse => "clickhouse",
                    StoreKindTag::Elasticsearch => "elasticsearch",
                    StoreKindTag::InfluxDb => "influxdb",
                    StoreKindTag::Redis | StoreKindTag::Postgres => continue,
                };
                if batch_written(model, id) {
                    writer_panels(&mut g, writer, store);
                } else if model.sync.iter().any(|r| r.store == id) {
                    sync_target_panels(&mut g, writer, store);
                }
            }
        }
    }
    if !model.sync.is_empty() || model.entities.iter().any(|e| e.cache.is_some()) {
        sync_panels(&mut g);
    }
    json!({
        "title": "Strata data layer",
        "description": crate::files::header("").trim(),
        "uid": "strata-data-layer",
        "tags": ["strata"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": { "from": "now-1h", "to": "now" },
        "templating": { "list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0,
        }] },
        "annotations": { "list": [] },
        "panels": g.panels,
    })
}

/// Whether the application writes the store `id` with a batch writer, the one
/// source of `strata_writer_*`: it is the home store of an entity (the
/// generated ClickHouse row types and InfluxDB `config()`), or the search
/// store of one (`bulk_config()`). A store that is only a sync target is
/// written by `strata sync run`, which records `strata_sync_*` instead.
fn batch_written(model: &Model, id: StoreId) -> bool {
    (model.entities.iter())
        .any(|e| e.store == id || e.search.as_ref().is_some_and(|x| x.store == id))
}

/// The batch writers of one store, labelled with its name by the generated
/// writer configs (and ClickHouse row types).
fn writer_panels(g: &mut Grid, writer: &str, store: &Store) {
    let store = &store.name;
    let w = format!("writer=\"{writer}\", store=\"{store}\"");
    let rate = |m: &str, by: &str| format!("sum by ({by}) (rate({m}{{{w}}}[$__rate_interval]))");
    g.row(&format!("{writer} store `{store}` (batch writer)"));
    g.panel(
        "Rows accepted per second",
        "rowsps",
        &[("{{target}}", rate("strata_writer_rows_total", "target"))],
    );
    g.panel(
        "Bytes accepted per second",
        "Bps",
        &[("{{target}}", rate("strata_writer_bytes_total", "target"))],
    );
    g.panel(
        "Failed batches and retried requests per second",
        "reqps",
        &[
            (
                "failures {{target}} {{kind}}",
                rate("strata_writer_failures_total", "target, kind"),
            ),
            ("retries", rate("strata_writer_retries_total", "store")),
        ],
    );
    g.panel(
        "Backlog (rows buffered, not yet accepted)",
        "short",
        &[(
            "{{target}}",
            format!("max by (target) (strata_writer_backlog_rows{{{w}}})"),
        )],
    );
    g.panel(
        "Flush time p95 (retries included)",
        "s",
        &[(
            "{{target}}",
            format!("histogram_quantile(0.95, sum by (le, target) (rate(strata_writer_flush_duration_seconds_bucket{{{w}}}[$__rate_interval])))"),
        )],
    );
}

/// A store only change capture writes: what `strata sync run` applied to it.
fn sync_target_panels(g: &mut Grid, kind: &str, store: &Store) {
    let store = &store.name;
    let t = format!("target=\"{store}\"");
    g.row(&format!(
        "{kind} store `{store}` (filled by `strata sync run`)"
    ));
    g.panel(
        "Rows applied per second",
        "rowsps",
        &[(
            "{{pipeline}}",
            format!(
                "sum by (pipeline) (rate(strata_sync_rows_applied_total{{{t}}}[$__rate_interval]))"
            ),
        )],
    );
    g.panel(
        "Batch write time p95",
        "s",
        &[(
            "{{pipeline}}",
            format!("histogram_quantile(0.95, sum by (le, pipeline) (rate(strata_sync_batch_duration_seconds_bucket{{{t}}}[$__rate_interval])))"),
        )],
    );
}

/// The cache of the entities the redis store `id` holds.
fn cache_panels(g: &mut Grid, model: &Model, id: StoreId) {
    let store = &model[id].name;
    let entities: Vec<&str> = (model.entities.iter())
        .filter(|e| (e.cache.as_ref()).is_some_and(|c| c.store == id))
        .map(|e| e.name.schema.as_str())
        .collect();
    if entities.is_empty() {
        return;
    }
    let sel = format!("entity=~\"{}\"", entities.join("|"));
    let rate = |m: &str| format!("sum by (entity) (rate({m}{{{sel}}}[$__rate_interval]))");
    g.row(&format!("Redis store `{store}` (cache)"));
    g.panel(
        "Cache hit ratio by entity",
        "percentunit",
        &[(
            "{{entity}}",
            format!(
                "{} / ({} + {})",
                rate("strata_cache_hits_total"),
                rate("strata_cache_hits_total"),
                rate("strata_cache_misses_total")
            ),
        )],
    );
    g.panel(
        "Loads, fills, refused fills, invalidations, errors, bypasses per second",
        "reqps",
        &[
            ("loads {{entity}}", rate("strata_cache_loads_total")),
            ("fills {{entity}}", rate("strata_cache_fills_total")),
            (
                "fills refused {{entity}}",
                rate("strata_cache_fills_refused_total"),
            ),
            (
                "invalidations {{entity}}",
                rate("strata_cache_invalidations_total"),
            ),
            ("errors {{entity}}", rate("strata_cache_errors_total")),
            ("bypassed {{entity}}", rate("strata_cache_bypassed_total")),
        ],
    );
}

/// Change capture (`strata sync`): lag and throughput per pipeline.
fn sync_panels(g: &mut Grid) {
    g.row("Change capture (`strata sync`)");
    g.panel(
        "Pipelines up (1 = running, 0 = stopped or failed)",
        "none",
        &[("{{pipeline}}", "min by (pipeline) (strata_sync_up)".into())],
    );
    g.panel(
        "Sync lag (seconds since the last applied commit, while behind)",
        "s",
        &[(
            "{{pipeline}}",
            "max by (pipeline) (strata_sync_lag_seconds)".into(),
        )],
    );
    g.panel(
        "Slot lag (WAL kept for the slot)",
        "bytes",
        &[(
            "{{pipeline}}",
            "max by (pipeline) (strata_sync_lag_bytes)".into(),
        )],
    );
    g.panel(
        "Rows applied per second",
        "rowsps",
        &[
            (
                "{{pipeline}} → {{target}}",
                "sum by (pipeline, target) (rate(strata_sync_rows_applied_total[$__rate_interval]))".into(),
            ),
            (
                "snapshot {{pipeline}}",
                "sum by (pipeline) (rate(strata_sync_snapshot_rows_total[$__rate_interval]))".into(),
            ),
        ],
    );
    g.panel(
        "Batch write time p95 per target",
        "s",
        &[(
            "{{target}}",
            "histogram_quantile(0.95, sum by (le, target) (rate(strata_sync_batch_duration_seconds_bucket[$__rate_interval])))".into(),
        )],
    );
    g.panel(
        "Batches acknowledged per second",
        "reqps",
        &[(
            "{{pipeline}} → {{target}}",
            "sum by (pipeline, target) (rate(strata_sync_batches_total[$__rate_interval]))".into(),
        )],
    );
    g.panel(
        "Dead letters set aside (per interval)",
        "short",
        &[(
            "{{pipeline}} {{table}}",
            "sum by (pipeline, table) (increase(strata_sync_dead_letters_total[$__rate_interval]))"
                .into(),
        )],
    );
}
