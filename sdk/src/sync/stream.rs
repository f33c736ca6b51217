//! The streaming phase: decode pgoutput, apply to every target in commit
//! order, acknowledge only what every target holds.
//!
//! Three tasks: a reader (socket → bounded channel, so a slow target
//! pushes back on the server instead of filling memory), a feedback task
//! (a Standby Status Update every second and whenever the server asks,
//! with the acknowledged position, so the server does not time the
//! connection out while a target write is being retried), and the applier
//! below.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use tokio::sync::{mpsc, watch, Notify};

use super::applier::Applier;
use super::apply::Targets;
use super::cell::{self, Cell};
use super::error::SyncError;
use super::lsn::Lsn;
use super::pgoutput::{Datum, RelColumn};
use super::source;
use super::spec::{ColumnSpec, Pipeline, TableSpec};
use super::wire::{ReplConn, StreamMessage};
use super::RunOptions;

/// How a relation's published columns map onto the pipeline table.
pub(super) struct RelMap {
    pub table: usize,
    /// For each pipeline column, its position in the relation's tuples.
    pub positions: Vec<usize>,
    /// The targets take only the keys of this table (a cache's
    /// invalidation): the other values are not decoded, so one that no
    /// target could hold (a NaN decimal) cannot stop the invalidations.
    pub keys_only: bool,
}

pub(super) fn map_relation(
    p: &Pipeline,
    namespace: &str,
    name: &str,
    cols: &[RelColumn],
) -> Result<Option<RelMap>, SyncError> {
    let Some(ti) = p
        .tables
        .iter()
        .position(|t| t.source_schema == namespace && t.source_table == name)
    else {
        return Ok(None);
    };
    let t = &p.tables[ti];
    let mut positions = Vec::with_capacity(t.columns.len());
    for c in &t.columns {
        match cols.iter().position(|rc| rc.name == c.name) {
            Some(i) => positions.push(i),
            // A nullable field the schema gained: changes decoded before
            // the publication listed it carry no value for it.
            None if c.nullable && !c.array => positions.push(usize::MAX),
            None => {
                return Err(SyncError::SchemaChanged {
                    table: t.source_table.clone(),
                    reason: format!(
                        "field `{}` is no longer published (dropped or renamed at the source): this table's sync stopped; copy it again into a new table version with `strata sync drop` then `strata sync run`",
                        c.name
                    ),
                })
            }
        }
    }
    Ok(Some(RelMap {
        table: ti,
        positions,
        keys_only: false,
    }))
}

/// The cells of a tuple; `unknown` receives the columns left unchanged
/// and unsent (a TOASTed value) that no old row carries, holding a zero
/// until [`keep_values`] fills them.
pub(super) fn cells_of(
    p: &Pipeline,
    m: &RelMap,
    new: &[Datum],
    old: Option<&[Datum]>,
    key_only: bool,
    unknown: &mut Vec<usize>,
) -> Result<Vec<Cell>, SyncError> {
    let t = &p.tables[m.table];
    let mut out = Vec::with_capacity(t.columns.len());
    for (col, &pos) in t.columns.iter().zip(&m.positions) {
        if key_only && !col.key {
            out.push(cell::zero(col));
            continue;
        }
        let mut d = new.get(pos).unwrap_or(&Datum::Null);
        if matches!(d, Datum::Unchanged) {
            // A full old row (REPLICA IDENTITY FULL) holds the unchanged
            // value; a key-only one has NULL there.
            if let Some(o @ Datum::Text(_)) = old.and_then(|o| o.get(pos)) {
                d = o;
            }
        }
        let text = match d {
            Datum::Null => None,
            Datum::Text(b) => Some(std::str::from_utf8(b).map_err(|_| SyncError::Value {
                table: t.source_table.clone(),
                column: col.name.clone(),
                reason: "not UTF-8".into(),
            })?),
            Datum::Unchanged => {
                unknown.push(out.len());
                out.push(cell::zero(col));
                continue;
            }
        };
        out.push(parse_cell(t, col, text)?);
    }
    Ok(out)
}

