//! Which ClickHouse release the DDL targets, what it lacks, and how each
//! schema type maps onto it without loss.

use super::error::Loss;
use crate::model::{Entity, Field, ScalarType, Store, StoreKind, Type};

/// A ClickHouse release the DDL must run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub major: u32,
    pub minor: u32,
}

/// Used when a store names no `server_version`.
pub const MODERN: Target = Target {
    major: 24,
    minor: 8,
};

impl Target {
    /// The release a ClickHouse store's DDL targets: its `server_version`,
    /// else [`MODERN`].
    pub fn of(store: &Store) -> Target {
        match &store.kind {
            StoreKind::ClickHouse {
                server_version: Some((major, minor)),
                ..
            } => Target {
                major: *major,
                minor: *minor,
            },
            _ => MODERN,
        }
    }
    fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
    /// `DateTime64(6,'UTC')` (20.1). Before it, timestamps are stored as
    /// `Int64` microseconds since the epoch: lossless, unlike `DateTime`.
    pub fn has_datetime64(self) -> bool {
        self.at_least(20, 1)
    }
    /// `Date32` (21.9). Before it, dates are `Int32` days since the epoch
    /// (`Date` covers only 1970–2149).
    pub fn has_date32(self) -> bool {
        self.at_least(21, 9)
    }
    /// `ReplacingMergeTree(ver, is_deleted)` (23.2). Before it, deleted rows
    /// stay in the table and only the current-rows view hides them.
    pub fn has_is_deleted(self) -> bool {
        self.at_least(23, 2)
    }
    /// `LowCardinality` without the experimental setting (19.9).
    pub fn has_low_cardinality(self) -> bool {
        self.at_least(19, 9)
    }
    /// `Bool` (22.3). Before it, `UInt8`.
    pub fn has_bool(self) -> bool {
        self.at_least(22, 3)
    }
    /// `Decimal256`, precision above 38 (20.8).
    pub fn has_decimal256(self) -> bool {
        self.at_least(20, 8)
    }

    /// What this release lacks, as DDL comment lines (empty when modern).
    pub fn lacks(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if !self.has_datetime64() {
            v.push("no DateTime64: timestamps are Int64 microseconds since 1970-01-01 UTC");
        }
        if !self.has_date32() {
            v.push("no Date32: dates are Int32 days since 1970-01-01");
        }
        if !self.has_is_deleted() {
            v.push("no is_deleted argument: deleted rows are hidden by the view only");
        }
        if !self.has_low_cardinality() {
            v.push("no LowCardinality: enums and short strings are String");
        }
        if !self.has_bool() {
            v.push("no Bool: booleans are UInt8");
        }
        if !self.has_decimal256() {
            v.push("no Decimal256: decimal precision is limited to 38");
        }
        v
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Strings up to this many characters are `LowCardinality(String)`: symbols,
/// currencies, timeframes. Longer ones (ids, notes) are plain `String`.
pub const SHORT_STRING: u32 = 32;

/// Largest decimal precision the Rust rows carry (`rust_decimal` holds 28 digits).
pub const MAX_ROW_PRECISION: u8 = 28;

/// The columns of an entity in ClickHouse: its copy projection.
pub fn columns(e: &Entity) -> impl Iterator<Item = &Field> {
    e.copy_fields().map(|(_, f)| f)
}

/// Why a field cannot be carried to this target without loss.
pub fn unsupported(f: &Field, t: Target) -> Option<Loss> {
    let s = f.ty.scalar();
    if f.ty.is_array() {
        if f.nullable {
            return Some(Loss::NullableArray);
        }
        if matches!(s, ScalarType::Bytes) {
            return Some(Loss::ArrayOf { scalar: s.clone() });
        }
    }
    if let ScalarType::Decimal { precision, .. } = *s {
        if u32::from(precision) > 38 && !t.has_decimal256() {
            return Some(Loss::NoDecimal256 {
                target: t,
                precision,
            });
        }
        if precision > MAX_ROW_PRECISION {
            return Some(Loss::RowPrecision { precision });
        }
    }
    None
}

/// The ClickHouse column type of a field on a target. Call only for fields
/// that [`unsupported`] accepts.
pub fn column_type(f: &Field, t: Target) -> String {
    let lc = |inner: &str| {
        if t.has_low_cardinality() {
            format!("LowCardinality({inner})")
        } else {
            inner.to_string()
        }
    };
    let base = match f.ty.scalar() {
        ScalarType::Uuid => "UUID".to_string(),
        ScalarType::String { max: Some(n) } if *n <= SHORT_STRING => lc("String"),
        ScalarType::Enum(_) => lc("String"),
        ScalarType::String { .. } | ScalarType::Text | ScalarType::Json | ScalarType::Bytes => {
            "String".to_string()
        }
        ScalarType::Bool if t.has_bool() => "Bool".to_string(),
        ScalarType::Bool => "UInt8".to_string(),
        ScalarType::I16 => "Int16".to_string(),
        ScalarType::I32 => "Int32".to_string(),
        ScalarType::I64 => "Int64".to_string(),
        ScalarType::F64 => "Float64".to_string(),
        ScalarType::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
        ScalarType::Timestamptz if t.has_datetime64() => "DateTime64(6, 'UTC')".to_string(),
        ScalarType::Timestamptz => "Int64".to_string(),
        ScalarType::Date if t.has_date32() => "Date32".to_string(),
        ScalarType::Date => "Int32".to_string(),
        // Filtered out by `columns`; never reaches ClickHouse.
        ScalarType::Secret => "String".to_string(),
    };
    match (&f.ty, f.nullable) {
        (Type::Array(_), _) => format!("Array({base})"),
        (Type::Scalar(_), true) => match base.strip_prefix("LowCardinality(") {
            Some(inner) => format!("LowCardinality(Nullable({inner})"),
            None => format!("Nullable({base})"),
        },
        (Type::Scalar(_), false) => base,
    }
}
