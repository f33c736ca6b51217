//! The statement seam: every statement a repository runs goes through
//! [`statement`] (a batch call: [`batch`]), which knows the entity, the operation and the connection. It is
//! the one place where cross-cutting behaviour is added, never per entity:
//!
//! - a `tracing` span per statement (`strata.statement`, fields
//!   `entity`, `operation`, `rows`; never values or keys);
//! - metrics ([`crate::metrics`]): latency, rows and errors by kind per
//!   statement, the wait for a pooled connection ([`acquire`]), acquire
//!   timeouts, and the batch writers' own transactions committed or rolled
//!   back; labels `store`, `entity`, `operation` (and `kind` for errors);
//! - the after-commit hooks ([`on_commit`]).
//!
//! Replica routing is the caller's choice of executor: a repository call
//! runs on the pool it is given, and a
//! [`Replicated`](super::Replicated) handle hands out a replica's pool
//! only for reads ([`Operation::is_read`]).
//!
//! After-commit hooks receive the keys a write changed, once the change is
//! durable: right after the statement for a write outside a transaction
//! (autocommit), after `COMMIT` for the batch writers' own transaction, and
//! never for a statement or transaction that failed. A write made inside a
//! caller's transaction is reported with [`Commit::Pending`]: the SDK cannot
//! see that transaction's `COMMIT`, so a hook must treat it as "may commit
//! later" (change capture reports it again once it commits).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use sqlx::postgres::{PgArguments, PgConnection};
use tracing::Instrument;

use super::sink::Args;
use crate::error::Result;

pub(crate) mod keys;

/// What a repository call does, for spans, metrics and routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    Insert,
    Upsert,
    Find,
    GetMany,
    Update,
    Patch,
    Delete,
    Exists,
    Count,
    List,
    /// A named finder of the schema.
    Query(&'static str),
    InsertMany,
    UpsertMany,
    UpdateMany,
    DeleteMany,
}

impl Operation {
    /// The operation's name: `insert`, `get_many`, a finder's name, …
    pub const fn name(&self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Upsert => "upsert",
            Operation::Find => "find",
            Operation::GetMany => "get_many",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::Exists => "exists",
            Operation::Count => "count",
            Operation::List => "list",
            Operation::Query(name) => name,
            Operation::InsertMany => "insert_many",
            Operation::UpsertMany => "upsert_many",
            Operation::UpdateMany => "update_many",
            Operation::DeleteMany => "delete_many",
        }
    }

    /// Whether this is a batch call (`insert_many` … `delete_many`), which
    /// runs several statements in its own transaction.
    pub fn is_batch(&self) -> bool {
        matches!(
            self,
            Operation::InsertMany
                | Operation::UpsertMany
                | Operation::UpdateMany
                | Operation::DeleteMany
        )
    }

    /// Whether the statement only reads (may be served by a replica).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Operation::Find
                | Operation::GetMany
                | Operation::Exists
                | Operation::Count
                | Operation::List
                | Operation::Query(_)
        )
    }
}

/// One call through the seam: which store, entity and operation. Built
/// by the SDK for a [`super::Table`] (`repo::call`), with its metric keys.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The store's name in the schema (`TableDef::store`; may be empty).
    pub store: &'static str,
    pub entity: &'static str,
    pub operation: Operation,
    /// The call's `metrics` keys, built at compile time; `None` for a
    /// finder ([`Operation::Query`]), whose keys are built per call.
    pub(crate) keys: Option<&'static keys::CallKeys>,
}

/// How many rows a statement's result holds, for the span.
pub trait Rows {
    fn rows(&self) -> u64;
}
impl<T> Rows for Option<T> {
    fn rows(&self) -> u64 {
        self.is_some() as u64
    }
}
impl<T> Rows for Vec<T> {
    fn rows(&self) -> u64 {
        self.len() as u64
    }
}
impl Rows for u64 {
    fn rows(&self) -> u64 {
        *self
    }
}
impl Rows for bool {
    fn rows(&self) -> u64 {
        *self as u64
    }
}
impl Rows for i64 {
    fn rows(&self) -> u64 {
        1
    }
}
impl Rows for crate::BatchCounts {
    fn rows(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

/// What a statement returns, and how it is fetched.
pub trait Outcome: Rows + Sized + Send {
    fn fetch<'c>(
        conn: &'c mut PgConnection,
        sql: &'c str,
        args: PgArguments,
    ) -> impl Future<Output = Result<Self>> + Send + 'c;
}

impl<T: super::Table> Outcome for Option<T> {
    async fn fetch<'c>(c: &'c mut PgConnection, sql: &'c str, a: PgArguments) -> Result<Self> {
        let row = sqlx::query_with(sql, a).fetch_optional(c).await?;
        row.as_ref().map(super::decode::row::<T>).transpose()
    }
}

