//! The cache-aside read path of entities with `cache:` (feature `cache`).
//!
//! The derive declares an entity's cache properties ([`CacheDef`]: TTL and
//! a fingerprint of its shape); this module behaves. A repository call
//! reads through the cache when it is given a [`Store`] (a pool and a
//! [`Cache`]); given a bare `&PgPool`, a connection or a transaction it
//! reads PostgreSQL as before.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> strata_sdk::Result<()> {
//! use strata_sdk::cache::{Cache, CacheConfig, Store};
//! let cache = Cache::connect(CacheConfig::new("redis://127.0.0.1:6379", "app")).await?;
//! let store = Store::new(pool, cache);
//! // Decision::get(&store, &id)           reads through Redis
//! // Decision::get(store.bypass(), &id)   reads PostgreSQL, writes still invalidate
//! // Decision::patch(&store, &id, &p)     invalidates `id` after the commit
//! # Ok(()) }
//! ```
//!
//! **Never stale after a write.** A reader notes the entry it saw (a
//! value's or tombstone's random token, or none) *before* it reads
//! PostgreSQL; a write, once committed, replaces the entry with a
//! tombstone carrying a new token; the fill is a Lua script that writes
//! only if the noted token is still there (the memcache lease idea:
//! Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013). A reader
//! that began before the write can therefore not leave its older row
//! behind. Two more guards close the remaining gaps: a fill is refused
//! when the read took longer than half the TTL (the noted "nothing" could
//! otherwise come back by expiry), and when any Redis error happened since
//! the note (the process's *epoch*; see "Redis failures" below).
//!
//! **When invalidation runs.** After the commit, and the write call awaits
//! it, so a read that begins after a write returned never sees the older
//! row: for a write through `&Store` right after its autocommit statement
//! or batch transaction; inside a [`StoreTx`] when its `commit()` returns.
//! Never before, never for a rolled-back transaction. Writes through the
//! bare pool a `Store` was made from (or its clones) invalidate that
//! store's cache as well; writes through a caller's `sqlx::Transaction`,
//! a bare connection or another pool do not (no cache is known there);
//! writes from other processes and from outside the SDK need change
//! capture (issue 11, part 5), which can call [`Cache::invalidate`].
//!
//! **Stampedes.** Concurrent misses of one key in one process share one
//! PostgreSQL load (single flight), unless a write through this cache
//! returned after the load began; across processes a short Redis lease
//! (`SET NX PX`) lets one loader through while the others poll briefly for
//! its fill. Hot keys refresh early with probability rising towards expiry
//! (XFetch: Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache
//! Stampede Prevention", VLDB 2015), and every TTL gets up to
//! [`CacheConfig::jitter`] more so keys filled together expire apart.
//!
//! **Redis failures are not application failures.** Every Redis command
//! has a timeout ([`CacheConfig::timeout`], default 200 ms, far under a
//! PostgreSQL statement's); on an error or timeout the read falls back to
//! PostgreSQL and returns no error, the epoch is bumped (in-flight fills
//! are refused), and Redis is skipped for [`CacheConfig::down_for`]. A
//! write whose invalidation failed still succeeds: its keys go to a
//! pending set retried in the background, and until the set is empty every
//! read of that entity goes to PostgreSQL and fills nothing, so no key
//! that missed its invalidation is served afterwards (in this process;
//! another process serving the same Redis relies on change capture).
//!
//! **Secrets.** `strata check` refuses `cache:` on an entity with a
//! `secret` field (`strata::secret_in_cache`), and the derive refuses
//! `cache(...)` on a struct with a `Secret` field, so no cached entry can
//! hold one.
//!
//! Metrics (the `metrics` facade, label `entity`):
//! `strata_cache_hits_total`, `strata_cache_misses_total`,
//! `strata_cache_loads_total` (PostgreSQL loads on the cached path),
//! `strata_cache_fills_total`, `strata_cache_fills_refused_total`,
//! `strata_cache_invalidations_total` (keys), `strata_cache_errors_total`
//! (Redis errors and timeouts), `strata_cache_bypassed_total` (reads sent
//! to PostgreSQL because Redis was down or invalidations were pending).

