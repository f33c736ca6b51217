//! The batch writers, generic over [`Table`]: `insert_many`, `upsert_many`,
//! `update_many`, `delete_many`. The input streams from an iterator; the
//! whole call is one transaction. How rows travel:
//!
//! - fewer than [`BATCH_CHUNK`] rows: one statement over `UNNEST($1, …)`,
//!   one array per column ([`Columns`]); for tables with an array column,
//!   multi-row `VALUES` statements of up to 1,000 rows ([`values_chunk`]:
//!   `UNNEST` would flatten an array of arrays);
//! - more: binary `COPY` (straight into the table, or into a staging table
//!   then one `INSERT … SELECT`, or the set-based upsert of
//!   [`super::upsert_staged`]); array values are stamped with their
//!   column's element type OID, read from the catalog once per call
//!   (enums have one per database; `varchar(n)[]` is not sqlx's `text[]`).
//!
//! `update_many` and `delete_many` go in `UNNEST` chunks of
//! [`BATCH_CHUNK`] rows (`VALUES` chunks for tables with array columns).

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use super::copy::{abort, insert_rows, CopyWriter};
use super::repo::{call, Db, Fut, Rows};
use super::seam::{self, Affected, Operation, Scalar};
use super::sink::{Args, Columns};
use super::table::Table;
use super::values::values_chunk;
use super::{upsert_staged, BATCH_CHUNK};
use crate::error::{Error, Result};
use crate::BatchCounts;

/// The after-commit bookkeeping of one batch call: the keys it wrote (kept
/// only when a hook wants them) and whether the caller's transaction holds it.
struct Written<T: Table> {
    keys: Option<Vec<T::Key>>,
    pending: bool,
    after: super::AfterCommit,
    /// The batch's own transaction (not a savepoint in the caller's) has
    /// begun and not committed: dropping this counts a rollback.
    open: Option<Operation>,
}

impl<T: Table> Drop for Written<T> {
    fn drop(&mut self) {
        if let Some(op) = self.open {
            seam::transaction(call::<T>(op), false);
        }
    }
}

impl<T: Table> Written<T> {
    fn new(conn: &PgConnection, after: super::AfterCommit) -> Self {
        Written {
            keys: (seam::has_hooks::<T>() || after.wants::<T>()).then(Vec::new),
            pending: conn.is_in_transaction(),
            after,
            open: None,
        }
    }
    /// The transaction has begun.
    fn began(&mut self, op: Operation) {
        if !self.pending {
            self.open = Some(op);
        }
    }
    fn push(&mut self, k: impl FnOnce() -> Option<T::Key>) {
        if let Some(v) = &mut self.keys {
            v.extend(k());
        }
    }
    /// After `COMMIT`: counts the transaction, runs the hooks, then the
    /// executor's after-commit step (cache invalidation), awaited.
    async fn committed(mut self, op: Operation) {
        if self.open.take().is_some() {
            seam::transaction(call::<T>(op), true);
        }
        let commit = match self.pending {
            true => seam::Commit::Pending,
            false => seam::Commit::Committed,
        };
        if let Some(k) = &self.keys {
            seam::written::<T>(call::<T>(op), commit, k);
            self.after.written::<T>(k).await;
        }
    }
}

/// Commits a batch's transaction; a connection failure during `COMMIT`
/// leaves the outcome unknown ([`Error::OutcomeUnknown`]).
/// (Inside the caller's transaction it is a savepoint's `RELEASE`, whose
/// failure dooms that transaction: a plain error.)
async fn commit(tx: sqlx::Transaction<'_, sqlx::Postgres>, pending: bool) -> Result<()> {
    tx.commit().await.map_err(|e| match pending {
        true => Error::from(e),
        false => Error::from(e).after_send(),
    })
}

/// Inserts rows, skipping keys that exist.
pub fn insert_many<'a, T, A, I>(db: A, rows: I) -> Fut<'a, BatchCounts>
where
    T: Table,
    A: Db<'a>,
    I: Rows<'a, T::New>,
{
    write_new::<T, A, I>(db, rows, Operation::InsertMany)
}

/// Inserts rows or overwrites those whose key exists; counts both.
pub fn upsert_many<'a, T, A, I>(db: A, rows: I) -> Fut<'a, BatchCounts>
where
    T: Table,
    A: Db<'a>,
    I: Rows<'a, T::New>,
{
    write_new::<T, A, I>(db, rows, Operation::UpsertMany)
}

fn write_new<'a, T, A, I>(db: A, rows: I, op: Operation) -> Fut<'a, BatchCounts>
where
    T: Table,
    A: Db<'a>,
    I: Rows<'a, T::New>,
{
    let rows = rows.into_iter();
    Box::pin(seam::batch(call::<T>(op), async move {
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let mut w = Written::<T>::new(&conn, after);
        let mut tx = Connection::begin(&mut *conn).await?;
        w.began(op);
        let rows = rows.inspect(|r| w.push(|| T::new_key(r)));
        let counts = new_small_or_copy::<T>(&mut tx, op, rows).await?;
        commit(tx, w.pending).await?;
        w.committed(op).await;
        Ok(counts)
    }))
}

