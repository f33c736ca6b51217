//! The PostgreSQL write and read paths side by side, in one run, on one
//! fresh database (`cargo bench -p deepalpha-db --bench postgres`):
//!
//! - upsert of 200,000 candles into a table holding half their keys:
//!   generated `CandleBar::upsert_many` vs a hand-written `COPY (FORMAT
//!   binary)` into a staging table + `INSERT … SELECT … ON CONFLICT DO
//!   UPDATE` vs the row-by-row pattern (SELECT, then INSERT or UPDATE);
//! - 200,000 fresh rows: generated `insert_many` vs a raw `COPY (FORMAT
//!   binary)` straight into the table;
//! - `CandleBar::get` vs a hand-written `sqlx::query_as` of the same
//!   statement, p50 over 10,000 calls each, interleaved;
//! - rows with an array column (`Strategy`: `string(20)[]`, json, decimals),
//!   which go through binary `COPY` past 10,000 rows (multi-row `VALUES`
//!   below): generated `upsert_many` vs one `INSERT … ON CONFLICT DO
//!   UPDATE` per row, 50,000 rows.
//!
//! `BENCH_ROWS`, `BENCH_REPS` and `BENCH_ROW_BY_ROW` (rows for the slow
//! pattern; by default all of them, the same 200,000 rows as the upserts)
//! override the sizes.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use deepalpha_db::{CandleBar, NewCandleBar, NewStrategy, NewUser, Strategy, User};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()
}

fn candle(i: usize, base: f64) -> NewCandleBar {
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"];
    let p = base + (i % 1000) as f64;
    NewCandleBar {
        symbol: symbols[i % 4].to_string(),
        timeframe: "1m".to_string(),
        ts: t0() + chrono::Duration::minutes((i / 4) as i64),
        open: p,
        high: p + 2.0,
        low: p - 2.0,
        close: p + 1.0,
        volume: 10.0 + i as f64,
    }
}

fn candles(range: std::ops::Range<usize>, base: f64) -> impl Iterator<Item = NewCandleBar> {
    range.map(move |i| candle(i, base))
}