impl<T: super::Table> Outcome for Vec<T> {
    async fn fetch<'c>(c: &'c mut PgConnection, sql: &'c str, a: PgArguments) -> Result<Self> {
        let rows = sqlx::query_with(sql, a).fetch_all(c).await?;
        rows.iter().map(super::decode::row::<T>).collect()
    }
}

/// The rows a statement without a result set changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Affected(pub u64);

impl Rows for Affected {
    fn rows(&self) -> u64 {
        self.0
    }
}

impl Outcome for Affected {
    async fn fetch<'c>(c: &'c mut PgConnection, sql: &'c str, a: PgArguments) -> Result<Self> {
        Ok(Affected(
            sqlx::query_with(sql, a).execute(c).await?.rows_affected(),
        ))
    }
}

/// One value of one row (`count(*)`, `EXISTS`, a pair of counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scalar<T>(pub T);

impl<T> Rows for Scalar<T> {
    fn rows(&self) -> u64 {
        1
    }
}

impl<T> Outcome for Scalar<T>
where
    T: Send + Unpin + 'static + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    async fn fetch<'c>(c: &'c mut PgConnection, sql: &'c str, a: PgArguments) -> Result<Self> {
        Ok(Scalar(
            sqlx::query_as_with::<_, T, _>(sql, a).fetch_one(c).await?,
        ))
    }
}

/// Runs one statement of `call` on `conn`: the one place every repository
/// statement passes. Opens the `strata.statement` span and records the
/// rows of the result.
pub async fn statement<O: Outcome>(
    call: Call,
    conn: &mut PgConnection,
    sql: &str,
    args: Args,
) -> Result<O> {
    let span = span(call);
    let autocommit = !sqlx::Connection::is_in_transaction(&*conn);
    let started = Instant::now();
    let out = O::fetch(conn, sql, args.0).instrument(span.clone()).await;
    let out = match out {
        Ok(v) => {
            span.record("rows", v.rows());
            Ok(v)
        }
        // A write sent outside a transaction may have committed.
        Err(e) if autocommit && !call.operation.is_read() => Err(e.after_send()),
        Err(e) => Err(e),
    };
    // A batch call's statements are measured once, as the whole call, by
    // `batch`. Errors are counted once per call, by `single` or `batch`.
    if !call.operation.is_batch() {
        record_statement(call, started, out.as_ref().ok().map(Rows::rows));
    }
    out
}

/// Runs one single-row repository call (`insert`, `get`, `patch`, a
/// finder, …), counting its error once by kind
/// (`strata_statement_errors_total`), wherever it arose: the statement,
/// the pool (an acquire timeout), a value refused before sending, or the
/// outcome (`not_found`, `stale_version`).
pub async fn single<R>(call: Call, body: impl Future<Output = Result<R>>) -> Result<R> {
    let out = body.await;
    if let Err(e) = &out {
        failed(call, e);
    }
    out
}

/// Counts one failed call of `call` by the error's kind.
pub(crate) fn failed(call: Call, e: &crate::Error) {
    let labels = [
        ("store", call.store),
        ("entity", call.entity),
        ("operation", call.operation.name()),
        ("kind", e.kind()),
    ];
    metrics::counter!(crate::metrics::STATEMENT_ERRORS, &labels).increment(1);
}

/// Records a statement's latency, and its rows when it succeeded.
fn record_statement(call: Call, started: Instant, rows: Option<u64>) {
    let seconds = started.elapsed().as_secs_f64();
    if let Some(k) = call.keys {
        return k.record(seconds, rows);
    }
    let labels = [
        ("store", call.store),
        ("entity", call.entity),
        ("operation", call.operation.name()),
    ];
    metrics::histogram!(crate::metrics::STATEMENT_DURATION, &labels).record(seconds);
    if let Some(rows) = rows {
        metrics::counter!(crate::metrics::STATEMENT_ROWS, &labels).increment(rows);
    }
}

/// Takes a connection from `db` for a call on the table `T`. From a pool
/// ([`super::Db::POOLED`]) the wait is timed
/// (`strata_pool_acquire_duration_seconds`, label `store`; sqlx does not
/// expose it) and `acquire_timeout`s are counted; on a connection or
/// transaction it is a reborrow, and nothing is recorded.
pub async fn acquire<'a, T: super::Table, A: super::Db<'a>>(db: A) -> Result<A::Connection> {
    if !A::POOLED {
        return Ok(db.acquire().await?);
    }
    let started = Instant::now();
    let out = db.acquire().await;
    let seconds = started.elapsed().as_secs_f64();
    keys::record_acquire::<T>(seconds);
    match out {
        Ok(c) => Ok(c),
        Err(e) => {
            if matches!(e, sqlx::Error::PoolTimedOut) {
                let labels = [("store", T::DEF.store)];
                metrics::counter!(crate::metrics::ACQUIRE_TIMEOUTS, &labels).increment(1);
            }
            Err(e.into())
        }
    }
}

