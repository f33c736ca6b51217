//! The Redis target of change capture: every committed change of a cached
//! entity tombstones that row's cache key, after the commit (the engine
//! reads commits only), and the slot's position is acknowledged only once
//! Redis has taken every tombstone of it. This is how writes that never
//! went through a cache-aware `Store` (another service, a migration,
//! `psql`) invalidate the cache too.
//!
//! Keys are rendered exactly as the derive's typed path renders them
//! ([`crate::cache::key_from_parts`]): each key column's PostgreSQL binary
//! encoding in hex. Key types: uuid, text, integers, bool, bytes, date and
//! timestamptz; a decimal, float, json or array key is refused when the
//! pipeline is built.
//!
//! The snapshot also pushes every existing row: on a first run each cached
//! key is tombstoned once, so entries cached before the sync started can
//! not outlive a change they missed.
//!
//! Entities with `events:` get each streamed change appended to their
//! event streams ([`crate::events`]): the key and the row (the copy
//! projection, never a secret) as JSON under the entity's field names, at
//! the position (commit LSN, index in the transaction). Snapshot rows are
//! not events.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::apply::{ChangeMeta, ChangeOp};
use super::cell::{self, Cell};
use super::error::SyncError;
use super::spec::{ColumnSpec, ColumnType, EventsSpec, RedisEntity, TableSpec};
use crate::cache::{key_from_parts, Cache, CacheConfig};
use crate::events::{partition_of, Event, Op, Position, Publisher};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// How many entries of a partition [`Redis::last_values`] looks back.
pub const LOOK_BACK: usize = 10_000;

/// A connected (on first use) Redis target.
#[derive(Clone)]
pub struct Redis {
    pub store: String,
    url: String,
    prefix: String,
    entities: Arc<Vec<(RedisEntity, &'static str)>>,
    cache: Arc<OnceCell<Cache>>,
    publisher: Arc<OnceCell<Publisher>>,
    /// Where this run resumed its slot: every change before it was
    /// appended by an earlier run ([`Publisher::written_before`]).
    resumed: Arc<std::sync::OnceLock<Position>>,
}

/// What waits for one flush: cache keys to tombstone and events to
/// append, each with its entity's index.
#[derive(Default)]
pub struct Pending {
    keys: Vec<(usize, String)>,
    events: Vec<(usize, Event)>,
}

impl Pending {
    /// Forgets everything (after a flush).
    pub fn clear(&mut self) {
        self.keys.clear();
        self.events.clear();
    }

    /// The lengths of its lists, for [`Pending::rewind`].
    pub fn mark(&self) -> (usize, usize) {
        (self.keys.len(), self.events.len())
    }

    /// Forgets what was pushed since `mark`.
    pub fn rewind(&mut self, mark: (usize, usize)) {
        self.keys.truncate(mark.0);
        self.events.truncate(mark.1);
    }
}

impl Redis {
    /// Checks every entity's key types; connects on first use.
    pub fn new(
        store: &str,
        url: &str,
        prefix: &str,
        entities: Vec<RedisEntity>,
        tables: &[TableSpec],
    ) -> Result<Redis, SyncError> {
        for e in entities.iter().filter(|e| e.cache) {
            let t = tables.get(e.table).ok_or_else(|| {
                SyncError::Config(format!("redis target `{store}`: no table {}", e.table))
            })?;
            for &k in &e.key_columns {
                let col = t.columns.get(k).ok_or_else(|| {
                    SyncError::Config(format!("redis target `{store}`: no key column {k}"))
                })?;
                if key_bytes(col, &sample(col.ty)).is_none() {
                    return Err(SyncError::Config(format!(
                        "entity `{}`: a cache key of type {:?} cannot be invalidated by change capture (uuid, text, integers, bool, bytes, date and timestamptz can)",
                        e.entity, col.ty
                    )));
                }
            }
        }
        // Entity names become metric labels, which the cache takes as
        // `&'static str`: one small leak per cached entity and target.
        let entities = entities
            .into_iter()
            .map(|e| {
                let name: &'static str = Box::leak(e.entity.clone().into_boxed_str());
                (e, name)
            })
            .collect();
        Ok(Redis {
            store: store.to_string(),
            url: url.to_string(),
            prefix: prefix.to_string(),
            entities: Arc::new(entities),
            cache: Arc::new(OnceCell::new()),
            publisher: Arc::new(OnceCell::new()),
            resumed: Arc::default(),
        })
    }

