//! The problems of the resolver, typed: names, stores, types and defaults,
//! entities, keys, indexes and queries, references, time series, copies
//! (cache, search, sync, events), Rust names and generation limits.
//!
//! Sites build a variant with the places, names and numbers involved (and a
//! did-you-mean `suggestion`, computed within the run's suggestion budget);
//! the `From<ResolveError> for Problem` (in `error/render.rs`) is the one
//! place their code, message, labels and help are written; `error/reasons.rs`
//! holds the typed reasons some variants carry, with their sentences.

mod reasons;
mod render;

pub use reasons::{
    BadRename, DefaultRule, Member, NameStyle, PoolLimit, ReferenceProblem, SyncProblem, TakenName,
    ValueUse,
};

use crate::diagnostics::stage_codes;
use crate::model::{StoreKindTag, Type};
use crate::source::Span;

/// One problem found while resolving the schema into a model. `first` is
/// where an earlier declaration is; its `file:line:col` is written into the
/// help when the problems are rendered ([`crate::diagnostics::Problem::help_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    // ---- names ----
    /// `what` (`store`, `entity`, `enum value`…) `name` is declared again.
    DeclaredTwice {
        at: Span,
        what: &'static str,
        name: String,
        first: Span,
    },
    /// A name that is not a safe identifier in `style`.
    BadName {
        at: Span,
        what: &'static str,
        name: String,
        style: NameStyle,
    },
    /// `Self` as an entity or enum name.
    SelfName {
        at: Span,
        what: &'static str,
        name: String,
    },
    /// A derived SQL name above 63 bytes; `key` sets another.
    DerivedNameTooLong {
        at: Span,
        what: &'static str,
        name: String,
        sql: String,
        key: &'static str,
    },
    SystemColumn {
        at: Span,
        name: String,
        columns: &'static [&'static str],
    },
    BuiltinSqlType {
        at: Span,
        sql: String,
        enum_name: String,
    },
    /// Two enum values that become one Rust variant.
    CaseOnlyDifference {
        at: Span,
        other: String,
        value: String,
        rust: String,
    },
    /// A name PostgreSQL or Rust would give two items.
    NameTaken {
        at: Span,
        name: TakenName,
        first: Span,
    },
    BadTableRename {
        at: Span,
        rename: BadRename,
    },
    BadFieldRename {
        at: Span,
        rename: BadRename,
    },
    // ---- stores ----
    UnknownStoreKind {
        at: Span,
        got: String,
        suggestion: Option<String>,
    },
    SettingNotForKind {
        at: Span,
        key: String,
        kind: StoreKindTag,
        allowed: &'static [&'static str],
    },
    PoolMinAboveMax {
        at: Span,
        min: u32,
        max: u32,
    },
    ReservedSchema {
        at: Span,
        name: String,
    },
    BadServerVersion {
        at: Span,
    },
    BadPrecision {
        at: Span,
    },
    BadServer {
        at: Span,
    },
    /// A pool setting the pool or the server cannot use; `found` as written.
    PoolOutOfRange {
        at: Span,
        key: String,
        found: String,
        limit: PoolLimit,
    },
    PoolNumberTooLarge {
        at: Span,
        key: String,
        min: u32,
    },
    PoolExpectedNumber {
        at: Span,
        key: String,
    },
    PoolDurationTooLarge {
        at: Span,
        key: String,
    },
    PoolExpectedDuration {
        at: Span,
        key: String,
    },
    BadApplicationName {
        at: Span,
    },
    UnknownPoolKey {
        at: Span,
        key: String,
        suggestion: Option<String>,
        known: &'static [&'static str],
    },
    /// A store setting whose value has the wrong shape (`pool: 10`).
    BadSettingShape {
        at: Span,
        key: String,
    },
    UnclosedTemplate {
        at: Span,
    },
    NestedTemplate {
        at: Span,
    },
    BadTemplateVar {
        at: Span,
        name: String,
    },
    UnknownStore {
        at: Span,
        name: String,
        suggestion: Option<String>,
        declared: Vec<String>,
    },
    EntityInWrongStore {
        at: Span,
        store: String,
        kind: StoreKindTag,
    },
    /// `what` (`cache`, `search`, `events`) names a store of another kind.
    WrongStoreKind {
        at: Span,
        what: &'static str,
        needs: StoreKindTag,
        store: String,
        is: StoreKindTag,
    },
    NoPostgresStore {
        at: Span,
        entity: String,
        declared: Vec<String>,
    },
    SeveralPostgresStores {
        at: Span,
        entity: String,
        postgres: Vec<String>,
    },
    // ---- types, fields and defaults ----
    UnknownType {
        at: Span,
        name: String,
        is_entity: bool,
        suggestion: Option<String>,
    },
    BadType {
        at: Span,
        written: String,
        why: crate::model::TypeProblem,
    },
    MaxOutOfRange {
        at: Span,
        max: u32,
    },
    MaxNotApplicable {
        at: Span,
    },
    NullableIdentity {
        at: Span,
    },
    OnDeleteWithoutReference {
        at: Span,
    },
    /// A default (or a `where:` value, per `used`) the field's type cannot
    /// hold; `takes` is what it can.
    BadDefault {
        at: Span,
        text: String,
        ty: Type,
        takes: DefaultRule,
        used: ValueUse,
    },
    UnknownEnumValue {
        at: Span,
        value: String,
        enum_name: String,
        suggestion: Option<String>,
        values: Vec<String>,
    },
    EmptyEnum {
        at: Span,
        name: String,
    },
    /// A maintained column (`version: true`, `timestamps: true`) declared by hand.
    ReservedField {
        at: Span,
        name: String,
        version: bool,
    },
    // ---- entities, keys and constraints ----
    UnknownField {
        at: Span,
        entity: String,
        field: String,
        suggestion: Option<String>,
        fields: Vec<String>,
    },
    NoPrimaryKey {
        at: Span,
        entity: String,
        /// The entity declares no field at all.
        no_fields: bool,
    },
    KeyFieldTwice {
        at: Span,
        field: String,
    },
    BadKeyField {
        at: Span,
        field: String,
        nullable: bool,
    },
    /// A secret used as a key by `used_in` (an index, a reference…).
    SecretKey {
        at: Span,
        field: String,
        used_in: &'static str,
    },
    EmptyUnique {
        at: Span,
    },
    FieldListedTwice {
        at: Span,
        field: String,
    },
    NotTimePartition {
        at: Span,
        field: String,
        ty: Type,
    },
    // ---- indexes and queries ----
    EmptyIndex {
        at: Span,
    },
    UnknownIndexMethod {
        at: Span,
        method: String,
        suggestion: Option<String>,
    },
    HashIndexShape {
        at: Span,
    },
    UniqueNonBtree {
        at: Span,
        method: &'static str,
    },
    OrderedNonBtree {
        at: Span,
    },
    UnsafePredicate {
        at: Span,
    },
    UnbalancedPredicate {
        at: Span,
    },
    DerivedIndexNameTwice {
        at: Span,
        name: String,
        first: Span,
    },
    SecretQuery {
        at: Span,
    },
    ZeroLimit {
        at: Span,
    },
    UnboundedQuery {
        at: Span,
        query: String,
    },
    // ---- references ----
    EnumNotEntity {
        at: Span,
        name: String,
    },
    UnknownReferencedEntity {
        at: Span,
        name: String,
        suggestion: Option<String>,
        entities: Vec<String>,
    },
    ReferenceToSeries {
        at: Span,
        entity: String,
    },
    UnknownReferencedField {
        at: Span,
        entity: String,
        field: String,
        fields: Vec<String>,
    },
    AmbiguousReference {
        at: Span,
        entity: String,
    },
    BadReference {
        at: Span,
        why: ReferenceProblem,
    },
    SetNullNotNullable {
        at: Span,
    },
    SetDefaultWithoutDefault {
        at: Span,
    },
    UnknownOnDelete {
        at: Span,
        action: String,
        suggestion: Option<String>,
    },
    // ---- time series ----
    SeriesMaintained {
        at: Span,
    },
    OnlyForSeries {
        at: Span,
        key: &'static str,
    },
    SeriesKey {
        at: Span,
    },
    SeriesWithoutTime {
        at: Span,
        entity: String,
    },
    BadTimeField {
        at: Span,
        ty: Type,
    },
    BadTag {
        at: Span,
        tag: String,
        ty: Type,
    },
    SecretInSeries {
        at: Span,
    },
    // ---- copies: cache, search, sync, events ----
    SecretInCache {
        at: Span,
        entity: String,
        secret: String,
        secret_at: Span,
    },
    CacheTtlOutOfRange {
        at: Span,
        ttl_ms: u64,
    },
    SecretInSearch {
        at: Span,
    },
    NotText {
        at: Span,
        field: String,
        ty: Type,
    },
    UnknownSyncSource {
        at: Span,
        name: String,
        suggestion: Option<String>,
    },
    BadSync {
        at: Span,
        why: SyncProblem,
    },
    SyncTwice {
        at: Span,
    },
    NotCaptured {
        at: Span,
        entity: String,
    },
    BadPartitions {
        at: Span,
        found: u32,
    },
    BadMaxLen {
        at: Span,
        found: u32,
    },
    // ---- Rust names ----
    HiddenRustName {
        at: Span,
        what: &'static str,
        name: String,
        type_param: bool,
    },
    UnusableRustName {
        at: Span,
        what: &'static str,
        name: String,
        item: &'static str,
    },
    ReservedMember {
        at: Span,
        name: String,
        member: Member,
    },
    /// `what` `name` becomes the Rust `item` `rust`, which `other` already is.
    RustNameClash {
        at: Span,
        what: &'static str,
        name: String,
        rust: String,
        item: &'static str,
        other: String,
        other_span: Span,
    },
    // ---- limits ----
    TooManyFields {
        at: Span,
        entity: String,
        fields: usize,
        max: usize,
    },
    TooManyTargets {
        at: Span,
        entity: String,
        targets: usize,
        max: usize,
    },
    TooLargeOutput {
        at: Span,
        max: usize,
        columns: usize,
        fields: usize,
        copies: usize,
        total: usize,
    },
}

