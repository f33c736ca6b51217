//! Invalidation: after a write commits, each key's entry becomes a
//! tombstone with a new token (so a fill noted before it is refused), and
//! keys whose invalidation failed wait in a pending set retried in the
//! background; reads of their entity skip Redis until it is empty.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::{entry, Cache, Event, Inner};
use crate::error::Result;
use crate::postgres::Table;

impl Cache {
    /// Invalidates the rows of `T` with these keys, once their write is
    /// committed: the entry point for writers outside the repository (the
    /// change-capture engine's Redis target). Never fails: keys Redis
    /// could not take are retried in the background, and reads of `T` go
    /// to PostgreSQL meanwhile. A `T` without `cache:` has nothing to do.
    pub async fn invalidate<T: Table>(&self, keys: &[T::Key]) -> Result<()> {
        let Some(def) = T::CACHE else { return Ok(()) };
        let rendered = keys
            .iter()
            .map(|k| entry::key::<T>(&self.inner.prefix, k))
            .collect::<Result<Vec<_>>>()?;
        self.invalidate_keys(T::DEF.entity, def.ttl_ms, rendered)
            .await;
        Ok(())
    }

    /// Invalidates rendered keys ([`Cache::key_of`]) of `entity`, whose TTL
    /// is `ttl_ms`.
    pub async fn invalidate_keys(&self, entity: &'static str, ttl_ms: u64, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let ent = self.entity(entity);
        ent.ttl_ms.store(ttl_ms, Ordering::Relaxed);
        // Before Redis: a miss from now on does not join a load that began
        // before this write returned.
        ent.writes.fetch_add(1, Ordering::AcqRel);
        if self.is_down() {
            self.defer(entity, keys);
            return;
        }
        let sets = keys.iter().map(|k| {
            let cmd = set_tombstone(k, ttl_ms);
            async move { (k, self.run::<()>(entity, &cmd).await.is_some()) }
        });
        let done = join_all(sets).await;
        let ok = done.iter().filter(|(_, ok)| *ok).count() as u64;
        self.count(Event::Invalidation, entity, ok);
        let failed: Vec<String> = done
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(k, _)| k.clone())
            .collect();
        if !failed.is_empty() {
            self.defer(entity, failed);
        }
    }

    /// Adds keys to the pending set and makes sure a retry runs.
    fn defer(&self, entity: &'static str, keys: Vec<String>) {
        let ent = self.entity(entity);
        {
            let mut p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            let set = p.entry(entity).or_default();
            for k in keys {
                if set.insert(k) {
                    ent.pending.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        // A fill noted before this moment must not land.
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if !self.inner.retrying.swap(true, Ordering::AcqRel) {
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(retry(weak));
        }
    }
}

/// How long a tombstone stays: past any fill that could still compare with
/// the entry it replaced (fills older than half the TTL are refused).
/// `SET key <tombstone with a fresh token> PX <tombstone TTL>`: what every
/// invalidation writes, after a commit or from change capture.
pub(super) fn set_tombstone(key: &str, ttl_ms: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key)
        .arg(entry::tombstone(rand::random()))
        .arg("PX")
        .arg(tombstone_ttl(ttl_ms));
    cmd
}

fn tombstone_ttl(ttl_ms: u64) -> u64 {
    // Fills use at most twice the clamped TTL (jitter ≤ 1): outlive them.
    ttl_ms
        .clamp(1, super::MAX_TTL_MS)
        .saturating_mul(2)
        .saturating_add(1_000)
}

/// Retries pending invalidations until none is left (or the cache is
/// dropped), backing off from 50 ms to 1 s.
async fn retry(weak: std::sync::Weak<Inner>) {
    let mut wait = Duration::from_millis(50);
    loop {
        tokio::time::sleep(wait).await;
        let Some(inner) = weak.upgrade() else { return };
        let cache = Cache { inner };
        let batch: Vec<(&'static str, String)> = {
            let p = cache
                .inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.iter()
                .flat_map(|(e, ks)| ks.iter().take(1_000).map(move |k| (*e, k.clone())))
                .collect()
        };
        if batch.is_empty() {
            cache.inner.retrying.store(false, Ordering::Release);
            // A key deferred between the check and the store starts no
            // task of its own: look once more.
            let again = cache.pending_invalidations() > 0;
            if again && !cache.inner.retrying.swap(true, Ordering::AcqRel) {
                continue;
            }
            return;
        }
        let sets = batch.iter().map(|(entity, k)| {
            let ttl = cache.entity(entity).ttl_ms.load(Ordering::Relaxed);
            let mut cmd = redis::cmd("SET");
            cmd.arg(k)
                .arg(entry::tombstone(rand::random()))
                .arg("PX")
                .arg(tombstone_ttl(ttl));
            let cache = &cache;
            async move { cache.run::<()>(entity, &cmd).await.is_some() }
        });
        let done = join_all(sets).await;
        let mut any_failed = false;
        {
            let mut p = cache
                .inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for ((entity, k), ok) in batch.iter().zip(&done) {
                if !ok {
                    any_failed = true;
                    continue;
                }
                if let Some(set) = p.get_mut(entity) {
                    if set.remove(k) {
                        cache.entity(entity).pending.fetch_sub(1, Ordering::AcqRel);
                        cache.count(Event::Invalidation, entity, 1);
                    }
                }
            }
            p.retain(|_, s| !s.is_empty());
        }
        wait = match any_failed {
            true => (wait * 2).min(Duration::from_secs(1)),
            false => Duration::from_millis(50),
        };
    }
}
