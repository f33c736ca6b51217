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
                self.clash(
                    d.name.span,
                    format!("entity `{}` has the name of an enum", d.name.value),
                    first,
                    "rename the entity or the enum: both become Rust types of one module",
                );
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
                self.clash(
                    at,
                    format!("table `{table}` is used by two entities"),
                    first,
                    "set a different `table:`",
                );
            } else {
                relations.insert((store, table), at);
            }
        }
        // A table's `renamed_from` must name a table that no longer exists, once.
        let mut renamed: HashMap<(&str, &str), &str> = HashMap::new();
        for ((d, e), &store) in decls.iter().zip(entities).zip(&store_names) {
            let Some(r) = &d.renamed_from else { continue };
            let key = (store, r.value.as_str());
            let problem = if r.value == e.name.sql {
                Some((
                    format!("table `{}` is renamed from itself", r.value),
                    "write the table's previous name, or remove `renamed_from`".to_string(),
                ))
            } else if relations.contains_key(&key) {
                Some((
                    format!("`{}` is still the table of an entity", r.value),
                    "the old name of a renamed table must be free; if this rename was applied already, remove `renamed_from`".to_string(),
                ))
            } else {
                renamed.get(&key).map(|other| {
                    (
                        format!(
                            "entities `{other}` and `{}` are both renamed from `{}`",
                            d.name.value, r.value
                        ),
                        "a table can be renamed to one new name only".to_string(),
                    )
                })
            };
            renamed.insert(key, &d.name.value);
            if let Some((message, help)) = problem {
                self.err(
                    Problem::new(Code::BadRename, r.span, message)
                        .label("renamed_from")
                        .help(help),
                );
            }
        }
        // Enum types, too, are named in one namespace.
        let mut types: HashMap<&str, Span> = HashMap::new();
        for en in enums {
            if let Some(&first) = types.get(en.name.sql.as_str()) {
                self.clash(
                    en.span,
                    format!(
                        "enum `{}` has the SQL type name `{}` of another enum",
                        en.name.schema, en.name.sql
                    ),
                    first,
                    "give one of them another `sql_name:`",
                );
            } else {
                types.insert(&en.name.sql, en.span);
            }
        }
        // The rest of a PostgreSQL schema's namespace (indexes, constraints,
        // the names PostgreSQL derives, enum types beside tables) is checked
        // by the PostgreSQL back end: `postgres::relations`.
    }

    fn clash(&mut self, span: Span, message: String, first: Span, help: &str) {
        let at = if self.probs.wants_suggestions() {
            self.sources.location(first)
        } else {
            "another place".to_string()
        };
        self.err(
            Problem::new(Code::DuplicateName, span, message)
                .label("name already taken")
                .also(first, "taken here")
                .help(format!("the other one is at {at}; {help}")),
        );
    }
}
