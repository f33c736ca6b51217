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

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::cell::Cell;
use super::error::SyncError;
use super::spec::{ColumnSpec, ColumnType, RedisEntity, TableSpec};
use crate::cache::{key_from_parts, Cache, CacheConfig};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// A connected (on first use) Redis target.
#[derive(Clone)]
pub struct Redis {
    pub store: String,
    url: String,
    prefix: String,
    entities: Arc<Vec<(RedisEntity, &'static str)>>,
    cache: Arc<OnceCell<Cache>>,
}

/// Keys waiting for one flush: (entity index, key).
pub type Pending = Vec<(usize, String)>;

impl Redis {
    /// Checks every entity's key types; connects on first use.
    pub fn new(
        store: &str,
        url: &str,
        prefix: &str,
        entities: Vec<RedisEntity>,
        tables: &[TableSpec],
    ) -> Result<Redis, SyncError> {
        for e in &entities {
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
        })
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

    /// Connects (nothing to create at a Redis target).
    pub async fn ensure(&self) -> Result<(), SyncError> {
        self.cache().await.map(|_| ())
    }

    /// The entity of pipeline table `table`, if this target caches it.
    pub fn entity_for(&self, table: usize) -> Option<usize> {
        self.entities.iter().position(|(e, _)| e.table == table)
    }

    /// Adds the key of one changed row (all of its cells, or a tombstone's).
    pub fn push(&self, out: &mut Pending, spec: &TableSpec, ix: usize, cells: &[Cell]) {
        let (e, _) = &self.entities[ix];
        let parts: Vec<Option<Vec<u8>>> = e
            .key_columns
            .iter()
            .map(|&k| key_bytes(&spec.columns[k], &cells[k]).flatten())
            .collect();
        out.push((
            ix,
            key_from_parts(&self.prefix, &e.entity, &e.fingerprint, &parts),
        ));
    }

    /// Tombstones every pending key; an error leaves them for a retry.
    pub async fn flush(&self, pending: &Pending) -> Result<(), SyncError> {
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
    /// `tables` (a `TRUNCATE`), and once more half a TTL later, in the
    /// background ([`super::truncate`] says why).
    pub async fn truncate(&self, tables: &[usize]) -> Result<(), SyncError> {
        let cache = self.cache().await?.clone();
        for (e, name) in self
            .entities
            .iter()
            .filter(|(e, _)| tables.contains(&e.table))
        {
            let n = cache
                .tombstone_entity(name, &e.fingerprint, e.ttl_ms)
                .await
                .map_err(|err| SyncError::Target {
                    target: self.store.clone(),
                    message: err.to_string(),
                })?;
            tracing::info!(entity = %e.entity, keys = n, "TRUNCATE: cache entries tombstoned");
            let (cache, name, fp, ttl) = (cache.clone(), *name, e.fingerprint.clone(), e.ttl_ms);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(ttl / 2 + 1000)).await;
                if let Err(err) = cache.tombstone_entity(name, &fp, ttl).await {
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
        let k = key_from_parts("app", "Order", "ab12cd34", &[Some(vec![0x0a, 0xff]), None]);
        assert_eq!(k, "app:Order:ab12cd34:{0aff.~}");
    }
}
