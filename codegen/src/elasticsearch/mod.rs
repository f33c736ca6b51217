//! Elasticsearch back end: for every entity with a `search:` section, the
//! index (`elasticsearch/<index>.json`: alias, settings, strict mapping) and
//! a typed document struct (`rust/elasticsearch.rs`, one module per store).

mod docs;
pub mod error;
pub mod mapping;

use crate::diagnostics::Problem;
use crate::files::{Artifact, Files};
use crate::model::{Entity, Model, ScalarType, StoreId};
use error::ElasticsearchError;

/// Searchable entities with their search store, in declaration order.
pub fn indexes(model: &Model) -> Vec<(StoreId, &Entity)> {
    model
        .entities
        .iter()
        .filter_map(|e| e.search.as_ref().map(|s| (s.store, e)))
        .collect()
}

/// Problems a model has for its Elasticsearch stores.
pub fn check(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for (id, e) in indexes(model) {
        let store = &model[id].name;
        for (_, f) in mapping::fields(e) {
            if matches!(f.ty.scalar(), ScalarType::Bytes) {
                out.push(Problem::from(ElasticsearchError::BytesNotSearchable {
                    at: f.span,
                    entity: e.name.schema.clone(),
                    field: f.name.schema.clone(),
                    store: store.to_string(),
                }));
            }
        }
    }
    out
}

pub fn generate(model: &Model, files: &mut Files) {
    let idx = indexes(model);
    if idx.is_empty() {
        return;
    }
    for &(store, e) in &idx {
        let name = mapping::index_name(&model[store], e);
        let body = mapping::create_body(&model[store], e);
        let text = serde_json::to_string_pretty(&body).unwrap_or_default();
        files.add(
            Artifact::ElasticsearchIndex {
                index: name.clone(),
            },
            format!("{text}\n"),
        );
    }
    files.add(
        Artifact::RustModule("elasticsearch".into()),
        docs::rust(model),
    );
}
