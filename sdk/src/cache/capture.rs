//! Invalidation by change capture: writes that never went through a
//! cache-aware [`Store`](super::Store) (another service, a migration,
//! `psql`) reach Redis through the sync engine's Redis target
//! (`strata_sdk::sync`, feature `sync`), which renders each changed row's
//! key from the change stream's key values ([`key_from_parts`]) and
//! tombstones it once the commit has been read from the slot.
//!
//! A tombstone, not a `DEL`: a reader that noted the entry before the
//! change and is still loading from PostgreSQL finds another token and
//! its fill is refused (the lease rule of the [cache](super)). Unlike
//! [`Cache::invalidate`], a failure is returned instead of deferred: the
//! engine then holds the slot's position and retries, so no committed
//! change is acknowledged before its key is invalidated.

use futures_util::future::join_all;

use super::Cache;
use crate::error::{Error, Result};

/// The Redis key of a row from its key columns, each given as its
/// PostgreSQL binary encoding (`None`: NULL), in the entity's key order —
/// the same text [`Cache::key_of`] gives for the typed key:
/// `<prefix>:<entity>:{<hex>.<hex>…}` (the same for every shape of the
/// entity: a value entry carries its shape).
pub fn key_from_parts(prefix: &str, entity: &str, parts: &[Option<Vec<u8>>]) -> String {
    use std::fmt::Write;
    let mut s = format!("{prefix}:{entity}:{{");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        match p {
            None => s.push('~'),
            Some(b) => b.iter().for_each(|b| {
                let _ = write!(s, "{b:02x}");
            }),
        }
    }
    if parts.is_empty() {
        s.push('-');
    }
    s.push('}');
    s
}

impl Cache {
    /// The key prefix every key of this cache starts with.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Replaces each key's entry with a tombstone that lives
    /// `2 × ttl_ms + 1 s` (longer than any fill that began before it).
    /// Every key must succeed: the first Redis error or timeout is returned
    /// as [`Error::Connection`] (the caller retries the whole set; a
    /// tombstone written twice is harmless).
    pub async fn tombstone_keys(
        &self,
        entity: &'static str,
        ttl_ms: u64,
        keys: &[String],
    ) -> Result<()> {
        let sets = keys.iter().map(|k| {
            let cmd = super::invalidate::set_tombstone(k, ttl_ms);
            let mut c = self.inner.conn.clone();
            let timeout = self.inner.cfg.timeout;
            async move { tokio::time::timeout(timeout, cmd.query_async::<()>(&mut c)).await }
        });
        let mut done = 0u64;
        let mut first = None;
        for r in join_all(sets).await {
            match r {
                Ok(Ok(())) => done += 1,
                Ok(Err(e)) => first = first.or(Some(e.to_string())),
                Err(_) => first = first.or(Some("timed out".to_string())),
            }
        }
        self.count(super::Event::Invalidation, entity, done);
        match first {
            None => Ok(()),
            Some(e) => Err(Error::Connection {
                message: format!("redis: invalidating {} keys of {entity}: {e}", keys.len()),
            }),
        }
    }

    /// Tombstones every cached row entry of `entity`, of every shape
    /// (values and tombstones, not stampede leases nor finder pointers,
    /// which are checked against the row they point to), found by
    /// `SCAN` on every master: what a `TRUNCATE` of its table needs.
    /// Returns how many keys were tombstoned. Errors: the first Redis error
    /// or timeout, as [`Error::Connection`] (the caller retries; a tombstone
    /// written twice is harmless).
    pub async fn tombstone_entity(&self, entity: &'static str, ttl_ms: u64) -> Result<u64> {
        let pattern = format!(
            "{}:{}:{{*}}",
            glob_escape(&self.inner.prefix),
            glob_escape(entity),
        );
        let keys = self.inner.conn.scan_match(&pattern).await?;
        for chunk in keys.chunks(1000) {
            self.tombstone_keys(entity, ttl_ms, chunk).await?;
        }
        Ok(keys.len() as u64)
    }
}

/// `s` with Redis glob characters (`* ? [ ] \`) escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
