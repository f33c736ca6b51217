//! Values a target store's type cannot hold exactly, refused before they
//! are written.
//!
//! A copy of an entity in another store (a ClickHouse row, an Elasticsearch
//! document) may have a narrower type than the entity: `DateTime64` keeps
//! 1900–2299, Elasticsearch's `date_nanos` 1970–2262, JSON has no NaN. Such
//! a value is never replaced (serde_json would write NaN as `null`;
//! ClickHouse would clamp a date to its last day): the generated copy types
//! check each field with the rules below ([`check`] applies one to a value,
//! an `Option` or a `Vec`), and a refusal is a [`ValueError`] naming the
//! copy, the key and the field.

use ::chrono::{DateTime, Datelike, NaiveDate, Utc};

/// A value the target cannot hold exactly: nothing of its row or document
/// was taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{target}` (key {key}): field `{field}` {reason}")]
pub struct ValueError {
    /// The copy: the table or index alias it goes to.
    pub target: &'static str,
    /// The row's or document's key, as text (a JSON array for composite keys).
    pub key: String,
    /// The field (its name in the copy).
    pub field: &'static str,
    /// What the target cannot hold, with the value.
    pub reason: String,
}

/// A field shape whose values can be checked one by one: a value, an
/// optional value (`None` passes) or a list.
pub trait Each<V> {
    /// Applies `rule` to every value held.
    fn each(&self, rule: impl Fn(&V) -> Result<(), String>) -> Result<(), String>;
}

impl<V> Each<V> for V {
    fn each(&self, rule: impl Fn(&V) -> Result<(), String>) -> Result<(), String> {
        rule(self)
    }
}

impl<V> Each<V> for Option<V> {
    fn each(&self, rule: impl Fn(&V) -> Result<(), String>) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), rule)
    }
}

impl<V> Each<V> for Vec<V> {
    fn each(&self, rule: impl Fn(&V) -> Result<(), String>) -> Result<(), String> {
        self.iter().try_for_each(rule)
    }
}

/// Checks field `field` of the copy `target` with key `key()` (computed only
/// on a refusal) against `rule`.
pub fn check<V, T: Each<V> + ?Sized>(
    target: &'static str,
    key: impl FnOnce() -> String,
    field: &'static str,
    value: &T,
    rule: impl Fn(&V) -> Result<(), String>,
) -> Result<(), ValueError> {
    value.each(rule).map_err(|reason| ValueError {
        target,
        key: key(),
        field,
        reason,
    })
}

/// The rules, one per kind of target type.
pub mod rules {
    use super::*;

