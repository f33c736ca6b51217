//! The pipeline description: what the engine copies, from where, to where.
//! It is plain data so that the SDK never depends on the compiler: the
//! `strata` CLI builds it from a resolved schema (the copy projection,
//! the generated ClickHouse DDL and Elasticsearch mappings), and an
//! application that embeds the sync can build or deserialize it itself.

use serde::{Deserialize, Serialize};

use super::error::SyncError;

/// The type of a copied column, as the schema declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Uuid,
    /// `string`, `text` and enum values.
    Text,
    /// `json`: the text PostgreSQL prints.
    Json,
    Bytes,
    Bool,
    I16,
    I32,
    I64,
    F64,
    /// `decimal(precision, scale)`: ClickHouse rows carry the scaled integer.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Timestamptz,
    Date,
}

/// One copied column (a field of the copy projection: never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The SQL name, the same at the source and the targets.
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// A one-dimensional array of `ty`.
    pub array: bool,
    /// Part of the primary key.
    pub key: bool,
}

/// One synced table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    /// The entity's schema name (for messages and metrics labels).
    pub entity: String,
    /// PostgreSQL schema of the source table (`public` when unset in the schema).
    pub source_schema: String,
    /// The source table's SQL name.
    pub source_table: String,
    /// The copy projection in field order; key columns flagged.
    pub columns: Vec<ColumnSpec>,
}

impl TableSpec {
    /// Indexes of the key columns, in column order.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, _)| i)
            .collect()
    }
}

/// What a ClickHouse server release supports (mirrors the compiler's
/// target flags: the DDL and the values must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickHouseFlags {
    /// `DateTime64(6,'UTC')`; else `Int64` microseconds.
    pub datetime64: bool,
    /// `Date32`; else `Int32` days.
    pub date32: bool,
    /// `Bool`; else `UInt8`.
    pub bool_type: bool,
    /// `ReplacingMergeTree(_version, _deleted)`.
    pub is_deleted: bool,
}

/// One table at a ClickHouse target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickHouseTable {
    /// Index into [`Pipeline::tables`].
    pub table: usize,
    pub database: String,
    /// The table rows are inserted into.
    pub name: String,
    /// The view of current, non-deleted rows (what `verify` reads).
    pub current_view: String,
    /// The statements that create the database, table and view when
    /// missing (`IF NOT EXISTS`), as the compiler generates them.
    pub create: Vec<String>,
    /// The ClickHouse type of each pipeline column, in column order: a
    /// column missing at the target is added with it (`ALTER TABLE ...
    /// ADD COLUMN`) when the schema gained a field.
    #[serde(default)]
    pub column_types: Vec<String>,
}

/// One table at an Elasticsearch target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElasticIndex {
    /// Index into [`Pipeline::tables`].
    pub table: usize,
    /// The index (or alias) documents are written to.
    pub index: String,
    /// The index body (settings and mappings) used to create it when missing.
    pub create_body: serde_json::Value,
    /// The alias the index is created under. When the alias already points
    /// to another index (the mapping changed, so the index name did), the
    /// sync stops instead of filling a new, partial index.
    #[serde(default)]
    pub alias: Option<String>,
}

/// How an entity's changes are published as events (`events:`): see
/// `strata_sdk::events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsSpec {
    /// Partitions (streams), 1 to 1024.
    pub partitions: u16,
    /// Each partition is trimmed to about this many entries.
    pub max_len: u64,
    /// Also PUBLISH each change on the entity's channel.
    pub pubsub: bool,
    /// The name of each table column in the event's JSON (the Rust field
    /// name the entity's type deserializes), in column order.
    pub fields: Vec<String>,
}

fn yes() -> bool {
    true
}

/// One entity at a Redis target: the cache keys its changes invalidate
/// (`cache:`) and the event streams they are appended to (`events:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisEntity {
    /// Index into [`Pipeline::tables`].
    pub table: usize,
    /// The entity's schema name (the key's second part).
    pub entity: String,
    /// The fingerprint of the entity's cached shape (the key's third part),
    /// as the derive declares it in `CacheDef::fingerprint`.
    pub fingerprint: String,
    /// The entity's cache TTL in milliseconds (tombstones outlive it).
    pub ttl_ms: u64,
    /// The key columns (indexes into the table's columns) in the entity's
    /// key order, which a composite key may order unlike the columns.
    pub key_columns: Vec<usize>,
    /// Whether changes tombstone cache keys (the entity has `cache:`).
    #[serde(default = "yes")]
    pub cache: bool,
    /// Whether and how changes are published as events (`events:`).
    #[serde(default)]
    pub events: Option<EventsSpec>,
}

