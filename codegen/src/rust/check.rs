//! Problems of the Rust SDK's own types: values a generated struct cannot
//! hold without loss.

use crate::diagnostics::Problem;
use crate::model::{Model, ScalarType, StoreKindTag};

/// Digits a `rust_decimal::Decimal` always holds (its 96-bit mantissa holds
/// every 28-digit number, not every 29-digit one; its scale is at most 28).
pub const MAX_DECIMAL_PRECISION: u8 = 28;

/// Decimal fields of PostgreSQL and InfluxDB entities wider than the SDK's
/// `Decimal`: sqlx rounds such a value when it reads it (a 38-digit number
/// comes back with its last digits gone), so an update would write the
/// rounded value back. ClickHouse entities are checked by their back end.
pub fn check(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for kind in [StoreKindTag::Postgres, StoreKindTag::InfluxDb] {
        for e in model.entities_in(kind) {
            for f in &e.fields {
                let ScalarType::Decimal { precision, .. } = *f.ty.scalar() else {
                    continue;
                };
                if precision <= MAX_DECIMAL_PRECISION {
                    continue;
                }
                out.push(
                    Problem::new(
                        "strata::decimal_precision",
                        f.span,
                        format!(
                            "`{}.{}` cannot be carried by the Rust SDK without loss",
                            e.name.schema, f.name.schema
                        ),
                    )
                    .label(format!(
                        "decimal precision {precision} exceeds the {MAX_DECIMAL_PRECISION} digits of the SDK's `Decimal`"
                    ))
                    .help(format!(
                        "use `decimal(p,s)` with p at most {MAX_DECIMAL_PRECISION}: wider values would be rounded when read"
                    )),
                );
            }
        }
    }
    out
}
