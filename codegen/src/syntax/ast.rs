//! The schema as written: names and references are still strings, every piece
//! keeps its span. `model::resolve` turns this into the checked [`crate::model::Model`].

use crate::source::{Span, Spanned};

pub type Name = Spanned<String>;

#[derive(Debug, Clone, Default)]
pub struct SchemaFile {
    pub stores: Vec<StoreDecl>,
    pub enums: Vec<EnumDecl>,
    pub entities: Vec<EntityDecl>,
    pub sync: Vec<SyncDecl>,
    /// The file did not parse as YAML: names it declares are unknown, so the
    /// resolver does not report lookups that fail for that reason.
    pub incomplete: bool,
    /// Names of stores, enums and entities whose declaration was malformed
    /// (already reported); lookups of them are not reported again.
    pub broken: Vec<String>,
    /// A store declaration was malformed (already reported): entities without
    /// `store:` may have meant it.
    pub broken_store: bool,
}

#[derive(Debug, Clone)]
pub struct StoreDecl {
    pub name: Name,
    pub kind: Name,
    pub url: Option<Name>,
    /// Every other setting, validated per kind by the resolver.
    pub settings: Vec<(Name, Setting)>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Setting {
    Scalar(Spanned<String>),
    Map(Vec<(Name, Spanned<String>)>),
    /// A sequence of scalars (`replicas: ["${REPLICA_URL}"]`).
    List(Vec<Spanned<String>>),
}

#[derive(Debug, Clone)]
pub struct EnumDecl {
    pub name: Name,
    pub values: Vec<Name>,
    pub sql_name: Option<Name>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct EntityDecl {
    pub name: Name,
    pub doc: Option<String>,
    pub store: Option<Name>,
    pub table: Option<Name>,
    pub renamed_from: Option<Name>,
    pub key: Vec<Name>,
    pub key_span: Option<Span>,
    pub timestamps: Option<Spanned<bool>>,
    pub version: Option<Spanned<bool>>,
    pub fields: Vec<FieldDecl>,
    pub unique: Vec<Spanned<Vec<Name>>>,
    pub indexes: Vec<IndexDecl>,
    pub queries: Vec<QueryDecl>,
    pub cache: Option<CacheDecl>,
    pub events: Option<EventsDecl>,
    pub search: Option<SearchDecl>,
    /// Time column the analytics copy is partitioned by (by month).
    pub partition_by: Option<Name>,
    /// Time-series entities: the time field, the tag fields and the measurement.
    pub time: Option<Name>,
    pub tags: Vec<Name>,
    pub measurement: Option<Name>,
    /// Fields whose declaration was malformed (already reported).
    pub broken_fields: Vec<String>,
    /// The declaration had shape problems (a misspelt key, a list for a
    /// mapping): what seems missing from it may just be misspelt, so the
    /// resolver does not report missing keys, time fields or unknown fields.
    pub incomplete: bool,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct FieldDecl {
    pub name: Name,
    /// The type text, e.g. `decimal(20,8)`, `string(20)`, `Side`, `i64[]`.
    pub ty: Name,
    /// `?` after the type, or `nullable: true`.
    pub nullable: Option<Spanned<bool>>,
    pub default: Option<Spanned<DefaultLit>>,
    pub max: Option<Spanned<u32>>,
    pub unique: Option<Spanned<bool>>,
    pub references: Option<Name>,
    pub on_delete: Option<Name>,
    pub renamed_from: Option<Name>,
    pub doc: Option<String>,
    pub span: Span,
}

/// A default as written. The resolver decides what it means for the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultLit {
    /// Unquoted scalar: `now`, `generated`, `PENDING`, `0`, `true`, `1.5`.
    Plain(String),
    /// Quoted string: always a string literal.
    Quoted(String),
}

#[derive(Debug, Clone)]
pub struct IndexDecl {
    pub columns: Vec<(Name, bool /* desc */)>,
    pub unique: bool,
    pub name: Option<Name>,
    pub method: Option<Name>,
    pub filter: Option<Filter>,
    pub span: Span,
}

/// A `where:` on an index or a query.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `{ status: PENDING }`: equality with literals, quoted by the compiler.
    Equals(Vec<(Name, Spanned<DefaultLit>)>),
    /// `"status = 'PENDING'"`: a SQL predicate written by the schema author.
    Sql(Spanned<String>),
}

#[derive(Debug, Clone)]
pub struct QueryDecl {
    pub name: Name,
    /// Fields that become parameters (equality).
    pub params: Vec<Name>,
    /// Fields fixed to a literal.
    pub fixed: Vec<(Name, Spanned<DefaultLit>)>,
    pub order: Vec<(Name, bool)>,
    pub limit: Option<Spanned<u32>>,
    pub one: bool,
    pub span: Span,
    /// A key of the query was misspelt (already reported): a missing `where`
    /// or `limit` may just be misspelt.
    pub incomplete: bool,
}

#[derive(Debug, Clone)]
pub struct CacheDecl {
    pub store: Name,
    pub ttl: Option<Spanned<u64>>, // milliseconds
    pub span: Span,
}

/// `events: <store>` or `events: { store, partitions, max_len, pubsub }`.
#[derive(Debug, Clone)]
pub struct EventsDecl {
    pub store: Name,
    pub partitions: Option<Spanned<u32>>,
    pub max_len: Option<Spanned<u32>>,
    pub pubsub: Option<Spanned<bool>>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct SearchDecl {
    pub store: Name,
    pub text: Vec<Name>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct SyncDecl {
    pub from: Name,
    pub to: Vec<Name>,
    pub span: Span,
}
