//! What the batching writers share: one shape of settings ([`Settings`],
//! set through the same `with_*` methods on every store's `WriterConfig`),
//! one retry policy ([`Retry`]) and the loop that applies it, and (for the
//! HTTP stores) one way to build a client with a timeout.
//!
//! | store | writer | settings | error |
//! | --- | --- | --- | --- |
//! | ClickHouse | [`clickhouse::Writer`](crate::clickhouse::Writer) | [`clickhouse::WriterConfig`](crate::clickhouse::WriterConfig) | [`clickhouse::Error`](crate::clickhouse::Error) |
//! | InfluxDB | `influx::Writer` (was `InfluxWriter`) | `influx::WriterConfig` (was `InfluxConfig`) | `influx::Error` (was `WriteError`) |
//! | Elasticsearch | `elasticsearch::Writer` (was `BulkIndexer`) | `elasticsearch::WriterConfig` (was `BulkConfig`) | `elasticsearch::Error` (was `BulkError`) |
//!
//! Every writer has `write` (buffers one row, point or document; its error
//! says with `taken()` whether it was taken), `flush`, `flush_if_due`,
//! `pending` and `sent`. The old names stay as deprecated aliases.
//!
//! Retries use the `backon` crate's exponential backoff (the maintained
//! successor of the `backoff` crate's role, small, tokio-native): doubling
//! waits from `first`, capped at `max`, optionally jittered, with a server's
//! `Retry-After` honoured where the store sends one.

#[cfg(any(feature = "influxdb", feature = "elasticsearch"))]
pub(crate) mod http;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// How a failed request is retried: `retries` more attempts after the
/// first, waiting `first`, then twice as long each time, at most `max`.
/// Only errors a retry can cure are retried (the network, timeouts,
/// overload: each writer says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    retries: u32,
    first: Duration,
    max: Duration,
    jitter: bool,
}

impl Retry {
    /// `retries` retries, waiting `first`, doubling, capped at `max`.
    pub fn new(retries: u32, first: Duration, max: Duration) -> Self {
        Retry {
            retries,
            first,
            max: max.max(first),
            jitter: false,
        }
    }
    /// No retry: the first failure is returned.
    pub fn none() -> Self {
        Retry::new(0, Duration::ZERO, Duration::ZERO)
    }
    /// Adds up to one wait's length at random to each wait, so many writers
    /// failing together do not retry together.
    pub fn with_jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }
    /// Retries after the first attempt.
    pub fn retries(&self) -> u32 {
        self.retries
    }
    /// The longest wait.
    pub fn max(&self) -> Duration {
        self.max
    }
    fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_max_times(self.retries as usize);
        if self.jitter {
            b.with_jitter()
        } else {
            b
        }
    }
}

/// The settings every batching writer has, whatever its store. A batch is
/// sent once it holds `max_rows` rows (points, documents) or `max_bytes`
/// encoded bytes, or, on the next `write` or `flush_if_due`, once its oldest
/// row is `max_age` old; each request ends within `timeout`; a failed one
/// is retried by `retry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub(crate) max_rows: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_age: Duration,
    pub(crate) retry: Retry,
    pub(crate) timeout: Duration,
    /// The `store` label of the writer's metrics (the schema's store name).
    pub(crate) store: Option<String>,
}

/// The request timeout of a writer that sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Settings {
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
    pub fn retry(&self) -> Retry {
        self.retry
    }
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// The `store` label of the writer's metrics, when set.
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }
}

