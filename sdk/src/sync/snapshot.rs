//! The initial copy: every row as of one snapshot, chunked by key ranges,
//! on several connections, each chunk recorded when written so that a
//! crash resumes at chunk granularity.
//!
//! Why a resumed chunk may come from a *fresh* snapshot: the exported
//! snapshot dies with the connection that created the slot. Snapshot rows
//! carry version = the slot's consistent point `cp`; every transaction the
//! stream delivers commits after `cp`, so its rows carry a larger version
//! (its commit LSN). The stream starts at `cp` only after the snapshot is
//! done (the slot's position does not move before). For a row copied from
//! a later snapshot, the last transaction `L` that wrote it before that
//! snapshot either committed before `cp` (then the value equals the
//! exported snapshot's) or after `cp` (then the stream carries `L`'s value
//! with a larger version, which wins). A row deleted meanwhile is absent
//! from the later snapshot and its delete replays as a tombstone. So the
//! target converges to the source whichever snapshot a chunk came from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::{PgConnection, Row};

use super::apply::Targets;
use super::cell;
use super::error::SyncError;
use super::lsn::Lsn;
use super::source::{self, qualified, META_SCHEMA};
use super::spec::Pipeline;
use super::wire::quote_ident;

/// One key range of one table.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub table: usize,
    pub chunk: i32,
    pub lo: Option<Vec<String>>,
    pub hi: Option<Vec<String>>,
    pub est_rows: i64,
}

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
/// ranges of about `chunk_rows` rows (boundaries read from the key's
/// order) and records them.
pub async fn plan(
    c: &mut PgConnection,
    p: &Pipeline,
    tables: &[usize],
    chunk_rows: i64,
) -> Result<(), SyncError> {
    for (ti, t) in p.tables.iter().enumerate() {
        if !tables.contains(&ti) {
            continue;
        }
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
        let keys: Vec<String> = t
            .key_indexes()
            .iter()
            .map(|&k| quote_ident(&t.columns[k].name))
            .collect();
        let texts: Vec<String> = keys.iter().map(|k| format!("{k}::text")).collect();
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", qualified(t)))
            .fetch_one(&mut *c)
            .await?;
        let bounds: Vec<Vec<String>> = sqlx::query(&format!(
            "SELECT ARRAY[{}] FROM (SELECT {}, row_number() OVER (ORDER BY {}) AS strata_rn FROM {}) x WHERE strata_rn % $1 = 0 ORDER BY strata_rn",
            texts.join(", "),
            keys.join(", "),
            keys.join(", "),
            qualified(t)
        ))
        .bind(chunk_rows.max(1))
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|r| r.get::<Vec<String>, _>(0))
        .collect();
        let mut lo: Option<Vec<String>> = None;
        let n = bounds.len();
        for (i, hi) in bounds
            .into_iter()
            .map(Some)
            .chain(std::iter::once(None))
            .enumerate()
        {
            let est = if i < n {
                chunk_rows
            } else {
                total - chunk_rows * n as i64
            };
            sqlx::query(&format!(
                "INSERT INTO {}.chunks (pipeline, tbl, chunk, lo, hi, est_rows) VALUES ($1, $2, $3, $4, $5, $6)",
                quote_ident(META_SCHEMA)
            ))
            .bind(&p.name)
            .bind(ti as i32)
            .bind(i as i32)
            .bind(&lo)
            .bind(&hi)
            .bind(est.max(0))
            .execute(&mut *c)
            .await?;
            lo = hi;
        }
    }
    Ok(())
}

