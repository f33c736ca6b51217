//! Change capture: the schema's `sync:` rules run, from PostgreSQL's
//! logical replication stream to ClickHouse and Elasticsearch (feature
//! `sync`). See `docs/sync.md` for the guarantees and the server settings.
//!
//! One engine, driven by a [`Pipeline`] description (plain data: tables,
//! copied columns and their types, targets with their DDL), so the SDK
//! does not depend on the compiler. The `strata sync` command builds the
//! description from a schema; an application can embed the same engine:
//!
//! ```no_run
//! # async fn f(p: strata_sdk::sync::Pipeline) -> Result<(), strata_sdk::sync::SyncError> {
//! let stop = strata_sdk::sync::stop_on_signals();
//! strata_sdk::sync::run(&p, strata_sdk::sync::RunOptions::default(), stop).await?;
//! # Ok(()) }
//! ```
//!
//! The parts: [`wire`] (the replication protocol), [`pgoutput`] (the
//! decoder), [`source`] (publication, progress tables, advisory lock),
//! [`snapshot`] (the chunked initial copy), [`stream`] (apply and
//! acknowledge), [`clickhouse`] and [`elastic`] (the targets), [`cell`]
//! (value conversions), [`verify`] (the comparison).

mod applier;
pub mod apply;
pub mod cell;
pub mod clickhouse;
#[cfg(feature = "cache")]
pub mod consume;
mod copytext;
pub mod dead_letter;
pub mod elastic;
pub mod error;
mod kept;
pub mod lsn;
pub mod pgoutput;
pub mod progress;
mod recopy;
#[cfg(feature = "cache")]
pub mod redis;
mod retry;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod status;
pub mod stream;
mod truncate;
pub mod verify;
pub mod wire;

use std::time::Duration;

use tokio::sync::watch;

#[cfg(feature = "cache")]
pub use consume::{consume, ConsumeOptions, EventTable, StreamSource};
pub use error::SyncError;
pub use lsn::Lsn;
pub use recopy::replace as recopy_entities;
pub use spec::{
    ClickHouseFlags, ClickHouseTable, ColumnSpec, ColumnType, ElasticIndex, EventsSpec, Pipeline,
    RedisEntity, TableSpec, TargetSpec,
};
pub use status::{status, Status};
pub use verify::{verify, verify_in_buckets, VerifyReport};

use apply::Targets;
use wire::{ConnInfo, ReplConn};

/// A task that ends with its owner: the reader and feedback tasks of a
/// stream hold the replication socket, and must not keep the slot busy
/// after the run that started them is dropped.
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Backtick-quotes a ClickHouse identifier.
pub fn quote_ch(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// How a run behaves. Built with `with_*`; the defaults suit a small
/// server (2 snapshot connections, 50,000-row chunks, writes at least
/// every 100 ms).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub(crate) chunk_rows: i64,
    pub(crate) snapshot_workers: usize,
    pub(crate) progress: bool,
    pub(crate) max_batch_rows: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_delay: Duration,
    pub(crate) channel_messages: usize,
    pub(crate) dead_letters: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            chunk_rows: 50_000,
            snapshot_workers: 2,
            progress: true,
            max_batch_rows: 50_000,
            max_batch_bytes: 32 << 20,
            max_delay: Duration::from_millis(100),
            channel_messages: 8_192,
            dead_letters: false,
        }
    }
}

