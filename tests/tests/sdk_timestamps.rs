//! One rule for timestamps finer than a microsecond, before every store.
//!
//! PostgreSQL keeps microseconds and the ClickHouse copy keeps Int64
//! microseconds, so a `DateTime<Utc>` with nanoseconds (every `Utc::now()`
//! on Linux) must reach both as the same value. The rule (issue 12, item 2):
//! truncate to the microsecond, i.e. round *down* in time
//! (the microsecond at or before it), identically on every write path.
//!
//! Found by a newcomer's test, fixed since: sqlx encodes a timestamp as
//! microseconds since 2000-01-01 with `TimeDelta::num_microseconds`, which
//! truncates *toward 2000* (`1999-12-31T23:59:59.999999999` became
//! `2000-01-01T00:00:00`), and the ClickHouse row encoder refused the same
//! value. Now the binders and the encoder both floor to the microsecond.

mod sdk_support;

use chrono::{DateTime, TimeDelta, Utc};
use deepalpha_db::clickhouse::analytics::OrderRow;
use deepalpha_db::*;
use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::clickhouse::row_binary;

/// Timestamps with nanoseconds below a microsecond, after and before the
/// PostgreSQL epoch (2000-01-01) and the Unix epoch.
fn tricky() -> Vec<DateTime<Utc>> {
    [
        "2026-12-06T07:30:00.123456789Z",
        "2000-01-01T00:00:00.000000001Z",
        "1999-12-31T23:59:59.999999999Z",
        "1999-06-15T12:00:00.000000500Z",
        "1969-07-20T20:17:40.000000500Z",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

/// The one rule: the microsecond at or before `t`.
fn truncated(t: DateTime<Utc>) -> DateTime<Utc> {
    // chrono's sub-second nanoseconds count forward from the second at or
    // before `t`, also before 1970.
    t - TimeDelta::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1000))
}

fn order(i: usize, at: DateTime<Utc>) -> NewOrder {
    NewOrder {
        id: None,
        client_order_id: format!("c{i}"),
        exchange_order_id: None,
        decision_id: None,
        strategy_id: None,
        symbol: "BTCUSDT".into(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        time_in_force: None,
        status: None,
        quantity: Decimal::ONE,
        price: None,
        stop_price: None,
        filled_quantity: None,
        average_fill_price: None,
        fee: None,
        fee_currency: None,
        notes: None,
        submitted_at: Some(at),
        filled_at: None,
    }
}

#[test]
fn the_rule_itself_rounds_down_in_time() {
    let t: DateTime<Utc> = "1999-12-31T23:59:59.999999999Z".parse().unwrap();
    assert_eq!(
        truncated(t).to_rfc3339(),
        "1999-12-31T23:59:59.999999+00:00"
    );
    let t: DateTime<Utc> = "1969-07-20T20:17:40.000000500Z".parse().unwrap();
    assert_eq!(truncated(t).to_rfc3339(), "1969-07-20T20:17:40+00:00");
}

#[tokio::test]

async fn postgres_truncates_to_the_microsecond_on_every_write_path() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    for (i, t) in tricky().into_iter().enumerate() {
        let want = Some(truncated(t));
        let o = Order::insert(pool, &order(i, t)).await.unwrap();
        assert_eq!(o.submitted_at, want, "insert returned, from {t}");
        let got = Order::get(pool, &o.id).await.unwrap();
        assert_eq!(got.submitted_at, want, "insert read back, from {t}");
        let patch = OrderPatch {
            submitted_at: Some(Some(t)),
            any_version: true,
            ..Default::default()
        };
        let p = Order::patch(pool, &o.id, &patch).await.unwrap();
        assert_eq!(p.submitted_at, want, "patch, from {t}");
    }
    // UNNEST (small batches) and binary COPY (past BATCH_CHUNK rows).
    for n in [10, strata_sdk::postgres::BATCH_CHUNK + 5] {
        for (k, t) in tricky().into_iter().enumerate() {
            sqlx::query("TRUNCATE live_order CASCADE")
                .execute(pool)
                .await
                .unwrap();
            let rows = (0..n).map(|i| order(k * n + i, t));
            Order::insert_many(pool, rows).await.unwrap();
            let stored: Vec<(Option<DateTime<Utc>>,)> =
                sqlx::query_as("SELECT DISTINCT submitted_at FROM live_order")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            assert_eq!(stored, vec![(Some(truncated(t)),)], "{n} rows, from {t}");
        }
    }
}

fn row(at: DateTime<Utc>) -> OrderRow {
    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    OrderRow {
        id: uuid::Uuid::nil(),
        client_order_id: "c".into(),
        exchange_order_id: None,
        decision_id: None,
        strategy_id: None,
        symbol: "BTCUSDT".into(),
        side: "BUY".into(),
        order_type: "LIMIT".into(),
        time_in_force: "GTC".into(),
        status: "NEW".into(),
        quantity: Decimal::ONE,
        price: None,
        stop_price: None,
        filled_quantity: Decimal::ZERO,
        average_fill_price: None,
        fee: Decimal::ZERO,
        fee_currency: None,
        notes: None,
        submitted_at: Some(at),
        filled_at: None,
        created_at: t0,
        updated_at: t0,
        version: 1,
        _version: 1,
        _deleted: 0,
    }
}

fn bytes(r: &OrderRow) -> Result<Vec<u8>, row_binary::EncodeError> {
    let mut out = bytes::BytesMut::new();
    row_binary::encode(r, &mut out)?;
    Ok(out.to_vec())
}

#[test]

fn clickhouse_rows_truncate_like_postgres() {
    for t in tricky() {
        let got = bytes(&row(t)).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(got, bytes(&row(truncated(t))).unwrap(), "{t}");
    }
    // A row built from the clock, as users write them.
    let now = Utc::now();
    bytes(&row(now)).unwrap_or_else(|e| panic!("{now}: {e}"));
}

/// What the ignored tests above will check once the rule lands, shown
/// working today: values already at a microsecond are stored unchanged.
#[tokio::test]
async fn microsecond_timestamps_are_stored_unchanged_on_both_sides_of_2000() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    for (i, t) in tricky().into_iter().map(truncated).enumerate() {
        let o = Order::insert(pool, &order(i, t)).await.unwrap();
        assert_eq!(Order::get(pool, &o.id).await.unwrap().submitted_at, Some(t));
        assert!(bytes(&row(t)).is_ok(), "{t}");
    }
}
