//! Elasticsearch runtime: the [`Document`] trait generated document structs
//! implement, and the NDJSON `_bulk` indexer.

mod bulk;

#[allow(deprecated)]
pub use crate::template::MissingVar;
pub use crate::template::{expand, TemplateError};
pub use crate::value::{check, rules, ValueError};
pub use crate::writer::{Retry, Settings};
pub use ::chrono::{DateTime, NaiveDate, Utc};
pub use ::rust_decimal::Decimal;
pub use ::serde;
pub use ::serde_json::Value as Json;
pub use ::uuid::Uuid;
#[allow(deprecated)]
pub use bulk::{BulkConfig, BulkError, BulkIndexer};
pub use bulk::{BulkReport, Error, ItemError, Writer, WriterConfig};

/// A generated document type: where it is indexed, its id and version.
pub trait Document: ::serde::Serialize {
    /// The alias reads and writes go through.
    const ALIAS: &'static str;
    /// The concrete, versioned index behind the alias (a mapping change
    /// names a new one; reindex into it, then move the alias).
    const INDEX: &'static str;
    /// The `_id`: the entity's primary key.
    fn id(&self) -> String;
    /// The external version (the entity's version, or its `updated_at` in
    /// microseconds): a replay of an older or equal version is a no-op.
    fn version(&self) -> Option<u64>;
    /// Refuses a value the index's mapping cannot hold exactly (NaN or an
    /// infinity in a number, a time outside `date_nanos`, a non-object
    /// `flattened` root; see [`crate::value::rules`]), naming the field.
    /// [`Writer::write`] calls it before taking a document. Generated
    /// documents check every such field; the default accepts everything.
    fn check(&self) -> Result<(), crate::ValueError> {
        Ok(())
    }
}
