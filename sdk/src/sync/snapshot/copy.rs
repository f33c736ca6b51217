//! One snapshot connection: reads chunks with `COPY … TO STDOUT` and
//! writes their rows in pieces that may span chunks (fewer, larger
//! inserts: ClickHouse makes a part, a folder of files, per insert). A
//! chunk is recorded done only once the last piece holding its rows is
//! acknowledged by every target.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::PgConnection;

use super::super::apply::{Batch, Targets};
use super::super::copytext::RowReader;
use super::super::dead_letter::{self, DeadLetter};
use super::super::error::SyncError;
use super::super::lsn::Lsn;
use super::super::source::{self, qualified, META_SCHEMA};
use super::super::spec::Pipeline;
use super::super::wire::quote_ident;
use super::Chunk;

/// The chunks left to read, shared by a run's connections.
pub(super) type Queue = Arc<std::sync::Mutex<std::vec::IntoIter<Chunk>>>;

/// The `COPY` that reads chunk `ch`: its page range and, for a done chunk
/// read again, only the rows written since its snapshot. Every number in
/// it is Strata's own (pages, transaction ids), none is user data.
fn copy_sql(p: &Pipeline, ch: &Chunk) -> String {
    let t = &p.tables[ch.table];
    let cols: Vec<String> = t.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let mut cond = format!("ctid >= '({},0)'::tid", ch.lo_page);
    if let Some(hi) = ch.hi_page {
        cond.push_str(&format!(" AND ctid < '({hi},0)'::tid"));
    }
    if let Some(Some(since)) = ch.again {
        // xmin at or after `since`, modulo 2^32 (xmin is a 32-bit id).
        cond.push_str(&format!(
            " AND (xmin::text::bigint - {} + 4294967296) % 4294967296 < 2147483648",
            since.rem_euclid(1 << 32)
        ));
    }
    format!(
        "COPY (SELECT {} FROM {} WHERE {cond}) TO STDOUT",
        cols.join(", "),
        qualified(t)
    )
}

/// A piece being written, and the chunks whose last rows it holds.
struct Flight {
    /// The piece's buffers come back emptied, for a later piece.
    handle: tokio::task::JoinHandle<Result<Batch, SyncError>>,
    chunks: Vec<(Chunk, u64)>,
}

