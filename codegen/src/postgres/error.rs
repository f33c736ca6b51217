//! The problems of the PostgreSQL back end, typed: what PostgreSQL cannot
//! build (index methods without an operator class), names clashing in one
//! PostgreSQL schema, and index entries it will refuse at run time (warnings).
//!
//! The `From<PostgresError> for Problem` below is the one place their code,
//! message, labels and help are written.

use super::check::{BTREE_MAX_ENTRY, MAX_INDEXED_CHARS};
use crate::diagnostics::{stage_codes, Problem};
use crate::model::Type;
use crate::source::Span;

/// One problem of a model for its PostgreSQL stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresError {
    /// A gin index over fields that are neither arrays nor json.
    GinNeedsArrays { at: Span },
    /// A gist index: no operator class for `ty` without btree_gist.
    NoGistClass { at: Span, ty: Type },
    /// A brin index over `field` of type `ty`, which has no operator class.
    NoBrinClass { at: Span, field: String, ty: Type },
    /// A name already used in the store's PostgreSQL schema (`first`).
    NameTaken {
        at: Span,
        name: TakenName,
        first: Span,
    },
    /// Warning: the entries of a B-tree (`what`: index, unique constraint,
    /// primary key) over `table.field` can outgrow a page.
    OversizedEntry {
        at: Span,
        what: &'static str,
        table: String,
        field: String,
        bound: EntryBound,
    },
}

stage_codes!(PostgresError {
    GinNeedsArrays => BadIndex,
    NoGistClass => BadIndex,
    NoBrinClass => BadIndex,
    NameTaken => DuplicateName,
    OversizedEntry => UnboundedIndex,
});

/// What already holds a name in a PostgreSQL schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenName {
    /// The SQL type `sql` of enum `enum_name` is named like a table.
    EnumType { sql: String, enum_name: String },
    /// A relation (`what`: index, unique constraint, primary key, identity
    /// sequence) named `name` in store `store`.
    Relation {
        what: &'static str,
        name: String,
        store: String,
    },
}

/// Why a B-tree entry can outgrow a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBound {
    /// The field's values (of type `ty`) have no bound.
    Unbounded { ty: Type },
    /// Entries of the bounded fields can take `bytes` together.
    Total { bytes: usize },
}

impl From<PostgresError> for Problem {
    fn from(e: PostgresError) -> Problem {
        let typed = e.clone();
        let p = |at: Span, message: String| Problem::typed(typed, at, message);
        use PostgresError as E;
        match e {
            E::GinNeedsArrays { at } => p(at, "a gin index needs array or json fields".into())
                .label("gin index")
                .help("index scalar fields with btree (the default)"),
            E::NoGistClass { at, ty } => p(at, format!("PostgreSQL has no gist operator class for `{ty}`"))
                .label("gist index")
                .help("gist needs the btree_gist extension for these types: use btree (the default), brin for large append-only tables, or gin for arrays and json"),
            E::NoBrinClass { at, field, ty } => p(at, format!("PostgreSQL has no brin operator class for `{field}` ({ty})"))
                .label("brin index")
                .help("brin suits numbers, text, uuids and times; index booleans and enums with btree, arrays and json with gin"),
            E::NameTaken { at, name, first } => {
                let (message, help) = match name {
                    TakenName::EnumType { sql, enum_name } => (
                        format!("the SQL type `{sql}` of enum `{enum_name}` has the name of a table"),
                        "set the enum's `sql_name:` or the entity's `table:` to another name",
                    ),
                    TakenName::Relation { what, name, store } => (
                        format!("{what} name `{name}` is already used in store `{store}`"),
                        match what {
                            "primary key" | "identity sequence" => "PostgreSQL derives this name from the table; set another `table:` on one of the two",
                            _ => "give the index another `name:`",
                        },
                    ),
                };
                p(at, message)
                    .label("name already taken")
                    .also(first, "taken here")
                    .help_at(first, format!("the other one is at {}; {help}", Problem::AT))
            }
            E::OversizedEntry { at, what, table, field, bound } => {
                let label = match bound {
                    EntryBound::Unbounded { ty } => format!("`{field}` is `{ty}`: its values have no bound"),
                    EntryBound::Total { bytes } => format!("entries can take {bytes} bytes"),
                };
                let help = match what {
                    "B-tree index" => format!("bound the field with `string(N)` (N ≤ {MAX_INDEXED_CHARS} always fits), use `method: hash` for equality lookups, or index an expression such as `md5({field})` in a hand-written migration"),
                    _ => format!("bound the field with `string(N)` (N ≤ {MAX_INDEXED_CHARS} always fits), or key on a hash of it (`md5({field})`, in a hand-written migration)"),
                };
                p(at, format!("the {what} on `{table}.{field}` refuses rows whose entry exceeds {BTREE_MAX_ENTRY} bytes"))
                    .label(label)
                    .help(help)
                    .warning()
            }
        }
    }
}
