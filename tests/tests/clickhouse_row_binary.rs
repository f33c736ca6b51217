//! The SDK's RowBinary encoder writes exactly what the `clickhouse` crate
//! puts on the wire: for generated rows of the fixture schemas (decimals of
//! every width, timestamps, dates, UUIDs, enums stored as names, unicode
//! strings, Nullable, Array, bytes) and for a hand-written row with every
//! other serde shape the crate encodes, our bytes are compared with the body
//! the crate's own `Insert` sends (captured on a local listener, compression
//! off). Where the crate refuses a row (a decimal that does not fit), ours
//! must refuse it too. And the writer's whole request (statement and lz4
//! chunks) equals the crate's.

#[allow(dead_code)]
mod analytics {
    pub use strata_tests::fixtures::analytics::clickhouse::*;
}
#[allow(dead_code)]
mod market {
    pub use strata_tests::fixtures::market_multi_store::clickhouse::*;
}

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::OnceLock;
use std::time::Duration;

use ::clickhouse::{Client, Compression, RowOwned, RowWrite};
use chrono::{DateTime, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use strata_sdk::clickhouse::row_binary::{self, EncodeError};
use strata_sdk::clickhouse::{Table, Writer, WriterConfig};
use strata_tests::support::capture_one;
use uuid::Uuid;

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The request line and body the crate's `Insert` sends for `rows` into
/// `table` through `client` (pointed at a fresh listener), or its error.
async fn crate_request<T: RowOwned + RowWrite>(
    rows: &[T],
    table: &str,
    compression: Compression,
) -> Result<(String, Vec<u8>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(capture_one(listener));
    let client = Client::default()
        .with_url(url)
        .with_validation(false)
        .with_compression(compression);
    let mut insert = client.insert::<T>(table).await.map_err(|e| e.to_string())?;
    for r in rows {
        if let Err(e) = insert.write(r).await {
            server.abort();
            return Err(e.to_string());
        }
    }
    insert.end().await.map_err(|e| e.to_string())?;
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("captured")
        .expect("capture task");
    Ok((head.lines().next().unwrap_or_default().to_string(), body))
}

/// Our encoding of `rows`, one after the other.
fn our_bytes<T: Serialize>(rows: &[T]) -> Result<Vec<u8>, EncodeError> {
    let mut out = bytes::BytesMut::new();
    for r in rows {
        row_binary::encode(r, &mut out)?;
    }
    Ok(out.to_vec())
}

/// Ours equals the crate's body, or both refuse the rows.
fn same_as_the_crate<T>(rows: &[T]) -> Result<(), TestCaseError>
where
    T: RowOwned + RowWrite + Serialize + Debug,
{
    let theirs = rt().block_on(crate_request(rows, "t", Compression::None));
    match (our_bytes(rows), theirs) {
        (Ok(ours), Ok((_, body))) => prop_assert!(
            ours == body,
            "ours {} bytes, the crate's {} bytes, first difference at {:?}",
            ours.len(),
            body.len(),
            ours.iter().zip(&body).position(|(a, b)| a != b)
        ),
        (Err(_), Err(_)) => {}
        (ours, theirs) => prop_assert!(false, "ours {ours:?}, the crate's {theirs:?}"),
    }
    Ok(())
}

// ---- value strategies ------------------------------------------------------

/// Any unicode text, with lengths around the LEB128 boundaries (127/128
/// and 16383/16384 bytes) too.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<String>(),
        2 => "[a-z,= \"'\\\\\n\t]{0,12}",
        2 => Just("naïve 🚀 ünïcødé, 'quoted'\n".to_string()),
        2 => ".{200,400}",
        2 => "[a-z]{120,260}",
        1 => "[a-z]{16370,16400}",
    ]
}

