//! Values between PostgreSQL's text output and the targets' formats.
//!
//! Both the snapshot (`COPY ... TO STDOUT`, text format) and the stream
//! (pgoutput, text) deliver each value as its type's text output, read in a
//! session with `TimeZone=UTC`, `DateStyle=ISO` and `extra_float_digits=3`
//! so that the text is unambiguous and floats round-trip. [`parse_pg`]
//! turns it into a [`Cell`]; the targets encode cells ([`write_tsv`] for
//! ClickHouse `TabSeparated`, [`to_json`] for Elasticsearch); `verify` reads
//! ClickHouse's text back with [`parse_ch`] and compares cells.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;

use super::spec::{ClickHouseFlags, ColumnSpec, ColumnType};

/// One value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(Decimal),
    Text(String),
    Bytes(Vec<u8>),
    Uuid(uuid::Uuid),
    /// Microseconds since 1970-01-01 UTC.
    Micros(i64),
    /// Days since 1970-01-01.
    Days(i32),
    Array(Vec<Cell>),
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => unreachable!(),
};

fn scalar_pg(ty: ColumnType, s: &str) -> Result<Cell, String> {
    let bad = |what: &str| format!("`{}` is not {what}", s.chars().take(60).collect::<String>());
    Ok(match ty {
        ColumnType::Uuid => Cell::Uuid(s.parse().map_err(|_| bad("a UUID"))?),
        ColumnType::Text | ColumnType::Json => Cell::Text(s.to_string()),
        ColumnType::Bytes => {
            let h = s.strip_prefix("\\x").ok_or_else(|| bad("hex bytea"))?;
            Cell::Bytes(hex::decode(h).map_err(|_| bad("hex bytea"))?)
        }
        ColumnType::Bool => match s {
            "t" | "true" => Cell::Bool(true),
            "f" | "false" => Cell::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        ColumnType::I16 | ColumnType::I32 | ColumnType::I64 => {
            Cell::Int(s.parse().map_err(|_| bad("an integer"))?)
        }
        ColumnType::F64 => Cell::Float(parse_float(s).ok_or_else(|| bad("a float"))?),
        ColumnType::Decimal { .. } => Cell::Decimal(
            s.parse::<Decimal>()
                .map_err(|_| {
                    bad("a decimal the copy can hold (NaN and more than 28 digits are refused)")
                })?
                .normalize(),
        ),
        ColumnType::Timestamptz => {
            let t = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
                .map_err(|_| bad("a UTC timestamp (infinity and BC are refused)"))?;
            Cell::Micros(t.with_timezone(&Utc).timestamp_micros())
        }
        ColumnType::Date => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("a date"))?;
            Cell::Days((d - EPOCH).num_days() as i32)
        }
    })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" | "-nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Reads PostgreSQL's text output of a column's value (`None`: NULL).
pub fn parse_pg(col: &ColumnSpec, text: Option<&str>) -> Result<Cell, String> {
    let Some(s) = text else {
        return Ok(Cell::Null);
    };
    if !col.array {
        return scalar_pg(col.ty, s);
    }
    let items = pg_array(s)?;
    items
        .into_iter()
        .map(|i| match i {
            None => Ok(Cell::Null),
            Some(v) => scalar_pg(col.ty, &v),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Cell::Array)
}

/// Splits a one-dimensional PostgreSQL array literal (`{a,"b c",NULL}`).
fn pg_array(s: &str) -> Result<Vec<Option<String>>, String> {
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("`{s}` is not a one-dimensional array"))?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => item.push(chars.next().ok_or("array ends inside an escape")?),
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err("array ends inside a quoted element".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' {
                    return Err("multi-dimensional arrays are not copied".into());
                }
                item.push(c);
                chars.next();
            }
        }
        out.push(if !quoted && item == "NULL" {
            None
        } else {
            Some(item)
        });
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => return Err(format!("unexpected `{c}` in an array")),
        }
    }
    Ok(out)
}

