//! Resolution and validation: the schema AST of every file → one checked [`Model`].
//!
//! The passes run in order (stores, enums, entity shells, fields, keys and
//! constraints, queries, references, copy projections, enum homes, name
//! clashes, sync targets, limits) and each collects every problem it finds.

mod clashes;
mod constraints;
mod entities;
mod enums;
pub mod error;
mod events;
mod fields;
mod limits;
mod links;
mod rust_names;
mod stores;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use heck::{ToSnakeCase, ToUpperCamelCase};

use super::types::{parse_type, type_alias, TypeError, BUILTIN_TYPES};
use super::*;
use crate::diagnostics::Problems;
use crate::names::{is_enum_value, is_snake_ident, is_type_ident, MAX_SQL_IDENT};
use crate::source::Spanned;
use crate::syntax::ast::{self, DefaultLit, Filter};
use error::{
    BadRename, DefaultRule, Member, NameStyle, PoolLimit, ReferenceProblem, ResolveError,
    SyncProblem, TakenName, ValueUse,
};

/// What the resolver built: the model, and whether it is whole.
pub struct Resolved {
    /// Everything that could be resolved; a refused schema's model lacks
    /// what its problems are about.
    pub model: Model,
    /// No problem was found: the model is checked and back ends may read it.
    pub complete: bool,
}

/// Builds the model from every file's AST; `complete` is false when any
/// problem was found.
pub fn resolve(files: &[ast::SchemaFile], probs: &mut Problems) -> Resolved {
    let before = probs.list.len();
    let mut r = Resolver {
        probs,
        incomplete: files.iter().any(|f| f.incomplete),
        broken: files
            .iter()
            .flat_map(|f| f.broken.iter().cloned())
            .collect(),
        broken_fields: HashSet::new(),
        field_index: HashMap::new(),
        fields_unknown: false,
        stores_broken: files.iter().any(|f| f.broken_store),
        storeless_reported: false,
        entity_names: (files.iter().flat_map(|f| &f.entities))
            .map(|e| e.name.value.clone())
            .collect(),
    };
    let stores = Stores::new(r.stores(files));
    let mut enums = r.enums(files);
    let enum_names: HashMap<&str, &Enum> =
        enums.iter().map(|e| (e.name.schema.as_str(), e)).collect();
    let decls = r.unique_entities(files);
    let mut entities: Vec<Entity> = decls
        .iter()
        .map(|d| r.entity(d, &stores, &enum_names))
        .collect();
    r.references(&decls, &mut entities, &stores);
    copy_projection(&mut entities);
    enums::enum_homes(&mut enums, &entities, &stores);
    r.clashes(&decls, &entities, &enums, &stores);
    r.rust_names(files, &decls, &entities, &stores);
    let sync = r.sync(files, &stores, &entities);
    r.limits(&decls, &entities, &sync);
    Resolved {
        complete: probs_len(r.probs) == before,
        model: Model {
            stores: stores.into_list(),
            enums,
            entities,
            sync,
        },
    }
}

/// The declared stores by name (what the passes read, through `Deref`),
/// with each one's id in [`Model::stores`] (name order) at hand: an id is
/// found and read in constant time, however many stores there are.
struct Stores {
    map: BTreeMap<String, Store>,
    ids: HashMap<String, StoreId>,
    names: Vec<String>,
}

impl Stores {
    fn new(map: BTreeMap<String, Store>) -> Self {
        let names: Vec<String> = map.keys().cloned().collect();
        let ids = (names.iter().enumerate())
            .map(|(i, n)| (n.clone(), StoreId::new(i)))
            .collect();
        Stores { map, ids, names }
    }
    /// The id of store `name`, if it is declared.
    fn id(&self, name: &str) -> Option<StoreId> {
        self.ids.get(name).copied()
    }
    /// The store `id` ([`StoreId::NONE`] is none).
    fn at(&self, id: StoreId) -> Option<&Store> {
        self.names.get(id.index()).and_then(|n| self.map.get(n))
    }
    /// [`Model::stores`]: in name order, so each id is its place.
    fn into_list(self) -> Vec<Store> {
        self.map.into_values().collect()
    }
}

