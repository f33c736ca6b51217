//! Change-capture benchmarks on the real servers (PostgreSQL 15 on :5432,
//! ClickHouse 18.16 on :8123), each side by side in one run:
//!
//! - `snapshot N`: `strata sync`'s initial copy of N rows to ClickHouse
//!   against the ceiling of `COPY (SELECT …) TO STDOUT` piped into a bare
//!   ClickHouse `INSERT … FORMAT TabSeparated` of the same rows (String
//!   columns, so ClickHouse parses nothing it would refuse);
//! - `stream SECONDS`: 4 writers inserting 500-row transactions as fast as
//!   they can for SECONDS; rows/s from the first commit until the copy has
//!   caught up;
//! - `latency SECONDS`: one writer committing 1,000 one-row transactions a
//!   second; commit → visible in ClickHouse, p50 and p99;
//! - `toast SECONDS`: `SYNC_BENCH_TOAST_ROWS` accounts (10,000) each with a
//!   9,600-character note (stored out of line), snapshotted; then 4 writers
//!   update only the balance of random rows (one-row transactions, at most
//!   `SYNC_BENCH_TOAST_RATE` a second in all, 500) for SECONDS: every update
//!   leaves the large value unchanged and unsent. Rows/s applied until
//!   caught up, first with `STRATA_SYNC_TOAST_PER_ROW=1` (one write and one
//!   ClickHouse read per update, as before; `SYNC_BENCH_TOAST_BEFORE=0`
//!   skips it) then per batch.
//!
//! `cargo run --release -p strata-tests --example sync_bench -- snapshot 1000000`

#[path = "../tests/sync_common/mod.rs"]
mod sync_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use strata_sdk::sync::RunOptions;
use sync_common::{insert_accounts, Fixture, SCHEMA};

/// The run options, with `SYNC_BENCH_DELAY_MS` (longest wait before a
/// write), `SYNC_BENCH_BATCH_ROWS` (rows per write, 32 MiB at most) and
/// `SYNC_BENCH_WORKERS` (snapshot connections) to compare settings.
fn options() -> RunOptions {
    let mut o = RunOptions::default();
    if let Some(ms) = std::env::var("SYNC_BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        o = o.with_max_delay(Duration::from_millis(ms));
    }
    if let Some(rows) = std::env::var("SYNC_BENCH_BATCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        o = o.with_max_batch(rows, 32 << 20);
    }
    if let Some(n) = std::env::var("SYNC_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        o = o.with_snapshot_workers(n);
    }
    o
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("snapshot");
    let n: i64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    match mode {
        "snapshot" => snapshot(n).await,
        "stream" => stream(n as u64).await,
        "latency" => latency(n as u64).await,
        "toast" => {
            let n = n as u64;
            // `SYNC_BENCH_TOAST_BEFORE=0`: the per-batch path only.
            let before = if std::env::var("SYNC_BENCH_TOAST_BEFORE").is_ok_and(|v| v == "0") {
                "skipped".to_string()
            } else {
                std::env::set_var("STRATA_SYNC_TOAST_PER_ROW", "1");
                let r = toast(n).await;
                std::env::remove_var("STRATA_SYNC_TOAST_PER_ROW");
                r
            };
            let after = toast(n).await;
            println!("unchanged TOASTed values, per row (before): {before}");
            println!("unchanged TOASTed values, per batch (after): {after}");
        }
        other => eprintln!(
            "unknown mode {other}: snapshot N | stream SECONDS | latency SECONDS | toast SECONDS"
        ),
    }
}

