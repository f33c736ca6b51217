//! The applier of the streaming phase: decoded pgoutput messages in, rows
//! for every target out, in commit order; a position is acknowledged only
//! once every target holds everything before it.
//!
//! [`Applier`] keeps the state between messages (the open transaction, the
//! batch, what is complete but not yet flushed); each message kind has a
//! method of its own. [`super::stream::run`] owns the reader and feedback
//! tasks and drives it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgConnection;

use super::apply::{tombstone, Batch, ChangeMeta, ChangeOp, Targets};
use super::cell::Cell;
use super::dead_letter::{self, DeadLetter};
use super::error::SyncError;
use super::kept::{self, Held, KeptValues};
use super::lsn::Lsn;
use super::pgoutput::{Datum, Message};
use super::source;
use super::spec::Pipeline;
use super::stream::{
    cells_of, from_source, keep_values, map_relation, raw_key, Kept, KeyTypes, ReadBack, RelMap,
};
use super::wire::StreamMessage;
use super::RunOptions;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How often the acknowledged position is written to the progress table
/// (and the lag metrics follow it), also when idle.
const RECORD_EVERY: Duration = Duration::from_secs(2);

/// The applier's state between messages.
pub(super) struct Applier<'a> {
    p: &'a Pipeline,
    targets: &'a Targets,
    ctl: &'a mut PgConnection,
    acked: &'a AtomicU64,
    opts: &'a RunOptions,
    /// Relation ids of the stream → their map onto a pipeline table
    /// (`None`: a table the pipeline does not carry).
    relations: HashMap<u32, Option<Arc<RelMap>>>,
    /// The source's key types of the tables whose rows were read back
    /// (see [`KeyTypes`]: a table's Relation message forgets them).
    key_types: KeyTypes,
    batch: Batch,
    /// The open transaction's version (its commit record's LSN).
    open: Option<Lsn>,
    /// The open transaction's commit time (µs since 1970).
    open_ts: i64,
    /// The index of the open transaction's next change: an event's
    /// position is (version, index).
    seq: u64,
    /// The end of the last transaction whose rows are all in `batch` or written.
    complete: Option<Lsn>,
    last_commit_us: Option<i64>,
    /// The commit time of the oldest transaction in `batch` (not yet in
    /// every target): the lag in seconds while a target is retried.
    pending_commit_us: Option<i64>,
    oldest_unflushed: Option<Instant>,
    last_record: Instant,
    /// Unchanged large values: rows of the batch by key, updates held.
    kept: KeptValues,
}

impl<'a> Applier<'a> {
    pub(super) fn new(
        p: &'a Pipeline,
        targets: &'a Targets,
        ctl: &'a mut PgConnection,
        acked: &'a AtomicU64,
        opts: &'a RunOptions,
    ) -> Self {
        Applier {
            p,
            targets,
            ctl,
            acked,
            opts,
            relations: HashMap::new(),
            key_types: KeyTypes::default(),
            batch: targets.batch(),
            open: None,
            open_ts: 0,
            seq: 0,
            complete: None,
            last_commit_us: None,
            pending_commit_us: None,
            oldest_unflushed: None,
            last_record: Instant::now(),
            kept: KeptValues::new(p),
        }
    }

    /// Writes the batch to every target, then acknowledges the last
    /// complete transaction (and records the position every
    /// [`RECORD_EVERY`]).
    pub(super) async fn flush(&mut self) -> Result<(), SyncError> {
        self.push_held().await?;
        self.write_batch().await?;
        self.kept.written();
        self.pending_commit_us = None;
        self.oldest_unflushed = None;
        if let Some(c) = self.complete.take() {
            self.acked.fetch_max(c.0, Ordering::SeqCst);
        }
        self.record_position_when_due().await
    }

