//! The initial copy: every row as of one snapshot, chunked by page
//! (CTID) ranges, on several connections sharing that snapshot, each
//! chunk recorded when written so that a crash resumes at chunk
//! granularity.
//!
//! **Reading.** A chunk is `COPY (SELECT … WHERE ctid >= '(lo,0)' AND
//! ctid < '(hi,0)') TO STDOUT`: a TID range scan of its pages (PostgreSQL
//! 14 and later), no index and no planning pass over the keys. The page
//! numbers are Strata's own integers, not user data. The ranges cover
//! every page: the first starts at page 0, the last has no end.
//!
//! **One snapshot per run.** Every connection of a run imports one
//! snapshot: the one the slot exported, or (resuming after a crash, when
//! that one died with its connection) a fresh one exported by the run. A
//! row visible in that snapshot sits at exactly one CTID, so it is read
//! by exactly one chunk. Rewrites (`VACUUM FULL`, `CLUSTER`) move rows to
//! other CTIDs: a table whose file (`pg_relation_filenode`) changed since
//! its chunks were planned is planned and copied anew, and each worker
//! takes `ACCESS SHARE` on the tables it copies and checks their files
//! before reading, so a rewrite waits for it (or, committed just before,
//! ends the run, which the next one plans again).
//!
//! **Versions.** Snapshot rows carry version = the slot's consistent
//! point `cp`; every transaction the stream delivers commits after `cp`,
//! so its rows carry a larger version (its commit LSN). The stream starts
//! at `cp` only after the snapshot is done (the slot's position does not
//! move before). A row copied from a later snapshot than the exported
//! one is therefore safe: the last transaction `L` that wrote it before
//! that snapshot either committed before `cp` (then the value equals the
//! exported snapshot's) or after `cp` (then the stream carries `L`'s
//! value with a larger version, which wins). A row deleted meanwhile is
//! absent from the later snapshot and its delete replays as a tombstone.
//! Copying a row twice at `cp` is harmless for the same reason.
//!
//! **Resuming.** Between a crash and the resumed run, an update can move
//! a row from a page range not yet copied into one already copied, where
//! the resumed run would not look. The stream brings such a row's new
//! value, but an update that leaves a large (TOASTed) value unchanged
//! does not repeat it, and the stream then needs the row at the target.
//! So a resumed run also reads again, in its snapshot, the rows of every
//! done chunk of an unfinished table whose tuple was written by a
//! transaction not older than the done chunk's snapshot (`xmin` at or
//! after that snapshot's `xmin`, compared modulo 2³²; a row that has not
//! changed since sits where that chunk read it). Those are the only rows
//! that can have moved; copying one that did not is harmless (above).
//! When 2³¹ transactions have passed since a done chunk's snapshot the
//! comparison cannot tell, and the whole chunk is read again.

mod copy;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use sqlx::{PgConnection, Row};

use super::apply::Targets;
use super::error::SyncError;
use super::lsn::Lsn;
use super::source::{self, qualified, META_SCHEMA};
use super::spec::Pipeline;
use super::wire::quote_ident;

/// One page range of one table.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub table: usize,
    pub chunk: i32,
    /// The first page.
    pub lo_page: i64,
    /// The page after the last; `None`: to the end of the table.
    pub hi_page: Option<i64>,
    pub est_rows: i64,
    /// A done chunk read again on resuming: only the rows written since
    /// the snapshot whose `xmin` (a 64-bit transaction id) is given here,
    /// or every row when `Some(None)`. `None`: a chunk to copy.
    pub again: Option<Option<i64>>,
}

impl Chunk {
    /// A done chunk read again whose snapshot is 2^31 or more transactions
    /// older than `xmax` (the resumed run's snapshot's `xmax`, 64-bit) is
    /// read again whole: `xmin`, a 32-bit id compared modulo 2^32, no
    /// longer tells which rows were written since.
    fn reread_all_past_wraparound(&mut self, xmax: i64) {
        if matches!(self.again, Some(Some(since)) if xmax - since >= 1 << 31) {
            self.again = Some(None);
        }
    }
}