    /// Records that this run resumed its slot at `lsn`: if Redis lost the
    /// change streams, their new epoch refuses subscribers resuming below
    /// it (see [`crate::events::epoch_key`]).
    pub fn resumed_at(&self, lsn: u64) {
        let _ = self.resumed.set(Position::before_commit(lsn));
    }

    async fn publisher(&self) -> Result<&Publisher, SyncError> {
        self.publisher
            .get_or_try_init(|| Publisher::connect(&self.url, &self.prefix))
            .await
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, e: crate::Error) -> SyncError {
        SyncError::Target {
            target: self.store.clone(),
            message: e.to_string(),
        }
    }

    async fn cache(&self) -> Result<&Cache, SyncError> {
        self.cache
            .get_or_try_init(|| Cache::connect(CacheConfig::new(&self.url, &self.prefix)))
            .await
            .map_err(|e| SyncError::Target {
                target: self.store.clone(),
                message: e.to_string(),
            })
    }

    /// Connects, and records each events entity's partition count (a
    /// changed count is refused: [`crate::events::Publisher::claim_partitions`]).
    pub async fn ensure(&self) -> Result<(), SyncError> {
        for (e, _) in self.entities.iter() {
            let Some(ev) = &e.events else { continue };
            let publisher = self.publisher().await?;
            match publisher.claim_partitions(&e.entity, ev.partitions).await {
                Ok(()) => {}
                Err(crate::Error::Event { message }) => return Err(SyncError::Config(message)),
                Err(other) => return Err(self.failed(other)),
            }
        }
        self.cache().await.map(|_| ())
    }

    /// The values of columns `unknown` of the row whose key `cells` hold,
    /// from the newest change event kept for that key: the row after the
    /// key's previous change, which an update that left those columns
    /// unchanged still holds (events are exactly once and in order per
    /// key). `None` when the table has no events here, no event for the
    /// key is kept within the last [`LOOK_BACK`] entries of its partition
    /// (rows from the snapshot have none), or the newest is a delete.
    pub async fn last_values(
        &self,
        spec: &TableSpec,
        table: usize,
        cells: &[Cell],
        unknown: &[usize],
    ) -> Result<Option<Vec<Cell>>, SyncError> {
        let Some((e, ev)) = (self.entities.iter())
            .find(|(e, _)| e.table == table)
            .and_then(|(e, _)| Some((e, e.events.as_ref()?)))
        else {
            return Ok(None);
        };
        let mut key = serde_json::Map::new();
        for &i in &e.key_columns {
            let v = event_json(&spec.columns[i], &cells[i]).map_err(|reason| SyncError::Value {
                table: spec.source_table.clone(),
                column: spec.columns[i].name.clone(),
                reason,
            })?;
            key.insert(ev.fields[i].clone(), v);
        }
        let key = serde_json::Value::Object(key).to_string();
        let partition = partition_of(&key, ev.partitions);
        let publisher = self.publisher().await?;
        let row = (publisher
            .last_row(&e.entity, partition, &key, LOOK_BACK)
            .await)
            .map_err(|err| self.failed(err))?;
        let Some(row) = row else { return Ok(None) };
        let row: serde_json::Value = serde_json::from_str(&row).map_err(|err| {
            self.failed(crate::Error::Event {
                message: format!("an event row of `{}` does not parse: {err}", e.entity),
            })
        })?;
        let mut out = Vec::with_capacity(unknown.len());
        for &i in unknown {
            let col = &spec.columns[i];
            let v = row.get(&ev.fields[i]).unwrap_or(&serde_json::Value::Null);
            let Ok(c) = super::consume::from_event::cell_of(col, v) else {
                return Ok(None);
            };
            out.push(c);
        }
        Ok(Some(out))
    }

    /// Whether change events carry rows of pipeline table `table` (not
    /// only its keys, as cache invalidation does).
    pub fn publishes_rows(&self, table: usize) -> bool {
        (self.entities.iter()).any(|(e, _)| e.table == table && e.events.is_some())
    }

    /// The entity of pipeline table `table`, if this target caches it.
    pub fn entity_for(&self, table: usize) -> Option<usize> {
        self.entities.iter().position(|(e, _)| e.table == table)
    }

