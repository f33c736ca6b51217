//! The HTTP client of the InfluxDB and Elasticsearch writers.

use std::time::Duration;

/// An HTTP client whose every request ends within `timeout` (connecting
/// within 10 s of it at most).
pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        // Only a TLS back end that fails to start makes `build` fail; the
        // plain client then fails the same way on its first request.
        .unwrap_or_default()
}

/// A request error as a sentence: its chain of causes, and whether it was
/// the timeout (reqwest's own text says neither).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The `Retry-After` of an answer, in whole seconds (the form InfluxDB and
/// Elasticsearch send).
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