/// The SQL types of pipeline table `table`'s key columns at the source
/// (`format_type`), for casting keys bound as text. Errors: a key column
/// that no longer exists ([`SyncError::SchemaChanged`]).
pub(super) async fn key_types(
    c: &mut PgConnection,
    p: &Pipeline,
    table: usize,
) -> Result<Vec<String>, SyncError> {
    let t = &p.tables[table];
    let mut out = Vec::new();
    for &k in &t.key_indexes() {
        let ty: Option<String> = sqlx::query_scalar(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped",
        )
        .bind(qualified(t))
        .bind(&t.columns[k].name)
        .fetch_optional(&mut *c)
        .await?;
        out.push(ty.ok_or_else(|| SyncError::SchemaChanged {
            table: t.source_table.clone(),
            reason: format!(
                "key column `{}` does not exist at the source",
                t.columns[k].name
            ),
        })?);
    }
    Ok(out)
}

/// Forgets the chunks of pipeline tables `tables` and plans them anew:
/// their rows are copied again by the next [`run`].
pub async fn replan(
    c: &mut PgConnection,
    p: &Pipeline,
    tables: &[usize],
    chunk_rows: i64,
) -> Result<(), SyncError> {
    let ids: Vec<i32> = tables.iter().map(|&t| t as i32).collect();
    sqlx::query(&format!(
        "DELETE FROM {}.chunks WHERE pipeline = $1 AND tbl = ANY($2)",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .bind(&ids)
    .execute(&mut *c)
    .await?;
    plan(c, p, tables, chunk_rows).await
}

/// Splits each of pipeline tables `tables` that has no chunks yet into
/// page ranges of about `chunk_rows` rows (from the table's size and row
/// estimate; at least one page each) and records them with the table's
/// file node.
pub async fn plan(
    c: &mut PgConnection,
    p: &Pipeline,
    tables: &[usize],
    chunk_rows: i64,
) -> Result<(), SyncError> {
    for &ti in tables {
        let t = &p.tables[ti];
        let have: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.chunks WHERE pipeline = $1 AND tbl = $2",
            quote_ident(META_SCHEMA)
        ))
        .bind(&p.name)
        .bind(ti as i32)
        .fetch_one(&mut *c)
        .await?;
        if have > 0 {
            continue;
        }
        let (pages, reltuples, filenode): (i64, f32, i64) = sqlx::query_as(
            "SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint, c.reltuples,
                    pg_relation_filenode(c.oid)::bigint
             FROM pg_class c WHERE c.oid = $1::regclass",
        )
        .bind(qualified(t))
        .fetch_one(&mut *c)
        .await?;
        // Never analysed (-1): count, for the progress bar's total.
        let rows = if reltuples >= 0.0 {
            reltuples as i64
        } else {
            sqlx::query_scalar(&format!("SELECT count(*) FROM {}", qualified(t)))
                .fetch_one(&mut *c)
                .await?
        };
        let per_chunk = if rows > 0 {
            ((pages * chunk_rows.max(1) + rows - 1) / rows).max(1)
        } else {
            pages.max(1)
        };
        let n = (pages.max(1) + per_chunk - 1) / per_chunk;
        for i in 0..n {
            let (lo, hi) = (i * per_chunk, (i + 1 < n).then_some((i + 1) * per_chunk));
            let span = hi.unwrap_or(pages.max(lo + 1)) - lo;
            let est = if pages > 0 { rows * span / pages } else { rows };
            sqlx::query(&format!(
                "INSERT INTO {}.chunks (pipeline, tbl, chunk, lo_page, hi_page, est_rows, filenode) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                quote_ident(META_SCHEMA)
            ))
            .bind(&p.name)
            .bind(ti as i32)
            .bind(i as i32)
            .bind(lo)
            .bind(hi)
            .bind(est.max(0))
            .bind(filenode)
            .execute(&mut *c)
            .await?;
        }
    }
    Ok(())
}

