//! PostgreSQL runtime: pools built from the schema's store settings, and the
//! small types generated repositories share (pages, sort order, chunk size).

mod copy;
mod pool;
mod upsert;
mod values;

pub use copy::{abort as abort_copy, insert_rows, CopyWriter, InsertSql, COPY_BLOCK, INSERT_BLOCK};
pub use pool::{expand_env, PoolConfig};
pub use upsert::{upsert_staged, UpsertSql};
pub use values::{values_chunk, values_sql};

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
