//! The typed reasons some [`ResolveError`](super::ResolveError) variants
//! carry, and the sentences they render to.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

use crate::model::{StoreKindTag, Type};

/// The identifier style a name must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStyle {
    /// Entities and enums: `Order`.
    UpperCamelCase,
    /// Enum values: a letter first, then letters, digits and `_`.
    LetterFirst,
    /// Everything else: `order_line`.
    SnakeCase,
}

impl NameStyle {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            NameStyle::UpperCamelCase => "UpperCamelCase",
            NameStyle::LetterFirst => "letter-first",
            NameStyle::SnakeCase => "snake_case",
        }
    }
    /// The name written in this style.
    pub(super) fn example(self, name: &str) -> String {
        match self {
            NameStyle::UpperCamelCase => name.to_upper_camel_case(),
            NameStyle::LetterFirst => name.to_shouty_snake_case(),
            NameStyle::SnakeCase => name.to_snake_case(),
        }
    }
}

/// Which name is already taken in a namespace shared by kinds of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenName {
    /// An entity named like an enum: both are Rust types of one module.
    EntityIsEnum { entity: String },
    /// A table (or measurement) of two entities in one store.
    Table { table: String },
    /// The SQL type name of two enums.
    EnumSqlType { enum_name: String, sql: String },
}

/// Why a `renamed_from` (of a table or a field) cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRename {
    /// `name` is renamed from itself.
    Itself { name: String },
    /// The old name `old` is still in use (by the entity `owner`'s field).
    StillUsed { old: String, owner: String },
    /// `other` and `name` are both renamed from `old`.
    Twice {
        other: String,
        name: String,
        old: String,
    },
}

/// Why a pool setting is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolLimit {
    ZeroConnections,
    ZeroAcquireTimeout,
    /// `idle_timeout` or `max_lifetime` of 0.
    ZeroLifetime,
    StatementTimeoutTooLong,
}

/// What default a type takes, for the help of
/// [`ResolveError::BadDefault`](super::ResolveError::BadDefault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultRule {
    EmptyArray,
    Now,
    GeneratedUuid,
    Bool,
    Integer {
        lo: i64,
        hi: i64,
    },
    FiniteNumber,
    Decimal {
        before: usize,
        after: usize,
    },
    MaxChars {
        max: u32,
    },
    Json,
    None,
    /// An unquoted keyword (`now`, `generated`, `empty`) where the field
    /// takes text: quoting it is how to mean the text.
    Keyword {
        word: &'static str,
    },
}

/// Where a literal of the schema is used: as a field's `default:`, or as a
/// fixed value an index's or a finder's `where:` compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueUse {
    Default,
    IndexWhere,
    FinderWhere,
}

impl ValueUse {
    /// Whether `now`, `generated` and `empty` mean a generated value here
    /// (only in a `default:`; a `where:` compares with fixed values).
    pub(crate) fn takes_keywords(self) -> bool {
        self == ValueUse::Default
    }
}

/// Why a reference cannot point where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceProblem {
    Array,
    /// `field` is `ty` but `entity.target` is `target_ty`.
    TypeMismatch {
        field: String,
        ty: Type,
        entity: String,
        target: String,
        target_ty: Type,
    },
    NotUnique {
        entity: String,
        target: String,
    },
    /// `entity` lives in store `there`, not `here`.
    OtherStore {
        entity: String,
        there: String,
        here: String,
    },
}

/// Why a sync rule's target cannot take the entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProblem {
    OwnStore,
    NotACopyStore { store: String, kind: StoreKindTag },
    NoSearchSection { entity: String, store: String },
    Series,
}

/// A member the generated Rust declares itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    ExpectedVersion,
    AnyVersion,
    Increment,
    FinderParameter,
    HelperMethod,
}

impl BadRename {
    /// The message, for a table's rename (`table`) or a field's.
    pub(super) fn message(&self, table: bool) -> String {
        let (what, whats) = if table {
            ("table", "entities")
        } else {
            ("field", "fields")
        };
        match self {
            BadRename::Itself { name } => format!("{what} `{name}` is renamed from itself"),
            BadRename::StillUsed { old, .. } if table => {
                format!("`{old}` is still the table of an entity")
            }
            BadRename::StillUsed { old, owner } => format!("`{old}` is still a field of `{owner}`"),
            BadRename::Twice { other, name, old } => {
                format!("{whats} `{other}` and `{name}` are both renamed from `{old}`")
            }
        }
    }
}

