//! Line-protocol encoding: exact escaping, every encoded line read back by
//! InfluxData's own parser (`influxdb-line-protocol`, InfluxDB 2.x/3.x), and
//! property tests that any text is either read back exactly or refused with
//! the error the encoder's rules name (never changed, never over-refused).

use chrono::{DateTime, Utc};
use influxdb_line_protocol::{parse_lines, FieldValue as Lp};
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
    const MEASUREMENT: &'static str = "free m,x=\\y";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("k ,=\\x", &self.tag)?;
        line.field("s ,=\"", &self.text)?;
        line.field("n", &self.n)?;
        line.time(self.t)
    }
}

#[derive(Debug, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, PartialEq)]
struct Parsed {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Val)>,
    time: i64,
}

/// Reads the encoder's output with InfluxData's parser: exactly one line per point.
fn parse_all(text: &str) -> Vec<Parsed> {
    parse_lines(text)
        .map(|l| {
            let l = l.unwrap_or_else(|e| panic!("InfluxDB's parser refused {text:?}: {e}"));
            Parsed {
                measurement: l.series.measurement.to_string(),
                tags: l
                    .series
                    .tag_set
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                fields: l
                    .field_set
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Lp::String(s) => Val::Str(s.to_string()),
                            Lp::I64(i) => Val::Int(*i),
                            Lp::F64(f) => Val::Float(*f),
                            Lp::Boolean(b) => Val::Bool(*b),
                            Lp::U64(u) => panic!("the encoder writes no unsigned value: {u}"),
                        };
                        (k.to_string(), v)
                    })
                    .collect(),
                time: l.timestamp.expect("every line has a time"),
            }
        })
        .collect()
}

fn parse(text: &str) -> Parsed {
    let mut all = parse_all(text);
    assert_eq!(all.len(), 1, "one line in {text:?}");
    all.pop().unwrap()
}

