//! Checks of values before they are written, so that PostgreSQL never
//! changes a value silently and every store sees the same one. The derive's
//! binders call them on the write paths (insert, upsert, update, patch,
//! and every batch path, which share those binders), so a refused value
//! fails the call before any statement runs (or, in a `COPY` stream,
//! aborts it and rolls the call's transaction back).
//!
//! - A `decimal(p, s)` value with more than `s` fractional digits (after
//!   trailing zeros are dropped: `1.500000000` is fine in `decimal(20,8)`)
//!   or more than `p - s` integer digits is refused: PostgreSQL would round
//!   the first and the ClickHouse writer refuses both.
//! - A `string(n)` value (or array element) of more than `n` characters
//!   is refused naming the entity and field ([`length`]); PostgreSQL
//!   would refuse it too, with a `22001` that names neither.
//! - Timestamps are truncated to the microsecond at or before them
//!   ([`micros`]), the same rule as every other store's writer.
//! - A [`crate::Secret`] holding the redaction marker `[redacted]` (what a
//!   secret serialises to) is refused: it came back from JSON and would
//!   overwrite the real value.

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::table::TableDef;
use crate::error::{Error, Result};
use crate::secret::{Secret, REDACTED};

/// Values holding decimals: a decimal, or an optional value or list of them.
pub trait Decimals {
    /// Calls `f` on every decimal held, stopping at the first error.
    fn each(&self, f: &mut dyn FnMut(&Decimal) -> Result<(), String>) -> Result<(), String>;
}

impl Decimals for Decimal {
    fn each(&self, f: &mut dyn FnMut(&Decimal) -> Result<(), String>) -> Result<(), String> {
        f(self)
    }
}

impl<D: Decimals> Decimals for Option<D> {
    fn each(&self, f: &mut dyn FnMut(&Decimal) -> Result<(), String>) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), |d| d.each(f))
    }
}

impl<D: Decimals> Decimals for Vec<D> {
    fn each(&self, f: &mut dyn FnMut(&Decimal) -> Result<(), String>) -> Result<(), String> {
        self.iter().try_for_each(|d| d.each(f))
    }
}

/// Whether `d` fits `decimal(precision, scale)` exactly.
pub fn fits(d: &Decimal, precision: u32, scale: u32) -> Result<(), String> {
    let n = d.normalize();
    if n.scale() > scale {
        return Err(format!(
            "{d} has {} decimal places; the column keeps {scale} (decimal({precision},{scale})) and would round it",
            n.scale()
        ));
    }
    let m = n.mantissa().unsigned_abs();
    let digits = if m == 0 { 0 } else { m.ilog10() + 1 };
    let integer = digits.saturating_sub(n.scale());
    if integer > precision - scale {
        return Err(format!(
            "{d} has {integer} integer digits; decimal({precision},{scale}) keeps {}",
            precision - scale
        ));
    }
    Ok(())
}

fn refused(def: &TableDef, column: usize, reason: String) -> Error {
    Error::Refused {
        entity: def.entity,
        field: def.columns.get(column).map_or("?", |c| c.name),
        reason,
    }
}

/// Checks every decimal of the `column`-th column's value against its
/// `decimal(p, s)`; returns the value, for the binder to bind.
pub fn decimal<'v, D: Decimals>(def: &TableDef, column: usize, v: &'v D) -> Result<&'v D> {
    let Some((p, s)) = def.columns.get(column).and_then(|c| c.decimal) else {
        return Ok(v);
    };
    let (p, s) = (u32::from(p), u32::from(s));
    v.each(&mut |d| fits(d, p, s))
        .map_err(|reason| refused(def, column, reason))?;
    Ok(v)
}

