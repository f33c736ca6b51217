//! What the SDK records, through the [`metrics`] facade: nothing leaves the
//! process unless the application installs a recorder (any `metrics`
//! recorder; [`install_prometheus`] with the `serve` feature). Without
//! one, each record is a no-op call.
//!
//! Every name is Prometheus-style (`strata_…`, the unit in the name), and
//! every label is low-cardinality: `store`, `entity`, `operation`, a
//! replica's `host:port`, an error `kind` — never a value or a key.
//! `docs/operations.md` lists every metric with its labels and meaning;
//! [`ALL`] is the same list, which the tests hold the document and the
//! Grafana dashboard to.

use metrics::Unit;

/// Seconds a statement took at the seam, from send to decoded result
/// (histogram; labels `store`, `entity`, `operation`).
pub const STATEMENT_DURATION: &str = "strata_statement_duration_seconds";
/// Rows statements returned or changed (counter; `store`, `entity`,
/// `operation`).
pub const STATEMENT_ROWS: &str = "strata_statement_rows_total";
/// Statements that failed, by error kind (counter; `store`, `entity`,
/// `operation`, `kind`).
pub const STATEMENT_ERRORS: &str = "strata_statement_errors_total";
/// Seconds a repository call waited for a connection (histogram; `store`).
pub const ACQUIRE_DURATION: &str = "strata_pool_acquire_duration_seconds";
/// Waits for a connection that hit `acquire_timeout` (counter; `store`).
pub const ACQUIRE_TIMEOUTS: &str = "strata_pool_acquire_timeouts_total";
/// Connections in use (gauge; `store`, `server`).
pub const POOL_IN_USE: &str = "strata_pool_connections_in_use";
/// Idle connections (gauge; `store`, `server`).
pub const POOL_IDLE: &str = "strata_pool_connections_idle";
/// The pool's `max` (gauge; `store`, `server`).
pub const POOL_MAX: &str = "strata_pool_connections_max";
/// Transactions the SDK ran and ended (counter; `store`, `entity`,
/// `outcome` = `committed` | `rolled_back`).
pub const TRANSACTIONS: &str = "strata_transactions_total";
/// Reads routed by a [`Replicated`](crate::postgres::Replicated) handle
/// (counter; `store`, `target` = `replica` | `primary`, `reason`).
pub const READ_ROUTES: &str = "strata_read_routes_total";
/// Seconds `after(token)` waited for a replica (histogram; `store`,
/// `outcome` = `reached` | `timeout`).
pub const TOKEN_WAIT: &str = "strata_replica_token_wait_seconds";
/// 1 when the replica's last probe found it usable (gauge; `store`,
/// `replica`).
pub const REPLICA_UP: &str = "strata_replica_up";
/// A replica's replay lag at its last probe (gauge; `store`, `replica`).
pub const REPLICA_LAG: &str = "strata_replica_lag_seconds";

/// 1 when a store's last health check found it serving, else 0 (gauge;
/// `store`, `kind`).
pub const HEALTH_UP: &str = "strata_health_up";

/// Every metric the SDK's PostgreSQL side records, with its kind.
pub const ALL: &[(&str, Kind)] = &[
    (STATEMENT_DURATION, Kind::Histogram),
    (STATEMENT_ROWS, Kind::Counter),
    (STATEMENT_ERRORS, Kind::Counter),
    (ACQUIRE_DURATION, Kind::Histogram),
    (ACQUIRE_TIMEOUTS, Kind::Counter),
    (POOL_IN_USE, Kind::Gauge),
    (POOL_IDLE, Kind::Gauge),
    (POOL_MAX, Kind::Gauge),
    (TRANSACTIONS, Kind::Counter),
    (READ_ROUTES, Kind::Counter),
    (TOKEN_WAIT, Kind::Histogram),
    (REPLICA_UP, Kind::Gauge),
    (REPLICA_LAG, Kind::Gauge),
    (HEALTH_UP, Kind::Gauge),
];

