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
                self.err(ResolveError::SecretInCache {
                    at: c.span,
                    entity: e.name.schema.clone(),
                    secret: f.name.schema.clone(),
                    secret_at: f.span,
                });
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
                    self.err(ResolveError::SecretInSearch { at: n.span });
                } else if !matches!(
                    f.ty.scalar(),
                    ScalarType::String { .. } | ScalarType::Text | ScalarType::Json
                ) {
                    let ty = f.ty.clone();
                    self.err(ResolveError::NotText {
                        at: n.span,
                        field: n.value.clone(),
                        ty,
                    });
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
        what: &'static str,
    ) -> bool {
        match stores.get(&name.value) {
            Some(s) if s.kind.tag() == kind => true,
            Some(s) => {
                self.err(ResolveError::WrongStoreKind {
                    at: name.span,
                    what,
                    needs: kind,
                    store: name.value.clone(),
                    is: s.kind.tag(),
                });
                false
            }
            None if self.quiet(name) => false,
            None => {
                self.unknown_store(name, stores);
                false
            }
        }
    }

    /// Reports `name`, which names no declared store.
    pub(super) fn unknown_store(&mut self, name: &Spanned<String>, stores: &Stores) {
        // A store refused for its name (`my-cache`) is neither suggested
        // nor listed: its own error says what to call it.
        let valid: Vec<&String> = stores.keys().filter(|k| is_snake_ident(k)).collect();
        let suggestion = self.suggest(name, valid.iter().map(|k| k.as_str()));
        self.err(ResolveError::UnknownStore {
            at: name.span,
            name: name.value.clone(),
            suggestion,
            declared: valid.into_iter().cloned().collect(),
        });
    }

    /// A cache `ttl` within 1 ms ..= 365 days: 0 would refuse every fill
    /// (the cache silently off), and a longer one is a copy nobody expects
    /// to live that long (and near `u64::MAX` ms the SDK's expiry arithmetic
    /// would overflow). Redis itself takes up to ~292 million years.
    fn cache_ttl(&mut self, t: &Spanned<u64>) -> bool {
        const MAX_MS: u64 = 365 * 86_400_000;
        if (1..=MAX_MS).contains(&t.value) {
            return true;
        }
        self.err(ResolveError::CacheTtlOutOfRange {
            at: t.span,
            ttl_ms: t.value,
        });
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
                            self.err(ResolveError::EnumNotEntity {
                                at: target.span,
                                name: ent_name.to_string(),
                            });
                            continue;
                        }
                    }
                    let names = entities.iter().map(|e| e.name.schema.as_str());
                    let suggestion = self.suggest(ent_name, names);
                    self.err(ResolveError::UnknownReferencedEntity {
                        at: target.span,
                        name: ent_name.to_string(),
                        suggestion,
                        entities: entities.iter().map(|e| e.name.schema.clone()).collect(),
                    });
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
                        self.err(ResolveError::ReferenceToSeries {
                            at: target.span,
                            entity: ent_name.to_string(),
                        });
                        continue;
                    }
                    let (at, entity) = (target.span, ent_name.to_string());
                    self.err(match field_name {
                        Some(f) => ResolveError::UnknownReferencedField {
                            at,
                            entity,
                            field: f.to_string(),
                            fields: te.fields.iter().map(|f| f.name.schema.clone()).collect(),
                        },
                        None => ResolveError::AmbiguousReference { at, entity },
                    });
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
                    Some(ReferenceProblem::Array)
                } else if src.ty.scalar() != tf.ty.scalar()
                    && !same_family(src.ty.scalar(), tf.ty.scalar())
                {
                    Some(ReferenceProblem::TypeMismatch {
                        field: src.name.schema.clone(),
                        ty: src.ty.clone(),
                        entity: ent_name.to_string(),
                        target: tf.name.schema.clone(),
                        target_ty: tf.ty.clone(),
                    })
                } else if !unique_target {
                    Some(ReferenceProblem::NotUnique {
                        entity: ent_name.to_string(),
                        target: tf.name.schema.clone(),
                    })
                } else if let (Some(there), Some(here)) = (
                    stores
                        .at(te.store)
                        .filter(|_| te.store != entities[di].store),
                    stores.at(entities[di].store),
                ) {
                    Some(ReferenceProblem::OtherStore {
                        entity: ent_name.to_string(),
                        there: there.name.clone(),
                        here: here.name.clone(),
                    })
                } else {
                    None
                };
                if let Some(why) = problem {
                    self.err(ResolveError::BadReference {
                        at: target.span,
                        why,
                    });
                    continue;
                }
                let on_delete = match fd.on_delete.as_ref().map(|o| (o.as_str(), o.span)) {
                    None | Some(("no_action", _)) => OnDelete::NoAction,
                    Some(("restrict", _)) => OnDelete::Restrict,
                    Some(("cascade", _)) => OnDelete::Cascade,
                    Some(("set_null", s)) => {
                        if !src.nullable {
                            self.err(ResolveError::SetNullNotNullable { at: s });
                        }
                        OnDelete::SetNull
                    }
                    Some(("set_default", s)) => {
                        // Without a default PostgreSQL sets NULL: a NOT NULL
                        // column makes every delete of a referenced row fail.
                        if fd.default.is_none() {
                            self.err(ResolveError::SetDefaultWithoutDefault { at: s });
                        }
                        OnDelete::SetDefault
                    }
                    Some((other, s)) => {
                        let opts = crate::syntax::ON_DELETE_ACTIONS.iter().copied();
                        let suggestion = self.suggest(other, opts);
                        self.err(ResolveError::UnknownOnDelete {
                            at: s,
                            action: other.to_string(),
                            suggestion,
                        });
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
        self.unknown_store(to, stores);
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
                let names = entities.iter().map(|e| e.name.schema.as_str());
                let suggestion = self.suggest(&s.from, names);
                self.err(ResolveError::UnknownSyncSource {
                    at: s.from.span,
                    name: s.from.value.clone(),
                    suggestion,
                });
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
                    Some(SyncProblem::OwnStore)
                } else if !matches!(
                    store.kind.tag(),
                    StoreKindTag::ClickHouse | StoreKindTag::Elasticsearch
                ) {
                    Some(SyncProblem::NotACopyStore {
                        store: to.value.clone(),
                        kind: store.kind.tag(),
                    })
                } else if store.kind.tag() == StoreKindTag::Elasticsearch
                    && e.search.as_ref().map(|x| x.store) != Some(target)
                {
                    Some(SyncProblem::NoSearchSection {
                        entity: e.name.schema.clone(),
                        store: to.value.clone(),
                    })
                } else if e.is_series() {
                    Some(SyncProblem::Series)
                } else {
                    None
                };
                if let Some(why) = why {
                    self.err(ResolveError::BadSync { at: to.span, why });
                    continue;
                }
                if !seen.insert((e.name.schema.clone(), to.value.clone())) {
                    self.err(ResolveError::SyncTwice { at: to.span });
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
