//! InfluxDB (v2 write API) runtime: the line-protocol encoder generated
//! point structs call, and the batching HTTP writer.
//!
//! Written over reqwest rather than the `influxdb2` crate, which pins an
//! old HTTP stack.

mod line;
mod writer;

#[allow(deprecated)]
pub use crate::template::MissingVar;
pub use crate::template::{expand, TemplateError};
pub use crate::value::rules;
pub use crate::writer::{Retry, Settings};
pub use ::chrono::{DateTime, NaiveDate, Utc};
pub use ::rust_decimal::Decimal;
pub use ::uuid::Uuid;
pub use line::{check, EncodeError, FieldValue, Line, LineEncoder, Point, Precision, TagValue};
pub use writer::{Error, Writer, WriterConfig};
#[allow(deprecated)]
pub use writer::{InfluxConfig, InfluxWriter, WriteError};