    /// Adds one changed row (all of its cells, or a tombstone's): its
    /// cache key, and its event when the entity has `events:` and the row
    /// is a streamed change (`change`; `None` for snapshot rows).
    pub fn push(
        &self,
        out: &mut Pending,
        spec: &TableSpec,
        ix: usize,
        cells: &[Cell],
        change: Option<(u64, ChangeMeta)>,
    ) -> Result<(), SyncError> {
        let (e, _) = &self.entities[ix];
        // The event first: it can refuse a value, and then nothing is kept.
        let event = match (&e.events, change) {
            (Some(ev), Some((version, meta))) => Some(event(e, ev, spec, cells, version, meta)?),
            _ => None,
        };
        if e.cache {
            let parts: Vec<Option<Vec<u8>>> = e
                .key_columns
                .iter()
                .map(|&k| key_bytes(&spec.columns[k], &cells[k]).flatten())
                .collect();
            out.keys
                .push((ix, key_from_parts(&self.prefix, &e.entity, &parts)));
        }
        if let Some(event) = event {
            out.events.push((ix, event));
        }
        Ok(())
    }

    /// Tombstones every pending key and appends every pending event; an
    /// error leaves them for a retry (appending again skips what Redis
    /// already took).
    pub async fn flush(&self, pending: &Pending) -> Result<(), SyncError> {
        self.flush_keys(&pending.keys).await?;
        for (ix, (e, _)) in self.entities.iter().enumerate() {
            let Some(ev) = &e.events else { continue };
            let list: Vec<Event> = (pending.events.iter())
                .filter(|(i, _)| *i == ix)
                .map(|(_, v)| v.clone())
                .collect();
            if list.is_empty() {
                continue;
            }
            let publisher = self.publisher().await?;
            if let Some(&p) = self.resumed.get() {
                publisher.written_before(p);
            }
            publisher
                .append(&e.entity, ev.max_len, ev.pubsub, &list)
                .await
                .map_err(|err| self.failed(err))?;
        }
        Ok(())
    }

    async fn flush_keys(&self, pending: &[(usize, String)]) -> Result<(), SyncError> {
        if pending.is_empty() {
            return Ok(());
        }
        let cache = self.cache().await?;
        for (ix, (e, name)) in self.entities.iter().enumerate() {
            let keys: Vec<String> = (pending.iter())
                .filter(|(i, _)| *i == ix)
                .map(|(_, k)| k.clone())
                .collect();
            if keys.is_empty() {
                continue;
            }
            cache
                .tombstone_keys(name, e.ttl_ms, &keys)
                .await
                .map_err(|err| SyncError::Target {
                    target: self.store.clone(),
                    message: err.to_string(),
                })?;
        }
        Ok(())
    }
}

impl Redis {
    /// Tombstones every cached key of the entities of pipeline tables
    /// `tables` (a `TRUNCATE` at `version`), and once more half a TTL
    /// later, in the background ([`super::truncate`] says why); then
    /// appends a `truncate` change event to every partition of those with
    /// `events:`, at one position (`version`, `meta.seq`), after every
    /// earlier change of every key. A replay appends nothing twice.
    pub async fn truncate(
        &self,
        tables: &[usize],
        version: u64,
        meta: ChangeMeta,
    ) -> Result<(), SyncError> {
        self.tombstone_tables(tables).await?;
        let mut pending = Pending::default();
        for (ix, (e, _)) in self.entities.iter().enumerate() {
            let Some(ev) = e.events.as_ref().filter(|_| tables.contains(&e.table)) else {
                continue;
            };
            pending.events.extend((0..ev.partitions).map(|partition| {
                let event = Event {
                    partition,
                    position: Position::new(version, meta.seq),
                    op: Op::Truncate,
                    key: "{}".into(),
                    row: None,
                    ts_us: meta.ts_us,
                };
                (ix, event)
            }));
        }
        self.flush(&pending).await
    }

    async fn tombstone_tables(&self, tables: &[usize]) -> Result<(), SyncError> {
        let cache = self.cache().await?.clone();
        for (e, name) in self
            .entities
            .iter()
            .filter(|(e, _)| tables.contains(&e.table))
        {
            let n = cache
                .tombstone_entity(name, e.ttl_ms)
                .await
                .map_err(|err| SyncError::Target {
                    target: self.store.clone(),
                    message: err.to_string(),
                })?;
            tracing::info!(entity = %e.entity, keys = n, "TRUNCATE: cache entries tombstoned");
            let (cache, name, ttl) = (cache.clone(), *name, e.ttl_ms);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(ttl / 2 + 1000)).await;
                if let Err(err) = cache.tombstone_entity(name, ttl).await {
                    tracing::warn!(
                        entity = name,
                        "TRUNCATE: second tombstone pass failed: {err}"
                    );
                }
            });
        }
        Ok(())
    }
}

