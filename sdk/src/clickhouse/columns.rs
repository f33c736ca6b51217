//! serde helpers for the column encodings generated rows use. Each helper is
//! generic over the field's shape (`T`, `Option<T>`, `Vec<T>`), so one path
//! serves every nullability and array form.
//!
//! * decimals go as the scaled integer of `Decimal(P,S)` (Int32/64/128 by
//!   precision); a value with more decimal places than `S` or more digits
//!   than `P` is an error, never rounded;
//! * timestamps go as Int64 microseconds since the epoch (the wire form of
//!   `DateTime64(6)`, and the lossless stand-in on servers without it);
//! * dates go as Int32 days since the epoch (`Date32`, or `Int32` on old servers);
//! * bytes go as a RowBinary `String`.

use ::chrono::{DateTime, NaiveDate, Utc};
use ::rust_decimal::Decimal;
use ::serde::de::Error as _;
use ::serde::ser::Error as _;
use ::serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A field shape that is a value, an optional value or a list of values.
pub trait Shape<V> {
    fn ser_with<S: Serializer>(
        &self,
        s: S,
        one: impl Fn(&V) -> Result<Wire, String>,
    ) -> Result<S::Ok, S::Error>;
    fn de_with<'de, D: Deserializer<'de>>(
        d: D,
        kind: WireKind,
        one: impl Fn(Wire) -> Result<V, String>,
    ) -> Result<Self, D::Error>
    where
        Self: Sized;
}

/// One value as it goes on the wire.
#[derive(Debug, Clone, Copy)]
pub enum Wire {
    I32(i32),
    I64(i64),
    I128(i128),
}

/// Which integer a column is made of.
#[derive(Debug, Clone, Copy)]
pub enum WireKind {
    I32,
    I64,
    I128,
}

impl Serialize for Wire {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Wire::I32(v) => s.serialize_i32(v),
            Wire::I64(v) => s.serialize_i64(v),
            Wire::I128(v) => s.serialize_i128(v),
        }
    }
}

struct WireSeed(WireKind);

impl WireKind {
    fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Wire, D::Error> {
        Ok(match self {
            WireKind::I32 => Wire::I32(i32::deserialize(d)?),
            WireKind::I64 => Wire::I64(i64::deserialize(d)?),
            WireKind::I128 => Wire::I128(i128::deserialize(d)?),
        })
    }
}

impl<'de> ::serde::de::DeserializeSeed<'de> for WireSeed {
    type Value = Wire;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Wire, D::Error> {
        self.0.read(d)
    }
}

impl<V> Shape<V> for V {
    fn ser_with<S: Serializer>(
        &self,
        s: S,
        one: impl Fn(&V) -> Result<Wire, String>,
    ) -> Result<S::Ok, S::Error> {
        one(self).map_err(S::Error::custom)?.serialize(s)
    }
    fn de_with<'de, D: Deserializer<'de>>(
        d: D,
        kind: WireKind,
        one: impl Fn(Wire) -> Result<V, String>,
    ) -> Result<Self, D::Error> {
        one(kind.read(d)?).map_err(D::Error::custom)
    }
}

impl<V> Shape<V> for Option<V> {
    fn ser_with<S: Serializer>(
        &self,
        s: S,
        one: impl Fn(&V) -> Result<Wire, String>,
    ) -> Result<S::Ok, S::Error> {
        match self {
            None => s.serialize_none(),
            Some(v) => s.serialize_some(&one(v).map_err(S::Error::custom)?),
        }
    }
    fn de_with<'de, D: Deserializer<'de>>(
        d: D,
        kind: WireKind,
        one: impl Fn(Wire) -> Result<V, String>,
    ) -> Result<Self, D::Error> {
        let w: Option<Wire> = match kind {
            WireKind::I32 => Option::<i32>::deserialize(d)?.map(Wire::I32),
            WireKind::I64 => Option::<i64>::deserialize(d)?.map(Wire::I64),
            WireKind::I128 => Option::<i128>::deserialize(d)?.map(Wire::I128),
        };
        w.map(one).transpose().map_err(D::Error::custom)
    }
}