/// The `with_*` methods of [`Settings`], the same on every store's
/// `WriterConfig` (which holds them in a `settings` field).
macro_rules! settings_methods {
    () => {
        /// Send a batch once it holds this many rows, points or documents.
        pub fn with_max_rows(mut self, n: usize) -> Self {
            self.settings.max_rows = n.max(1);
            self
        }
        /// Send a batch once it holds this many encoded bytes.
        pub fn with_max_bytes(mut self, n: usize) -> Self {
            self.settings.max_bytes = n.max(1);
            self
        }
        /// Send a batch, on the next `write` or `flush_if_due`, once its
        /// oldest row is this old.
        pub fn with_max_age(mut self, d: ::std::time::Duration) -> Self {
            self.settings.max_age = d;
            self
        }
        /// The schema's name of the store this writer feeds: the `store`
        /// label of its metrics (default: the ClickHouse row type's store,
        /// else the writer's kind, `clickhouse`, `influxdb`,
        /// `elasticsearch`). A name, never a value: labels must stay few.
        pub fn with_store(mut self, store: &str) -> Self {
            self.settings.store = Some(store.to_string());
            self
        }
        /// How failed requests are retried.
        pub fn with_retry(mut self, r: $crate::writer::Retry) -> Self {
            self.settings.retry = r;
            self
        }
        /// The longest one request may take (default 30 s). A server that
        /// stops answering (a frozen process, a dead peer behind a live
        /// socket) fails the request with a timeout, which is retried like
        /// a network error.
        pub fn with_timeout(mut self, d: ::std::time::Duration) -> Self {
            self.settings.timeout = d;
            self
        }
        /// The settings every writer shares.
        pub fn settings(&self) -> &$crate::writer::Settings {
            &self.settings
        }
    };
}
pub(crate) use settings_methods;

/// Rows (points, documents) a writer sent and the server accepted
/// (counter; labels `writer` = `clickhouse` | `influxdb` | `elasticsearch`,
/// `store` = the schema's store name (see `with_store`), `target` = the
/// ClickHouse table, the InfluxDB bucket or database, or `_bulk`).
pub const ROWS: &str = "strata_writer_rows_total";
/// Bytes of the requests that carried them (counter; `writer`, `store`,
/// `target`).
pub const BYTES: &str = "strata_writer_bytes_total";
/// Requests retried (counter; `writer`, `store`).
pub const RETRIES: &str = "strata_writer_retries_total";
/// Batches that failed after their retries, or rows the server refused
/// (counter; `writer`, `store`, `target`, `kind` = `unavailable` |
/// `refused`).
pub const FAILURES: &str = "strata_writer_failures_total";
/// Rows buffered and not yet accepted, as of the last flush (gauge;
/// `writer`, `store`, `target`).
pub const BACKLOG: &str = "strata_writer_backlog_rows";
/// Seconds a flush took, retries included (histogram; `writer`, `store`,
/// `target`).
pub const FLUSH_DURATION: &str = "strata_writer_flush_duration_seconds";

/// Every batch writer metric, with its kind.
pub const METRICS: &[(&str, crate::metrics::Kind)] = &[
    (ROWS, crate::metrics::Kind::Counter),
    (BYTES, crate::metrics::Kind::Counter),
    (RETRIES, crate::metrics::Kind::Counter),
    (FAILURES, crate::metrics::Kind::Counter),
    (BACKLOG, crate::metrics::Kind::Gauge),
    (FLUSH_DURATION, crate::metrics::Kind::Histogram),
];

/// Registers the writer metrics' descriptions (see [`crate::metrics::describe`]).
pub(crate) fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        ROWS,
        Unit::Count,
        "Rows, points or documents a writer sent and the server accepted"
    );
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "Bytes of the requests that carried them"
    );
    describe_counter!(RETRIES, Unit::Count, "Writer requests retried");
    describe_counter!(
        FAILURES,
        Unit::Count,
        "Batches failed after retries, or rows refused"
    );
    describe_gauge!(
        BACKLOG,
        Unit::Count,
        "Rows buffered and not yet accepted, as of the last flush"
    );
    describe_histogram!(
        FLUSH_DURATION,
        Unit::Seconds,
        "Seconds a flush took, retries included"
    );
}