/// Every metric the SDK records: [`ALL`] and, with a writer feature, the
/// batch writers' (`crate::writer::METRICS`).
pub fn every_metric() -> Vec<(&'static str, Kind)> {
    #[allow(unused_mut)]
    let mut v = ALL.to_vec();
    #[cfg(any(
        feature = "clickhouse",
        feature = "influxdb",
        feature = "elasticsearch"
    ))]
    v.extend_from_slice(crate::writer::METRICS);
    #[cfg(feature = "cache")]
    v.extend_from_slice(CACHE);
    #[cfg(feature = "sync")]
    v.extend_from_slice(SYNC);
    v
}

/// The Redis cache's metrics (feature `cache`; label `entity`).
#[cfg(feature = "cache")]
pub const CACHE: &[(&str, Kind)] = &[
    ("strata_cache_hits_total", Kind::Counter),
    ("strata_cache_misses_total", Kind::Counter),
    ("strata_cache_loads_total", Kind::Counter),
    ("strata_cache_fills_total", Kind::Counter),
    ("strata_cache_fills_refused_total", Kind::Counter),
    ("strata_cache_invalidations_total", Kind::Counter),
    ("strata_cache_errors_total", Kind::Counter),
    ("strata_cache_bypassed_total", Kind::Counter),
];

/// Rows change capture applied, per pipeline and target store.
pub const SYNC_ROWS: &str = "strata_sync_rows_applied_total";
/// Batches written to a target (every target of a batch acknowledged).
pub const SYNC_BATCHES: &str = "strata_sync_batches_total";
/// Time to write one batch to one target, retries included.
pub const SYNC_BATCH_DURATION: &str = "strata_sync_batch_duration_seconds";
/// Rows the initial snapshot copied.
pub const SYNC_SNAPSHOT_ROWS: &str = "strata_sync_snapshot_rows_total";
/// The slot's acknowledged (confirmed flush) position, as a number.
pub const SYNC_CONFIRMED: &str = "strata_sync_confirmed_lsn";
/// WAL the server keeps for the slot: current position − acknowledged.
pub const SYNC_LAG_BYTES: &str = "strata_sync_lag_bytes";
/// The age of the oldest commit not yet in every target (a target being
/// retried); else seconds since the last applied commit while WAL is
/// unacknowledged.
pub const SYNC_LAG_SECONDS: &str = "strata_sync_lag_seconds";
/// 1 while a pipeline runs (retrying a transient failure included), 0
/// once it has stopped or failed: the lag gauges keep their last value
/// then, so alert on this one.
pub const SYNC_UP: &str = "strata_sync_up";
/// Changes set aside as dead letters (a value a target cannot hold, with
/// `--dead-letter`), per pipeline and source table.
pub const SYNC_DEAD_LETTERS: &str = "strata_sync_dead_letters_total";

/// Change capture's metrics (feature `sync`; labels `pipeline`, `target`).
#[cfg(feature = "sync")]
pub const SYNC: &[(&str, Kind)] = &[
    (SYNC_ROWS, Kind::Counter),
    (SYNC_BATCHES, Kind::Counter),
    (SYNC_BATCH_DURATION, Kind::Histogram),
    (SYNC_SNAPSHOT_ROWS, Kind::Counter),
    (SYNC_CONFIRMED, Kind::Gauge),
    (SYNC_LAG_BYTES, Kind::Gauge),
    (SYNC_LAG_SECONDS, Kind::Gauge),
    (SYNC_UP, Kind::Gauge),
    (SYNC_DEAD_LETTERS, Kind::Counter),
];

