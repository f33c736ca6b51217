//! Change capture's ClickHouse and Elasticsearch targets as consumers of
//! the event streams, in other processes (`strata sync consume`): the
//! stream lives on Redis (Cluster), the consumers split its partitions.
//!
//! - **Assignment**: per-partition leases in Redis ([`lease`]): each
//!   consumer heartbeats into a membership set, holds at most its fair
//!   share of `(entity, partition)` leases (`SET NX PX`, renewed every
//!   `lease / 5`), gives back what is over it, takes free ones. One reader
//!   per partition keeps per-key order.
//! - **Progress**: a Redis consumer group per partition (`XREADGROUP`,
//!   `XACK` after the target took the rows). A new holder first takes the
//!   partition's pending entries over (`XAUTOCLAIM`), so what a killed
//!   consumer read but never wrote is written: **at-least-once**. Targets
//!   keep one version per key (version = commit LSN), so a replay changes
//!   nothing.
//! - **First start of a group**: one consumer (a lock in Redis) copies the
//!   tables from PostgreSQL at version 0, below every change; the group
//!   then reads every entry the streams still hold, so rows changed since
//!   end at their latest change. Changes trimmed before a consumer read
//!   them are lost to it: size `max_len` for the longest outage.

pub mod from_event;
pub mod lease;
mod recopy;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::Row;
use tokio::sync::watch;

use super::apply::{tombstone, Targets};
use super::cell;
use super::dead_letter::{self, DeadLetter};
use super::error::SyncError;
use super::lsn::Lsn;
use super::spec::Pipeline;
use crate::events::{Change, Client, GroupReader, Op, Position};
use lease::{fair_share, Leases, Unit};

/// The event streams a consuming pipeline reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamSource {
    /// The redis store's URL (one node, Cluster or Sentinel).
    pub url: String,
    pub key_prefix: String,
    pub tables: Vec<EventTable>,
}

/// The streams of one pipeline table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventTable {
    /// Index into the pipeline's tables.
    pub table: usize,
    pub entity: String,
    pub partitions: u16,
    /// The JSON name of each table column (the entity's field names).
    pub fields: Vec<String>,
}

/// Settings of [`consume`]; built with `new` and `with_*`.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    group: String,
    consumer: String,
    lease: Duration,
    batch: usize,
    dead_letters: bool,
}

impl ConsumeOptions {
    /// Consumer `consumer` of group `group` (one group per copy).
    pub fn new(group: impl Into<String>, consumer: impl Into<String>) -> Self {
        ConsumeOptions {
            group: group.into(),
            consumer: consumer.into(),
            lease: Duration::from_secs(5),
            batch: 2_000,
            dead_letters: false,
        }
    }
    /// How long a lease outlives its holder (default 5 s; renewed every fifth).
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lease = d.max(Duration::from_millis(500));
        self
    }
    /// Entries read per partition and round (default 2,000).
    pub fn with_batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
    /// Sets aside a change whose value a target cannot hold (or whose
    /// event the copy cannot read) as a dead letter in the source
    /// database's `strata_sync.dead_letters`, recorded before the entry is
    /// acknowledged, and goes on, instead of stopping (as
    /// [`super::RunOptions::with_dead_letters`] does for `sync run`; see
    /// [`super::dead_letter`]). Off by default.
    pub fn with_dead_letters(mut self, on: bool) -> Self {
        self.dead_letters = on;
        self
    }
}

fn redis_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::Target {
        target: "redis (event streams)".into(),
        message: e.to_string(),
    }
}

