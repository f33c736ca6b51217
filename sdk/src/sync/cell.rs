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
            without_trailing_zeros(s)
                .parse::<Decimal>()
                .map_err(|_| {
                    bad("a decimal the copy can hold (NaN and more than 28 digits are refused)")
                })?
                .normalize(),
        ),
        ColumnType::Timestamptz => {
            Cell::Micros(pg_timestamptz(s).ok_or_else(|| {
                bad("a timestamp the copy can hold (infinity, and times after about the year 292,000 that 64-bit microseconds from 1970 cannot count, are refused)")
            })?)
        }
        ColumnType::Date => {
            Cell::Days(pg_date(s).ok_or_else(|| bad("a date (infinity is refused)"))?)
        }
    })
}

/// `s` without the zeros that end its fraction (`1.50000000` → `1.5`,
/// `2.000` → `2`): the same number, which [`Decimal::normalize`] then
/// need not divide out one digit at a time (numeric columns print every
/// decimal place of their scale).
fn without_trailing_zeros(s: &str) -> &str {
    if !s.contains('.') || s.contains(['e', 'E']) {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.')
}

/// Days since 1970-01-01 of PostgreSQL's ISO text of a date: any year it
/// prints (`12000-01-01`, `0044-03-15 BC`; PostgreSQL has no year 0, so
/// 1 BC is year 0 here), not `infinity`.
fn pg_date(s: &str) -> Option<i32> {
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    i32::try_from(civil_days(s, bc)?).ok()
}

/// Microseconds since 1970-01-01 UTC of PostgreSQL's ISO text of a
/// `timestamptz` (`2024-01-02 03:04:05.123456+00`, any offset and year,
/// `BC` last), not `infinity`.
fn pg_timestamptz(s: &str) -> Option<i64> {
    if let Some(us) = utc_timestamptz(s.as_bytes()) {
        return Some(us);
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let (date, time) = s.split_once(' ')?;
    let days = civil_days(date, bc)?;
    let at = time.rfind(['+', '-'])?;
    let (clock, offset) = time.split_at(at);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let secs = hms_seconds(hms)?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let offset = sign * hms_seconds(&offset[1..])?;
    let total = days.checked_mul(86_400)?.checked_add(secs - offset)?;
    total.checked_mul(1_000_000)?.checked_add(micros)
}

/// Seconds of `HH[:MM[:SS]]`.
fn hms_seconds(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut parts = 0;
    for (i, p) in s.split(':').enumerate() {
        if i > 2 || p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = p.parse().ok()?;
        total += v * [3_600, 60, 1][i];
        parts += 1;
    }
    (parts > 0).then_some(total)
}

/// Days since 1970-01-01 of `Y-MM-DD` (year of any length) in the
/// proleptic Gregorian calendar; `bc`: the year counts back from 1 BC.
fn civil_days(s: &str, bc: bool) -> Option<i64> {
    // Cut at bytes: `split_once(char)` costs a call per probe, and the
    // snapshot reads millions of dates.
    let b = s.as_bytes();
    let p1 = b.iter().position(|&c| c == b'-')?;
    let p2 = p1 + 1 + b[p1 + 1..].iter().position(|&c| c == b'-')?;
    let (y, m, d) = (&s[..p1], &s[p1 + 1..p2], &s[p2 + 1..]);
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) || y.len() > 9 {
        return None;
    }
    let y: i64 = y.parse().ok()?;
    let y = if bc { 1 - y } else { y };
    days_from_civil(y, m.parse().ok()?, d.parse().ok()?)
}

/// Days since 1970-01-01 of year `y` (1 BC is 0), month `m`, day `d`, or
/// `None` for a day the month does not have.
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    let leap = y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil (chrono-compatible algorithms).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// [`pg_timestamptz`] for the shape a UTC session prints for years 1000
/// to 9999, `YYYY-MM-DD HH:MM:SS[.f…]+00`, read digit by digit; `None`
/// for any other text (the general reader then decides). Gives what the
/// general reader gives wherever both read.
fn utc_timestamptz(s: &[u8]) -> Option<i64> {
    if s.len() < 22
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b' '
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let num = |from: usize, len: usize| {
        s[from..from + len].iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let days = days_from_civil(num(0, 4)?, num(5, 2)?, num(8, 2)?)?;
    let secs = num(11, 2)? * 3_600 + num(14, 2)? * 60 + num(17, 2)?;
    let (mut i, mut micros) = (19, 0i64);
    if s[i] == b'.' {
        let digits = s[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 6 {
            return None;
        }
        micros = num(i + 1, digits)? * 10i64.pow((6 - digits) as u32);
        i += 1 + digits;
    }
    if &s[i..] != b"+00" {
        return None;
    }
    Some((days * 86_400 + secs) * 1_000_000 + micros)
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" | "-nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Reads PostgreSQL's text output of a non-NULL value into `slot`,
/// reusing the text buffer a text cell there already holds (the snapshot
/// reads millions of rows into the same cells).
pub fn parse_pg_into(slot: &mut Cell, col: &ColumnSpec, s: &str) -> Result<(), String> {
    if !col.array && matches!(col.ty, ColumnType::Text | ColumnType::Json) {
        if let Cell::Text(buf) = slot {
            buf.clear();
            buf.push_str(s);
            return Ok(());
        }
    }
    *slot = parse_pg(col, Some(s))?;
    Ok(())
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

/// Decodes one field of PostgreSQL's COPY text format
/// (`\N` is NULL; backslash escapes as `COPY` writes them).
pub fn copy_unescape(field: &[u8]) -> Option<Vec<u8>> {
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    copy_unescape_into(field, &mut out);
    Some(out)
}

/// Appends the decoded bytes of one non-NULL COPY text field to `out`.
pub fn copy_unescape_into(field: &[u8], out: &mut Vec<u8>) {
    if !field.contains(&b'\\') {
        out.extend_from_slice(field);
        return;
    }
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

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), or `None` outside chrono's years.
fn fmt_micros(us: i64) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp_micros(us)?;
    Some(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

/// `YYYY-MM-DD`, or `None` outside chrono's years (±262,142).
fn fmt_days(d: i32) -> Option<String> {
    let date = EPOCH.checked_add_signed(chrono::Duration::days(i64::from(d)))?;
    Some(date.format("%Y-%m-%d").to_string())
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
        // Out of chrono's years: the number (such a value is refused
        // before it reaches a DateTime64 or Date32 column).
        Cell::Micros(us) if f.datetime64 => match fmt_micros(*us) {
            Some(t) => quote(out, t.as_bytes()),
            None => out.extend_from_slice(us.to_string().as_bytes()),
        },
        Cell::Micros(us) => out.extend_from_slice(us.to_string().as_bytes()),
        Cell::Days(d) if f.date32 => match fmt_days(*d) {
            Some(t) => quote(out, t.as_bytes()),
            None => out.extend_from_slice(d.to_string().as_bytes()),
        },
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
/// as hex. Refused (the reason; never replaced by `null`): NaN and
/// ±infinity (JSON has no such number), and dates and times outside
/// chrono's years (±262,142), which no JSON date format here can write.
pub fn to_json(c: &Cell) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match c {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Int(i) => Value::from(*i),
        Cell::Float(x) => {
            Value::Number(serde_json::Number::from_f64(*x).ok_or_else(|| {
                format!("{x} has no JSON number (NaN and infinities are refused)")
            })?)
        }
        Cell::Decimal(d) => Value::String(d.to_string()),
        Cell::Text(s) => Value::String(s.clone()),
        Cell::Bytes(b) => Value::String(hex::encode(b)),
        Cell::Uuid(u) => Value::String(u.to_string()),
        Cell::Micros(us) => Value::String(
            DateTime::<Utc>::from_timestamp_micros(*us)
                .ok_or_else(|| format!("{us} µs is outside the years a JSON date here can hold"))?
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        Cell::Days(d) => {
            Value::String(fmt_days(*d).ok_or_else(|| {
                format!("{d} days is outside the years a JSON date here can hold")
            })?)
        }
        Cell::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
    })
}

/// A key cell as text: its JSON string (or number) form, else its
/// canonical form (a key that JSON cannot hold still has a stable text).
pub fn key_text(c: &Cell) -> String {
    match to_json(c) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => {
            let mut s = String::new();
            canonical(c, &mut s);
            s
        }
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

    #[test]
    fn every_date_postgres_prints_is_read() {
        use chrono::Datelike;
        // Against chrono over 6,000 years, leap days included.
        let mut d = NaiveDate::from_ymd_opt(-2000, 1, 1).unwrap();
        while d.year() < 4000 {
            let text = if d.year() <= 0 {
                format!("{:04}-{} BC", 1 - d.year(), d.format("%m-%d"))
            } else {
                format!("{:04}-{}", d.year(), d.format("%m-%d"))
            };
            assert_eq!(
                pg_date(&text),
                Some((d - EPOCH).num_days() as i32),
                "{text}"
            );
            d += chrono::Duration::days(97);
        }
        assert_eq!(pg_date("2000-02-29"), Some(11_016));
        let y12000 = (NaiveDate::from_ymd_opt(12_000, 1, 1).unwrap() - EPOCH).num_days();
        assert_eq!(pg_date("12000-01-01"), Some(y12000 as i32));
        // PostgreSQL's last date and NaiveDate::MAX both fit.
        assert!(pg_date("5874897-12-31").is_some());
        assert_eq!(
            pg_date("262142-12-31"),
            Some((NaiveDate::MAX - EPOCH).num_days() as i32)
        );
        // PostgreSQL's last microsecond is past what i64 µs from 1970 count.
        assert_eq!(pg_timestamptz("294276-12-31 23:59:59.999999+00"), None);
        for bad in [
            "infinity",
            "-infinity",
            "2001-02-29",
            "2001-13-01",
            "2001-1-1x",
            "",
            "-1-01-01",
        ] {
            assert_eq!(pg_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_timestamp_postgres_prints_is_read() {
        let us = |s| pg_timestamptz(s);
        assert_eq!(us("1970-01-01 00:00:00+00"), Some(0));
        assert_eq!(us("1970-01-01 05:30:00.25+05:30"), Some(250_000));
        assert_eq!(us("1969-12-31 21:00:00-03"), Some(0));
        assert_eq!(us("1970-01-01 00:00:01.000001+00:00:01"), Some(1));
        let y12000 = (NaiveDate::from_ymd_opt(12_000, 1, 1).unwrap() - EPOCH).num_days();
        assert_eq!(us("12000-01-01 00:00:00+00"), Some(y12000 * 86_400_000_000));
        let bc = chrono::NaiveDate::from_ymd_opt(-43, 3, 15).unwrap();
        assert_eq!(
            us("0044-03-15 12:00:00+00 BC"),
            Some(((bc - EPOCH).num_days() * 86_400 + 43_200) * 1_000_000)
        );
        for bad in [
            "infinity",
            "-infinity",
            "2024-01-02 03:04:05",
            "2024-01-02 25:00:00+00x",
            "2024-01-02 03:04:05.1234567+00",
        ] {
            assert_eq!(us(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_utc_reader_agrees_with_the_general_one() {
        let mut seen = 0;
        let mut us: i64 = -30_610_224_000_000_000; // 1000-01-01
        while us < 253_402_300_799_000_000 {
            let t = DateTime::<Utc>::from_timestamp_micros(us).unwrap();
            for text in [
                t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
                t.format("%Y-%m-%d %H:%M:%S%.3f+00").to_string(),
                t.format("%Y-%m-%d %H:%M:%S+00").to_string(),
                t.format("%Y-%m-%d %H:%M:%S%.6f+05:30").to_string(),
            ] {
                let general = {
                    let (date, time) = text.split_once(' ').unwrap();
                    let at = time.rfind(['+', '-']).unwrap();
                    let (clock, offset) = time.split_at(at);
                    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
                    let micros: i64 = format!("{frac:0<6}").parse().unwrap();
                    let sign = if offset.starts_with('-') { -1 } else { 1 };
                    let off = sign * hms_seconds(&offset[1..]).unwrap();
                    (civil_days(date, false).unwrap() * 86_400 + hms_seconds(hms).unwrap() - off)
                        * 1_000_000
                        + micros
                };
                assert_eq!(pg_timestamptz(&text), Some(general), "{text}");
                if let Some(fast) = utc_timestamptz(text.as_bytes()) {
                    assert_eq!(fast, general, "{text}");
                    seen += 1;
                }
            }
            us += 86_399_999_999 * 113 + 123_457;
        }
        assert!(seen > 1_000, "{seen}");
        for bad in [
            "2024-02-30 00:00:00+00",
            "2024-01-02 03:04:05.+00",
            "2024-01-02 03:04:05.1234567+00",
            "2024-01-02 03:04:05+00 BC",
            "2024-01-02 03:04:0x+00",
        ] {
            assert_eq!(utc_timestamptz(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn json_refuses_what_it_cannot_hold() {
        assert!(to_json(&Cell::Float(f64::NAN)).is_err());
        assert!(to_json(&Cell::Array(vec![Cell::Float(f64::INFINITY)])).is_err());
        assert!(to_json(&Cell::Days(2_000_000_000)).is_err());
        assert!(to_json(&Cell::Micros(i64::MAX)).is_err());
        assert_eq!(
            to_json(&Cell::Days(-1)).unwrap(),
            serde_json::json!("1969-12-31")
        );
        assert_eq!(key_text(&Cell::Days(2_000_000_000)), {
            let mut s = String::new();
            canonical(&Cell::Days(2_000_000_000), &mut s);
            s
        });
    }
}