mod capture;
pub(crate) mod conn;
pub mod entry;
pub mod finder;
mod flight;
mod invalidate;
pub mod repo;
mod store;

pub use capture::key_from_parts;

/// A cached finder's parameters rendered as a key part (`{hex.hex}`: each
/// value's PostgreSQL binary encoding in hex, as row keys are), for
/// [`finder::query_one`]; `Result<String>`. Generated code calls it.
#[macro_export]
macro_rules! finder_key {
    ($($v:expr),* $(,)?) => {
        (|| -> $crate::Result<::std::string::String> {
            #[allow(unused_mut)]
            let mut k = $crate::cache::entry::FinderKey::default();
            $(k.push(&$v)?;)*
            ::std::result::Result::Ok(k.finish())
        })()
    };
}

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::FromRedisValue;

pub use crate::postgres::CacheDef;
pub use conn::Topology;
pub(crate) use store::caches_of;
pub use store::{Bypass, Deferred, Store, StoreTx};

use crate::error::Result;

/// Settings of a [`Cache`]; build with [`CacheConfig::new`] and `with_*`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// A Redis URL: `redis://` (one node), `redis+cluster://h:p,h:p` or
    /// several URLs separated by commas (Cluster), or
    /// `redis+sentinel://h:p,h:p/service` (Sentinel). `${VAR}` and
    /// `${VAR:default}` expand when connecting.
    pub url: String,
    /// The first part of every key (the store's `key_prefix`).
    pub key_prefix: String,
    /// Timeout of each Redis command (default 200 ms).
    pub timeout: Duration,
    /// How long Redis is skipped after an error or timeout (default 250 ms).
    pub down_for: Duration,
    /// How long a cross-process load lease lasts (default 2 s).
    pub lease: Duration,
    /// How long a miss without the lease polls for another loader's fill
    /// before reading PostgreSQL itself (default 100 ms).
    pub lease_wait: Duration,
    /// XFetch's β: 0 turns early refresh off, 1 is the paper's default.
    pub xfetch_beta: f64,
    /// Up to this fraction of the TTL is added to each fill (default 0.1).
    pub jitter: f64,
    /// Test support: every fill waits at this gate (forces interleavings).
    #[doc(hidden)]
    pub fill_gate: Option<Arc<FillGate>>,
}

/// Test support: a fill signals `reached`, then waits for `release`, so a
/// test can commit a write between a reader's PostgreSQL read and its fill.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct FillGate {
    pub reached: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

impl CacheConfig {
    /// Settings with defaults for a URL and key prefix.
    pub fn new(url: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        CacheConfig {
            url: url.into(),
            key_prefix: key_prefix.into(),
            timeout: Duration::from_millis(200),
            down_for: Duration::from_millis(250),
            lease: Duration::from_secs(2),
            lease_wait: Duration::from_millis(100),
            xfetch_beta: 1.0,
            jitter: 0.1,
            fill_gate: None,
        }
    }
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn with_down_for(mut self, t: Duration) -> Self {
        self.down_for = t;
        self
    }
    pub fn with_lease(mut self, lease: Duration, wait: Duration) -> Self {
        self.lease = lease;
        self.lease_wait = wait;
        self
    }
    pub fn with_xfetch_beta(mut self, beta: f64) -> Self {
        self.xfetch_beta = beta;
        self
    }
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }
    #[doc(hidden)]
    pub fn with_fill_gate(mut self, gate: Arc<FillGate>) -> Self {
        self.fill_gate = Some(gate);
        self
    }
    /// Connects ([`Cache::connect`]).
    pub async fn connect(self) -> Result<Cache> {
        Cache::connect(self).await
    }
}

/// Counts since the [`Cache`] was made (the same events as its metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered by Redis at the first look.
    pub hits: u64,
    /// Reads Redis could not answer at the first look (some are then
    /// answered by another loader's fill: single flight, lease).
    pub misses: u64,
    /// PostgreSQL loads made on the cached path (misses, early refreshes).
    pub loads: u64,
    pub fills: u64,
    pub fills_refused: u64,
    /// Keys invalidated (tombstoned in Redis).
    pub invalidations: u64,
    /// Redis errors and timeouts.
    pub errors: u64,
    /// Reads sent to PostgreSQL without asking Redis.
    pub bypassed: u64,
}

