//! The targets of a pipeline and the batch of rows waiting for them.

use super::cell::{self, Cell};
use super::clickhouse::{ClickHouse, Pending};
use super::elastic::Elastic;
use super::error::SyncError;
#[cfg(feature = "cache")]
use super::redis::{self, Redis};
use super::spec::{Pipeline, TableSpec, TargetSpec};

/// What a streamed change adds to a row: the event's operation, its index
/// within the transaction, and the commit time (microseconds since 1970).
/// Snapshot rows have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMeta {
    pub op: ChangeOp,
    pub seq: u64,
    pub ts_us: i64,
}

/// The operation of a streamed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
    /// A `TRUNCATE` (change events only: one per partition).
    Truncate,
}

/// A connected target.
#[derive(Clone)]
pub enum Target {
    ClickHouse(ClickHouse),
    Elastic(Elastic),
    #[cfg(feature = "cache")]
    Redis(Redis),
}

impl Target {
    /// The store name in the schema.
    pub fn store(&self) -> &str {
        match self {
            Target::ClickHouse(c) => &c.store,
            Target::Elastic(e) => &e.store,
            #[cfg(feature = "cache")]
            Target::Redis(r) => &r.store,
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
    es: Vec<Docs>,
    /// Cache keys to tombstone, per target.
    #[cfg(feature = "cache")]
    redis: Vec<redis::Pending>,
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
            + self.es.iter().map(|d| d.body.len()).sum::<usize>()
    }
}

/// The bulk body waiting for one Elasticsearch target.
#[derive(Default)]
struct Docs {
    body: Vec<u8>,
    /// Where each of the target's indexes is written
    /// ([`Elastic::write_indexes`]): read at the batch's first document
    /// and kept until the batch is written, not read (a lock and a copy)
    /// for every document.
    write_to: Option<Vec<String>>,
}

impl Docs {
    /// The index this batch writes documents of `indexes[ix]` to.
    fn index(&mut self, e: &Elastic, ix: usize) -> &str {
        &self.write_to.get_or_insert_with(|| e.write_indexes())[ix]
    }