/// Timestamps from year 1 to 9999; a few have nanoseconds finer than a
/// microsecond, which the column refuses.
fn ts() -> impl Strategy<Value = DateTime<Utc>> {
    (
        -62_135_596_800_000_000i64..=253_402_300_799_999_999,
        prop_oneof![40 => Just(0i64), 1 => 1i64..1000],
    )
        .prop_map(|(us, ns)| {
            DateTime::from_timestamp_micros(us).unwrap() + chrono::Duration::nanoseconds(ns)
        })
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (-800_000i64..800_000)
        .prop_map(|d| NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d))
}

/// A decimal that fits `Decimal(p, s)` most of the time, else any decimal
/// (too many places or digits: refused by both encoders).
fn dec(p: u32, s: u32) -> impl Strategy<Value = Decimal> {
    let max = 10i128.pow(p) - 1;
    prop_oneof![
        30 => (-max..=max).prop_map(move |m| Decimal::from_i128_with_scale(m, s)),
        8 => (-999i64..=999, 0u32..=s).prop_map(|(m, k)| Decimal::new(m, k)),
        1 => (any::<i64>(), 0u32..=28).prop_map(|(m, k)| Decimal::new(m, k)),
    ]
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn list<T: Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(s, 0..4)
}

// ---- generated rows of the fixture schemas --------------------------------

prop_compose! {
    fn page_view()(
        (id, site, viewed_at, day, path, referrer) in
            (uuid(), text(), ts(), date(), text(), prop::option::of(text())),
        (plan, bot, load_ms, depth, bytes_out, score) in
            (prop::option::of("PRO|FREE"), any::<bool>(), any::<i32>(),
             prop::option::of(any::<i16>()), any::<i64>(), prop::option::of(any::<f64>())),
        (tags, ab_groups, payload, prices, seen_at, kind) in
            (list(text()), list(uuid()), prop::option::of(list(any::<u8>())),
             list(dec(12, 4)), list(ts()), prop::option::of(text())),
        (_version, _deleted) in (any::<u64>(), any::<u8>()),
    ) -> analytics::lake::PageViewRow {
        analytics::lake::PageViewRow {
            id, site, viewed_at, day, path, referrer, plan, bot, load_ms, depth,
            bytes_out, score, tags, ab_groups, payload, prices, seen_at, r#type: kind,
            _version, _deleted,
        }
    }
}

prop_compose! {
    fn invoice()(
        (id, number, customer, plan, amount, tax_rate, total) in
            (uuid(), text(), text(), "PRO|FREE|TEAM", dec(18, 2), dec(5, 4),
             prop::option::of(dec(28, 10))),
        (paid, due_on, lines, paid_at, created_at, updated_at) in
            (any::<bool>(), date(), text(), prop::option::of(ts()), ts(), ts()),
        (version, _version, _deleted) in (any::<i64>(), any::<u64>(), any::<u8>()),
    ) -> analytics::legacy::InvoiceRow {
        analytics::legacy::InvoiceRow {
            id, number, customer, plan, amount, tax_rate, total, paid, due_on, lines,
            paid_at, created_at, updated_at, version, _version, _deleted,
        }
    }
}

prop_compose! {
    fn user()(
        (id, handle, email, tier, born_on, avatar, referrer_id) in
            (uuid(), text(), text(), prop::option::of("GOLD|SILVER"),
             prop::option::of(date()), prop::option::of(list(any::<u8>())),
             prop::option::of(uuid())),
        (group, flags, badges, seen, days, keys) in
            (text(), list(any::<i16>()), list(text()), list(ts()), list(date()), list(uuid())),
        (created_at, updated_at, version, _version, _deleted) in
            (ts(), ts(), any::<i64>(), any::<u64>(), any::<u8>()),
    ) -> market::olap::UserRow {
        market::olap::UserRow {
            id, handle, email, tier, born_on, avatar, referrer_id, group, flags, badges,
            seen, days, keys, created_at, updated_at, version, _version, _deleted,
        }
    }
}