impl<V> Shape<V> for Vec<V> {
    fn ser_with<S: Serializer>(
        &self,
        s: S,
        one: impl Fn(&V) -> Result<Wire, String>,
    ) -> Result<S::Ok, S::Error> {
        let wires: Vec<Wire> = self
            .iter()
            .map(&one)
            .collect::<Result<_, _>>()
            .map_err(S::Error::custom)?;
        wires.serialize(s)
    }
    fn de_with<'de, D: Deserializer<'de>>(
        d: D,
        kind: WireKind,
        one: impl Fn(Wire) -> Result<V, String>,
    ) -> Result<Self, D::Error> {
        struct Seq<F>(WireKind, F);
        impl<'de, V, F: Fn(Wire) -> Result<V, String>> ::serde::de::Visitor<'de> for Seq<F> {
            type Value = Vec<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: ::serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<V>, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(w) = a.next_element_seed(WireSeed(self.0))? {
                    out.push((self.1)(w).map_err(A::Error::custom)?);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Seq(kind, one))
    }
}

fn wire_i128(w: Wire) -> i128 {
    match w {
        Wire::I32(v) => v.into(),
        Wire::I64(v) => v.into(),
        Wire::I128(v) => v,
    }
}

/// The integer `Decimal(P, _)` is made of.
pub const fn decimal_kind(precision: u8) -> WireKind {
    if precision <= 9 {
        WireKind::I32
    } else if precision <= 18 {
        WireKind::I64
    } else {
        WireKind::I128
    }
}

/// The scaled integer of `d` in `Decimal(P,S)`, or why it does not fit.
pub fn decimal_to_scaled(d: &Decimal, precision: u8, scale: u8) -> Result<i128, String> {
    let have = d.scale();
    let scale = u32::from(scale);
    let m = d.mantissa();
    let scaled = if have > scale {
        let div = 10i128.pow(have - scale);
        if m % div != 0 {
            return Err(format!("{d} has more than {scale} decimal places"));
        }
        m / div
    } else {
        10i128
            .checked_pow(scale - have)
            .and_then(|p| m.checked_mul(p))
            .ok_or_else(|| format!("{d} does not fit Decimal({precision},{scale})"))?
    };
    let limit = 10i128.pow(u32::from(precision.min(38)));
    if scaled.abs() >= limit {
        return Err(format!("{d} does not fit Decimal({precision},{scale})"));
    }
    Ok(scaled)
}

/// Serializes a decimal field (`Decimal`, `Option<Decimal>`, `Vec<Decimal>`)
/// as `Decimal(P,S)`.
pub fn decimal_ser<T: Shape<Decimal>, S: Serializer, const P: u8, const SC: u8>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    v.ser_with(s, |d| {
        let m = decimal_to_scaled(d, P, SC)?;
        Ok(match decimal_kind(P) {
            // In range by the precision check above.
            WireKind::I32 => Wire::I32(m as i32),
            WireKind::I64 => Wire::I64(m as i64),
            WireKind::I128 => Wire::I128(m),
        })
    })
}

/// Reads a decimal field written by [`decimal_ser`].
pub fn decimal_de<'de, T: Shape<Decimal>, D: Deserializer<'de>, const P: u8, const SC: u8>(
    d: D,
) -> Result<T, D::Error> {
    T::de_with(d, decimal_kind(P), |w| {
        Decimal::try_from_i128_with_scale(wire_i128(w), u32::from(SC)).map_err(|e| e.to_string())
    })
}

/// Serializes a timestamp field as Int64 microseconds since the epoch,
/// truncated to the microsecond at or before it: the SDK's one rule for
/// every store (PostgreSQL's binders apply the same, see
/// `strata_sdk::postgres::check::micros`).
pub fn micros_ser<T: Shape<DateTime<Utc>>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    // `timestamp_micros` is the whole seconds at or before `t` plus the
    // whole microseconds of its (forward-counting) fraction: a floor.
    v.ser_with(s, |t| Ok(Wire::I64(t.timestamp_micros())))
}

/// Reads a timestamp field written by [`micros_ser`].
pub fn micros_de<'de, T: Shape<DateTime<Utc>>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::de_with(d, WireKind::I64, |w| {
        let us = wire_i128(w) as i64;
        DateTime::from_timestamp_micros(us).ok_or_else(|| format!("{us} µs is out of range"))
    })
}

/// Serializes a date field as Int32 days since 1970-01-01.
pub fn days_ser<T: Shape<NaiveDate>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    v.ser_with(s, |d| {
        let days = d.signed_duration_since(NaiveDate::default()).num_days();
        i32::try_from(days)
            .map(Wire::I32)
            .map_err(|_| format!("{d} is out of range"))
    })
}

/// Reads a date field written by [`days_ser`].
pub fn days_de<'de, T: Shape<NaiveDate>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::de_with(d, WireKind::I32, |w| {
        let days = wire_i128(w) as i64;
        NaiveDate::default()
            .checked_add_signed(::chrono::TimeDelta::days(days))
            .ok_or_else(|| format!("{days} days is out of range"))
    })
}

/// `bytes` fields as a RowBinary `String` (not an array of numbers).
pub mod bytes {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> ::serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: ::serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_string<E: ::serde::de::Error>(self, v: String) -> Result<Vec<u8>, E> {
                Ok(v.into_bytes())
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// `Option<bytes>` fields as a RowBinary `Nullable(String)`.
pub mod bytes_opt {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        struct B<'a>(&'a [u8]);
        impl Serialize for B<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        match v {
            None => s.serialize_none(),
            Some(b) => s.serialize_some(&B(b)),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct B(#[serde(deserialize_with = "super::bytes::deserialize")] Vec<u8>);
        Ok(Option::<B>::deserialize(d)?.map(|b| b.0))
    }
}
