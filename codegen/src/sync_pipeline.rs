//! The sync engine's pipeline descriptions, built from a resolved model:
//! one pipeline per (source PostgreSQL store, target store) of the
//! schema's `sync:` rules. The copy projection gives the columns (never a
//! secret), the ClickHouse back end the DDL and target flags, the
//! Elasticsearch back end the index names and bodies. The engine itself
//! (`strata_sdk::sync`) knows nothing of the model.

use strata_sdk::sync::{
    ClickHouseFlags, ClickHouseTable, ColumnSpec, ColumnType, ElasticIndex, EventsSpec, Pipeline,
    RedisEntity, TableSpec, TargetSpec,
};

use crate::clickhouse::ddl::{self, DdlOptions, CURRENT_SUFFIX};
use crate::clickhouse::types::Target;
use crate::elasticsearch::mapping;
use crate::model::{
    Entity, Model, ScalarType, Store, StoreId, StoreKind, StoreKindTag, VersionSource,
};

/// Where the stores are: a URL for each store (already expanded).
pub trait Urls {
    /// The URL of a store, or an error naming what is missing.
    fn url(&self, store: &str) -> Result<String, String>;
}

impl<F: Fn(&str) -> Result<String, String>> Urls for F {
    fn url(&self, store: &str) -> Result<String, String> {
        self(store)
    }
}

/// Settings of [`pipelines`], set with `with_*`.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    only: Vec<String>,
    clickhouse_database: Option<String>,
}

impl PipelineOptions {
    /// Only these target stores (`--to`); all when empty.
    pub fn with_targets(mut self, stores: Vec<String>) -> Self {
        self.only = stores;
        self
    }
    /// Put every ClickHouse table in this database instead of the store's
    /// (tests use their own).
    pub fn with_clickhouse_database(mut self, db: impl Into<String>) -> Self {
        self.clickhouse_database = Some(db.into());
        self
    }
}

fn column_type(s: &ScalarType) -> Option<ColumnType> {
    Some(match s {
        ScalarType::Uuid => ColumnType::Uuid,
        ScalarType::String { .. } | ScalarType::Text | ScalarType::Enum(_) => ColumnType::Text,
        ScalarType::Json => ColumnType::Json,
        ScalarType::Bytes => ColumnType::Bytes,
        ScalarType::Bool => ColumnType::Bool,
        ScalarType::I16 => ColumnType::I16,
        ScalarType::I32 => ColumnType::I32,
        ScalarType::I64 => ColumnType::I64,
        ScalarType::F64 => ColumnType::F64,
        ScalarType::Decimal { precision, scale } => ColumnType::Decimal {
            precision: *precision,
            scale: *scale,
        },
        ScalarType::Timestamptz => ColumnType::Timestamptz,
        ScalarType::Date => ColumnType::Date,
        ScalarType::Secret => return None,
    })
}

/// The table description of an entity: its copy projection.
pub fn table_spec(model: &Model, e: &Entity) -> TableSpec {
    table_spec_of(model, e, &e.copy)
}

/// The table description of an entity holding the fields `fields` (indexes,
/// in field order): a sync target's, or the copy projection.
fn table_spec_of(model: &Model, e: &Entity, fields: &[usize]) -> TableSpec {
    let schema = model[e.store].pg_schema().unwrap_or("public").to_string();
    TableSpec {
        entity: e.name.schema.clone(),
        source_schema: schema,
        source_table: e.name.sql.clone(),
        columns: (fields.iter().map(|&i| (i, &e.fields[i])))
            .filter_map(|(i, f)| {
                Some(ColumnSpec {
                    name: f.name.sql.clone(),
                    ty: column_type(f.ty.scalar())?,
                    nullable: f.nullable,
                    array: f.ty.is_array(),
                    key: e.key.contains(&i),
                })
            })
            .collect(),
    }
}

