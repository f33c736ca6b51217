//! The handles a repository call reads through the cache with: [`Store`]
//! (a pool and a cache), [`Bypass`] (one call past the cache, still
//! invalidating), and [`StoreTx`] (a transaction whose `commit()`
//! invalidates what it wrote).

use std::sync::{Arc, Mutex, Weak};

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Acquire, PgPool, Postgres, Transaction};

use super::{entry, Cache};
use crate::error::Result;
use crate::postgres::{AfterCommit, Db, Table, Tx};

/// A PostgreSQL pool and the cache of its entities: pass `&store` where a
/// repository call takes a pool. Reads by key of entities with `cache:`
/// go through Redis; every write invalidates after its commit. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: PgPool,
    pub(crate) cache: Cache,
    /// The postgres store's name, labelling [`Store::begin`]'s transactions
    /// in the metrics.
    name: Arc<str>,
}

/// Which caches were paired with which pool (by the identity of the
/// pool's connect options, shared by its clones): a write through the bare
/// pool invalidates them too.
type Pairing = (Weak<PgConnectOptions>, Weak<super::Inner>);
static PAIRED: Mutex<Vec<Pairing>> = Mutex::new(Vec::new());

/// The live caches paired with `pool` by [`Store::new`].
pub(crate) fn caches_of(pool: &PgPool) -> Vec<Cache> {
    let opts = pool.connect_options();
    let mut list = PAIRED.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|(o, c)| o.strong_count() > 0 && c.strong_count() > 0);
    list.iter()
        .filter(|(o, _)| std::ptr::eq(o.as_ptr(), Arc::as_ptr(&opts)))
        .filter_map(|(_, c)| c.upgrade().map(|inner| Cache { inner }))
        .collect()
}

impl Store {
    /// Pairs a pool with a cache. Writes through the bare pool (or its
    /// clones) then invalidate this cache too, after their commit; reads
    /// through the bare pool stay uncached.
    pub fn new(pool: PgPool, cache: Cache) -> Self {
        let opts = Arc::downgrade(&pool.connect_options());
        let mut list = PAIRED.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|(o, c)| o.strong_count() > 0 && c.strong_count() > 0);
        let known = list
            .iter()
            .any(|(o, c)| o.ptr_eq(&opts) && c.ptr_eq(&Arc::downgrade(&cache.inner)));
        if !known {
            list.push((opts, Arc::downgrade(&cache.inner)));
        }
        drop(list);
        Store {
            pool,
            cache,
            name: Arc::from("default"),
        }
    }
    /// Names the postgres store (the schema's name, e.g. `main`) in the
    /// metrics of [`Store::begin`]'s transactions; `default` otherwise.
    pub fn with_store_name(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }
    /// The pool: calls given it read PostgreSQL; their writes invalidate
    /// the caches paired with it (autocommit and batch writes; not writes
    /// inside a transaction of your own: use [`Store::begin`]).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
    /// For one call: reads go to PostgreSQL, writes still invalidate.
    pub fn bypass(&self) -> Bypass<'_> {
        Bypass(self)
    }
    /// Begins a transaction whose writes invalidate their keys when
    /// [`StoreTx::commit`] returns, and never if it rolls back. Reads inside
    /// it go to PostgreSQL (they must see the transaction's own writes).
    /// Counted in `strata_transactions_total` (`entity="*"`), as a
    /// [`Tx`].
    pub async fn begin(&self) -> Result<StoreTx<'_>> {
        Ok(StoreTx {
            tx: Tx::begin(&self.name, &self.pool).await?,
            store: self,
            deferred: Deferred::default(),
        })
    }
}

impl<'a, 's: 'a> Acquire<'a> for &'s Store {
    type Database = Postgres;
    type Connection = PoolConnection<Postgres>;
    fn acquire(self) -> BoxFuture<'a, std::result::Result<Self::Connection, sqlx::Error>> {
        Box::pin(self.pool.acquire())
    }
    fn begin(self) -> BoxFuture<'a, std::result::Result<Transaction<'a, Postgres>, sqlx::Error>> {
        let pool = self.pool.clone();
        Box::pin(async move { pool.begin().await })
    }
}