/// The chunks not yet copied, and (rows done, rows estimated in all).
pub async fn remaining(
    c: &mut PgConnection,
    p: &Pipeline,
) -> Result<(Vec<Chunk>, u64, u64), SyncError> {
    let rows = sqlx::query(&format!(
        "SELECT tbl, chunk, lo, hi, est_rows, done, copied_rows FROM {}.chunks WHERE pipeline = $1 ORDER BY tbl, chunk",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::new();
    let (mut done_rows, mut total) = (0u64, 0u64);
    for r in rows {
        let est: i64 = r.get(4);
        let done: bool = r.get(5);
        if done {
            let copied: Option<i64> = r.get(6);
            done_rows += copied.unwrap_or(est) as u64;
            total += copied.unwrap_or(est) as u64;
            continue;
        }
        total += est as u64;
        out.push(Chunk {
            table: r.get::<i32, _>(0) as usize,
            chunk: r.get(1),
            lo: r.get(2),
            hi: r.get(3),
            est_rows: est,
        });
    }
    Ok((out, done_rows, total))
}

/// Copies one chunk inside the snapshot transaction on `c` to every
/// target at `version`; returns the rows copied.
fn copy_chunk<'a>(
    c: &'a mut PgConnection,
    p: &'a Pipeline,
    targets: &'a Targets,
    ch: &'a Chunk,
    types: &'a [String],
    version: Lsn,
    counter: &'a AtomicU64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, SyncError>> + Send + 'a>> {
    Box::pin(copy_chunk_inner(c, p, targets, ch, types, version, counter))
}

async fn copy_chunk_inner(
    c: &mut PgConnection,
    p: &Pipeline,
    targets: &Targets,
    ch: &Chunk,
    types: &[String],
    version: Lsn,
    counter: &AtomicU64,
) -> Result<u64, SyncError> {
    let t = &p.tables[ch.table];
    let keys: Vec<String> = t
        .key_indexes()
        .iter()
        .map(|&k| quote_ident(&t.columns[k].name))
        .collect();
    let cast = |param: usize| -> String {
        let parts: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("(${param}::text[])[{}]::{ty}", i + 1))
            .collect();
        format!("({})", parts.join(", "))
    };
    let mut cond = vec!["true".to_string()];
    if ch.lo.is_some() {
        cond.push(format!("({}) >= {}", keys.join(", "), cast(1)));
    }
    if ch.hi.is_some() {
        cond.push(format!("({}) < {}", keys.join(", "), cast(2)));
    }
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{}::text", quote_ident(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        cols.join(", "),
        qualified(t),
        cond.join(" AND ")
    );
    let mut batch = targets.batch();
    let mut n = 0u64;
    // One write in flight while the next rows are read: PostgreSQL and
    // ClickHouse work at the same time instead of in turns.
    let mut in_flight: Option<tokio::task::JoinHandle<Result<(), SyncError>>> = None;
    {
        let mut rows = sqlx::query(&sql)
            .bind(ch.lo.clone().unwrap_or_default())
            .bind(ch.hi.clone().unwrap_or_default())
            .fetch(&mut *c);
        while let Some(r) = rows.try_next().await? {
            let mut cells = Vec::with_capacity(t.columns.len());
            for (i, col) in t.columns.iter().enumerate() {
                let text: Option<&str> = r.try_get(i)?;
                cells.push(
                    cell::parse_pg(col, text).map_err(|reason| SyncError::Value {
                        table: t.source_table.clone(),
                        column: col.name.clone(),
                        reason,
                    })?,
                );
            }
            targets.push(p, &mut batch, ch.table, &cells, version.0, false, None)?;
            n += 1;
            if batch.rows >= 20_000 || batch.bytes() >= 16 << 20 {
                if let Some(h) = in_flight.take() {
                    join(h).await?;
                }
                let mut full = std::mem::replace(&mut batch, targets.batch());
                let (tg, pp) = (targets.clone(), p.clone());
                let rows = full.rows as u64;
                in_flight = Some(tokio::spawn(async move { tg.flush(&pp, &mut full).await }));
                counter.fetch_add(rows, Ordering::Relaxed);
            }
        }
    }
    if let Some(h) = in_flight.take() {
        join(h).await?;
    }
    counter.fetch_add(batch.rows as u64, Ordering::Relaxed);
    targets.flush(p, &mut batch).await?;
    metrics::counter!(crate::metrics::SYNC_SNAPSHOT_ROWS, "pipeline" => p.name.clone())
        .increment(n);
    Ok(n)
}