/// Values holding text: a string, or an optional value or list of them.
pub trait Strings {
    /// Calls `f` on every string held, stopping at the first error.
    fn each_str(&self, f: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String>;
}

impl Strings for String {
    fn each_str(&self, f: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String> {
        f(self)
    }
}

impl Strings for &str {
    fn each_str(&self, f: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String> {
        f(self)
    }
}

impl<S: Strings> Strings for Option<S> {
    fn each_str(&self, f: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), |s| s.each_str(f))
    }
}

impl<S: Strings> Strings for Vec<S> {
    fn each_str(&self, f: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String> {
        self.iter().try_for_each(|s| s.each_str(f))
    }
}

/// Checks every string of the `column`-th column's value against its
/// `string(n)`: more than `n` characters (PostgreSQL counts characters, not
/// bytes) is refused as [`Error::Refused`] naming the entity and field,
/// instead of PostgreSQL's `22001` that names neither. The value itself is
/// not echoed. Returns the value, for the binder to bind.
pub fn length<'v, S: Strings>(def: &TableDef, column: usize, v: &'v S) -> Result<&'v S> {
    let Some(max) = def.columns.get(column).and_then(|c| c.max_chars) else {
        return Ok(v);
    };
    v.each_str(&mut |s| {
        // Cheap first: a string of at most `max` bytes has at most `max` characters.
        if s.len() <= max as usize {
            return Ok(());
        }
        match s.chars().count() {
            n if n > max as usize => Err(format!(
                "a value of {n} characters is too long for string({max}) (at most {max})"
            )),
            _ => Ok(()),
        }
    })
    .map_err(|reason| refused(def, column, reason))?;
    Ok(v)
}

/// Values holding timestamps: a timestamp, or an optional value or list.
pub trait Timestamps: Sized {
    /// The value with every timestamp truncated to the microsecond.
    fn micros(&self) -> Self;
}

impl Timestamps for DateTime<Utc> {
    fn micros(&self) -> Self {
        // chrono counts the fraction forward from the second at or before
        // the time, also before 1970: subtracting it floors.
        *self - TimeDelta::nanoseconds(i64::from(self.timestamp_subsec_nanos() % 1000))
    }
}

impl<T: Timestamps> Timestamps for Option<T> {
    fn micros(&self) -> Self {
        self.as_ref().map(T::micros)
    }
}

impl<T: Timestamps> Timestamps for Vec<T> {
    fn micros(&self) -> Self {
        self.iter().map(T::micros).collect()
    }
}

/// A timestamp (or optional/list of them) truncated to the microsecond at
/// or before it: the SDK's one rule before every store. PostgreSQL keeps
/// microseconds, and sqlx's encoder rounds toward 2000-01-01 (so
/// `1999-12-31T23:59:59.999999999` would become the next year); the
/// ClickHouse encoder floors the same way, so both stores get one value.
pub fn micros<T: Timestamps>(v: &T) -> T {
    v.micros()
}

/// Values holding secrets.
pub trait Secrets {
    fn redacted(&self) -> bool;
}

impl Secrets for Secret {
    fn redacted(&self) -> bool {
        self.expose() == REDACTED
    }
}

impl<S: Secrets> Secrets for Option<S> {
    fn redacted(&self) -> bool {
        self.as_ref().is_some_and(S::redacted)
    }
}

/// Refuses a secret holding the redaction marker; returns the value.
pub fn secret<'v, S: Secrets>(def: &TableDef, column: usize, v: &'v S) -> Result<&'v S> {
    match v.redacted() {
        true => Err(refused(
            def,
            column,
            format!("the secret holds the redaction marker `{REDACTED}` (it went through serialisation); refusing to overwrite the stored value with it"),
        )),
        false => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn scale_and_integer_digits() {
        assert!(fits(&d("0.12345678"), 20, 8).is_ok());
        assert!(
            fits(&d("1.500000000"), 20, 8).is_ok(),
            "trailing zeros are not scale"
        );
        assert!(fits(&d("0.123456789"), 20, 8).is_err());
        assert!(fits(&d("-0.000000001"), 20, 8).is_err());
        assert!(fits(&d("999999999999.99999999"), 20, 8).is_ok());
        assert!(fits(&d("1000000000000"), 20, 8).is_err());
        assert!(fits(&d("-1000000000000"), 20, 8).is_err());
        assert!(fits(&d("0"), 1, 1).is_ok());
        assert!(fits(&d("0.5"), 1, 1).is_ok());
        assert!(fits(&d("1"), 1, 1).is_err());
        assert!(fits(&d("12345"), 5, 0).is_ok());
        assert!(fits(&d("12345.0"), 5, 0).is_ok());
        assert!(fits(&d("12345.1"), 5, 0).is_err());
    }
}
