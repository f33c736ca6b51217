//! Keys, unique constraints, indexes and finder queries.

use super::*;

impl Resolver<'_> {
    pub(super) fn key(&mut self, d: &ast::EntityDecl, e: &mut Entity) {
        let names: Vec<Spanned<String>> = if d.key.is_empty() {
            if e.field("id").is_some() {
                vec![Spanned::new("id".to_string(), d.name.span)]
            } else if d.incomplete
                || d.broken_fields.iter().any(|f| f == "id")
                || self
                    .broken_fields
                    .contains(&(e.name.schema.clone(), "id".to_string()))
            {
                return;
            } else {
                self.err(ResolveError::NoPrimaryKey {
                    at: d.name.span,
                    entity: d.name.value.clone(),
                    no_fields: e.fields.is_empty(),
                });
                return;
            }
        } else {
            d.key.clone()
        };
        for n in &names {
            let Some(i) = self.field_ref(e, n) else {
                continue;
            };
            if e.key.contains(&i) {
                self.err(ResolveError::KeyFieldTwice {
                    at: n.span,
                    field: n.value.clone(),
                });
                continue;
            }
            let f = &e.fields[i];
            let bad_type = matches!(
                f.ty.scalar(),
                ScalarType::Json | ScalarType::Secret | ScalarType::F64
            ) || f.ty.is_array();
            if f.nullable || bad_type {
                self.err(ResolveError::BadKeyField {
                    at: n.span,
                    field: n.value.clone(),
                    nullable: f.nullable,
                });
            }
            e.key.push(i);
        }
    }

    /// Refuses the secret `field` used as a key by `what` (an index, a
    /// unique constraint, a reference): its values would sit in the index,
    /// the constraint's error messages and the referencing rows.
    pub(super) fn secret_key(&mut self, at: Span, field: &str, used_in: &'static str) {
        self.err(ResolveError::SecretKey {
            at,
            field: field.to_string(),
            used_in,
        });
    }

    pub(super) fn uniques(&mut self, d: &ast::EntityDecl, e: &mut Entity) {
        let mut sets: Vec<(Vec<usize>, Span)> = Vec::new();
        for f in &d.fields {
            if f.unique.as_ref().is_some_and(|u| u.value) {
                if let Some(&i) = self.field_index.get(&f.name.value) {
                    sets.push((vec![i], f.span));
                }
            }
        }
        for u in &d.unique {
            if u.value.is_empty() {
                self.err(ResolveError::EmptyUnique { at: u.span });
                continue;
            }
            let idx: Vec<usize> = u
                .value
                .iter()
                .filter_map(|n| self.field_ref(e, n))
                .collect();
            if idx.len() == u.value.len() && !idx.is_empty() && !self.repeated_field(&idx, &u.value)
            {
                sets.push((idx, u.span));
            }
        }
        let mut seen: HashSet<Vec<usize>> = HashSet::new();
        for (fields, span) in sets {
            if let Some(&f) = fields.iter().find(|&&f| e.fields[f].is_secret()) {
                let name = e.fields[f].name.schema.clone();
                self.secret_key(span, &name, "a unique constraint");
                continue;
            }
            let cols: Vec<&str> = fields
                .iter()
                .map(|&i| e.fields[i].name.sql.as_str())
                .collect();
            let name = constraint_name(&e.name.sql, &cols, "key");
            if !seen.insert(fields.clone()) {
                continue;
            }
            e.uniques.push(Unique { name, fields, span });
        }
    }

    pub(super) fn indexes(
        &mut self,
        d: &ast::EntityDecl,
        e: &mut Entity,
        enums: &HashMap<&str, &Enum>,
    ) {
        let mut index_names: HashMap<String, Span> = HashMap::new();
        for i in &d.indexes {
            let mut columns = Vec::new();
            for (n, desc) in &i.columns {
                if let Some(f) = self.field_ref(e, n) {
                    columns.push(IndexColumn {
                        field: f,
                        desc: *desc,
                    });
                }
            }
            if columns.len() != i.columns.len() {
                continue;
            }
            if let Some(c) = columns.iter().find(|c| e.fields[c.field].is_secret()) {
                let name = e.fields[c.field].name.schema.clone();
                self.secret_key(i.span, &name, "an index");
                continue;
            }
            let fields: Vec<usize> = columns.iter().map(|c| c.field).collect();
            if self.repeated_field(
                &fields,
                &i.columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            ) {
                continue;
            }
            if columns.is_empty() {
                self.err(ResolveError::EmptyIndex { at: i.span });
                continue;
            }
            let method = match i.method.as_ref().map(|m| m.as_str()) {
                None | Some("btree") => IndexMethod::BTree,
                Some("hash") => IndexMethod::Hash,
                Some("gin") => IndexMethod::Gin,
                Some("gist") => IndexMethod::Gist,
                Some("brin") => IndexMethod::Brin,
                Some(other) => {
                    let m = i.method.as_ref().map(|m| m.span).unwrap_or(i.span);
                    let methods = crate::syntax::INDEX_METHODS.iter().copied();
                    let suggestion = self.suggest(other, methods);
                    self.err(ResolveError::UnknownIndexMethod {
                        at: m,
                        method: other.to_string(),
                        suggestion,
                    });
                    IndexMethod::BTree
                }
            };
            let method_span = i.method.as_ref().map_or(i.span, |m| m.span);
            if method == IndexMethod::Hash && (columns.len() > 1 || i.unique) {
                self.err(ResolveError::HashIndexShape { at: method_span });
            }
            // Only btree indexes are unique or ordered; hash has its own message above.
            if matches!(
                method,
                IndexMethod::Gin | IndexMethod::Brin | IndexMethod::Gist
            ) {
                let m = match method {
                    IndexMethod::Gin => "gin",
                    IndexMethod::Brin => "brin",
                    _ => "gist",
                };
                if i.unique {
                    self.err(ResolveError::UniqueNonBtree {
                        at: method_span,
                        method: m,
                    });
                }
            }
            if method != IndexMethod::BTree {
                if let Some((n, _)) = i.columns.iter().find(|(_, desc)| *desc) {
                    self.err(ResolveError::OrderedNonBtree { at: n.span });
                }
            }
            let predicate = match &i.filter {
                None => None,
                Some(Filter::Equals(pairs)) => {
                    let mut out = Vec::new();
                    for (n, lit) in pairs {
                        let Some(f) = self.field_ref(e, n) else {
                            continue;
                        };
                        if e.fields[f].is_secret() {
                            self.secret_key(n.span, &n.value, "an index's `where:`");
                            continue;
                        }
                        let ty = e.fields[f].ty.clone();
                        if let Some(v) = self.default(lit, &ty, enums, ValueUse::IndexWhere) {
                            out.push((f, v));
                        }
                    }
                    Some(Predicate::Equals(out))
                }
                Some(Filter::Sql(sql)) => {
                    if sql.contains(';') || sql.contains("--") || sql.contains("/*") {
                        self.err(ResolveError::UnsafePredicate { at: sql.span });
                    } else if !balanced(sql) {
                        self.err(ResolveError::UnbalancedPredicate { at: sql.span });
                    }
                    Some(Predicate::Sql(sql.value.clone()))
                }
            };
            let cols: Vec<&str> = columns
                .iter()
                .map(|c| e.fields[c.field].name.sql.as_str())
                .collect();
            let name = match &i.name {
                Some(n) => {
                    if !is_snake_ident(n) {
                        self.bad_name("index", n, NameStyle::SnakeCase);
                    }
                    n.value.clone()
                }
                None => constraint_name(&e.name.sql, &cols, "idx"),
            };
            if let Some(&first) = index_names.get(&name) {
                if i.name.is_some() {
                    self.duplicate("index", &Spanned::new(name.clone(), i.span), first);
                } else {
                    // Nobody wrote this name: say where it comes from.
                    self.err(ResolveError::DerivedIndexNameTwice {
                        at: i.span,
                        name: name.clone(),
                        first,
                    });
                }
                continue;
            }
            index_names.insert(name.clone(), i.span);
            e.indexes.push(Index {
                name,
                columns,
                unique: i.unique,
                method,
                method_span,
                predicate,
                span: i.span,
            });
        }
    }

    pub(super) fn queries(
        &mut self,
        d: &ast::EntityDecl,
        e: &mut Entity,
        enums: &HashMap<&str, &Enum>,
    ) {
        let mut query_names: HashMap<&str, Span> = HashMap::new();
        for q in &d.queries {
            if !is_snake_ident(&q.name) {
                self.bad_name("query", &q.name, NameStyle::SnakeCase);
            }
            if let Some(&first) = query_names.get(q.name.as_str()) {
                self.duplicate("query", &q.name, first);
                continue;
            }
            query_names.insert(&q.name.value, q.name.span);
            let params: Vec<usize> = q
                .params
                .iter()
                .filter_map(|n| self.field_ref(e, n))
                .collect();
            for (n, &i) in q.params.iter().zip(&params) {
                if e.fields[i].is_secret() {
                    self.err(ResolveError::SecretQuery { at: n.span });
                }
            }
            let mut fixed = Vec::new();
            for (n, lit) in &q.fixed {
                let Some(f) = self.field_ref(e, n) else {
                    continue;
                };
                if e.fields[f].is_secret() {
                    self.err(ResolveError::SecretQuery { at: n.span });
                    continue;
                }
                let ty = e.fields[f].ty.clone();
                if let Some(v) = self.default(lit, &ty, enums, ValueUse::FinderWhere) {
                    fixed.push((f, v));
                }
            }
            let order = q
                .order
                .iter()
                .filter_map(|(n, desc)| {
                    Some(IndexColumn {
                        field: self.field_ref(e, n)?,
                        desc: *desc,
                    })
                })
                .collect();
            if let Some(l) = q.limit.as_ref().filter(|l| l.value == 0) {
                self.err(ResolveError::ZeroLimit { at: l.span });
            }
            if q.params.is_empty() && q.fixed.is_empty() && q.limit.is_none() && !q.incomplete {
                self.err(ResolveError::UnboundedQuery {
                    at: q.name.span,
                    query: q.name.value.clone(),
                });
            }
            e.queries.push(Query {
                name: Ident {
                    schema: q.name.value.clone(),
                    sql: q.name.value.clone(),
                    rust: q.name.value.clone(),
                },
                params,
                fixed,
                order,
                limit: q.limit.as_ref().map(|l| l.value),
                one: q.one,
                span: q.span,
            });
        }
    }

    /// Reports a field named twice in one key, constraint or index.
    fn repeated_field(&mut self, fields: &[usize], names: &[Spanned<String>]) -> bool {
        let mut seen = HashSet::new();
        for (f, n) in fields.iter().zip(names) {
            if !seen.insert(*f) {
                self.err(ResolveError::FieldListedTwice {
                    at: n.span,
                    field: n.value.clone(),
                });
                return true;
            }
        }
        false
    }
}

/// A predicate that cannot escape its `WHERE (...)`: parentheses balance
/// outside string literals, literals close, and no `"` or `$` quoting.
fn balanced(sql: &str) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    for c in sql.chars() {
        match (c, in_string) {
            ('\'', _) => in_string = !in_string,
            (_, true) => {}
            ('(', false) => depth += 1,
            (')', false) if depth == 0 => return false,
            (')', false) => depth -= 1,
            ('"' | '$', false) => return false,
            _ => {}
        }
    }
    depth == 0 && !in_string
}
