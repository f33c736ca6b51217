//! ClickHouse runtime: the serde helpers generated row structs name, the
//! [`Table`] trait they implement, the RowBinary encoder ([`row_binary`])
//! and the batching [`Writer`].
//!
//! Generated code reaches the `clickhouse` crate, serde and the value types
//! through this module, so a generated crate depends on `strata-sdk` alone.

pub mod columns;
pub mod row_binary;
mod writer;

#[allow(deprecated)]
pub use crate::template::MissingVar;
pub use crate::template::{expand, TemplateError};
pub use crate::value::{check, rules, ValueError};
pub use crate::writer::{Retry, Settings};
pub use ::chrono::{DateTime, NaiveDate, Utc};
pub use ::clickhouse as client;
pub use ::rust_decimal::Decimal;
pub use ::uuid::Uuid;
pub use writer::{Error, Writer, WriterConfig};

/// A generated row type: where it lives and how large it is on the wire.
pub trait Table {
    /// The schema's name of the ClickHouse store (the `store` label of the
    /// writer metrics); empty for a hand-written row.
    const STORE: &'static str = "";
    /// The database named in the schema (a writer may target another one).
    const DATABASE: &'static str;
    /// The table rows are inserted into.
    const TABLE: &'static str;
    /// An estimate of the row's size in RowBinary (exact for fixed-width
    /// columns, length plus one for strings), for callers that size their
    /// own batches. [`Writer`] no longer uses it: it counts the bytes it
    /// encodes.
    fn encoded_len(&self) -> usize;
    /// Refuses a value the table's column type cannot hold exactly (a date
    /// outside `Date32`, a timestamp outside `DateTime64` or finer than a
    /// microsecond, a decimal with more places or digits than its column;
    /// see [`crate::value::rules`]), naming the field and the row's key.
    /// [`Writer::write`] calls it before taking a row. Generated rows check
    /// every such field; the default accepts everything.
    fn check(&self) -> Result<(), crate::ValueError> {
        Ok(())
    }
}

/// A client for the store at `url` with `database` selected. Validation of
/// row types against the server schema is off: servers before 24.x (such as
/// 18.16) reject the `describe_include_subcolumns` setting it needs, and the
/// generated rows are derived from the same schema as the DDL.
pub fn client(url: &str, database: &str) -> client::Client {
    client::Client::default()
        .with_url(url)
        .with_database(database)
        .with_validation(false)
}
pub use ::serde;
