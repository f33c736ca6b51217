//! What the generated Rust SDK cannot express, reported at compile time:
//! values its types cannot hold without loss, and PostgreSQL types one Rust
//! type cannot name.

use crate::diagnostics::Problem;
use crate::model::{EntityKind, Model, ScalarType, StoreKind, StoreKindTag};

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
                out.push(
                    Problem::new(
                        "strata::decimal_precision",
                        f.span,
                        format!(
                            "`{}.{}` cannot be carried by the Rust SDK without loss",
                            e.name.schema, f.name.schema
                        ),
                    )
                    .label(format!(
                        "decimal precision {precision} exceeds the {MAX_DECIMAL_PRECISION} digits of the SDK's `Decimal`"
                    ))
                    .help(format!(
                        "use `decimal(p,s)` with p at most {MAX_DECIMAL_PRECISION}: wider values would be rounded when read"
                    )),
                );
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
        let mut users: Vec<(&str, Option<&str>)> = Vec::new();
        for (name, store) in &model.stores {
            let StoreKind::Postgres { schema, .. } = &store.kind else {
                continue;
            };
            let uses = model.entities.iter().any(|e| {
                &e.store == name
                    && e.kind == EntityKind::Record
                    && e.fields.iter().any(
                        |f| matches!(f.ty.scalar(), ScalarType::Enum(n) if *n == en.name.schema),
                    )
            });
            if uses {
                users.push((name, schema.as_deref()));
            }
        }
        let Some(&(first, ns)) = users.first() else {
            continue;
        };
        if let Some(&(other, other_ns)) = users.iter().find(|(_, s)| *s != ns) {
            let show = |s: Option<&str>| {
                s.map_or("no schema, so `public`".to_string(), |s| {
                    format!("schema `{s}`")
                })
            };
            out.push(
                Problem::new(
                    "strata::enum_schemas",
                    en.span,
                    format!(
                        "enum `{}` is used by store `{first}` ({}) and store `{other}` ({})",
                        en.name.schema,
                        show(ns),
                        show(other_ns)
                    ),
                )
                .label("one Rust type cannot name both PostgreSQL types")
                .help("give the stores the same `schema:`, or declare one enum per store"),
            );
        }
    }
    out
}
