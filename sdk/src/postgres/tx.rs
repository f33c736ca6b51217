//! [`Tx`]: a transaction of your own that the metrics see.
//!
//! The batch writers (`insert_many` … `delete_many`) begin and end their
//! own transactions and count them (`strata_transactions_total`). A
//! transaction begun with sqlx's `pool.begin()` is invisible to the SDK: it
//! cannot see the `COMMIT`. Begin it with [`Tx::begin`] (or
//! [`super::Replicated::begin`], or the cache's `Store::begin`) instead and
//! it is counted too, with `entity="*"`: `committed` when [`Tx::commit`]
//! succeeds, `rolled_back` when it fails, on [`Tx::rollback`], and when the
//! `Tx` is dropped unfinished (sqlx then rolls it back).

use futures_util::future::BoxFuture;
use sqlx::postgres::PgConnection;
use sqlx::{Acquire, PgPool, Postgres, Transaction};

use super::repo::Db;
use super::seam;
use crate::error::{Error, Result};

/// The `entity` label of a transaction that is not one entity's.
pub const ANY_ENTITY: &str = "*";

/// A counted PostgreSQL transaction: pass `&mut tx` to repository calls
/// as you would a `sqlx::Transaction`. See the [module documentation](self).
pub struct Tx {
    tx: Transaction<'static, Postgres>,
    outcome: Outcome,
}

/// Counts the transaction once: when it ends, or when it is dropped
/// unfinished (as rolled back).
struct Outcome {
    store: String,
    counted: bool,
}

impl Outcome {
    fn count(&mut self, committed: bool) {
        if !std::mem::replace(&mut self.counted, true) {
            seam::count_transaction(&self.store, ANY_ENTITY, committed);
        }
    }
}

impl Drop for Outcome {
    /// Dropped unfinished: sqlx rolls the transaction back; count it so.
    fn drop(&mut self) {
        self.count(false);
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("store", &self.outcome.store)
            .finish()
    }
}

impl Tx {
    /// Begins a transaction on `pool`, labelled `store` in the metrics
    /// (the schema's store name). Errors: a connection error
    /// ([`Error::Connection`], [`Error::Timeout`]) or
    /// [`Error::Database`] when none could be had.
    pub async fn begin(store: &str, pool: &PgPool) -> Result<Tx> {
        Ok(Tx {
            tx: pool.begin().await?,
            outcome: Outcome {
                store: store.to_string(),
                counted: false,
            },
        })
    }

    /// Commits. A failure of the `COMMIT` itself is
    /// [`Error::OutcomeUnknown`] when the connection was lost (the server
    /// may have committed); either way it counts as `rolled_back`.
    pub async fn commit(self) -> Result<()> {
        let Tx { tx, mut outcome } = self;
        let out = tx.commit().await.map_err(|e| Error::from(e).after_send());
        outcome.count(out.is_ok());
        out
    }

    /// Rolls back (counted `rolled_back`).
    pub async fn rollback(self) -> Result<()> {
        let Tx { tx, mut outcome } = self;
        outcome.count(false);
        Ok(tx.rollback().await?)
    }

    /// The connection, for statements of your own inside the transaction.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl<'a> Acquire<'a> for &'a mut Tx {
    type Database = Postgres;
    type Connection = &'a mut PgConnection;
    fn acquire(self) -> BoxFuture<'a, std::result::Result<Self::Connection, sqlx::Error>> {
        Box::pin(futures_util::future::ok(&mut *self.tx))
    }
    fn begin(self) -> BoxFuture<'a, std::result::Result<Transaction<'a, Postgres>, sqlx::Error>> {
        Transaction::begin(&mut *self.tx, None)
    }
}

impl<'a> Db<'a> for &'a mut Tx {}
