//! Read replicas: a [`Replicated`] handle holds one pool per server of a
//! postgres store (the primary and each streaming replica of `replicas:`)
//! and hands the repository the pool a read should use. Routing is never
//! the default: a repository call runs where its `db` argument points, so
//! writes and transactions go to the primary unless a caller passes a
//! replica's pool for a read.
//!
//! - [`Replicated::primary`]: always the primary (writes, transactions,
//!   reads that must see everything).
//! - [`Replicated::replica`]: a healthy replica within the lag bound
//!   ([`ReplicaPolicy::max_lag`]), else the primary.
//! - [`Replicated::token`] / [`Replicated::after`]: read-your-writes by
//!   position. A [`CausalityToken`] is the primary's WAL insert position
//!   (LSN) after your commit; `after(&token)` returns a replica whose
//!   `pg_last_wal_replay_lsn()` is at or past it, waiting at most
//!   [`ReplicaPolicy::wait`], else the primary. A read given the pool
//!   `after` returns therefore never misses the write the token came from.
//! - [`Replicated::read`] / [`Replicated::read_after`]: the same choice,
//!   and a read that fails on a replica because of the replica (connection
//!   lost, pool timeout, a hot-standby conflict) runs again on the primary
//!   and marks the replica down: no read fails because a replica is
//!   unavailable.
//!
//! A replica's state (up, replay position, lag) is probed when the handle
//! connects and rechecked in the background every
//! [`ReplicaPolicy::recheck`] (never on the read's path): a down or lagging
//! replica is skipped until a recheck finds it well again.
//!
//! The idea of a replay-position token is PostgreSQL's own
//! (`pg_last_wal_replay_lsn()`, as used by e.g. Rails' and Django's
//! "read your own writes" middlewares); the lag measure is the usual
//! `now() - pg_last_xact_replay_timestamp()`, counted as zero when the
//! replica has replayed everything it received.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;

use super::pool::PoolConfig;
use super::repo::Fut;
use crate::error::{Error, Result};
use sqlx::postgres::PgConnectOptions;

