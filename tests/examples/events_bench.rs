//! Change-event benchmarks on the real servers (PostgreSQL 15 on :5432,
//! Redis 7 on :6379, or the Cluster with `EVENTS_BENCH_CLUSTER=1`):
//! change capture runs in this process on the `ledgers` table of
//! `tests/events_support` (4 partitions), a subscriber reads from the start.
//!
//! - `throughput N`: N rows inserted in 500-row transactions by 4 writers;
//!   events/s from the first commit until the subscriber has all N;
//! - `latency SECONDS`: 4 writers × 250 one-row transactions a second;
//!   commit returned → change yielded by the subscriber, p50/p99/max.
//!
//! `cargo run --release -p strata-tests --example events_bench -- latency 20`
//! (`EVENTS_BENCH_DELAY_MS=10` for the engine's wait before a write,
//! default 100 ms; `EVENTS_BENCH_CLUSTER=1` for the Cluster).

#[path = "../tests/events_support/mod.rs"]
mod events_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events_support::{cluster_url, single_url, Fixture, Ledger};
use futures_util::StreamExt;
use strata_sdk::events::{Events, Position};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("latency");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let url = match std::env::var("EVENTS_BENCH_CLUSTER").is_ok() {
        true => cluster_url(),
        false => single_url(),
    };
    let f = Fixture::new(&url).await;
    // `EVENTS_BENCH_DELAY_MS`: the engine's longest wait before a write
    // (default 100 ms), which bounds the latency from below.
    let mut opts = strata_sdk::sync::RunOptions::default();
    if let Some(ms) = std::env::var("EVENTS_BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts = opts.with_max_delay(Duration::from_millis(ms));
    }
    let (stop, run) = f.start_with(opts);
    f.snapshot_done().await;
    match mode {
        "throughput" => throughput(&f, n).await,
        "latency" => latency(&f, n).await,
        other => eprintln!("unknown mode {other}: throughput N | latency SECONDS"),
    }
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    f.drop_pipeline().await;
}

async fn throughput(f: &Fixture, n: u64) {
    let client = f.client().await;
    let mut sub = Box::pin(Ledger::subscribe(&client, Position::START));
    let next = Arc::new(AtomicI64::new(1));
    let start = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (pool, next) = (f.pool.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(500, Ordering::SeqCst);
                if first > n as i64 {
                    return;
                }
                let last = (first + 499).min(n as i64);
                sqlx::query(
                    "INSERT INTO ledgers SELECT g, 'o', g, NULL, 'pin', '{}' FROM generate_series($1::bigint, $2::bigint) g",
                )
                .bind(first)
                .bind(last)
                .execute(&pool)
                .await
                .unwrap();
            }
        }));
    }
    let mut seen = 0u64;
    while seen < n {
        sub.next().await.unwrap().unwrap();
        seen += 1;
    }
    let took = start.elapsed();
    for w in writers {
        w.await.unwrap();
    }
    println!(
        "throughput: {n} events in {:.2} s = {:.0} events/s (commit → subscriber, {} partitions)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        Ledger::EVENTS.partitions
    );
}

async fn latency(f: &Fixture, seconds: u64) {
    let client = f.client().await;
    let mut sub = Box::pin(Ledger::subscribe(&client, Position::START));
    let committed: Arc<Mutex<HashMap<i64, Instant>>> = Default::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (cm, dn, pool) = (committed.clone(), done.clone(), f.pool.clone());
        writers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(4));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut id = w + 1;
            while !dn.load(Ordering::Relaxed) {
                tick.tick().await;
                sqlx::query("INSERT INTO ledgers VALUES ($1, 'o', 1, NULL, 'pin', '{}')")
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
                cm.lock().unwrap().insert(id, Instant::now());
                id += 4;
            }
            (id - w - 1) / 4
        }));
    }
    let t = Instant::now();
    let stopper = {
        let done = done.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut lat = Vec::new();
    let mut total = None;
    loop {
        if done.load(Ordering::Relaxed) && total.is_none() {
            let mut n = 0;
            for w in writers.drain(..) {
                n += w.await.unwrap();
            }
            total = Some(n as usize);
        }
        if total.is_some_and(|n| lat.len() >= n) {
            break;
        }
        let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(10), sub.next()).await else {
            panic!("no change within 10 s ({} seen)", lat.len());
        };
        let now = Instant::now();
        let id = c.unwrap().key["id"].as_i64().unwrap();
        // The writer notes the commit after `execute` returns: a change can
        // arrive first (then its latency counts as zero).
        let at = committed.lock().unwrap().get(&id).copied();
        lat.push(at.map_or(Duration::ZERO, |a| now.saturating_duration_since(a)));
    }
    stopper.await.unwrap();
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "latency: {} transactions in {:.1} s ({:.0} tx/s); commit → subscriber p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        lat.len(),
        t.elapsed().as_secs_f64(),
        lat.len() as f64 / t.elapsed().as_secs_f64(),
        q(0.5),
        q(0.99),
        lat.last().unwrap()
    );
}