/// The work left: chunks not yet copied, done chunks of unfinished
/// tables to read again (see the module docs), and (rows done, rows
/// estimated in all) of the unfinished tables only: a copy made again of
/// one table does not count the rows of the tables copied before.
pub async fn remaining(
    c: &mut PgConnection,
    p: &Pipeline,
) -> Result<(Vec<Chunk>, u64, u64), SyncError> {
    let rows = sqlx::query(&format!(
        "SELECT tbl, chunk, COALESCE(lo_page, 0), hi_page, est_rows, done, copied_rows, snap_xmin,
                bool_and(done) OVER (PARTITION BY tbl)
         FROM {}.chunks WHERE pipeline = $1 ORDER BY tbl, chunk",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .fetch_all(&mut *c)
    .await?;
    let (mut todo, mut again) = (Vec::new(), Vec::new());
    let (mut done_rows, mut total) = (0u64, 0u64);
    for r in rows {
        let est: i64 = r.get(4);
        let done: bool = r.get(5);
        let table_done: bool = r.get(8);
        let ch = Chunk {
            table: r.get::<i32, _>(0) as usize,
            chunk: r.get(1),
            lo_page: r.get(2),
            hi_page: r.get(3),
            est_rows: est,
            again: None,
        };
        if done && table_done {
            continue;
        }
        if done {
            let copied: Option<i64> = r.get(6);
            done_rows += copied.unwrap_or(est) as u64;
            total += copied.unwrap_or(est) as u64;
            let since: Option<i64> = r.get(7);
            again.push(Chunk {
                again: Some(since),
                ..ch
            });
            continue;
        }
        total += est as u64;
        todo.push(ch);
    }
    // The chunks to copy first: the bar moves with them.
    todo.extend(again);
    Ok((todo, done_rows, total))
}

/// How the snapshot reads: the slot's exported snapshot, or (resuming
/// after a crash) a fresh one that the run exports to its connections.
#[derive(Debug, Clone)]
pub enum Snapshot {
    Exported(String),
    Fresh,
}

/// The run's snapshot, held open on its own connection until the run
/// ends: its name for the workers, its `xmin` and `xmax` (64-bit
/// transaction ids), and the file node each table with work left was
/// planned with.
struct Held {
    conn: PgConnection,
    name: String,
    xmin: i64,
    xmax: i64,
    files: Vec<(usize, i64)>,
}

/// Opens the run's snapshot and plans again the tables whose file
/// changed since their chunks were planned (rewritten, or planned by a
/// version that chunked by keys). The holding connection takes no table
/// lock: the workers do, each in its own transaction, so a statement
/// queued for an exclusive lock (a migration) never waits on a
/// connection that waits on the workers.
async fn hold(
    ctl: &mut PgConnection,
    p: &Pipeline,
    snapshot: &Snapshot,
    chunk_rows: i64,
) -> Result<Held, SyncError> {
    let mut conn = source::connect(&p.source_url).await?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut conn)
        .await?;
    if let Snapshot::Exported(name) = snapshot {
        set_snapshot(&mut conn, name).await?;
    }
    let open: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT tbl FROM {}.chunks WHERE pipeline = $1 AND NOT done ORDER BY tbl",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .fetch_all(&mut *ctl)
    .await?;
    let mut files = Vec::new();
    for ti in open {
        let t = p.tables.get(ti as usize).ok_or_else(|| {
            SyncError::Source(format!(
                "a planned chunk names table {ti}, not in the pipeline"
            ))
        })?;
        let (same, now): (Option<bool>, i64) = sqlx::query_as(&format!(
            "SELECT bool_and(filenode IS NOT DISTINCT FROM pg_relation_filenode($3::regclass)::bigint),
                    pg_relation_filenode($3::regclass)::bigint
             FROM {}.chunks WHERE pipeline = $1 AND tbl = $2",
            quote_ident(META_SCHEMA)
        ))
        .bind(&p.name)
        .bind(ti)
        .bind(qualified(t))
        .fetch_one(&mut *ctl)
        .await?;
        if same != Some(true) {
            eprintln!(
                "strata sync: pipeline `{}`: `{}` was rewritten (or planned by an older version) since its chunks were planned; copying it again",
                p.name, t.source_table
            );
            replan(ctl, p, &[ti as usize], chunk_rows).await?;
        }
        files.push((ti as usize, now));
    }
    let (xmin, xmax): (i64, i64) = sqlx::query_as(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
    )
    .fetch_one(&mut conn)
    .await?;
    let name = match snapshot {
        Snapshot::Exported(name) => name.clone(),
        Snapshot::Fresh => {
            sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut conn)
                .await?
        }
    };
    Ok(Held {
        conn,
        name,
        xmin,
        xmax,
        files,
    })
}

async fn set_snapshot(c: &mut PgConnection, name: &str) -> Result<(), SyncError> {
    // Not a bound parameter: SET takes none. Only a name PostgreSQL
    // itself made (hex digits and dashes) is accepted.
    if !name.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(SyncError::Decode(format!(
            "unexpected snapshot name `{name}`"
        )));
    }
    sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{name}'"))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Whether [`run`] copied every chunk, or stopped with chunks left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// Every chunk is copied and recorded done.
    All,
    /// The stop signal was set: the chunks in flight were written and
    /// recorded done, the others are left to the next run (which resumes
    /// at chunk granularity, as after a crash).
    Stopped,
}