/// A position in the primary's write-ahead log (PostgreSQL's `pg_lsn`), in
/// bytes from the start: `0/16B3748` is `0x0000_0000_016B_3748`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = Error;
    /// Reads PostgreSQL's text form `HI/LO` (hexadecimal halves).
    fn from_str(s: &str) -> Result<Lsn> {
        let bad = || Error::Config(format!("`{s}` is not a WAL position (write `0/16B3748`)"));
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// Read-your-writes by position: the primary's WAL position after a
/// commit. A replica that has replayed up to it holds that commit. Cheap
/// to copy and to send to another process: as text (`Display` writes
/// `0/16B3748`, `FromStr` reads it back) or through serde (the same text,
/// e.g. in a JSON response or a cookie).
///
/// ```
/// use strata_sdk::postgres::CausalityToken;
/// let t: CausalityToken = "0/16B3748".parse().unwrap();
/// assert_eq!(t.to_string(), "0/16B3748");
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"0/16B3748\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CausalityToken(pub Lsn);

impl fmt::Display for CausalityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CausalityToken {
    type Err = Error;
    /// Reads `HI/LO` (hexadecimal halves), as `Display` writes it. Errors:
    /// [`Error::Config`] naming the text.
    fn from_str(s: &str) -> Result<CausalityToken> {
        s.trim().parse().map(CausalityToken)
    }
}

impl serde::Serialize for CausalityToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CausalityToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How reads are routed among replicas. Build with `with_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// A replica further behind than this is skipped. Default 5 s.
    pub max_lag: Duration,
    /// Longest [`Replicated::after`] waits for a replica to reach a token
    /// before it answers with the primary. Default 200 ms.
    pub wait: Duration,
    /// How often a replica's state is rechecked (in the background).
    /// Default 1 s.
    pub recheck: Duration,
    /// Longest wait for one probe of a replica (connect and query).
    /// Default 1 s; a replica that does not answer in time counts as down.
    pub probe_timeout: Duration,
}

impl Default for ReplicaPolicy {
    fn default() -> Self {
        ReplicaPolicy {
            max_lag: Duration::from_secs(5),
            wait: Duration::from_millis(200),
            recheck: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

impl ReplicaPolicy {
    pub fn with_max_lag(self, max_lag: Duration) -> Self {
        ReplicaPolicy { max_lag, ..self }
    }
    pub fn with_wait(self, wait: Duration) -> Self {
        ReplicaPolicy { wait, ..self }
    }
    pub fn with_recheck(self, recheck: Duration) -> Self {
        ReplicaPolicy { recheck, ..self }
    }
    pub fn with_probe_timeout(self, probe_timeout: Duration) -> Self {
        ReplicaPolicy {
            probe_timeout,
            ..self
        }
    }
}

/// What the last probe of a replica found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaState {
    /// `host:port/database`: the `replica` label of metrics.
    pub name: String,
    /// It answered, is in recovery (a standby) and is not paused
    /// indefinitely past the lag bound.
    pub up: bool,
    /// `pg_last_wal_replay_lsn()` at the probe.
    pub replay: Option<Lsn>,
    /// Replay lag at the probe (zero when all received WAL is replayed).
    pub lag: Option<Duration>,
    /// Why it is not usable, if it is not (`connection refused`,
    /// `not in recovery`, …).
    pub problem: Option<String>,
}

struct Replica {
    name: String,
    pool: PgPool,
    state: Mutex<(ReplicaState, Option<Instant>)>,
    probing: AtomicBool,
}

impl Replica {
    fn state(&self) -> ReplicaState {
        self.lock().0.clone()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, (ReplicaState, Option<Instant>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set(&self, state: ReplicaState) {
        *self.lock() = (state, Some(Instant::now()));
    }
    fn mark_down(&self, problem: String) {
        let mut g = self.lock();
        g.0.up = false;
        g.0.problem = Some(problem);
        g.1 = Some(Instant::now());
    }
    fn due(&self, recheck: Duration) -> bool {
        self.lock().1.is_none_or(|at| at.elapsed() >= recheck)
    }
}

struct Inner {
    store: String,
    primary: PgPool,
    replicas: Vec<Replica>,
    policy: ReplicaPolicy,
    next: AtomicUsize,
    /// What a replica must serve: the primary's database and cluster.
    identity: Option<Identity>,
}

/// Which data a server holds: its database's name and its cluster's
/// system identifier (`pg_control_system()`; `None` where the role may
/// not read it). A streaming replica of the primary has both equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) database: String,
    pub(crate) system: Option<String>,
}

pub(crate) const IDENTITY: &str =
    "SELECT current_database()::text, system_identifier::text FROM pg_control_system()";

/// The identity of the server behind `pool`; `None` if it cannot be read.
async fn identity(pool: &PgPool) -> Option<Identity> {
    match sqlx::query_as::<_, (String, String)>(IDENTITY)
        .fetch_one(pool)
        .await
    {
        Ok((database, system)) => Some(Identity {
            database,
            system: Some(system),
        }),
        // A role without the right to pg_control_system(): the name only.
        Err(_) => sqlx::query_scalar::<_, String>("SELECT current_database()::text")
            .fetch_one(pool)
            .await
            .ok()
            .map(|database| Identity {
                database,
                system: None,
            }),
    }
}

/// Why `found` (a replica) does not serve the primary's data, if it does not.
pub(crate) fn mismatch(want: &Identity, found: &Identity) -> Option<String> {
    if want.database != found.database {
        return Some(format!(
            "serves database `{}`, the primary `{}`",
            found.database, want.database
        ));
    }
    match (&want.system, &found.system) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "a standby of another cluster (system identifier {b}, the primary's {a})"
        )),
        _ => None,
    }
}

/// One pool per server of a postgres store: the primary and its streaming
/// replicas. Cheap to clone (shared). See the [module documentation](self).
#[derive(Clone)]
pub struct Replicated {
    inner: Arc<Inner>,
}

impl fmt::Debug for Replicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicated")
            .field("store", &self.inner.store)
            .field("replicas", &self.replica_states())
            .finish()
    }
}

/// Probes a replica: in recovery, replay position, whether all it
/// received is replayed (`<=`, not equality: after a standby restarts its
/// receive position restarts at the start of a WAL segment, below what it
/// already replayed), whether its WAL receiver streams from the primary
/// (a receiver whose status the role may not read counts as streaming),
/// and seconds since the last replayed commit. Read by [`Probe::lag`];
/// also [`crate::health`]'s replica check.
pub(crate) const PROBE: &str = "SELECT pg_is_in_recovery(), \
    (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8, \
    COALESCE(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), true), \
    EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE COALESCE(status, 'streaming') = 'streaming'), \
    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8";

/// One row of [`PROBE`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Probe {
    pub in_recovery: bool,
    pub replay: Option<Lsn>,
    /// Everything received is replayed.
    pub replayed_received: bool,
    /// A WAL receiver streams from the primary.
    pub streaming: bool,
    /// Seconds since the last replayed commit's commit time.
    pub since_last_replay: Option<f64>,
}

impl Probe {
    /// Runs [`PROBE`] on `c`.
    pub(crate) async fn read<'c, E: sqlx::PgExecutor<'c>>(c: E) -> sqlx::Result<Probe> {
        Self::read_sql(PROBE, c).await
    }

    /// Runs `sql`, a query of [`PROBE`]'s five columns, on `c`.
    pub(crate) async fn read_sql<'c, E: sqlx::PgExecutor<'c>>(
        sql: &str,
        c: E,
    ) -> sqlx::Result<Probe> {
        let (in_recovery, replay, replayed_received, streaming, since): (
            bool,
            Option<i64>,
            bool,
            bool,
            Option<f64>,
        ) = sqlx::query_as(sql).fetch_one(c).await?;
        Ok(Probe {
            in_recovery,
            replay: replay.map(|n| Lsn(n as u64)),
            replayed_received,
            streaming,
            since_last_replay: since,
        })
    }

    /// The replay lag in seconds, given the primary's WAL flush position
    /// read just before the probe (`None` when the primary did not
    /// answer):
    /// - 0 when the replica has replayed up to that position, or streams
    ///   and has replayed all it received (an idle primary does not make
    ///   an idle replica look behind; what is in flight is the network's);
    /// - else the time since the last replayed commit: a replica whose
    ///   replay is paused or slow, or one cut off from its primary (its
    ///   receiver not streaming: the primary moved on and the replica
    ///   cannot know it), falls behind by the clock, so `max_lag` skips it.
    ///
    /// A replica cut off while its receiver still believes it streams
    /// (a network partition TCP has not noticed) looks caught up until the
    /// receiver times out (`wal_receiver_timeout`, 60 s by default).
    pub(crate) fn lag(&self, primary: Option<Lsn>) -> f64 {
        let reached = primary.zip(self.replay).is_some_and(|(p, r)| r >= p);
        if reached || (self.streaming && self.replayed_received) {
            return 0.0;
        }
        self.since_last_replay.unwrap_or(0.0).max(0.0)
    }
}

impl Replicated {
    /// Connects the primary of `config` (an error if it is unreachable, as
    /// [`PoolConfig::connect`]) and a lazy pool per replica, then probes
    /// every replica once (a replica that is down is skipped, never an
    /// error). `config.store` names the store in metrics.
    pub async fn connect(config: &PoolConfig, policy: ReplicaPolicy) -> Result<Replicated> {
        let primary = config.connect().await?;
        let mut pools = Vec::new();
        for template in &config.replicas {
            let url = super::pool::expand_env(template, |v| std::env::var(v).ok())?;
            let options = config.connect_options(&url)?;
            let name = label(&options);
            // Lazy: a replica that is down at start is no error; its pool
            // waits at most the probe timeout, so a read never hangs on it.
            let acquire = policy.probe_timeout.min(
                config
                    .acquire_timeout_ms
                    .map_or(Duration::MAX, Duration::from_millis),
            );
            let pool: PgPool = config
                .options()
                .acquire_timeout(acquire)
                .connect_lazy_with(options);
            pools.push((name, pool));
        }
        Ok(Self::from_pools(&config.store, primary, pools, policy).await)
    }

    /// A handle over pools you built yourself; `replicas` are
    /// `(name, pool)` pairs (the name labels metrics: no credentials).
    /// Probes every replica once. A replica is used only while it serves
    /// the primary's database of the primary's cluster (same
    /// `current_database()` and, where the role may read it,
    /// `pg_control_system()`'s system identifier): a URL naming another
    /// database, or a standby of another cluster, is down with why.
    pub async fn from_pools(
        store: &str,
        primary: PgPool,
        replicas: Vec<(String, PgPool)>,
        policy: ReplicaPolicy,
    ) -> Replicated {
        let replicas: Vec<Replica> = replicas
            .into_iter()
            .map(|(name, pool)| Replica {
                state: Mutex::new((
                    ReplicaState {
                        name: name.clone(),
                        up: false,
                        replay: None,
                        lag: None,
                        problem: Some("not probed yet".into()),
                    },
                    None,
                )),
                name,
                pool,
                probing: AtomicBool::new(false),
            })
            .collect();
        let identity = match replicas.is_empty() {
            true => None,
            false => identity(&primary).await,
        };
        let r = Replicated {
            inner: Arc::new(Inner {
                store: store.to_string(),
                primary,
                replicas,
                policy,
                next: AtomicUsize::new(0),
                identity,
            }),
        };
        r.recheck().await;
        r
    }

    /// The store's name.
    pub fn store(&self) -> &str {
        &self.inner.store
    }

    /// The routing policy.
    pub fn policy(&self) -> ReplicaPolicy {
        self.inner.policy
    }

    /// The primary's pool: writes, transactions, and reads that must see
    /// every commit.
    pub fn primary(&self) -> &PgPool {
        &self.inner.primary
    }

    /// Every replica's pool with its name, in `replicas:` order.
    pub fn replica_pools(&self) -> impl Iterator<Item = (&str, &PgPool)> {
        self.inner
            .replicas
            .iter()
            .map(|r| (r.name.as_str(), &r.pool))
    }

    /// Sets the pool gauges (`strata_pool_connections_*`) of the primary
    /// (`server` = `primary`) and of each replica (its name).
    pub fn record_pool_metrics(&self) {
        let store = &self.inner.store;
        crate::metrics::record_pool(store, "primary", &self.inner.primary);
        for r in &self.inner.replicas {
            crate::metrics::record_pool(store, &r.name, &r.pool);
        }
    }

    /// What the last probe of each replica found.
    pub fn replica_states(&self) -> Vec<ReplicaState> {
        self.inner.replicas.iter().map(Replica::state).collect()
    }

    /// A healthy replica within the lag bound (round robin among them), or
    /// the primary when there is none. Never waits on a replica: states
    /// come from the last probe, and a due recheck runs in the background.
    pub fn replica(&self) -> &PgPool {
        match self.pick(|s| s.lag.is_some_and(|l| l <= self.inner.policy.max_lag)) {
            Some(r) => {
                route(&self.inner.store, "replica", "lag_ok");
                &r.pool
            }
            None => {
                route(&self.inner.store, "primary", "no_replica");
                &self.inner.primary
            }
        }
    }

    /// Begins a transaction on the primary, counted in
    /// `strata_transactions_total` under this store (see [`super::Tx`]).
    /// Errors: a connection error when the primary gives no connection.
    pub async fn begin(&self) -> Result<super::Tx> {
        super::Tx::begin(&self.inner.store, &self.inner.primary).await
    }

    /// The smallest WAL position now known to cover every commit that
    /// has returned: taken after your write has committed, a token that
    /// covers it. See [`token_on`] for which position that is.
    pub async fn token(&self) -> Result<CausalityToken> {
        token_on(&self.inner.primary).await
    }

    /// A replica that has replayed past `token`, waiting at most
    /// [`ReplicaPolicy::wait`] for one, else the primary: a read on the
    /// pool returned sees the write the token was taken after.
    pub async fn after(&self, token: &CausalityToken) -> &PgPool {
        let started = Instant::now();
        let store = &self.inner.store;
        let candidates: Vec<&Replica> = self.candidates().collect();
        if candidates.is_empty() {
            route(store, "primary", "no_replica");
            return &self.inner.primary;
        }
        // Known to be far enough already: no round trip.
        if let Some(r) = candidates
            .iter()
            .find(|r| r.state().replay.is_some_and(|l| l >= token.0))
        {
            route(store, "replica", "token_reached");
            wait_seconds(store, "reached", started);
            return &r.pool;
        }
        let deadline = started + self.inner.policy.wait;
        let mut pause = Duration::from_millis(1);
        loop {
            for r in &candidates {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, replay_lsn(&r.pool)).await {
                    Ok(Ok(lsn)) => {
                        r.lock().0.replay = Some(lsn);
                        if lsn >= token.0 {
                            route(store, "replica", "token_reached");
                            wait_seconds(store, "reached", started);
                            return &r.pool;
                        }
                    }
                    Ok(Err(e)) => r.mark_down(format!("{}: {e}", r.name)),
                    Err(_) => {}
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(16));
        }
        route(store, "primary", "token_wait_timeout");
        wait_seconds(store, "timeout", started);
        &self.inner.primary
    }

    /// Runs the read `f` on [`Self::replica`]'s choice; if it fails there
    /// because of the replica (connection, pool timeout, a hot-standby
    /// conflict), marks the replica down and runs `f` on the primary.
    ///
    /// ```ignore
    /// let d = db.read(|p| Decision::get(p, &id)).await?;
    /// ```
    pub async fn read<'a, T>(&'a self, f: impl Fn(&'a PgPool) -> Fut<'a, T>) -> Result<T> {
        let pool = self.replica();
        self.fallback(pool, f).await
    }

    /// Runs the read `f` on [`Self::after`]'s choice for `token`, with the
    /// fallback of [`Self::read`].
    pub async fn read_after<'a, T>(
        &'a self,
        token: &CausalityToken,
        f: impl Fn(&'a PgPool) -> Fut<'a, T>,
    ) -> Result<T> {
        let pool = self.after(token).await;
        self.fallback(pool, f).await
    }

    async fn fallback<'a, T>(
        &'a self,
        pool: &'a PgPool,
        f: impl Fn(&'a PgPool) -> Fut<'a, T>,
    ) -> Result<T> {
        let primary = &self.inner.primary;
        let out = f(pool).await;
        if std::ptr::eq(pool, primary) {
            return out;
        }
        match out {
            Err(e @ (Error::Connection { .. } | Error::Timeout { .. } | Error::Retry { .. })) => {
                if let Some(r) = self
                    .inner
                    .replicas
                    .iter()
                    .find(|r| std::ptr::eq(&r.pool, pool))
                {
                    r.mark_down(e.to_string());
                }
                route(&self.inner.store, "primary", "replica_failed");
                f(primary).await
            }
            other => other,
        }
    }

    /// Probes every replica now (concurrently, each bounded by the probe
    /// timeout) and records what it found.
    pub async fn recheck(&self) {
        let probes = self.inner.replicas.iter().map(|r| async move {
            probe_into(r, &self.inner).await;
        });
        futures_util::future::join_all(probes).await;
    }

    /// Replicas not known to be down, round robin from the next one; starts
    /// a background recheck of those that are due.
    fn candidates(&self) -> impl Iterator<Item = &Replica> {
        let n = self.inner.replicas.len();
        let start = match n {
            0 => 0,
            _ => self.inner.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        self.recheck_due();
        (0..n)
            .map(move |i| &self.inner.replicas[(start + i) % n])
            .filter(|r| r.state().up)
    }

    fn pick(&self, ok: impl Fn(&ReplicaState) -> bool) -> Option<&Replica> {
        self.candidates().find(|r| ok(&r.state()))
    }

    fn recheck_due(&self) {
        let policy = self.inner.policy;
        for (i, r) in self.inner.replicas.iter().enumerate() {
            if !r.due(policy.recheck) || r.probing.swap(true, Ordering::AcqRel) {
                continue;
            }
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                r.probing.store(false, Ordering::Release);
                continue;
            };
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            rt.spawn(async move {
                if let Some(inner) = weak.upgrade() {
                    let r = &inner.replicas[i];
                    probe_into(r, &inner).await;
                    r.probing.store(false, Ordering::Release);
                }
            });
        }
    }
}

