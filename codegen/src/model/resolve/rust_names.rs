//! Names as the generated Rust spells them. Every name the language accepts
//! must become a Rust item that compiles and clashes with nothing generated:
//! `_` cannot name a module, a function or a method; `self` and `self_` are
//! both spelt `self_`; an entity `NewOrder` is also the insert type of
//! `Order`; a finder `list_by_symbol` is also the listing method of a sort
//! field `symbol`. Such names are refused here, at the name, rather than
//! left to fail in rustc (or panic in the emitter).
//!
//! The generated names are listed in [`crate::rust::check::names`], beside
//! the Rust back end that emits them.

use super::*;
use crate::rust::check::names as generated;

/// One Rust namespace: each taken name, who took it, and where.
#[derive(Default)]
struct Namespace {
    taken: HashMap<String, (String, Span)>,
}

impl Namespace {
    /// Records `rust` as taken by `who`; returns the earlier holder when taken.
    fn take(&mut self, rust: String, who: String, at: Span) -> Option<(String, Span)> {
        match self.taken.get(&rust) {
            Some(first) => Some(first.clone()),
            None => {
                self.taken.insert(rust, (who, at));
                None
            }
        }
    }
}

impl Resolver<'_> {
    pub(super) fn rust_names(
        &mut self,
        files: &[ast::SchemaFile],
        decls: &[&ast::EntityDecl],
        entities: &[Entity],
        stores: &Stores,
    ) {
        self.store_rust_names(files, stores);
        self.type_rust_names(files, decls, entities, stores);
        for (d, e) in decls.iter().zip(entities) {
            self.field_rust_names(d, e, stores);
            if is_pg_record(e, stores) {
                self.finder_rust_names(d, e);
            }
        }
    }

    /// Store names become Rust modules (`clickhouse::<store>`, one file of
    /// modules per kind) and, for a postgres store, the functions
    /// `<store>_pool_config`, `connect_<store>` and `connect_<store>_replicated`
    /// (a redis store: `<store>_cache_config` and `connect_<store>`).
    fn store_rust_names(&mut self, files: &[ast::SchemaFile], stores: &Stores) {
        let mut modules: HashMap<StoreKindTag, Namespace> = HashMap::new();
        let mut functions = Namespace::default();
        for d in files.iter().flat_map(|f| &f.stores) {
            let Some(store) = stores.get(&d.name.value) else {
                continue;
            };
            if store.span != d.span {
                continue; // a second declaration, already reported
            }
            // `_` would be a module, or the unnameable `ddl::_` constant.
            if d.name.value == "_" {
                self.unusable_rust_name("store", &d.name, "a Rust module or constant");
                continue;
            }
            let who = format!("store `{}`", d.name.value);
            let kind = store.kind.tag();
            if generated::STORES_WITH_MODULES.contains(&kind) {
                let module = crate::names::rust_ident(&d.name.value);
                let taken = modules.entry(kind).or_default();
                if let Some(first) = taken.take(module.clone(), who.clone(), d.name.span) {
                    self.rust_clash_with("store", &d.name, &module, "module", first);
                }
            } else if matches!(kind, StoreKindTag::Postgres | StoreKindTag::Redis) {
                for f in generated::store_functions(store) {
                    if let Some(first) = functions.take(f.clone(), who.clone(), d.name.span) {
                        self.rust_clash_with("store", &d.name, &f, "function", first);
                        break;
                    }
                }
            }
        }
    }

    /// Entity and enum names share the generated module's type namespace with
    /// the types derived from each postgres record entity (`New<E>`,
    /// `<E>Patch`, `<E>Key`). Two user names meeting are reported by
    /// [`Resolver::clashes`]; here a user name meets a derived one.
    fn type_rust_names(
        &mut self,
        files: &[ast::SchemaFile],
        decls: &[&ast::EntityDecl],
        entities: &[Entity],
        stores: &Stores,
    ) {
        let mut derived: HashMap<String, (String, Span)> = HashMap::new();
        for (d, e) in decls.iter().zip(entities) {
            if !is_pg_record(e, stores) {
                continue;
            }
            for (t, what) in generated::entity_types(&d.name.value) {
                let who = format!("the {what} of entity `{}`", d.name.value);
                if let Some(first) = derived.get(&t).cloned() {
                    self.rust_clash_with("entity", &d.name, &t, what, first);
                    break;
                }
                derived.insert(t, (who, d.name.span));
            }
        }
        let names = (files
            .iter()
            .flat_map(|f| &f.enums)
            .map(|d| ("enum", &d.name)))
        .chain(decls.iter().map(|d| ("entity", &d.name)));
        for (what, name) in names {
            let hidden = if generated::PRELUDE.contains(&name.as_str()) {
                Some(false)
            } else if what == "enum" && generated::GENERIC_PARAMS.contains(&name.as_str()) {
                Some(true)
            } else {
                None
            };
            if let Some(type_param) = hidden {
                self.err(ResolveError::HiddenRustName {
                    at: name.span,
                    what,
                    name: name.value.clone(),
                    type_param,
                });
                continue;
            }
            if let Some(first) = derived.get(&name.value).cloned() {
                self.rust_clash_with(what, name, &name.value, "type", first);
            }
        }
    }

    /// Fields become struct fields (and finder parameters): two fields spelt
    /// alike in Rust, or a field named like a generated member, cannot be.
    fn field_rust_names(&mut self, d: &ast::EntityDecl, e: &Entity, stores: &Stores) {
        let mut members = Namespace::default();
        let pg = is_pg_record(e, stores);
        let params: HashSet<usize> = e.queries.iter().flat_map(|q| q.params.clone()).collect();
        let decls: HashMap<&str, &ast::FieldDecl> =
            d.fields.iter().map(|x| (x.name.as_str(), x)).collect();
        for (i, f) in e.fields.iter().enumerate() {
            // Maintained columns have no declaration of their own.
            let Some(fd) = decls.get(f.name.schema.as_str()) else {
                continue;
            };
            let rust = crate::names::rust_ident(&f.name.rust);
            let who = format!("field `{}`", f.name.schema);
            if let Some(first) = members.take(rust.clone(), who, fd.name.span) {
                self.rust_clash_with("field", &fd.name, &rust, "field", first);
                continue;
            }
            if pg && e.version.is_some() && f.name.rust == generated::EXPECTED_VERSION {
                self.reserved_member(&fd.name, Member::ExpectedVersion);
            } else if pg && e.version.is_some() && f.name.rust == generated::ANY_VERSION {
                self.reserved_member(&fd.name, Member::AnyVersion);
            } else if pg && is_increment_of_a_number_field(e, &f.name.rust) {
                self.reserved_member(&fd.name, Member::Increment);
            } else if pg
                && params.contains(&i)
                && f.name.rust.starts_with(generated::RESERVED_PREFIX)
            {
                self.reserved_member(&fd.name, Member::FinderParameter);
            }
        }
    }

    /// Finders become methods beside the generated repository methods.
    fn finder_rust_names(&mut self, d: &ast::EntityDecl, e: &Entity) {
        let mut methods = Namespace::default();
        for m in generated::REPOSITORY_METHODS {
            methods.take(
                m.to_string(),
                format!("the generated method `{m}`"),
                d.name.span,
            );
        }
        for &i in &crate::rust::check::sort_fields(e) {
            let m = generated::list_by(&e.fields[i].name.rust);
            let who = format!(
                "the listing method of sort field `{}`",
                e.fields[i].name.schema
            );
            methods.take(m, who, e.fields[i].span);
        }
        let decls: HashMap<&str, &ast::QueryDecl> =
            d.queries.iter().map(|x| (x.name.as_str(), x)).collect();
        for q in &e.queries {
            let Some(qd) = decls.get(q.name.schema.as_str()) else {
                continue;
            };
            if q.name.rust == "_" {
                self.unusable_rust_name("query", &qd.name, "a Rust method");
                continue;
            }
            if q.name.rust.starts_with(generated::RESERVED_PREFIX) {
                self.reserved_member(&qd.name, Member::HelperMethod);
                continue;
            }
            let rust = generated::finder_method(&q.name.rust);
            let who = format!("query `{}`", q.name.schema);
            if let Some(first) = methods.take(rust.clone(), who, qd.name.span) {
                self.rust_clash_with("query", &qd.name, &rust, "method", first);
            }
        }
    }

    fn unusable_rust_name(
        &mut self,
        what: &'static str,
        name: &Spanned<String>,
        item: &'static str,
    ) {
        self.err(ResolveError::UnusableRustName {
            at: name.span,
            what,
            name: name.value.clone(),
            item,
        });
    }

    fn reserved_member(&mut self, name: &Spanned<String>, member: Member) {
        self.err(ResolveError::ReservedMember {
            at: name.span,
            name: name.value.clone(),
            member,
        });
    }

    fn rust_clash_with(
        &mut self,
        what: &'static str,
        name: &Spanned<String>,
        rust: &str,
        item: &'static str,
        (other, other_span): (String, Span),
    ) {
        self.err(ResolveError::RustNameClash {
            at: name.span,
            what,
            name: name.value.clone(),
            rust: rust.to_string(),
            item,
            other,
            other_span,
        });
    }
}

fn is_pg_record(e: &Entity, stores: &Stores) -> bool {
    e.kind == EntityKind::Record
        && stores
            .at(e.store)
            .is_some_and(|s| s.kind.tag() == StoreKindTag::Postgres)
}

/// Whether `name` is `add_<field>` of a number field of `e` that a patch
/// can increment (a data field outside the key, not an array).
fn is_increment_of_a_number_field(e: &Entity, name: &str) -> bool {
    use crate::model::{FieldRole, ScalarType as S};
    let Some(target) = name.strip_prefix(generated::INCREMENT_PREFIX) else {
        return false;
    };
    e.fields.iter().enumerate().any(|(i, g)| {
        g.name.rust == target
            && g.role == FieldRole::Data
            && !e.key.contains(&i)
            && !g.ty.is_array()
            && matches!(
                g.ty.scalar(),
                S::I16 | S::I32 | S::I64 | S::F64 | S::Decimal { .. }
            )
    })
}