/// Hand-written binary COPY encoding of a candle, for the baselines.
fn encode(buf: &mut Vec<u8>, c: &NewCandleBar) {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    buf.extend_from_slice(&8i16.to_be_bytes());
    for s in [&c.symbol, &c.timeframe] {
        buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
        buf.extend_from_slice(s.as_bytes());
    }
    buf.extend_from_slice(&8i32.to_be_bytes());
    buf.extend_from_slice(&(c.ts.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    for v in [c.open, c.high, c.low, c.close, c.volume] {
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&v.to_be_bytes());
    }
}

const COLS: &str = "symbol, timeframe, ts, open, high, low, close, volume";

async fn copy_rows(
    conn: &mut PgConnection,
    table: &str,
    rows: impl Iterator<Item = NewCandleBar>,
) -> u64 {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({COLS}) FROM STDIN (FORMAT binary)"))
        .await
        .unwrap();
    let mut buf = Vec::with_capacity(1 << 21);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&[0; 8]);
    for c in rows {
        encode(&mut buf, &c);
        if buf.len() >= 1 << 20 {
            copy.send(buf.as_slice()).await.unwrap();
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf.as_slice()).await.unwrap();
    copy.finish().await.unwrap()
}

/// Hand-written: COPY into a temp table, one INSERT … SELECT … ON CONFLICT DO UPDATE.
async fn hand_copy_upsert(pool: &PgPool, rows: impl Iterator<Item = NewCandleBar>) {
    let mut tx = pool.begin().await.unwrap();
    tx.execute("CREATE TEMP TABLE stage AS SELECT symbol, timeframe, ts, open, high, low, close, volume FROM candle_bars WITH NO DATA")
        .await
        .unwrap();
    copy_rows(&mut tx, "stage", rows).await;
    tx.execute(
        "INSERT INTO candle_bars (symbol, timeframe, ts, open, high, low, close, volume) \
         SELECT symbol, timeframe, ts, open, high, low, close, volume FROM stage \
         ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, \
         low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume",
    )
    .await
    .unwrap();
    tx.execute("DROP TABLE stage").await.unwrap();
    tx.commit().await.unwrap();
}

/// The pattern the old Python layer used: per row, SELECT to check, then INSERT or UPDATE.
async fn row_by_row(pool: &PgPool, rows: impl Iterator<Item = NewCandleBar>) {
    let mut tx = pool.begin().await.unwrap();
    for c in rows {
        let exists: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM candle_bars WHERE symbol = $1 AND timeframe = $2 AND ts = $3",
        )
        .bind(&c.symbol)
        .bind(&c.timeframe)
        .bind(c.ts)
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
        let sql = if exists.is_some() {
            "UPDATE candle_bars SET open = $4, high = $5, low = $6, close = $7, volume = $8 \
             WHERE symbol = $1 AND timeframe = $2 AND ts = $3"
        } else {
            "INSERT INTO candle_bars (symbol, timeframe, ts, open, high, low, close, volume) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        };
        sqlx::query(sql)
            .bind(&c.symbol)
            .bind(&c.timeframe)
            .bind(c.ts)
            .bind(c.open)
            .bind(c.high)
            .bind(c.low)
            .bind(c.close)
            .bind(c.volume)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Empties the table and loads rows `0..preload` untimed.
async fn reset(pool: &PgPool, preload: usize) {
    pool.execute("TRUNCATE candle_bars").await.unwrap();
    if preload > 0 {
        let mut conn = pool.acquire().await.unwrap();
        copy_rows(&mut conn, "candle_bars", candles(0..preload, 1.0)).await;
    }
    pool.execute("VACUUM ANALYZE candle_bars").await.unwrap();
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn strategy(i: usize, owner: uuid::Uuid, ids: &[uuid::Uuid]) -> NewStrategy {
    NewStrategy {
        id: Some(ids[i]),
        name: format!("strategy {i}"),
        description: (i % 2 == 0).then(|| "buys dips".to_string()),
        status: None,
        parameters: Some(serde_json::json!({ "window": i % 50, "z": 2.0 })),
        symbols: Some(vec!["BTCUSDT".into(), format!("SYM{}", i % 100)]),
        max_position_size: rust_decimal::Decimal::new(i as i64, 2),
        risk_limit: Some(rust_decimal::Decimal::new(2, 2)),
        owner_id: owner,
    }
}

/// One `INSERT … ON CONFLICT DO UPDATE` per row, in one transaction.
async fn strategy_per_row(pool: &PgPool, rows: impl Iterator<Item = NewStrategy>) {
    let mut tx = pool.begin().await.unwrap();
    for s in rows {
        sqlx::query(
            "INSERT INTO strategies (id, name, description, status, parameters, symbols, max_position_size, risk_limit, owner_id) \
             VALUES ($1, $2, $3, COALESCE($4, 'DRAFT'), COALESCE($5, '{}'), COALESCE($6, '{}'), $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, status = EXCLUDED.status, \
             parameters = EXCLUDED.parameters, symbols = EXCLUDED.symbols, max_position_size = EXCLUDED.max_position_size, \
             risk_limit = EXCLUDED.risk_limit, owner_id = EXCLUDED.owner_id, updated_at = now(), version = strategies.version + 1",
        )
        .bind(s.id)
        .bind(s.name)
        .bind(s.description)
        .bind(s.status)
        .bind(s.parameters)
        .bind(s.symbols)
        .bind(s.max_position_size)
        .bind(s.risk_limit)
        .bind(s.owner_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Upserts of rows with an array column, into a table holding half their keys.
async fn array_rows(pool: &PgPool, n: usize, reps: usize) {
    let owner = User::insert(
        pool,
        &NewUser {
            id: None,
            username: "bench".into(),
            email: "bench@example.com".into(),
            hashed_password: strata_sdk::Secret::new("x"),
            api_key: None,
            api_secret: None,
            role: None,
            is_active: None,
            last_login_at: None,
        },
    )
    .await
    .unwrap()
    .id;
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
    let reset = || async {
        pool.execute("TRUNCATE strategies CASCADE").await.unwrap();
        Strategy::insert_many(pool, (0..n / 2).map(|i| strategy(i, owner, &ids)))
            .await
            .unwrap();
        pool.execute("VACUUM ANALYZE strategies").await.unwrap();
    };
    let (mut gen, mut per_row) = (vec![], vec![]);
    for rep in 0..reps {
        for turn in 0..2 {
            reset().await;
            let rows = (0..n).map(|i| strategy(i, owner, &ids));
            let t = Instant::now();
            if (rep + turn) % 2 == 0 {
                let c = Strategy::upsert_many(pool, rows).await.unwrap();
                gen.push(rate(n, t.elapsed()));
                assert_eq!(
                    (c.inserted, c.updated),
                    ((n - n / 2) as u64, (n / 2) as u64)
                );
            } else {
                strategy_per_row(pool, rows).await;
                per_row.push(rate(n, t.elapsed()));
            }
        }
    }
    let (g, r) = (median(gen), median(per_row));
    println!(
        "\nrows with an array column (Strategy, {n} rows, {} existing)",
        n / 2
    );
    println!(
        "  generated Strategy::upsert_many (binary COPY)   {g:>10.0}   {:.1}x per row",
        g / r
    );
    println!("  one INSERT … ON CONFLICT per row              {r:>10.0}   1.000");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = env_usize("BENCH_ROWS", 200_000);
    let reps = env_usize("BENCH_REPS", 4);
    let slow_rows = env_usize("BENCH_ROW_BY_ROW", rows);
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = server
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or(server);
    let name = format!("strata_bench_{}", std::process::id());
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&format!("{server}/{name}"))
        .await
        .unwrap();
    sqlx::raw_sql(deepalpha_db::ddl::MAIN)
        .execute(&pool)
        .await
        .unwrap();

    println!("{rows} candle rows, {reps} repetitions, median rows/s; one transaction per method\n");
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    println!("PostgreSQL {server_version}\n");
    let (mut gen_up, mut hand_up, mut slow) = (vec![], vec![], vec![]);
    let (mut gen_ins, mut raw_copy) = (vec![], vec![]);
    for rep in 0..reps {
        // Alternate which method runs first, so neither always gets the warmer cache.
        for turn in 0..2 {
            if (rep + turn) % 2 == 0 {
                // Upsert into a table holding the first half of the keys.
                reset(&pool, rows / 2).await;
                let t = Instant::now();
                let c = CandleBar::upsert_many(&pool, candles(0..rows, 5.0))
                    .await
                    .unwrap();
                gen_up.push(rate(rows, t.elapsed()));
                assert_eq!(
                    (c.inserted, c.updated),
                    ((rows - rows / 2) as u64, (rows / 2) as u64)
                );
                // Fresh rows.
                reset(&pool, 0).await;
                let t = Instant::now();
                let c = CandleBar::insert_many(&pool, candles(0..rows, 1.0))
                    .await
                    .unwrap();
                gen_ins.push(rate(rows, t.elapsed()));
                assert_eq!(c.inserted as usize, rows);
            } else {
                reset(&pool, rows / 2).await;
                let t = Instant::now();
                hand_copy_upsert(&pool, candles(0..rows, 5.0)).await;
                hand_up.push(rate(rows, t.elapsed()));
                reset(&pool, 0).await;
                let t = Instant::now();
                let mut tx = pool.begin().await.unwrap();
                copy_rows(&mut tx, "candle_bars", candles(0..rows, 1.0)).await;
                tx.commit().await.unwrap();
                raw_copy.push(rate(rows, t.elapsed()));
            }
        }
        // Same table state as the upserts; half of these keys exist.
        reset(&pool, rows / 2).await;
        let from = (rows / 2).saturating_sub(slow_rows / 2);
        let t = Instant::now();
        row_by_row(&pool, candles(from..from + slow_rows, 5.0)).await;
        slow.push(rate(slow_rows, t.elapsed()));
    }
    let (g, h, s) = (median(gen_up), median(hand_up), median(slow));
    println!(
        "upsert ({} existing keys)                          rows/s     ratio",
        rows / 2
    );
    println!(
        "  generated CandleBar::upsert_many              {g:>10.0}   {:.3} of hand COPY",
        g / h
    );
    println!("  hand-written COPY binary + INSERT…SELECT      {h:>10.0}   1.000");
    println!(
        "  row by row, SELECT then INSERT/UPDATE ({slow_rows} rows) {s:>10.0}   generated = {:.1}x",
        g / s
    );
    let (gi, rc) = (median(gen_ins), median(raw_copy));
    println!("\ninsert of fresh rows");
    println!(
        "  generated CandleBar::insert_many              {gi:>10.0}   {:.3} of raw COPY",
        gi / rc
    );
    println!("  raw COPY binary into the table                {rc:>10.0}   1.000");

    // get by key: p50 of 10,000 calls each, interleaved, on the loaded table.
    let calls = 10_000;
    let sql = format!(
        "SELECT {} FROM {} WHERE \"symbol\" = $1 AND \"timeframe\" = $2 AND \"ts\" = $3",
        CandleBar::COLUMNS,
        CandleBar::TABLE
    );
    reset(&pool, rows).await;
    let mut conn = pool.acquire().await.unwrap();
    let (mut gen_t, mut hand_t) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for i in 0..calls + 500 {
        let c = candle((i * 7919) % rows, 1.0);
        let key = (c.symbol.clone(), c.timeframe.clone(), c.ts);
        let (mut ga, mut hb) = (Duration::ZERO, Duration::ZERO);
        for turn in 0..2 {
            if (i + turn) % 2 == 0 {
                let t = Instant::now();
                let a = CandleBar::get(&mut *conn, &key).await.unwrap();
                ga = t.elapsed();
                assert_eq!(a.ts, key.2);
            } else {
                let t = Instant::now();
                let b: CandleBar = sqlx::query_as(&sql)
                    .bind(&key.0)
                    .bind(&key.1)
                    .bind(key.2)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                hb = t.elapsed();
                assert_eq!(b.ts, key.2);
            }
        }
        if i >= 500 {
            // the first 500 are warm-up
            gen_t.push(ga.as_secs_f64() * 1e6);
            hand_t.push(hb.as_secs_f64() * 1e6);
        }
    }
    let (gp, hp) = (median(gen_t), median(hand_t));
    println!("\nget by key, p50 of {calls} calls (µs)");
    println!(
        "  generated CandleBar::get                      {gp:>10.1}   {:.3} of hand-written",
        gp / hp
    );
    println!("  hand-written sqlx::query_as                   {hp:>10.1}   1.000");

    drop(conn);
    array_rows(&pool, env_usize("BENCH_ARRAY_ROWS", 50_000), reps).await;
    pool.close().await;
    admin
        .execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
}
