//! PostgreSQL runtime: the generic repository behind every generated
//! entity ([`Table`] declared by the derive; [`repo`] and the batch
//! writers behave; [`seam`] runs every statement; [`sql`] builds them),
//! pools built from the schema's store settings, and the small types
//! repositories share (pages, sort order, chunk size).

mod after;
mod batch;
pub mod check;
mod copy;
pub(crate) mod decode;
pub mod key_text;
pub mod methods;
mod pool;
pub mod replica;
pub mod repo;
pub mod seam;
mod sink;
pub mod sql;
mod table;
pub mod tx;
mod upsert;
mod values;

/// The SDK's `Result`, here for the derive's binders.
pub use crate::error::Result;
pub use after::AfterCommit;
pub use batch::{delete_many, insert_many, update_many, upsert_many};
pub use copy::{abort as abort_copy, insert_rows, CopyWriter, COPY_BLOCK, INSERT_BLOCK};
pub use key_text::KeyText;
pub use pool::{expand_env, PoolConfig};
pub use replica::{CausalityToken, Lsn, ReplicaPolicy, ReplicaState, Replicated};
pub use repo::{Db, Fut, Rows};
pub use sink::{Args, Columns};
pub use sql::Statements;
pub use table::{
    ArrayValue, CacheDef, Column, QueryDef, Role, Sink, Table, TableDef, Temporal, Value,
    VersionCheck,
};
pub use tx::Tx;
pub use upsert::upsert_staged;
pub use values::values_chunk;

/// Bound parameters of a finder: `params!(a, b)` is an `Args` holding `a`
/// then `b` (or the first encoding error).
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        (|| -> $crate::Result<$crate::postgres::Args> {
            #[allow(unused_mut)]
            let mut a = $crate::postgres::Args::default();
            $(a.add($v)?;)*
            ::std::result::Result::Ok(a)
        })()
    };
}
pub use params;

/// Rows per statement in batch writes: one round trip per chunk.
pub const BATCH_CHUNK: usize = 10_000;

/// Sort order of a keyset-paginated list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// A request for one page of a keyset-paginated list: the rows after the
/// cursor (a key), never an OFFSET, so a page costs the same at any depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    pub after: Option<K>,
    pub limit: u32,
    pub order: Order,
}

impl<K> PageRequest<K> {
    /// The first page of `limit` rows in ascending key order.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            after: None,
            limit,
            order: Order::Asc,
        }
    }
    pub fn desc(mut self) -> Self {
        self.order = Order::Desc;
        self
    }
    pub fn after(mut self, cursor: K) -> Self {
        self.after = Some(cursor);
        self
    }
}

/// One page of rows and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// Builds a page; `key` reads the cursor from the last row when the page is full.
    pub fn new(items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let next = if items.len() as u64 >= u64::from(limit) && limit > 0 {
            items.last().map(key)
        } else {
            None
        };
        Page { items, next }
    }
    /// The request for the page after this one, if there is one.
    pub fn next_request(&self, prev: &PageRequest<K>) -> Option<PageRequest<K>>
    where
        K: Clone,
    {
        self.next.clone().map(|k| PageRequest {
            after: Some(k),
            limit: prev.limit,
            order: prev.order,
        })
    }
}

/// A page limit PostgreSQL accepts (`LIMIT` takes a bigint; 0 means none).
pub fn limit(l: u32) -> i64 {
    i64::from(l)
}
