//! The targets of a pipeline and the batch of rows waiting for them.

use super::cell::{self, Cell};
use super::clickhouse::{ClickHouse, Pending};
use super::elastic::Elastic;
use super::error::SyncError;
use super::spec::{Pipeline, TargetSpec};

/// A connected target.
#[derive(Clone)]
pub enum Target {
    ClickHouse(ClickHouse),
    Elastic(Elastic),
}

impl Target {
    /// The store name in the schema.
    pub fn store(&self) -> &str {
        match self {
            Target::ClickHouse(c) => &c.store,
            Target::Elastic(e) => &e.store,
        }
    }
}

/// Every target of a pipeline.
#[derive(Clone)]
pub struct Targets {
    pub list: Vec<Target>,
}

/// Rows waiting to be written, per target (and per table for ClickHouse).
pub struct Batch {
    ch: Vec<Vec<Pending>>,
    es: Vec<Vec<u8>>,
    /// Rows pushed since the last flush.
    pub rows: usize,
}

impl Batch {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.ch
            .iter()
            .flatten()
            .map(|p| p.body.len())
            .sum::<usize>()
            + self.es.iter().map(Vec::len).sum::<usize>()
    }
}

impl Targets {
    /// Connects the targets named in the pipeline.
    pub fn new(p: &Pipeline) -> Result<Targets, SyncError> {
        let list = p
            .targets
            .iter()
            .map(|t| match t {
                TargetSpec::ClickHouse {
                    store,
                    url,
                    flags,
                    tables,
                } => ClickHouse::new(store, url, *flags, tables.clone()).map(Target::ClickHouse),
                TargetSpec::Elasticsearch {
                    store,
                    url,
                    indexes,
                } => Elastic::new(store, url, indexes.clone()).map(Target::Elastic),
            })
            .collect::<Result<_, _>>()?;
        Ok(Targets { list })
    }

    /// Creates what is missing at every target.
    pub async fn ensure(&self, p: &Pipeline) -> Result<(), SyncError> {
        for t in &self.list {
            super::retry::forever(&format!("creating tables at `{}`", t.store()), || async {
                match t {
                    Target::ClickHouse(c) => c.ensure(&p.tables).await,
                    Target::Elastic(e) => e.ensure().await,
                }
            })
            .await?;
        }
        Ok(())
    }

    /// An empty batch with a buffer per target (and ClickHouse table).
    pub fn batch(&self) -> Batch {
        Batch {
            ch: self
                .list
                .iter()
                .map(|t| match t {
                    Target::ClickHouse(c) => c.tables.iter().map(|_| Pending::default()).collect(),
                    Target::Elastic(_) => Vec::new(),
                })
                .collect(),
            es: self.list.iter().map(|_| Vec::new()).collect(),
            rows: 0,
        }
    }

    /// Adds one row of pipeline table `table` (all its columns; for a
    /// delete the key and zeros) at `version`.
    pub fn push(
        &self,
        p: &Pipeline,
        b: &mut Batch,
        table: usize,
        cells: &[Cell],
        version: u64,
        deleted: bool,
    ) -> Result<(), SyncError> {
        let spec = &p.tables[table];
        // ClickHouse first: the only target that can refuse a value, so a
        // refused row is in no target's buffer.
        for (i, t) in self.list.iter().enumerate() {
            if let Target::ClickHouse(c) = t {
                if let Some(ti) = c.table_for(table) {
                    c.push_row(spec, &mut b.ch[i][ti], cells, version, deleted)?;
                }
            }
        }
        for (i, t) in self.list.iter().enumerate() {
            match t {
                Target::ClickHouse(_) => {}
                Target::Elastic(e) => {
                    if let Some(ix) = e.index_for(table) {
                        e.push(&mut b.es[i], spec, ix, cells, version, deleted);
                    }
                }
            }
        }
        b.rows += 1;
        Ok(())
    }

    /// Writes the batch to every target (each retried until it succeeds)
    /// and empties it. Returns only when every target acknowledged.
    pub async fn flush(&self, p: &Pipeline, b: &mut Batch) -> Result<(), SyncError> {
        if b.rows == 0 {
            return Ok(());
        }
        let writes = self.list.iter().enumerate().map(|(i, t)| {
            let ch = &b.ch[i];
            let es = &b.es[i];
            async move {
                match t {
                    Target::ClickHouse(c) => {
                        for (ti, pending) in ch.iter().enumerate() {
                            c.insert(&p.tables[c.tables[ti].table], ti, pending).await?;
                        }
                        Ok::<(), SyncError>(())
                    }
                    Target::Elastic(e) => e.bulk(es).await,
                }
            }
        });
        for r in futures_util::future::join_all(writes).await {
            r?;
        }
        for v in b.ch.iter_mut().flatten() {
            v.body.clear();
            v.rows = 0;
        }
        for v in &mut b.es {
            v.clear();
        }
        b.rows = 0;
        Ok(())
    }
}

/// The cells of a tombstone: the key from `key_cells`, zeros elsewhere.
pub fn tombstone(p: &Pipeline, table: usize, cells: Vec<Cell>) -> Vec<Cell> {
    p.tables[table]
        .columns
        .iter()
        .zip(cells)
        .map(|(col, c)| if col.key { c } else { cell::zero(col) })
        .collect()
}
