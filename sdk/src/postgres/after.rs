//! What a write call does once its change is durable, beyond the seam's
//! hooks: the cache invalidation of the handle it was given ([`Db`]'s
//! `after_commit`). The write call awaits it, so a read that begins after
//! the call returned never sees the older row. Without the `cache`
//! feature, or for an executor without a cache, it does nothing.
//!
//! [`Db`]: super::Db

use super::table::Table;

/// The after-commit step of one write call (see the [module docs](self)).
pub struct AfterCommit(Step);

enum Step {
    Nothing,
    /// Invalidate now (the write's own transaction has committed).
    #[cfg(feature = "cache")]
    Now(crate::cache::Cache),
    /// A bare pool's write (autocommit, or a batch's own transaction):
    /// invalidate every cache paired with the pool.
    #[cfg(feature = "cache")]
    Paired(Vec<crate::cache::Cache>),
    /// Inside a `StoreTx`: note the keys; its `commit()` invalidates.
    #[cfg(feature = "cache")]
    Later(String, crate::cache::Deferred),
}

impl AfterCommit {
    /// Nothing to do after commit.
    pub fn nothing() -> Self {
        AfterCommit(Step::Nothing)
    }

    #[cfg(feature = "cache")]
    pub(crate) fn now(cache: crate::cache::Cache) -> Self {
        AfterCommit(Step::Now(cache))
    }

    #[cfg(feature = "cache")]
    pub(crate) fn paired(pool: &sqlx::PgPool) -> Self {
        let caches = crate::cache::caches_of(pool);
        match caches.is_empty() {
            true => AfterCommit(Step::Nothing),
            false => AfterCommit(Step::Paired(caches)),
        }
    }

    #[cfg(feature = "cache")]
    pub(crate) fn later(prefix: String, deferred: crate::cache::Deferred) -> Self {
        AfterCommit(Step::Later(prefix, deferred))
    }

    /// Whether the write must keep the keys it wrote for this step.
    #[cfg_attr(not(feature = "cache"), allow(clippy::extra_unused_type_parameters))]
    pub(crate) fn wants<T: Table>(&self) -> bool {
        match &self.0 {
            Step::Nothing => false,
            #[cfg(feature = "cache")]
            _ => T::CACHE.is_some(),
        }
    }

    /// Runs after the write of `keys` committed (or, inside a `StoreTx`,
    /// was written). Never fails the write: the cache keeps keys it could
    /// not invalidate and retries them.
    #[cfg_attr(not(feature = "cache"), allow(unused_variables))]
    pub(crate) async fn written<T: Table>(&self, keys: &[T::Key]) {
        match &self.0 {
            Step::Nothing => {}
            #[cfg(feature = "cache")]
            Step::Now(cache) => {
                if let Err(e) = cache.invalidate::<T>(keys).await {
                    tracing::warn!(entity = T::DEF.entity, error = %e, "strata cache: a key could not be rendered");
                }
            }
            #[cfg(feature = "cache")]
            Step::Paired(caches) => {
                for cache in caches {
                    if let Err(e) = cache.invalidate::<T>(keys).await {
                        tracing::warn!(entity = T::DEF.entity, error = %e, "strata cache: a key could not be rendered");
                    }
                }
            }
            #[cfg(feature = "cache")]
            Step::Later(prefix, d) => {
                if let Err(e) = d.push::<T>(prefix, keys) {
                    tracing::warn!(entity = T::DEF.entity, error = %e, "strata cache: a key could not be rendered");
                }
            }
        }
    }
}