async fn join(h: tokio::task::JoinHandle<Result<(), SyncError>>) -> Result<(), SyncError> {
    h.await
        .map_err(|e| SyncError::Source(format!("snapshot write: {e}")))?
}

/// How the snapshot reads: the slot's exported snapshot, or (resuming
/// after a crash) a fresh one per worker.
#[derive(Debug, Clone)]
pub enum Snapshot {
    Exported(String),
    Fresh,
}

/// Copies every remaining chunk on `workers` connections, showing progress.
pub async fn run(
    p: &Pipeline,
    targets: &Targets,
    snapshot: Snapshot,
    version: Lsn,
    workers: usize,
    progress: bool,
) -> Result<(), SyncError> {
    let mut ctl = source::connect(&p.source_url).await?;
    let (chunks, done, total) = remaining(&mut ctl, p).await?;
    if chunks.is_empty() {
        return Ok(());
    }
    let mut types = Vec::new();
    for ti in 0..p.tables.len() {
        types.push(key_types(&mut ctl, p, ti).await?);
    }
    let types = Arc::new(types);
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let counter = Arc::new(AtomicU64::new(done));
    let shown = super::progress::Progress::start(
        &format!("snapshot of pipeline `{}`", p.name),
        total,
        counter.clone(),
        progress,
    );
    // A JoinSet aborts the workers when the run is dropped (its caller
    // stopped or crashed), so no copy outlives the run.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (p, targets, queue, counter, types, snapshot) = (
            p.clone(),
            targets.clone(),
            queue.clone(),
            counter.clone(),
            types.clone(),
            snapshot.clone(),
        );
        set.spawn(worker(p, targets, queue, counter, types, snapshot, version));
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
    shown.finish();
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

type Queue = Arc<std::sync::Mutex<std::vec::IntoIter<Chunk>>>;

fn worker(
    p: Pipeline,
    targets: Targets,
    queue: Queue,
    counter: Arc<AtomicU64>,
    types: Arc<Vec<Vec<String>>>,
    snapshot: Snapshot,
    version: Lsn,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SyncError>> + Send>> {
    Box::pin(worker_inner(
        p, targets, queue, counter, types, snapshot, version,
    ))
}

async fn worker_inner(
    p: Pipeline,
    targets: Targets,
    queue: Queue,
    counter: Arc<AtomicU64>,
    types: Arc<Vec<Vec<String>>>,
    snapshot: Snapshot,
    version: Lsn,
) -> Result<(), SyncError> {
    let mut read = source::connect(&p.source_url).await?;
    let mut mark = source::connect(&p.source_url).await?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut read)
        .await?;
    if let Snapshot::Exported(name) = &snapshot {
        if !name.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(SyncError::Decode(format!(
                "unexpected snapshot name `{name}`"
            )));
        }
        sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{name}'"))
            .execute(&mut read)
            .await?;
    }
    loop {
        let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
        let Some(ch) = next else { break };
        let n = copy_chunk(
            &mut read,
            &p,
            &targets,
            &ch,
            &types[ch.table],
            version,
            &counter,
        )
        .await?;
        // Counted by rows flushed; correct the estimate of this chunk.
        sqlx::query(&format!(
            "UPDATE {}.chunks SET done = true, copied_rows = $4 WHERE pipeline = $1 AND tbl = $2 AND chunk = $3",
            quote_ident(META_SCHEMA)
        ))
        .bind(&p.name)
        .bind(ch.table as i32)
        .bind(ch.chunk)
        .bind(n as i64)
        .execute(&mut mark)
        .await?;
        let _ = ch.est_rows;
    }
    sqlx::query("COMMIT").execute(&mut read).await?;
    Ok(())
}