/// A metric's kind, as Prometheus shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Histogram buckets for latencies, in seconds: 100 µs to 10 s, about
/// three per decade (a local `get` is ~0.1–1 ms; a batch of 10,000 rows
/// ~50–500 ms).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Registers the description and unit of every metric with the installed
/// recorder (Prometheus prints them as `# HELP`). Call once after
/// installing a recorder; recording works without it.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        STATEMENT_DURATION,
        Unit::Seconds,
        "Seconds a statement took at the seam"
    );
    describe_counter!(
        STATEMENT_ROWS,
        Unit::Count,
        "Rows statements returned or changed"
    );
    describe_counter!(
        STATEMENT_ERRORS,
        Unit::Count,
        "Statements that failed, by error kind"
    );
    describe_histogram!(
        ACQUIRE_DURATION,
        Unit::Seconds,
        "Seconds a call waited for a pooled connection"
    );
    describe_counter!(
        ACQUIRE_TIMEOUTS,
        Unit::Count,
        "Waits for a connection that hit acquire_timeout"
    );
    describe_gauge!(POOL_IN_USE, Unit::Count, "Connections in use");
    describe_gauge!(POOL_IDLE, Unit::Count, "Idle connections");
    describe_gauge!(POOL_MAX, Unit::Count, "The pool's max connections");
    describe_counter!(
        TRANSACTIONS,
        Unit::Count,
        "Transactions the SDK ended, by outcome"
    );
    describe_counter!(
        READ_ROUTES,
        Unit::Count,
        "Reads routed to a replica or the primary, by reason"
    );
    describe_histogram!(
        TOKEN_WAIT,
        Unit::Seconds,
        "Seconds after(token) waited for a replica"
    );
    describe_gauge!(REPLICA_UP, Unit::Count, "1 when the replica is usable");
    describe_gauge!(
        HEALTH_UP,
        Unit::Count,
        "1 when the store's last health check found it serving"
    );
    describe_gauge!(
        REPLICA_LAG,
        Unit::Seconds,
        "Replay lag of a replica at its last probe"
    );
    #[cfg(any(
        feature = "clickhouse",
        feature = "influxdb",
        feature = "elasticsearch"
    ))]
    crate::writer::describe_metrics();
}

#[cfg(feature = "postgres")]
pub(crate) fn read_route(store: &str, target: &'static str, reason: &'static str) {
    metrics::counter!(READ_ROUTES, "store" => store.to_string(), "target" => target, "reason" => reason)
        .increment(1);
}

#[cfg(feature = "postgres")]
pub(crate) fn token_wait(store: &str, outcome: &'static str, waited: std::time::Duration) {
    metrics::histogram!(TOKEN_WAIT, "store" => store.to_string(), "outcome" => outcome)
        .record(waited.as_secs_f64());
}

#[cfg(feature = "postgres")]
pub(crate) fn replica_state(store: &str, s: &crate::postgres::ReplicaState) {
    let labels = [("store", store.to_string()), ("replica", s.name.clone())];
    metrics::gauge!(REPLICA_UP, &labels).set(if s.up { 1.0 } else { 0.0 });
    // A replica that is down has no lag: NaN (a gap in a graph), not the
    // last value it had.
    let lag = s.lag.filter(|_| s.up).map_or(f64::NAN, |l| l.as_secs_f64());
    metrics::gauge!(REPLICA_LAG, &labels).set(lag);
}

/// Sets the pool gauges of one server's pool: connections in use, idle,
/// and the pool's `max` (labels `store`, `server`). Call it before a scrape
/// ([`crate::serve`] does for the handles it is given), or from a timer.
#[cfg(feature = "postgres")]
pub fn record_pool(store: &str, server: &str, pool: &sqlx::PgPool) {
    let size = pool.size();
    let idle = pool.num_idle() as u32;
    let labels = [("store", store.to_string()), ("server", server.to_string())];
    metrics::gauge!(POOL_IN_USE, &labels).set(size.saturating_sub(idle) as f64);
    metrics::gauge!(POOL_IDLE, &labels).set(idle as f64);
    metrics::gauge!(POOL_MAX, &labels).set(pool.options().get_max_connections() as f64);
}

/// A Prometheus recorder with [`LATENCY_BUCKETS`] for every `_seconds`
/// histogram (true histograms, not summaries), and its handle, which
/// renders the text format. Install it with
/// `metrics::set_global_recorder`, or use [`install_prometheus`].
#[cfg(feature = "serve")]
pub fn prometheus_recorder() -> (
    metrics_exporter_prometheus::PrometheusRecorder,
    metrics_exporter_prometheus::PrometheusHandle,
) {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .expect("the buckets are not empty")
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

/// Installs [`prometheus_recorder`] as the process's recorder and
/// describes every metric; the handle renders `/metrics`. An error if a
/// recorder is installed already.
#[cfg(feature = "serve")]
pub fn install_prometheus() -> crate::Result<metrics_exporter_prometheus::PrometheusHandle> {
    let (recorder, handle) = prometheus_recorder();
    metrics::set_global_recorder(recorder).map_err(|e| {
        crate::Error::Config(format!("a metrics recorder is installed already: {e}"))
    })?;
    describe();
    Ok(handle)
}
