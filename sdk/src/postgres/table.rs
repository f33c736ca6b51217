//! What a table *is*, as the derive declares it: [`TableDef`] (names and
//! column roles, a `const`), and the [`Table`] trait (binders from a row's
//! fields to bound parameters, key extraction). Everything a repository
//! *does* with them lives in this module's generic code, written once; the
//! shape is diesel's (`diesel_derives/src/insertable.rs` emits trait impls,
//! the library behaves).

use sqlx::postgres::{PgHasArrayType, PgRow};
use sqlx::{Encode, Postgres, Type};

use super::sql::Statements;
use crate::error::Result;

/// How a column is maintained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Written by inserts and updates.
    Data,
    /// Set by the database on insert, never written.
    CreatedAt,
    /// Set to `now()` by every update.
    UpdatedAt,
    /// Bumped by every update; checked by `update` (optimistic locking).
    Version,
}

/// One column of a [`TableDef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The SQL name, unquoted (quoted by the statement builder).
    pub name: &'static str,
    pub role: Role,
    /// The SQL expression of the column's default, applied by inserts to a
    /// `None` (`now()`, `gen_random_uuid()`, `'PENDING'`), if it has one.
    pub default: Option<&'static str>,
    /// An identity column: never written, always generated.
    pub identity: bool,
    pub nullable: bool,
    /// An array column (batches go in multi-row `VALUES`, not `UNNEST`/`COPY`).
    pub array: bool,
    /// `decimal(precision, scale)`: values are checked against it before
    /// they are written ([`super::check::decimal`]).
    pub decimal: Option<(u8, u8)>,
    /// `string(n)` (`varchar(n)`): values (each element of an array) of more
    /// than `n` characters are refused before they are written
    /// ([`super::check::length`]), naming the entity and field.
    pub max_chars: Option<u32>,
    /// An integer, float or decimal column: a patch can add to it
    /// atomically (`SET c = c + $n`).
    pub numeric: bool,
    /// `timestamptz` or `date` (of the column or its elements): reads
    /// refuse values chrono cannot hold (`infinity`, years past ±262,142)
    /// with an error instead of a panic in the decoder.
    pub temporal: Option<Temporal>,
    /// A `json` column (`jsonb`; of the column or its elements): reads
    /// refuse a number serde_json would read as another value
    /// ([`super::decode::json_numbers_exact`]). Only these columns are
    /// scanned.
    pub json: bool,
}

/// A column type whose values may fall outside what chrono can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    Timestamptz,
    Date,
}

impl Column {
    /// A data column.
    pub const fn data(name: &'static str) -> Self {
        Column {
            name,
            role: Role::Data,
            default: None,
            identity: false,
            nullable: false,
            array: false,
            decimal: None,
            max_chars: None,
            temporal: None,
            numeric: false,
            json: false,
        }
    }
    /// A number column (a patch may add to it).
    pub const fn numeric(mut self) -> Self {
        self.numeric = true;
        self
    }
    /// A `timestamptz` column (or array of them).
    pub const fn timestamptz(mut self) -> Self {
        self.temporal = Some(Temporal::Timestamptz);
        self
    }
    /// A `date` column (or array of them).
    pub const fn date(mut self) -> Self {
        self.temporal = Some(Temporal::Date);
        self
    }
    /// A `json` column (or array of them).
    pub const fn json(mut self) -> Self {
        self.json = true;
        self
    }
    /// A `string(n)` column: at most `n` characters (or array of them).
    pub const fn max_chars(mut self, n: u32) -> Self {
        self.max_chars = Some(n);
        self
    }
    pub const fn decimal(mut self, precision: u8, scale: u8) -> Self {
        self.decimal = Some((precision, scale));
        self
    }
    /// A [`Role::CreatedAt`] column.
    pub const fn created_at(name: &'static str) -> Self {
        Self::data(name).role(Role::CreatedAt)
    }
    /// A [`Role::UpdatedAt`] column.
    pub const fn updated_at(name: &'static str) -> Self {
        Self::data(name).role(Role::UpdatedAt)
    }
    /// A [`Role::Version`] column.
    pub const fn version(name: &'static str) -> Self {
        Self::data(name).role(Role::Version)
    }
    pub const fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
    pub const fn default(mut self, sql: &'static str) -> Self {
        self.default = Some(sql);
        self
    }
    pub const fn identity(mut self) -> Self {
        self.identity = true;
        self
    }
    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
    pub const fn array(mut self) -> Self {
        self.array = true;
        self
    }
    /// Whether an insert may leave the column out (`Option` in `New…`): it
    /// has a default and is not nullable.
    pub const fn optional_in_new(&self) -> bool {
        self.default.is_some() && !self.nullable
    }
}

