//! One PostgreSQL schema names its tables, indexes, constraints, sequences
//! and types in one namespace: an index named like a table, or a table named
//! `order_pkey` beside `order`, would not be created. The store-neutral
//! resolver checks tables against tables and enums against enums; this check
//! adds what only PostgreSQL has: index and unique-constraint names, the
//! names PostgreSQL derives itself (`_pkey`, identity `_seq`, cut to 63 bytes
//! its own way), and enum types beside tables.

use std::collections::HashMap;

use super::error::{PostgresError, TakenName};
use crate::diagnostics::Problem;
use crate::model::{Default, Entity, EntityKind, Model, StoreId, StoreKindTag};
use crate::source::Span;

/// Every name clash in a PostgreSQL store's namespace.
pub(super) fn clashes(model: &Model) -> Vec<Problem> {
    let is_pg = |store: StoreId| {
        (model.store_at(store)).is_some_and(|s| s.kind.tag() == StoreKindTag::Postgres)
    };
    let mut out = Vec::new();
    // Tables and measurements, per store (the resolver refused duplicates).
    let mut relations: HashMap<(StoreId, &str), Span> = HashMap::new();
    for e in model.entities.iter().filter(|e| is_pg(e.store)) {
        let table = match &e.kind {
            EntityKind::Series { measurement, .. } => measurement.as_str(),
            EntityKind::Record => e.name.sql.as_str(),
        };
        relations.entry((e.store, table)).or_insert(e.table_span);
    }
    // Enum types live beside the tables of every postgres store.
    for en in &model.enums {
        let clash = (model.stores_by_id())
            .filter(|(_, s)| s.kind.tag() == StoreKindTag::Postgres)
            .find_map(|(id, _)| relations.get(&(id, en.name.sql.as_str())));
        if let Some(&first) = clash {
            let name = TakenName::EnumType {
                sql: en.name.sql.clone(),
                enum_name: en.name.schema.clone(),
            };
            out.push(clash_problem(en.span, name, first));
        }
    }
    // The names PostgreSQL derives first: when a name given in the schema
    // takes one, the given name is the one to change, and is reported.
    let records: Vec<&Entity> = (model.entities.iter())
        .filter(|e| !e.is_series() && is_pg(e.store))
        .collect();
    // A second entity on one table (the resolver refused it) would clash
    // with the first's derived names too: one mistake, one problem.
    let mut tables = std::collections::HashSet::new();
    let firsts: Vec<&Entity> = (records.iter().copied())
        .filter(|e| tables.insert((e.store, e.name.sql.as_str())))
        .collect();
    let implicit = firsts.iter().flat_map(|e| {
        implicit_names(e)
            .into_iter()
            .map(move |(n, s, w)| (*e, n, s, w))
    });
    let given = records.iter().flat_map(|e| {
        let indexes = e.indexes.iter().map(|i| (i.name.clone(), i.span, "index"));
        let uniques = (e.uniques.iter()).map(|u| (u.name.clone(), u.span, "unique constraint"));
        indexes.chain(uniques).map(move |(n, s, w)| (*e, n, s, w))
    });
    let named: Vec<(&Entity, String, Span, &str)> = implicit.chain(given).collect();
    for (e, name, span, what) in &named {
        match relations.get(&(e.store, name.as_str())) {
            Some(&first) => {
                let store = model[e.store].name.clone();
                let name = TakenName::Relation {
                    what,
                    name: name.clone(),
                    store,
                };
                out.push(clash_problem(*span, name, first));
            }
            None => {
                relations.insert((e.store, name.as_str()), *span);
            }
        }
    }
    out
}

/// A relation's name, where it is declared, and what it is.
type Named = (String, Span, &'static str);

/// The relations PostgreSQL names itself for a table: the primary key's
/// index and each identity column's sequence, cut to 63 bytes as
/// PostgreSQL cuts them.
fn implicit_names(e: &Entity) -> Vec<Named> {
    if e.key.is_empty() {
        return Vec::new();
    }
    let pkey = (super::pkey_name(&e.name.sql), e.table_span, "primary key");
    let seqs = (e.fields.iter())
        .filter(|f| f.default == Some(Default::Identity))
        .map(|f| {
            let seq = super::check::implicit_name(&e.name.sql, Some(&f.name.sql), "seq");
            (seq, f.span, "identity sequence")
        });
    std::iter::once(pkey).chain(seqs).collect()
}

fn clash_problem(at: Span, name: TakenName, first: Span) -> Problem {
    Problem::from(PostgresError::NameTaken { at, name, first })
}