/// Fewer rows than a chunk: one `UNNEST` statement; more: binary `COPY`.
async fn new_small_or_copy<T: Table>(
    conn: &mut PgConnection,
    op: Operation,
    mut rows: impl Iterator<Item = T::New> + Send,
) -> Result<BatchCounts> {
    let s = T::statements();
    let head: Vec<T::New> = rows.by_ref().take(BATCH_CHUNK).collect();
    if head.len() == BATCH_CHUNK {
        let oids = element_oids::<T>(conn).await?;
        return new_copy::<T>(conn, op, &oids, head.into_iter().chain(rows)).await;
    }
    let mut counts = BatchCounts::default();
    if head.is_empty() {
        return Ok(counts);
    }
    if T::DEF.has_arrays() {
        // UNNEST would flatten arrays of arrays: multi-row VALUES.
        return new_values::<T>(conn, op, head.into_iter()).await;
    }
    let mut cols = Columns::with_capacity(head.len());
    for r in &head {
        T::bind_new(r, &mut cols)?;
        cols.end_row();
    }
    let a = cols.into_args()?;
    if op == Operation::InsertMany {
        let Affected(n) = seam::statement(call::<T>(op), conn, &s.insert_unnest, a).await?;
        counts.inserted = n;
    } else {
        let Scalar((i, u)) =
            seam::statement::<Scalar<(i64, i64)>>(call::<T>(op), conn, &s.upsert_unnest, a).await?;
        (counts.inserted, counts.updated) = (i as u64, u as u64);
    }
    Ok(counts)
}

/// The element type OID of each array column of an insert, in the order of
/// [`super::TableDef::new_columns`], from the catalog (enums have a
/// per-database OID; `varchar(n)[]` is not sqlx's `text[]`). Empty for a
/// table without array columns.
async fn element_oids<T: Table>(conn: &mut PgConnection) -> Result<Vec<Option<u32>>> {
    let def = T::DEF;
    if !def.has_arrays() {
        return Ok(Vec::new());
    }
    let sql = "SELECT a.attname::text, t.typelem::int8 FROM pg_attribute a \
               JOIN pg_type t ON t.oid = a.atttypid \
               WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped";
    let table = &T::statements().table;
    let rows: Vec<(String, i64)> = sqlx::query_as(sql)
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
    let oid = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, o)| *o as u32);
    let cols = def.new_columns().into_iter().map(|i| &def.columns[i]);
    Ok(cols
        .map(|c| c.array.then(|| oid(c.name)).flatten())
        .collect())
}

async fn new_copy<T: Table>(
    conn: &mut PgConnection,
    op: Operation,
    oids: &[Option<u32>],
    rows: impl Iterator<Item = T::New> + Send,
) -> Result<BatchCounts> {
    let s = &T::statements().copy;
    let width = T::statements().new_width() as i16;
    let mut counts = BatchCounts::default();
    if op == Operation::InsertMany {
        if s.copy_direct.is_some() {
            counts.inserted =
                insert_rows(conn, s, width, oids, rows, |w, r| T::bind_new(&r, w)).await?;
            return Ok(counts);
        }
        copy_to_stage::<T>(conn, oids, rows, width).await?;
        counts.inserted = conn
            .execute(s.insert_from_stage.as_str())
            .await?
            .rows_affected();
    } else {
        let staged = copy_to_stage::<T>(conn, oids, rows, width).await?;
        let (i, u) = match &s.upsert_set_based {
            Some(fast) => upsert_staged(conn, fast, &s.upsert_on_conflict, staged).await?,
            None => {
                let (i, u): (i64, i64) = sqlx::query_as(&s.upsert_on_conflict)
                    .fetch_one(&mut *conn)
                    .await?;
                (i as u64, u as u64)
            }
        };
        (counts.inserted, counts.updated) = (i, u);
    }
    conn.execute(s.drop_stage.as_str()).await?;
    Ok(counts)
}

/// Streams every row into the staging table; returns the rows copied.
async fn copy_to_stage<T: Table>(
    conn: &mut PgConnection,
    oids: &[Option<u32>],
    rows: impl Iterator<Item = T::New>,
    width: i16,
) -> Result<u64> {
    let s = &T::statements().copy;
    conn.execute(s.create_stage.as_str()).await?;
    let mut copy = conn.copy_in_raw(&s.copy_stage).await?;
    let mut w = CopyWriter::new().with_element_oids(oids.to_vec());
    for r in rows {
        w.row(width);
        if let Err(e) = T::bind_new(&r, &mut w) {
            return Err(abort(copy, e).await);
        }
        if w.full() {
            w.flush(&mut copy).await?;
        }
    }
    w.finish(copy).await
}