impl<'a, 's: 'a> Db<'a> for &'s Store {
    const POOLED: bool = true;
    fn store(&self) -> Option<&'a Store> {
        Some(*self)
    }
    fn after_commit(&self) -> AfterCommit {
        AfterCommit::now(self.cache.clone())
    }
}

/// One call past the cache ([`Store::bypass`]): reads PostgreSQL, and
/// writes still invalidate.
#[derive(Clone, Copy)]
pub struct Bypass<'s>(&'s Store);

impl<'a, 's: 'a> Acquire<'a> for Bypass<'s> {
    type Database = Postgres;
    type Connection = PoolConnection<Postgres>;
    fn acquire(self) -> BoxFuture<'a, std::result::Result<Self::Connection, sqlx::Error>> {
        Box::pin(self.0.pool.acquire())
    }
    fn begin(self) -> BoxFuture<'a, std::result::Result<Transaction<'a, Postgres>, sqlx::Error>> {
        let pool = self.0.pool.clone();
        Box::pin(async move { pool.begin().await })
    }
}

impl<'a, 's: 'a> Db<'a> for Bypass<'s> {
    const POOLED: bool = true;
    fn after_commit(&self) -> AfterCommit {
        AfterCommit::now(self.0.cache.clone())
    }
}

/// Rendered keys of one entity (its name and TTL) to invalidate.
type Batch = (&'static str, u64, Vec<String>);

/// Keys written inside a [`StoreTx`], invalidated by its commit.
#[derive(Clone, Default)]
pub struct Deferred(Arc<Mutex<Vec<Batch>>>);

impl Deferred {
    /// Notes keys of `T` written inside the transaction.
    pub(crate) fn push<T: Table>(&self, prefix: &str, keys: &[T::Key]) -> Result<()> {
        let Some(def) = T::CACHE else { return Ok(()) };
        let rendered = keys
            .iter()
            .map(|k| entry::key::<T>(prefix, k))
            .collect::<Result<Vec<_>>>()?;
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.push((T::DEF.entity, def.ttl_ms, rendered));
        Ok(())
    }
    fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A transaction of a [`Store`]: pass `&mut tx` to repository calls.
/// Writes inside it are noted; [`StoreTx::commit`] commits, then
/// invalidates them (awaited, so a read after `commit()` returns never
/// sees the older rows). Dropped or rolled back, nothing is invalidated
/// (nothing changed). Reads inside it go to PostgreSQL.
pub struct StoreTx<'s> {
    tx: Tx,
    store: &'s Store,
    deferred: Deferred,
}

impl StoreTx<'_> {
    /// Commits, then invalidates every key written inside.
    pub async fn commit(self) -> Result<()> {
        let StoreTx {
            tx,
            store,
            deferred,
        } = self;
        tx.commit().await?;
        for (entity, ttl, keys) in deferred.take() {
            store.cache.invalidate_keys(entity, ttl, keys).await;
        }
        Ok(())
    }
    /// Rolls back; nothing is invalidated.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await
    }
    /// The connection, for statements of your own inside the transaction
    /// (they invalidate nothing).
    pub fn conn(&mut self) -> &mut PgConnection {
        self.tx.conn()
    }
}

impl<'a, 's: 'a> Acquire<'a> for &'a mut StoreTx<'s> {
    type Database = Postgres;
    type Connection = &'a mut PgConnection;
    fn acquire(self) -> BoxFuture<'a, std::result::Result<Self::Connection, sqlx::Error>> {
        Box::pin(futures_util::future::ok(self.tx.conn()))
    }
    fn begin(self) -> BoxFuture<'a, std::result::Result<Transaction<'a, Postgres>, sqlx::Error>> {
        Transaction::begin(self.tx.conn(), None)
    }
}

impl<'a, 's: 'a> Db<'a> for &'a mut StoreTx<'s> {
    fn after_commit(&self) -> AfterCommit {
        AfterCommit::later(self.store.cache.prefix().to_string(), self.deferred.clone())
    }
}
