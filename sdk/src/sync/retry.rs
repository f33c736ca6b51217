//! Retrying a target write with back-off while it fails, holding the
//! stream's position: nothing is acknowledged meanwhile.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::error::SyncError;

/// Retries `f` with doubling waits from 100 ms up to 10 s (each plus up to
/// as much again of jitter) while it fails
/// with a target error, logging each failure; for up to 24 hours
/// (a sync waits for its target rather than skipping data). Other errors
/// return at once.
pub async fn forever<F, Fut, T>(what: &str, f: F) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SyncError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(24 * 360);
    f.retry(backoff)
        .when(|e| matches!(e, SyncError::Target { .. }))
        .notify(|e, wait| {
            tracing::warn!("{what} failed, retrying in {wait:?}: {e}");
            eprintln!(
                "strata sync: {what} failed, retrying in {:.1}s: {e}",
                wait.as_secs_f64()
            );
        })
        .await
}
