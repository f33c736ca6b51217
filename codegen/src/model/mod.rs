//! The store-neutral model (IR) of a schema. It holds no SQL text and no Rust
//! tokens: every back end reads these fields and renders its own artifacts.
//! Every name is carried in all its forms ([`Ident`]) and every item keeps its
//! [`Span`] so later stages can still report problems at the YAML.

pub mod resolve;
mod types;

pub use resolve::{constraint_name, resolve, Resolved};
pub use types::{parse_type, type_alias, ScalarType, Type, TypeError, TypeProblem, BUILTIN_TYPES};

use crate::source::Span;

/// A name in each of its forms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident {
    /// As written in the schema (`Decision`, `decision_type`).
    pub schema: String,
    /// In SQL (`live_decision_log`, `decision_type`); always quoted when emitted.
    pub sql: String,
    /// In Rust (`Decision`, `decision_type`, `r#type`-safe: see [`Ident::rust_ident`]).
    pub rust: String,
}

impl Ident {
    /// The Rust identifier text, raw (`r#type`) when it is a Rust keyword.
    pub fn rust_ident(&self) -> String {
        crate::names::rust_ident(&self.rust)
    }
}

/// Where an environment value comes from: `${VAR}` or `${VAR:default}` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    Var {
        name: String,
        default: Option<String>,
    },
}

/// A setting that may contain `${VAR}` and `${VAR:default}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub raw: String,
    pub parts: Vec<TemplatePart>,
}