prop_compose! {
    fn market_order()(
        (id, user_id, state, kind, total, fee, qty) in
            (any::<i64>(), uuid(), "NEW|PAID|SHIPPED", prop::option::of(text()),
             dec(28, 10), prop::option::of(dec(20, 8)), any::<i32>()),
        (lines, meta, labels, amounts, placed_on, note, ratio, active) in
            (text(), prop::option::of(text()), list(text()), list(dec(20, 4)),
             prop::option::of(date()), prop::option::of(text()),
             prop::option::of(any::<f64>()), any::<bool>()),
        (created_at, updated_at, version, _version, _deleted) in
            (ts(), ts(), any::<i64>(), any::<u64>(), any::<u8>()),
    ) -> market::olap::OrderRow {
        market::olap::OrderRow {
            id, user_id, state, r#type: kind, total, fee, qty, lines, meta, labels, amounts,
            placed_on, note, ratio, active, created_at, updated_at, version, _version,
            _deleted,
        }
    }
}

prop_compose! {
    fn trading_order()(
        (id, client_order_id, exchange_order_id, decision_id, strategy_id, symbol) in
            (uuid(), text(), prop::option::of(text()), prop::option::of(uuid()),
             prop::option::of(uuid()), "[A-Z]{3,10}"),
        (side, order_type, time_in_force, status) in
            ("BUY|SELL", "MARKET|LIMIT|STOP", "GTC|IOC|FOK", "NEW|PARTIALLY_FILLED|FILLED"),
        (quantity, price, stop_price, filled_quantity, average_fill_price, fee) in
            (dec(28, 8), prop::option::of(dec(20, 8)), prop::option::of(dec(20, 8)),
             dec(28, 8), prop::option::of(dec(20, 8)), dec(20, 8)),
        (fee_currency, notes, submitted_at, filled_at, created_at, updated_at) in
            (prop::option::of(text()), prop::option::of(text()), prop::option::of(ts()),
             prop::option::of(ts()), ts(), ts()),
        (version, _version, _deleted) in (any::<i64>(), any::<u64>(), any::<u8>()),
    ) -> deepalpha_db::clickhouse::analytics::OrderRow {
        deepalpha_db::clickhouse::analytics::OrderRow {
            id, client_order_id, exchange_order_id, decision_id, strategy_id, symbol, side,
            order_type, time_in_force, status, quantity, price, stop_price, filled_quantity,
            average_fill_price, fee, fee_currency, notes, submitted_at, filled_at, created_at,
            updated_at, version, _version, _deleted,
        }
    }
}

// ---- every other shape the crate encodes ----------------------------------

/// Bytes through `serialize_bytes` (a `String` column holding bytes).
#[derive(Debug, Clone)]
struct Blob(Vec<u8>);
impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

#[derive(Debug, Clone, Serialize)]
struct Meters(f64);

/// A `Variant` column: the variant's index, then its value.
#[derive(Debug, Clone, Serialize)]
enum Choice {
    Number(u32),
    Text(String),
    Maybe(Option<i64>),
    List(Vec<i8>),
}

#[derive(Debug, Clone, clickhouse::Row, Serialize)]
struct Shapes {
    a_i8: i8,
    a_i16: i16,
    a_u16: u16,
    a_u32: u32,
    a_i128: i128,
    a_u128: u128,
    a_f32: f32,
    blob: Blob,
    meters: Meters,
    pair: (u8, String, i64),
    nested: Vec<Vec<u16>>,
    holes: Vec<Option<String>>,
    maybe_list: Option<Vec<i32>>,
    map: BTreeMap<String, Option<u64>>,
    choice: Choice,
    #[serde(with = "clickhouse::serde::uuid::option")]
    maybe_id: Option<Uuid>,
    #[serde(with = "clickhouse::serde::uuid_vec")]
    ids: Vec<Uuid>,
    #[serde(with = "clickhouse::serde::ipv4")]
    ip: std::net::Ipv4Addr,
    #[serde(with = "clickhouse::serde::chrono::datetime64::nanos")]
    at_ns: DateTime<Utc>,
    #[serde(with = "clickhouse::serde::chrono::datetime::option")]
    at_s: Option<DateTime<Utc>>,
    #[serde(with = "clickhouse::serde::chrono::date32")]
    day32: NaiveDate,
    wide: clickhouse::types::Int256,
    uwide: clickhouse::types::UInt256,
    half: clickhouse::types::BFloat16,
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        any::<u32>().prop_map(Choice::Number),
        text().prop_map(Choice::Text),
        prop::option::of(any::<i64>()).prop_map(Choice::Maybe),
        list(any::<i8>()).prop_map(Choice::List),
    ]
}

