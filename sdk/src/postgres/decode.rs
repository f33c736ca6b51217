//! Rows to entities. Before `FromRow` runs, every `timestamptz` and `date`
//! column (and array of them) of the row is checked in its binary form:
//! sqlx's chrono decoders panic on `infinity`, `-infinity` and on years
//! past chrono's 262,142 (PostgreSQL keeps timestamps to 294,276 AD and
//! dates to 5,874,897 AD), and other tools write such values. A value
//! chrono cannot hold is `Error::InvalidValue` (SQLSTATE-like code 22008)
//! naming the entity and column, for that call only; the connection stays
//! usable. The check reads a few bytes per temporal column and costs no
//! SQL.

use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{Row, ValueRef};

use super::table::{Table, Temporal};
use crate::error::{Error, Result};

/// Decodes one row of `T`, refusing temporal values chrono cannot hold.
pub fn row<T: Table>(row: &PgRow) -> Result<T> {
    for (i, c) in T::DEF.columns.iter().enumerate() {
        let Some(t) = c.temporal else { continue };
        let Ok(raw) = row.try_get_raw(i) else {
            continue;
        };
        if raw.is_null() || raw.format() != PgValueFormat::Binary {
            continue;
        }
        let bytes = raw.as_bytes().unwrap_or_default();
        let readable = match c.array {
            false => readable(t, bytes),
            true => array_readable(t, bytes),
        };
        if !readable {
            return Err(Error::InvalidValue {
                code: "22008".into(),
                message: format!(
                    "`{}.{}` holds a value the SDK cannot read (infinity, or a year after 262142)",
                    T::DEF.entity,
                    c.name
                ),
            });
        }
    }
    T::from_row(row).map_err(|e| match e {
        // Any other value the Rust type cannot hold (numeric NaN in a
        // Decimal, a jsonb number past f64, an enum label another tool
        // added): the same kind, named the same way.
        sqlx::Error::ColumnDecode { index, source } => Error::InvalidValue {
            code: crate::error::DECODE.into(),
            message: format!(
                "`{}.{}` holds a value the SDK cannot read: {source}",
                T::DEF.entity,
                index.trim_matches('"')
            ),
        },
        e => e.into(),
    })
}

/// Microseconds (timestamps) and days (dates) since 2000-01-01 that chrono
/// can hold: (min, max).
fn bounds(t: Temporal) -> (i64, i64) {
    static TS: OnceLock<(i64, i64)> = OnceLock::new();
    static DATE: OnceLock<(i64, i64)> = OnceLock::new();
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    match t {
        Temporal::Timestamptz => *TS.get_or_init(|| {
            let e = epoch.and_hms_opt(0, 0, 0).unwrap_or_default();
            let us = |d: NaiveDateTime| (d - e).num_microseconds().unwrap_or(0);
            (us(NaiveDateTime::MIN), us(NaiveDateTime::MAX))
        }),
        Temporal::Date => *DATE.get_or_init(|| {
            let days = |d: NaiveDate| (d - epoch).num_days();
            (days(NaiveDate::MIN), days(NaiveDate::MAX))
        }),
    }
}

/// Whether one binary value (`int8` microseconds or `int4` days) fits.
fn readable(t: Temporal, bytes: &[u8]) -> bool {
    let v = match (t, bytes.len()) {
        (Temporal::Timestamptz, 8) => i64::from_be_bytes(bytes.try_into().unwrap_or_default()),
        (Temporal::Date, 4) => i64::from(i32::from_be_bytes(bytes.try_into().unwrap_or_default())),
        // Not the binary form we know: let the decoder report it.
        _ => return true,
    };
    let (min, max) = bounds(t);
    (min..=max).contains(&v)
}

/// Whether every element of a one-dimensional binary array fits: header
/// `ndim, has_null, elem_oid, (len, lbound) per dim`, then `len, bytes`
/// per element (`len = -1` for NULL).
fn array_readable(t: Temporal, bytes: &[u8]) -> bool {
    let i32_at = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let Some(ndim) = i32_at(0) else { return true };
    let mut at = 12 + 8 * usize::try_from(ndim).unwrap_or(0);
    while at < bytes.len() {
        let Some(len) = i32_at(at) else { return true };
        at += 4;
        let Ok(len) = usize::try_from(len) else {
            continue;
        }; // NULL
        match bytes.get(at..at + len) {
            Some(value) if !readable(t, value) => return false,
            Some(_) => at += len,
            None => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinity_and_far_years_are_unreadable() {
        let ts = |v: i64| v.to_be_bytes();
        assert!(readable(Temporal::Timestamptz, &ts(0)));
        assert!(!readable(Temporal::Timestamptz, &ts(i64::MAX)));
        assert!(!readable(Temporal::Timestamptz, &ts(i64::MIN)));
        let (min, max) = bounds(Temporal::Timestamptz);
        assert!(readable(Temporal::Timestamptz, &ts(max)));
        assert!(!readable(Temporal::Timestamptz, &ts(max + 1)));
        assert!(readable(Temporal::Timestamptz, &ts(min)));
        let d = |v: i32| v.to_be_bytes();
        assert!(!readable(Temporal::Date, &d(i32::MAX)));
        assert!(!readable(Temporal::Date, &d(i32::MIN)));
        assert!(readable(Temporal::Date, &d(-100)));
        // An array of two dates, the second infinity.
        let mut a = Vec::new();
        for v in [1i32, 0, 1082, 2, 1] {
            a.extend_from_slice(&v.to_be_bytes());
        }
        for v in [0i32, i32::MAX] {
            a.extend_from_slice(&4i32.to_be_bytes());
            a.extend_from_slice(&v.to_be_bytes());
        }
        assert!(!array_readable(Temporal::Date, &a));
        a.truncate(a.len() - 4);
        a.extend_from_slice(&7i32.to_be_bytes());
        assert!(array_readable(Temporal::Date, &a));
    }
}