impl std::ops::Deref for Stores {
    type Target = BTreeMap<String, Store>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

fn probs_len(p: &Problems) -> usize {
    p.list.len()
}

struct Resolver<'a> {
    probs: &'a mut Problems,
    /// Some file did not parse: a name that is not found may be declared there,
    /// so failed lookups of entities, stores and types are not reported.
    incomplete: bool,
    /// Enums and entities whose declaration was malformed (already reported).
    broken: HashSet<String>,
    /// (entity, field) pairs whose declaration was malformed or mistyped
    /// (already reported), so that a key or index naming them stays quiet.
    broken_fields: HashSet<(String, String)>,
    /// Every declared entity name (for "`User` is an entity" hints).
    entity_names: HashSet<String>,
    /// Field positions of the entity being resolved, by schema name.
    field_index: HashMap<String, usize>,
    /// The entity being resolved had shape problems and declares no fields:
    /// its unknown fields are a consequence, not news.
    fields_unknown: bool,
    /// A store declaration was malformed (already reported): an entity without
    /// `store:` may have meant it.
    stores_broken: bool,
    /// "No postgres store to default to" was reported once; later entities
    /// without `store:` have the same cause.
    storeless_reported: bool,
}

impl Resolver<'_> {
    fn err(&mut self, e: ResolveError) {
        self.probs.push(e);
    }

    /// Whether a failed lookup of `name` is a consequence of an earlier problem.
    fn quiet(&self, name: &str) -> bool {
        self.incomplete || self.broken.contains(name)
    }

    /// A did-you-mean candidate for `got`, within the run's suggestion budget.
    fn suggest<'c>(
        &self,
        got: &str,
        candidates: impl IntoIterator<Item = &'c str>,
    ) -> Option<String> {
        self.probs.suggestion(got, candidates)
    }

    fn duplicate(&mut self, what: &'static str, name: &Spanned<String>, first: Span) {
        self.err(ResolveError::DeclaredTwice {
            at: name.span,
            what,
            name: name.value.clone(),
            first,
        });
    }

    fn bad_name(&mut self, what: &'static str, name: &Spanned<String>, style: NameStyle) {
        self.err(ResolveError::BadName {
            at: name.span,
            what,
            name: name.value.clone(),
            style,
        });
    }
}

fn same_family(a: &ScalarType, b: &ScalarType) -> bool {
    matches!(
        (a, b),
        (
            ScalarType::String { .. } | ScalarType::Text,
            ScalarType::String { .. } | ScalarType::Text
        )
    )
}

/// Whether `text` is a number `decimal(precision, scale)` holds exactly.
/// Trailing zeros are not scale (`1.50` fits `decimal(10,1)`), the same
/// rule the SDK applies to values at run time.
fn is_decimal_literal(text: &str, precision: usize, scale: usize) -> bool {
    let t = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
        && int.trim_start_matches('0').len() <= precision - scale
        && frac.trim_end_matches('0').len() <= scale
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = Vec::new();
    for (i, s) in items.into_iter().enumerate() {
        if i == SHOWN {
            out.push("…".to_string());
            break;
        }
        out.push(format!("`{s}`"));
    }
    out.join(", ")
}

/// PostgreSQL-style constraint names, `{table}_{cols}_{suffix}`, kept within
/// 63 bytes by a stable hash so that long names stay unique.
pub fn constraint_name(table: &str, cols: &[&str], suffix: &str) -> String {
    let full = format!("{table}_{}_{suffix}", cols.join("_"));
    if full.len() <= MAX_SQL_IDENT {
        return full;
    }
    use sha2::{Digest, Sha256};
    let hash = hex::encode(&Sha256::digest(full.as_bytes())[..4]);
    let mut keep = MAX_SQL_IDENT.saturating_sub(hash.len() + suffix.len() + 2);
    // Names are checked to be ASCII, but this also runs on names already
    // reported as invalid, so it must not cut a character in two.
    while !full.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}_{hash}_{suffix}", &full[..keep])
}

/// The pass that fixes each entity's copy projection ([`Entity::copy`]):
/// every field but secrets. Secrets never leave PostgreSQL; every back end
/// that writes a copy reads this list.
fn copy_projection(entities: &mut [Entity]) {
    for e in entities {
        e.copy = (0..e.fields.len())
            .filter(|&i| !e.fields[i].is_secret())
            .collect();
    }
}

#[cfg(test)]
mod decimal_literal_tests {
    use super::is_decimal_literal;

    #[test]
    fn trailing_zeros_are_not_scale_but_digits_are() {
        assert!(is_decimal_literal("1.230", 10, 2));
        assert!(is_decimal_literal("1.500000000", 20, 8));
        assert!(is_decimal_literal("-0.10", 1, 1));
        assert!(is_decimal_literal("12.00", 2, 0));
        assert!(!is_decimal_literal("1.234", 10, 2));
        assert!(!is_decimal_literal("1.2301", 10, 2));
        assert!(!is_decimal_literal("-0.001", 10, 2));
        assert!(!is_decimal_literal("123", 4, 2));
        assert!(!is_decimal_literal("123.00", 4, 2));
    }
}