/// The event of one streamed change: key and row as JSON objects under the
/// entity's field names, the partition from the key. A value JSON cannot
/// hold ([`cell::to_json`]) is [`SyncError::Value`] naming the column.
fn event(
    e: &RedisEntity,
    ev: &EventsSpec,
    spec: &TableSpec,
    cells: &[Cell],
    version: u64,
    meta: ChangeMeta,
) -> Result<Event, SyncError> {
    let object = |cols: &mut dyn Iterator<Item = usize>| -> Result<String, SyncError> {
        let mut map = serde_json::Map::new();
        for i in cols {
            let col = &spec.columns[i];
            let value = event_json(col, &cells[i]).map_err(|reason| SyncError::Value {
                table: spec.source_table.clone(),
                column: col.name.clone(),
                reason,
            })?;
            map.insert(ev.fields[i].clone(), value);
        }
        Ok(serde_json::Value::Object(map).to_string())
    };
    let key = object(&mut e.key_columns.iter().copied())?;
    let op = match meta.op {
        ChangeOp::Insert => Op::Insert,
        ChangeOp::Update => Op::Update,
        ChangeOp::Delete => Op::Delete,
        ChangeOp::Truncate => Op::Truncate,
    };
    let row = match op {
        Op::Delete | Op::Truncate => None,
        _ => Some(object(&mut (0..spec.columns.len()))?),
    };
    Ok(Event {
        partition: partition_of(&key, ev.partitions),
        position: Position::new(version, meta.seq),
        op,
        key,
        row,
        ts_us: meta.ts_us,
    })
}

/// A value as serde reads it into the entity's Rust type: json columns as
/// JSON (not text), bytes as an array of numbers, decimals as exact text at
/// the column's scale (`11.00` in a `decimal(p,2)`, as PostgreSQL and the
/// SDK's own reads show it), NaN and ±infinity as the strings
/// [`crate::float`] reads, the rest as [`cell::to_json`] (timestamps RFC
/// 3339; dates JSON cannot write are refused, never `null`).
fn event_json(col: &ColumnSpec, c: &Cell) -> Result<serde_json::Value, String> {
    let array = |items: &[Cell]| -> Result<serde_json::Value, String> {
        let values = items.iter().map(|i| event_json(col, i));
        Ok(serde_json::Value::Array(values.collect::<Result<_, _>>()?))
    };
    Ok(match (col.ty, c) {
        // What the entity's `serde_json::Value` reads; a document it cannot
        // read (a number past f64, nesting past serde_json's limit) is
        // refused, never sent as a string in place of the object.
        (ColumnType::Json, Cell::Text(t)) => {
            crate::postgres::decode::json_numbers_exact(t).map_err(|n| {
                format!("the JSON number {n} would be read into the entity as another value")
            })?;
            serde_json::from_str(t)
                .map_err(|e| format!("the JSON value cannot be read into the entity: {e}"))?
        }
        (_, Cell::Bytes(b)) => serde_json::Value::from(b.clone()),
        (ColumnType::Decimal { scale, .. }, Cell::Decimal(d)) => {
            // The cell is normalised (keys and comparisons want one text
            // per number); an event shows the column's scale. Rescaling up
            // to the column's own scale is exact.
            let mut d = *d;
            d.rescale(u32::from(scale));
            serde_json::Value::String(d.to_string())
        }
        (_, Cell::Array(items)) => array(items)?,
        // What the entity's `f64` fields read (`strata_sdk::float`).
        (_, Cell::Float(x)) if !x.is_finite() => {
            serde_json::Value::String(crate::float::json_name(*x).unwrap_or("NaN").into())
        }
        _ => cell::to_json(c)?,
    })
}

/// A value of each key type, to check the type is supported.
fn sample(ty: ColumnType) -> Cell {
    match ty {
        ColumnType::Uuid => Cell::Uuid(uuid::Uuid::nil()),
        ColumnType::Text => Cell::Text(String::new()),
        ColumnType::Bytes => Cell::Bytes(Vec::new()),
        ColumnType::Bool => Cell::Bool(false),
        ColumnType::I16 | ColumnType::I32 | ColumnType::I64 => Cell::Int(0),
        ColumnType::Timestamptz => Cell::Micros(0),
        ColumnType::Date => Cell::Days(0),
        _ => Cell::Null,
    }
}

