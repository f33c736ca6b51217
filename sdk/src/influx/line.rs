//! The InfluxDB line-protocol encoder.
//!
//! `measurement[,tag=value...] field=value[,field=value...] timestamp\n`
//!
//! # What is written, and what is refused
//!
//! The rules are InfluxDB's own (its line-protocol reference and its
//! parsers: Go `models/points.go` of 1.x, read here by a real InfluxDB 1.6,
//! and the Rust `influxdb-line-protocol` crate of 2.x/3.x, which the tests
//! parse every encoded line with), checked against VictoriaMetrics too. Every
//! text is written so that all three read back exactly what was given, or
//! the point is refused with an [`EncodeError`] naming the field, before
//! anything is buffered:
//!
//! - measurement: `,` and space are escaped with a backslash; tag keys, tag
//!   values and field keys: `,`, `=` and space. String field values: `"`
//!   and `\` are escaped.
//! - A backslash in a measurement, tag or field key, or tag value is written
//!   as it is. The readers disagree on a backslash that ends the text or
//!   comes before `\`, `,`, `=` or a space (InfluxDB 1.x refuses
//!   `mount=C:\ ` and keeps `\\` as two backslashes, where VictoriaMetrics
//!   and InfluxDB 2.x read one), so such a text is
//!   [`EncodeError::Unrepresentable`]. `C:\temp` and `a\tb` are fine.
//! - A tab in those texts is refused (InfluxDB 2.x reads it as a separator,
//!   1.x and VictoriaMetrics as text), and so is a NUL, a measurement
//!   starting with `#` (a comment line) and an empty name.
//! - A tag value of `Some("")` is [`EncodeError::EmptyTag`]: InfluxDB has no
//!   empty tag values, and leaving the tag out would store another series.
//!   `None` leaves the tag out.
//! - The protocol has no escape for a newline: text holding one is
//!   [`EncodeError::Newline`]. InfluxDB's own parser accepts a newline
//!   inside a quoted string field value, so
//!   [`LineEncoder::allow_newlines_in_strings`] turns that on; it is off by
//!   default because VictoriaMetrics and other readers split lines first and
//!   then skip the whole point without an error.
//! - A float that is not finite is an error (InfluxDB rejects it), as is a
//!   time finer than the store's precision.

use ::chrono::{DateTime, NaiveDate, Utc};
use ::rust_decimal::Decimal;

/// Time precision of the `precision` query parameter and the timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    /// The name in the InfluxDB 1.x API's `precision` parameter.
    pub fn as_v1_str(self) -> &'static str {
        match self {
            Precision::Ns => "n",
            Precision::Us => "u",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }
    /// The name in the v2 API's `precision` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }
}

/// Why a point cannot be encoded. The point is left out of the batch whole
/// (nothing of it is buffered); each variant names the field, tag or
/// `measurement` at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The named field or tag holds a newline (string fields may, when allowed).
    #[error(
        "`{0}` holds a newline, which line protocol cannot carry (string fields may, when allowed)"
    )]
    Newline(String),
    /// The named float field is NaN or infinite.
    #[error("field `{0}` is not a finite number")]
    NotFinite(String),
    /// Every field of the point was `None`.
    #[error("a point needs at least one field with a value")]
    NoFields,
    /// The time is outside what `i64` nanoseconds hold, or finer than the precision.
    #[error("time {0} cannot be written with precision `{1}` without loss or overflow")]
    Time(DateTime<Utc>, &'static str),
    /// The point never called [`Line::time`].
    #[error("a point needs a time")]
    NoTime,
    /// A measurement, tag key, tag value or field key that InfluxDB 1.x,
    /// InfluxDB 2.x and VictoriaMetrics would not all read back as written.
    #[error("`{field}` cannot be written as line protocol: {reason}")]
    Unrepresentable {
        /// The tag or field key (`measurement` for the measurement).
        field: String,
        /// What in the text cannot be carried.
        reason: &'static str,
    },
    /// A tag whose value is the empty text (InfluxDB has no empty tag values).
    #[error(
        "tag `{0}` is empty: InfluxDB has no empty tag values (use None to leave the tag out)"
    )]
    EmptyTag(String),
    /// A value the field's declared type, or the store's float64, cannot
    /// hold exactly (a decimal with more places or digits than declared or
    /// than a float64 keeps, a string longer than `string(n)`, a name that
    /// is not one of the enum's): nothing of the point was taken.
    #[error("field `{field}` {reason}")]
    Value {
        /// The tag or field key.
        field: String,
        /// What is wrong, with the value.
        reason: String,
    },
}