    fn clear(&mut self) {
        self.body.clear();
        self.write_to = None;
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
                #[cfg(feature = "cache")]
                TargetSpec::Redis {
                    store,
                    url,
                    key_prefix,
                    entities,
                } => Redis::new(store, url, key_prefix, entities.clone(), &p.tables)
                    .map(Target::Redis),
                #[cfg(not(feature = "cache"))]
                TargetSpec::Redis { store, .. } => Err(SyncError::Config(format!(
                    "target `{store}` is a Redis cache: build strata-sdk with the `cache` feature"
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Targets { list })
    }

    /// Creates what is missing at every target.
    pub async fn ensure(&self, p: &Pipeline) -> Result<(), SyncError> {
        for t in &self.list {
            let what = match t {
                Target::ClickHouse(_) => "creating tables",
                Target::Elastic(_) => "creating indexes",
                #[cfg(feature = "cache")]
                Target::Redis(_) => "checking the Redis store",
            };
            super::retry::forever(&format!("{what} at `{}`", t.store()), || async {
                match t {
                    Target::ClickHouse(c) => c.ensure(&p.tables).await,
                    Target::Elastic(e) => e.ensure().await,
                    #[cfg(feature = "cache")]
                    Target::Redis(r) => Box::pin(r.ensure()).await,
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Tells the targets that this run resumed the slot at `lsn` (the
    /// change events' loss floor: [`crate::events::epoch_key`]).
    pub fn resumed_at(&self, lsn: u64) {
        #[cfg(feature = "cache")]
        for t in &self.list {
            if let Target::Redis(r) = t {
                r.resumed_at(lsn);
            }
        }
        #[cfg(not(feature = "cache"))]
        let _ = lsn;
    }

    /// Whether some target writes the non-key values of pipeline table
    /// `table` (a copy, a search document, a change event), not only its
    /// keys (a cache's invalidation).
    pub fn need_values(&self, table: usize) -> bool {
        self.list.iter().any(|t| match t {
            Target::ClickHouse(c) => c.table_for(table).is_some(),
            Target::Elastic(e) => e.index_for(table).is_some(),
            #[cfg(feature = "cache")]
            Target::Redis(r) => r.publishes_rows(table),
        })
    }

    /// An empty batch with a buffer per target (and ClickHouse table).
    pub fn batch(&self) -> Batch {
        Batch {
            ch: self
                .list
                .iter()
                .map(|t| match t {
                    Target::ClickHouse(c) => c.tables.iter().map(|_| Pending::default()).collect(),
                    _ => Vec::new(),
                })
                .collect(),
            es: self.list.iter().map(|_| Docs::default()).collect(),
            #[cfg(feature = "cache")]
            redis: self
                .list
                .iter()
                .map(|_| redis::Pending::default())
                .collect(),
            rows: 0,
        }
    }

    /// Adds one row of pipeline table `table` (all its columns; for a
    /// delete the key and zeros) at `version`; `change` for a streamed
    /// change (events), `None` for a snapshot row. All or nothing: a value
    /// one target refuses ([`SyncError::Value`]) leaves every target's
    /// buffer as it was, so the row can be set aside as a dead letter.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &self,
        p: &Pipeline,
        b: &mut Batch,
        table: usize,
        cells: &[Cell],
        version: u64,
        deleted: bool,
        change: Option<ChangeMeta>,
    ) -> Result<(), SyncError> {
        let spec = &p.tables[table];
        #[cfg(not(feature = "cache"))]
        let _ = change;
        let docs = self.documents(b, spec, table, cells, version, deleted)?;
        // Each buffer's own push keeps nothing of a refused row; with more
        // than one buffer, those written before a refusal are rewound.
        let mut marks = Marks::new(self.writers_of(table) > 1);
        for (i, t) in self.list.iter().enumerate() {
            let written = match t {
                Target::Elastic(_) => continue,
                Target::ClickHouse(c) => {
                    let Some(ti) = c.table_for(table) else {
                        continue;
                    };
                    let pending = &mut b.ch[i][ti];
                    marks.ch(i, ti, pending);
                    c.push_row(spec, pending, cells, version, deleted)
                }
                #[cfg(feature = "cache")]
                Target::Redis(r) => {
                    let Some(ix) = r.entity_for(table) else {
                        continue;
                    };
                    marks.redis(i, &b.redis[i]);
                    let change = change.map(|c| (version, c));
                    r.push(&mut b.redis[i], spec, ix, cells, change)
                }
            };
            if let Err(e) = written {
                marks.rewind(b);
                return Err(e);
            }
        }
        for (i, doc) in docs {
            b.es[i].body.extend_from_slice(&doc);
        }
        b.rows += 1;
        Ok(())
    }

    /// The bulk lines of one row for each Elasticsearch target that takes
    /// `table`, by target, built aside: a value one refuses leaves every
    /// bulk body as it was.
    fn documents(
        &self,
        b: &mut Batch,
        spec: &TableSpec,
        table: usize,
        cells: &[Cell],
        version: u64,
        deleted: bool,
    ) -> Result<Vec<(usize, Vec<u8>)>, SyncError> {
        let mut docs = Vec::new();
        for (i, t) in self.list.iter().enumerate() {
            let Target::Elastic(e) = t else { continue };
            let Some(ix) = e.index_for(table) else {
                continue;
            };
            let mut doc = Vec::new();
            let index = b.es[i].index(e, ix);
            Elastic::push(&mut doc, spec, index, cells, version, deleted)?;
            docs.push((i, doc));
        }
        Ok(docs)
    }

    /// How many buffers (ClickHouse tables, cache targets) take rows of `table`.
    fn writers_of(&self, table: usize) -> usize {
        (self.list.iter())
            .filter(|t| match t {
                Target::Elastic(_) => false,
                Target::ClickHouse(c) => c.table_for(table).is_some(),
                #[cfg(feature = "cache")]
                Target::Redis(r) => r.entity_for(table).is_some(),
            })
            .count()
    }

    /// Adds only the cache invalidation of one changed row (no event, no
    /// copy): for an update whose unchanged large value can no longer be
    /// read because the row has since been deleted (its delete follows in
    /// the stream). `cells` needs only the key.
    pub fn push_invalidation(
        &self,
        p: &Pipeline,
        b: &mut Batch,
        table: usize,
        cells: &[Cell],
    ) -> Result<(), SyncError> {
        #[cfg(feature = "cache")]
        for (i, t) in self.list.iter().enumerate() {
            if let Target::Redis(r) = t {
                if let Some(ix) = r.entity_for(table) {
                    r.push(&mut b.redis[i], &p.tables[table], ix, cells, None)?;
                }
            }
        }
        #[cfg(not(feature = "cache"))]
        let _ = (p, table, cells);
        b.rows += 1;
        Ok(())
    }

    /// Writes the batch to every target (each retried until it succeeds)
    /// and empties it. Returns only when every target acknowledged.
    pub async fn flush(&self, p: &Pipeline, b: &mut Batch) -> Result<(), SyncError> {
        if b.rows == 0 {
            return Ok(());
        }
        let rows = b.rows as u64;
        let writes = self.list.iter().enumerate().map(|(i, t)| {
            let ch = &b.ch[i];
            let es = &b.es[i];
            let start = std::time::Instant::now();
            #[cfg(feature = "cache")]
            let keys = &b.redis[i];
            async move {
                match t {
                    Target::ClickHouse(c) => {
                        for (ti, pending) in ch.iter().enumerate() {
                            c.insert(&p.tables[c.tables[ti].table], ti, pending).await?;
                        }
                        Ok::<(), SyncError>(())
                    }
                    Target::Elastic(e) => e.bulk(&es.body).await,
                    #[cfg(feature = "cache")]
                    // Boxed: the cache's futures are deep, and inlined here
                    // they push `sync::run`'s future past rustc's layout
                    // depth limit in every crate that awaits it.
                    Target::Redis(r) => Box::pin(r.flush(keys)).await,
                }?;
                applied(&p.name, t.store(), rows, start.elapsed());
                Ok::<(), SyncError>(())
            }
        });
        for r in futures_util::future::join_all(writes).await {
            r?;
        }
        for v in b.ch.iter_mut().flatten() {
            v.body.clear();
            v.rows = 0;
        }
        for d in &mut b.es {
            d.clear();
        }
        #[cfg(feature = "cache")]
        for v in &mut b.redis {
            v.clear();
        }
        b.rows = 0;
        Ok(())
    }
}

/// Records one batch written to one target.
/// Buffer lengths before a row was pushed, to take the row back out of
/// the buffers that took it when a later one refuses it. Kept only when
/// the row goes to more than one buffer (no allocation otherwise).
struct Marks {
    on: bool,
    ch: Vec<(usize, usize, usize, usize)>,
    #[cfg(feature = "cache")]
    redis: Vec<(usize, (usize, usize))>,
}

impl Marks {
    fn new(on: bool) -> Marks {
        Marks {
            on,
            ch: Vec::new(),
            #[cfg(feature = "cache")]
            redis: Vec::new(),
        }
    }

    fn ch(&mut self, i: usize, ti: usize, p: &Pending) {
        if self.on {
            self.ch.push((i, ti, p.body.len(), p.rows));
        }
    }

    #[cfg(feature = "cache")]
    fn redis(&mut self, i: usize, p: &redis::Pending) {
        if self.on {
            self.redis.push((i, p.mark()));
        }
    }

    fn rewind(self, b: &mut Batch) {
        for (i, ti, len, rows) in self.ch {
            b.ch[i][ti].body.truncate(len);
            b.ch[i][ti].rows = rows;
        }
        #[cfg(feature = "cache")]
        for (i, m) in self.redis {
            b.redis[i].rewind(m);
        }
    }
}

fn applied(pipeline: &str, target: &str, rows: u64, took: std::time::Duration) {
    use crate::metrics as m;
    let labels = [
        ("pipeline", pipeline.to_string()),
        ("target", target.to_string()),
    ];
    metrics::counter!(m::SYNC_ROWS, &labels).increment(rows);
    metrics::counter!(m::SYNC_BATCHES, &labels).increment(1);
    metrics::histogram!(m::SYNC_BATCH_DURATION, &labels).record(took.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::spec::{ColumnSpec, ColumnType, ElasticIndex};

    fn table(name: &str) -> TableSpec {
        let column = |name: &str, ty, key| ColumnSpec {
            name: name.into(),
            ty,
            nullable: false,
            array: false,
            key,
        };
        TableSpec {
            entity: name.into(),
            source_schema: "public".into(),
            source_table: name.into(),
            columns: vec![
                column("id", ColumnType::I64, true),
                column("title", ColumnType::Text, false),
            ],
        }
    }

    /// The bytes of a bulk body: per row, the action on the row's table's
    /// index (`_id` the key, the commit position as an `external_gte`
    /// version), then the document unless the row is a delete.
    #[test]
    fn a_batch_holds_each_rows_bulk_lines_on_its_tables_index() {
        let index = |table, name: &str| ElasticIndex {
            table,
            index: name.into(),
            create_body: serde_json::Value::Null,
            alias: None,
        };
        let p = Pipeline {
            name: "p".into(),
            source_url: "postgres://127.0.0.1/db".into(),
            tables: vec![table("note"), table("tag")],
            targets: vec![TargetSpec::Elasticsearch {
                store: "search".into(),
                url: "http://127.0.0.1:9".into(),
                indexes: vec![index(1, "t_tag_v1"), index(0, "t_note_v1")],
            }],
        };
        let targets = Targets::new(&p).unwrap();
        let mut b = targets.batch();
        let row = |id, title: &str| [Cell::Int(id), Cell::Text(title.into())];
        let note = row(1, "a \"quoted\"\ttitle");
        targets.push(&p, &mut b, 0, &note, 7, false, None).unwrap();
        targets
            .push(&p, &mut b, 1, &row(2, ""), 8, true, None)
            .unwrap();
        targets
            .push(&p, &mut b, 0, &row(3, "é"), 8, false, None)
            .unwrap();
        let want = concat!(
            r#"{"index":{"_index":"t_note_v1","_id":"1","version":7,"version_type":"external_gte"}}"#,
            "\n",
            r#"{"id":1,"title":"a \"quoted\"\ttitle"}"#,
            "\n",
            r#"{"delete":{"_index":"t_tag_v1","_id":"2","version":8,"version_type":"external_gte"}}"#,
            "\n",
            r#"{"index":{"_index":"t_note_v1","_id":"3","version":8,"version_type":"external_gte"}}"#,
            "\n",
            r#"{"id":3,"title":"é"}"#,
            "\n",
        );
        assert_eq!(std::str::from_utf8(&b.es[0].body).unwrap(), want);
        assert_eq!((b.rows, b.bytes()), (3, want.len()));
    }
}