/// Records a whole batch call's latency, rows, or its error's kind.
fn record(call: Call, started: Instant, out: std::result::Result<u64, &crate::Error>) {
    record_statement(call, started, out.as_ref().ok().copied());
    if let Err(e) = out {
        failed(call, e);
    }
}

/// Counts a transaction the SDK itself began and ended
/// (`strata_transactions_total`, `outcome` = `committed` | `rolled_back`).
pub(crate) fn transaction(call: Call, committed: bool) {
    count_transaction(call.store, call.entity, committed);
}

/// Counts one ended transaction of `store` (`entity` = the entity's name,
/// or `*` for a [`super::Tx`] of your own).
pub(crate) fn count_transaction(store: &str, entity: &str, committed: bool) {
    let outcome = if committed {
        "committed"
    } else {
        "rolled_back"
    };
    let labels = [
        ("store", store.to_string()),
        ("entity", entity.to_string()),
        ("outcome", outcome.to_string()),
    ];
    metrics::counter!(crate::metrics::TRANSACTIONS, &labels).increment(1);
}

/// Runs a whole batch call (its own transaction, several statements, COPY
/// streams) under one `strata.statement` span.
pub async fn batch<F>(call: Call, body: F) -> Result<crate::BatchCounts>
where
    F: Future<Output = Result<crate::BatchCounts>>,
{
    let span = span(call);
    let started = Instant::now();
    let out = body.instrument(span.clone()).await;
    if let Ok(v) = &out {
        span.record("rows", v.rows());
    }
    record(call, started, out.as_ref().map(Rows::rows));
    out
}

fn span(call: Call) -> tracing::Span {
    tracing::debug_span!(
        "strata.statement",
        entity = call.entity,
        operation = call.operation.name(),
        rows = tracing::field::Empty,
    )
}

/// Whether a write is durable yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Committed: autocommit, or the batch writer's own transaction.
    Committed,
    /// Written inside the caller's transaction, which may still roll back.
    Pending,
}

/// The keys one write changed, as given to after-commit hooks.
#[derive(Debug)]
pub struct Written<'a, K> {
    pub entity: &'static str,
    pub operation: Operation,
    pub commit: Commit,
    pub keys: &'a [K],
}

type Hook<K> = Arc<dyn Fn(&Written<'_, K>) + Send + Sync>;

static ANY_HOOK: AtomicBool = AtomicBool::new(false);
static HOOKS: RwLock<Option<HashMap<TypeId, Box<dyn Any + Send + Sync>>>> = RwLock::new(None);

/// Registers a hook run after every write of the table `T` (see the
/// [module documentation](self) for when). Hooks run in registration
/// order, synchronously, and must not block; the cache's invalidation is
/// one.
pub fn on_commit<T, F>(hook: F)
where
    T: super::Table,
    F: Fn(&Written<'_, T::Key>) + Send + Sync + 'static,
{
    let mut map = HOOKS.write().unwrap_or_else(|e| e.into_inner());
    let hooks = map.get_or_insert_with(HashMap::new);
    let list = hooks
        .entry(TypeId::of::<T>())
        .or_insert_with(|| Box::new(Vec::<Hook<T::Key>>::new()));
    if let Some(list) = list.downcast_mut::<Vec<Hook<T::Key>>>() {
        list.push(Arc::new(hook));
    }
    ANY_HOOK.store(true, Ordering::Release);
}

/// The hooks of `T`, if any (one atomic load when none is registered).
pub(crate) fn hooks<T: super::Table>() -> Option<Vec<Hook<T::Key>>> {
    if !ANY_HOOK.load(Ordering::Acquire) {
        return None;
    }
    let map = HOOKS.read().unwrap_or_else(|e| e.into_inner());
    let list = map.as_ref()?.get(&TypeId::of::<T>())?;
    list.downcast_ref::<Vec<Hook<T::Key>>>().cloned()
}

/// Whether any hook is registered for `T` (then batch writers keep keys).
pub(crate) fn has_hooks<T: super::Table>() -> bool {
    hooks::<T>().is_some_and(|h| !h.is_empty())
}

/// Runs `T`'s hooks for a write of `keys`.
pub(crate) fn written<T: super::Table>(call: Call, commit: Commit, keys: &[T::Key]) {
    if let Some(hooks) = hooks::<T>() {
        let w = Written {
            entity: call.entity,
            operation: call.operation,
            commit,
            keys,
        };
        for h in &hooks {
            h(&w);
        }
    }
}