#[derive(Default)]
struct Counters([AtomicU64; 8]);

#[derive(Clone, Copy)]
#[repr(usize)]
enum Event {
    Hit,
    Miss,
    Load,
    Fill,
    FillRefused,
    Invalidation,
    Error,
    Bypass,
}

impl Event {
    fn metric(self) -> &'static str {
        match self {
            Event::Hit => "strata_cache_hits_total",
            Event::Miss => "strata_cache_misses_total",
            Event::Load => "strata_cache_loads_total",
            Event::Fill => "strata_cache_fills_total",
            Event::FillRefused => "strata_cache_fills_refused_total",
            Event::Invalidation => "strata_cache_invalidations_total",
            Event::Error => "strata_cache_errors_total",
            Event::Bypass => "strata_cache_bypassed_total",
        }
    }
}

/// One entity's state in this process.
#[derive(Default)]
struct EntityState {
    /// Bumped by every invalidation through this cache: a miss joins a
    /// load in flight only if no write returned since the load began.
    writes: AtomicU64,
    /// Keys whose invalidation failed and is being retried.
    pending: AtomicUsize,
    /// The entity's TTL, as last invalidated (for the retry's tombstones).
    ttl_ms: AtomicU64,
}

/// A handle on the cache of one Redis store: cheap to clone (an `Arc`).
/// See the [module documentation](self) for what it guarantees.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    conn: conn::Conn,
    cfg: CacheConfig,
    prefix: String,
    start: Instant,
    /// Bumped by every Redis error: fills noted before it are refused.
    epoch: AtomicU64,
    /// Redis is skipped until this many ms after `start`.
    down_until: AtomicU64,
    counters: Counters,
    entities: RwLock<HashMap<&'static str, Arc<EntityState>>>,
    flights: flight::Flights,
    /// Keys whose invalidation failed, by entity.
    pending: Mutex<HashMap<&'static str, HashSet<String>>>,
    retrying: AtomicBool,
}

impl Cache {
    /// Connects to the Redis of `cfg` (lazily for one node: an application
    /// starts while Redis is down, and reads go to PostgreSQL until it is
    /// back). A key prefix holding `{`, `}` or whitespace is refused.
    pub async fn connect(cfg: CacheConfig) -> Result<Cache> {
        let url = crate::postgres::expand_env(&cfg.url, |v| std::env::var(v).ok())?;
        let prefix = cfg.key_prefix.clone();
        if prefix.is_empty()
            || prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace())
        {
            return Err(crate::Error::Config(format!(
                "cache key prefix `{prefix}`: use a non-empty name without braces or spaces"
            )));
        }
        let topology = Topology::parse(&url)?;
        let conn = conn::Conn::open(&topology, cfg.timeout).await?;
        Ok(Cache {
            inner: Arc::new(Inner {
                conn,
                prefix,
                start: Instant::now(),
                epoch: AtomicU64::new(0),
                down_until: AtomicU64::new(0),
                counters: Counters::default(),
                entities: RwLock::new(HashMap::new()),
                flights: flight::Flights::default(),
                pending: Mutex::new(HashMap::new()),
                retrying: AtomicBool::new(false),
                cfg,
            }),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The settings it was made with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.cfg
    }

    /// Counts since this cache was made.
    pub fn stats(&self) -> CacheStats {
        let c = |e: Event| self.inner.counters.0[e as usize].load(Ordering::Relaxed);
        CacheStats {
            hits: c(Event::Hit),
            misses: c(Event::Miss),
            loads: c(Event::Load),
            fills: c(Event::Fill),
            fills_refused: c(Event::FillRefused),
            invalidations: c(Event::Invalidation),
            errors: c(Event::Error),
            bypassed: c(Event::Bypass),
        }
    }

    /// How many keys wait for an invalidation that failed (all entities).
    pub fn pending_invalidations(&self) -> usize {
        let p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.values().map(HashSet::len).sum()
    }

    /// The Redis key of a row of `T` with this key.
    pub fn key_of<T: crate::postgres::Table>(&self, key: &T::Key) -> Result<Option<String>> {
        T::CACHE
            .map(|_| entry::key::<T>(&self.inner.prefix, key))
            .transpose()
    }

    fn count(&self, e: Event, entity: &'static str, n: u64) {
        self.inner.counters.0[e as usize].fetch_add(n, Ordering::Relaxed);
        metrics::counter!(e.metric(), "entity" => entity).increment(n);
    }

    fn entity(&self, name: &'static str) -> Arc<EntityState> {
        if let Some(s) = self
            .inner
            .entities
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return s.clone();
        }
        let mut map = self
            .inner
            .entities
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(name).or_default().clone()
    }

