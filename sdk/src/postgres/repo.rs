//! The repository's single-row calls, generic over [`Table`]: each
//! generated method (`Decision::get`, `Order::patch`, …) is one call into
//! a function here. Every statement goes through the seam
//! ([`super::seam::statement`]).
//!
//! Each function returns a boxed `Send` future rather than being an
//! `async fn`: rustc cannot always prove an `async fn` generic over
//! `sqlx::Acquire` to be `Send` when the caller passes `&mut *tx` inside
//! `tokio::spawn` (launchbadge/sqlx#1015); boxing here asserts it once, in
//! library code, for every entity.

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Acquire, Connection, PgPool, Postgres, Transaction};

use super::after::AfterCommit;
use super::seam::{self, Affected, Call, Commit, Operation, Scalar};
use super::sink::Args;
use super::table::{Sink, Table, VersionCheck};
use super::{Order, Page, PageRequest};
use crate::error::{Error, Result};

/// A boxed `Send` future of a repository call.
pub type Fut<'a, T> = BoxFuture<'a, Result<T>>;

/// Anything a repository call runs on: a pool (`&PgPool`), a connection
/// (`&mut PgConnection`, `&mut PoolConnection<Postgres>`) or a transaction
/// (`&mut tx`, `&mut *tx`); with the `cache` feature also a cache-aware
/// `&strata_sdk::cache::Store`, its `bypass()` and `&mut StoreTx`. Writes
/// and reads alike run on it; choose a replica by passing its pool.
///
/// One lifetime `'a` covers the executor and every borrowed argument: a
/// `&mut PgConnection` reborrows for as long as the call needs.
///
/// The impls are listed (not a blanket impl over `sqlx::Acquire`) so that
/// a handle can say what it adds: the cache it reads through
/// ([`Db::store`]) and what a write does after its commit
/// ([`Db::after_commit`]).
pub trait Db<'a>: Acquire<'a, Database = Postgres> + Send + 'a {
    /// Whether [`Acquire::acquire`] waits for a pool (a pool, or a handle
    /// over one): only then is the wait timed
    /// (`strata_pool_acquire_duration_seconds`). On a connection or a
    /// transaction it is a reborrow, and timing it would cost two clock
    /// reads per call for a figure that is always zero.
    const POOLED: bool = false;
    /// The cache-aware store behind this executor: reads by key of an
    /// entity with `cache:` go through its cache. `None` (the default):
    /// PostgreSQL only.
    #[cfg(feature = "cache")]
    fn store(&self) -> Option<&'a crate::cache::Store> {
        None
    }
    /// What a write through this executor does once committed (the
    /// default: nothing beyond the seam's hooks).
    fn after_commit(&self) -> AfterCommit {
        AfterCommit::nothing()
    }
}
impl<'a, 'p: 'a> Db<'a> for &'p PgPool {
    const POOLED: bool = true;
    /// Writes invalidate the caches paired with this pool
    /// (`strata_sdk::cache::Store::new`).
    #[cfg(feature = "cache")]
    fn after_commit(&self) -> AfterCommit {
        AfterCommit::paired(self)
    }
}
impl<'a> Db<'a> for &'a mut PgConnection {}
impl<'a> Db<'a> for &'a mut PoolConnection<Postgres> {}
impl<'a, 'c: 'a> Db<'a> for &'a mut Transaction<'c, Postgres> {}

/// The rows a batch writer takes: any `Send` iterator of them.
pub trait Rows<'a, T>: IntoIterator<Item = T, IntoIter: Send> + Send + 'a {}
impl<'a, T, I: IntoIterator<Item = T, IntoIter: Send> + Send + 'a> Rows<'a, T> for I {}

pub(crate) fn call<T: Table>(operation: Operation) -> Call {
    Call {
        store: T::DEF.store,
        entity: T::DEF.entity,
        operation,
        keys: seam::keys::of::<T>(operation),
    }
}