/// Where a pipeline writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetSpec {
    ClickHouse {
        /// The store's name in the schema.
        store: String,
        /// `http://[user:password@]host:8123`.
        url: String,
        flags: ClickHouseFlags,
        tables: Vec<ClickHouseTable>,
    },
    Elasticsearch {
        store: String,
        url: String,
        indexes: Vec<ElasticIndex>,
    },
    /// A Redis cache: each change tombstones the changed row's cache key
    /// (feature `cache`; see `strata_sdk::cache`).
    Redis {
        store: String,
        /// A Redis URL as `strata_sdk::cache::CacheConfig` takes it.
        url: String,
        /// The store's `key_prefix`.
        key_prefix: String,
        entities: Vec<RedisEntity>,
    },
}

impl TargetSpec {
    /// The ClickHouse client of a ClickHouse target (its store, flags and
    /// tables); `None` for a target of another kind.
    pub(crate) fn clickhouse(&self) -> Result<Option<super::clickhouse::ClickHouse>, SyncError> {
        let TargetSpec::ClickHouse {
            store,
            url,
            flags,
            tables,
        } = self
        else {
            return Ok(None);
        };
        super::clickhouse::ClickHouse::new(store, url, *flags, tables.clone()).map(Some)
    }

    /// The client of an Elasticsearch target; `None` for a target of
    /// another kind.
    pub(crate) fn elastic(&self) -> Result<Option<super::elastic::Elastic>, SyncError> {
        let TargetSpec::Elasticsearch {
            store,
            url,
            indexes,
        } = self
        else {
            return Ok(None);
        };
        super::elastic::Elastic::new(store, url, indexes.clone()).map(Some)
    }

    /// Why the target's URL is not one its client can use (a ClickHouse or
    /// Elasticsearch URL that does not parse, e.g. "relative URL without a
    /// base"), so a caller can say where the URL came from; `Ok` for a
    /// Redis target (its client checks its own).
    pub fn check_url(&self) -> Result<(), String> {
        match self {
            TargetSpec::ClickHouse { url, .. } | TargetSpec::Elasticsearch { url, .. } => {
                reqwest::Url::parse(url)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            TargetSpec::Redis { .. } => Ok(()),
        }
    }

    /// The store name.
    pub fn store(&self) -> &str {
        match self {
            TargetSpec::ClickHouse { store, .. }
            | TargetSpec::Elasticsearch { store, .. }
            | TargetSpec::Redis { store, .. } => store,
        }
    }
}

/// One pipeline: one source database, one slot and publication, the
/// tables they carry, and the targets written from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Names the slot, the publication, the advisory lock and the progress
    /// rows: lower-case letters, digits and `_`, at most 40 characters.
    pub name: String,
    /// `postgres://…` of the source (the primary: slots live there).
    pub source_url: String,
    pub tables: Vec<TableSpec>,
    pub targets: Vec<TargetSpec>,
}

/// Lower-case letters, digits and `_`, starting with a letter.
pub fn check_name(what: &str, s: &str, max: usize) -> Result<(), SyncError> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SyncError::Config(format!(
            "{what} `{s}` must be 1 to {max} lower-case letters, digits or `_`, starting with a letter"
        )))
    }
}

impl Pipeline {
    /// The publication: `strata_<name>`. The one rule
    /// ([`strata_migrate_files::sync_names::publication`]) that generated
    /// migrations use too, when they re-list a table whose copied columns
    /// grew.
    pub fn publication(&self) -> String {
        strata_migrate_files::sync_names::publication(&self.name)
    }
    /// The replication slot: `strata_<name>_<database>` (slots are
    /// cluster-wide, publications per database), cut to 63 bytes with a
    /// hash suffix when longer.
    pub fn slot(&self, database: &str) -> String {
        let db: String = database
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let s = format!("strata_{}_{}", self.name, db);
        if s.len() <= 63 {
            return s;
        }
        use sha2::{Digest, Sha256};
        let h = hex::encode(&Sha256::digest(s.as_bytes())[..4]);
        format!("{}_{h}", &s[..54])
    }
    /// Checks names and shapes before anything touches a server.
    pub fn validate(&self) -> Result<(), SyncError> {
        check_name("pipeline name", &self.name, 40)?;
        if self.tables.is_empty() {
            return Err(SyncError::Config(format!(
                "pipeline `{}` has no tables",
                self.name
            )));
        }
        for t in &self.tables {
            if t.key_indexes().is_empty() {
                return Err(SyncError::Config(format!(
                    "table `{}` has no key column in the pipeline: a copy needs the key",
                    t.source_table
                )));
            }
            for c in &t.columns {
                if c.name.is_empty() || c.name.contains('\0') {
                    return Err(SyncError::Config(format!(
                        "table `{}`: empty column name",
                        t.source_table
                    )));
                }
            }
        }
        if self.targets.is_empty() {
            return Err(SyncError::Config(format!(
                "pipeline `{}` has no target",
                self.name
            )));
        }
        Ok(())
    }
}