impl RunOptions {
    /// Rows per snapshot chunk (the unit of resumption): each table's
    /// pages are cut into ranges of about `n` rows (at least one page),
    /// and the snapshot writes pieces of at most `n` rows.
    pub fn with_chunk_rows(mut self, n: i64) -> Self {
        self.chunk_rows = n.max(1);
        self
    }
    /// Connections copying the snapshot in parallel.
    pub fn with_snapshot_workers(mut self, n: usize) -> Self {
        self.snapshot_workers = n.max(1);
        self
    }
    /// Show the snapshot's progress on stderr (a bar on a terminal, log lines otherwise).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }
    /// Largest batch written to the targets at once (rows, bytes): bounds memory.
    pub fn with_max_batch(mut self, rows: usize, bytes: usize) -> Self {
        self.max_batch_rows = rows.max(1);
        self.max_batch_bytes = bytes.max(1);
        self
    }
    /// Set aside a change whose value a target cannot hold (NaN in a
    /// decimal column, an `infinity` timestamp, a date outside the
    /// target's range) as a dead letter in `strata_sync.dead_letters` and
    /// go on, instead of stopping the pipeline ([`dead_letter`]). Off by
    /// default.
    pub fn with_dead_letters(mut self, on: bool) -> Self {
        self.dead_letters = on;
        self
    }
    /// Longest time a committed change waits before it is written.
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }
}

/// A stop signal that turns true on SIGINT or SIGTERM: the run stops after
/// writing and acknowledging its in-flight batch.
pub fn stop_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("strata sync: stopping after the in-flight batch");
        let _ = tx.send(true);
    });
    rx
}

/// Runs a pipeline until `stop` turns true: takes the pipeline's lock
/// (waiting while another runner holds it), creates the publication, the
/// slot and the targets' tables when missing, copies the initial snapshot
/// (resuming at the first chunk not done), then streams. Transient
/// failures (a connection lost, a target down, the slot still held by a
/// dying runner) restart from the acknowledged position after a wait that
/// doubles from 1 s to 30 s (plus jitter), the lock held meanwhile (so
/// `strata sync status` says the pipeline runs, and the error it retries);
/// others return. A stop set during the snapshot (or a copy made again)
/// ends the run after the chunks in flight are written; the next run
/// resumes at the first chunk not done.
/// The gauge `strata_sync_up{pipeline}` is 1 while this runs, 0 after.
///
/// A field added by a migration that also listed it in the publication
/// (what `strata migrate diff` generates) stops the run with
/// [`SyncError::SchemaReload`] before any change carrying it is applied:
/// build the pipeline again from the schema that has the field and call
/// `run` again; it adds the target column in place and resumes from the
/// acknowledged position (`strata sync run` does this itself).
pub async fn run(
    p: &Pipeline,
    opts: RunOptions,
    stop: watch::Receiver<bool>,
) -> Result<(), SyncError> {
    let up = metrics::gauge!(crate::metrics::SYNC_UP, "pipeline" => p.name.clone());
    up.set(1.0);
    let r = run_retrying(p, opts, stop).await;
    up.set(0.0);
    match &r {
        // Not a failure: the caller runs again with the new schema at once.
        Err(SyncError::SchemaReload { .. }) => {}
        Err(e) => source::record_failure(p, e).await,
        Ok(()) => {}
    }
    r
}

/// Waits between attempts to start (or restart) a pipeline: doubling from
/// 1 s up to 30 s, each plus up to as much again of random jitter, as
/// target writes back off ([`retry::forever`]); started again from 1 s
/// once an attempt got its targets ready.
fn start_backoff() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// How often the connection holding the pipeline's lock is checked
/// while an attempt runs.
const LOCK_CHECK: Duration = Duration::from_secs(5);