/// `host:port/database`: a server's name in metrics and states.
fn label(o: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("")
    )
}

/// A causality token of the server behind `pool` (see
/// [`Replicated::token`]): its WAL *flush* position
/// (`pg_current_wal_flush_lsn()`), which covers every commit that has
/// returned when commits wait for their flush (`synchronous_commit` on,
/// `local`, `remote_write`, `remote_apply`: the default); under
/// `synchronous_commit = off` in the session the token is taken on, the
/// *insert* position (`pg_current_wal_insert_lsn()`), since such a commit
/// returns before its record is flushed.
///
/// Why not always the insert position: WAL that is inserted but not yet
/// flushed (an aborted transaction's records, an asynchronous commit of
/// any session) is flushed only by the WAL writer, up to
/// `wal_writer_delay` (200 ms) later, and a replica cannot replay past
/// the primary's flush position; a token at the insert position then
/// waits that long and usually falls back to the primary. A write of
/// yours committed with `SET LOCAL synchronous_commit = off` in a session
/// whose setting is otherwise on is not covered: take its token with
/// [`insert_token_on`].
pub async fn token_on(pool: &PgPool) -> Result<CausalityToken> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (CASE WHEN current_setting('synchronous_commit') = 'off' \
                 THEN pg_current_wal_insert_lsn() ELSE pg_current_wal_flush_lsn() END \
                 - '0/0'::pg_lsn)::int8",
    )
    .fetch_one(pool)
    .await?;
    Ok(CausalityToken(Lsn(n as u64)))
}