/// Checks the value (an `Option`'s, if any) of tag or field `field`
/// against `rule` (one of [`crate::value::rules`]), for a point's
/// [`Point::encode`].
pub fn check<V, T: crate::value::Each<V> + ?Sized>(
    field: &str,
    value: &T,
    rule: impl Fn(&V) -> Result<(), String>,
) -> Result<(), EncodeError> {
    value.each(rule).map_err(|reason| EncodeError::Value {
        field: field.to_string(),
        reason,
    })
}

/// A point type: generated structs implement it.
pub trait Point {
    /// The measurement (already checked to be a safe name by the compiler).
    const MEASUREMENT: &'static str;
    /// Writes tags (sorted by key), then fields, then the time.
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError>;
}

/// A growing buffer of encoded lines.
#[derive(Debug, Clone)]
pub struct LineEncoder {
    buf: Vec<u8>,
    precision: Precision,
    /// Where each line ends in `buf` (after its `\n`), so a batch can be
    /// split on line boundaries even when string fields hold newlines.
    ends: Vec<usize>,
    newlines_in_strings: bool,
    victoriametrics: bool,
}

impl LineEncoder {
    pub fn new(precision: Precision) -> Self {
        LineEncoder {
            buf: Vec::new(),
            precision,
            ends: Vec::new(),
            newlines_in_strings: false,
            victoriametrics: false,
        }
    }
    /// Lets string field values hold newlines (InfluxDB accepts them).
    pub fn allow_newlines_in_strings(mut self, on: bool) -> Self {
        self.newlines_in_strings = on;
        self
    }
    /// Encodes for VictoriaMetrics, which keeps every value as a float64,
    /// no string fields, and times in milliseconds: a value it would not
    /// read back as written (an integer past 2^53, `-0`, a string, uuid or
    /// date field) is [`EncodeError::Value`], and a time finer than a
    /// millisecond is [`EncodeError::Time`], instead of being changed or
    /// dropped by the server. The schema's `server: victoriametrics`.
    pub fn for_victoriametrics(mut self, on: bool) -> Self {
        self.victoriametrics = on;
        self
    }
    /// Appends one point as a line. On error the buffer is left as it was.
    pub fn encode<P: Point + ?Sized>(&mut self, p: &P) -> Result<(), EncodeError> {
        let start = self.buf.len();
        let result = self.encode_inner(p);
        if result.is_err() {
            self.buf.truncate(start);
        } else {
            self.ends.push(self.buf.len());
        }
        result
    }
    fn encode_inner<P: Point + ?Sized>(&mut self, p: &P) -> Result<(), EncodeError> {
        escape_into(
            &mut self.buf,
            P::MEASUREMENT,
            Kind::Measurement,
            "measurement",
        )?;
        let mut line = Line {
            buf: &mut self.buf,
            precision: self.precision,
            fields: 0,
            timed: false,
            newlines_in_strings: self.newlines_in_strings,
            victoriametrics: self.victoriametrics,
        };
        p.encode(&mut line)?;
        if line.fields == 0 {
            return Err(EncodeError::NoFields);
        }
        if !line.timed {
            return Err(EncodeError::NoTime);
        }
        self.buf.push(b'\n');
        Ok(())
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Lines encoded since the last clear.
    pub fn lines(&self) -> usize {
        self.ends.len()
    }
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
    /// The bytes of lines `lines` (indexes of encoded lines, in order).
    pub fn lines_bytes(&self, lines: std::ops::Range<usize>) -> &[u8] {
        let start = match lines.start {
            0 => 0,
            i => self.ends[i - 1],
        };
        let end = match lines.end {
            0 => 0,
            i => self.ends[i - 1],
        };
        &self.buf[start..end]
    }
    /// Keeps only the lines in `keep` (ranges of line indexes, in order and
    /// not overlapping) and drops the rest.
    pub(crate) fn retain(&mut self, keep: &[std::ops::Range<usize>]) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for r in keep {
            for i in r.clone() {
                buf.extend_from_slice(self.lines_bytes(i..i + 1));
                ends.push(buf.len());
            }
        }
        self.buf = buf;
        self.ends = ends;
    }
    pub fn precision(&self) -> Precision {
        self.precision
    }
}