/// A named finder of the schema: `WHERE params = $n AND fixed = 'literal'
/// ORDER BY … LIMIT n`. Fixed values come from the schema, never from run
/// time, and are quoted as literals by the builder.
#[derive(Debug, Clone, Copy)]
pub struct QueryDef {
    pub name: &'static str,
    /// Columns compared with a parameter, in parameter order.
    pub params: &'static [usize],
    /// Columns compared with a fixed literal (its text, unquoted).
    pub fixed: &'static [(usize, &'static str)],
    /// `(column, descending)`.
    pub order: &'static [(usize, bool)],
    pub limit: Option<u32>,
    /// At most one row.
    pub one: bool,
}

impl QueryDef {
    /// A query named `name` comparing `params` with parameters.
    pub const fn new(name: &'static str, params: &'static [usize]) -> Self {
        QueryDef {
            name,
            params,
            fixed: &[],
            order: &[],
            limit: None,
            one: false,
        }
    }
    pub const fn fixed(mut self, fixed: &'static [(usize, &'static str)]) -> Self {
        self.fixed = fixed;
        self
    }
    pub const fn order(mut self, order: &'static [(usize, bool)]) -> Self {
        self.order = order;
        self
    }
    pub const fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
    pub const fn one(mut self) -> Self {
        self.one = true;
        self
    }
}

/// A table, as the derive declares it: every fact the statement builder
/// ([`Statements::build`]) needs, and nothing else.
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    /// The entity's name (`Decision`): errors, spans and metrics.
    pub entity: &'static str,
    /// The schema's store the table lives in (`main`): the `store` label of
    /// metrics. Empty for a hand-written struct without `store = "…"`.
    pub store: &'static str,
    /// The PostgreSQL schema, if not the search path.
    pub schema: Option<&'static str>,
    pub table: &'static str,
    /// Every column, in field order (the `SELECT` list and `FromRow` order).
    pub columns: &'static [Column],
    /// Indexes into `columns` of the primary key.
    pub key: &'static [usize],
    /// Indexes of the sort fields with a `list_by_<field>` keyset listing.
    pub sorts: &'static [usize],
    pub queries: &'static [QueryDef],
}

impl TableDef {
    /// Indexes of the columns an insert takes (data columns except identities).
    pub fn new_columns(&self) -> Vec<usize> {
        self.indexes(|c| c.role == Role::Data && !c.identity)
    }
    /// Indexes of the columns an update sets (data columns outside the key).
    pub fn update_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|i| self.columns[*i].role == Role::Data && !self.key.contains(i))
            .collect()
    }
    pub fn version(&self) -> Option<usize> {
        self.indexes(|c| c.role == Role::Version).first().copied()
    }
    pub fn updated_at(&self) -> Option<usize> {
        self.indexes(|c| c.role == Role::UpdatedAt).first().copied()
    }
    /// Whether batches go in multi-row `VALUES` (an array column).
    pub fn has_arrays(&self) -> bool {
        self.columns.iter().any(|c| c.array)
    }
    fn indexes(&self, f: impl Fn(&Column) -> bool) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|i| f(&self.columns[*i]))
            .collect()
    }
}

/// The cache properties of an entity with `cache:` (see `strata_sdk::cache`),
/// as the derive declares them. The key prefix is the Redis store's, given
/// at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheDef {
    /// Time to live of a cached row, in milliseconds (a little jitter is
    /// added per fill).
    pub ttl_ms: u64,
    /// A fingerprint of the entity's shape (field names, types,
    /// nullability, key, encoding version): part of every key, so a deploy
    /// with a changed shape never reads entries of the old one.
    pub fingerprint: &'static str,
}

/// How a patch of a versioned entity checks the row's version. The check
/// is on by default: a patch that neither expects a version nor opts out
/// with `any_version: true` is refused ([`crate::Error::VersionRequired`]),
/// because a read-modify-write without it loses concurrent updates. An
/// increment (`add_<field>`) is atomic and needs no version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// Apply only if the row has this version.
    Expect(i64),
    /// Apply whatever the version (`any_version: true`, or no version column).
    Skip,
    /// Neither was said.
    Missing,
}