    /// Writes the batch to every target. While a target is down and its
    /// write retried (for as long as the retry policy allows), the
    /// position, unchanged, is still recorded every [`RECORD_EVERY`], so
    /// the lag metrics follow the clock and show the pipeline falling
    /// behind.
    async fn write_batch(&mut self) -> Result<(), SyncError> {
        let flush = self.targets.flush(self.p, &mut self.batch);
        tokio::pin!(flush);
        loop {
            tokio::select! {
                r = &mut flush => return r,
                _ = tokio::time::sleep(RECORD_EVERY) => {
                    let at = Lsn(self.acked.load(Ordering::SeqCst));
                    let pending = self.pending_commit_us;
                    if let Err(e) = source::record_position(self.ctl, self.p, at, None, pending).await {
                        tracing::warn!(pipeline = %self.p.name, error = %e, "could not record the position while a target write is retried");
                    }
                }
            }
        }
    }

    async fn record_position_when_due(&mut self) -> Result<(), SyncError> {
        if self.last_record.elapsed() >= RECORD_EVERY {
            let at = Lsn(self.acked.load(Ordering::SeqCst));
            let (last, pending) = (self.last_commit_us, self.pending_commit_us);
            source::record_position(self.ctl, self.p, at, last, pending).await?;
            self.last_record = Instant::now();
        }
        Ok(())
    }

    /// The timer: flushes a batch older than `max_delay`; when idle, the
    /// position (and the lag metrics) still follow the acknowledged one.
    pub(super) async fn on_tick(&mut self) -> Result<(), SyncError> {
        let due = self
            .oldest_unflushed
            .is_some_and(|t| t.elapsed() >= self.opts.max_delay);
        if due && (self.complete.is_some() || self.rows() > 0) {
            self.flush().await
        } else {
            self.record_position_when_due().await
        }
    }

