//! Store benchmarks (not tests): run in release.
//!
//! ```sh
//! cargo run --release -p strata-tests --example stores_bench            # all
//! cargo run --release -p strata-tests --example stores_bench -- clickhouse 3000000  # BENCHMARKS.md
//! cargo run --release -p strata-tests --example stores_bench -- line 1000000
//! cargo run --release -p strata-tests --example stores_bench -- victoria 200000
//! ```
//!
//! ClickHouse: the same candle-like rows (`String, String, DateTime,
//! Float64 ×5` plus the version columns) through the SDK writer and through
//! a bare `clickhouse` crate inserter with the same batch size, in nine
//! rounds that alternate which side goes first, in one run, on
//! CLICKHOUSE_URL (default the local 18.16 server).

#[allow(dead_code)]
mod trading {
    include!(concat!(env!("OUT_DIR"), "/trading/influx.rs"));
}

use std::time::{Duration, Instant};

use chrono::DateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use strata_sdk::clickhouse::{Table, Writer, WriterConfig};
use strata_sdk::influx;
use strata_sdk::influx::{LineEncoder, Precision};

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
struct BenchCandle {
    symbol: String,
    timeframe: String,
    ts: u32,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    _version: u64,
    _deleted: u8,
}

impl Table for BenchCandle {
    const DATABASE: &'static str = "bench";
    const TABLE: &'static str = "candles";
    fn encoded_len(&self) -> usize {
        self.symbol.len() + self.timeframe.len() + 2 + 4 + 40 + 9
    }
}

const BATCH: u64 = 100_000;
/// Rounds, each running both sides, the first side alternating from round
/// to round; the machine is shared, so medians are reported.
const ROUNDS: usize = 9;

fn candles(n: usize) -> Vec<BenchCandle> {
    (0..n)
        .map(|i| BenchCandle {
            symbol: format!("SYM{}", i % 50),
            timeframe: "1m".into(),
            ts: 1_700_000_000 + (i / 50) as u32 * 60,
            open: 100.0 + (i % 97) as f64,
            high: 101.0 + (i % 89) as f64,
            low: 99.0 - (i % 83) as f64 / 10.0,
            close: 100.5,
            volume: i as f64 * 0.25,
            _version: 1,
            _deleted: 0,
        })
        .collect()
}

/// Inserts `rows` through the SDK writer (`sdk`) or a bare inserter with
/// the same batch size, into table `candles` of `client`'s database.
async fn insert_side(which: &str, client: &clickhouse::Client, rows: &[BenchCandle]) {
    if which == "sdk" {
        let config = WriterConfig::default()
            .with_max_rows(BATCH as usize)
            .with_max_age(Duration::from_secs(3600));
        let mut w = Writer::<BenchCandle>::new(client.clone(), config);
        for r in rows {
            w.write(r).await.unwrap();
        }
        w.flush().await.unwrap();
    } else {
        let mut ins = client
            .inserter::<BenchCandle>("candles")
            .with_max_rows(BATCH);
        for r in rows {
            ins.write(r).await.unwrap();
            ins.commit().await.unwrap();
        }
        ins.end().await.unwrap();
    }
}

/// Per-side rates of alternated rounds → the report lines.
fn report(label: &str, sdk_rates: &mut [f64], bare_rates: &mut [f64]) {
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut ratios: Vec<f64> = sdk_rates
        .iter()
        .zip(bare_rates.iter())
        .map(|(s, b)| s / b)
        .collect();
    println!("{label} per-round ratios sdk/bare: {ratios:.2?}");
    println!("{label} median per-round ratio: {:.3}", median(&mut ratios));
    let (sdk, bare) = (median(sdk_rates), median(bare_rates));
    println!(
        "{label} median of {ROUNDS}: sdk {sdk:.0} rows/s, bare {bare:.0} rows/s, ratio of medians {:.3}",
        sdk / bare
    );
}

/// The side that goes first alternates from round to round: the first one
/// meets the server right after the previous round's table was dropped.
fn round_order(round: usize) -> [&'static str; 2] {
    if round % 2 == 0 {
        ["bare", "sdk"]
    } else {
        ["sdk", "bare"]
    }
}

