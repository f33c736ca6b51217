//! Floats JSON has no number for (NaN, ±infinity), written and read
//! losslessly: in a human-readable format (JSON) as the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"` — the JSON mapping protobuf uses for
//! `float` and `double` (<https://protobuf.dev/programming-guides/json/>) —
//! and in a binary one (MessagePack, the cache's entries) as the float
//! itself. Finite values are written as before, and a plain JSON number is
//! read as before, so adding this to a field changes nothing else.
//!
//! serde_json alone writes NaN as `null` (then read back as `None`, or an
//! error) and cannot read it back; change events of a row holding NaN
//! would be lost. Generated entities carry it on every `f64` field; a
//! hand-written `#[derive(Entity)]` struct adds it itself:
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Reading {
//!     #[serde(with = "strata_sdk::float")]
//!     ratio: f64,
//!     #[serde(default, with = "strata_sdk::float")]
//!     low: Option<f64>,
//! }
//! let r: Reading = serde_json::from_str(r#"{"ratio": "NaN", "low": "-Infinity"}"#).unwrap();
//! assert!(r.ratio.is_nan() && r.low == Some(f64::NEG_INFINITY));
//! assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"ratio":"NaN","low":"-Infinity"}"#);
//! ```

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Shapes of float fields this module reads and writes: `f64`, `f32`,
/// and `Option` and `Vec` of them.
pub trait Floats: Sized {
    /// Writes the value.
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// Reads the value.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// For `#[serde(with = "strata_sdk::float")]`: writes `v`.
pub fn serialize<T: Floats, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    v.write(s)
}

/// For `#[serde(with = "strata_sdk::float")]`: reads a `T`.
pub fn deserialize<'de, T: Floats, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::read(d)
}

/// The string a float JSON has no number for is written as (`"NaN"`,
/// `"Infinity"`, `"-Infinity"`); `None` for a finite one.
pub fn json_name(x: f64) -> Option<&'static str> {
    match x {
        x if x.is_nan() => Some("NaN"),
        f64::INFINITY => Some("Infinity"),
        f64::NEG_INFINITY => Some("-Infinity"),
        _ => None,
    }
}

/// One float, written and read as the module says.
#[derive(Debug, Clone, Copy, PartialEq)]
struct F(f64);

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match json_name(self.0).filter(|_| s.is_human_readable()) {
            Some(name) => s.serialize_str(name),
            None => s.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<F, D::Error> {
        d.deserialize_any(FloatVisitor).map(F)
    }
}

pub(crate) struct FloatVisitor;

impl FloatVisitor {
    /// The float a JSON string names (`"NaN"`, `"Infinity"`, `"-Infinity"`).
    pub(crate) fn parse(s: &str) -> Option<f64> {
        match s {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        }
    }
}

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(r#"a number, or "NaN", "Infinity" or "-Infinity""#)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_f32<E: de::Error>(self, v: f32) -> Result<f64, E> {
        Ok(f64::from(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        Self::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl Floats for f64 {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        F(*self).serialize(s)
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        F::deserialize(d).map(|f| f.0)
    }
}

impl Floats for f32 {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.is_finite() || !s.is_human_readable() {
            true => s.serialize_f32(*self),
            false => F(f64::from(*self)).serialize(s),
        }
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        F::deserialize(d).map(|f| f.0 as f32)
    }
}

/// An element of a list or option, through [`Floats`].
struct Item<'a, T>(&'a T);

impl<T: Floats> Serialize for Item<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.write(s)
    }
}

/// An element read through [`Floats`].
struct Owned<T>(T);

impl<'de, T: Floats> Deserialize<'de> for Owned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::read(d).map(Owned)
    }
}

impl<T: Floats> Floats for Option<T> {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(v) => s.serialize_some(&Item(v)),
            None => s.serialize_none(),
        }
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<Owned<T>>::deserialize(d).map(|o| o.map(|v| v.0))
    }
}

impl<T: Floats> Floats for Vec<T> {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Item))
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Owned<T>>::deserialize(d).map(|v| v.into_iter().map(|o| o.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Row {
        #[serde(with = "crate::float")]
        x: f64,
        #[serde(default, with = "crate::float")]
        o: Option<f64>,
        #[serde(default, with = "crate::float")]
        v: Option<Vec<f64>>,
        #[serde(with = "crate::float")]
        s: f32,
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn every_float_round_trips_through_json_and_messagepack() {
        let values = [
            0.0,
            -0.0,
            1.5,
            -1e300,
            f64::MIN_POSITIVE / 4.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for &x in &values {
            let r = Row {
                x,
                o: Some(x),
                v: Some(vec![x, 1.0]),
                s: x as f32,
            };
            let json = serde_json::to_string(&r).unwrap();
            let mut backs: Vec<Row> = vec![serde_json::from_str(&json).unwrap()];
            #[cfg(feature = "cache")]
            backs.push(rmp_serde::from_slice(&rmp_serde::to_vec_named(&r).unwrap()).unwrap());
            for b in &backs {
                assert!(same(b.x, x) && same(b.o.unwrap(), x), "{x}: {json}");
                assert!(same(b.v.as_ref().unwrap()[0], x), "{x}: {json}");
                assert!(same(f64::from(b.s), f64::from(x as f32)), "{x}: {json}");
            }
        }
    }

    #[test]
    fn finite_values_are_plain_json_numbers_and_missing_options_are_none() {
        let r: Row = serde_json::from_str(r#"{"x": 2, "s": 1.25}"#).unwrap();
        assert_eq!((r.x, r.o, r.s), (2.0, None, 1.25));
        let text = serde_json::to_string(&Row {
            x: 0.1,
            o: None,
            v: None,
            s: 1.0,
        })
        .unwrap();
        assert_eq!(text, r#"{"x":0.1,"o":null,"v":null,"s":1.0}"#);
        let e = serde_json::from_str::<Row>(r#"{"x": "nan", "s": 1}"#).unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
    }
}