/// The trading schema's `Order` (`live_order`: uuids, enums, decimals,
/// timestamps, text), N rows.
async fn snapshot(n: i64) {
    let sources = strata_codegen::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema")).unwrap();
    let model = strata_codegen::compile(&sources).unwrap();
    let f = Fixture::from_model(model, &["analytics"]).await;
    let mut c = f.conn().await;
    sqlx::query(
        "INSERT INTO live_order (client_order_id, exchange_order_id, symbol, side, order_type, status, quantity, price, filled_quantity, fee, fee_currency, notes, submitted_at)
         SELECT 'c' || g, 'x' || g, 'BTCUSDT', CASE WHEN g % 2 = 0 THEN 'BUY' ELSE 'SELL' END::order_side, 'LIMIT', 'FILLED', g * 0.001, 100 + g * 0.01, g * 0.001, 0.1, 'USDT', 'order ' || g, now()
         FROM generate_series(1, $1::bigint) g",
    )
    .bind(n)
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE live_order")
        .execute(&mut c)
        .await
        .unwrap();
    let t = f
        .pipeline
        .tables
        .iter()
        .find(|t| t.source_table == "live_order")
        .unwrap();
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let cols = names.join(", ");
    let ceiling_cols: Vec<String> = names
        .iter()
        .map(|c| {
            if *c == "id" {
                "id UUID".to_string()
            } else {
                format!("{c} Nullable(String)")
            }
        })
        .collect();

    // The ceiling: COPY out, piped into a bare ClickHouse insert.
    f.ch_query(&format!("CREATE DATABASE IF NOT EXISTS `{}`", f.ch.name))
        .await;
    f.ch_query(&format!(
        "CREATE TABLE `{}`.ceiling ({}) ENGINE = MergeTree ORDER BY id",
        f.ch.name,
        ceiling_cols.join(", ")
    ))
    .await;
    let t = Instant::now();
    let mut copy = c
        .copy_out_raw(&format!("COPY (SELECT {cols} FROM live_order) TO STDOUT"))
        .await
        .unwrap();
    // Piped: 32 MiB pieces, each sent while the next is read (one in flight).
    let url = strata_tests::support::clickhouse_url();
    let q = format!("INSERT INTO `{}`.ceiling FORMAT TabSeparated", f.ch.name);
    let http = reqwest::Client::new();
    let send = |body: Vec<u8>| {
        let (http, url, q) = (http.clone(), url.clone(), q.clone());
        tokio::spawn(async move {
            http.post(url)
                .query(&[("query", q)])
                .body(body)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap();
        })
    };
    let mut buf: Vec<u8> = Vec::with_capacity(40 << 20);
    let mut in_flight: Option<tokio::task::JoinHandle<()>> = None;
    while let Some(chunk) = copy.next().await {
        buf.extend_from_slice(&chunk.unwrap());
        if buf.len() >= 32 << 20 {
            // Cut at the last full line.
            let cut = buf.iter().rposition(|b| *b == b'\n').unwrap() + 1;
            let rest = buf.split_off(cut);
            if let Some(h) = in_flight.take() {
                h.await.unwrap();
            }
            in_flight = Some(send(std::mem::replace(&mut buf, rest)));
        }
    }
    drop(copy);
    if let Some(h) = in_flight.take() {
        h.await.unwrap();
    }
    if !buf.is_empty() {
        send(buf).await.unwrap();
    }
    let ceiling = t.elapsed();
    let got = f
        .ch_query(&format!(
            "SELECT count() FROM `{}`.ceiling FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(got.trim().parse::<i64>().unwrap(), n);

    let t = Instant::now();
    let (stop, run) = f.start(options());
    // The copy alone: until the snapshot is recorded done (polled every
    // 10 ms), before the stream takes over and acknowledges.
    loop {
        let done: Option<bool> =
            sqlx::query_scalar("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
                .bind(&f.pipeline.name)
                .fetch_optional(&mut c)
                .await
                .unwrap_or(None);
        if done == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let copied_in = t.elapsed();
    f.caught_up(Duration::from_secs(3600)).await;
    let synced = t.elapsed();
    let copied = f
        .ch_query(&format!(
            "SELECT count() FROM `{}`.live_order FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(copied.trim().parse::<i64>().unwrap(), n);
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let ceiling_rate = n as f64 / ceiling.as_secs_f64();
    let sync_rate = n as f64 / synced.as_secs_f64();
    let copy_rate = n as f64 / copied_in.as_secs_f64();
    println!(
        "snapshot of {n} Order rows: strata sync {synced:.2?} until caught up ({sync_rate:.0} rows/s; copy alone {copied_in:.2?}, {copy_rate:.0} rows/s); COPY | ClickHouse INSERT ceiling {ceiling:.2?} ({ceiling_rate:.0} rows/s); ratio {:.2} (copy alone {:.2})",
        sync_rate / ceiling_rate,
        copy_rate / ceiling_rate
    );
}

async fn stream(seconds: u64) {
    let f = Fixture::new(SCHEMA).await;
    let (stop, run) = f.start(options());
    f.caught_up(Duration::from_secs(60)).await;
    let next = Arc::new(AtomicI64::new(1));
    let done = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (next, done, url) = (next.clone(), done.clone(), f.pg.url.clone());
        writers.push(tokio::spawn(async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut rows = 0i64;
            while !done.load(Ordering::Relaxed) {
                let from = next.fetch_add(500, Ordering::Relaxed);
                insert_accounts(&mut c, from, 500).await;
                rows += 500;
            }
            rows
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    done.store(true, Ordering::Relaxed);
    let mut rows = 0;
    for w in writers {
        rows += w.await.unwrap();
    }
    let written = t.elapsed();
    f.caught_up(Duration::from_secs(600)).await;
    let applied = t.elapsed();
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    println!(
        "streaming, 4 writers: {rows} rows committed in {written:.2?} ({:.0} rows/s written); copy caught up after {applied:.2?}: {:.0} rows/s sustained commit → ClickHouse",
        rows as f64 / written.as_secs_f64(),
        rows as f64 / applied.as_secs_f64()
    );
}

/// Updates of a small column of rows with a large value (see the top).
async fn toast(seconds: u64) -> String {
    let env = |k: &str, d: i64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n, rate) = (
        env("SYNC_BENCH_TOAST_ROWS", 10_000),
        env("SYNC_BENCH_TOAST_RATE", 500),
    );
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, n).await;
    sqlx::query("UPDATE account SET note = (SELECT string_agg(md5(id::text || '-' || g), '') FROM generate_series(1, 300) g)")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(options());
    f.caught_up(Duration::from_secs(600)).await;
    let done = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (done, url) = (done.clone(), f.pg.url.clone());
        writers.push(tokio::spawn(async move {
            use rand::{Rng, SeedableRng};
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            let mut tick =
                tokio::time::interval(Duration::from_micros(4_000_000 / rate.max(1) as u64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut rows = 0i64;
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                sqlx::query("UPDATE account SET balance = balance + 1 WHERE id = $1")
                    .bind(rng.random_range(1..=n))
                    .execute(&mut c)
                    .await
                    .unwrap();
                rows += 1;
            }
            rows
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    done.store(true, Ordering::Relaxed);
    let mut rows = 0;
    for w in writers {
        rows += w.await.unwrap();
    }
    let written = t.elapsed();
    f.caught_up(Duration::from_secs(1_800)).await;
    let applied = t.elapsed();
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    f.assert_equal().await;
    format!(
        "{n} rows of 9,600-character notes, 4 writers: {rows} one-row updates committed in {written:.2?} ({:.0}/s written); copy caught up after {applied:.2?}: {:.0} rows/s applied",
        rows as f64 / written.as_secs_f64(),
        rows as f64 / applied.as_secs_f64()
    )
}

async fn latency(seconds: u64) {
    let f = Fixture::new(SCHEMA).await;
    let (stop, run) = f.start(options());
    f.caught_up(Duration::from_secs(60)).await;
    // 4 writers, 250 one-row transactions a second each, ids w, w+4, …
    let committed: Arc<Mutex<HashMap<i64, Instant>>> = Default::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (cm, dn, url) = (committed.clone(), done.clone(), f.pg.url.clone());
        writers.push(tokio::spawn(async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tick = tokio::time::interval(Duration::from_millis(4));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut id = w + 1;
            let mut n = 0u64;
            while !dn.load(Ordering::Relaxed) {
                tick.tick().await;
                sqlx::query(
                    "INSERT INTO account (id, name, balance, password) VALUES ($1, 'l', 1, 'x')",
                )
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
                cm.lock().unwrap().insert(id, Instant::now());
                id += 4;
                n += 1;
            }
            n
        }));
    }
    // Poll what became visible since the last poll (by version).
    let mut lat = Vec::new();
    let mut version = 0u64;
    let t = Instant::now();
    loop {
        let now = Instant::now();
        let out = f
            .ch_query(&format!(
                "SELECT id, _version FROM `{}`.account WHERE _version > {version} FORMAT TSV",
                f.ch.name
            ))
            .await;
        {
            let cm = committed.lock().unwrap();
            for line in out.lines() {
                let mut it = line.split('\t');
                let id: i64 = it.next().unwrap().parse().unwrap();
                let v: u64 = it.next().unwrap().parse().unwrap();
                version = version.max(v);
                if let Some(c) = cm.get(&id) {
                    lat.push(now.saturating_duration_since(*c));
                }
            }
        }
        if t.elapsed() >= Duration::from_secs(seconds) && !done.load(Ordering::Relaxed) {
            done.store(true, Ordering::Relaxed);
        }
        if done.load(Ordering::Relaxed)
            && lat.len() >= committed.lock().unwrap().len()
            && writers.iter().all(|w| w.is_finished())
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(seconds + 120),
            "not all visible after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "latency, 4 writers at 250 tx/s each: {total} transactions in {seconds} s ({:.0} tx/s); commit → visible in ClickHouse p50 {:.1?}, p99 {:.1?}, max {:.1?} ({} samples)",
        total as f64 / seconds as f64,
        p(0.5),
        p(0.99),
        lat[lat.len() - 1],
        lat.len()
    );
}
