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

/// Decodes one row of `T`, refusing temporal values chrono cannot hold
/// and `json` documents serde_json would read as other values.
pub fn row<T: Table>(row: &PgRow) -> Result<T> {
    for (i, c) in T::DEF.columns.iter().enumerate() {
        if c.json {
            json_column::<T>(row, i, c.name)?;
        }
        let Some(t) = c.temporal else {
            continue;
        };
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

/// Refuses the `i`-th column's `json`/`jsonb` document when it holds a
/// number serde_json would read as another value ([`json_numbers_exact`]).
fn json_column<T: Table>(row: &PgRow, i: usize, name: &str) -> Result<()> {
    use sqlx::TypeInfo;
    let Ok(raw) = row.try_get_raw(i) else {
        return Ok(());
    };
    let jsonb = match raw.type_info().name() {
        "JSONB" => true,
        "JSON" => false,
        _ => return Ok(()),
    };
    if raw.is_null() || raw.format() != PgValueFormat::Binary {
        return Ok(());
    }
    let bytes = raw.as_bytes().unwrap_or_default();
    // jsonb's binary form is a version byte, then the text.
    let text = if jsonb {
        bytes.get(1..).unwrap_or_default()
    } else {
        bytes
    };
    json_numbers_exact(&String::from_utf8_lossy(text)).map_err(|number| {
        // Name the number, cut short: a stored value, not the caller's.
        let shown: String = number.chars().take(24).collect();
        let cut = if shown.len() < number.len() { "…" } else { "" };
        Error::InvalidValue {
            code: crate::error::DECODE.into(),
            message: format!(
                "`{}.{name}` holds a value the SDK cannot read: the JSON number {shown}{cut} would be read as another value (serde_json keeps integers of 64 bits and doubles)",
                T::DEF.entity
            ),
        }
    })
}

/// Checks that every number of a JSON text reads back as itself: an
/// integer of 64 bits, or a number whose nearest double prints as the
/// same decimal value (`0.1`, `1.50`, `1e20` do; `123456789012345678901`
/// and `1e-400` do not). Returns the first that does not. serde_json
/// (without `arbitrary_precision`) reads the others as a nearby double and
/// writes that back: a value changed without an error.
pub fn json_numbers_exact(text: &str) -> std::result::Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = &text[start..i];
                if !number_exact(token) {
                    return Err(token.to_string());
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether serde_json reads `token` (a JSON number) as the same value.
fn number_exact(token: &str) -> bool {
    let integer = !token.contains(['.', 'e', 'E']);
    if integer && (token.parse::<i64>().is_ok() || token.parse::<u64>().is_ok()) {
        return true;
    }
    match token.parse::<f64>() {
        Ok(x) if x.is_finite() => decimal_canon(token) == decimal_canon(&format!("{x:e}")),
        _ => false,
    }
}

/// A decimal number's significant digits `d` and exponent `e`, the value
/// being `0.d × 10^e` without its sign (`"-0.0120e3"` → `("12", 2)`); zero
/// is `("", 0)`.
fn decimal_canon(s: &str) -> (String, i64) {
    let s = s.trim_start_matches(['-', '+']);
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let digits = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .to_string();
    if digits.is_empty() {
        return (digits, 0);
    }
    (digits, int.len() as i64 - lead as i64 + exp)
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
    fn json_numbers_that_read_back_as_themselves() {
        for ok in [
            r#"{"a": 1, "b": -2, "c": 0.1, "d": 1.50, "e": 1e20, "f": 18446744073709551615}"#,
            r#"[0, -0, 0.0, 5e-324, 1.7976931348623157e308, 0.30000000000000004, -9223372036854775808]"#,
            r#"{"s": "123456789012345678901234567890 and 1e-400 in a string \" 1e-400"}"#,
        ] {
            assert_eq!(json_numbers_exact(ok), Ok(()), "{ok}");
        }
        for (bad, number) in [
            (
                r#"{"big": 123456789012345678901234567890}"#,
                "123456789012345678901234567890",
            ),
            (r#"{"tiny": 1e-400}"#, "1e-400"),
            (
                r#"[3.141592653589793238462643383279]"#,
                "3.141592653589793238462643383279",
            ),
            (r#"[18446744073709551617]"#, "18446744073709551617"),
        ] {
            assert_eq!(json_numbers_exact(bad), Err(number.to_string()), "{bad}");
        }
        assert_eq!(decimal_canon("-0.0120e3"), ("12".to_string(), 2));
        assert_eq!(decimal_canon("1.2e1"), decimal_canon("12"));
    }

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