/// One pipeline per (source store, target store) of the `sync:` rules,
/// named `<source>_<target>`.
pub fn pipelines(
    model: &Model,
    urls: &dyn Urls,
    opts: &PipelineOptions,
) -> Result<Vec<Pipeline>, String> {
    let mut out: Vec<Pipeline> = Vec::new();
    for t in &model.sync {
        let target_store = &model[t.store];
        let to = &target_store.name;
        if !opts.only.is_empty() && !opts.only.contains(to) {
            continue;
        }
        // The engine versions every target by commit position.
        match t.version {
            VersionSource::CommitLsn => {}
        }
        let e = &model[t.entity];
        let source = &model[e.store].name;
        let name = strata_migrate_files::sync_names::pipeline(source, to);
        let idx = match out.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                let url = urls.url(to)?;
                let target = match t.kind {
                    StoreKindTag::ClickHouse => {
                        let v = Target::of(target_store);
                        TargetSpec::ClickHouse {
                            store: to.clone(),
                            url,
                            flags: ClickHouseFlags {
                                datetime64: v.has_datetime64(),
                                date32: v.has_date32(),
                                bool_type: v.has_bool(),
                                is_deleted: v.has_is_deleted(),
                            },
                            tables: Vec::new(),
                        }
                    }
                    StoreKindTag::Elasticsearch => TargetSpec::Elasticsearch {
                        store: to.clone(),
                        url,
                        indexes: Vec::new(),
                    },
                    _ => {
                        return Err(format!(
                            "sync target `{}` is neither ClickHouse nor Elasticsearch",
                            to
                        ))
                    }
                };
                out.push(Pipeline {
                    name,
                    source_url: urls.url(source)?,
                    tables: Vec::new(),
                    targets: vec![target],
                });
                out.len() - 1
            }
        };
        let p = &mut out[idx];
        let ti = p.tables.len();
        p.tables.push(table_spec_of(model, e, &t.fields));
        match &mut p.targets[0] {
            TargetSpec::ClickHouse { tables, .. } => {
                let mut o = DdlOptions::default();
                if let Some(db) = &opts.clickhouse_database {
                    o = o.with_database(db.clone());
                }
                let db = opts
                    .clickhouse_database
                    .clone()
                    .unwrap_or_else(|| ddl::database_of(target_store));
                tables.push(ClickHouseTable {
                    table: ti,
                    database: db,
                    name: e.name.sql.clone(),
                    current_view: format!("{}{CURRENT_SUFFIX}", e.name.sql),
                    create: ddl::statements(target_store, e, &o),
                    column_types: (t.fields.iter().map(|&i| &e.fields[i]))
                        .filter(|f| column_type(f.ty.scalar()).is_some())
                        .map(|f| crate::clickhouse::types::column_type(f, Target::of(target_store)))
                        .collect(),
                });
            }
            TargetSpec::Elasticsearch { indexes, .. } => indexes.push(ElasticIndex {
                table: ti,
                index: mapping::index_name(target_store, e),
                create_body: mapping::create_body(target_store, e),
                alias: Some(mapping::alias(target_store, e)),
            }),
            TargetSpec::Redis { .. } => unreachable!("sync rules never target a redis store"),
        }
    }
    out.extend(cache_pipelines(model, urls, opts)?);
    Ok(out)
}

/// The redis stores an entity reaches: its `cache:` and `events:` stores.
fn redis_stores(e: &Entity) -> Vec<StoreId> {
    let mut v: Vec<StoreId> = (e.cache.iter().map(|c| c.store))
        .chain(e.events.iter().map(|ev| ev.store))
        .collect();
    v.dedup();
    v
}