impl Template {
    /// Expands the template with a variable lookup. Errors name the missing variable.
    pub fn expand(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Var { name, default } => {
                    match lookup(name).or_else(|| default.clone()) {
                        Some(v) => out.push_str(&v),
                        None => return Err(name.clone()),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// An entity's place in [`Model::entities`]: how model items (references,
/// sync targets) name an entity, read with `model[id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(usize);

impl EntityId {
    /// The id of the entity at `index` in [`Model::entities`].
    pub fn new(index: usize) -> Self {
        EntityId(index)
    }
    /// Its index in [`Model::entities`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// A field's place in [`Entity::fields`]: how another entity's items name
/// it, read with `entity[id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldId(usize);

impl FieldId {
    /// The id of the field at `index` in [`Entity::fields`].
    pub fn new(index: usize) -> Self {
        FieldId(index)
    }
    /// Its index in [`Entity::fields`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// A store's place in [`Model::stores`] (which is in name order): how
/// model items (an entity's home, its cache, events and search stores, sync
/// targets, enum homes) name a store, read with `model[id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreId(usize);

impl StoreId {
    /// No store. Held by an entity built without a model (the derive, which
    /// names the store in `EntityDef::store`) and, in a model the resolver
    /// refused, by an entity whose `store:` is unknown or missing. Never in
    /// a checked model. `model[StoreId::NONE]` panics; [`Model::store_at`]
    /// is `None`.
    pub const NONE: StoreId = StoreId(usize::MAX);
    /// The id of the store at `index` in [`Model::stores`].
    pub fn new(index: usize) -> Self {
        StoreId(index)
    }
    /// Its index in [`Model::stores`].
    pub fn index(self) -> usize {
        self.0
    }
}

impl std::ops::Index<StoreId> for Model {
    type Output = Store;
    fn index(&self, id: StoreId) -> &Store {
        &self.stores[id.0]
    }
}

impl std::ops::Index<EntityId> for Model {
    type Output = Entity;
    fn index(&self, id: EntityId) -> &Entity {
        &self.entities[id.0]
    }
}

impl std::ops::Index<FieldId> for Entity {
    type Output = Field;
    fn index(&self, id: FieldId) -> &Field {
        &self.fields[id.0]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Stores in name order (so a name is found by binary search).
    pub stores: Vec<Store>,
    /// Enums in declaration order (files in name order).
    pub enums: Vec<Enum>,
    /// Entities in declaration order (files in name order).
    pub entities: Vec<Entity>,
    /// The `sync:` rules, expanded by the resolver into one resolved target
    /// per (entity, target store), in rule order.
    pub sync: Vec<SyncTarget>,
}

impl Model {
    /// The entity named `schema_name`: for names from outside the model (a
    /// command line, a test). Model items refer to entities by [`EntityId`].
    pub fn entity(&self, schema_name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name.schema == schema_name)
    }
    /// Every entity with its id, in declaration order.
    pub fn entities_by_id(&self) -> impl Iterator<Item = (EntityId, &Entity)> {
        (self.entities.iter().enumerate()).map(|(i, e)| (EntityId(i), e))
    }
    /// The enum named `schema_name`, as [`ScalarType::Enum`] names it.
    ///
    /// Enums are the one model item still named, not numbered: the derive
    /// builds fields without a model and names an enum by its Rust type,
    /// so [`ScalarType`] (shared by both paths) carries the name. Back ends
    /// resolve that name here, in one place, never by a search of their own.
    pub fn enum_named(&self, schema_name: &str) -> Option<&Enum> {
        self.enums.iter().find(|e| e.name.schema == schema_name)
    }
    /// The store named `name`: for names from outside the model (a command
    /// line, a test). Model items refer to stores by [`StoreId`].
    pub fn store(&self, name: &str) -> Option<&Store> {
        self.store_id(name).map(|id| &self[id])
    }
    /// The id of the store named `name` (binary search: stores are in name order).
    pub fn store_id(&self, name: &str) -> Option<StoreId> {
        (self.stores.binary_search_by(|s| s.name.as_str().cmp(name)))
            .ok()
            .map(StoreId)
    }
    /// The store `id`, if there is one ([`StoreId::NONE`] is not).
    pub fn store_at(&self, id: StoreId) -> Option<&Store> {
        self.stores.get(id.0)
    }
    /// Every store with its id, in name order.
    pub fn stores_by_id(&self) -> impl Iterator<Item = (StoreId, &Store)> {
        (self.stores.iter().enumerate()).map(|(i, s)| (StoreId(i), s))
    }
    /// Entities whose home store is of the given kind.
    pub fn entities_in(&self, kind: StoreKindTag) -> impl Iterator<Item = &Entity> {
        self.entities
            .iter()
            .filter(move |e| self.store_at(e.store).map(|s| s.kind.tag()) == Some(kind))
    }
    /// The sync targets in store `store`, with their entities, in rule order.
    pub fn synced_to(&self, store: StoreId) -> impl Iterator<Item = (&SyncTarget, &Entity)> {
        (self.sync.iter())
            .filter(move |t| t.store == store)
            .map(|t| (t, &self[t.entity]))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    pub name: String,
    pub kind: StoreKind,
    pub url: Option<Template>,
    pub span: Span,
}

impl Store {
    /// The PostgreSQL schema of a postgres store's tables (`schema:`);
    /// `None` for the search path, and for a store of another kind.
    pub fn pg_schema(&self) -> Option<&str> {
        match &self.kind {
            StoreKind::Postgres { schema, .. } => schema.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKindTag {
    Postgres,
    Redis,
    ClickHouse,
    Elasticsearch,
    InfluxDb,
}

impl StoreKindTag {
    pub const ALL: &'static [(&'static str, StoreKindTag)] = &[
        ("postgres", StoreKindTag::Postgres),
        ("redis", StoreKindTag::Redis),
        ("clickhouse", StoreKindTag::ClickHouse),
        ("elasticsearch", StoreKindTag::Elasticsearch),
        ("influxdb", StoreKindTag::InfluxDb),
    ];
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreKind {
    Postgres {
        pool: PoolSettings,
        schema: Option<String>,
        /// Streaming replicas' URL templates (`replicas:`), in order; reads
        /// go to them only when a caller asks.
        replicas: Vec<Template>,
    },
    Redis {
        key_prefix: Option<String>,
    },
    ClickHouse {
        database: Option<String>,
        cluster: Option<String>,
        server_version: Option<(u32, u32)>,
    },
    Elasticsearch {
        index_prefix: Option<String>,
    },
    InfluxDb {
        org: Option<Template>,
        bucket: Option<Template>,
        token: Option<Template>,
        precision: Precision,
        /// `server: victoriametrics`: the server keeps float64 values, no
        /// strings and millisecond times, and points refuse what it would
        /// change.
        victoriametrics: bool,
    },
}

impl StoreKind {
    pub fn tag(&self) -> StoreKindTag {
        match self {
            StoreKind::Postgres { .. } => StoreKindTag::Postgres,
            StoreKind::Redis { .. } => StoreKindTag::Redis,
            StoreKind::ClickHouse { .. } => StoreKindTag::ClickHouse,
            StoreKind::Elasticsearch { .. } => StoreKindTag::Elasticsearch,
            StoreKind::InfluxDb { .. } => StoreKindTag::InfluxDb,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolSettings {
    pub max: Option<u32>,
    pub min: Option<u32>,
    /// Milliseconds.
    pub acquire_timeout: Option<u64>,
    /// Milliseconds.
    pub idle_timeout: Option<u64>,
    /// Milliseconds: a connection older than this is closed.
    pub max_lifetime: Option<u64>,
    /// Milliseconds: the server session's `statement_timeout`.
    pub statement_timeout: Option<u64>,
    /// The server session's `application_name` (seen in `pg_stat_activity`).
    pub application_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// `schema`: `DecisionType`; `sql`: the PostgreSQL type name `decision_type`; `rust`: `DecisionType`.
    pub name: Ident,
    pub variants: Vec<EnumVariant>,
    pub doc: Option<String>,
    /// The postgres stores whose record tables use the enum, in store
    /// order: each store's DDL creates the type in its own PostgreSQL
    /// schema. Set by the resolver's `enum_homes` pass.
    pub stores: Vec<StoreId>,
    /// The PostgreSQL schema of the type the generated Rust enum names:
    /// that of the first of [`Enum::stores`], where that store has one
    /// (`None`: the search path). Set by the resolver's `enum_homes` pass.
    pub pg_schema: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumVariant {
    /// `schema` and `sql`: the value as stored (`BUY`); `rust`: `Buy`.
    pub name: Ident,
    pub span: Span,
}

/// What an entity is for.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityKind {
    /// A row with a primary key (PostgreSQL, or ClickHouse as home store).
    Record,
    /// A time-series point: a time field, tag fields, value fields.
    Series {
        time: usize,
        tags: Vec<usize>,
        measurement: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// `schema`: `Decision`; `sql`: the table `live_decision_log`; `rust`: `Decision`.
    pub name: Ident,
    pub doc: Option<String>,
    /// The home store.
    pub store: StoreId,
    pub kind: EntityKind,
    pub fields: Vec<Field>,
    /// Indexes into `fields` of the primary key, in key order. Empty for series.
    pub key: Vec<usize>,
    pub uniques: Vec<Unique>,
    pub indexes: Vec<Index>,
    pub queries: Vec<Query>,
    pub cache: Option<Cache>,
    /// Change events on Redis Streams (`events:`).
    pub events: Option<Events>,
    pub search: Option<Search>,
    /// Field used for time partitioning in analytics copies.
    pub partition_by: Option<usize>,
    /// The optimistic-lock column, if any (also in `fields`).
    pub version: Option<usize>,
    /// Previous table name, for a rename migration.
    pub renamed_from: Option<String>,
    /// The copy projection: indexes of the fields any copy of the entity
    /// may hold (analytics rows, search documents, time-series points, and
    /// later cache entries and change events), in field order: every field
    /// but secrets. Computed once by the resolver's `copy_projection` pass;
    /// back ends read it through [`Entity::copy_fields`] and never filter
    /// secrets themselves.
    pub copy: Vec<usize>,
    /// Where the table's name is written (`table:`, else the entity's name).
    pub table_span: Span,
    pub span: Span,
}

impl Entity {
    pub fn field(&self, schema_name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.schema == schema_name)
    }
    /// The fields of the copy projection ([`Entity::copy`]), with their indexes.
    pub fn copy_fields(&self) -> impl Iterator<Item = (usize, &Field)> {
        self.copy.iter().map(|&i| (i, &self.fields[i]))
    }

    pub fn key_fields(&self) -> impl Iterator<Item = &Field> {
        self.key.iter().map(|&i| &self.fields[i])
    }
    pub fn is_series(&self) -> bool {
        matches!(self.kind, EntityKind::Series { .. })
    }
}

/// What maintains a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    Data,
    /// `created_at`, set on insert.
    CreatedAt,
    /// `updated_at`, set on every write.
    UpdatedAt,
    /// The optimistic-lock counter, starts at 1, bumped by every update.
    Version,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub ty: Type,
    pub nullable: bool,
    pub default: Option<Default>,
    pub role: FieldRole,
    pub references: Option<Reference>,
    pub renamed_from: Option<String>,
    pub doc: Option<String>,
    pub span: Span,
}

impl Field {
    /// Whether the database fills this field when an insert leaves it out.
    pub fn is_generated(&self) -> bool {
        matches!(
            self.default,
            Some(Default::GeneratedUuid | Default::Now | Default::Identity)
        ) || self.role != FieldRole::Data
    }
    pub fn is_secret(&self) -> bool {
        self.ty.scalar() == &ScalarType::Secret
    }
}

/// A default value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Default {
    /// The current time.
    Now,
    /// A random v4 UUID.
    GeneratedUuid,
    /// An integer drawn from an identity sequence.
    Identity,
    Bool(bool),
    /// An integer, kept as text to stay exact.
    Int(String),
    /// A decimal or float, kept as text to stay exact.
    Number(String),
    String(String),
    /// A member of the field's enum (the stored value).
    EnumMember(String),
    /// An empty array.
    EmptyArray,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The referenced entity.
    pub entity: EntityId,
    /// The referenced field, in that entity.
    pub field: FieldId,
    pub on_delete: OnDelete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unique {
    /// Constraint name (SQL).
    pub name: String,
    pub fields: Vec<usize>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// Index name (SQL).
    pub name: String,
    pub columns: Vec<IndexColumn>,
    pub unique: bool,
    pub method: IndexMethod,
    /// Where the `method:` is written (the index's span when it is not).
    pub method_span: Span,
    pub predicate: Option<Predicate>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexColumn {
    pub field: usize,
    pub desc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMethod {
    BTree,
    Hash,
    Gin,
    Gist,
    Brin,
}

/// A partial-index predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// Equalities with typed literals (`null` means IS NULL); the back end quotes them.
    Equals(Vec<(usize, Default)>),
    /// SQL written by the schema author (checked to hold no `;` or comment).
    Sql(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub name: Ident,
    /// Fields compared for equality with a parameter, in order.
    pub params: Vec<usize>,
    /// Fields compared with a fixed value.
    pub fixed: Vec<(usize, Default)>,
    pub order: Vec<IndexColumn>,
    pub limit: Option<u32>,
    /// Returns at most one row.
    pub one: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cache {
    /// The redis store.
    pub store: StoreId,
    /// Milliseconds.
    pub ttl_ms: Option<u64>,
}

/// `events:`: every committed change of the entity is appended by change
/// capture to a Redis Stream per partition (and published on a channel).
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// The redis store.
    pub store: StoreId,
    /// 1 to 1024 (default 8).
    pub partitions: u16,
    /// Approximate length each partition is trimmed to (default 100,000; at least 1,000).
    pub max_len: u64,
    /// Also PUBLISH each change (default true).
    pub pubsub: bool,
}

impl Events {
    pub const DEFAULT_PARTITIONS: u16 = 8;
    pub const DEFAULT_MAX_LEN: u64 = 100_000;
    pub const MAX_PARTITIONS: u32 = 1024;
    pub const MIN_MAX_LEN: u32 = 1000;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub store: StoreId,
    /// Fields indexed as full text (others as keywords/values). Never a secret.
    pub text: Vec<usize>,
}

/// One `sync:` rule for one target, expanded once by the resolver's `sync`
/// pass: what change capture copies where, and how the copy orders versions.
/// Back ends and the sync pipeline read these fields and look nothing up.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncTarget {
    /// The entity copied.
    pub entity: EntityId,
    /// The target store (a clickhouse or elasticsearch store).
    pub store: StoreId,
    /// The target store's kind.
    pub kind: StoreKindTag,
    /// Indexes of the fields the target holds, in field order: the entity's
    /// copy projection ([`Entity::copy`]). Neither target kind leaves a
    /// field of it out; a type one cannot hold is refused by its check.
    pub fields: Vec<usize>,
    /// What orders the versions of a row in the target.
    pub version: VersionSource,
    /// The `sync:` rule.
    pub span: Span,
}

/// Where a copy's row versions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// The commit position (LSN) of the change in the home store's
    /// write-ahead log: ClickHouse's `_version`, Elasticsearch's external
    /// version. Replays and restarts converge, as later commits are larger.
    CommitLsn,
}
