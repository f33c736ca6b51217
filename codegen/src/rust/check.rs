//! What the generated SDK cannot express, reported at compile time.

use crate::diagnostics::Problem;
use crate::model::{EntityKind, Model, ScalarType, StoreKind};

/// An enum whose tables live in postgres stores with different PostgreSQL
/// schemas: each store's DDL creates the type in its own schema, but the one
/// generated Rust enum can name only one of them, so the other store's
/// queries would fail at run time.
pub fn check(model: &Model) -> Vec<Problem> {
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
