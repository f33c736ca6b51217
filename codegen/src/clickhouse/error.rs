//! The problems of the ClickHouse back end, typed: field types a ClickHouse
//! store cannot hold without loss, and partitions it cannot carry.
//!
//! The `From<ClickhouseError> for Problem` below is the one place their
//! code, message, labels and help are written.

use super::types::{Target, MAX_ROW_PRECISION};
use crate::diagnostics::{stage_codes, Problem};
use crate::model::ScalarType;
use crate::source::Span;

/// One problem of a model for its ClickHouse stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickhouseError {
    /// `entity.field` cannot be stored in ClickHouse store `store`.
    Lossy {
        at: Span,
        entity: String,
        field: String,
        store: String,
        loss: Loss,
    },
    /// A nullable field partitions a ClickHouse table.
    NullablePartition { at: Span, field: String },
}

stage_codes!(ClickhouseError {
    Lossy => ClickhouseType,
    NullablePartition => ClickhousePartition,
});

/// What ClickHouse, or the Rust rows, would lose of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// ClickHouse has no `Nullable(Array)`.
    NullableArray,
    /// Arrays of `scalar` are not carried to ClickHouse rows.
    ArrayOf { scalar: ScalarType },
    /// A decimal above 38 digits on a release without `Decimal256`.
    NoDecimal256 { target: Target, precision: u8 },
    /// A decimal wider than the Rust rows carry.
    RowPrecision { precision: u8 },
}

impl Loss {
    fn label_and_help(&self) -> (String, String) {
        match self {
            Loss::NullableArray => (
                "ClickHouse has no Nullable(Array)".into(),
                "make the array non-nullable (`default: empty`): an empty array and NULL would otherwise be one value".into(),
            ),
            Loss::ArrayOf { scalar } => (
                format!("arrays of `{scalar}` are not carried to ClickHouse rows"),
                "use `json` for this list, or a separate entity".into(),
            ),
            Loss::NoDecimal256 { target, precision } => (
                format!("ClickHouse {target} has no Decimal256 (precision {precision} > 38)"),
                "lower the precision to 38 or target `server_version: \"20.8\"` or later".into(),
            ),
            Loss::RowPrecision { precision } => (
                format!("decimal precision {precision} exceeds the {MAX_ROW_PRECISION} digits the Rust rows carry"),
                format!("use `decimal(p,s)` with p at most {MAX_ROW_PRECISION}"),
            ),
        }
    }
}

impl From<ClickhouseError> for Problem {
    fn from(e: ClickhouseError) -> Problem {
        let typed = e.clone();
        match e {
            ClickhouseError::Lossy {
                at,
                entity,
                field,
                store,
                loss,
            } => {
                let (label, help) = loss.label_and_help();
                Problem::typed(typed, at, format!("`{entity}.{field}` cannot be stored in ClickHouse store `{store}` without loss"))
                    .label(label)
                    .help(help)
            }
            ClickhouseError::NullablePartition { at, field } => Problem::typed(
                typed,
                at,
                format!("`{field}` partitions a ClickHouse table but is nullable"),
            )
            .label("nullable")
            .help("partition by a non-nullable time field such as `created_at`"),
        }
    }
}