    /// JSON (and so every Elasticsearch number) has no NaN or infinity.
    pub fn finite(v: &f64) -> Result<(), String> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(format!("is {v}, which JSON cannot hold"))
        }
    }

    fn between(
        t: &DateTime<Utc>,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
        what: &str,
    ) -> Result<(), String> {
        if (lo..=hi).contains(t) {
            Ok(())
        } else {
            Err(format!("is {t}, outside what {what} holds ({lo} to {hi})"))
        }
    }

    /// Elasticsearch `date_nanos`: 1970-01-01 to 2262-04-11T23:47:16.854775807Z.
    pub fn date_nanos(t: &DateTime<Utc>) -> Result<(), String> {
        between(
            t,
            DateTime::UNIX_EPOCH,
            DateTime::from_timestamp_nanos(i64::MAX),
            "Elasticsearch `date_nanos`",
        )
    }

    /// Elasticsearch `date` with format `strict_date` (`yyyy-MM-dd`): years
    /// 0000 to 9999 (chrono writes other years with a sign, which the
    /// format refuses).
    pub fn strict_date(d: &NaiveDate) -> Result<(), String> {
        if (0..=9999).contains(&d.year()) {
            Ok(())
        } else {
            Err(format!(
                "is {d}, outside what Elasticsearch `strict_date` holds (years 0000 to 9999)"
            ))
        }
    }

    /// The deepest object nesting Elasticsearch's `flattened` type takes
    /// (its `depth_limit` default).
    pub const FLATTENED_DEPTH: usize = 20;
    /// The longest leaf, in bytes with its dotted path, that Lucene can
    /// index as one `flattened` term.
    pub const FLATTENED_LEAF: usize = 32_766;

    /// Elasticsearch `flattened`: a JSON object (not a bare string, number
    /// or array), at most [`FLATTENED_DEPTH`] objects deep, each leaf with
    /// its path at most [`FLATTENED_LEAF`] bytes.
    pub fn flattened(v: &serde_json::Value) -> Result<(), String> {
        if !v.is_object() {
            return Err(format!(
                "is {}, but Elasticsearch `flattened` takes only an object at the root",
                kind(v)
            ));
        }
        flattened_at(v, "", 0)
    }

    fn kind(v: &serde_json::Value) -> &'static str {
        match v {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        }
    }

    fn flattened_at(v: &serde_json::Value, path: &str, depth: usize) -> Result<(), String> {
        use serde_json::Value as J;
        match v {
            J::Object(m) => {
                if depth + 1 > FLATTENED_DEPTH {
                    return Err(format!(
                        "nests objects deeper than Elasticsearch `flattened` takes ({FLATTENED_DEPTH}) at `{path}`"
                    ));
                }
                m.iter().try_for_each(|(k, v)| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    flattened_at(v, &p, depth + 1)
                })
            }
            J::Array(a) => a.iter().try_for_each(|v| flattened_at(v, path, depth)),
            J::Null => Ok(()),
            leaf => {
                let text = match leaf {
                    J::String(s) => s.len(),
                    other => other.to_string().len(),
                };
                if path.len() + 1 + text > FLATTENED_LEAF {
                    Err(format!(
                        "has a leaf at `{path}` longer than Elasticsearch `flattened` indexes ({FLATTENED_LEAF} bytes with its path)"
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A declared `decimal(P,S)`: at most `S` places (trailing zeros are
    /// not places) and `P - S` integer digits, as PostgreSQL's column keeps
    /// (the same rule as the repositories' check before a write).
    pub fn declared_decimal(
        precision: u8,
        scale: u8,
    ) -> impl Fn(&::rust_decimal::Decimal) -> Result<(), String> {
        move |d| decimal_fits(d, u32::from(precision), u32::from(scale))
    }

    /// A float64 store (InfluxDB, VictoriaMetrics): the decimal must read
    /// back from the nearest float64 as the same number.
    pub fn float64_exact(d: &::rust_decimal::Decimal) -> Result<(), String> {
        let n = d.normalize();
        // Up to 15 significant digits always read back (DBL_DIG): the
        // common case, decided without formatting on the writer's path.
        if n.mantissa().unsigned_abs() < 1_000_000_000_000_000 {
            return Ok(());
        }
        // The server parses the decimal text (correctly rounded, as Rust's
        // `parse::<f64>` does) and gives back the shortest text of that
        // float64 (`Display`).
        let text = n.to_string();
        let back = (text.parse::<f64>().ok())
            .and_then(|f| f.to_string().parse::<::rust_decimal::Decimal>().ok())
            .map(|b| b.normalize());
        match back == Some(n) {
            true => Ok(()),
            false => Err(format!(
                "is {d}, which a float64 field cannot hold exactly (about 15 significant digits)"
            )),
        }
    }

    /// `string(n)`: at most `n` characters.
    pub fn max_chars(n: u32) -> impl Fn(&String) -> Result<(), String> {
        move |s| match s.len() <= n as usize || s.chars().count() <= n as usize {
            true => Ok(()),
            false => Err(format!(
                "is {} characters long, more than string({n}) holds",
                s.chars().count()
            )),
        }
    }

    /// An enum stored by name: one of `names`.
    pub fn one_of(names: &'static [&'static str]) -> impl Fn(&String) -> Result<(), String> {
        move |s| match names.contains(&s.as_str()) {
            true => Ok(()),
            false => Err(format!("is `{s}`, not one of the enum's values {names:?}")),
        }
    }

    #[cfg(feature = "clickhouse")]
    /// ClickHouse `Decimal(P,S)`: at most `S` places (trailing zeros are
    /// not places) and `P` digits in all.
    pub fn decimal(
        precision: u8,
        scale: u8,
    ) -> impl Fn(&::rust_decimal::Decimal) -> Result<(), String> {
        move |d| {
            crate::clickhouse::columns::decimal_to_scaled(d, precision, scale)
                .map(|_| ())
                .map_err(|e| format!("cannot be written: {e}"))
        }
    }

    fn clickhouse_min() -> NaiveDate {
        NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date")
    }
    fn clickhouse_max() -> NaiveDate {
        NaiveDate::from_ymd_opt(2299, 12, 31).expect("a date")
    }

    /// ClickHouse `Date32`: 1900-01-01 to 2299-12-31.
    pub fn date32(d: &NaiveDate) -> Result<(), String> {
        let (lo, hi) = (clickhouse_min(), clickhouse_max());
        if (lo..=hi).contains(d) {
            Ok(())
        } else {
            Err(format!(
                "is {d}, outside what ClickHouse `Date32` holds ({lo} to {hi})"
            ))
        }
    }

    /// ClickHouse `DateTime64`: 1900-01-01 00:00:00 to 2299-12-31 23:59:59.999999 UTC.
    pub fn datetime64(t: &DateTime<Utc>) -> Result<(), String> {
        let lo = clickhouse_min().and_time(Default::default()).and_utc();
        let hi = clickhouse_max()
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .expect("a time")
            .and_utc();
        between(t, lo, hi, "ClickHouse `DateTime64`")
    }
}

/// Whether `d` fits `decimal(precision, scale)`: at most `scale` places
/// (trailing zeros are not places) and `precision - scale` integer digits;
/// else why not.
pub fn decimal_fits(d: &::rust_decimal::Decimal, precision: u32, scale: u32) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::rules::*;
    use ::rust_decimal::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn float64_exact_takes_what_a_float64_reads_back_as_written() {
        for ok in [
            "0.1",
            "1.23456",
            "-0.001",
            "123456789012345",
            "1e-10",
            "0",
            "9007199254740992",
            "0.1000000000000000",
        ] {
            let v: Decimal = ok
                .parse()
                .or_else(|_| Decimal::from_scientific(ok))
                .unwrap();
            assert!(float64_exact(&v).is_ok(), "{ok}");
        }
        for bad in [
            "1234567890123456789.012345678",
            "9007199254740993",
            "0.12345678901234567",
        ] {
            let e = float64_exact(&d(bad)).unwrap_err();
            assert!(e.contains("float64"), "{bad}: {e}");
        }
    }

    #[test]
    fn declared_decimals_strings_and_enums() {
        let dec = declared_decimal(6, 3);
        assert!(dec(&d("123.456")).is_ok() && dec(&d("1.500000")).is_ok());
        assert!(dec(&d("1.23456")).unwrap_err().contains("5 decimal places"));
        assert!(dec(&d("1234.5")).unwrap_err().contains("4 integer digits"));
        let max = max_chars(3);
        assert!(max(&"żółw".chars().take(3).collect()).is_ok());
        assert!(max(&"abcd".to_string())
            .unwrap_err()
            .contains("4 characters"));
        let e = one_of(&["BUY", "SELL"]);
        assert!(e(&"BUY".to_string()).is_ok());
        assert!(e(&"NOPE".to_string()).unwrap_err().contains("not one of"));
    }
}