/// Multi-row `VALUES` chunks, for tables with array columns.
async fn new_values<T: Table>(
    conn: &mut PgConnection,
    op: Operation,
    mut rows: impl Iterator<Item = T::New> + Send,
) -> Result<BatchCounts> {
    let s = T::statements();
    let chunk = values_chunk(s.new_width());
    let mut counts = BatchCounts::default();
    loop {
        let mut a = Args::default();
        let mut n = 0;
        for r in rows.by_ref().take(chunk) {
            T::bind_new(&r, &mut a)?;
            n += 1;
        }
        if n == 0 {
            break;
        }
        if op == Operation::InsertMany {
            let sql = s.insert_values(n);
            let Affected(k) = seam::statement(call::<T>(op), conn, &sql, a).await?;
            counts.inserted += k;
        } else {
            let sql = s.upsert_values(n);
            let Scalar((i, u)) =
                seam::statement::<Scalar<(i64, i64)>>(call::<T>(op), conn, &sql, a).await?;
            counts.inserted += i as u64;
            counts.updated += u as u64;
        }
        if n < chunk {
            break;
        }
    }
    Ok(counts)
}

/// Writes every update column of each row by key (and version); a missing
/// key or stale version fails the whole call with [`Error::BatchIncomplete`].
pub fn update_many<'a, T, A, I>(db: A, rows: I) -> Fut<'a, BatchCounts>
where
    T: Table,
    A: Db<'a>,
    I: Rows<'a, T>,
{
    let op = Operation::UpdateMany;
    let rows = rows.into_iter();
    Box::pin(seam::batch(call::<T>(op), async move {
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let mut w = Written::<T>::new(&conn, after);
        let mut tx = Connection::begin(&mut *conn).await?;
        w.began(op);
        let rows = rows.inspect(|r| w.push(|| Some(r.key())));
        let updated = update_chunks::<T>(&mut tx, rows).await?;
        commit(tx, w.pending).await?;
        w.committed(op).await;
        Ok(BatchCounts {
            updated,
            ..Default::default()
        })
    }))
}

/// `update_many`'s chunks, each required to match every row.
async fn update_chunks<T: Table>(
    conn: &mut PgConnection,
    mut rows: impl Iterator<Item = T> + Send,
) -> Result<u64> {
    let (s, values) = (T::statements(), T::DEF.has_arrays());
    let chunk = if values {
        values_chunk(s.row_width())
    } else {
        BATCH_CHUNK
    };
    let mut total = 0;
    loop {
        let batch: Vec<T> = rows.by_ref().take(chunk).collect();
        let n = batch.len();
        let sql = if values {
            s.update_values(n)
        } else {
            s.update_unnest.clone()
        };
        // Nothing to set: the derive emits no `update_many` then.
        let (Some(sql), true) = (sql, n > 0) else {
            break;
        };
        let a = bind_rows(&batch, values)?;
        let call = call::<T>(Operation::UpdateMany);
        let Affected(done) = seam::statement(call, conn, &sql, a).await?;
        if done != n as u64 {
            let (entity, expected) = (T::DEF.entity, n as u64);
            return Err(Error::BatchIncomplete {
                entity,
                expected,
                affected: done,
            });
        }
        total += done;
        if n < chunk {
            break;
        }
    }
    Ok(total)
}

/// Binds rows for `update_many`: one `VALUES` row each, or `UNNEST` columns.
fn bind_rows<T: Table>(rows: &[T], values: bool) -> Result<Args> {
    if values {
        let mut a = Args::default();
        for r in rows {
            T::bind_row(r, &mut a)?;
        }
        return Ok(a);
    }
    let mut cols = Columns::with_capacity(rows.len());
    for r in rows {
        T::bind_row(r, &mut cols)?;
        cols.end_row();
    }
    cols.into_args()
}

/// Deletes the rows with these keys.
pub fn delete_many<'a, T, A, I>(db: A, keys: I) -> Fut<'a, BatchCounts>
where
    T: Table,
    A: Db<'a>,
    I: Rows<'a, T::Key>,
{
    let op = Operation::DeleteMany;
    let keys = keys.into_iter();
    Box::pin(seam::batch(call::<T>(op), async move {
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let mut w = Written::<T>::new(&conn, after);
        let mut tx = Connection::begin(&mut *conn).await?;
        w.began(op);
        let mut keys = keys.inspect(|k| w.push(|| Some(k.clone()))).peekable();
        let sql = &T::statements().delete_unnest;
        let mut deleted = 0;
        while keys.peek().is_some() {
            let mut cols = Columns::with_capacity(BATCH_CHUNK);
            for k in keys.by_ref().take(BATCH_CHUNK) {
                T::bind_key(&k, &mut cols)?;
                cols.end_row();
            }
            let a = cols.into_args()?;
            let Affected(n) = seam::statement(call::<T>(op), &mut tx, sql, a).await?;
            deleted += n;
        }
        drop(keys);
        commit(tx, w.pending).await?;
        w.committed(op).await;
        Ok(BatchCounts {
            deleted,
            ..Default::default()
        })
    }))
}
