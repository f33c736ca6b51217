//! Names that must be unique across kinds of items: Rust type names, the
//! tables of one store, and enums' SQL type names. What else shares a
//! PostgreSQL schema's namespace (indexes, constraints, the names PostgreSQL
//! derives) is the PostgreSQL back end's check (`postgres/relations.rs`).

use super::*;

impl Resolver<'_> {
    pub(super) fn clashes(
        &mut self,
        decls: &[&ast::EntityDecl],
        entities: &[Entity],
        enums: &[Enum],
        stores: &Stores,
    ) {
        // An entity's store by name as written: entities on one unknown
        // store (already reported) still share its namespace.
        let store_names: Vec<&str> = (decls.iter().zip(entities))
            .map(|(d, e)| match stores.at(e.store) {
                Some(s) => s.name.as_str(),
                None => d.store.as_ref().map_or("", |s| s.value.as_str()),
            })
            .collect();
        let enum_types: HashMap<&str, Span> = enums
            .iter()
            .map(|e| (e.name.schema.as_str(), e.span))
            .collect();
        for d in decls {
            if let Some(&first) = enum_types.get(d.name.as_str()) {
                let entity = d.name.value.clone();
                self.clash(d.name.span, TakenName::EntityIsEnum { entity }, first);
            }
        }
        // Tables and measurements, per store.
        let mut relations: HashMap<(&str, &str), Span> = HashMap::new();
        for (e, &store) in entities.iter().zip(&store_names) {
            let table = match &e.kind {
                EntityKind::Series { measurement, .. } => measurement.as_str(),
                EntityKind::Record => e.name.sql.as_str(),
            };
            let at = e.table_span;
            if let Some(&first) = relations.get(&(store, table)) {
                let table = table.to_string();
                self.clash(at, TakenName::Table { table }, first);
            } else {
                relations.insert((store, table), at);
            }
        }
        // A table's `renamed_from` must name a table that no longer exists, once.
        let mut renamed: HashMap<(&str, &str), &str> = HashMap::new();
        for ((d, e), &store) in decls.iter().zip(entities).zip(&store_names) {
            let Some(r) = &d.renamed_from else { continue };
            let key = (store, r.value.as_str());
            let rename = if r.value == e.name.sql {
                Some(BadRename::Itself {
                    name: r.value.clone(),
                })
            } else if relations.contains_key(&key) {
                Some(BadRename::StillUsed {
                    old: r.value.clone(),
                    owner: d.name.value.clone(),
                })
            } else {
                renamed.get(&key).map(|other| BadRename::Twice {
                    other: other.to_string(),
                    name: d.name.value.clone(),
                    old: r.value.clone(),
                })
            };
            renamed.insert(key, &d.name.value);
            if let Some(rename) = rename {
                self.err(ResolveError::BadTableRename { at: r.span, rename });
            }
        }
        // Enum types, too, are named in one namespace.
        let mut types: HashMap<&str, Span> = HashMap::new();
        for en in enums {
            if let Some(&first) = types.get(en.name.sql.as_str()) {
                let name = TakenName::EnumSqlType {
                    enum_name: en.name.schema.clone(),
                    sql: en.name.sql.clone(),
                };
                self.clash(en.span, name, first);
            } else {
                types.insert(&en.name.sql, en.span);
            }
        }
        // The rest of a PostgreSQL schema's namespace (indexes, constraints,
        // the names PostgreSQL derives, enum types beside tables) is checked
        // by the PostgreSQL back end: `postgres::relations`.
    }

    fn clash(&mut self, at: Span, name: TakenName, first: Span) {
        self.err(ResolveError::NameTaken { at, name, first });
    }
}