/// What one writer records (its `writer`, `store` and `target` labels).
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    labels: [(&'static str, String); 3],
}

impl Meter {
    /// `store`: the schema's store name, or `writer` when unknown.
    pub(crate) fn new(
        writer: &'static str,
        store: Option<&str>,
        target: impl Into<String>,
    ) -> Self {
        let store = store.filter(|s| !s.is_empty()).unwrap_or(writer);
        Meter {
            labels: [
                ("writer", writer.to_string()),
                ("store", store.to_string()),
                ("target", target.into()),
            ],
        }
    }
    /// A request that is retried.
    fn retried(&self) {
        let [w, s, _] = &self.labels;
        metrics::counter!(RETRIES, &[w.clone(), s.clone()]).increment(1);
    }
    /// A request the server accepted: `rows` of `bytes`.
    pub(crate) fn sent(&self, rows: u64, bytes: u64) {
        metrics::counter!(ROWS, &self.labels).increment(rows);
        metrics::counter!(BYTES, &self.labels).increment(bytes);
    }
    /// `rows` that failed: `unavailable` (after retries) or `refused`.
    pub(crate) fn failed(&self, kind: &'static str) {
        let [w, s, t] = self.labels.clone();
        let labels = [w, s, t, ("kind", kind.to_string())];
        metrics::counter!(FAILURES, &labels).increment(1);
    }
    /// Rows still buffered.
    pub(crate) fn backlog(&self, rows: usize) {
        metrics::gauge!(BACKLOG, &self.labels).set(rows as f64);
    }
    /// A flush that started at `started` ended.
    pub(crate) fn flushed(&self, started: std::time::Instant) {
        metrics::histogram!(FLUSH_DURATION, &self.labels).record(started.elapsed().as_secs_f64());
    }
}

/// Runs `op` until it succeeds, fails with an error `retryable` refuses, or
/// `policy` runs out, waiting between attempts (a server's `hint`, such as
/// `Retry-After`, replaces the wait, capped at the policy's `max`).
/// Returns the last result and how many attempts were made.
pub(crate) async fn retry<T, E, Fut>(
    policy: &Retry,
    meter: &Meter,
    mut op: impl FnMut() -> Fut,
    retryable: impl Fn(&E) -> bool,
    hint: impl Fn(&E) -> Option<Duration>,
) -> (Result<T, E>, u32)
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let attempts = AtomicU32::new(0);
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        op()
    })
    .retry(policy.backoff())
    .sleep(tokio::time::sleep)
    .when(|e| retryable(e))
    .adjust(|e, wait| wait.map(|w| hint(e).unwrap_or(w).min(policy.max)))
    .notify(|e, wait| {
        meter.retried();
        tracing::warn!(
            writer = meter.labels[0].1,
            store = meter.labels[1].1,
            attempt = attempts.load(Ordering::Relaxed),
            ?wait,
            error = %e,
            "write failed; retrying"
        )
    })
    .await;
    (result, attempts.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_only_what_is_retryable_up_to_the_policy() {
        let calls = AtomicU32::new(0);
        let policy = Retry::new(3, Duration::from_millis(1), Duration::from_millis(2));
        let (r, n) = retry(
            &policy,
            &Meter::new("test", None, "t"),
            || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>("busy")
            },
            |_| true,
            |_| None,
        )
        .await;
        assert_eq!((r, n, calls.load(Ordering::Relaxed)), (Err("busy"), 4, 4));
        let (r, n) = retry(
            &policy,
            &Meter::new("test", None, "t"),
            || async { Err::<(), _>("bad") },
            |_| false,
            |_| None,
        )
        .await;
        assert_eq!((r, n), (Err("bad"), 1));
        let (r, n) = retry(
            &Retry::none(),
            &Meter::new("test", None, "t"),
            || async { Err::<(), _>("x") },
            |_| true,
            |_| None,
        )
        .await;
        assert_eq!((r, n), (Err("x"), 1));
    }

    #[tokio::test]
    async fn a_hint_replaces_the_wait_capped_at_the_max() {
        let policy = Retry::new(1, Duration::from_millis(1), Duration::from_millis(50));
        let start = std::time::Instant::now();
        let (_, n) = retry(
            &policy,
            &Meter::new("test", None, "t"),
            || async { Err::<(), _>("busy") },
            |_| true,
            |_| Some(Duration::from_secs(60)),
        )
        .await;
        assert_eq!(n, 2);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }
}
