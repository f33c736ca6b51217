//! The problems of the Elasticsearch back end, typed: field types a search
//! store cannot index without loss.
//!
//! The `From<ElasticsearchError> for Problem` below is the one place their
//! code, message, label and help are written.

use crate::diagnostics::{stage_codes, Problem};
use crate::source::Span;

/// One problem of a model for its Elasticsearch stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElasticsearchError {
    /// `entity.field` holds bytes, which search store `store` cannot index.
    BytesNotSearchable {
        at: Span,
        entity: String,
        field: String,
        store: String,
    },
}

stage_codes!(ElasticsearchError {
    BytesNotSearchable => SearchType,
});

impl From<ElasticsearchError> for Problem {
    fn from(e: ElasticsearchError) -> Problem {
        let typed = e.clone();
        match e {
            ElasticsearchError::BytesNotSearchable { at, entity, field, store } => {
                Problem::typed(typed, at, format!("`{entity}.{field}` cannot be indexed in search store `{store}`"))
                    .label("bytes are not searchable")
                    .help("keep binary data out of searchable entities, or store a reference (a string) instead")
            }
        }
    }
}
