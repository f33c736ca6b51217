//! The InfluxDB line-protocol encoder.
//!
//! `measurement[,tag=value...] field=value[,field=value...] timestamp\n`
//!
//! Escaping, as the protocol defines it: in the measurement `,` and space;
//! in tag keys, tag values and field keys `,`, `=` and space; in string field
//! values `"`; and a backslash everywhere, so that text ending in `\` or
//! holding `\,` cannot be read as an escape. The protocol has no escape for
//! a newline: text holding one is an [`EncodeError`], never silently changed.
//! InfluxDB's own parser accepts a newline inside a quoted string field
//! value, so [`LineEncoder::allow_newlines_in_strings`] turns that on; it is
//! off by default because VictoriaMetrics and other readers split lines
//! first and then skip the whole point without an error. A float that is not finite is an error too
//! (InfluxDB rejects it), as is a time finer than the store's precision.

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
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }
}

/// Why a point cannot be encoded. The point is left out of the batch whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "`{0}` holds a newline, which line protocol cannot carry (string fields may, when allowed)"
    )]
    Newline(String),
    #[error("field `{0}` is not a finite number")]
    NotFinite(String),
    #[error("a point needs at least one field with a value")]
    NoFields,
    #[error("time {0} cannot be written with precision `{1}` without loss or overflow")]
    Time(DateTime<Utc>, &'static str),
    #[error("a point needs a time")]
    NoTime,
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
    lines: usize,
    newlines_in_strings: bool,
}

impl LineEncoder {
    pub fn new(precision: Precision) -> Self {
        LineEncoder {
            buf: Vec::new(),
            precision,
            lines: 0,
            newlines_in_strings: false,
        }
    }
    /// Lets string field values hold newlines (InfluxDB accepts them).
    pub fn allow_newlines_in_strings(mut self, on: bool) -> Self {
        self.newlines_in_strings = on;
        self
    }
    /// Appends one point as a line. On error the buffer is left as it was.
    pub fn encode<P: Point + ?Sized>(&mut self, p: &P) -> Result<(), EncodeError> {
        let start = self.buf.len();
        let result = self.encode_inner(p);
        if result.is_err() {
            self.buf.truncate(start);
        } else {
            self.lines += 1;
        }
        result
    }
    fn encode_inner<P: Point + ?Sized>(&mut self, p: &P) -> Result<(), EncodeError> {
        escape_into(&mut self.buf, P::MEASUREMENT, Kind::Measurement)?;
        let mut line = Line {
            buf: &mut self.buf,
            precision: self.precision,
            fields: 0,
            timed: false,
            newlines_in_strings: self.newlines_in_strings,
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
        self.lines
    }
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines = 0;
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
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Measurement,
    Key,
}

fn escape_into(buf: &mut Vec<u8>, s: &str, kind: Kind) -> Result<(), EncodeError> {
    for c in s.chars() {
        match c {
            '\n' | '\r' => return Err(EncodeError::Newline(s.to_string())),
            ',' | ' ' | '\\' => buf.push(b'\\'),
            '=' if kind == Kind::Key => buf.push(b'\\'),
            _ => {}
        }
        let mut b = [0u8; 4];
        buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
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
}

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
}

macro_rules! field_int {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            fn write_field(&self, _: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
                buf.extend_from_slice(self.to_string().as_bytes());
                buf.push(b'i');
                Ok(true)
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

/// A decimal is written as its exact text (a float field). InfluxDB keeps
/// float64: exact for values of up to 15 significant digits.
impl FieldValue for Decimal {
    fn write_field(&self, _: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
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
}

impl FieldValue for String {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.as_str().write_field(key, buf)
    }
}

/// UUIDs and dates are string fields.
impl FieldValue for ::uuid::Uuid {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.to_string().write_field(key, buf)
    }
}

impl FieldValue for NaiveDate {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.to_string().write_field(key, buf)
    }
}

/// A timestamp that is not the point's time: integer microseconds since the epoch.
impl FieldValue for DateTime<Utc> {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        self.timestamp_micros().write_field(key, buf)
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    fn write_field(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, EncodeError> {
        match self {
            Some(v) => v.write_field(key, buf),
            None => Ok(false),
        }
    }
}

impl Line<'_> {
    /// Adds a tag; call in key order, before any field. Empty or absent
    /// values leave the tag out (InfluxDB has no empty tag values).
    pub fn tag(&mut self, key: &str, value: &impl TagValue) -> Result<(), EncodeError> {
        let Some(v) = value.tag_text().filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        self.buf.push(b',');
        escape_into(self.buf, key, Kind::Key)?;
        self.buf.push(b'=');
        escape_into(self.buf, &v, Kind::Key)
    }

    /// Adds a field; a `None` is left out.
    pub fn field<V: FieldValue + ?Sized>(
        &mut self,
        key: &str,
        value: &V,
    ) -> Result<(), EncodeError> {
        let mark = self.buf.len();
        self.buf.push(if self.fields == 0 { b' ' } else { b',' });
        escape_into(self.buf, key, Kind::Key)?;
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
        if nanos % div != 0 {
            return Err(EncodeError::Time(t, self.precision.as_str()));
        }
        self.buf.push(b' ');
        self.buf
            .extend_from_slice((nanos / div).to_string().as_bytes());
        self.timed = true;
        Ok(())
    }
}