/// One line being written; handed to [`Point::encode`].
pub struct Line<'a> {
    buf: &'a mut Vec<u8>,
    precision: Precision,
    fields: usize,
    timed: bool,
    newlines_in_strings: bool,
    victoriametrics: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Measurement,
    Key,
}

/// Why a backslash cannot be written as it is.
const BACKSLASH: &str = "a backslash at the end or before `\\`, `,`, `=` or a space is read \
                         differently by InfluxDB 1.x, 2.x and VictoriaMetrics";

/// Writes a measurement, tag key, tag value or field key, escaped, or
/// refuses it (see the module documentation); `field` names it in errors.
fn escape_into(buf: &mut Vec<u8>, s: &str, kind: Kind, field: &str) -> Result<(), EncodeError> {
    let bad = |reason| EncodeError::Unrepresentable {
        field: field.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    if kind == Kind::Measurement && s.starts_with('#') {
        return Err(bad("a line starting with `#` is a comment"));
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b',' | b' ' => true,
            b'=' => kind == Kind::Key,
            b'\\' => {
                if matches!(bytes.get(i + 1), None | Some(b'\\' | b',' | b'=' | b' ')) {
                    return Err(bad(BACKSLASH));
                }
                false
            }
            b'\n' | b'\r' => return Err(EncodeError::Newline(field.to_string())),
            b'\t' => return Err(bad("InfluxDB 2.x reads a tab as a separator")),
            0 => return Err(bad("it holds a NUL character")),
            _ => false,
        };
        if escape {
            buf.extend_from_slice(&bytes[start..i]);
            buf.push(b'\\');
            start = i;
        }
    }
    buf.extend_from_slice(&bytes[start..]);
    Ok(())
}

/// A value that can be a tag (tags are text).
pub trait TagValue {
    /// The tag text, or `None` to leave the tag out.
    fn tag_text(&self) -> Option<String>;
}

macro_rules! tag_display {
    ($($t:ty),*) => {$(
        impl TagValue for $t {
            fn tag_text(&self) -> Option<String> { Some(self.to_string()) }
        }
    )*};
}
tag_display!(
    String,
    &str,
    i16,
    i32,
    i64,
    bool,
    Decimal,
    ::uuid::Uuid,
    NaiveDate
);

impl<T: TagValue> TagValue for Option<T> {
    fn tag_text(&self) -> Option<String> {
        self.as_ref().and_then(T::tag_text)
    }
}

/// A value that can be a field.
pub trait FieldValue {
    /// Writes the value; `Ok(false)` when there is none (a null is left out).
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError>;
    /// Whether a server that keeps every value as a float64 and no strings
    /// (VictoriaMetrics, [`LineEncoder::for_victoriametrics`]) reads the
    /// value back as written; else why not.
    fn float64_exact(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Integers a float64 holds exactly: |v| ≤ 2^53.
const FLOAT64_INTEGERS: i64 = 1 << 53;

const NO_STRINGS: &str =
    "is a string field, which VictoriaMetrics does not store (it drops the field)";

impl FieldValue for f64 {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        if !self.is_finite() {
            return Err(EncodeError::NotFinite(key.to_string()));
        }
        // Display gives the shortest text that reads back as the same f64.
        let s = self.to_string();
        buf.extend_from_slice(s.as_bytes());
        Ok(true)
    }
    fn float64_exact(&self) -> Result<(), String> {
        match *self == 0.0 && self.is_sign_negative() {
            true => Err("is -0, which VictoriaMetrics stores as 0".into()),
            false => Ok(()),
        }
    }
}

macro_rules! field_int {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            fn write_field(&self, _: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
                buf.extend_from_slice(self.to_string().as_bytes());
                buf.push(b'i');
                Ok(true)
            }
            fn float64_exact(&self) -> Result<(), String> {
                match i64::from(*self).unsigned_abs() <= FLOAT64_INTEGERS as u64 {
                    true => Ok(()),
                    false => Err(format!("is {self}, past the 2^53 a float64 (VictoriaMetrics) holds exactly")),
                }
            }
        }
    )*};
}
field_int!(i16, i32, i64);

impl FieldValue for bool {
    fn write_field(&self, _: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        buf.extend_from_slice(if *self { b"true" } else { b"false" });
        Ok(true)
    }
}

