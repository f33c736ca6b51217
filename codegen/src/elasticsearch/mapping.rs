//! The index mapping, settings, versioned name and alias of a searchable entity.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{Entity, Field, ScalarType, Store, StoreKind};

/// Strings up to this many characters are `keyword`s; longer values that are
/// not declared as text are `keyword`s too, but only indexed up to this
/// length (`ignore_above`; the value stays in `_source`).
pub const KEYWORD_MAX: u32 = 1024;

/// Largest decimal precision a `scaled_float` holds exactly: the value goes
/// through a double (15 significant digits) and a long.
pub const SCALED_FLOAT_MAX_PRECISION: u8 = 15;

/// The fields of an entity that reach the index: its copy projection.
pub fn fields(e: &Entity) -> impl Iterator<Item = (usize, &Field)> {
    e.copy_fields()
}

/// Whether field `i` is declared full text in the entity's `search:` section.
pub fn is_text(e: &Entity, i: usize) -> bool {
    e.search.as_ref().is_some_and(|s| s.text.contains(&i))
}

/// The mapping of one field, or `None` when it cannot be indexed (bytes).
pub fn field_mapping(e: &Entity, i: usize, f: &Field) -> Option<Value> {
    if is_text(e, i) {
        return Some(json!({
            "type": "text",
            "fields": { "keyword": { "type": "keyword", "ignore_above": KEYWORD_MAX } }
        }));
    }
    Some(match f.ty.scalar() {
        ScalarType::Uuid | ScalarType::Enum(_) => json!({ "type": "keyword" }),
        ScalarType::String { max: Some(n) } if *n <= KEYWORD_MAX => json!({ "type": "keyword" }),
        ScalarType::String { .. } | ScalarType::Text => {
            json!({ "type": "keyword", "ignore_above": KEYWORD_MAX })
        }
        ScalarType::Bool => json!({ "type": "boolean" }),
        ScalarType::I16 => json!({ "type": "short" }),
        ScalarType::I32 => json!({ "type": "integer" }),
        ScalarType::I64 => json!({ "type": "long" }),
        ScalarType::F64 => json!({ "type": "double" }),
        ScalarType::Decimal { precision, scale } if *precision <= SCALED_FLOAT_MAX_PRECISION => {
            json!({ "type": "scaled_float", "scaling_factor": 10f64.powi(i32::from(*scale)) })
        }
        // Exact as text: no float on the way.
        ScalarType::Decimal { .. } => json!({ "type": "keyword" }),
        ScalarType::Timestamptz => json!({ "type": "date_nanos" }),
        ScalarType::Date => json!({ "type": "date", "format": "strict_date" }),
        ScalarType::Json => json!({ "type": "flattened" }),
        ScalarType::Bytes | ScalarType::Secret => return None,
    })
}

/// `{ "dynamic": "strict", "properties": { ... } }`.
pub fn mappings(e: &Entity) -> Value {
    let mut props = Map::new();
    for (i, f) in fields(e) {
        if let Some(m) = field_mapping(e, i, f) {
            props.insert(f.name.sql.clone(), m);
        }
    }
    json!({
        "_meta": { "generated_by": "strata-codegen", "entity": e.name.schema },
        "dynamic": "strict",
        "properties": props
    })
}

pub fn settings() -> Value {
    json!({ "index": { "number_of_shards": 1, "number_of_replicas": 1 } })
}

fn prefix(store: &Store) -> String {
    match &store.kind {
        StoreKind::Elasticsearch {
            index_prefix: Some(p),
        } => format!("{p}_"),
        _ => String::new(),
    }
}

/// The alias applications read and write through, in the Elasticsearch
/// store `store`: `<prefix>_<table>`.
pub fn alias(store: &Store, e: &Entity) -> String {
    format!("{}{}", prefix(store), e.name.sql)
}

/// The concrete index in `store`: the alias plus `_v<hash of settings and
/// mappings>`, so any mapping change names a new index to reindex into.
pub fn index_name(store: &Store, e: &Entity) -> String {
    let body = json!({ "settings": settings(), "mappings": mappings(e) });
    let hash = Sha256::digest(body.to_string().as_bytes());
    format!("{}_v{}", alias(store, e), &hex::encode(hash)[..8])
}

/// The body of `PUT /<index>` in `store`: the alias, settings and mappings.
pub fn create_body(store: &Store, e: &Entity) -> Value {
    json!({
        "aliases": { alias(store, e): { "is_write_index": true } },
        "settings": settings(),
        "mappings": mappings(e),
    })
}
