//! `/metrics` (Prometheus text format) and `/health` (a JSON [`Report`])
//! over HTTP with axum, for `strata sync run --metrics-addr` and for
//! services that want the same endpoints.
//!
//! - `GET /metrics`: sets the pool gauges of the [`Replicated`] handles
//!   given and `strata_health_up` (by the health run `/health` shares),
//!   then renders the Prometheus recorder's text (`text/plain;
//!   version=0.0.4`).
//! - `GET /health`: runs the health [`Check`]s (each bounded by the
//!   timeout) and answers the [`Report`] as JSON, with the state of the
//!   [`Pipelines`] given under `pipelines`: `200` when no required store is
//!   down and no pipeline has failed, `503` otherwise. Concurrent requests
//!   share one run of the checks, and a report is reused for `max_age`
//!   (1 s by default, [`Endpoints::with_max_age`]): probes from many load
//!   balancers cost the stores one check a second, not one per probe.
//!
//! ```ignore
//! let prometheus = strata_sdk::metrics::install_prometheus()?;
//! let endpoints = Endpoints::new(prometheus).with_pools(vec![db.clone()]).with_checks(checks);
//! let (addr, server) = strata_sdk::serve::spawn("127.0.0.1:9464".parse()?, endpoints).await?;
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::health::{Check, Report};
#[cfg(feature = "postgres")]
use crate::postgres::Replicated;

/// What a long-running job of the process (a change-capture pipeline) is
/// doing, as `/health` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PipelineState {
    Running,
    /// Stopped when asked (SIGTERM).
    Stopped,
    /// Ended with an error, which `/health` shows.
    Failed {
        error: String,
    },
}

/// The pipelines of the process by name, shared between the code that
/// runs them and `/health`: any `Failed` one turns `/health` to `503`.
#[derive(Debug, Clone, Default)]
pub struct Pipelines(Arc<Mutex<BTreeMap<String, PipelineState>>>);

impl Pipelines {
    /// Records `name`'s state, replacing the one before.
    pub fn set(&self, name: &str, state: PipelineState) {
        self.lock().insert(name.to_string(), state);
    }
    /// Every pipeline's state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, PipelineState> {
        self.lock().clone()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PipelineState>> {
        // A panic while holding the map leaves it whole: a map insert.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `/health` answers: the stores' [`Report`] (its `ok` also false when
/// a pipeline failed) and the pipelines' states.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    #[serde(flatten)]
    pub report: Report,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pipelines: BTreeMap<String, PipelineState>,
}

/// What the endpoints serve.
#[derive(Clone)]
pub struct Endpoints {
    prometheus: PrometheusHandle,
    #[cfg(feature = "postgres")]
    pools: Vec<Replicated>,
    checks: Arc<Vec<Check>>,
    timeout: Duration,
    pipelines: Pipelines,
    /// The last report and when its run began; one run at a time.
    last: Arc<tokio::sync::Mutex<Option<(Instant, Report)>>>,
    max_age: Duration,
}

impl Endpoints {
    /// Renders `prometheus` at `/metrics`; no pools, no checks, a 2 s
    /// health timeout.
    pub fn new(prometheus: PrometheusHandle) -> Self {
        Endpoints {
            prometheus,
            #[cfg(feature = "postgres")]
            pools: Vec::new(),
            checks: Arc::new(Vec::new()),
            timeout: Duration::from_secs(2),
            pipelines: Pipelines::default(),
            last: Arc::default(),
            max_age: Duration::from_secs(1),
        }
    }
    /// How long a health report is reused (default 1 s; zero runs the
    /// checks for every request, still one run at a time).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }
    /// Handles whose pool gauges are set before each scrape.
    #[cfg(feature = "postgres")]
    pub fn with_pools(mut self, pools: Vec<Replicated>) -> Self {
        self.pools = pools;
        self
    }
    /// The checks `/health` runs.
    pub fn with_checks(mut self, checks: Vec<Check>) -> Self {
        self.checks = Arc::new(checks);
        self
    }
    /// The pipelines whose states `/health` reports.
    pub fn with_pipelines(mut self, pipelines: Pipelines) -> Self {
        self.pipelines = pipelines;
        self
    }
    /// The timeout of each health check.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// The router, to mount in an application's own axum server.
    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/health", get(health))
            .with_state(self)
    }
    /// Renders the metrics text now (what `/metrics` answers).
    pub fn render(&self) -> String {
        #[cfg(feature = "postgres")]
        for p in &self.pools {
            p.record_pool_metrics();
        }
        self.prometheus.run_upkeep();
        self.prometheus.render()
    }
    /// Runs the health checks now and reads the pipelines' states (what
    /// `/health` answers).
    pub async fn health(&self) -> Health {
        let mut report = self.report().await;
        let pipelines = self.pipelines.snapshot();
        report.ok &= !pipelines
            .values()
            .any(|s| matches!(s, PipelineState::Failed { .. }));
        Health { report, pipelines }
    }
}

impl Endpoints {
    /// The stores' report: the last one while younger than `max_age`,
    /// else a new run (requests arriving meanwhile wait for it).
    async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref() {
            if at.elapsed() < self.max_age {
                return report.clone();
            }
        }
        let started = Instant::now();
        let report = crate::health::run(&self.checks, self.timeout).await;
        *last = Some((started, report.clone()));
        report
    }
}

async fn metrics(State(e): State<Endpoints>) -> impl IntoResponse {
    // `strata_health_up` follows the stores at every scrape, not only when
    // someone asks `/health` (the run is shared with `/health` and reused
    // for `max_age`, so a scrape costs the stores at most one check run).
    if !e.checks.is_empty() {
        e.report().await;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.render(),
    )
}

async fn health(State(e): State<Endpoints>) -> impl IntoResponse {
    let report = e.health().await;
    let status = match report.report.ok {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(report))
}

/// Serves the endpoints on `addr` in a background task; returns the bound
/// address (`127.0.0.1:0` picks a free port) and the task (abort it to
/// stop).
pub async fn spawn(
    addr: SocketAddr,
    endpoints: Endpoints,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move { axum::serve(listener, endpoints.router()).await });
    Ok((bound, task))
}