async fn clickhouse(n: usize) {
    let url = std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let db = format!("strata_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = clickhouse::Client::default()
        .with_url(&url)
        .with_validation(false);
    admin
        .query(&format!("CREATE DATABASE `{db}`"))
        .execute()
        .await
        .unwrap();
    let rows = candles(n);
    let client = strata_sdk::clickhouse::client(&url, &db);
    let mut sdk_rates = Vec::new();
    let mut bare_rates = Vec::new();
    for round in 0..ROUNDS {
        for which in round_order(round) {
            admin
                .query(&format!("DROP TABLE IF EXISTS `{db}`.candles"))
                .execute()
                .await
                .unwrap();
            admin
                .query(&format!(
                    "CREATE TABLE `{db}`.candles (symbol String, timeframe String, ts DateTime('UTC'), \
                     open Float64, high Float64, low Float64, close Float64, volume Float64, \
                     _version UInt64, _deleted UInt8) ENGINE = ReplacingMergeTree(_version) \
                     ORDER BY (symbol, timeframe, ts)"
                ))
                .execute()
                .await
                .unwrap();
            let start = Instant::now();
            insert_side(which, &client, &rows).await;
            let secs = start.elapsed().as_secs_f64();
            let count: u64 = client
                .query("SELECT count() FROM candles")
                .fetch_one()
                .await
                .unwrap();
            assert_eq!(count, n as u64);
            let rate = n as f64 / secs;
            println!(
                "clickhouse round {round} {which:>4}: {n} rows in {secs:.2}s = {rate:.0} rows/s"
            );
            if which == "sdk" {
                sdk_rates.push(rate)
            } else {
                bare_rates.push(rate)
            }
        }
    }
    report("clickhouse", &mut sdk_rates, &mut bare_rates);
    admin
        .query(&format!("DROP DATABASE `{db}`"))
        .execute()
        .await
        .unwrap();
}

fn point(i: i64, exchange: &str) -> trading::series::CandlePoint {
    trading::series::CandlePoint {
        ts: DateTime::from_timestamp_millis(1_790_000_000_000 + i * 1000).unwrap(),
        symbol: format!("SYM{}", i % 50),
        timeframe: "1m".into(),
        exchange: exchange.into(),
        open: Decimal::new(6_512_345_678 + i, 5),
        high: Decimal::new(6_612_345_678 + i, 5),
        low: Decimal::new(6_412_345_678 + i, 5),
        close: Decimal::new(6_552_345_678 + i, 5),
        volume: Decimal::new(i * 37, 4),
        trades: Some(i),
    }
}

fn line(n: usize) {
    let points: Vec<_> = (0..n as i64).map(|i| point(i, "binance")).collect();
    let mut enc = LineEncoder::new(Precision::Ns);
    let mut bytes = 0usize;
    let mut gz = 0usize;
    let start = Instant::now();
    for chunk in points.chunks(5_000) {
        for p in chunk {
            enc.encode(p).unwrap();
        }
        bytes += enc.len();
        enc.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    // Compression measured apart from the encoding rate.
    for chunk in points[..n.min(100_000)].chunks(5_000) {
        for p in chunk {
            enc.encode(p).unwrap();
        }
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, enc.as_bytes()).unwrap();
        gz += e.finish().unwrap().len();
        enc.clear();
    }
    let sample = n.min(100_000);
    let raw_sample = bytes as f64 / n as f64 * sample as f64;
    println!(
        "line protocol: {n} points in {secs:.3}s = {:.0} points/s, {:.1} MB/s, {:.1} bytes/point, gzip(fast) {:.1} bytes/point ({:.1}x)",
        n as f64 / secs,
        bytes as f64 / secs / 1e6,
        bytes as f64 / n as f64,
        gz as f64 / sample as f64,
        raw_sample / gz as f64
    );
}

async fn victoria(n: usize) {
    let url = std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into());
    let run = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let points: Vec<_> = (0..n as i64).map(|i| point(i, &run)).collect();
    let mut w =
        influx::Writer::new(influx::WriterConfig::new(url, "bench", "bench").with_max_rows(5_000));
    let start = Instant::now();
    for p in &points {
        w.write(p).await.unwrap();
    }
    w.flush().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "victoria-metrics: {n} points ({} series values) in {secs:.2}s = {:.0} points/s",
        n * 6,
        n as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("all");
    let n = |d: usize| args.get(1).and_then(|s| s.parse().ok()).unwrap_or(d);
    if matches!(what, "all" | "clickhouse") {
        clickhouse(n(1_000_000)).await;
    }
    if matches!(what, "all" | "line") {
        line(n(1_000_000));
    }
    if matches!(what, "all" | "victoria") {
        victoria(n(200_000)).await;
    }
}
