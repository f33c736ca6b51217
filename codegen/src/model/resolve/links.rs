//! Links between items: cache and search stores, references, table names, sync rules.

use super::*;

impl Resolver<'_> {
    pub(super) fn cache_search(&mut self, d: &ast::EntityDecl, e: &mut Entity, stores: &Stores) {
        if let Some(c) = &d.cache {
            // Refused rather than dropped: a cached copy without the
            // secret would be a second shape of the entity to keep apart
            // from the real one, and one write of it back would blank the
            // secret.
            if let Some(f) = e.fields.iter().find(|f| f.is_secret()) {
                self.err(
                    Problem::new(
                        Code::SecretInCache,
                        c.span,
                        format!("`{}` has a secret field and cannot be cached", e.name.schema),
                    )
                    .label("cache declared here")
                    .also(f.span, format!("`{}` is a secret", f.name.schema))
                    .help("secrets are never copied to a cache: move the secret to an entity of its own (keyed like this one) without `cache:`, or remove `cache:`"),
                );
            }
            let ttl_ok = c.ttl.as_ref().is_none_or(|t| self.cache_ttl(t));
            if self.store_of_kind(&c.store, stores, StoreKindTag::Redis, "cache") && ttl_ok {
                e.cache = Some(Cache {
                    store: stores.id(&c.store).unwrap_or(StoreId::NONE),
                    ttl_ms: c.ttl.as_ref().map(|t| t.value),
                });
            }
        }
        if let Some(s) = &d.search {
            let ok = self.store_of_kind(&s.store, stores, StoreKindTag::Elasticsearch, "search");
            let mut text = Vec::new();
            for n in &s.text {
                let Some(i) = self.field_ref(e, n) else {
                    continue;
                };
                let f = &e.fields[i];
                if f.is_secret() {
                    self.err(
                        Problem::new(
                            Code::SecretInSearch,
                            n.span,
                            "a secret field cannot be searchable",
                        )
                        .label("secret field")
                        .help("secrets are never copied to caches, search or analytics"),
                    );
                } else if !matches!(
                    f.ty.scalar(),
                    ScalarType::String { .. } | ScalarType::Text | ScalarType::Json
                ) {
                    self.err(
                        Problem::new(Code::BadSearchField, n.span, format!("`{}` is not text", n.value))
                            .label(format!("is {}", f.ty))
                            .help("full-text fields are string, text or json; other fields are indexed by value anyway"),
                    );
                }
                text.push(i);
            }
            if let Some(store) = stores.id(&s.store).filter(|_| ok) {
                e.search = Some(Search { store, text });
            }
        }
    }

    pub(super) fn store_of_kind(
        &mut self,
        name: &Spanned<String>,
        stores: &Stores,
        kind: StoreKindTag,
        what: &str,
    ) -> bool {
        match stores.get(&name.value) {
            Some(s) if s.kind.tag() == kind => true,
            Some(s) => {
                self.err(
                    Problem::new(
                        Code::WrongStoreKind,
                        name.span,
                        format!("`{what}` needs a {} store", kind.as_str()),
                    )
                    .label(format!(
                        "`{}` is a {} store",
                        name.value,
                        s.kind.tag().as_str()
                    ))
                    .help(format!(
                        "declare a store with `kind: {}` and name it here",
                        kind.as_str()
                    )),
                );
                false
            }
            None if self.quiet(name) => false,
            None => {
                self.err(
                    Problem::new(
                        Code::UnknownStore,
                        name.span,
                        format!("no store named `{}`", name.value),
                    )
                    .label("unknown store")
                    .suggest_when(self.probs, name, stores.keys().map(String::as_str))
                    .help_or(format!("declared stores: {}", list(stores.keys()))),
                );
                false
            }
        }
    }

    /// A cache `ttl` within 1 ms ..= 365 days: 0 would refuse every fill
    /// (the cache silently off), and a longer one is a copy nobody expects
    /// to live that long (and near `u64::MAX` ms the SDK's expiry arithmetic
    /// would overflow). Redis itself takes up to ~292 million years.
    fn cache_ttl(&mut self, t: &Spanned<u64>) -> bool {
        const MAX_MS: u64 = 365 * 86_400_000;
        let why = match t.value {
            0 => "a `ttl` of 0 would keep nothing: every fill is refused and the cache is off",
            v if v > MAX_MS => "a `ttl` longer than 365 days",
            _ => return true,
        };
        self.err(
            Problem::new(Code::OutOfRange, t.span, format!("`ttl` is out of range: {why}"))
                .label(format!("{} ms", t.value))
                .help("write a ttl from `1ms` to `365d`; to cache without expiry choose a long ttl such as `30d`, to turn caching off remove `cache:`"),
        );
        false
    }

    /// Second pass: references, once every entity's fields are known.
    pub(super) fn references(
        &mut self,
        decls: &[&ast::EntityDecl],
        entities: &mut [Entity],
        stores: &Stores,
    ) {
        let by_name: HashMap<String, usize> = (entities.iter().enumerate())
            .map(|(i, e)| (e.name.schema.clone(), i))
            .collect();
        for (di, d) in decls.iter().enumerate() {
            let positions: HashMap<&str, usize> = (entities[di].fields.iter().enumerate())
                .map(|(i, f)| (f.name.schema.as_str(), i))
                .collect();
            let found: Vec<(&ast::FieldDecl, usize)> = (d.fields.iter())
                .filter(|fd| fd.references.is_some())
                .filter_map(|fd| Some((fd, *positions.get(fd.name.as_str())?)))
                .collect();
            for (fd, fi) in found {
                let Some(target) = &fd.references else {
                    continue;
                };
                let (ent_name, field_name) = match target.split_once('.') {
                    Some((a, b)) => (a, Some(b)),
                    None => (target.as_str(), None),
                };
                let Some(tei) = by_name.get(ent_name).copied() else {
                    if self.quiet(ent_name) {
                        continue;
                    }
                    if let ScalarType::Enum(en) = entities[di].fields[fi].ty.scalar() {
                        if en == ent_name {
                            self.err(
                                Problem::new(Code::UnknownEntity, target.span, format!("`{ent_name}` is an enum, not an entity"))
                                    .label("not an entity")
                                    .help(format!("the type `{ent_name}` already limits the field to the enum's values: remove `references`")),
                            );
                            continue;
                        }
                    }
                    self.err(
                        Problem::new(Code::UnknownEntity, target.span, format!("no entity named `{ent_name}`"))
                            .label("unknown entity")
                            .suggest_when(self.probs, ent_name, entities.iter().map(|e| e.name.schema.as_str()))
                            .help_or(format!(
                                "`references` names an entity (`Entity` or `Entity.field`); entities: {}",
                                list(entities.iter().map(|e| &e.name.schema))
                            )),
                    );
                    continue;
                };
                let te = &entities[tei];
                let tfi = match field_name {
                    Some(f) => te.fields.iter().position(|x| x.name.schema == f),
                    None if te.key.len() == 1 => Some(te.key[0]),
                    None => None,
                };
                let Some(tfi) = tfi else {
                    let missing = field_name.unwrap_or_default();
                    let quiet = self
                        .broken_fields
                        .contains(&(te.name.schema.clone(), missing.to_string()))
                        || (field_name.is_none() && te.key.is_empty() && !te.is_series());
                    if quiet {
                        // A broken key field, or a record without a key: both already reported.
                        continue;
                    }
                    if te.is_series() {
                        self.err(
                            Problem::new(
                                Code::BadReference,
                                target.span,
                                format!("`{ent_name}` is a time-series entity"),
                            )
                            .label("cannot reference this")
                            .help("a reference points at a record entity's key or unique field"),
                        );
                        continue;
                    }
                    let help = match field_name {
                        Some(_) => {
                            format!("fields: {}", list(te.fields.iter().map(|f| &f.name.schema)))
                        }
                        None => format!(
                            "`{ent_name}` has no single-field key; write `{ent_name}.field`"
                        ),
                    };
                    let msg = match field_name {
                        Some(f) => format!("entity `{ent_name}` has no field `{f}`"),
                        None => format!("cannot tell which field of `{ent_name}` is referenced"),
                    };
                    self.err(
                        Problem::new(Code::UnknownField, target.span, msg)
                            .label("bad reference")
                            .help(help),
                    );
                    continue;
                };
                let tf = &te.fields[tfi];
                let src = &entities[di].fields[fi];
                if let Some(secret) = [src, tf].into_iter().find(|f| f.is_secret()) {
                    let name = secret.name.schema.clone();
                    self.secret_key(target.span, &name, "a reference");
                    continue;
                }
                let unique_target = (te.key.len() == 1 && te.fields[te.key[0]].name == tf.name)
                    || te
                        .uniques
                        .iter()
                        .any(|u| u.fields.len() == 1 && te.fields[u.fields[0]].name == tf.name);
                let problem = if src.ty.is_array() || tf.ty.is_array() {
                    Some("an array field cannot be a reference".to_string())
                } else if src.ty.scalar() != tf.ty.scalar()
                    && !same_family(src.ty.scalar(), tf.ty.scalar())
                {
                    Some(format!(
                        "`{}` is {} but `{}.{}` is {}",
                        src.name.schema, src.ty, ent_name, tf.name.schema, tf.ty
                    ))
                } else if !unique_target {
                    Some(format!(
                        "`{}.{}` is neither the key nor unique",
                        ent_name, tf.name.schema
                    ))
                } else if let (Some(there), Some(here)) = (
                    stores
                        .at(te.store)
                        .filter(|_| te.store != entities[di].store),
                    stores.at(entities[di].store),
                ) {
                    Some(format!(
                        "`{ent_name}` lives in store `{}`, not `{}`",
                        there.name, here.name
                    ))
                } else {
                    None
                };
                if let Some(msg) = problem {
                    self.err(
                        Problem::new(Code::BadReference, target.span, msg)
                            .label("cannot reference this")
                            .help("a reference points at a key or unique field of the same type in the same store"),
                    );
                    continue;
                }
                let on_delete = match fd.on_delete.as_ref().map(|o| (o.as_str(), o.span)) {
                    None | Some(("no_action", _)) => OnDelete::NoAction,
                    Some(("restrict", _)) => OnDelete::Restrict,
                    Some(("cascade", _)) => OnDelete::Cascade,
                    Some(("set_null", s)) => {
                        if !src.nullable {
                            self.err(
                                Problem::new(
                                    Code::BadReference,
                                    s,
                                    "`on_delete: set_null` needs a nullable field",
                                )
                                .label("field is not nullable")
                                .help("add `nullable: true` or pick `cascade` / `restrict`"),
                            );
                        }
                        OnDelete::SetNull
                    }
                    Some(("set_default", s)) => {
                        // Without a default PostgreSQL sets NULL: a NOT NULL
                        // column makes every delete of a referenced row fail.
                        if fd.default.is_none() {
                            self.err(
                                Problem::new(
                                    Code::BadReference,
                                    s,
                                    "`on_delete: set_default` needs a `default` on the field",
                                )
                                .label("field has no default")
                                .help("give the field a `default:` (a key of the referenced entity), or pick `set_null`, `cascade` or `restrict`"),
                            );
                        }
                        OnDelete::SetDefault
                    }
                    Some((other, s)) => {
                        let opts = crate::syntax::ON_DELETE_ACTIONS.iter().copied();
                        self.err(
                            Problem::new(Code::BadReference, s, format!("unknown `on_delete` action `{other}`"))
                                .label("not an action")
                                .suggest_when(self.probs, other, opts)
                                .help_or("actions are no_action, restrict, cascade, set_null and set_default"),
                        );
                        OnDelete::NoAction
                    }
                };
                let reference = Reference {
                    entity: EntityId::new(tei),
                    field: FieldId::new(tfi),
                    on_delete,
                };
                entities[di].fields[fi].references = Some(reference);
            }
        }
    }

    /// Reports `to`, a sync rule's target that names no store.
    fn unknown_sync_store(&mut self, to: &ast::Name, stores: &Stores) {
        if self.quiet(to) {
            return;
        }
        self.err(
            Problem::new(
                Code::UnknownStore,
                to.span,
                format!("no store named `{}`", to.value),
            )
            .label("unknown store")
            .suggest_when(self.probs, to, stores.keys().map(String::as_str))
            .help_or(format!("declared stores: {}", list(stores.keys()))),
        );
    }

    pub(super) fn sync(
        &mut self,
        files: &[ast::SchemaFile],
        stores: &Stores,
        entities: &[Entity],
    ) -> Vec<SyncTarget> {
        let mut out: Vec<SyncTarget> = Vec::new();
        let by_name: HashMap<&str, EntityId> = (entities.iter().enumerate())
            .map(|(i, e)| (e.name.schema.as_str(), EntityId::new(i)))
            .collect();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        for s in files.iter().flat_map(|f| &f.sync) {
            let Some(&ei) = by_name.get(s.from.as_str()) else {
                if self.quiet(&s.from) {
                    continue;
                }
                self.err(
                    Problem::new(
                        Code::UnknownEntity,
                        s.from.span,
                        format!("no entity named `{}`", s.from.value),
                    )
                    .label("unknown entity")
                    .suggest_when(
                        self.probs,
                        &s.from,
                        entities.iter().map(|e| e.name.schema.as_str()),
                    )
                    .help_or("`from` names an entity declared under `entities:`"),
                );
                // The stores are still checked: every problem of a run.
                for to in s.to.iter().filter(|to| stores.id(to).is_none()) {
                    self.unknown_sync_store(to, stores);
                }
                continue;
            };
            let e = &entities[ei.index()];
            for to in &s.to {
                let found = stores.id(to).map(|id| (id, &stores[&to.value]));
                let Some((target, store)) = found else {
                    self.unknown_sync_store(to, stores);
                    continue;
                };
                let why = if target == e.store {
                    Some("an entity cannot be synced to its own store".to_string())
                } else if !matches!(
                    store.kind.tag(),
                    StoreKindTag::ClickHouse | StoreKindTag::Elasticsearch
                ) {
                    Some(format!(
                        "sync targets are clickhouse or elasticsearch stores; `{}` is {}",
                        to.value,
                        store.kind.tag().as_str()
                    ))
                } else if store.kind.tag() == StoreKindTag::Elasticsearch
                    && e.search.as_ref().map(|x| x.store) != Some(target)
                {
                    Some(format!(
                        "`{}` has no `search: {{ store: {} }}` section",
                        e.name.schema, to.value
                    ))
                } else if e.is_series() {
                    Some("time-series entities are not synced".to_string())
                } else {
                    None
                };
                if let Some(msg) = why {
                    self.err(
                        Problem::new(Code::BadSync, to.span, msg)
                            .label("cannot sync here")
                            .help("sync copies a record entity from its home store to an analytics (clickhouse) or search (elasticsearch) store"),
                    );
                    continue;
                }
                if !seen.insert((e.name.schema.clone(), to.value.clone())) {
                    self.err(
                        Problem::new(
                            Code::DuplicateName,
                            to.span,
                            "this sync rule is given twice",
                        )
                        .label("repeated")
                        .help("remove one of the two rules"),
                    );
                    continue;
                }
                out.push(SyncTarget {
                    entity: ei,
                    store: target,
                    kind: store.kind.tag(),
                    fields: e.copy.clone(),
                    version: VersionSource::CommitLsn,
                    span: s.span,
                });
            }
        }
        out
    }
}