impl VersionCheck {
    /// The check a patch's `expected_version` and `any_version` ask for.
    pub fn of(expected: Option<i64>, any_version: bool) -> Self {
        match (expected, any_version) {
            (Some(v), _) => VersionCheck::Expect(v),
            (None, true) => VersionCheck::Skip,
            (None, false) => VersionCheck::Missing,
        }
    }
}

/// A value a [`Sink`] takes: any scalar sqlx binds for PostgreSQL.
pub trait Value:
    for<'q> Encode<'q, Postgres> + Type<Postgres> + PgHasArrayType + Clone + Send + Sync + 'static
{
}
impl<T> Value for T where
    T: for<'q> Encode<'q, Postgres>
        + Type<Postgres>
        + PgHasArrayType
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// An array column's value (no array-of-array type exists for it).
pub trait ArrayValue:
    for<'q> Encode<'q, Postgres> + Type<Postgres> + Send + Sync + 'static
{
}
impl<T> ArrayValue for T where
    T: for<'q> Encode<'q, Postgres> + Type<Postgres> + Send + Sync + 'static
{
}

/// Where a row's values go, in column order: bound parameters
/// ([`super::sink::Args`]), `UNNEST` arrays ([`super::sink::Columns`]) or
/// binary `COPY` rows ([`super::CopyWriter`]). The derive's binders call it
/// once per value, so one binder serves every path.
pub trait Sink {
    /// A scalar (or nullable scalar) value.
    fn value<T: Value>(&mut self, v: &T) -> Result<()>;
    /// An array value.
    fn array<T: ArrayValue>(&mut self, v: &T) -> Result<()>;
    /// A patch's increment of a number column: added to the column (after
    /// any value the patch sets); `None` adds nothing.
    fn add<T: Value>(&mut self, v: &Option<T>) -> Result<()> {
        self.value(v)
    }
    /// A patch field: `is_some()` as a bool parameter, then the value.
    fn patch<T: Value>(&mut self, v: &Option<T>) -> Result<()> {
        self.value(&v.is_some())?;
        self.value(v)
    }
    /// A patch of an array field.
    fn patch_array<T: ArrayValue>(&mut self, v: &Option<T>) -> Result<()> {
        self.value(&v.is_some())?;
        self.array(v)
    }
}

/// A table with a repository: implemented by `#[derive(strata_derive::Entity)]`
/// (generated or hand-written structs alike). The binders write values in
/// the orders [`Statements`] numbers its parameters:
///
/// - `bind_new`: the insert columns ([`TableDef::new_columns`]);
/// - `bind_row`: the update columns, then the key, then the version;
/// - `bind_key`: the key columns;
/// - `bind_patch`: a flag and a value per update column, and for number
///   columns then the increment.
pub trait Table: for<'r> sqlx::FromRow<'r, PgRow> + Send + Sync + Unpin + 'static {
    /// The primary key: the field's type, or a tuple.
    type Key: Send + Sync + Clone + 'static;
    /// A row to insert (`New…`).
    type New: Send + Sync + 'static;
    /// A partial update (`…Patch`).
    type Patch: Send + Sync + 'static;
    /// The table's declaration.
    const DEF: &'static TableDef;
    /// The cache properties, for an entity with `cache:`; writes through a
    /// cache-aware handle invalidate its keys after commit.
    const CACHE: Option<&'static CacheDef> = None;
    /// The statements of this table, built once from [`Self::DEF`].
    fn statements() -> &'static Statements;
    fn key(&self) -> Self::Key;
    /// The key of a row to insert, when all of it is given (not generated).
    fn new_key(row: &Self::New) -> Option<Self::Key>;
    fn bind_key<S: Sink>(key: &Self::Key, s: &mut S) -> Result<()>;
    fn bind_new<S: Sink>(row: &Self::New, s: &mut S) -> Result<()>;
    fn bind_row<S: Sink>(row: &Self, s: &mut S) -> Result<()>;
    fn bind_patch<S: Sink>(patch: &Self::Patch, s: &mut S) -> Result<()>;
    /// The row's `version`, for entities with one.
    fn version(&self) -> Option<i64>;
    /// How a patch checks the row's version.
    fn version_check(patch: &Self::Patch) -> VersionCheck;
}