impl PoolLimit {
    pub(super) fn why_and_help(self) -> (&'static str, &'static str) {
        match self {
            PoolLimit::ZeroConnections => (
                "a pool of 0 connections can never connect",
                "write `max: 1` or more",
            ),
            PoolLimit::ZeroAcquireTimeout => (
                "an `acquire_timeout` of 0 fails every wait for a connection",
                "write a duration such as `5s`, or remove the key for sqlx's default (30 s)",
            ),
            PoolLimit::ZeroLifetime => (
                "0 would close every connection as soon as it is returned",
                "write a duration such as `10m`, or remove the key for sqlx's default",
            ),
            PoolLimit::StatementTimeoutTooLong => (
                "PostgreSQL takes a `statement_timeout` of at most 2147483647 ms (about 24.8 days)",
                "write at most `24d`, or `0s` for no timeout",
            ),
        }
    }
}

impl DefaultRule {
    pub(super) fn help(self, ty: &Type) -> String {
        match self {
            DefaultRule::EmptyArray => "an array field's only default is `empty`".into(),
            DefaultRule::Now => "time fields take `now` as a default".into(),
            DefaultRule::GeneratedUuid => {
                "uuid fields take `generated` (a random v4 UUID) as a default".into()
            }
            DefaultRule::Bool => "write `true` or `false` without quotes".into(),
            DefaultRule::Integer { lo, hi } => {
                format!(
                    "write a whole number from {lo} to {hi}, or `generated` for an identity column"
                )
            }
            DefaultRule::FiniteNumber => "write a finite number such as `0.5`".into(),
            DefaultRule::Decimal { before, after } => {
                format!("write a number with at most {before} digits before and {after} after the point")
            }
            DefaultRule::MaxChars { max } => {
                format!("the default is longer than the field's {max} characters")
            }
            DefaultRule::Json => "write the JSON as a quoted string, e.g. `default: '{}'`".into(),
            DefaultRule::None => format!("`{ty}` fields take no default"),
            DefaultRule::Keyword { word } => format!(
                "`now`, `generated` and `empty` are keywords, not text; for the text itself write `'{word}'` in quotes"
            ),
        }
    }

    /// The help for a value refused in `used`: a `where:` has no keywords.
    pub(super) fn help_in(self, used: ValueUse, ty: &Type) -> String {
        if used.takes_keywords() {
            return self.help(ty);
        }
        match self {
            DefaultRule::Integer { lo, hi } => format!("write a whole number from {lo} to {hi}"),
            DefaultRule::Now
            | DefaultRule::GeneratedUuid
            | DefaultRule::EmptyArray
            | DefaultRule::None => {
                let instead = match used {
                    ValueUse::IndexWhere => "write the condition as SQL text (`where: \"…\"`)",
                    _ => "make it a finder parameter (`params:`)",
                };
                format!("a `where:` compares with a fixed value, and a `{ty}` field has none: {instead}")
            }
            other => other.help(ty),
        }
    }
}

impl ReferenceProblem {
    pub(super) fn message(&self) -> String {
        match self {
            ReferenceProblem::Array => "an array field cannot be a reference".into(),
            ReferenceProblem::TypeMismatch {
                field,
                ty,
                entity,
                target,
                target_ty,
            } => {
                format!("`{field}` is {ty} but `{entity}.{target}` is {target_ty}")
            }
            ReferenceProblem::NotUnique { entity, target } => {
                format!("`{entity}.{target}` is neither the key nor unique")
            }
            ReferenceProblem::OtherStore {
                entity,
                there,
                here,
            } => {
                format!("`{entity}` lives in store `{there}`, not `{here}`")
            }
        }
    }
}

impl SyncProblem {
    pub(super) fn message(&self) -> String {
        match self {
            SyncProblem::OwnStore => "an entity cannot be synced to its own store".into(),
            SyncProblem::NotACopyStore { store, kind } => format!(
                "sync targets are clickhouse or elasticsearch stores; `{store}` is {}",
                kind.as_str()
            ),
            SyncProblem::NoSearchSection { entity, store } => {
                format!("`{entity}` has no `search: {{ store: {store} }}` section")
            }
            SyncProblem::Series => "time-series entities are not synced".into(),
        }
    }
}

impl Member {
    pub(super) fn why(self) -> &'static str {
        match self {
            Member::ExpectedVersion => "the patch type of a versioned entity has a member `expected_version`",
            Member::AnyVersion => "the patch type of a versioned entity has a member `any_version`",
            Member::Increment => "the patch type has a member `add_<field>` for each number field (an atomic increment)",
            Member::FinderParameter => "a finder's parameters are named after its fields, and the generated code names its own variables `strata_…`",
            Member::HelperMethod => "the generated repository names its own helper methods `strata_…`",
        }
    }
}
