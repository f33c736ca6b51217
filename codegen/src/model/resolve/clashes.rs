//! Names that must be unique across kinds of items: Rust type names, and SQL
//! relation names (tables, indexes and unique constraints share one namespace
//! in a PostgreSQL schema; a table also declares a type of its own name).

use super::*;

impl Resolver<'_> {
    pub(super) fn clashes(
        &mut self,
        decls: &[&ast::EntityDecl],
        entities: &[Entity],
        enums: &[Enum],
        stores: &BTreeMap<String, Store>,
    ) {
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
        for (d, e) in decls.iter().zip(entities) {
            let table = match &e.kind {
                EntityKind::Series { measurement, .. } => measurement.as_str(),
                EntityKind::Record => e.name.sql.as_str(),
            };
            let at = d.table.as_ref().map_or(d.name.span, |t| t.span);
            if let Some(&first) = relations.get(&(e.store.as_str(), table)) {
                self.clash(
                    at,
                    format!("table `{table}` is used by two entities"),
                    first,
                    "set a different `table:`",
                );
            } else {
                relations.insert((e.store.as_str(), table), at);
            }
        }
        // A table's `renamed_from` must name a table that no longer exists, once.
        let mut renamed: HashMap<(&str, &str), &str> = HashMap::new();
        for (d, e) in decls.iter().zip(entities) {
            let Some(r) = &d.renamed_from else { continue };
            let key = (e.store.as_str(), r.value.as_str());
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
        let is_pg = |e: &Entity| {
            !e.is_series()
                && stores
                    .get(&e.store)
                    .is_some_and(|s| s.kind.tag() == StoreKindTag::Postgres)
        };
        // Enum types live beside the tables of every postgres store, and
        // two enums cannot share a SQL type name.
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
            let clash = (stores.values())
                .filter(|s| s.kind.tag() == StoreKindTag::Postgres)
                .find_map(|s| {
                    relations
                        .get(&(s.name.as_str(), en.name.sql.as_str()))
                        .copied()
                });
            if let Some(first) = clash {
                self.clash(
                    en.span,
                    format!(
                        "the SQL type `{}` of enum `{}` has the name of a table",
                        en.name.sql, en.name.schema
                    ),
                    first,
                    "set the enum's `sql_name:` or the entity's `table:` to another name",
                );
            }
        }
        // The primary key's index and identity sequences are relations too:
        // a table named `order_pkey` or `order_id_seq` would not be created.
        let implicit: Vec<Vec<(String, Span, &str)>> = (entities.iter())
            .map(|e| {
                if !is_pg(e) || e.key.is_empty() {
                    return Vec::new();
                }
                let mut v = vec![(
                    crate::postgres::pkey_name(&e.name.sql),
                    e.span,
                    "primary key",
                )];
                // Named by PostgreSQL, cut to 63 bytes as PostgreSQL cuts it.
                for f in &e.fields {
                    if f.default == Some(Default::Identity) {
                        let seq = crate::postgres::check::implicit_name(
                            &e.name.sql,
                            Some(&f.name.sql),
                            "seq",
                        );
                        v.push((seq, f.span, "identity sequence"));
                    }
                }
                v
            })
            .collect();
        for (e, implicit) in entities.iter().zip(&implicit) {
            if !is_pg(e) {
                continue;
            }
            let named = (e.indexes.iter().map(|i| (i.name.as_str(), i.span, "index")))
                .chain(
                    e.uniques
                        .iter()
                        .map(|u| (u.name.as_str(), u.span, "unique constraint")),
                )
                .chain(implicit.iter().map(|(n, s, w)| (n.as_str(), *s, *w)));
            for (name, span, what) in named {
                if let Some(&first) = relations.get(&(e.store.as_str(), name)) {
                    self.clash(
                        span,
                        format!(
                            "{what} name `{name}` is already used in store `{}`",
                            e.store
                        ),
                        first,
                        match what {
                            "primary key" | "identity sequence" => {
                                "PostgreSQL derives this name from the table; set another `table:` on one of the two"
                            }
                            _ => "give the index another `name:`",
                        },
                    );
                } else {
                    relations.insert((e.store.as_str(), name), span);
                }
            }
        }
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