/// The encoder's rule for measurements, tag keys and values and field keys,
/// written out independently: what it must refuse, and nothing else.
fn name_refusal(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    if s.is_empty() {
        return Some("empty");
    }
    // The first offending character decides which error is given.
    b.iter().enumerate().find_map(|(i, &c)| match c {
        b'\n' | b'\r' => Some("newline"),
        b'\t' | b'\0' => Some("tab or NUL"),
        b'\\' if matches!(b.get(i + 1), None | Some(b'\\' | b',' | b'=' | b' ')) => {
            Some("backslash")
        }
        _ => None,
    })
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
        "free\\ m\\,x=\\y,k\\ \\,\\=\\x=a\\,b\\ c\\=d\\e\"f s\\ \\,\\=\"=\"say \\\"hi\\\"\\\\\nbye, a=b\",n=-42i 1767225600123456789\n"
    );
    assert_eq!(
        parse(text),
        Parsed {
            measurement: "free m,x=\\y".into(),
            tags: vec![("k ,=\\x".into(), r#"a,b c=d\e"f"#.into())],
            fields: vec![
                ("s ,=\"".into(), Val::Str("say \"hi\"\\\nbye, a=b".into())),
                ("n".into(), Val::Int(-42)),
            ],
            time: 1_767_225_600_123_456_789,
        }
    );
}

/// The texts InfluxDB 1.6 and VictoriaMetrics were seen to read differently
/// (and InfluxDB 2.x's parser refuses or changes): each is refused, naming
/// the tag, and leaves the batch as it was.
#[test]
fn texts_the_servers_read_differently_are_refused_naming_the_tag() {
    let mut enc = LineEncoder::new(Precision::Ns);
    let ok = Free {
        tag: "C:\\temp".into(),
        text: "y".into(),
        n: 1,
        t: t0(),
    };
    enc.encode(&ok).unwrap();
    let before = enc.as_bytes().to_vec();
    for bad in [
        "C:\\",
        "C:\\\\",
        "tab\\\\there",
        "a\\,b",
        "a\\ b",
        "a\\=b",
        "a\tb",
        "a\0b",
    ] {
        let p = Free {
            tag: bad.into(),
            ..ok.clone()
        };
        match enc.encode(&p) {
            Err(EncodeError::Unrepresentable { field, reason }) => {
                assert_eq!(field, "k ,=\\x", "{bad:?}");
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    let empty = Free {
        tag: String::new(),
        ..ok.clone()
    };
    assert_eq!(
        enc.encode(&empty),
        Err(EncodeError::EmptyTag("k ,=\\x".into()))
    );
    assert_eq!(enc.as_bytes(), &before[..]);
    assert_eq!(enc.lines(), 1);
}

impl Clone for Free {
    fn clone(&self) -> Self {
        Free {
            tag: self.tag.clone(),
            text: self.text.clone(),
            n: self.n,
            t: self.t,
        }
    }
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

/// A point whose measurement, tag key, tag value and field key are all free text.
struct Names {
    tag_key: String,
    tag: String,
    field_key: String,
}

impl Point for Names {
    const MEASUREMENT: &'static str = "m";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag(&self.tag_key, &self.tag)?;
        line.field(&self.field_key, &1.5f64)?;
        line.time(DateTime::from_timestamp_nanos(7))
    }
}

/// Text rich in what line protocol treats specially.
fn tricky() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::sample::select(vec!["\\", ",", "=", " ", "\"", "\t", "\n", "\r", "\0", "#", "é", "x"]),
            1 => "[a-z]{1,3}".prop_map(|s| Box::leak(s.into_boxed_str()) as &str),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_tag_and_field_text_survives_or_is_refused_by_the_rule(
        tag in prop_oneof![tricky(), any::<String>()],
        text in prop_oneof![tricky(), any::<String>()],
        n in any::<i64>(),
        nanos in 0i64..4_000_000_000_000_000_000,
    ) {
        let p = Free { tag: tag.clone(), text: text.clone(), n, t: DateTime::from_timestamp_nanos(nanos) };
        let mut enc = LineEncoder::new(Precision::Ns).allow_newlines_in_strings(true);
        let got = enc.encode(&p);
        match name_refusal(&tag) {
            Some("empty") => prop_assert_eq!(got, Err(EncodeError::EmptyTag("k ,=\\x".into()))),
            Some("newline") => prop_assert_eq!(got, Err(EncodeError::Newline("k ,=\\x".into()))),
            Some(_) => prop_assert!(
                matches!(&got, Err(EncodeError::Unrepresentable { field, .. }) if field == "k ,=\\x"),
                "{:?}", got
            ),
            None => {
                got.unwrap();
                let parsed = parse(std::str::from_utf8(enc.as_bytes()).unwrap());
                prop_assert_eq!(parsed.measurement, "free m,x=\\y");
                prop_assert_eq!(parsed.tags, vec![("k ,=\\x".to_string(), tag.clone())]);
                prop_assert_eq!(parsed.fields, vec![
                    ("s ,=\"".to_string(), Val::Str(text.clone())),
                    ("n".to_string(), Val::Int(n)),
                ]);
                prop_assert_eq!(parsed.time, nanos);
            }
        }
        // By default a newline in a string field is refused too, naming it.
        if name_refusal(&tag).is_none() {
            let mut strict = LineEncoder::new(Precision::Ns);
            let got = strict.encode(&p);
            if text.contains(['\n', '\r']) {
                prop_assert_eq!(got, Err(EncodeError::Newline("s ,=\"".into())));
            } else {
                prop_assert!(got.is_ok());
            }
        }
    }

    #[test]
    fn any_key_text_survives_or_is_refused_by_the_rule(
        tag_key in tricky(),
        tag in tricky(),
        field_key in tricky(),
    ) {
        let p = Names { tag_key: tag_key.clone(), tag: tag.clone(), field_key: field_key.clone() };
        let mut enc = LineEncoder::new(Precision::Ns);
        let got = enc.encode(&p);
        let expect_ok = !tag.is_empty()
            && name_refusal(&tag_key).is_none()
            && name_refusal(&tag).is_none()
            && name_refusal(&field_key).is_none();
        prop_assert_eq!(got.is_ok(), expect_ok, "{:?}", got);
        if expect_ok {
            let parsed = parse(std::str::from_utf8(enc.as_bytes()).unwrap());
            prop_assert_eq!(parsed.tags, vec![(tag_key, tag)]);
            prop_assert_eq!(parsed.fields, vec![(field_key, Val::Float(1.5))]);
        } else {
            prop_assert!(enc.is_empty());
        }
    }

    #[test]
    fn any_float_reads_back_as_itself(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        struct F(f64);
        impl Point for F {
            const MEASUREMENT: &'static str = "f";
            fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
                line.field("v", &self.0)?;
                line.field("b", &(self.0 > 0.0))?;
                line.time(DateTime::from_timestamp_nanos(0))
            }
        }
        let mut enc = LineEncoder::new(Precision::Ns);
        enc.encode(&F(v)).unwrap();
        let parsed = parse(std::str::from_utf8(enc.as_bytes()).unwrap());
        prop_assert_eq!(&parsed.fields[0], &("v".to_string(), Val::Float(v)));
        prop_assert_eq!(&parsed.fields[1], &("b".to_string(), Val::Bool(v > 0.0)));
    }
}

/// A point refuses what its fields' declared types do not hold, as the
/// repositories do before a PostgreSQL write (the series used to take
/// them): decimal places or digits past `decimal(p,s)`, a `string(n)` too
/// long, an enum name the enum lacks; and a decimal a float64 field cannot
/// hold exactly (it was stored rounded). Nothing of the point is taken.
#[test]
fn a_point_refuses_values_its_declared_types_do_not_hold() {
    let ok = || timeseries::metrics::ReadingPoint {
        at: DateTime::from_timestamp_micros(5).unwrap(),
        site: "s".into(),
        sensor: "t".into(),
        phase: Some("L2".into()),
        value: 1.0,
        raw: None,
        ok: true,
        note: None,
        price: Some("12345678.1234".parse().unwrap()),
        r#type: Some("ten chars!".into()),
    };
    let mut enc = LineEncoder::new(Precision::Us);
    enc.encode(&ok()).expect("values within their types");
    let before = enc.len();
    let cases: Vec<(timeseries::metrics::ReadingPoint, &str, &str)> = vec![
        (
            timeseries::metrics::ReadingPoint {
                price: Some("1.23456".parse().unwrap()),
                ..ok()
            },
            "price",
            "5 decimal places",
        ),
        (
            timeseries::metrics::ReadingPoint {
                price: Some("123456789.1".parse().unwrap()),
                ..ok()
            },
            "price",
            "9 integer digits",
        ),
        (
            timeseries::metrics::ReadingPoint {
                site: "x".repeat(41),
                ..ok()
            },
            "site",
            "41 characters",
        ),
        (
            timeseries::metrics::ReadingPoint {
                phase: Some("L4".into()),
                ..ok()
            },
            "phase",
            "not one of",
        ),
    ];
    for (point, field, says) in cases {
        match enc.encode(&point) {
            Err(EncodeError::Value { field: f, reason }) => {
                assert_eq!(f, field);
                assert!(reason.contains(says), "{field}: {reason}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(enc.len(), before, "nothing of a refused point is kept");
    // A decimal field a float64 cannot hold exactly (InfluxDB, VictoriaMetrics).
    let mut line = Vec::new();
    let wide: strata_sdk::influx::Decimal = "1234567890123456789.012345678".parse().unwrap();
    let e = strata_sdk::influx::FieldValue::write_field(&wide, "big", &mut line).unwrap_err();
    assert!(e.to_string().contains("float64"), "{e}");
}

/// An encoder for VictoriaMetrics refuses what the server would change or
/// drop without an error: integers past 2^53 (kept as float64), `-0`
/// (kept as 0), string fields (dropped), times finer than a millisecond
/// (cut); the same point goes to InfluxDB as it is.
#[test]
fn an_encoder_for_victoriametrics_refuses_what_it_would_change() {
    struct P {
        n: i64,
        x: f64,
        s: Option<String>,
        t: DateTime<Utc>,
    }
    impl Point for P {
        const MEASUREMENT: &'static str = "m";
        fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
            line.field("n", &self.n)?;
            line.field("x", &self.x)?;
            line.field("s", &self.s)?;
            line.time(self.t)
        }
    }
    let ms = DateTime::from_timestamp_millis(1_767_225_600_123).unwrap();
    let ok = || P {
        n: 1 << 53,
        x: 0.5,
        s: None,
        t: ms,
    };
    let mut vm = LineEncoder::new(Precision::Ns).for_victoriametrics(true);
    vm.encode(&ok())
        .expect("exact in a float64, whole milliseconds");
    let cases = [
        (
            P {
                n: (1 << 53) + 1,
                ..ok()
            },
            "past the 2^53",
        ),
        (
            P {
                n: -(1 << 53) - 1,
                ..ok()
            },
            "past the 2^53",
        ),
        (P { x: -0.0, ..ok() }, "is -0"),
        (
            P {
                s: Some("text".into()),
                ..ok()
            },
            "string field",
        ),
    ];
    for (p, says) in cases {
        let e = vm.encode(&p).unwrap_err();
        assert!(e.to_string().contains(says), "{says}: {e}");
        let mut influx = LineEncoder::new(Precision::Ns);
        influx.encode(&p).expect("InfluxDB keeps it as written");
    }
    let fine = P {
        t: ms + chrono::Duration::microseconds(1),
        ..ok()
    };
    assert!(matches!(vm.encode(&fine), Err(EncodeError::Time(..))));
}
