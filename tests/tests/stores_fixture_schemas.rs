//! The ClickHouse, InfluxDB and Elasticsearch back ends on the
//! `market_multi_store` and `fleet_multi_store` fixtures: the modern DDL on chdb (with the
//! current-rows view of a ClickHouse-native table), the 18.16 DDL and typed
//! rows on the live server, influx points, and lossy mappings refused.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use strata_codegen::clickhouse::{self, DdlOptions, MODERN};
use strata_sdk::clickhouse::{Writer, WriterConfig};
use strata_sdk::influx;
use strata_sdk::influx::{LineEncoder, Precision};
use strata_tests::fixtures::fleet_multi_store::{clickhouse as fleet_ch, influx as fleet_influx};
use strata_tests::fixtures::market_multi_store::clickhouse as market_ch;
use strata_tests::support::{capture_one, chdb, RowsFile};

fn model(fixture: &str) -> strata_codegen::Model {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/valid/{fixture}.yaml"));
    strata_codegen::compile(&strata_codegen::load(&full).expect("load"))
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

fn modern_ddl(m: &strata_codegen::Model, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (id, e) in clickhouse::tables(m) {
        let store = &m[id];
        if clickhouse::Target::of(store) != MODERN {
            continue;
        }
        let opts = DdlOptions::default()
            .with_target(MODERN)
            .with_database(format!("{prefix}_{}", store.name))
            .single_node();
        out.extend(clickhouse::statements(store, e, &opts));
    }
    out
}

#[test]
fn modern_ddl_of_both_fixtures_runs_on_chdb_and_the_view_keeps_the_latest() {
    let mut st = modern_ddl(&model("market_multi_store"), "q2m");
    st.extend(modern_ddl(&model("fleet_multi_store"), "q2f"));
    st.extend(modern_ddl(&model("library_multi_store"), "q2l"));
    // A ClickHouse-native table with reserved-word columns: versions in separate parts.
    let ins = |v: &str, km: &str, ver: u64, del: u8| {
        format!(
            "INSERT INTO `q2f_warehouse`.`trip` (`vehicle`, `started_at`, `km`, `stops`, `route`, `day`, `group`, `_version`, `_deleted`) \
             VALUES ('{v}', '2026-03-01 08:00:00.000001', {km}, 1, ['a', ''], '1950-01-01', 'order', {ver}, {del})"
        )
    };
    st.push(ins("v1", "1.5", 1, 0));
    st.push(ins("v1", "2.5", 3, 0));
    st.push(ins("v1", "9.9", 2, 0));
    st.push(ins("v2", "1.0", 1, 0));
    st.push(ins("v2", "1.0", 2, 1));
    let r = chdb(
        &st,
        &[
            "SELECT name FROM system.tables WHERE database LIKE 'q2%' ORDER BY name",
            "SELECT vehicle, toString(km) AS km, route, toString(day) AS day, `group` FROM `q2f_warehouse`.`trip_current` ORDER BY vehicle",
        ],
    );
    let names: Vec<&str> = r[0].iter().filter_map(|v| v["name"].as_str()).collect();
    for t in [
        "order",
        "order_current",
        "user",
        "user_current",
        "trip_current",
        "vehicle_current",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
    assert_eq!(r[1].len(), 1, "{:?}", r[1]);
    assert_eq!(r[1][0]["vehicle"], "v1");
    assert_eq!(r[1][0]["km"], "2.5");
    assert_eq!(r[1][0]["route"], json!(["a", ""]));
    assert_eq!(r[1][0]["day"], "1950-01-01");
    assert_eq!(r[1][0]["group"], "order");
}

use strata_tests::support::{clickhouse_url as ch_url, ClickHouseDb};

fn vehicle(i: u32, version: u64, deleted: u8) -> fleet_ch::legacy::VehicleRow {
    let t0 = DateTime::<Utc>::from_timestamp_micros(-86_400_000_001 + i as i64).unwrap();
    fleet_ch::legacy::VehicleRow {
        fleet: "north".into(),
        plate: format!("P-{i:04}"),
        fuel: (i % 2 == 0).then(|| "ELECTRIC".into()),
        status: "IDLE".into(),
        seats: i16::MIN + i as i16,
        odometer: i64::MAX - i as i64,
        bought_on: NaiveDate::from_ymd_opt(1901, 12, 14).unwrap(),
        price: Decimal::new(-999_999_999_999, 2) + Decimal::from(version),
        tow_fleet: None,
        tow_plate: Some(String::new()),
        specs: Some(r#"{"a":"b\"c","ü":[1,null]}"#.into()),
        zones: if i % 3 == 0 {
            vec![]
        } else {
            vec!["z'1".into(), "\\".into()]
        },
        user: Some("O'Brien 🚚".into()),
        created_at: t0,
        updated_at: t0 + chrono::Duration::seconds(version as i64),
        version: version as i64,
        _version: version,
        _deleted: deleted,
    }
}

#[tokio::test]
async fn the_18_16_ddl_and_typed_rows_round_trip_on_the_live_server() {
    let db = ClickHouseDb::new();
    for (fixture, store) in [
        ("fleet_multi_store", "legacy"),
        ("market_multi_store", "old"),
    ] {
        db.create_tables(&model(fixture), store, |_| true).await;
    }
    let client = strata_sdk::clickhouse::client(&ch_url(), &db.name);
    let mut w = Writer::<fleet_ch::legacy::VehicleRow>::new(
        client.clone(),
        WriterConfig::default().with_max_rows(5),
    );
    let mut want = Vec::new();
    for i in 0..12u32 {
        for v in [1, 3, 2] {
            w.write(&vehicle(i, v, 0)).await.unwrap();
        }
        if i == 7 {
            w.write(&vehicle(i, 4, 1)).await.unwrap();
        } else {
            want.push(vehicle(i, 3, 0));
        }
    }
    w.flush().await.unwrap();
    let back = client
        .query("SELECT ?fields FROM vehicle FINAL WHERE _deleted = 0 ORDER BY plate")
        .fetch_all::<fleet_ch::legacy::VehicleRow>()
        .await
        .unwrap();
    assert_eq!(back, want);
    let current: u64 = client
        .query("SELECT count() FROM vehicle_current")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(current, 11);
}

fn order_row(i: i64, version: u64) -> market_ch::old::OrderRow {
    let t0 = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_000_001).unwrap();
    market_ch::old::OrderRow {
        id: i,
        user_id: uuid::Uuid::from_u128(i as u128 * 31),
        state: "PAID".into(),
        r#type: (i % 2 == 0).then(|| "DIGITAL".into()),
        total: if i % 2 == 0 {
            "999999999999999999.9999999999".parse().unwrap()
        } else {
            "-0.0000000001".parse().unwrap()
        },
        fee: (i % 3 == 0).then(|| Decimal::new(-99_999_999_999_999_999, 8)),
        qty: i32::MIN + i as i32,
        lines: r#"[{"sku":"a\"b","n":1}]"#.into(),
        meta: None,
        labels: if i % 2 == 0 {
            vec![]
        } else {
            vec!["ü".into(), String::new()]
        },
        amounts: vec![Decimal::new(-99_999_999_999_999_999, 4), Decimal::ZERO],
        placed_on: Some(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()),
        note: Some(format!("v{version} \t \n 🚀")),
        ratio: Some(f64::MAX),
        active: i % 2 == 1,
        created_at: t0,
        updated_at: t0 + chrono::Duration::microseconds(version as i64),
        version: version as i64,
        _version: version,
        _deleted: 0,
    }
}

#[tokio::test]
async fn market_orders_round_trip_on_18_16() {
    let db = ClickHouseDb::new();
    db.create_tables(&model("market_multi_store"), "old", |_| true)
        .await;
    let client = strata_sdk::clickhouse::client(&ch_url(), &db.name);
    let mut w = Writer::<market_ch::old::OrderRow>::new(client.clone(), WriterConfig::default());
    let mut want = Vec::new();
    for i in 1..=9 {
        w.write(&order_row(i, 2)).await.unwrap();
        w.write(&order_row(i, 1)).await.unwrap();
        want.push(order_row(i, 2));
    }
    w.flush().await.unwrap();
    let back = client
        .query("SELECT ?fields FROM `order` FINAL WHERE _deleted = 0 ORDER BY id")
        .fetch_all::<market_ch::old::OrderRow>()
        .await
        .unwrap();
    assert_eq!(back, want);
}

#[test]
fn fleet_pings_encode_as_line_protocol() {
    let at = DateTime::<Utc>::from_timestamp_micros(1_767_225_600_123_000).unwrap();
    let mut p = fleet_influx::tsdb::PingPoint {
        at,
        plate: "AB 12,=3".into(),
        r#type: "van\\x".into(),
        status: None,
        speed: -0.5,
        heading: Some(i16::MIN),
        odo: i64::MAX,
        moving: true,
        note: Some("say \"hi\", a=b".into()),
        fuel_pct: Some(Decimal::new(-10000, 2)),
    };
    let mut enc = LineEncoder::new(Precision::Ms);
    enc.encode(&p).unwrap();
    let line = std::str::from_utf8(enc.as_bytes()).unwrap();
    assert_eq!(
        line,
        "ping,plate=AB\\ 12\\,\\=3,type=van\\x speed=-0.5,heading=-32768i,odo=9223372036854775807i,moving=true,note=\"say \\\"hi\\\", a=b\",fuel_pct=-100 1767225600123\n"
    );
    // A time finer than the store's precision (ms) is refused, not truncated.
    p.at = DateTime::<Utc>::from_timestamp_micros(1_767_225_600_123_456).unwrap();
    assert!(enc.encode(&p).is_err());
}

#[test]
fn lossy_mappings_are_refused_with_a_clear_diagnostic() {
    let schema = r#"
version: 1
stores:
  pg: { kind: postgres, url: "postgres://x" }
  olap: { kind: clickhouse, database: o, server_version: "18.16" }
  es: { kind: elasticsearch, index_prefix: p }
  ts: { kind: influxdb, org: o, bucket: b }
entities:
  Order:
    table: order
    fields:
      id: { type: i64, default: generated }
      maybe: "string(20)[]?"
      digest: bytes?
      blobs: "bytes[]"
    search: { store: es }
  Ping:
    store: ts
    time: at
    tags: [plate]
    fields:
      at: timestamptz
      plate: string(12)
      list: "i32[]"
      raw: bytes
sync:
  - { from: Order, to: [olap, es] }
"#;
    let err = strata_codegen::compile_str("lossy.yaml", schema).expect_err("refused");
    let short = err.render_short();
    for want in [
        "`Order.maybe` cannot be stored in ClickHouse store `olap`",
        "`Order.blobs` cannot be stored in ClickHouse store `olap`",
        "`Order.digest` cannot be indexed in search store `es`",
        "Ping.list",
        "Ping.raw",
    ] {
        assert!(short.contains(want), "{want} not in:\n{short}");
    }
}

/// Pings through the SDK writer to VictoriaMetrics (ms precision), read back
/// by `/api/v1/export` with the same tags (`type` included), fields and times.
#[tokio::test]
async fn fleet_pings_round_trip_through_victoria_metrics() {
    let vurl = std::env::var("VICTORIA_URL").unwrap_or_else(|_| "http://127.0.0.1:8428".into());
    // A backslash before an ordinary character: InfluxDB and VictoriaMetrics
    // both keep it (one ending the text is refused, see influx_encode.rs).
    // Within `plate`'s declared `string(12)`.
    let run = format!("P{} ,=\\x", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let config = fleet_influx::tsdb::config().expect("config");
    assert_eq!(config.precision(), Precision::Ms);
    let mut w = influx::Writer::new(config);
    let base = Utc::now().timestamp_millis() - 10_000;
    for i in 0..6i64 {
        let p = fleet_influx::tsdb::PingPoint {
            at: DateTime::from_timestamp_millis(base + i).unwrap(),
            plate: run.clone(),
            r#type: "truck ü".into(),
            status: (i % 2 == 0).then(|| "MOVING".into()),
            speed: i as f64 * 1.5,
            heading: Some(-(i as i16)),
            odo: 1_000_000 + i,
            moving: i % 2 == 0,
            note: None,
            fuel_pct: Some(Decimal::new(9999, 2)),
        };
        w.write(&p).await.unwrap();
    }
    w.flush().await.unwrap();
    let http = reqwest::Client::new();
    http.post(format!("{vurl}/internal/force_flush"))
        .send()
        .await
        .unwrap();
    let text = http
        .post(format!("{vurl}/api/v1/export"))
        .form(&[("match[]", "{__name__=\"ping_speed\"}")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["metric"]["plate"] != json!(run) {
            continue;
        }
        assert_eq!(v["metric"]["type"], "truck ü");
        let moving = v["metric"]["status"] == "MOVING";
        for (t, x) in v["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(v["values"].as_array().unwrap())
        {
            let i = t.as_i64().unwrap() - base;
            assert_eq!(x.as_f64().unwrap(), i as f64 * 1.5);
            assert_eq!(moving, i % 2 == 0);
            seen.push(i);
        }
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
}

/// Market users (arrays of enums, timestamps, dates and uuids; a nullable
/// Date32; bytes) as the SDK writer sends them (RowBinary, captured) load
/// into the modern table on chdb and read back as written.
#[tokio::test]
async fn market_user_rows_load_into_the_modern_table_on_chdb() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(capture_one(listener));
    let client = ::clickhouse::Client::default()
        .with_url(url)
        .with_validation(false)
        .with_compression(::clickhouse::Compression::None);
    let at = DateTime::<Utc>::from_timestamp_micros(-123_456_789).unwrap();
    let mut w = Writer::<market_ch::olap::UserRow>::new(client, WriterConfig::default());
    for i in 0..3u128 {
        w.write(&market_ch::olap::UserRow {
            id: uuid::Uuid::from_u128(i + 1),
            handle: format!("h{i}"),
            email: "ü@x".into(),
            tier: (i != 1).then(|| "GOLD".into()),
            born_on: (i != 2).then(|| NaiveDate::from_ymd_opt(1900, 1, 1).unwrap()),
            avatar: (i == 0).then(|| vec![0, 255]),
            referrer_id: None,
            group: "order".into(),
            flags: vec![i16::MIN, i16::MAX],
            badges: if i == 1 {
                vec![]
            } else {
                vec!["GOLD".into(), "SILVER".into()]
            },
            seen: vec![at, at + chrono::Duration::microseconds(1)],
            days: vec![NaiveDate::from_ymd_opt(2299, 12, 31).unwrap()],
            keys: vec![uuid::Uuid::max()],
            created_at: at,
            updated_at: at,
            version: 1,
            _version: 1,
            _deleted: 0,
        })
        .await
        .unwrap();
    }
    w.flush().await.expect("the capture answers 200");
    let (_, body) = server.await.unwrap();
    let m = model("market_multi_store");
    let e = m.entity("User").unwrap();
    let opts = DdlOptions::default()
        .with_target(MODERN)
        .with_database("t")
        .single_node();
    let mut st = clickhouse::statements(m.store("olap").unwrap(), e, &opts);
    let file = RowsFile::new(&st[1], "t.user", &body);
    st.push(file.insert.clone());
    let r = chdb(
        &st,
        &["SELECT handle, tier, toString(born_on) AS born_on, hex(avatar) AS avatar, `group`, flags, badges, toString(seen) AS seen, toString(days) AS days, toString(keys) AS keys, toString(created_at) AS created_at FROM t.user_current ORDER BY handle"],
    );
    let rows = &r[0];
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["tier"], "GOLD");
    assert_eq!(rows[1]["tier"], Value::Null);
    assert_eq!(rows[0]["born_on"], "1900-01-01");
    assert_eq!(rows[2]["born_on"], Value::Null);
    assert_eq!(rows[0]["avatar"], "00FF");
    assert_eq!(rows[0]["group"], "order");
    assert_eq!(rows[0]["flags"], json!([-32768, 32767]));
    assert_eq!(rows[0]["badges"], json!(["GOLD", "SILVER"]));
    assert_eq!(rows[1]["badges"], json!([]));
    assert_eq!(
        rows[0]["seen"],
        "['1969-12-31 23:57:56.543211','1969-12-31 23:57:56.543212']"
    );
    assert_eq!(rows[0]["days"], "['2299-12-31']");
    assert_eq!(rows[0]["keys"], "['ffffffff-ffff-ffff-ffff-ffffffffffff']");
    assert_eq!(rows[0]["created_at"], "1969-12-31 23:57:56.543211");
}