/// The primary's WAL insert position as a token: covers every commit
/// record inserted so far, asynchronous commits included, at the cost
/// that a replica may reach it only after the WAL writer's next flush
/// (up to `wal_writer_delay`). See [`token_on`].
pub async fn insert_token_on(pool: &PgPool) -> Result<CausalityToken> {
    let (n,): (i64,) = sqlx::query_as("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8")
        .fetch_one(pool)
        .await?;
    Ok(CausalityToken(Lsn(n as u64)))
}

async fn replay_lsn(pool: &PgPool) -> Result<Lsn> {
    let (n,): (Option<i64>,) =
        sqlx::query_as("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8")
            .fetch_one(pool)
            .await?;
    Ok(Lsn(n.unwrap_or(0) as u64))
}

/// Probes a replica: in recovery, the primary's database and cluster
/// (else down, with why), replay position and lag.
async fn probe_into(r: &Replica, inner: &Inner) {
    let (store, policy) = (&inner.store, inner.policy);
    // The primary's position, read alongside: a replay at or past it is
    // caught up. A primary that does not answer leaves it unknown.
    let primary = async {
        let t = tokio::time::timeout(policy.probe_timeout, token_on(&inner.primary));
        t.await.ok()?.ok().map(|t| t.0)
    };
    let replica = tokio::time::timeout(policy.probe_timeout, async {
        let probe = Probe::read(&r.pool).await?;
        let wrong = match &inner.identity {
            Some(want) => identity(&r.pool).await.and_then(|got| mismatch(want, &got)),
            None => None,
        };
        Ok::<_, sqlx::Error>((probe, wrong))
    });
    let (primary, found) = tokio::join!(primary, replica);
    let mut state = ReplicaState {
        name: r.name.clone(),
        up: false,
        replay: None,
        lag: None,
        problem: None,
    };
    match found {
        Ok(Ok((probe, _))) if !probe.in_recovery => {
            state.problem = Some("not in recovery (not a standby)".into())
        }
        Ok(Ok((_, Some(wrong)))) => state.problem = Some(wrong),
        Ok(Ok((probe, None))) => {
            state.up = true;
            state.replay = probe.replay;
            state.lag = Some(Duration::from_secs_f64(probe.lag(primary)));
        }
        Ok(Err(e)) => state.problem = Some(why_down(r, Some(e), policy.probe_timeout).await),
        Err(_) => state.problem = Some(why_down(r, None, policy.probe_timeout).await),
    }
    crate::metrics::replica_state(store, &state);
    r.set(state);
}