async fn run_retrying(
    p: &Pipeline,
    opts: RunOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SyncError> {
    p.validate()?;
    let mut waits = start_backoff();
    // The pipeline's advisory lock, held across the attempts on a
    // connection of its own: `strata sync status` tells the runner by it,
    // also while a target is down at the start and the run retries.
    let mut lock: Option<sqlx::PgConnection> = None;
    loop {
        let mut ready = false;
        let r = attempt(p, &opts, stop.clone(), &mut lock, &mut ready).await;
        match r {
            Ok(()) => break,
            Err(e) if e.is_transient() && !*stop.borrow() => {
                if ready {
                    waits = start_backoff();
                }
                let wait = waits.next().unwrap_or(Duration::from_secs(30));
                eprintln!(
                    "strata sync: pipeline `{}`: {e}; restarting from the acknowledged position in {:.1}s",
                    p.name,
                    wait.as_secs_f64()
                );
                // For `strata sync status` ("retrying …"); best effort.
                if let Some(c) = lock.as_mut() {
                    source::record_retry(c, p, &e).await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
            Err(e) => return Err(e),
        }
        if *stop.borrow() {
            break;
        }
    }
    // Stopped: an error a retry recorded is not the run's failure.
    if let Some(c) = lock.as_mut() {
        let _ = source::clear_failure(c, p).await;
    }
    Ok(())
}

/// One attempt: takes the pipeline's lock unless `lock` still holds it
/// (waiting while another runner holds it), then runs until the stop,
/// an error, or the lock's connection is lost (a transient error: the
/// lock may be free, so the attempt ends and the next takes it again).
/// `ready` turns true once the targets are ready.
async fn attempt(
    p: &Pipeline,
    opts: &RunOptions,
    mut stop: watch::Receiver<bool>,
    lock: &mut Option<sqlx::PgConnection>,
    ready: &mut bool,
) -> Result<(), SyncError> {
    if let Some(c) = lock.as_mut() {
        if sqlx::query("SELECT 1").execute(&mut *c).await.is_err() {
            *lock = None;
        }
    }
    if lock.is_none() {
        let mut c = source::connect(&p.source_url).await?;
        source::check_server(&mut c).await?;
        tokio::select! {
            r = source::lock(&mut c, p) => r?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        source::ensure_meta(&mut c).await?;
        source::clear_failure(&mut c, p).await?;
        *lock = Some(c);
    }
    let Some(held) = lock.as_mut() else {
        return Err(SyncError::Source(
            "the pipeline's lock was not taken".into(),
        ));
    };
    // Boxed as a `dyn` future: the whole run's future type is deep enough
    // to overflow the trait solver of a caller that spawns it.
    let once: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), SyncError>> + Send + '_>,
    > = Box::pin(run_once(p, opts, stop, ready));
    tokio::select! {
        r = once => r,
        e = watch_lock(held) => Err(e),
    }
}

/// Returns once the connection holding the lock fails (checked every
/// [`LOCK_CHECK`]).
async fn watch_lock(c: &mut sqlx::PgConnection) -> SyncError {
    loop {
        tokio::time::sleep(LOCK_CHECK).await;
        if let Err(e) = sqlx::query("SELECT 1").execute(&mut *c).await {
            return SyncError::Source(format!(
                "the connection holding the pipeline's lock failed: {e}"
            ));
        }
    }
}

async fn run_once(
    p: &Pipeline,
    opts: &RunOptions,
    mut stop: watch::Receiver<bool>,
    ready: &mut bool,
) -> Result<(), SyncError> {
    let mut ctl = source::connect(&p.source_url).await?;
    source::ensure_meta(&mut ctl).await?;
    let targets = Targets::new(p)?;
    let state = source::state(&mut ctl, p).await?;
    // What the publication listed before this run touches it decides
    // whether the schema is behind the source and which copies to take
    // again (see `recopy::check_not_behind` and `recopy::plan`).
    let listed = source::published_columns(&mut ctl, p).await?;
    recopy::check_not_behind(p, &targets, &listed).await?;
    if state.as_ref().is_some_and(|s| s.snapshot_done) {
        recopy::plan(&mut ctl, p, &targets, opts, &listed).await?;
    }
    source::ensure_publication(&mut ctl, p).await?;
    // A target that refuses for good is retried for hours: a stop ends it.
    tokio::select! {
        r = targets.ensure(p) => r?,
        _ = stop.wait_for(|s| *s) => return Ok(()),
    }
    *ready = true;
    let info = ConnInfo::parse(&p.source_url)?;
    let slot = p.slot(&info.database);
    let all: Vec<usize> = (0..p.tables.len()).collect();
    let (mut conn, from) = match source::slot_position(&mut ctl, &slot).await? {
        None => {
            let mut conn = ReplConn::connect(&info, "strata-sync").await?;
            let (cp, snap) = conn.create_slot(&slot, false).await?;
            source::record_new_slot(&mut ctl, p, &slot, cp).await?;
            snapshot::plan(&mut ctl, p, &all, opts.chunk_rows).await?;
            let snap = snapshot::Snapshot::Exported(snap);
            match snapshot::run(p, &targets, snap, cp, opts, stop.clone()).await? {
                snapshot::Copied::All => source::mark_snapshot_done(&mut ctl, p).await?,
                // The next run resumes at the first chunk not done.
                snapshot::Copied::Stopped => return Ok(()),
            }
            (conn, cp)
        }
        Some(confirmed) => {
            targets.resumed_at(confirmed.0);
            let cp = match &state {
                Some(source::State {
                    consistent_point: Some(cp),
                    ..
                }) => *cp,
                _ => {
                    // Created, then the runner died before recording it: the
                    // slot has not moved (nothing streams before the snapshot).
                    source::record_new_slot(&mut ctl, p, &slot, confirmed).await?;
                    confirmed
                }
            };
            let copied = if !state.as_ref().is_some_and(|s| s.snapshot_done) {
                snapshot::plan(&mut ctl, p, &all, opts.chunk_rows).await?;
                let snap = snapshot::Snapshot::Fresh;
                let copied = snapshot::run(p, &targets, snap, cp, opts, stop.clone()).await?;
                if copied == snapshot::Copied::All {
                    source::mark_snapshot_done(&mut ctl, p).await?;
                }
                copied
            } else {
                recopy::run(&mut ctl, p, &targets, &info, opts, stop.clone()).await?
            };
            if copied == snapshot::Copied::Stopped {
                return Ok(());
            }
            (ReplConn::connect(&info, "strata-sync").await?, confirmed)
        }
    };
    if *stop.borrow() {
        return Ok(());
    }
    conn.start_replication(&slot, from, &p.publication())
        .await?;
    // Started: an error recorded by a retry is no longer the news.
    source::clear_failure(&mut ctl, p).await?;
    stream::run(p, &targets, conn, &mut ctl, from, stop, opts).await?;
    Ok(())
}

/// Removes the pipeline's slot and publication, its progress rows and
/// its dead letters (a forgotten slot keeps WAL on the server). Refuses
/// while a runner is attached to the slot.
pub async fn drop_pipeline(p: &Pipeline) -> Result<(), SyncError> {
    let mut c = source::connect(&p.source_url).await?;
    let info = ConnInfo::parse(&p.source_url)?;
    let slot = p.slot(&info.database);
    let active: Option<Option<i32>> =
        sqlx::query_scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1")
            .bind(&slot)
            .fetch_optional(&mut c)
            .await?;
    if let Some(Some(pid)) = active {
        return Err(SyncError::Config(format!(
            "slot `{slot}` is in use by a running sync (server process {pid}); stop it first"
        )));
    }
    if active.is_some() {
        sqlx::query("SELECT pg_drop_replication_slot($1)")
            .bind(&slot)
            .execute(&mut c)
            .await?;
    }
    sqlx::raw_sql(&format!(
        "DROP PUBLICATION IF EXISTS {}",
        wire::quote_ident(&p.publication())
    ))
    .execute(&mut c)
    .await?;
    let meta: bool = sqlx::query_scalar("SELECT to_regclass('strata_sync.pipelines') IS NOT NULL")
        .fetch_one(&mut c)
        .await?;
    if meta {
        sqlx::query("DELETE FROM strata_sync.chunks WHERE pipeline = $1")
            .bind(&p.name)
            .execute(&mut c)
            .await?;
        sqlx::query("DELETE FROM strata_sync.pipelines WHERE name = $1")
            .bind(&p.name)
            .execute(&mut c)
            .await?;
    }
    for table in ["dead_letters", "failures"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("strata_sync.{table}"))
            .fetch_one(&mut c)
            .await?;
        if exists {
            sqlx::query(&format!(
                "DELETE FROM strata_sync.{table} WHERE pipeline = $1"
            ))
            .bind(&p.name)
            .execute(&mut c)
            .await?;
        }
    }
    Ok(())
}