prop_compose! {
    fn shapes()(
        (a_i8, a_i16, a_u16, a_u32, a_i128, a_u128, a_f32) in
            (any::<i8>(), any::<i16>(), any::<u16>(), any::<u32>(), any::<i128>(),
             any::<u128>(), any::<f32>()),
        (blob, meters, pair, nested, holes, maybe_list) in
            (list(any::<u8>()).prop_map(Blob), any::<f64>().prop_map(Meters),
             (any::<u8>(), text(), any::<i64>()), list(list(any::<u16>())),
             list(prop::option::of(text())), prop::option::of(list(any::<i32>()))),
        (map, choice, maybe_id, ids, ip) in
            (prop::collection::btree_map(text(), prop::option::of(any::<u64>()), 0..4),
             choice(), prop::option::of(uuid()), list(uuid()),
             any::<u32>().prop_map(std::net::Ipv4Addr::from)),
        (at_ns, at_s, day32) in
            ((-9_000_000_000i64..9_000_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
             prop::option::of((0i64..4_000_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())),
             // Date32 is 1900..=2299; a few dates outside are refused by both.
             prop_oneof![
                 20 => (-25_567i64..=120_529).prop_map(|d| NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d)),
                 1 => date(),
             ]),
        (wide, uwide, half) in
            (any::<[u8; 32]>().prop_map(clickhouse::types::Int256::from_le_bytes),
             any::<[u8; 32]>().prop_map(clickhouse::types::UInt256::from_le_bytes),
             any::<u16>().prop_map(clickhouse::types::BFloat16::from_bits)),
    ) -> Shapes {
        Shapes {
            a_i8, a_i16, a_u16, a_u32, a_i128, a_u128, a_f32, blob, meters, pair, nested,
            holes, maybe_list, map, choice, maybe_id, ids, ip, at_ns, at_s, day32, wide,
            uwide, half,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn page_views_encode_as_the_crate_does(rows in prop::collection::vec(page_view(), 1..6)) {
        same_as_the_crate(&rows)?;
    }

    #[test]
    fn invoices_encode_as_the_crate_does(rows in prop::collection::vec(invoice(), 1..6)) {
        same_as_the_crate(&rows)?;
    }

    #[test]
    fn users_encode_as_the_crate_does(rows in prop::collection::vec(user(), 1..6)) {
        same_as_the_crate(&rows)?;
    }

    #[test]
    fn market_orders_encode_as_the_crate_does(rows in prop::collection::vec(market_order(), 1..6)) {
        same_as_the_crate(&rows)?;
    }

    #[test]
    fn trading_orders_encode_as_the_crate_does(rows in prop::collection::vec(trading_order(), 1..6)) {
        same_as_the_crate(&rows)?;
    }

    #[test]
    fn every_serde_shape_encodes_as_the_crate_does(rows in prop::collection::vec(shapes(), 1..6)) {
        same_as_the_crate(&rows)?;
    }
}

/// What the crate cannot encode either is an error, and the buffer is left
/// as it was.
#[test]
fn shapes_without_an_encoding_are_errors_not_panics() {
    #[derive(Serialize)]
    enum Unit {
        A,
    }
    #[derive(Serialize)]
    struct Pair(u8, u8);
    #[derive(Serialize)]
    enum Wide {
        T(u8, u8),
        S { x: u8 },
    }
    /// A sequence that does not say its length up front.
    struct Unsized;
    impl Serialize for Unsized {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(None)?;
            seq.serialize_element(&1u8)?;
            seq.end()
        }
    }
    let mut out = bytes::BytesMut::from(&b"kept"[..]);
    let errors = [
        row_binary::encode(&('x', 1u8), &mut out),
        row_binary::encode(&(1u8, ()), &mut out),
        row_binary::encode(&(1u8, Unit::A), &mut out),
        row_binary::encode(&(1u8, Pair(1, 2)), &mut out),
        row_binary::encode(&(1u8, Wide::T(1, 2)), &mut out),
        row_binary::encode(&(1u8, Wide::S { x: 1 }), &mut out),
        row_binary::encode(&("abc", Unsized), &mut out),
    ];
    for e in &errors {
        assert!(e.is_err(), "{e:?}");
    }
    assert_eq!(errors[6], Err(EncodeError::UnknownLength));
    assert_eq!(
        &out[..],
        b"kept",
        "a refused value leaves the buffer as it was"
    );
}

fn sample_page_views(n: u128) -> Vec<analytics::lake::PageViewRow> {
    let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
    (0..n)
        .map(|i| analytics::lake::PageViewRow {
            id: Uuid::from_u128(i + 1),
            site: format!("site-{}", i % 7),
            viewed_at: at + chrono::Duration::microseconds(i as i64),
            day: NaiveDate::from_ymd_opt(2026, 1, 1 + (i % 28) as u32).unwrap(),
            path: format!("/p/{i}?q=ü"),
            referrer: (i % 3 == 0).then(|| format!("https://example.com/{i}")),
            plan: (i % 2 == 0).then(|| "PRO".to_string()),
            bot: i % 5 == 0,
            load_ms: i as i32,
            depth: Some(i as i16),
            bytes_out: -(i as i64),
            score: Some(i as f64 / 7.0),
            tags: vec![format!("t{i}"); (i % 4) as usize],
            ab_groups: vec![Uuid::from_u128(i * 31)],
            payload: (i % 2 == 1).then(|| vec![i as u8; 9]),
            prices: vec![Decimal::new(i as i64, 4)],
            seen_at: vec![at],
            r#type: None,
            _version: 1,
            _deleted: 0,
        })
        .collect()
}

/// The whole request of the writer, lz4 chunks included, equals the crate's
/// for the same rows: same statement, same chunk boundaries, same bytes.
#[test]
fn the_writer_sends_what_the_crate_sends() {
    use analytics::lake::PageViewRow;
    // About 1.4 MB of RowBinary: six chunks of 254 KiB and a remainder.
    let rows = sample_page_views(10_000);
    for compression in [Compression::Lz4, Compression::None] {
        let (want_line, want_body) = rt()
            .block_on(crate_request(&rows, PageViewRow::TABLE, compression))
            .expect("the crate's insert");
        let (line, body) = rt().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let server = tokio::spawn(capture_one(listener));
            let client = Client::default()
                .with_url(url)
                .with_validation(false)
                .with_compression(compression);
            let config = WriterConfig::default()
                .with_max_rows(1_000_000)
                .with_max_age(Duration::from_secs(3600));
            let mut w = Writer::<PageViewRow>::new(client, config);
            for r in &rows {
                w.write(r).await.expect("write");
            }
            w.flush().await.expect("flush");
            let (head, body) = server.await.unwrap();
            (head.lines().next().unwrap_or_default().to_string(), body)
        });
        assert!(want_line.contains("RowBinary"), "{want_line}");
        assert_eq!(line, want_line, "{compression:?}");
        assert!(body.len() > 10_000, "{compression:?}: {} bytes", body.len());
        assert!(body == want_body, "{compression:?}: the bodies differ");
    }
}