/// Why a probe failed (`e`; `None`: it did not finish in time), as the
/// server says it: a pool that waits for a connection until it times out
/// hides the connect error (refused, unknown host, password), so one
/// direct connection is tried for it.
async fn why_down(r: &Replica, e: Option<sqlx::Error>, within: Duration) -> String {
    match e {
        Some(e) if !matches!(e, sqlx::Error::PoolTimedOut) => {
            return format!("{}: {}", r.name, Error::from(e));
        }
        _ => {}
    }
    let options = r.pool.connect_options();
    let direct = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options);
    match tokio::time::timeout(within, direct).await {
        Ok(Err(cause)) => format!("{}: {}", r.name, Error::from(cause)),
        Ok(Ok(c)) => {
            let _ = sqlx::Connection::close(c).await;
            format!(
                "{}: connects, but did not answer the probe within {within:?}",
                r.name
            )
        }
        Err(_) => format!("{}: no connection within {within:?}", r.name),
    }
}

fn route(store: &str, target: &'static str, reason: &'static str) {
    crate::metrics::read_route(store, target, reason);
}

fn wait_seconds(store: &str, outcome: &'static str, started: Instant) {
    crate::metrics::token_wait(store, outcome, started.elapsed());
}

#[cfg(test)]
mod tests {
    use super::Lsn;

    #[test]
    fn lsn_text_round_trips() {
        let l: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(l.0, 0x16_B374_D848);
        assert_eq!(l.to_string(), "16/B374D848");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("x/1".parse::<Lsn>().is_err());
        assert!(Lsn(1) < Lsn(0x1_0000_0000));
    }
}