/// One pipeline per (source store, redis store) of the entities with
/// `cache:` or `events:`, named `<source>_<redis store>`: every committed
/// change of such an entity, whoever wrote it, tombstones its cache key
/// and is appended to its event streams.
fn cache_pipelines(
    model: &Model,
    urls: &dyn Urls,
    opts: &PipelineOptions,
) -> Result<Vec<Pipeline>, String> {
    let mut out: Vec<Pipeline> = Vec::new();
    for e in &model.entities {
        for store in redis_stores(e) {
            if opts.only.is_empty() || opts.only.contains(&model[store].name) {
                redis_entity(model, urls, e, store, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// Adds entity `e` to the pipeline of its source and redis store `id`.
fn redis_entity(
    model: &Model,
    urls: &dyn Urls,
    e: &Entity,
    id: StoreId,
    out: &mut Vec<Pipeline>,
) -> Result<(), String> {
    let store = model[id].name.as_str();
    let source = &model[e.store].name;
    let name = strata_migrate_files::sync_names::pipeline(source, store);
    let idx = match out.iter().position(|p| p.name == name) {
        Some(i) => i,
        None => {
            let prefix = redis_prefix(&model[id])?;
            out.push(Pipeline {
                name,
                source_url: urls.url(source)?,
                tables: Vec::new(),
                targets: vec![TargetSpec::Redis {
                    store: store.to_string(),
                    url: urls.url(store)?,
                    key_prefix: prefix,
                    entities: Vec::new(),
                }],
            });
            out.len() - 1
        }
    };
    let p = &mut out[idx];
    let spec = table_spec(model, e);
    // Key columns in the entity's key order, as the typed key binds them.
    let key_columns = (e.key.iter())
        .map(|&k| {
            let name = &e.fields[k].name.sql;
            spec.columns.iter().position(|c| &c.name == name)
        })
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| format!("entity `{}`: a key field is not copied", e.name.schema))?;
    let events = (e.events.as_ref())
        .filter(|ev| ev.store == id)
        .map(|ev| EventsSpec {
            partitions: ev.partitions,
            max_len: ev.max_len,
            pubsub: ev.pubsub,
            fields: event_fields(e, &spec),
        });
    let cache = e.cache.as_ref().filter(|c| c.store == id);
    let ti = p.tables.len();
    p.tables.push(spec);
    if let TargetSpec::Redis { entities, .. } = &mut p.targets[0] {
        entities.push(RedisEntity {
            table: ti,
            entity: e.name.schema.clone(),
            fingerprint: crate::rust::table_impl::fingerprint_of(e),
            ttl_ms: (cache.and_then(|c| c.ttl_ms))
                .unwrap_or(crate::rust::table_impl::DEFAULT_CACHE_TTL_MS),
            key_columns,
            cache: cache.is_some(),
            events,
        });
    }
    Ok(())
}

/// The JSON name of each column in an entity's events: its Rust field name.
fn event_fields(e: &Entity, spec: &TableSpec) -> Vec<String> {
    (spec.columns.iter())
        .map(|c| {
            let f = e.fields.iter().find(|f| f.name.sql == c.name);
            let rust = f.map_or(c.name.as_str(), |f| f.name.rust.as_str());
            rust.trim_start_matches("r#").to_string()
        })
        .collect()
}

/// The event streams a ClickHouse or Elasticsearch pipeline reads when it
/// runs as a consumer (`strata sync consume`): every table's entity must
/// declare `events:`, all on one redis store.
pub fn stream_source(
    model: &Model,
    urls: &dyn Urls,
    p: &Pipeline,
) -> Result<strata_sdk::sync::StreamSource, String> {
    let mut store: Option<StoreId> = None;
    let mut tables = Vec::new();
    for (ti, t) in p.tables.iter().enumerate() {
        let e = model
            .entity(&t.entity)
            .ok_or_else(|| format!("no entity `{}`", t.entity))?;
        let ev = e.events.as_ref().ok_or_else(|| {
            format!(
                "`{}` has no `events:`: a consumer reads the change events; declare `events: <redis store>` on it, or copy it with `strata sync run`",
                t.entity
            )
        })?;
        if let Some(first) = store.filter(|&s| s != ev.store) {
            return Err(format!(
                "pipeline `{}` reads events from two redis stores (`{}` and `{}`): consume each separately",
                p.name, model[first].name, model[ev.store].name,
            ));
        }
        store = Some(ev.store);
        tables.push(strata_sdk::sync::EventTable {
            table: ti,
            entity: e.name.schema.clone(),
            partitions: ev.partitions,
            fields: event_fields(e, t),
        });
    }
    let store = &model[store.ok_or_else(|| format!("pipeline `{}` has no tables", p.name))?];
    let key_prefix = redis_prefix(store)?;
    Ok(strata_sdk::sync::StreamSource {
        url: urls.url(&store.name)?,
        key_prefix,
        tables,
    })
}

/// The key prefix of a redis store's entries and streams: its
/// `key_prefix:`, else its name.
fn redis_prefix(store: &Store) -> Result<String, String> {
    match &store.kind {
        StoreKind::Redis { key_prefix } => {
            Ok(key_prefix.clone().unwrap_or_else(|| store.name.clone()))
        }
        _ => Err(format!("store `{}` is not a redis store", store.name)),
    }
}