/// The key columns of a tuple as PostgreSQL printed them, in column
/// order (`None` for a value not sent): a dead letter's key.
pub(super) fn raw_key(p: &Pipeline, m: &RelMap, tuple: &[Datum]) -> Vec<Option<String>> {
    let t = &p.tables[m.table];
    (t.columns.iter().zip(&m.positions))
        .filter(|(c, _)| c.key)
        .map(|(_, &pos)| match tuple.get(pos) {
            Some(Datum::Text(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

/// What [`keep_values`] found for an update's unsent large values.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kept {
    /// Filled (or not needed: the targets take only keys).
    Filled,
    /// The row is gone from the source (deleted, or its key changed, in a
    /// later transaction whose change follows in the stream): write only
    /// the cache invalidation of this update.
    RowGone,
}

/// Fills the `unknown` columns of an update ("keep values"): from the
/// first ClickHouse target's row (current there, every earlier change
/// being written); else, for targets that need values (change events,
/// Elasticsearch documents), from the source row as it is now (read on
/// `ctl` by key) — the same value unless a later transaction changed it,
/// whose own change follows in the stream. A pipeline whose targets take
/// only the keys of this table (a cache's invalidation) needs no value.
///
/// A ClickHouse copy without a live row for the key also falls back to
/// the source row. That happens on a replay after a crash (the copy already
/// holds this transaction's or a later one's delete of the key) and after a
/// snapshot resumed in a fresh snapshot (the copy holds the row under its
/// newer key, or not at all): in both, the changes after this one follow
/// in the stream, so the source row as it is now converges to the same
/// end, and a row gone from the source gives [`Kept::RowGone`] (its delete
/// follows). Stopping there instead left the pipeline failed on every
/// restart.
pub(super) async fn keep_values(
    p: &Pipeline,
    targets: &Targets,
    src: &mut ReadBack<'_>,
    table: usize,
    cells: &mut [Cell],
    before: Option<&[Cell]>,
    unknown: &[usize],
) -> Result<Kept, SyncError> {
    let t = &p.tables[table];
    // What the copies hold is under the key before a key change.
    let mut lookup = cells.to_vec();
    if let Some(old) = before {
        for k in t.key_indexes() {
            lookup[k] = old[k].clone();
        }
    }
    for target in &targets.list {
        if let super::apply::Target::ClickHouse(ch) = target {
            let Some(ti) = ch.table_for(table) else {
                continue;
            };
            if let Some(row) = ch.current_row(t, ti, &lookup).await? {
                for &i in unknown {
                    cells[i] = row[i].clone();
                }
                return Ok(Kept::Filled);
            }
            // No live row at the copy: the source row (see above).
            return from_source(src, p, table, cells, unknown).await;
        }
    }
    if !targets.need_values(table) {
        // Only cache keys are taken from this table: the value is not used.
        return Ok(Kept::Filled);
    }
    // The row's newest change event holds the value as it was before this
    // update, which left it unchanged.
    #[cfg(feature = "cache")]
    for target in &targets.list {
        if let super::apply::Target::Redis(r) = target {
            if let Some(values) = r.last_values(t, table, &lookup, unknown).await? {
                for (&i, v) in unknown.iter().zip(values) {
                    cells[i] = v;
                }
                return Ok(Kept::Filled);
            }
        }
    }
    from_source(src, p, table, cells, unknown).await
}

/// Fills the `unknown` columns of an update from the source row as it is
/// now ([`keep_values`]), saying so on stderr; [`Kept::RowGone`] when no
/// row has the update's key any more.
pub(super) async fn from_source(
    src: &mut ReadBack<'_>,
    p: &Pipeline,
    table: usize,
    cells: &mut [Cell],
    unknown: &[usize],
) -> Result<Kept, SyncError> {
    let t = &p.tables[table];
    let column = &t.columns[unknown[0]].name;
    match read_back(src, p, table, cells, unknown).await? {
        Some(values) => {
            for (&i, v) in unknown.iter().zip(values) {
                cells[i] = v;
            }
            eprintln!(
                "strata sync: pipeline `{}`: an update of `{}` left `{column}` (a large value) unchanged and unsent; it was read from the source row as it is now (a later transaction's value, if one changed it since)",
                p.name, t.source_table
            );
            Ok(Kept::Filled)
        }
        None => {
            eprintln!(
                "strata sync: pipeline `{}`: an update of `{}` left `{column}` (a large value) unchanged and unsent, and the row is gone from the source since: no event or document for this update, only the cache invalidation (its delete follows)",
                p.name, t.source_table
            );
            Ok(Kept::RowGone)
        }
    }
}

/// Where [`from_source`] reads rows back: the control connection, and
/// the key types already asked of its catalog.
pub(super) struct ReadBack<'a> {
    pub ctl: &'a mut PgConnection,
    pub key_types: &'a mut KeyTypes,
}

/// The SQL types of each pipeline table's key columns at the source
/// ([`super::snapshot::key_types`], a catalog query), asked the first time
/// a row of the table is read back, not every time.
///
/// What invalidates an entry: a Relation message of its table (the
/// applier calls [`KeyTypes::forget`]). pgoutput sends one before the
/// first change of a table in a stream, and again before the first change
/// decoded after any change of the table's definition (`ALTER TABLE`), so
/// the types are asked again after every schema change the stream
/// carries. The cache lives as long as the stream's applier: the run that
/// follows a [`SyncError::SchemaReload`] (re-planned with the new schema)
/// or an error starts with an empty one. A read-back of a change decoded
/// before a schema change may run after it, with the types from before:
/// a query the server refuses with cached types forgets them and is tried
/// once more ([`read_back`]).
#[derive(Default)]
pub(super) struct KeyTypes(HashMap<usize, Vec<String>>);

impl KeyTypes {
    /// The key types of pipeline table `table`, asked on `ctl` unless
    /// known.
    async fn of(
        &mut self,
        ctl: &mut PgConnection,
        p: &Pipeline,
        table: usize,
    ) -> Result<&[String], SyncError> {
        Ok(match self.0.entry(table) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(super::snapshot::key_types(ctl, p, table).await?),
        })
    }

    /// Forgets the key types of pipeline table `table` (its definition
    /// may have changed).
    pub(super) fn forget(&mut self, table: usize) {
        self.0.remove(&table);
    }
}

/// The `unknown` columns of the source row with the key in `cells`, as it
/// is now; `None` when no row has that key any more. A query that the
/// server refuses with key types from the cache is tried again with types
/// asked anew (see [`KeyTypes`]).
async fn read_back(
    src: &mut ReadBack<'_>,
    p: &Pipeline,
    table: usize,
    cells: &[Cell],
    unknown: &[usize],
) -> Result<Option<Vec<Cell>>, SyncError> {
    let cached = src.key_types.0.contains_key(&table);
    let row = match select_by_key(src, p, table, cells, unknown).await {
        Err(SyncError::Sql(sqlx::Error::Database(_))) if cached => {
            src.key_types.forget(table);
            select_by_key(src, p, table, cells, unknown).await
        }
        r => r,
    };
    let Some(row) = row? else {
        return Ok(None);
    };
    let t = &p.tables[table];
    let mut out = Vec::with_capacity(unknown.len());
    for (n, &i) in unknown.iter().enumerate() {
        let text: Option<&str> = sqlx::Row::try_get(&row, n)?;
        let col = &t.columns[i];
        out.push(parse_cell(t, col, text)?);
    }
    Ok(Some(out))
}

/// The `unknown` columns (as text) of the source row with the key in
/// `cells`. The key is bound as text and cast to its column's type (so
/// the key's index is used).
async fn select_by_key(
    src: &mut ReadBack<'_>,
    p: &Pipeline,
    table: usize,
    cells: &[Cell],
    unknown: &[usize],
) -> Result<Option<sqlx::postgres::PgRow>, SyncError> {
    let t = &p.tables[table];
    let types = src.key_types.of(src.ctl, p, table).await?;
    let keys = t.key_indexes();
    let cond: Vec<String> = (keys.iter().zip(types).enumerate())
        .map(|(n, (&k, ty))| {
            format!(
                "{} = ${}::{ty}",
                super::wire::quote_ident(&t.columns[k].name),
                n + 1
            )
        })
        .collect();
    let cols: Vec<String> = (unknown.iter())
        .map(|&i| format!("{}::text", super::wire::quote_ident(&t.columns[i].name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        cols.join(", "),
        source::qualified(t),
        cond.join(" AND ")
    );
    let mut q = sqlx::query(&sql);
    for &k in &keys {
        q = q.bind(pg_input(&cells[k]));
    }
    Ok(q.fetch_optional(&mut *src.ctl).await?)
}

/// A key cell in PostgreSQL's text input form.
/// A source column's text (`None`: SQL NULL) as a cell of its copy;
/// [`SyncError::Value`] names the table and column when it cannot be one.
fn parse_cell(t: &TableSpec, col: &ColumnSpec, text: Option<&str>) -> Result<Cell, SyncError> {
    cell::parse_pg(col, text).map_err(|reason| SyncError::Value {
        table: t.source_table.clone(),
        column: col.name.clone(),
        reason,
    })
}

fn pg_input(c: &Cell) -> String {
    match c {
        Cell::Bytes(b) => format!("\\x{}", hex::encode(b)),
        other => cell::key_text(other),
    }
}

/// Why the stream returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop; everything applied was acknowledged.
    Stopped,
}

/// Streams from `from` until `stop` turns true or an error.
pub async fn run(
    p: &Pipeline,
    targets: &Targets,
    conn: ReplConn,
    ctl: &mut PgConnection,
    from: Lsn,
    mut stop: watch::Receiver<bool>,
    opts: &RunOptions,
) -> Result<Ended, SyncError> {
    let (mut reader, mut writer) = conn.into_split();
    let acked = Arc::new(AtomicU64::new(from.0));
    let wake = Arc::new(Notify::new());
    let (tx, mut rx) = mpsc::channel::<Result<StreamMessage, SyncError>>(opts.channel_messages);
    let wake_r = wake.clone();
    let _reader_task = super::AbortOnDrop(tokio::spawn(async move {
        loop {
            let m = reader.next_message().await;
            if let Ok(StreamMessage::Keepalive { reply: true, .. }) = &m {
                wake_r.notify_one();
            }
            let failed = m.is_err();
            if tx.send(m).await.is_err() || failed {
                break;
            }
        }
    }));
    let (fb_stop_tx, mut fb_stop) = watch::channel(false);
    let (acked_f, wake_f) = (acked.clone(), wake.clone());
    let mut feedback = super::AbortOnDrop(tokio::spawn(async move {
        let (mut sent, mut last) = (0u64, Instant::now());
        loop {
            let asked = tokio::select! {
                _ = wake_f.notified() => true,
                _ = tokio::time::sleep(Duration::from_millis(50)) => false,
                _ = fb_stop.changed() => {
                    let _ = writer.send_status(Lsn(acked_f.load(Ordering::SeqCst)), false).await;
                    break;
                }
            };
            // A position that moved is reported within 50 ms (the slot
            // frees its WAL, `caught up` shows sooner); an unmoved one
            // every second, or when the server asks.
            let now = acked_f.load(Ordering::SeqCst);
            if !asked && now == sent && last.elapsed() < Duration::from_secs(1) {
                continue;
            }
            if writer.send_status(Lsn(now), false).await.is_err() {
                break;
            }
            (sent, last) = (now, Instant::now());
        }
    }));

    let applier = Applier::new(p, targets, ctl, &acked, opts);
    let result = apply_loop(applier, &mut rx, &mut stop).await;
    let _ = fb_stop_tx.send(true);
    let _ = (&mut feedback.0).await;
    let final_lsn = Lsn(acked.load(Ordering::SeqCst));
    let _ = source::record_position(ctl, p, final_lsn, None, None).await;
    result
}

/// Drives the [`Applier`] with the stream's messages, a 20 ms timer and
/// the stop signal; what is complete is flushed before returning.
async fn apply_loop(
    mut a: Applier<'_>,
    rx: &mut mpsc::Receiver<Result<StreamMessage, SyncError>>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Ended, SyncError> {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {
                if *stop.borrow() {
                    a.flush().await?;
                    return Ok(Ended::Stopped);
                }
            }
            _ = tick.tick() => a.on_tick().await?,
            m = rx.recv() => match m {
                Some(Ok(m)) => a.on_message(m).await?,
                Some(Err(e)) => {
                    // Keep what is complete before reporting the error.
                    a.flush().await?;
                    return Err(e);
                }
                None => return Err(SyncError::Source("the replication reader stopped".into())),
            },
        }
    }
}