/// Decodes one field of PostgreSQL's COPY text format in place
/// (`\N` is NULL; backslash escapes as `COPY` writes them).
pub fn copy_unescape(field: &[u8]) -> Option<Vec<u8>> {
    if field == b"\\N" {
        return None;
    }
    if !field.contains(&b'\\') {
        return Some(field.to_vec());
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let c = field[i];
        if c != b'\\' || i + 1 == field.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = field[i + 1];
        i += 2;
        match n {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(n - b'0');
                let mut k = 0;
                while k < 2 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + u32::from(field[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < field.len() && field[i].is_ascii_hexdigit() {
                    v = v * 16 + (field[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

fn tsv_escape(out: &mut Vec<u8>, b: &[u8]) {
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            b'\'' => out.extend_from_slice(b"\\'"),
            _ => out.push(c),
        }
    }
}

fn fmt_micros(us: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default();
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

fn fmt_days(d: i32) -> String {
    (EPOCH + chrono::Duration::days(i64::from(d)))
        .format("%Y-%m-%d")
        .to_string()
}

fn write_scalar(out: &mut Vec<u8>, c: &Cell, f: ClickHouseFlags, in_array: bool) {
    let quote = |out: &mut Vec<u8>, b: &[u8]| {
        if in_array {
            out.push(b'\'');
        }
        tsv_escape(out, b);
        if in_array {
            out.push(b'\'');
        }
    };
    match c {
        Cell::Null => out.extend_from_slice(if in_array { b"NULL" } else { b"\\N" }),
        Cell::Bool(b) => out.extend_from_slice(match (f.bool_type, b) {
            (true, true) => b"true",
            (true, false) => b"false",
            (false, true) => b"1",
            (false, false) => b"0",
        }),
        Cell::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Cell::Float(x) => out.extend_from_slice(
            if x.is_nan() {
                "nan".to_string()
            } else if x.is_infinite() {
                if *x > 0.0 { "inf" } else { "-inf" }.to_string()
            } else {
                format!("{x:?}")
            }
            .as_bytes(),
        ),
        Cell::Decimal(d) => out.extend_from_slice(d.to_string().as_bytes()),
        Cell::Text(s) => quote(out, s.as_bytes()),
        Cell::Bytes(b) => quote(out, b),
        Cell::Uuid(u) => quote(out, u.to_string().as_bytes()),
        Cell::Micros(us) if f.datetime64 => quote(out, fmt_micros(*us).as_bytes()),
        Cell::Micros(us) => out.extend_from_slice(us.to_string().as_bytes()),
        Cell::Days(d) if f.date32 => quote(out, fmt_days(*d).as_bytes()),
        Cell::Days(d) => out.extend_from_slice(d.to_string().as_bytes()),
        Cell::Array(items) => {
            out.push(b'[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(out, it, f, true);
            }
            out.push(b']');
        }
    }
}

/// Appends a cell as one ClickHouse `TabSeparated` field.
pub fn write_tsv(out: &mut Vec<u8>, c: &Cell, f: ClickHouseFlags) {
    write_scalar(out, c, f, false)
}

/// The value a tombstone row carries in a non-key column: the column
/// type's zero (ClickHouse has no default for a field in `TabSeparated`).
pub fn zero(col: &ColumnSpec) -> Cell {
    if col.array {
        return Cell::Array(Vec::new());
    }
    if col.nullable {
        return Cell::Null;
    }
    match col.ty {
        ColumnType::Uuid => Cell::Uuid(uuid::Uuid::nil()),
        ColumnType::Text | ColumnType::Json => Cell::Text(String::new()),
        ColumnType::Bytes => Cell::Bytes(Vec::new()),
        ColumnType::Bool => Cell::Bool(false),
        ColumnType::I16 | ColumnType::I32 | ColumnType::I64 => Cell::Int(0),
        ColumnType::F64 => Cell::Float(0.0),
        ColumnType::Decimal { .. } => Cell::Decimal(Decimal::ZERO),
        ColumnType::Timestamptz => Cell::Micros(0),
        ColumnType::Date => Cell::Days(0),
    }
}

/// Splits one line of ClickHouse `TabSeparated` output into its raw
/// (still escaped) fields; [`parse_ch`] unescapes them.
pub fn split_tsv(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| *b == b'\t').collect()
}

fn scalar_ch(ty: ColumnType, s: &str, f: ClickHouseFlags) -> Result<Cell, String> {
    let bad = |what: &str| format!("ClickHouse value `{s}` is not {what}");
    Ok(match ty {
        ColumnType::Bool => match s {
            "1" | "true" => Cell::Bool(true),
            "0" | "false" => Cell::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        ColumnType::Timestamptz if f.datetime64 => {
            let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|_| bad("a DateTime64"))?;
            Cell::Micros(t.and_utc().timestamp_micros())
        }
        ColumnType::Timestamptz => Cell::Micros(s.parse().map_err(|_| bad("Int64 microseconds"))?),
        ColumnType::Date if f.date32 => scalar_pg(ColumnType::Date, s)?,
        ColumnType::Date => Cell::Days(s.parse().map_err(|_| bad("Int32 days"))?),
        ColumnType::Bytes => Cell::Bytes(s.as_bytes().to_vec()),
        ColumnType::F64 => Cell::Float(parse_float(s).ok_or_else(|| bad("a float"))?),
        other => scalar_pg(other, s)?,
    })
}

/// Reads one ClickHouse `TabSeparated` field back into a cell (for `verify`).
pub fn parse_ch(col: &ColumnSpec, raw: &[u8], f: ClickHouseFlags) -> Result<Cell, String> {
    // Arrays are written unescaped (their elements quoted and escaped).
    let unescaped;
    let b: &[u8] = if col.array {
        raw
    } else {
        match copy_unescape(raw) {
            None => return Ok(Cell::Null),
            Some(v) => {
                unescaped = v;
                &unescaped
            }
        }
    };
    if col.ty == ColumnType::Bytes && !col.array {
        return Ok(Cell::Bytes(b.to_vec()));
    }
    let s = std::str::from_utf8(b).map_err(|_| "ClickHouse value is not UTF-8".to_string())?;
    if !col.array {
        return scalar_ch(col.ty, s, f);
    }
    let items = ch_array(s)?;
    items
        .into_iter()
        .map(|i| match i {
            None => Ok(Cell::Null),
            Some(v) => scalar_ch(col.ty, &v, f),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Cell::Array)
}

/// Splits ClickHouse's text of an array (`['a','b\'c']`, `[1,2]`).
fn ch_array(s: &str) -> Result<Vec<Option<String>>, String> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("`{s}` is not an array"))?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let mut item = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => item.push('\n'),
                        Some('t') => item.push('\t'),
                        Some('r') => item.push('\r'),
                        Some('0') => item.push('\0'),
                        Some(c) => item.push(c),
                        None => return Err("array ends inside an escape".into()),
                    },
                    Some('\'') => break,
                    Some(c) => item.push(c),
                    None => return Err("array ends inside a quoted element".into()),
                }
            }
            out.push(Some(item));
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            out.push(if item == "NULL" { None } else { Some(item) });
        }
        if chars.next().is_some_and(|c| c != ',') {
            return Err("bad array separator".into());
        }
    }
    Ok(out)
}