/// Copies every remaining chunk on `opts`' snapshot connections, all in
/// one snapshot, showing progress. Once `stop` is true the workers take
/// no further chunk: the run returns [`Copied::Stopped`] after the
/// chunks in flight are written and recorded done.
pub async fn run(
    p: &Pipeline,
    targets: &Targets,
    snapshot: Snapshot,
    version: Lsn,
    opts: &super::RunOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Copied, SyncError> {
    let mut ctl = source::connect(&p.source_url).await?;
    if remaining(&mut ctl, p).await?.0.is_empty() {
        return Ok(Copied::All);
    }
    if *stop.borrow() {
        return Ok(Copied::Stopped);
    }
    let mut held = hold(&mut ctl, p, &snapshot, opts.chunk_rows).await?;
    let (mut chunks, done, total) = remaining(&mut ctl, p).await?;
    for ch in &mut chunks {
        ch.reread_all_past_wraparound(held.xmax);
    }
    let counter = Arc::new(AtomicU64::new(done));
    let shown = super::progress::Progress::start(
        &format!("snapshot of pipeline `{}`", p.name),
        total,
        counter.clone(),
        opts.progress,
    );
    let r = run_workers(p, targets, chunks, &counter, &held, version, opts, stop).await;
    shown.finish();
    let left = r?;
    sqlx::query("COMMIT").execute(&mut held.conn).await?;
    Ok(if left == 0 {
        Copied::All
    } else {
        Copied::Stopped
    })
}

/// Runs the workers until the queue is empty or `stop` is set; returns
/// how many chunks no worker took.
#[allow(clippy::too_many_arguments)]
async fn run_workers(
    p: &Pipeline,
    targets: &Targets,
    chunks: Vec<Chunk>,
    counter: &Arc<AtomicU64>,
    held: &Held,
    version: Lsn,
    opts: &super::RunOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<usize, SyncError> {
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    // A JoinSet aborts the workers when the run is dropped (its caller
    // stopped or crashed), so no copy outlives the run.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..opts.snapshot_workers.max(1) {
        let w = copy::Worker {
            p: p.clone(),
            targets: targets.clone(),
            queue: queue.clone(),
            counter: counter.clone(),
            snapshot: held.name.clone(),
            xmin: held.xmin,
            files: held.files.clone(),
            version,
            // Pieces no larger than a chunk: a crash loses at most about
            // two chunks of work per connection, as documented for
            // `with_chunk_rows`.
            max_rows: opts.max_batch_rows.min(opts.chunk_rows.max(1) as usize),
            max_bytes: opts.max_batch_bytes,
            dead_letters: opts.dead_letters,
            stop: stop.clone(),
        };
        set.spawn(Box::pin(w.run()));
    }
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        let err = match r {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => SyncError::Source(format!("snapshot worker: {e}")),
        };
        first_err.get_or_insert(err);
        set.abort_all();
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(queue.lock().unwrap_or_else(|e| e.into_inner()).len()),
    }
}

#[cfg(test)]
mod tests {
    use super::Chunk;

    fn again(since: Option<i64>) -> Chunk {
        Chunk {
            table: 0,
            chunk: 0,
            lo_page: 0,
            hi_page: None,
            est_rows: 0,
            again: Some(since),
        }
    }

    #[test]
    fn a_chunk_past_two_to_the_31_transactions_is_read_again_whole() {
        let since = 5_000_000_000; // a 64-bit xid past one wraparound
        for (xmax, whole) in [
            (since, false),
            (since + (1 << 31) - 1, false),
            (since + (1 << 31), true),
            (since + (1 << 33), true),
        ] {
            let mut ch = again(Some(since));
            ch.reread_all_past_wraparound(xmax);
            let want = if whole { None } else { Some(since) };
            assert_eq!(ch.again, Some(want), "xmax {xmax}");
        }
        // A chunk to copy, or one read whole already, stays as it is.
        let mut copy = again(None);
        copy.again = None;
        copy.reread_all_past_wraparound(i64::MAX);
        assert_eq!(copy.again, None);
    }
}