/// Runs the after-commit hooks of a write made on `conn`.
pub(crate) fn written<T: Table>(conn: &PgConnection, op: Operation, keys: &[T::Key]) {
    let commit = match conn.is_in_transaction() {
        true => Commit::Pending,
        false => Commit::Committed,
    };
    seam::written::<T>(call::<T>(op), commit, keys);
}

fn args<K: ?Sized>(value: &K, bind: impl FnOnce(&K, &mut Args) -> Result<()>) -> Result<Args> {
    let mut a = Args::default();
    bind(value, &mut a)?;
    Ok(a)
}

async fn one<T: Table>(conn: &mut PgConnection, op: Operation, sql: &str, a: Args) -> Result<T> {
    let row: Option<T> = seam::statement(call::<T>(op), conn, sql, a).await?;
    let row = row.ok_or(Error::NotFound {
        entity: T::DEF.entity,
    })?;
    written::<T>(conn, op, &[row.key()]);
    Ok(row)
}

/// `INSERT … RETURNING`; a taken key or unique value is [`Error::Conflict`].
pub fn insert<'a, T: Table, A: Db<'a>>(db: A, row: &'a T::New) -> Fut<'a, T> {
    Box::pin(seam::single(call::<T>(Operation::Insert), async move {
        let a = args(row, T::bind_new)?;
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let row: T = one(&mut conn, Operation::Insert, &T::statements().insert, a).await?;
        after.written::<T>(&[row.key()]).await;
        Ok(row)
    }))
}

/// `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING`.
pub fn upsert<'a, T: Table, A: Db<'a>>(db: A, row: &'a T::New) -> Fut<'a, T> {
    Box::pin(seam::single(call::<T>(Operation::Upsert), async move {
        let a = args(row, T::bind_new)?;
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let row: T = one(&mut conn, Operation::Upsert, &T::statements().upsert, a).await?;
        after.written::<T>(&[row.key()]).await;
        Ok(row)
    }))
}

/// The row with this key, if any.
pub fn find<'a, T: Table, A: Db<'a>>(db: A, key: &'a T::Key) -> Fut<'a, Option<T>> {
    Box::pin(seam::single(call::<T>(Operation::Find), find_row(db, key)))
}

/// The row with this key; [`Error::NotFound`] if there is none. Counted
/// as a `find`, a missing row included (one future, one allocation: the
/// statement seam's `get` p50 is held within 2% of hand-written sqlx).
pub fn get<'a, T: Table, A: Db<'a>>(db: A, key: &'a T::Key) -> Fut<'a, T> {
    Box::pin(seam::single(call::<T>(Operation::Find), async move {
        let found = find_row::<T, A>(db, key).await?;
        found.ok_or(Error::NotFound {
            entity: T::DEF.entity,
        })
    }))
}

async fn find_row<'a, T: Table, A: Db<'a>>(db: A, key: &'a T::Key) -> Result<Option<T>> {
    let a = args(key, T::bind_key)?;
    let mut conn = seam::acquire::<T, _>(db).await?;
    let sql = &T::statements().find;
    seam::statement(call::<T>(Operation::Find), &mut conn, sql, a).await
}

/// The rows with these keys in one statement: each row once, in the order
/// of `keys` (a key asked twice gives its row once, where first asked;
/// missing keys are skipped), as the cached path returns them.
pub fn get_many<'a, T: Table, A: Db<'a>>(db: A, keys: &'a [T::Key]) -> Fut<'a, Vec<T>> {
    Box::pin(seam::single(call::<T>(Operation::GetMany), async move {
        let mut cols = super::sink::Columns::with_capacity(keys.len());
        for k in keys {
            T::bind_key(k, &mut cols)?;
            cols.end_row();
        }
        let a = match keys.is_empty() {
            // No row fixed the columns' types: bind empty arrays of the key's.
            true => return Ok(Vec::new()),
            false => cols.into_args()?,
        };
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().get_many;
        let rows = seam::statement(call::<T>(Operation::GetMany), &mut conn, sql, a).await?;
        in_key_order::<T>(keys, rows)
    }))
}

/// `rows` in the order of `keys` (first occurrence), matched by the exact
/// text of their keys ([`super::KeyText`]).
fn in_key_order<T: Table>(keys: &[T::Key], rows: Vec<T>) -> Result<Vec<T>> {
    let mut by_key = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        by_key.insert(super::KeyText::of::<T>(&row.key())?, row);
    }
    let mut out = Vec::with_capacity(by_key.len());
    for k in keys {
        if let Some(row) = by_key.remove(&super::KeyText::of::<T>(k)?) {
            out.push(row);
        }
    }
    Ok(out)
}

/// Writes every update column by key; with a version, only if the row
/// still has `row.version` (else [`Error::StaleVersion`]).
pub fn update<'a, T: Table, A: Db<'a>>(db: A, row: &'a T) -> Fut<'a, T> {
    Box::pin(seam::single(call::<T>(Operation::Update), async move {
        let a = args(row, T::bind_row)?;
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().update;
        let done: Option<T> =
            seam::statement(call::<T>(Operation::Update), &mut conn, sql, a).await?;
        let key = row.key();
        let out = finish_update(&mut conn, Operation::Update, done, &key, row.version()).await?;
        after.written::<T>(&[key]).await;
        Ok(out)
    }))
}

/// Writes only the fields set in the patch, and adds its increments
/// atomically. On a versioned entity the patch must expect a version or
/// opt out ([`VersionCheck`]; else [`Error::VersionRequired`]).
pub fn patch<'a, T: Table, A: Db<'a>>(db: A, key: &'a T::Key, patch: &'a T::Patch) -> Fut<'a, T> {
    Box::pin(seam::single(call::<T>(Operation::Patch), async move {
        let mut a = args(patch, T::bind_patch)?;
        T::bind_key(key, &mut a)?;
        let expected = match T::version_check(patch) {
            VersionCheck::Expect(v) => Some(v),
            VersionCheck::Skip => None,
            VersionCheck::Missing => {
                let entity = T::DEF.entity;
                return Err(Error::VersionRequired { entity });
            }
        };
        if T::DEF.version().is_some() {
            a.add(expected)?;
        }
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().patch;
        let done: Option<T> =
            seam::statement(call::<T>(Operation::Patch), &mut conn, sql, a).await?;
        let out = finish_update(&mut conn, Operation::Patch, done, key, expected).await?;
        after.written::<T>(std::slice::from_ref(key)).await;
        Ok(out)
    }))
}

/// The updated row, or why no row matched: a stale version or a missing key.
async fn finish_update<T: Table>(
    conn: &mut PgConnection,
    op: Operation,
    done: Option<T>,
    key: &T::Key,
    expected: Option<i64>,
) -> Result<T> {
    if let Some(row) = done {
        written::<T>(conn, op, &[row.key()]);
        return Ok(row);
    }
    let entity = T::DEF.entity;
    let (Some(sql), Some(expected)) = (&T::statements().version_of, expected) else {
        return Err(Error::NotFound { entity });
    };
    let found: Option<(i64,)> = sqlx::query_as_with(sql, args(key, T::bind_key)?.0)
        .fetch_optional(conn)
        .await?;
    Err(match found {
        Some((found,)) => Error::StaleVersion {
            entity,
            expected,
            found,
        },
        None => Error::NotFound { entity },
    })
}

/// Deletes the row with this key; `false` if there was none.
pub fn delete<'a, T: Table, A: Db<'a>>(db: A, key: &'a T::Key) -> Fut<'a, bool> {
    Box::pin(seam::single(call::<T>(Operation::Delete), async move {
        let a = args(key, T::bind_key)?;
        let after = db.after_commit();
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().delete;
        let Affected(n) = seam::statement(call::<T>(Operation::Delete), &mut conn, sql, a).await?;
        if n > 0 {
            written::<T>(&conn, Operation::Delete, std::slice::from_ref(key));
            after.written::<T>(std::slice::from_ref(key)).await;
        }
        Ok(n > 0)
    }))
}

/// Whether a row has this key.
pub fn exists<'a, T: Table, A: Db<'a>>(db: A, key: &'a T::Key) -> Fut<'a, bool> {
    Box::pin(seam::single(call::<T>(Operation::Exists), async move {
        let a = args(key, T::bind_key)?;
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().exists;
        let Scalar((yes,)) =
            seam::statement(call::<T>(Operation::Exists), &mut conn, sql, a).await?;
        Ok(yes)
    }))
}

/// How many rows the table holds.
pub fn count<'a, T: Table, A: Db<'a>>(db: A) -> Fut<'a, i64> {
    Box::pin(seam::single(call::<T>(Operation::Count), async move {
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().count;
        let a = Args::default();
        let Scalar((n,)) = seam::statement(call::<T>(Operation::Count), &mut conn, sql, a).await?;
        Ok(n)
    }))
}

/// One page of rows in key order after the request's cursor (keyset
/// pagination, never `OFFSET`).
pub fn list<'a, T: Table, A: Db<'a>>(
    db: A,
    page: &'a PageRequest<T::Key>,
) -> Fut<'a, Page<T, T::Key>> {
    Box::pin(seam::single(call::<T>(Operation::List), async move {
        let mut a = Args::default();
        if let Some(after) = &page.after {
            T::bind_key(after, &mut a)?;
        }
        let sql = T::statements()
            .list
            .pick(page.order == Order::Desc, page.after.is_some());
        let rows = fetch_page::<T, A>(db, sql, a, page.limit).await?;
        Ok(Page::new(rows, page.limit, T::key))
    }))
}

/// One page ordered by the `sort`-th sort field of [`super::TableDef::sorts`]
/// (read from a row by `field`), then the key; the cursor is `(value, key)`.
pub fn list_by<'a, T: Table, A: Db<'a>, V: super::Value>(
    db: A,
    sort: usize,
    page: &'a PageRequest<(V, T::Key)>,
    field: fn(&T) -> &V,
) -> Fut<'a, Page<T, (V, T::Key)>> {
    Box::pin(seam::single(call::<T>(Operation::List), async move {
        let mut a = Args::default();
        if let Some((value, key)) = &page.after {
            a.value(value)?;
            T::bind_key(key, &mut a)?;
        }
        let lists = &T::statements().list_by[sort];
        let sql = lists.pick(page.order == Order::Desc, page.after.is_some());
        let rows = fetch_page::<T, A>(db, sql, a, page.limit).await?;
        Ok(Page::new(rows, page.limit, |r| (field(r).clone(), r.key())))
    }))
}

async fn fetch_page<'a, T: Table, A: Db<'a>>(
    db: A,
    sql: &str,
    mut a: Args,
    limit: u32,
) -> Result<Vec<T>> {
    a.add(super::limit(limit))?;
    let mut conn = seam::acquire::<T, _>(db).await?;
    seam::statement(call::<T>(Operation::List), &mut conn, sql, a).await
}

/// The rows of the `index`-th named query of [`super::TableDef::queries`];
/// `a` holds its parameters.
pub fn query<'a, T: Table, A: Db<'a>>(db: A, index: usize, a: Result<Args>) -> Fut<'a, Vec<T>> {
    run_query::<T, A, Vec<T>>(db, index, a)
}

/// [`query`] for a query declared `one: true`: at most one row.
pub fn query_one<'a, T: Table, A: Db<'a>>(
    db: A,
    index: usize,
    a: Result<Args>,
) -> Fut<'a, Option<T>> {
    run_query::<T, A, Option<T>>(db, index, a)
}

/// A named query's statement, its rows read as `O`.
fn run_query<'a, T: Table, A: Db<'a>, O: seam::Outcome + 'a>(
    db: A,
    index: usize,
    a: Result<Args>,
) -> Fut<'a, O> {
    let call = call::<T>(Operation::Query(T::DEF.queries[index].name));
    Box::pin(seam::single(call, async move {
        let a = a?;
        let mut conn = seam::acquire::<T, _>(db).await?;
        let sql = &T::statements().queries[index];
        seam::statement(call, &mut conn, sql, a).await
    }))
}
