//! Live round trip on VictoriaMetrics (VICTORIA_URL, default
//! http://127.0.0.1:8428) over the InfluxDB v2 write API: points written
//! through the SDK writer are exported back with the same tags, fields and
//! timestamps. Each run uses a unique tag value, so runs never collide.

#[allow(dead_code)]
mod trading {
    include!(concat!(env!("OUT_DIR"), "/trading/influx.rs"));
}
#[allow(dead_code)]
mod timeseries {
    include!(concat!(env!("OUT_DIR"), "/timeseries/influx.rs"));
}

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use strata_sdk::influx;
use strata_sdk::influx::Precision;

fn url() -> String {
    std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into())
}

/// Series exported by VictoriaMetrics for a selector: (name, labels) → [(ms, value)].
async fn export(selector: &str) -> BTreeMap<(String, BTreeMap<String, String>), Vec<(i64, f64)>> {
    let http = reqwest::Client::new();
    http.post(format!("{}/internal/force_flush", url()))
        .send()
        .await
        .expect("force_flush");
    let text = http
        .post(format!("{}/api/v1/export", url()))
        .form(&[("match[]", selector)])
        .send()
        .await
        .expect("export")
        .text()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut labels: BTreeMap<String, String> = v["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let name = labels.remove("__name__").unwrap();
        let ts = v["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap());
        let vals = v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap());
        out.insert((name, labels), ts.zip(vals).collect());
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn candles_round_trip_through_victoria_metrics() {
    // Within the declared `string(32)` of `exchange`.
    let run = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    // VictoriaMetrics keeps milliseconds: use whole-millisecond times.
    let base = Utc::now().timestamp_millis() - 60_000;
    let config = influx::WriterConfig::new(url(), "deepalpha", "market_data")
        .with_precision(Precision::Ns)
        .with_max_rows(7)
        .with_max_age(Duration::from_secs(2));
    let mut w = influx::Writer::new(config);
    // Within the declared `string(20)` of `symbol`, with every escape.
    let symbol = "BTC/USDT,\"p\" = x\\y ü";
    let mut points = Vec::new();
    for i in 0..25i64 {
        let p = trading::series::CandlePoint {
            ts: DateTime::from_timestamp_millis(base + i * 1000).unwrap(),
            symbol: symbol.into(),
            timeframe: "1s".into(),
            exchange: run.clone(),
            // VictoriaMetrics keeps about 12 significant digits; InfluxDB keeps float64.
            open: Decimal::new(6_512_345_678 + i, 5),
            high: Decimal::new(70_000 + i, 0),
            low: Decimal::new(-5, 1),
            close: Decimal::new(123_456 * i, 3),
            volume: Decimal::new(i, 2),
            trades: (i % 2 == 0).then_some(i * 1_000_000_007),
        };
        w.write(&p).await.expect("write");
        points.push(p);
    }
    assert!(w.sent() >= 21, "batches of 7 went out on their own");
    // Four points wait; nothing is due yet (max age 2 s), then the age is reached.
    assert_eq!(w.pending(), 4);
    w.flush_if_due().await.unwrap();
    assert_eq!(w.pending(), 4);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    w.flush_if_due().await.expect("flush");
    assert_eq!(w.pending(), 0);
    assert_eq!(w.sent(), 25);

    let got = export(&format!("{{__name__=~\"candles_.*\",exchange=\"{run}\"}}")).await;
    let tags = labels(&[("exchange", &run), ("symbol", symbol), ("timeframe", "1s")]);
    let field = |name: &str, f: &dyn Fn(&trading::series::CandlePoint) -> Option<f64>| {
        let want: Vec<(i64, f64)> = points
            .iter()
            .filter_map(|p| f(p).map(|v| (p.ts.timestamp_millis(), v)))
            .collect();
        let have = got
            .get(&(format!("candles_{name}"), tags.clone()))
            .unwrap_or_else(|| {
                panic!("no series candles_{name} with {tags:?} in {:?}", got.keys())
            });
        assert_eq!(have, &want, "{name}");
    };
    let d = |x: &Decimal| Some(x.to_string().parse::<f64>().unwrap());
    field("open", &|p| d(&p.open));
    field("high", &|p| d(&p.high));
    field("low", &|p| d(&p.low));
    field("close", &|p| d(&p.close));
    field("volume", &|p| d(&p.volume));
    field("trades", &|p| p.trades.map(|t| t as f64));
    assert_eq!(
        got.len(),
        6,
        "exactly the six numeric fields: {:?}",
        got.keys()
    );
}

#[tokio::test]
async fn fixture_points_with_optional_tags_round_trip() {
    let run = format!("site-{}", uuid::Uuid::new_v4().simple());
    let mut config = timeseries::metrics::config().expect("config");
    // The fixture's store points at VICTORIA_URL by default; precision us.
    assert_eq!(config.precision(), Precision::Us);
    config = config.with_max_bytes(300);
    let mut w = influx::Writer::new(config);
    let base = (Utc::now().timestamp_millis() - 5_000) * 1000;
    for i in 0..10i64 {
        let p = timeseries::metrics::ReadingPoint {
            at: DateTime::from_timestamp_micros(base + i * 1000).unwrap(),
            site: run.clone(),
            sensor: format!("s {i}"),
            phase: (i % 2 == 0).then(|| "L2".to_string()),
            value: i as f64 / 8.0,
            raw: None,
            ok: i % 3 == 0,
            note: Some("one, \"two\" = 3\\".into()),
            price: Some(Decimal::new(12_345, 4)),
            r#type: Some("probe".into()),
        };
        w.write(&p).await.unwrap();
    }
    w.flush().await.unwrap();
    let got = export(&format!(
        "{{__name__=~\"sensor_reading_.*\",site=\"{run}\"}}"
    ))
    .await;
    for i in 0..10i64 {
        let mut l = vec![("sensor", format!("s {i}")), ("site", run.clone())];
        if i % 2 == 0 {
            l.push(("phase", "L2".into()));
        }
        let l: BTreeMap<String, String> = l.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let ms = (base + i * 1000) / 1000;
        assert_eq!(
            got[&("sensor_reading_value".into(), l.clone())],
            vec![(ms, i as f64 / 8.0)]
        );
        let ok = if i % 3 == 0 { 1.0 } else { 0.0 };
        assert_eq!(
            got[&("sensor_reading_ok".into(), l.clone())],
            vec![(ms, ok)]
        );
        assert_eq!(got[&("sensor_reading_price".into(), l)], vec![(ms, 1.2345)]);
    }
}

#[tokio::test]
async fn an_unreachable_server_keeps_points_and_bounds_the_buffer() {
    // Port 9 (discard) on localhost is closed here: connection refused.
    let config = influx::WriterConfig::new("http://127.0.0.1:9", "o", "b")
        .with_retry(strata_sdk::writer::Retry::new(
            2,
            Duration::from_millis(5),
            Duration::from_millis(20),
        ))
        .with_max_bytes(200)
        .with_buffer_bytes(400);
    let mut w = influx::Writer::new(config);
    let p = |i: i64| trading::series::PerformanceMetricPoint {
        ts: DateTime::from_timestamp_nanos(i),
        strategy: "s".into(),
        metric: "pnl".into(),
        value: i as f64,
    };
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..50 {
        match w.write(&p(i)).await {
            Ok(()) => accepted += 1,
            // The batch this point joined could not be sent: it is held.
            Err(influx::Error::Unavailable {
                attempts, points, ..
            }) => {
                assert_eq!(attempts, 3);
                assert!(points > 0);
                accepted += 1;
            }
            // The buffer is full of points the server will not take: this
            // one is not taken (the error says so), the writer stays bounded.
            Err(e @ influx::Error::Backlog { .. }) => {
                assert!(!e.taken());
                let influx::Error::Backlog { source, .. } = e else {
                    unreachable!()
                };
                assert!(matches!(
                    *source,
                    influx::Error::Unavailable { attempts: 3, .. }
                ));
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0, "the writer reports the outage");
    // Never more than the buffer limit plus one point is held.
    assert!(w.pending() <= 400 / 30 + 1, "{} pending", w.pending());
    assert_eq!(w.pending(), accepted, "exactly the points taken are held");
    assert_eq!(accepted + refused, 50);
}

/// A writer told the server is VictoriaMetrics (`server: victoriametrics`
/// in the schema) refuses a point holding what the server would change
/// (here an integer past 2^53, which it keeps as a float64) before taking
/// it, and what it takes reads back exactly.
#[tokio::test]
async fn a_victoriametrics_writer_refuses_what_the_server_would_change() {
    let run = format!("vm-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let at = Utc::now().timestamp_millis() - 60_000;
    let config = influx::WriterConfig::new(url(), "deepalpha", "market_data")
        .with_precision(Precision::Ms)
        .with_victoriametrics(true);
    let mut w = influx::Writer::new(config);
    let candle = |i: i64, trades: i64| trading::series::CandlePoint {
        ts: DateTime::from_timestamp_millis(at + i).unwrap(),
        symbol: "X".into(),
        timeframe: "1s".into(),
        exchange: run.clone(),
        open: Decimal::new(1, 0),
        high: Decimal::new(1, 0),
        low: Decimal::new(1, 0),
        close: Decimal::new(1, 0),
        volume: Decimal::new(1, 0),
        trades: Some(trades),
    };
    let e = w.write(&candle(0, (1 << 53) + 1)).await.unwrap_err();
    assert!(e.to_string().contains("2^53"), "{e}");
    assert_eq!(w.pending(), 0, "nothing of the refused point is held");
    w.write(&candle(1, 1 << 53))
        .await
        .expect("exact in a float64");
    w.flush().await.expect("flush");
    let got = export(&format!(
        "{{__name__=\"candles_trades\",exchange=\"{run}\"}}"
    ))
    .await;
    let values: Vec<(i64, f64)> = got.into_values().flatten().collect();
    assert_eq!(values, [(at + 1, 9_007_199_254_740_992.0)]);
}
