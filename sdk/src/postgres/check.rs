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
//! - A `json` value nested deeper than [`JSON_MAX_DEPTH`] arrays and
//!   objects is refused ([`json`]): PostgreSQL would store it, but the SDK's
//!   reader (serde_json) could not read it back, so the write would commit
//!   and then fail.
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
    crate::value::decimal_fits(d, precision, scale)
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

/// The deepest nesting of arrays and objects a `json` value may have:
/// serde_json reads no deeper (its recursion limit of 128).
pub const JSON_MAX_DEPTH: usize = 127;

/// Values holding JSON: a value, or an optional one.
pub trait Jsons {
    /// Calls `f` on every JSON value held.
    fn each_json(
        &self,
        f: &mut dyn FnMut(&serde_json::Value) -> Result<(), String>,
    ) -> Result<(), String>;
}

impl Jsons for serde_json::Value {
    fn each_json(
        &self,
        f: &mut dyn FnMut(&serde_json::Value) -> Result<(), String>,
    ) -> Result<(), String> {
        f(self)
    }
}

impl<J: Jsons> Jsons for Option<J> {
    fn each_json(
        &self,
        f: &mut dyn FnMut(&serde_json::Value) -> Result<(), String>,
    ) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), |j| j.each_json(f))
    }
}

/// How deeply `v` nests arrays and objects (a scalar: 0), walked without
/// recursion so that any depth is measured.
pub fn json_depth(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    let mut deepest = 0;
    let mut todo = vec![(v, 0usize)];
    while let Some((v, d)) = todo.pop() {
        let inner: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        deepest = deepest.max(d + 1);
        todo.extend(inner.map(|c| (c, d + 1)));
    }
    deepest
}

/// Refuses a `json` value nested deeper than [`JSON_MAX_DEPTH`] (the SDK
/// could not read it back); returns the value, for the binder to bind.
pub fn json<'v, J: Jsons>(def: &TableDef, column: usize, v: &'v J) -> Result<&'v J> {
    v.each_json(&mut |j| match json_depth(j) {
        d if d > JSON_MAX_DEPTH => Err(format!(
            "the JSON value nests {d} levels of arrays and objects; at most {JSON_MAX_DEPTH} can be read back"
        )),
        _ => Ok(()),
    })
    .map_err(|reason| refused(def, column, reason))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> serde_json::Value {
        let mut v = serde_json::json!(1);
        for i in 0..depth {
            v = match i % 2 {
                0 => serde_json::Value::Array(vec![v]),
                _ => serde_json::Value::Object([("k".to_string(), v)].into_iter().collect()),
            };
        }
        v
    }

    #[test]
    fn the_json_depth_limit_is_what_serde_json_reads_back() {
        for depth in [
            0,
            1,
            2,
            100,
            JSON_MAX_DEPTH - 1,
            JSON_MAX_DEPTH,
            JSON_MAX_DEPTH + 1,
            300,
        ] {
            let v = nested(depth);
            assert_eq!(json_depth(&v), depth);
            let text = serde_json::to_string(&v).unwrap();
            let reads = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(reads, depth <= JSON_MAX_DEPTH, "depth {depth}");
        }
        // Deeper than a recursive walk could go on a small stack.
        let deep = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let deep = nested(5000);
                let d = json_depth(&deep);
                drop(deep);
                d
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(deep, 5000);
    }

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