/// A cell as a JSON value for an Elasticsearch document: timestamps as
/// RFC 3339 text, dates as `YYYY-MM-DD`, decimals as text (exact), bytes
/// as hex.
pub fn to_json(c: &Cell) -> serde_json::Value {
    use serde_json::Value;
    match c {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Int(i) => Value::from(*i),
        Cell::Float(x) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Cell::Decimal(d) => Value::String(d.to_string()),
        Cell::Text(s) => Value::String(s.clone()),
        Cell::Bytes(b) => Value::String(hex::encode(b)),
        Cell::Uuid(u) => Value::String(u.to_string()),
        Cell::Micros(us) => Value::String(
            DateTime::<Utc>::from_timestamp_micros(*us)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        Cell::Days(d) => Value::String(fmt_days(*d)),
        Cell::Array(items) => Value::Array(items.iter().map(to_json).collect()),
    }
}

/// A stable text of a cell for hashing and key comparison (`verify`).
pub fn canonical(c: &Cell, out: &mut String) {
    use std::fmt::Write;
    match c {
        Cell::Float(x) if x.is_nan() => out.push_str("F:nan"),
        Cell::Float(x) => {
            let _ = write!(out, "F:{x:?}");
        }
        Cell::Decimal(d) => {
            let _ = write!(out, "D:{}", d.normalize());
        }
        Cell::Array(items) => {
            out.push('[');
            for i in items {
                canonical(i, out);
                out.push('\u{1}');
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColumnType, array: bool) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            ty,
            nullable: true,
            array,
            key: false,
        }
    }
    const OLD: ClickHouseFlags = ClickHouseFlags {
        datetime64: false,
        date32: false,
        bool_type: false,
        is_deleted: false,
    };
    const NEW: ClickHouseFlags = ClickHouseFlags {
        datetime64: true,
        date32: true,
        bool_type: true,
        is_deleted: true,
    };

    #[test]
    fn pg_text_to_cells() {
        let ts = parse_pg(
            &col(ColumnType::Timestamptz, false),
            Some("2024-01-02 03:04:05.5+00"),
        )
        .unwrap();
        assert_eq!(ts, Cell::Micros(1_704_164_645_500_000));
        let d = parse_pg(&col(ColumnType::Date, false), Some("1969-12-31")).unwrap();
        assert_eq!(d, Cell::Days(-1));
        let a = parse_pg(
            &col(ColumnType::Text, true),
            Some(r#"{a,"b,c",NULL,"q\"x"}"#),
        )
        .unwrap();
        assert_eq!(
            a,
            Cell::Array(vec![
                Cell::Text("a".into()),
                Cell::Text("b,c".into()),
                Cell::Null,
                Cell::Text("q\"x".into())
            ])
        );
        assert!(parse_pg(&col(ColumnType::Timestamptz, false), Some("infinity")).is_err());
        assert!(parse_pg(
            &col(
                ColumnType::Decimal {
                    precision: 20,
                    scale: 8
                },
                false
            ),
            Some("NaN")
        )
        .is_err());
    }

    #[test]
    fn tsv_round_trips_through_the_reader() {
        for (c, ty, array) in [
            (Cell::Text("a\tb\n'c\\".into()), ColumnType::Text, false),
            (
                Cell::Micros(1_704_164_645_500_001),
                ColumnType::Timestamptz,
                false,
            ),
            (Cell::Days(19_000), ColumnType::Date, false),
            (
                Cell::Array(vec![Cell::Text("x'y".into()), Cell::Null]),
                ColumnType::Text,
                true,
            ),
            (
                Cell::Decimal("1.5".parse().unwrap()),
                ColumnType::Decimal {
                    precision: 20,
                    scale: 8,
                },
                false,
            ),
            (Cell::Bool(true), ColumnType::Bool, false),
        ] {
            for f in [OLD, NEW] {
                let mut out = Vec::new();
                write_tsv(&mut out, &c, f);
                let fields = split_tsv(&out);
                assert_eq!(fields.len(), 1);
                let back = parse_ch(&col(ty, array), fields[0], f).unwrap();
                assert_eq!(back, c, "{}", String::from_utf8_lossy(&out));
            }
        }
    }
}
