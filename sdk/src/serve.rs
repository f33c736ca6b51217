//! `/metrics` (Prometheus text format) and `/health` (a JSON [`Report`])
//! over HTTP with axum, for `strata sync run --metrics-addr` and for
//! services that want the same endpoints.
//!
//! - `GET /metrics`: sets the pool gauges of the [`Replicated`] handles
//!   given, then renders the Prometheus recorder's text (`text/plain;
//!   version=0.0.4`).
//! - `GET /health`: runs the health [`Check`]s (each bounded by the
//!   timeout) and answers the [`Report`] as JSON: `200` when no required
//!   store is down, `503` otherwise.
//!
//! ```ignore
//! let prometheus = strata_sdk::metrics::install_prometheus()?;
//! let endpoints = Endpoints::new(prometheus).with_pools(vec![db.clone()]).with_checks(checks);
//! let (addr, server) = strata_sdk::serve::spawn("127.0.0.1:9464".parse()?, endpoints).await?;
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::health::{Check, Report};
#[cfg(feature = "postgres")]
use crate::postgres::Replicated;

/// What the endpoints serve.
#[derive(Clone)]
pub struct Endpoints {
    prometheus: PrometheusHandle,
    #[cfg(feature = "postgres")]
    pools: Vec<Replicated>,
    checks: Arc<Vec<Check>>,
    timeout: Duration,
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
        }
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
    /// Runs the health checks now (what `/health` answers).
    pub async fn health(&self) -> Report {
        crate::health::run(&self.checks, self.timeout).await
    }
}

async fn metrics(State(e): State<Endpoints>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        e.render(),
    )
}

async fn health(State(e): State<Endpoints>) -> impl IntoResponse {
    let report = e.health().await;
    let status = match report.ok {
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