    /// One message of the replication stream.
    pub(super) async fn on_message(&mut self, m: StreamMessage) -> Result<(), SyncError> {
        match m {
            StreamMessage::Keepalive { end, .. } => {
                if self.open.is_none() && self.rows() == 0 && self.complete.is_none() {
                    // Idle: nothing of ours before `end` is pending, so the
                    // slot may move on (PostgreSQL's own apply worker does the same).
                    self.acked.fetch_max(end.0, Ordering::SeqCst);
                }
                Ok(())
            }
            StreamMessage::XLogData { data, .. } => {
                self.on_change(super::pgoutput::decode(data)?).await?;
                if self.rows() > 0 && self.oldest_unflushed.is_none() {
                    self.oldest_unflushed = Some(Instant::now());
                }
                if self.rows() >= self.opts.max_batch_rows
                    || self.batch.bytes() + self.kept.bytes() >= self.opts.max_batch_bytes
                    || self.kept.full()
                {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    async fn on_change(&mut self, m: Message) -> Result<(), SyncError> {
        match m {
            Message::Begin {
                final_lsn,
                commit_time_us,
                ..
            } => {
                self.open = Some(final_lsn);
                self.open_ts = commit_time_us.saturating_add(PG_EPOCH_MICROS);
                self.seq = 0;
            }
            Message::Commit {
                end_lsn,
                commit_time_us,
                ..
            } => self.commit(end_lsn, commit_time_us),
            Message::Relation {
                id,
                namespace,
                name,
                columns,
            } => {
                let mut m = map_relation(self.p, &namespace, &name, &columns)?;
                if let Some(m) = &mut m {
                    self.key_types.forget(m.table);
                    m.keys_only = !self.targets.need_values(m.table);
                    if !m.keys_only {
                        self.unknown_column(m, &columns).await?;
                    }
                }
                self.relations.insert(id, m.map(Arc::new));
            }
            Message::Insert { rel, new } => {
                if let Some(m) = self.relation(rel) {
                    let r = self.insert(&m, &new);
                    self.set_aside(r, &m, &new).await?;
                }
            }
            Message::Update { rel, old, new } => {
                if let Some(m) = self.relation(rel) {
                    let r = self.update(&m, old.as_deref(), &new).await;
                    self.set_aside(r, &m, &new).await?;
                }
            }
            Message::Delete { rel, old } => {
                if let Some(m) = self.relation(rel) {
                    let r = self.delete(&m, &old);
                    self.set_aside(r, &m, &old).await?;
                }
            }
            Message::Truncate { rels } => self.truncate(&rels).await?,
            Message::Other(_) => {}
        }
        Ok(())
    }

    /// A relation that publishes a column the pipeline does not copy: a
    /// migration added a field and listed it in the publication in its
    /// own transaction. Its changes would reach the targets without the
    /// value, and the next run with the new schema would not know they
    /// lacked it. So stop here, before any change of this relation is
    /// applied (the Relation message precedes them): what is complete is
    /// written and acknowledged, nothing after it, and
    /// [`SyncError::SchemaReload`] tells the caller to run again with the
    /// schema that has the field. A table whose targets take only its
    /// keys (a cache's invalidation) does not need the value and goes on.
    async fn unknown_column(
        &mut self,
        m: &RelMap,
        columns: &[super::pgoutput::RelColumn],
    ) -> Result<(), SyncError> {
        let t = &self.p.tables[m.table];
        let Some(extra) = (columns.iter()).find(|rc| !t.columns.iter().any(|c| c.name == rc.name))
        else {
            return Ok(());
        };
        // The open transaction's rows are written too (as a large
        // transaction's are): idempotent, and replayed from the acknowledged
        // position, which stays at the last complete transaction.
        self.flush().await?;
        Err(SyncError::SchemaReload {
            table: t.source_table.clone(),
            column: extra.name.clone(),
        })
    }

    /// The source as [`from_source`] reads rows back from it.
    fn read_back(&mut self) -> ReadBack<'_> {
        ReadBack {
            ctl: &mut *self.ctl,
            key_types: &mut self.key_types,
        }
    }

    fn relation(&self, rel: u32) -> Option<Arc<RelMap>> {
        self.relations.get(&rel)?.clone()
    }

    fn commit(&mut self, end_lsn: Lsn, commit_time_us: i64) {
        self.open = None;
        self.complete = Some(end_lsn);
        self.last_commit_us = Some(commit_time_us);
        if self.rows() == 0 {
            // A transaction with nothing of ours (or flushed already).
            self.acked.fetch_max(end_lsn.0, Ordering::SeqCst);
            self.complete = None;
        } else {
            self.pending_commit_us.get_or_insert(commit_time_us);
            self.oldest_unflushed.get_or_insert_with(Instant::now);
        }
    }

    /// The open transaction's version; a change outside one is a decoding fault.
    fn version(&self) -> Result<u64, SyncError> {
        (self.open.map(|v| v.0))
            .ok_or_else(|| SyncError::Decode("a change outside a transaction".into()))
    }

    /// The position of the open transaction's next change.
    fn meta(&mut self, op: ChangeOp) -> Option<ChangeMeta> {
        let m = ChangeMeta {
            op,
            seq: self.seq,
            ts_us: self.open_ts,
        };
        self.seq += 1;
        Some(m)
    }

    fn push(
        &mut self,
        table: usize,
        cells: &[Cell],
        deleted: bool,
        op: ChangeOp,
    ) -> Result<(), SyncError> {
        let (v, meta) = (self.version()?, self.meta(op));
        if self.kept.rows() > 0 {
            // After a held update, every change is held (the targets take
            // them in stream order), checked now so that a refused one is
            // set aside now.
            let mut check = self.targets.batch();
            (self.targets).push(self.p, &mut check, table, cells, v, deleted, meta)?;
            self.kept.hold(Held {
                table,
                cells: cells.to_vec(),
                version: v,
                deleted,
                meta,
                invalidation: false,
                unknown: Vec::new(),
                lookup: Vec::new(),
                raw_key: Vec::new(),
            });
        } else {
            (self.targets).push(self.p, &mut self.batch, table, cells, v, deleted, meta)?;
        }
        (self.kept).pushed(&self.p.tables[table], table, cells, deleted, &[], None);
        Ok(())
    }

    /// Only the cache invalidation of a row (held after a held update).
    fn invalidate(&mut self, table: usize, cells: &[Cell]) -> Result<(), SyncError> {
        if self.kept.rows() > 0 {
            self.kept.hold(Held {
                table,
                cells: cells.to_vec(),
                version: self.version()?,
                deleted: false,
                meta: None,
                invalidation: true,
                unknown: Vec::new(),
                lookup: Vec::new(),
                raw_key: Vec::new(),
            });
            return Ok(());
        }
        (self.targets).push_invalidation(self.p, &mut self.batch, table, cells)
    }

    /// Rows pending: in the batch, and held.
    fn rows(&self) -> usize {
        self.batch.rows + self.kept.rows()
    }

    /// Fills the held updates (one ClickHouse read per table, before the
    /// batch is written) and pushes every held change, in order. An update
    /// whose row the copy lacks is filled from the source row as it is now,
    /// or becomes only a cache invalidation when the row is gone from the
    /// source (see [`keep_values`]); a value a target refuses stops the
    /// pipeline or (with dead letters) is set aside.
    async fn push_held(&mut self) -> Result<(), SyncError> {
        if self.kept.rows() == 0 {
            return Ok(());
        }
        let missing = self.kept.resolve(self.p, self.targets).await?;
        let held = std::mem::take(&mut self.kept.held);
        let (p, targets) = (self.p, self.targets);
        for (mut h, miss) in held.into_iter().zip(missing) {
            let filled = match miss {
                true => {
                    let src = &mut self.read_back();
                    from_source(src, p, h.table, &mut h.cells, &h.unknown).await
                }
                false => Ok(Kept::Filled),
            };
            let r = match filled {
                Err(e) => Err(e),
                Ok(Kept::RowGone) => {
                    targets.push_invalidation(p, &mut self.batch, h.table, &h.cells)
                }
                Ok(Kept::Filled) if h.invalidation => {
                    targets.push_invalidation(p, &mut self.batch, h.table, &h.cells)
                }
                Ok(Kept::Filled) => targets.push(
                    p,
                    &mut self.batch,
                    h.table,
                    &h.cells,
                    h.version,
                    h.deleted,
                    h.meta,
                ),
            };
            let Err(e) = r else {
                continue;
            };
            if !self.opts.dead_letters {
                return Err(e);
            }
            let letter = DeadLetter::of(e, h.raw_key, Lsn(h.version))?;
            dead_letter::record(self.ctl, p, std::slice::from_ref(&letter)).await?;
            targets.push_invalidation(p, &mut self.batch, h.table, &h.cells)?;
        }
        Ok(())
    }

    fn insert(&mut self, m: &RelMap, new: &[Datum]) -> Result<(), SyncError> {
        let cells = cells_of(self.p, m, new, None, m.keys_only, &mut Vec::new())?;
        self.push(m.table, &cells, false, ChangeOp::Insert)
    }

    fn delete(&mut self, m: &RelMap, old: &[Datum]) -> Result<(), SyncError> {
        let key = cells_of(self.p, m, old, None, true, &mut Vec::new())?;
        self.push(
            m.table,
            &tombstone(self.p, m.table, key),
            true,
            ChangeOp::Delete,
        )
    }

    /// An update: its unsent large values filled in (see [`keep_values`]),
    /// and a moved key written as the old key's delete and the new key's
    /// insert.
    async fn update(
        &mut self,
        m: &RelMap,
        old: Option<&[Datum]>,
        new: &[Datum],
    ) -> Result<(), SyncError> {
        self.version()?;
        let p = self.p;
        let mut unknown = Vec::new();
        let mut cells = cells_of(p, m, new, old, m.keys_only, &mut unknown)?;
        // The key before the update (sent when it changed).
        let old_key = old
            .map(|o| cells_of(p, m, o, None, true, &mut Vec::new()))
            .transpose()?;
        let keys = p.tables[m.table].key_indexes();
        let key_moved = (old_key.as_ref()).is_some_and(|o| keys.iter().any(|&k| o[k] != cells[k]));
        let mut gone = false;
        // Columns left to read from the copy when the batch is written,
        // and the key the copy holds the row under (see `kept`).
        let mut held: Option<(Vec<usize>, Vec<Cell>)> = None;
        if !unknown.is_empty() {
            let t = &p.tables[m.table];
            let before = old_key.as_deref().filter(|_| key_moved);
            // The targets hold the row under its key before.
            let lookup: Vec<Cell> = (t.columns.iter().enumerate())
                .map(|(i, c)| match (c.key, before) {
                    (false, _) => Cell::Null,
                    (true, Some(b)) => b[i].clone(),
                    (true, None) => cells[i].clone(),
                })
                .collect();
            let mut left = Some((unknown.clone(), lookup));
            if !self.kept.per_row {
                if !self.kept.followed(m.table) {
                    // From now on the batch's rows of this table are
                    // followed; what is pending before is written first.
                    self.flush().await?;
                    self.kept.follow(m.table);
                }
                left = (self.kept).fill(t, m.table, &mut cells, &left.unwrap().1, &unknown);
            }
            match left {
                // Filled from the batch's newer row of the key.
                Some((l, _)) if l.is_empty() => {}
                Some(l) if !self.kept.per_row && kept::copied(self.targets, m.table) => {
                    held = Some(l);
                }
                left => {
                    // Keep the value the target holds: write what is
                    // pending first, so the target is current.
                    self.flush().await?;
                    let unknown = left.map_or(unknown, |(l, _)| l);
                    let targets = self.targets;
                    let src = &mut self.read_back();
                    let kept = keep_values(p, targets, src, m.table, &mut cells, before, &unknown);
                    gone = Box::pin(kept).await? == Kept::RowGone;
                }
            }
        }
        if let (true, Some(old_key)) = (key_moved, old_key) {
            // The key changed: the old key is deleted.
            self.push(
                m.table,
                &tombstone(p, m.table, old_key),
                true,
                ChangeOp::Delete,
            )?;
        }
        if gone {
            // Its value is lost with the row; the row's own delete follows.
            // Only the cache learns of it.
            return self.invalidate(m.table, &cells);
        }
        // A moved key is a new row under its new key.
        let op = if key_moved {
            ChangeOp::Insert
        } else {
            ChangeOp::Update
        };
        let Some((unknown, lookup)) = held else {
            return self.push(m.table, &cells, false, op);
        };
        // Held until the batch is written, checked now (the columns to
        // read hold zeros).
        let (v, meta) = (self.version()?, self.meta(op));
        let mut check = self.targets.batch();
        (self.targets).push(p, &mut check, m.table, &cells, v, false, meta)?;
        let t = &p.tables[m.table];
        (self.kept).pushed(t, m.table, &cells, false, &unknown, Some(&lookup));
        self.kept.hold(Held {
            table: m.table,
            cells,
            version: v,
            deleted: false,
            meta,
            invalidation: false,
            unknown,
            lookup,
            raw_key: raw_key(p, m, new),
        });
        Ok(())
    }

    /// A TRUNCATE of tables the pipeline carries: the transaction's rows
    /// before it are written first, then every target empties its copies.
    async fn truncate(&mut self, rels: &[u32]) -> Result<(), SyncError> {
        let tables: Vec<usize> = (rels.iter())
            .filter_map(|r| Some(self.relations.get(r)?.as_ref()?.table))
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        let v = self.version()?;
        self.flush().await?;
        let meta = self.meta(ChangeOp::Truncate).expect("a position");
        self.targets.truncate(self.p, &tables, v, meta).await
    }

    /// A change a target refused (`r` is its error): stop, or (with dead
    /// letters) record it before its position can be acknowledged,
    /// tombstone its cache key, and go on.
    async fn set_aside(
        &mut self,
        r: Result<(), SyncError>,
        m: &RelMap,
        tuple: &[Datum],
    ) -> Result<(), SyncError> {
        let Err(e) = r else {
            return Ok(());
        };
        if !self.opts.dead_letters {
            return Err(e);
        }
        let v = Lsn(self.version()?);
        let letter = DeadLetter::of(e, raw_key(self.p, m, tuple), v)?;
        dead_letter::record(self.ctl, self.p, std::slice::from_ref(&letter)).await?;
        if let Ok(key) = cells_of(self.p, m, tuple, None, true, &mut Vec::new()) {
            self.invalidate(m.table, &key)?;
        }
        Ok(())
    }
}
