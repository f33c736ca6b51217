//! The problems of the InfluxDB back end, typed: values line protocol (or
//! the server that reads it) cannot carry.
//!
//! The `From<InfluxError> for Problem` below is the one place their code,
//! message, label and help are written.

use crate::diagnostics::{stage_codes, Problem};
use crate::source::Span;

/// One problem of a model for its InfluxDB stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfluxError {
    /// `entity.field` cannot be written as line protocol.
    Lossy {
        at: Span,
        entity: String,
        field: String,
        loss: Loss,
    },
}

stage_codes!(InfluxError {
    Lossy => InfluxType,
});

/// What line protocol cannot carry of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The time field is nullable or an array.
    NullTime,
    Array,
    Bytes,
    /// A tag of type f64 or json.
    TagType,
    /// A string field on VictoriaMetrics, which drops string fields.
    VictoriaMetricsString,
}

impl Loss {
    fn label_and_help(self) -> (&'static str, &'static str) {
        match self {
            Loss::NullTime => (
                "the time of a point cannot be null",
                "make the time field a non-nullable `timestamptz`",
            ),
            Loss::Array => (
                "line protocol has no arrays",
                "use one field per value, or a `json` field (a string)",
            ),
            Loss::Bytes => (
                "line protocol has no binary values",
                "store the bytes elsewhere and reference them",
            ),
            Loss::TagType => (
                "a tag is an identifying text; floats and json do not make tags",
                "make it a field, or a tag of type string",
            ),
            Loss::VictoriaMetricsString => (
                "VictoriaMetrics stores no string fields (it drops them without an error)",
                "make it a tag, or keep the value in another store",
            ),
        }
    }
}

impl From<InfluxError> for Problem {
    fn from(e: InfluxError) -> Problem {
        let typed = e.clone();
        match e {
            InfluxError::Lossy {
                at,
                entity,
                field,
                loss,
            } => {
                let (label, help) = loss.label_and_help();
                Problem::typed(
                    typed,
                    at,
                    format!("`{entity}.{field}` cannot be written as line protocol"),
                )
                .label(label)
                .help(help)
            }
        }
    }
}