    fn now_ms(&self) -> u64 {
        self.inner.start.elapsed().as_millis() as u64
    }

    fn is_down(&self) -> bool {
        self.now_ms() < self.inner.down_until.load(Ordering::Acquire)
    }

    /// Whether reads of this entity may use Redis now.
    fn usable(&self, ent: &EntityState) -> bool {
        ent.pending.load(Ordering::Acquire) == 0 && !self.is_down()
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// A Redis command failed or timed out.
    fn failed(&self, entity: &'static str, what: &str, err: &dyn std::fmt::Display) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        let until = self.now_ms() + self.inner.cfg.down_for.as_millis() as u64;
        self.inner.down_until.fetch_max(until, Ordering::AcqRel);
        self.count(Event::Error, entity, 1);
        tracing::debug!(entity, what, error = %err, "strata cache: redis unavailable");
    }

    /// Runs one command with the timeout; an error is counted and `None`.
    async fn run<T: FromRedisValue>(&self, entity: &'static str, cmd: &redis::Cmd) -> Option<T> {
        let mut c = self.inner.conn.clone();
        match tokio::time::timeout(self.inner.cfg.timeout, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.failed(entity, "command", &e);
                None
            }
            Err(_) => {
                self.failed(entity, "command", &"timed out");
                None
            }
        }
    }

    /// Runs the fill script; `Some(true)` if it wrote.
    async fn fill_script(
        &self,
        entity: &'static str,
        inv: redis::ScriptInvocation<'_>,
    ) -> Option<bool> {
        let mut c = self.inner.conn.clone();
        match tokio::time::timeout(self.inner.cfg.timeout, inv.invoke_async::<i64>(&mut c)).await {
            Ok(Ok(v)) => Some(v == 1),
            Ok(Err(e)) => {
                self.failed(entity, "fill", &e);
                None
            }
            Err(_) => {
                self.failed(entity, "fill", &"timed out");
                None
            }
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The longest TTL a fill uses, in ms (10 years). The schema compiler
/// refuses a `ttl` above 365 days; this bound keeps a hand-written
/// definition (up to `u64::MAX` ms) from overflowing the expiry arithmetic.
pub const MAX_TTL_MS: u64 = 10 * 365 * 86_400_000;

/// A fill's time to live in ms: `ttl_ms` within 1 ..= [`MAX_TTL_MS`], plus
/// up to `jitter` (a fraction) of it at random. Never overflows.
pub(crate) fn expiry_ms(ttl_ms: u64, jitter: f64) -> u64 {
    let ttl = ttl_ms.clamp(1, MAX_TTL_MS);
    let extra = (ttl as f64 * jitter.clamp(0.0, 1.0) * rand::random::<f64>()) as u64;
    ttl.saturating_add(extra)
}

#[cfg(test)]
mod ttl_tests {
    #[test]
    fn expiry_is_bounded_for_every_ttl_and_jitter() {
        for ttl in [
            0,
            1,
            1_000,
            super::MAX_TTL_MS,
            super::MAX_TTL_MS + 1,
            u64::MAX,
        ] {
            for jitter in [0.0, 0.1, 1.0, 5.0, -1.0, f64::NAN, f64::INFINITY] {
                let px = super::expiry_ms(ttl, jitter);
                let base = ttl.clamp(1, super::MAX_TTL_MS);
                assert!(px >= base && px <= 2 * base, "{ttl} {jitter}: {px}");
            }
        }
    }
}