stage_codes!(ResolveError {
    DeclaredTwice => DuplicateName,
    BadName => BadIdentifier,
    SelfName => BadIdentifier,
    DerivedNameTooLong => BadIdentifier,
    SystemColumn => BadIdentifier,
    BuiltinSqlType => BadIdentifier,
    CaseOnlyDifference => DuplicateName,
    NameTaken => DuplicateName,
    BadTableRename => BadRename,
    BadFieldRename => BadRename,
    UnknownStoreKind => UnknownStoreKind,
    SettingNotForKind => SettingNotForKind,
    PoolMinAboveMax => BadSetting,
    ReservedSchema => BadSetting,
    BadServerVersion => BadSetting,
    BadPrecision => BadSetting,
    BadServer => BadSetting,
    PoolOutOfRange => OutOfRange,
    PoolNumberTooLarge => OutOfRange,
    PoolExpectedNumber => ExpectedNumber,
    PoolDurationTooLarge => OutOfRange,
    PoolExpectedDuration => ExpectedDuration,
    BadApplicationName => BadSetting,
    UnknownPoolKey => UnknownKey,
    BadSettingShape => BadSetting,
    UnclosedTemplate => BadTemplate,
    NestedTemplate => BadTemplate,
    BadTemplateVar => BadTemplate,
    UnknownStore => UnknownStore,
    EntityInWrongStore => WrongStoreKind,
    WrongStoreKind => WrongStoreKind,
    NoPostgresStore => MissingKey,
    SeveralPostgresStores => MissingKey,
    UnknownType => UnknownType,
    BadType => BadType,
    MaxOutOfRange => BadMax,
    MaxNotApplicable => BadMax,
    NullableIdentity => BadDefault,
    OnDeleteWithoutReference => OnDeleteWithoutReference,
    BadDefault => BadDefault,
    UnknownEnumValue => UnknownEnumValue,
    EmptyEnum => EmptyEnum,
    ReservedField => ReservedField,
    UnknownField => UnknownField,
    NoPrimaryKey => MissingKey,
    KeyFieldTwice => DuplicateName,
    BadKeyField => BadKey,
    SecretKey => SecretKey,
    EmptyUnique => BadUnique,
    FieldListedTwice => DuplicateName,
    NotTimePartition => BadPartition,
    EmptyIndex => EmptyIndex,
    UnknownIndexMethod => BadIndex,
    HashIndexShape => BadIndex,
    UniqueNonBtree => BadIndex,
    OrderedNonBtree => BadIndex,
    UnsafePredicate => BadPredicate,
    UnbalancedPredicate => BadPredicate,
    DerivedIndexNameTwice => DuplicateName,
    SecretQuery => SecretQuery,
    ZeroLimit => BadQuery,
    UnboundedQuery => UnboundedQuery,
    EnumNotEntity => UnknownEntity,
    UnknownReferencedEntity => UnknownEntity,
    ReferenceToSeries => BadReference,
    UnknownReferencedField => UnknownField,
    AmbiguousReference => UnknownField,
    BadReference => BadReference,
    SetNullNotNullable => BadReference,
    SetDefaultWithoutDefault => BadReference,
    UnknownOnDelete => BadReference,
    SeriesMaintained => SeriesOnly,
    OnlyForSeries => SeriesOnly,
    SeriesKey => SeriesKey,
    SeriesWithoutTime => MissingKey,
    BadTimeField => BadSeries,
    BadTag => BadSeries,
    SecretInSeries => SecretInSeries,
    SecretInCache => SecretInCache,
    CacheTtlOutOfRange => OutOfRange,
    SecretInSearch => SecretInSearch,
    NotText => BadSearchField,
    UnknownSyncSource => UnknownEntity,
    BadSync => BadSync,
    SyncTwice => DuplicateName,
    NotCaptured => BadEvents,
    BadPartitions => BadEvents,
    BadMaxLen => BadEvents,
    HiddenRustName => BadIdentifier,
    UnusableRustName => BadIdentifier,
    ReservedMember => BadIdentifier,
    RustNameClash => RustNameClash,
    TooManyFields => TooManyFields,
    TooManyTargets => TooManyTargets,
    TooLargeOutput => TooLargeOutput,
});
