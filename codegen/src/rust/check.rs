//! What the generated Rust SDK cannot express, reported at compile time:
//! values its types cannot hold without loss, and PostgreSQL types one Rust
//! type cannot name.

use super::error::RustError;
use crate::diagnostics::Problem;
use crate::model::{Model, ScalarType, StoreKind, StoreKindTag};

/// Every problem of the Rust back end.
pub fn check(model: &Model) -> Vec<Problem> {
    let mut out = decimal_precision(model);
    out.extend(enum_schemas(model));
    out
}

/// Digits a `rust_decimal::Decimal` always holds (its 96-bit mantissa holds
/// every 28-digit number, not every 29-digit one; its scale is at most 28).
pub const MAX_DECIMAL_PRECISION: u8 = 28;

/// Decimal fields of PostgreSQL and InfluxDB entities wider than the SDK's
/// `Decimal`: sqlx rounds such a value when it reads it (a 38-digit number
/// comes back with its last digits gone), so an update would write the
/// rounded value back. ClickHouse entities are checked by their back end.
fn decimal_precision(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for kind in [StoreKindTag::Postgres, StoreKindTag::InfluxDb] {
        for e in model.entities_in(kind) {
            for f in &e.fields {
                let ScalarType::Decimal { precision, .. } = *f.ty.scalar() else {
                    continue;
                };
                if precision <= MAX_DECIMAL_PRECISION {
                    continue;
                }
                out.push(Problem::from(RustError::DecimalPrecision {
                    at: f.span,
                    entity: e.name.schema.clone(),
                    field: f.name.schema.clone(),
                    precision,
                }));
            }
        }
    }
    out
}

/// An enum whose tables live in postgres stores with different PostgreSQL
/// schemas: each store's DDL creates the type in its own schema, but the one
/// generated Rust enum can name only one of them, so the other store's
/// queries would fail at run time.
fn enum_schemas(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for en in &model.enums {
        // (store, its schema) of each postgres store whose records use the enum.
        let users: Vec<(&str, Option<&str>)> = (en.stores.iter().map(|&id| &model[id]))
            .map(|s| match &s.kind {
                StoreKind::Postgres { schema, .. } => (s.name.as_str(), schema.as_deref()),
                _ => (s.name.as_str(), None),
            })
            .collect();
        let Some(&(first, ns)) = users.first() else {
            continue;
        };
        if let Some(&(other, other_ns)) = users.iter().find(|(_, s)| *s != ns) {
            out.push(Problem::from(RustError::EnumSchemas {
                at: en.span,
                enum_name: en.name.schema.clone(),
                first: first.to_string(),
                first_schema: ns.map(str::to_string),
                other: other.to_string(),
                other_schema: other_ns.map(str::to_string),
            }));
        }
    }
    out
}

pub use super::entities::sort_fields;

/// The names the Rust back end generates beside the schema's own, so the
/// resolver can refuse a schema name that would meet one of them
/// (`model/resolve/rust_names.rs`). Keep in step with the emitter.
pub mod names {
    /// Methods every repository has (`rust/repository.rs`). A finder named
    /// like one of them is emitted as
    /// `find_<name>` ([`finder_method`]).
    pub const REPOSITORY_METHODS: &[&str] = &[
        "key",
        "insert",
        "upsert",
        "find",
        "get",
        "get_many",
        "update",
        "patch",
        "delete",
        "exists",
        "count",
        "list",
        "insert_many",
        "upsert_many",
        "update_many",
        "delete_many",
        // Entities with `events:` (`rust/events_impl.rs`).
        "subscribe",
    ];

    /// Types, traits and variants of the Rust prelude, which the generated
    /// code (and the derives it calls) name without a path: an entity or
    /// enum of one of these names would hide them in its module.
    pub const PRELUDE: &[&str] = &[
        "Option",
        "Some",
        "None",
        "Result",
        "Ok",
        "Err",
        "String",
        "Vec",
        "Box",
        "ToString",
        "ToOwned",
        "Clone",
        "Copy",
        "Send",
        "Sync",
        "Sized",
        "Unpin",
        "Drop",
        "Fn",
        "FnMut",
        "FnOnce",
        "AsyncFn",
        "AsyncFnMut",
        "AsyncFnOnce",
        "Default",
        "Eq",
        "PartialEq",
        "Ord",
        "PartialOrd",
        "Iterator",
        "IntoIterator",
        "Extend",
        "AsRef",
        "AsMut",
        "Into",
        "From",
        "TryFrom",
        "TryInto",
        "FromIterator",
        "DoubleEndedIterator",
        "ExactSizeIterator",
    ];

    /// Type parameters of the generated methods (`insert<'c, A: Acquire>`,
    /// `insert_many<.., I: IntoIterator>`): an enum of one of these names,
    /// the type of a parameter, would be hidden inside them.
    pub const GENERIC_PARAMS: &[&str] = &["A", "I"];

    /// Prefix of the generated code's own helper methods and variables.
    pub const RESERVED_PREFIX: &str = "strata_";

    /// The member of a versioned entity's patch type that carries the
    /// expected version.
    pub const EXPECTED_VERSION: &str = "expected_version";
    /// The opt-out of the version check in the patch of a versioned entity.
    pub const ANY_VERSION: &str = "any_version";
    /// `add_<field>`: a patch's atomic increment of a number field.
    pub const INCREMENT_PREFIX: &str = "add_";

    /// The method of a finder query (its Rust name without `r#`).
    pub fn finder_method(query: &str) -> String {
        if REPOSITORY_METHODS.contains(&query) {
            format!("find_{query}")
        } else {
            crate::names::rust_ident(query)
        }
    }

    /// The listing method of a sort field (its Rust name).
    pub fn list_by(field: &str) -> String {
        format!(
            "list_by_{}",
            crate::names::rust_ident(field).trim_start_matches("r#")
        )
    }

    /// Kinds of store whose generated Rust is a module named after the store
    /// (`clickhouse::<store>`, `elasticsearch::<store>`, `influx::<store>`).
    pub const STORES_WITH_MODULES: &[crate::model::StoreKindTag] = &[
        crate::model::StoreKindTag::ClickHouse,
        crate::model::StoreKindTag::Elasticsearch,
        crate::model::StoreKindTag::InfluxDb,
    ];

    /// The functions generated for a postgres store (pools, with and
    /// without replicas) or a redis store (a cache).
    pub fn store_functions(store: &crate::model::Store) -> Vec<String> {
        let (kind, store) = (store.kind.tag(), &store.name);
        match kind {
            crate::model::StoreKindTag::Redis => {
                vec![
                    format!("{store}_cache_config"),
                    format!("connect_{store}"),
                    format!("connect_{store}_events"),
                ]
            }
            _ => vec![
                format!("{store}_pool_config"),
                format!("connect_{store}"),
                format!("connect_{store}_replicated"),
            ],
        }
    }

    /// The types derived from a postgres record entity, with what each is.
    pub fn entity_types(entity: &str) -> [(String, &'static str); 4] {
        [
            (
                format!("{entity}Public"),
                "view without secrets (change events)",
            ),
            (format!("New{entity}"), "insert type"),
            (format!("{entity}Patch"), "patch type"),
            (format!("{entity}Key"), "key type"),
        ]
    }
}