/// A key value's PostgreSQL binary encoding (what sqlx sends for the
/// typed key): `Some(None)` for NULL, `None` for a type without one here.
fn key_bytes(col: &ColumnSpec, c: &Cell) -> Option<Option<Vec<u8>>> {
    if col.array {
        return None;
    }
    Some(Some(match (col.ty, c) {
        (_, Cell::Null)
            if !matches!(
                col.ty,
                ColumnType::Decimal { .. } | ColumnType::F64 | ColumnType::Json
            ) =>
        {
            return Some(None)
        }
        (ColumnType::Uuid, Cell::Uuid(u)) => u.as_bytes().to_vec(),
        (ColumnType::Text, Cell::Text(s)) => s.as_bytes().to_vec(),
        (ColumnType::Bytes, Cell::Bytes(b)) => b.clone(),
        (ColumnType::Bool, Cell::Bool(b)) => vec![*b as u8],
        (ColumnType::I16, Cell::Int(i)) => (*i as i16).to_be_bytes().to_vec(),
        (ColumnType::I32, Cell::Int(i)) => (*i as i32).to_be_bytes().to_vec(),
        (ColumnType::I64, Cell::Int(i)) => i.to_be_bytes().to_vec(),
        (ColumnType::Timestamptz, Cell::Micros(m)) => (m - PG_EPOCH_MICROS).to_be_bytes().to_vec(),
        (ColumnType::Date, Cell::Days(d)) => (d - PG_EPOCH_DAYS).to_be_bytes().to_vec(),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            name: "k".into(),
            ty,
            nullable: false,
            array: false,
            key: true,
        }
    }

    #[test]
    fn event_decimals_keep_the_column_scale() {
        let c = col(ColumnType::Decimal {
            precision: 20,
            scale: 2,
        });
        let cell = cell::parse_pg(&c, Some("11.00")).unwrap();
        assert_eq!(event_json(&c, &cell).unwrap(), serde_json::json!("11.00"));
        let cell = cell::parse_pg(&c, Some("-0.50")).unwrap();
        assert_eq!(event_json(&c, &cell).unwrap(), serde_json::json!("-0.50"));
        let arr = Cell::Array(vec![cell::parse_pg(&c, Some("1.10")).unwrap(), Cell::Null]);
        assert_eq!(
            event_json(&c, &arr).unwrap(),
            serde_json::json!(["1.10", null])
        );
    }

    /// A jsonb the entity cannot read (1e400 is past f64) is refused, not
    /// sent as a JSON string in place of the document (a newcomer's
    /// subscriber got `"attrs": "{\"huge\": 1000…}"`).
    #[test]
    fn event_json_the_entity_cannot_read_is_refused() {
        let c = col(ColumnType::Json);
        let ok = Cell::Text(r#"{"n": 1.5, "s": [null]}"#.into());
        assert_eq!(
            event_json(&c, &ok).unwrap(),
            serde_json::json!({"n": 1.5, "s": [null]})
        );
        for (text, number) in [
            (r#"{"huge": 1e400}"#, "1e400"),
            (
                r#"{"big": 123456789012345678901234567890}"#,
                "123456789012345678901234567890",
            ),
        ] {
            let e = event_json(&c, &Cell::Text(text.into())).unwrap_err();
            assert!(e.contains(number) && e.contains("another value"), "{e}");
        }
    }

    #[test]
    fn keys_are_postgres_binary_encodings() {
        let b = |ty, c| key_bytes(&col(ty), &c).flatten().unwrap();
        assert_eq!(b(ColumnType::I64, Cell::Int(1)), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(b(ColumnType::I32, Cell::Int(-2)), [0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(b(ColumnType::Text, Cell::Text("é".into())), "é".as_bytes());
        // 2000-01-01 is PostgreSQL's zero for dates and timestamps.
        assert_eq!(b(ColumnType::Date, Cell::Days(PG_EPOCH_DAYS)), [0, 0, 0, 0]);
        assert_eq!(
            b(ColumnType::Timestamptz, Cell::Micros(PG_EPOCH_MICROS + 1)),
            [0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert!(key_bytes(&col(ColumnType::F64), &Cell::Float(1.0)).is_none());
        let k = key_from_parts("app", "Order", &[Some(vec![0x0a, 0xff]), None]);
        assert_eq!(k, "app:Order:{0aff.~}");
    }
}