/// A decimal is written as its exact text (a float field). InfluxDB and
/// VictoriaMetrics keep float64: a decimal the nearest float64 does not
/// read back as (more than 15 or so significant digits) is refused
/// ([`crate::value::rules::float64_exact`]) rather than stored rounded.
impl FieldValue for Decimal {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        check(key, self, crate::value::rules::float64_exact)?;
        buf.extend_from_slice(self.normalize().to_string().as_bytes());
        Ok(true)
    }
}

impl FieldValue for str {
    fn write_field(&self, _: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        buf.push(b'"');
        for c in self.chars() {
            if c == '"' || c == '\\' {
                buf.push(b'\\');
            }
            let mut b = [0u8; 4];
            buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        buf.push(b'"');
        Ok(true)
    }
    fn float64_exact(&self) -> Result<(), String> {
        Err(NO_STRINGS.into())
    }
}

impl FieldValue for String {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.as_str().write_field(key, buf)
    }
    fn float64_exact(&self) -> Result<(), String> {
        Err(NO_STRINGS.into())
    }
}

/// UUIDs and dates are string fields.
impl FieldValue for ::uuid::Uuid {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.to_string().write_field(key, buf)
    }
    fn float64_exact(&self) -> Result<(), String> {
        Err(NO_STRINGS.into())
    }
}

impl FieldValue for NaiveDate {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.to_string().write_field(key, buf)
    }
    fn float64_exact(&self) -> Result<(), String> {
        Err(NO_STRINGS.into())
    }
}

/// A timestamp that is not the point's time: integer microseconds since the epoch.
impl FieldValue for DateTime<Utc> {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.timestamp_micros().write_field(key, buf)
    }
    fn float64_exact(&self) -> Result<(), String> {
        self.timestamp_micros().float64_exact()
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        match self {
            Some(v) => v.write_field(key, buf),
            None => Ok(false),
        }
    }
    fn float64_exact(&self) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), T::float64_exact)
    }
}

impl Line<'_> {
    /// Adds a tag; call in key order, before any field. An absent value
    /// (`None`) leaves the tag out; an empty one is [`EncodeError::EmptyTag`].
    pub fn tag(&mut self, key: &str, value: &impl TagValue) -> Result<(), EncodeError> {
        let Some(v) = value.tag_text() else {
            return Ok(());
        };
        if v.is_empty() {
            return Err(EncodeError::EmptyTag(key.to_string()));
        }
        self.buf.push(b',');
        escape_into(self.buf, key, Kind::Key, key)?;
        self.buf.push(b'=');
        escape_into(self.buf, &v, Kind::Key, key)
    }

    /// Adds a field; a `None` is left out.
    pub fn field<V: FieldValue + ?Sized>(
        &mut self,
        key: &str,
        value: &V,
    ) -> Result<(), EncodeError> {
        if self.victoriametrics {
            value.float64_exact().map_err(|reason| EncodeError::Value {
                field: key.to_string(),
                reason,
            })?;
        }
        let mark = self.buf.len();
        self.buf.push(if self.fields == 0 { b' ' } else { b',' });
        escape_into(self.buf, key, Kind::Key, key)?;
        self.buf.push(b'=');
        let start = self.buf.len();
        if value.write_field(key, self.buf)? {
            if !self.newlines_in_strings
                && self.buf[start..].iter().any(|&b| b == b'\n' || b == b'\r')
            {
                return Err(EncodeError::Newline(key.to_string()));
            }
            self.fields += 1;
        } else {
            self.buf.truncate(mark);
        }
        Ok(())
    }

    /// Ends the line with the point's time in the encoder's precision.
    pub fn time(&mut self, t: DateTime<Utc>) -> Result<(), EncodeError> {
        let nanos = t
            .timestamp_nanos_opt()
            .ok_or(EncodeError::Time(t, self.precision.as_str()))?;
        let div: i64 = match self.precision {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
        };
        // VictoriaMetrics keeps milliseconds, whatever the precision.
        let kept = if self.victoriametrics {
            div.max(1_000_000)
        } else {
            div
        };
        if nanos % kept != 0 {
            let what = if kept == div {
                self.precision.as_str()
            } else {
                "ms (VictoriaMetrics)"
            };
            return Err(EncodeError::Time(t, what));
        }
        self.buf.push(b' ');
        self.buf
            .extend_from_slice((nanos / div).to_string().as_bytes());
        self.timed = true;
        Ok(())
    }
}