/// Consumes until `stop` turns true; transient failures (Redis or a
/// target down) restart the loop after a second, keeping the leases'
/// partitions' pending entries for whoever holds them next.
pub async fn consume(
    p: &Pipeline,
    src: &StreamSource,
    opts: ConsumeOptions,
    stop: watch::Receiver<bool>,
) -> Result<(), SyncError> {
    p.validate()?;
    loop {
        match consume_once(p, src, &opts, stop.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && !*stop.borrow() => {
                eprintln!("strata sync consume: `{}`: {e}; restarting", p.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

struct Consumer<'a> {
    p: &'a Pipeline,
    src: &'a StreamSource,
    opts: &'a ConsumeOptions,
    targets: Targets,
    client: Client,
    leases: Leases,
    units: Vec<Unit>,
    owned: BTreeMap<Unit, GroupReader<Value>>,
}

async fn consume_once(
    p: &Pipeline,
    src: &StreamSource,
    opts: &ConsumeOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SyncError> {
    let targets = Targets::new(p)?;
    let client = Client::connect(&src.url, &src.key_prefix)
        .await
        .map_err(redis_err)?;
    let leases = Leases::new(&client, &opts.group, &opts.consumer, opts.lease);
    let units = (src.tables.iter())
        .flat_map(|t| {
            (0..t.partitions).map(|partition| Unit {
                table: t.table,
                entity: t.entity.clone(),
                partition,
            })
        })
        .collect();
    let mut c = Consumer {
        p,
        src,
        opts,
        targets,
        client,
        leases,
        units,
        owned: BTreeMap::new(),
    };
    // Tables whose copy gains columns are noted before they gain them.
    c.plan_recopy().await?;
    // A target that refuses for good is retried for hours: a stop ends it.
    tokio::select! {
        r = c.targets.ensure(p) => r?,
        _ = stop.wait_for(|s| *s) => return Ok(()),
    }
    c.snapshot_once(&mut stop).await?;
    c.recopy_pending(&mut stop).await?;
    let result = c.run(&mut stop).await;
    c.leave().await;
    result
}

impl Consumer<'_> {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), SyncError> {
        let mut last = Instant::now() - self.opts.lease;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if last.elapsed() >= self.opts.lease / 5 {
                self.rebalance().await?;
                last = Instant::now();
            }
            let mut busy = false;
            let units: Vec<Unit> = self.owned.keys().cloned().collect();
            for u in units {
                let changes = self.owned[&u]
                    .read_now(self.opts.batch)
                    .await
                    .map_err(redis_err)?;
                busy |= !changes.is_empty();
                self.apply(&u, changes).await?;
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Writes changes of one partition to every target, then acknowledges them.
    async fn apply(&self, u: &Unit, changes: Vec<Change<Value>>) -> Result<(), SyncError> {
        if changes.is_empty() {
            return Ok(());
        }
        let t = (self.src.tables.iter())
            .find(|t| t.table == u.table)
            .expect("units come from the tables");
        let spec = &self.p.tables[u.table];
        let bad = |reason: String| SyncError::Value {
            table: spec.source_table.clone(),
            column: String::new(),
            reason,
        };
        let mut batch = self.targets.batch();
        let mut letters = Vec::new();
        for c in &changes {
            if c.op == Op::Truncate {
                // Each partition's consumer would have to delete the rows
                // of its own keys only, at or below the truncate's version,
                // which ClickHouse cannot select by this partitioning.
                return Err(SyncError::SchemaChanged {
                    table: spec.source_table.clone(),
                    reason: format!(
                        "a TRUNCATE at {} reached this consumer group: a copy fed from change events cannot carry it; drop the copy and start a new consumer group (or copy from the slot with `strata sync run`)",
                        c.position
                    ),
                });
            }
            let pushed = match (&c.op, &c.row) {
                (Op::Delete, _) | (_, None) => {
                    from_event::key_cells(&spec.columns, &t.fields, &c.key)
                        .map(|key| (tombstone(self.p, u.table, key), true))
                }
                (_, Some(row)) => {
                    from_event::row_cells(&spec.columns, &t.fields, row).map(|r| (r, false))
                }
            }
            .map_err(bad)
            .and_then(|(cells, deleted)| {
                let v = c.position.lsn;
                (self.targets).push(self.p, &mut batch, u.table, &cells, v, deleted, None)
            });
            if let Err(e) = pushed {
                if !self.opts.dead_letters {
                    return Err(e);
                }
                let key = from_event::key_text(&spec.columns, &t.fields, &c.key);
                letters.push(DeadLetter::of(e, key, Lsn(c.position.lsn))?);
            }
        }
        self.targets.flush(self.p, &mut batch).await?;
        if !letters.is_empty() {
            let mut pg = super::source::connect(&self.p.source_url).await?;
            super::source::ensure_meta(&mut pg).await?;
            dead_letter::record(&mut pg, self.p, &letters).await?;
        }
        let done: Vec<Position> = changes.iter().map(|c| c.position).collect();
        self.owned[u].ack(&done).await.map_err(redis_err)?;
        Ok(())
    }

    /// Heartbeats, renews, gives back what is over the fair share, takes
    /// free units up to it (claiming what their last holder left pending).
    async fn rebalance(&mut self) -> Result<(), SyncError> {
        let live = self.leases.heartbeat().await.map_err(redis_err)?;
        let share = fair_share(self.units.len(), live);
        let held: Vec<Unit> = self.owned.keys().cloned().collect();
        for u in held {
            if !self.leases.renew(&u).await.map_err(redis_err)? {
                self.owned.remove(&u);
            }
        }
        while self.owned.len() > share {
            let u = self.owned.keys().next_back().cloned().expect("non-empty");
            self.owned.remove(&u);
            self.leases.release(&u).await.map_err(redis_err)?;
        }
        let start = start_of(&self.opts.consumer, self.units.len());
        for i in 0..self.units.len() {
            if self.owned.len() >= share {
                break;
            }
            let u = self.units[(start + i) % self.units.len()].clone();
            if self.owned.contains_key(&u) || !self.leases.acquire(&u).await.map_err(redis_err)? {
                continue;
            }
            let r = self.client.group_as::<Value>(
                &u.entity,
                &self.opts.group,
                &self.opts.consumer,
                u.partition,
            );
            r.create(Position::START).await.map_err(redis_err)?;
            self.owned.insert(u.clone(), r);
            // What the last holder read and did not acknowledge, first.
            loop {
                let pending = self.owned[&u]
                    .claim(Duration::ZERO, self.opts.batch)
                    .await
                    .map_err(redis_err)?;
                if pending.is_empty() {
                    break;
                }
                self.apply(&u, pending).await?;
            }
        }
        Ok(())
    }

    /// Gives every lease back and leaves (a clean stop).
    async fn leave(&mut self) {
        for u in std::mem::take(&mut self.owned).into_keys() {
            let _ = self.leases.release(&u).await;
        }
        let _ = self.leases.leave().await;
    }

    /// On a group's first start, one consumer copies the tables at version 0.
    async fn snapshot_once(&self, stop: &mut watch::Receiver<bool>) -> Result<(), SyncError> {
        let done = format!("{}:snapshot", self.p.name);
        loop {
            if self.leases.get(&done).await.map_err(redis_err)?.is_some() || *stop.borrow() {
                return Ok(());
            }
            let lock = format!("{}:snapshot:lock", self.p.name);
            if self
                .leases
                .set_nx(&lock, Duration::from_secs(600))
                .await
                .map_err(redis_err)?
            {
                let all: Vec<usize> = self.src.tables.iter().map(|t| t.table).collect();
                let copy = self.copy_tables(&all, None, 0);
                self.holding(&lock, Duration::from_secs(600), copy).await?;
                return self
                    .leases
                    .set(&done, &self.opts.consumer)
                    .await
                    .map_err(redis_err);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Runs `work` while keeping lock `lock` (taken for `ttl`), extended
    /// every third of `ttl`: a copy longer than the lock's time is not
    /// started a second time by another consumer. A lock lost meanwhile
    /// (Redis lost it) is logged; the copy goes on (it is idempotent).
    async fn holding<T>(
        &self,
        lock: &str,
        ttl: Duration,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(ttl / 3);
        tick.tick().await; // the first tick is now
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    if !self.leases.extend(lock, ttl).await.unwrap_or(false) {
                        tracing::warn!(pipeline = %self.p.name, lock, "lost the copy's lock; another consumer may copy too (harmless: the copy is idempotent)");
                    }
                }
            }
        }
    }

    /// Copies pipeline tables `tables` from PostgreSQL at `version`, in
    /// the exported snapshot `snapshot` when given.
    async fn copy_tables(
        &self,
        tables: &[usize],
        snapshot: Option<&str>,
        version: u64,
    ) -> Result<(), SyncError> {
        let mut pg = super::source::connect(&self.p.source_url).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut pg)
            .await?;
        if let Some(name) = snapshot {
            if !name.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(SyncError::Decode(format!(
                    "unexpected snapshot name `{name}`"
                )));
            }
            sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{name}'"))
                .execute(&mut pg)
                .await?;
        }
        for &table in tables {
            let spec = &self.p.tables[table];
            let cols: Vec<String> = (spec.columns.iter())
                .map(|c| format!("{}::text", super::wire::quote_ident(&c.name)))
                .collect();
            let sql = format!(
                "SELECT {} FROM {}.{}",
                cols.join(", "),
                super::wire::quote_ident(&spec.source_schema),
                super::wire::quote_ident(&spec.source_table)
            );
            let mut batch = self.targets.batch();
            let mut rows = sqlx::query(&sql).fetch(&mut pg);
            while let Some(r) = rows.try_next().await? {
                let mut cells = Vec::with_capacity(spec.columns.len());
                for (i, col) in spec.columns.iter().enumerate() {
                    let text: Option<&str> = r.try_get(i)?;
                    cells.push(
                        cell::parse_pg(col, text).map_err(|reason| SyncError::Value {
                            table: spec.source_table.clone(),
                            column: col.name.clone(),
                            reason,
                        })?,
                    );
                }
                self.targets
                    .push(self.p, &mut batch, table, &cells, version, false, None)?;
                if batch.rows >= 20_000 {
                    self.targets.flush(self.p, &mut batch).await?;
                }
            }
            self.targets.flush(self.p, &mut batch).await?;
        }
        sqlx::query("COMMIT").execute(&mut pg).await?;
        Ok(())
    }
}

/// Where a consumer starts looking for free units: spread by its name.
fn start_of(consumer: &str, n: usize) -> usize {
    let h = consumer.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % n.max(1) as u64) as usize
}