/// One snapshot connection: takes chunks from the queue until it is empty.
pub(super) struct Worker {
    pub p: Pipeline,
    pub targets: Targets,
    pub queue: Queue,
    /// Rows written (the progress bar's position).
    pub counter: Arc<AtomicU64>,
    /// The run's snapshot, imported by this connection.
    pub snapshot: String,
    /// Its `xmin`, recorded with each chunk done.
    pub xmin: i64,
    /// The tables with work left and the file node they were planned with.
    pub files: Vec<(usize, i64)>,
    /// The version every copied row carries.
    pub version: Lsn,
    /// A piece is written when it holds this many rows or bytes.
    pub max_rows: usize,
    pub max_bytes: usize,
    /// Set aside rows a target refuses ([`RunOptions::with_dead_letters`](super::super::RunOptions::with_dead_letters)).
    pub dead_letters: bool,
    /// The run's stop signal: once true, no further chunk is taken; the
    /// chunks read so far are written and recorded done.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// What a worker holds between chunks.
struct State {
    mark: PgConnection,
    batch: Batch,
    /// Rows of `batch` that count for the progress bar.
    counted: usize,
    /// Chunks read whose last rows are in `batch`.
    finished: Vec<(Chunk, u64)>,
    in_flight: Option<Flight>,
    /// Emptied buffers of the last piece written (their pages stay mapped).
    spare: Option<Batch>,
}

impl Worker {
    /// Copies chunks until the queue is empty or the stop signal is set;
    /// every chunk it took is written and recorded done when this returns
    /// `Ok` (a stop leaves the chunks not taken to the next run).
    pub async fn run(self) -> Result<(), SyncError> {
        let p = &self.p;
        let mut read = source::connect(&p.source_url).await?;
        let mut st = State {
            mark: source::connect(&p.source_url).await?,
            batch: self.targets.batch(),
            counted: 0,
            finished: Vec::new(),
            in_flight: None,
            spare: None,
        };
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut read)
            .await?;
        super::set_snapshot(&mut read, &self.snapshot).await?;
        self.lock(&mut read).await?;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let next = self.queue.lock().map(|mut q| q.next()).unwrap_or(None);
            let Some(ch) = next else { break };
            let n = self.copy_chunk(&mut read, &mut st, &ch).await?;
            st.finished.push((ch, n));
        }
        self.send(&mut st).await?;
        self.land(&mut st).await?;
        sqlx::query("COMMIT").execute(&mut read).await?;
        Ok(())
    }

    /// Takes `ACCESS SHARE` on the tables with work left (a rewrite then
    /// waits for this transaction) and checks that none was rewritten
    /// since it was planned: its page ranges would address other rows.
    async fn lock(&self, read: &mut PgConnection) -> Result<(), SyncError> {
        for &(ti, planned) in &self.files {
            let t = &self.p.tables[ti];
            sqlx::query(&format!("LOCK TABLE {} IN ACCESS SHARE MODE", qualified(t)))
                .execute(&mut *read)
                .await?;
            let now: i64 = sqlx::query_scalar("SELECT pg_relation_filenode($1::regclass)::bigint")
                .bind(qualified(t))
                .fetch_one(&mut *read)
                .await?;
            if now != planned {
                return Err(SyncError::Source(format!(
                    "`{}` was rewritten while its snapshot started; planning it again",
                    t.source_table
                )));
            }
        }
        Ok(())
    }

    /// Reads one chunk into the worker's pieces; returns its rows.
    async fn copy_chunk(
        &self,
        read: &mut PgConnection,
        st: &mut State,
        ch: &Chunk,
    ) -> Result<u64, SyncError> {
        let (p, t) = (&self.p, &self.p.tables[ch.table]);
        let mut reader = RowReader::new(t).keys_only(!self.targets.need_values(ch.table));
        let mut n = 0u64;
        let mut rows = read.copy_out_raw(&copy_sql(p, ch)).await?;
        let mut letters = Vec::new();
        while let Some(data) = rows.try_next().await? {
            let before = st.batch.rows;
            let (targets, batch) = (&self.targets, &mut st.batch);
            reader.feed(
                t,
                &data,
                |cells| targets.push(p, batch, ch.table, cells, self.version.0, false, None),
                |e, key| match self.dead_letters {
                    true => DeadLetter::of(e, key, self.version).map(|l| letters.push(l)),
                    false => Err(e),
                },
            )?;
            // Recorded before the chunk can be recorded done.
            dead_letter::record(&mut st.mark, p, &letters).await?;
            letters.clear();
            let added = st.batch.rows - before;
            n += added as u64;
            // Rows read again on resuming are not in the bar's total.
            if ch.again.is_none() {
                st.counted += added;
            }
            if st.batch.rows >= self.max_rows || st.batch.bytes() >= self.max_bytes {
                self.send(st).await?;
            }
        }
        drop(rows);
        if reader.has_partial() {
            return Err(SyncError::Source(format!(
                "the copy of `{}` ended inside a row",
                t.source_table
            )));
        }
        metrics::counter!(crate::metrics::SYNC_SNAPSHOT_ROWS, "pipeline" => p.name.clone())
            .increment(n);
        Ok(n)
    }

    /// Waits for the piece in flight (and records its chunks done), then
    /// starts writing the current one.
    async fn send(&self, st: &mut State) -> Result<(), SyncError> {
        self.land(st).await?;
        let empty = st.spare.take().unwrap_or_else(|| self.targets.batch());
        let mut full = std::mem::replace(&mut st.batch, empty);
        self.counter
            .fetch_add(std::mem::take(&mut st.counted) as u64, Ordering::Relaxed);
        let (tg, pp) = (self.targets.clone(), self.p.clone());
        st.in_flight = Some(Flight {
            handle: tokio::spawn(async move { tg.flush(&pp, &mut full).await.map(|()| full) }),
            chunks: std::mem::take(&mut st.finished),
        });
        Ok(())
    }

    /// Waits for the piece in flight, if any, and records done the chunks
    /// whose last rows it held (counted by rows copied: the estimate is
    /// corrected).
    async fn land(&self, st: &mut State) -> Result<(), SyncError> {
        let Some(f) = st.in_flight.take() else {
            return Ok(());
        };
        let emptied = f
            .handle
            .await
            .map_err(|e| SyncError::Source(format!("snapshot write: {e}")))??;
        st.spare = Some(emptied);
        for (ch, n) in f.chunks.iter().filter(|(ch, _)| ch.again.is_none()) {
            sqlx::query(&format!(
                "UPDATE {}.chunks SET done = true, copied_rows = $4, snap_xmin = $5 WHERE pipeline = $1 AND tbl = $2 AND chunk = $3",
                quote_ident(META_SCHEMA)
            ))
            .bind(&self.p.name)
            .bind(ch.table as i32)
            .bind(ch.chunk)
            .bind(*n as i64)
            .bind(self.xmin)
            .execute(&mut st.mark)
            .await?;
        }
        Ok(())
    }
}
