//! The problems of the Rust back end, typed: values the generated SDK's
//! types cannot hold without loss, and PostgreSQL types one Rust type
//! cannot name.
//!
//! The `From<RustError> for Problem` below is the one place their code,
//! message, label and help are written.

use super::check::MAX_DECIMAL_PRECISION;
use crate::diagnostics::{stage_codes, Problem};
use crate::source::Span;

/// One problem of a model for the generated Rust SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustError {
    /// `entity.field` is a decimal of `precision` digits, wider than `Decimal`.
    DecimalPrecision {
        at: Span,
        entity: String,
        field: String,
        precision: u8,
    },
    /// Enum `enum_name` is used by postgres stores with different schemas
    /// (`None`: no schema, so `public`).
    EnumSchemas {
        at: Span,
        enum_name: String,
        first: String,
        first_schema: Option<String>,
        other: String,
        other_schema: Option<String>,
    },
}

stage_codes!(RustError {
    DecimalPrecision => DecimalPrecision,
    EnumSchemas => EnumSchemas,
});

/// A store's PostgreSQL schema, as the message names it.
fn show(schema: Option<String>) -> String {
    schema.map_or("no schema, so `public`".to_string(), |s| {
        format!("schema `{s}`")
    })
}

impl From<RustError> for Problem {
    fn from(e: RustError) -> Problem {
        let typed = e.clone();
        match e {
            RustError::DecimalPrecision { at, entity, field, precision } => {
                Problem::typed(typed, at, format!("`{entity}.{field}` cannot be carried by the Rust SDK without loss"))
                    .label(format!("decimal precision {precision} exceeds the {MAX_DECIMAL_PRECISION} digits of the SDK's `Decimal`"))
                    .help(format!("use `decimal(p,s)` with p at most {MAX_DECIMAL_PRECISION}: wider values would be rounded when read"))
            }
            RustError::EnumSchemas { at, enum_name, first, first_schema, other, other_schema } => Problem::typed(typed,
                at,
                format!(
                    "enum `{enum_name}` is used by store `{first}` ({}) and store `{other}` ({})",
                    show(first_schema),
                    show(other_schema)
                ),
            )
            .label("one Rust type cannot name both PostgreSQL types")
            .help("give the stores the same `schema:`, or declare one enum per store"),
        }
    }
}
