//! Line-protocol encoding: exact escaping checked against a small reference
//! parser written from the protocol's rules, and a property test that any
//! tag or field text survives.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use strata_sdk::influx::{EncodeError, Line, LineEncoder, Point, Precision};

#[allow(dead_code)]
mod trading {
    include!(concat!(env!("OUT_DIR"), "/trading/influx.rs"));
}
#[allow(dead_code)]
mod timeseries {
    include!(concat!(env!("OUT_DIR"), "/timeseries/influx.rs"));
}

/// A point with free text in a tag key position, a tag value and a string field.
struct Free {
    tag: String,
    text: String,
    n: i64,
    t: DateTime<Utc>,
}

impl Point for Free {
    const MEASUREMENT: &'static str = "free m,x";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("k ,=\\", &self.tag)?;
        line.field("s ,=\"", &self.text)?;
        line.field("n", &self.n)?;
        line.time(self.t)
    }
}

#[derive(Debug, PartialEq)]
enum Val {
    Str(String),
    Num(String),
}

#[derive(Debug, PartialEq)]
struct Parsed {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Val)>,
    time: i64,
}

/// Reads one token up to an unescaped stop character; `\x` reads as `x`.
fn token(s: &mut std::iter::Peekable<std::str::Chars<'_>>, stops: &[char]) -> String {
    let mut out = String::new();
    while let Some(&c) = s.peek() {
        if stops.contains(&c) {
            break;
        }
        s.next();
        if c == '\\' {
            if let Some(n) = s.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The reference parser: the protocol's grammar, for one line.
fn parse(line: &str) -> Parsed {
    let line = line.strip_suffix('\n').expect("a line ends with a newline");
    let mut s = line.chars().peekable();
    let measurement = token(&mut s, &[',', ' ']);
    let mut tags = Vec::new();
    while s.peek() == Some(&',') {
        s.next();
        let k = token(&mut s, &['=']);
        assert_eq!(s.next(), Some('='));
        let v = token(&mut s, &[',', ' ']);
        tags.push((k, v));
    }
    assert_eq!(s.next(), Some(' '));
    let mut fields = Vec::new();
    loop {
        let k = token(&mut s, &['=']);
        assert_eq!(s.next(), Some('='));
        let v = if s.peek() == Some(&'"') {
            s.next();
            let mut v = String::new();
            loop {
                match s.next().expect("unterminated string") {
                    '\\' => v.push(s.next().expect("escape")),
                    '"' => break,
                    c => v.push(c),
                }
            }
            Val::Str(v)
        } else {
            Val::Num(token(&mut s, &[',', ' ']))
        };
        fields.push((k, v));
        match s.next() {
            Some(',') => continue,
            Some(' ') => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let time = s.collect::<String>().parse().expect("timestamp");
    Parsed {
        measurement,
        tags,
        fields,
        time,
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(1_767_225_600_123_456_789)
}

#[test]
fn escapes_exactly_as_the_protocol_says() {
    let mut enc = LineEncoder::new(Precision::Ns).allow_newlines_in_strings(true);
    let p = Free {
        tag: r#"a,b c=d\e"f"#.into(),
        text: "say \"hi\"\\\nbye, a=b".into(),
        n: -42,
        t: t0(),
    };
    enc.encode(&p).unwrap();
    let text = std::str::from_utf8(enc.as_bytes()).unwrap();
    assert_eq!(
        text,
        "free\\ m\\,x,k\\ \\,\\=\\\\=a\\,b\\ c\\=d\\\\e\"f s\\ \\,\\=\"=\"say \\\"hi\\\"\\\\\nbye, a=b\",n=-42i 1767225600123456789\n"
    );
}

#[test]
fn newlines_are_refused_unless_allowed_in_strings_and_leave_the_buffer_alone() {
    let mut enc = LineEncoder::new(Precision::Ns).allow_newlines_in_strings(true);
    let ok = Free {
        tag: "x".into(),
        text: "y".into(),
        n: 1,
        t: t0(),
    };
    enc.encode(&ok).unwrap();
    let before = enc.as_bytes().to_vec();
    let bad = Free {
        tag: "a\nb".into(),
        ..ok
    };
    assert!(matches!(enc.encode(&bad), Err(EncodeError::Newline(_))));
    let mut strict = LineEncoder::new(Precision::Ns);
    let text = Free {
        tag: "x".into(),
        text: "a\r\nb".into(),
        n: 1,
        t: t0(),
    };
    assert!(matches!(strict.encode(&text), Err(EncodeError::Newline(_))));
    assert!(strict.is_empty());
    assert_eq!(enc.as_bytes(), &before[..]);
    assert_eq!(enc.lines(), 1);
}

#[test]
fn time_finer_than_the_precision_is_an_error() {
    let mut enc = LineEncoder::new(Precision::Us);
    let p = Free {
        tag: "x".into(),
        text: "y".into(),
        n: 1,
        t: t0(),
    };
    assert!(matches!(enc.encode(&p), Err(EncodeError::Time(..))));
    let p = Free {
        t: DateTime::from_timestamp_micros(1_000_001).unwrap(),
        ..p
    };
    enc.encode(&p).unwrap();
    assert!(std::str::from_utf8(enc.as_bytes())
        .unwrap()
        .ends_with(" 1000001\n"));
}

#[test]
fn generated_points_encode_tags_sorted_and_nulls_left_out() {
    use rust_decimal::Decimal;
    let c = trading::series::CandlePoint {
        ts: t0(),
        symbol: "BTC USDT".into(),
        timeframe: "1m".into(),
        exchange: "binance".into(),
        open: Decimal::new(123_456_789_012, 8),
        high: Decimal::new(2, 0),
        low: Decimal::new(-1, 8),
        close: Decimal::new(150, 2),
        volume: Decimal::new(0, 0),
        trades: None,
    };
    let mut enc = LineEncoder::new(Precision::Ns);
    enc.encode(&c).unwrap();
    assert_eq!(
        std::str::from_utf8(enc.as_bytes()).unwrap(),
        "candles,exchange=binance,symbol=BTC\\ USDT,timeframe=1m open=1234.56789012,high=2,low=-0.00000001,close=1.5,volume=0 1767225600123456789\n"
    );
    let r = timeseries::metrics::ReadingPoint {
        at: DateTime::from_timestamp_micros(5).unwrap(),
        site: "s".into(),
        sensor: "t".into(),
        phase: None,
        value: f64::NAN,
        raw: None,
        ok: true,
        note: None,
        price: None,
        r#type: None,
    };
    assert!(matches!(enc.encode(&r), Err(EncodeError::NotFinite(_))));
}

proptest! {
    #[test]
    fn any_tag_and_field_text_survives(
        tag in "[^\n\r]{1,40}",
        text in any::<String>(),
        n in any::<i64>(),
        nanos in 0i64..4_000_000_000_000_000_000,
    ) {
        let p = Free { tag: tag.clone(), text: text.clone(), n, t: DateTime::from_timestamp_nanos(nanos) };
        // By default a newline anywhere is refused, and the rest is encoded.
        let mut strict = LineEncoder::new(Precision::Ns);
        let has_newline = text.contains(['\n', '\r']);
        prop_assert_eq!(strict.encode(&p).is_err(), has_newline);
        let mut enc = LineEncoder::new(Precision::Ns).allow_newlines_in_strings(true);
        enc.encode(&p).unwrap();
        let parsed = parse(std::str::from_utf8(enc.as_bytes()).unwrap());
        prop_assert_eq!(parsed.measurement, "free m,x");
        prop_assert_eq!(parsed.tags, vec![("k ,=\\".to_string(), tag)]);
        prop_assert_eq!(parsed.fields, vec![
            ("s ,=\"".to_string(), Val::Str(text)),
            ("n".to_string(), Val::Num(format!("{n}i"))),
        ]);
        prop_assert_eq!(parsed.time, nanos);
    }

    #[test]
    fn any_float_reads_back_as_itself(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        struct F(f64);
        impl Point for F {
            const MEASUREMENT: &'static str = "f";
            fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
                line.field("v", &self.0)?;
                line.time(DateTime::from_timestamp_nanos(0))
            }
        }
        let mut enc = LineEncoder::new(Precision::Ns);
        enc.encode(&F(v)).unwrap();
        let parsed = parse(std::str::from_utf8(enc.as_bytes()).unwrap());
        let Val::Num(text) = &parsed.fields[0].1 else { panic!() };
        prop_assert_eq!(text.parse::<f64>().unwrap(), v);
    }
}
