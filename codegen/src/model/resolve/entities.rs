//! Entities: their store, table, maintained columns and time-series shape.

use super::*;

impl Resolver<'_> {
    pub(super) fn unique_entities<'f>(
        &mut self,
        files: &'f [ast::SchemaFile],
    ) -> Vec<&'f ast::EntityDecl> {
        let mut out: Vec<&ast::EntityDecl> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for d in files.iter().flat_map(|f| &f.entities) {
            if let Some(&first) = seen.get(d.name.as_str()) {
                self.duplicate("entity", &d.name, first);
                continue;
            }
            seen.insert(&d.name.value, d.name.span);
            out.push(d);
        }
        out
    }

    pub(super) fn entity(
        &mut self,
        d: &ast::EntityDecl,
        stores: &Stores,
        enums: &HashMap<&str, &Enum>,
    ) -> Entity {
        if !is_type_ident(&d.name) {
            self.bad_name("entity", &d.name, NameStyle::UpperCamelCase);
        } else if d.name.value == "Self" {
            self.reserved_rust_name("an entity", &d.name);
        }
        let store = self.entity_store(d, stores);
        let store_kind = stores.at(store).map(|s| s.kind.tag());
        let table = match &d.table {
            Some(t) => {
                if !is_snake_ident(t) {
                    self.bad_name("table", t, NameStyle::SnakeCase);
                }
                t.value.clone()
            }
            None => {
                let sql = d.name.value.to_snake_case();
                if is_type_ident(&d.name) && !is_snake_ident(&sql) {
                    self.derived_too_long("entity", &d.name, &sql, "table");
                }
                sql
            }
        };
        let mut e = Entity {
            name: Ident {
                schema: d.name.value.clone(),
                sql: table,
                rust: d.name.value.clone(),
            },
            doc: d.doc.clone(),
            store,
            kind: EntityKind::Record,
            fields: Vec::new(),
            key: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
            queries: Vec::new(),
            cache: None,
            events: None,
            search: None,
            partition_by: None,
            version: None,
            renamed_from: None,
            copy: Vec::new(),
            table_span: d.table.as_ref().map_or(d.name.span, |t| t.span),
            span: d.span,
        };
        if let Some(r) = &d.renamed_from {
            if !is_snake_ident(r) {
                self.bad_name("table", r, NameStyle::SnakeCase);
            }
            e.renamed_from = Some(r.value.clone());
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for name in &d.broken_fields {
            self.broken_fields
                .insert((d.name.value.clone(), name.clone()));
        }
        for f in &d.fields {
            if let Some(&first) = seen.get(f.name.as_str()) {
                self.duplicate("field", &f.name, first);
                continue;
            }
            seen.insert(&f.name.value, f.span);
            match self.field(f, enums) {
                Some(field) => e.fields.push(field),
                None => {
                    self.broken_fields
                        .insert((d.name.value.clone(), f.name.value.clone()));
                }
            }
        }
        self.field_renames(d);
        // An entity whose store is unknown is checked as what it looks like.
        let series = match store_kind {
            Some(kind) => kind == StoreKindTag::InfluxDb,
            None => d.time.is_some(),
        };
        if series {
            for flag in [&d.timestamps, &d.version].into_iter().flatten() {
                if flag.value {
                    self.err(ResolveError::SeriesMaintained { at: flag.span });
                }
            }
        }
        if !series && d.timestamps.as_ref().is_some_and(|t| t.value) {
            let span = d.timestamps.as_ref().map(|t| t.span).unwrap_or(d.span);
            for (name, role) in [
                ("created_at", FieldRole::CreatedAt),
                ("updated_at", FieldRole::UpdatedAt),
            ] {
                self.builtin_field(
                    &mut e,
                    name,
                    Type::Scalar(ScalarType::Timestamptz),
                    Some(Default::Now),
                    role,
                    span,
                );
            }
        }
        if !series && d.version.as_ref().is_some_and(|t| t.value) {
            let span = d.version.as_ref().map(|t| t.span).unwrap_or(d.span);
            let ty = Type::Scalar(ScalarType::I64);
            if self.builtin_field(
                &mut e,
                "version",
                ty,
                Some(Default::Int("1".into())),
                FieldRole::Version,
                span,
            ) {
                e.version = Some(e.fields.len() - 1);
            }
        }
        self.fields_unknown = d.incomplete && d.fields.is_empty();
        self.field_index = (e.fields.iter().enumerate())
            .map(|(i, f)| (f.name.schema.clone(), i))
            .collect();
        if series {
            self.series(d, &mut e);
        } else {
            for (what, n) in [("time", &d.time), ("measurement", &d.measurement)] {
                if let Some(n) = n {
                    self.not_series(what, n.span);
                }
            }
            if let Some(t) = d.tags.first() {
                self.not_series("tags", t.span);
            }
            self.key(d, &mut e);
        }
        self.uniques(d, &mut e);
        self.indexes(d, &mut e, enums);
        self.queries(d, &mut e, enums);
        self.cache_search(d, &mut e, stores);
        self.events(d, &mut e, stores);
        if let Some(p) = &d.partition_by {
            if let Some(i) = self.field_ref(&e, p) {
                if !matches!(
                    e.fields[i].ty,
                    Type::Scalar(ScalarType::Timestamptz | ScalarType::Date)
                ) {
                    self.err(ResolveError::NotTimePartition {
                        at: p.span,
                        field: p.value.clone(),
                        ty: e.fields[i].ty.clone(),
                    });
                }
                e.partition_by = Some(i);
            }
        }
        e
    }

    /// `renamed_from` must name a column that no longer exists, once: a swap
    /// or a chain of renames cannot be told from a stale `renamed_from`, and
    /// the migration would silently convert columns instead of renaming them.
    fn field_renames(&mut self, d: &ast::EntityDecl) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for f in &d.fields {
            let Some(r) = &f.renamed_from else { continue };
            let rename = if r.value == f.name.value {
                Some(BadRename::Itself {
                    name: f.name.value.clone(),
                })
            } else if d.fields.iter().any(|g| g.name.value == r.value) {
                Some(BadRename::StillUsed {
                    old: r.value.clone(),
                    owner: d.name.value.clone(),
                })
            } else {
                seen.get(r.value.as_str()).map(|other| BadRename::Twice {
                    other: other.to_string(),
                    name: f.name.value.clone(),
                    old: r.value.clone(),
                })
            };
            seen.insert(&r.value, &f.name.value);
            if let Some(rename) = rename {
                self.err(ResolveError::BadFieldRename { at: r.span, rename });
            }
        }
    }

    pub(super) fn not_series(&mut self, key: &'static str, at: Span) {
        self.err(ResolveError::OnlyForSeries { at, key });
    }

    pub(super) fn entity_store(&mut self, d: &ast::EntityDecl, stores: &Stores) -> StoreId {
        match &d.store {
            Some(s) if stores.contains_key(&s.value) => {
                let kind = stores[&s.value].kind.tag();
                if matches!(kind, StoreKindTag::Redis | StoreKindTag::Elasticsearch) {
                    self.err(ResolveError::EntityInWrongStore {
                        at: s.span,
                        store: s.value.clone(),
                        kind,
                    });
                }
                stores.id(s).unwrap_or(StoreId::NONE)
            }
            Some(s) if self.quiet(s) => StoreId::NONE,
            Some(s) => {
                self.unknown_store(s, stores);
                StoreId::NONE
            }
            None => {
                let mut pg = stores
                    .values()
                    .filter(|s| s.kind.tag() == StoreKindTag::Postgres);
                match (pg.next(), pg.next()) {
                    (Some(only), None) => stores.id(&only.name).unwrap_or(StoreId::NONE),
                    _ if self.incomplete || self.stores_broken || self.storeless_reported => {
                        StoreId::NONE
                    }
                    (None, _) => {
                        // Reported once: every other entity without `store:` has the same cause.
                        self.storeless_reported = true;
                        self.err(ResolveError::NoPostgresStore {
                            at: d.name.span,
                            entity: d.name.value.clone(),
                            declared: stores.keys().cloned().collect(),
                        });
                        StoreId::NONE
                    }
                    (Some(_), Some(_)) => {
                        let postgres = (stores.values())
                            .filter(|s| s.kind.tag() == StoreKindTag::Postgres)
                            .map(|s| s.name.clone())
                            .collect();
                        self.err(ResolveError::SeveralPostgresStores {
                            at: d.name.span,
                            entity: d.name.value.clone(),
                            postgres,
                        });
                        StoreId::NONE
                    }
                }
            }
        }
    }

    /// Adds `created_at`/`updated_at`/`version`; false when the name is taken.
    pub(super) fn builtin_field(
        &mut self,
        e: &mut Entity,
        name: &str,
        ty: Type,
        default: Option<Default>,
        role: FieldRole,
        span: Span,
    ) -> bool {
        if let Some(f) = e.fields.iter().find(|f| f.name.schema == name) {
            self.err(ResolveError::ReservedField {
                at: f.span,
                name: name.to_string(),
                version: role == FieldRole::Version,
            });
            return false;
        }
        e.fields.push(Field {
            name: Ident {
                schema: name.into(),
                sql: name.into(),
                rust: name.into(),
            },
            ty,
            nullable: false,
            default,
            role,
            references: None,
            renamed_from: None,
            doc: None,
            span,
        });
        true
    }

    pub(super) fn series(&mut self, d: &ast::EntityDecl, e: &mut Entity) {
        if let Some(k) = d.key.first() {
            self.err(ResolveError::SeriesKey { at: k.span });
        }
        let Some(time_name) = &d.time else {
            if d.incomplete {
                return;
            }
            self.err(ResolveError::SeriesWithoutTime {
                at: d.name.span,
                entity: d.name.value.clone(),
            });
            return;
        };
        let Some(time) = self.field_ref(e, time_name) else {
            return;
        };
        if e.fields[time].ty != Type::Scalar(ScalarType::Timestamptz) || e.fields[time].nullable {
            self.err(ResolveError::BadTimeField {
                at: time_name.span,
                ty: e.fields[time].ty.clone(),
            });
        }
        let mut tags = Vec::new();
        for t in &d.tags {
            let Some(i) = self.field_ref(e, t) else {
                continue;
            };
            let f = &e.fields[i];
            let ok = matches!(
                f.ty,
                Type::Scalar(ScalarType::String { .. } | ScalarType::Text | ScalarType::Enum(_))
            );
            if !ok || i == time {
                let ty = f.ty.clone();
                self.err(ResolveError::BadTag {
                    at: t.span,
                    tag: t.value.clone(),
                    ty,
                });
            }
            tags.push(i);
        }
        for f in e.fields.iter().filter(|f| f.is_secret()) {
            self.err(ResolveError::SecretInSeries { at: f.span });
        }
        let measurement = match &d.measurement {
            Some(m) => {
                if !is_snake_ident(m) {
                    self.bad_name("measurement", m, NameStyle::SnakeCase);
                }
                m.value.clone()
            }
            None => e.name.sql.clone(),
        };
        e.kind = EntityKind::Series {
            time,
            tags,
            measurement,
        };
    }
}
