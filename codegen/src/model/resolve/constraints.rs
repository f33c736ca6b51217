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
                self.err(
                    Problem::new(Code::MissingKey, d.name.span, format!("entity `{}` has no primary key", d.name.value))
                        .label("needs `key:`")
                        .help("add `key: id` (or `key: [a, b]` for a composite key); an `id` field is the key by default"),
                );
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
                self.err(
                    Problem::new(
                        Code::DuplicateName,
                        n.span,
                        format!("`{}` is in the key twice", n.value),
                    )
                    .label("repeated")
                    .help("name each key field once"),
                );
                continue;
            }
            let f = &e.fields[i];
            let bad = if f.nullable {
                Some("a key field cannot be nullable")
            } else if matches!(
                f.ty.scalar(),
                ScalarType::Json | ScalarType::Secret | ScalarType::F64
            ) || f.ty.is_array()
            {
                Some("a key field cannot be json, secret, f64 or an array")
            } else {
                None
            };
            if let Some(why) = bad {
                self.err(
                    Problem::new(Code::BadKey, n.span, format!("`{}` cannot be part of the primary key", n.value))
                        .label(why)
                        .help("key on uuid, string, integer, decimal, enum or time fields that are not nullable"),
                );
            }
            e.key.push(i);
        }
    }

    /// Refuses the secret `field` used as a key by `what` (an index, a
    /// unique constraint, a reference): its values would sit in the index,
    /// the constraint's error messages and the referencing rows.
    pub(super) fn secret_key(&mut self, at: Span, field: &str, what: &str) {
        self.err(
            Problem::new(Code::SecretKey, at, format!("the secret `{field}` cannot be used in {what}"))
                .label("secret field")
                .help("a secret is never a key (an index, a unique constraint or a reference would keep and show its values): key on another field, or store a hash of the secret in a field of its own and index that"),
        );
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
                self.err(
                    Problem::new(
                        Code::BadUnique,
                        u.span,
                        "this unique constraint lists no fields",
                    )
                    .label("empty")
                    .help("list its fields, as in `[account_id, symbol]`, or remove the item"),
                );
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
                self.err(
                    Problem::new(
                        Code::EmptyIndex,
                        i.span,
                        "an index needs at least one field",
                    )
                    .label("empty")
                    .help("list the fields to index: `[symbol, created_at desc]`"),
                );
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
                    self.err(
                        Problem::new(Code::BadIndex, m, format!("unknown index method `{other}`"))
                            .label("not a method")
                            .suggest_when(
                                self.probs,
                                other,
                                crate::syntax::INDEX_METHODS.iter().copied(),
                            )
                            .help_or("methods are btree, hash, gin, gist and brin"),
                    );
                    IndexMethod::BTree
                }
            };
            let method_span = i.method.as_ref().map_or(i.span, |m| m.span);
            if method == IndexMethod::Hash && (columns.len() > 1 || i.unique) {
                self.err(
                    Problem::new(
                        Code::BadIndex,
                        method_span,
                        "a hash index covers one field and cannot be unique",
                    )
                    .label("hash index")
                    .help("use the default btree method for composite or unique indexes"),
                );
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
                    self.err(
                        Problem::new(Code::BadIndex, method_span, format!("a {m} index cannot be unique"))
                            .label(format!("{m} index"))
                            .help("only btree (the default) indexes are unique: drop `unique` or the `method`"),
                    );
                }
            }
            if method != IndexMethod::BTree {
                if let Some((n, _)) = i.columns.iter().find(|(_, desc)| *desc) {
                    self.err(
                        Problem::new(Code::BadIndex, n.span, "only a btree index can be ordered")
                            .label("`desc` on a non-btree index")
                            .help("drop `desc`, or drop the `method` to use btree"),
                    );
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
                        if let Some(v) = self.default(lit, &ty, enums) {
                            out.push((f, v));
                        }
                    }
                    Some(Predicate::Equals(out))
                }
                Some(Filter::Sql(sql)) => {
                    if sql.contains(';') || sql.contains("--") || sql.contains("/*") {
                        self.err(
                            Problem::new(Code::BadPredicate, sql.span, "an index predicate may not contain `;` or comments")
                                .label("unsafe SQL")
                                .help("write a single boolean expression, or use `where: { field: value }`"),
                        );
                    } else if !balanced(sql) {
                        self.err(
                            Problem::new(Code::BadPredicate, sql.span, "unbalanced quotes or parentheses in an index predicate")
                                .label("does not close")
                                .help("close every `(` and `'`, and write identifiers without `\"` or `$`"),
                        );
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
                        self.bad_name("index", n, "snake_case");
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
                    let at = if self.probs.wants_suggestions() {
                        self.sources.location(first)
                    } else {
                        "another place".to_string()
                    };
                    self.err(
                        Problem::new(Code::DuplicateName, i.span, format!("two indexes on the same fields get the derived name `{name}`"))
                            .label("second index on these fields")
                            .help(format!("the first is at {at}; give one of them a `name:`, or remove this one if it is the same index")),
                    );
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
                self.bad_name("query", &q.name, "snake_case");
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
                    self.err(
                        Problem::new(Code::SecretQuery, n.span, "a finder cannot look up by a secret")
                            .label("secret field")
                            .help("fetch the row by another field and compare the secret in constant time"),
                    );
                }
            }
            let mut fixed = Vec::new();
            for (n, lit) in &q.fixed {
                let Some(f) = self.field_ref(e, n) else {
                    continue;
                };
                let ty = e.fields[f].ty.clone();
                if let Some(v) = self.default(lit, &ty, enums) {
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
                self.err(
                    Problem::new(Code::BadQuery, l.span, "`limit: 0` returns nothing")
                        .label("zero")
                        .help("give a limit of at least 1, or leave `limit` out"),
                );
            }
            if q.params.is_empty() && q.fixed.is_empty() && q.limit.is_none() && !q.incomplete {
                self.err(
                    Problem::new(Code::UnboundedQuery, q.name.span, format!("query `{}` has no `where` and no `limit`", q.name.value))
                        .label("reads the whole table")
                        .help("add `where:` or `limit:`; use the repository's paginated `list` to read everything"),
                );
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
                self.err(
                    Problem::new(
                        Code::DuplicateName,
                        n.span,
                        format!("`{}` is listed twice", n.value),
                    )
                    .label("repeated")
                    .help("name each field once"),
                );
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
