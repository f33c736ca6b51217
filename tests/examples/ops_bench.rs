//! Operations benchmarks (not tests): run in release.
//!
//! ```sh
//! cargo run --release -p strata-tests --example ops_bench -- seam 20000      # BENCHMARKS.md
//! cargo run --release -p strata-tests --example ops_bench -- replica 2000
//! ```
//!
//! `seam N`: `get` by key through the statement seam with the Prometheus
//! recorder recording against not recording, in nine alternated rounds of
//! `N` calls each on one database; each round's p50, the median of the
//! per-round ratios. The recorder is installed once and switched per round
//! (a recorder that hands out no-op handles when off), so both sides run in
//! the same process on the same warm connections.
//!
//! `replica N`: reading back a row just written — on the primary, against
//! `after(token)` + `get` on the streaming replica of 127.0.0.1:5433
//! (REPLICA_URL): at once (the read waits for replay), 5 ms after the write
//! (replay is usually done), and with replay paused (every read waits
//! `wait` = 10 ms, then falls back to the primary). p50 and p99 of `N`
//! write-then-read pairs each; the write and its token are not timed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::PrometheusRecorder;
use strata_sdk::postgres::{PoolConfig, ReplicaPolicy, Replicated};
use strata_tests::fixtures::ops_replicas::entities::{NewNote, Note};
use strata_tests::support::PgDatabase;

const DDL: &str = r#"CREATE TABLE "ops_notes" ("id" bigint PRIMARY KEY, "body" text NOT NULL);"#;

/// The Prometheus recorder, or no-op handles while `ON` is false.
struct Switch(PrometheusRecorder);
static ON: AtomicBool = AtomicBool::new(false);

impl Recorder for Switch {
    fn describe_counter(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_counter(k, u, d)
    }
    fn describe_gauge(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_gauge(k, u, d)
    }
    fn describe_histogram(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_histogram(k, u, d)
    }
    fn register_counter(&self, key: &Key, m: &Metadata<'_>) -> Counter {
        match ON.load(Ordering::Relaxed) {
            true => self.0.register_counter(key, m),
            false => Counter::noop(),
        }
    }
    fn register_gauge(&self, key: &Key, m: &Metadata<'_>) -> Gauge {
        match ON.load(Ordering::Relaxed) {
            true => self.0.register_gauge(key, m),
            false => Gauge::noop(),
        }
    }
    fn register_histogram(&self, key: &Key, m: &Metadata<'_>) -> Histogram {
        match ON.load(Ordering::Relaxed) {
            true => self.0.register_histogram(key, m),
            false => Histogram::noop(),
        }
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn note(id: i64) -> NewNote {
    NewNote {
        id,
        body: format!("note {id}"),
    }
}

async fn database() -> PgDatabase {
    let db = PgDatabase::new().await;
    sqlx::raw_sql(DDL)
        .execute(&mut db.connect().await)
        .await
        .unwrap();
    db
}

async fn seam(calls: usize) {
    let (recorder, handle) = strata_sdk::metrics::prometheus_recorder();
    metrics::set_global_recorder(Switch(recorder)).unwrap();
    let db = database().await;
    let pool = PoolConfig {
        store: "ops".into(),
        max: Some(2),
        ..PoolConfig::new(db.url.clone())
    }
    .connect()
    .await
    .unwrap();
    let rows: Vec<NewNote> = (0..1000).map(note).collect();
    Note::insert_many(&pool, rows).await.unwrap();
    // Warm up both sides.
    for on in [false, true] {
        ON.store(on, Ordering::Relaxed);
        for i in 0..2000 {
            Note::get(&pool, &(i % 1000)).await.unwrap();
        }
    }
    let mut ratios = Vec::new();
    let (mut offs, mut ons) = (Vec::new(), Vec::new());
    for round in 0..9 {
        let order = match round % 2 {
            0 => [false, true],
            _ => [true, false],
        };
        let mut p50 = [0.0; 2];
        for on in order {
            ON.store(on, Ordering::Relaxed);
            let mut t = Vec::with_capacity(calls);
            for i in 0..calls {
                let id = (i % 1000) as i64;
                let s = Instant::now();
                Note::get(&pool, &id).await.unwrap();
                t.push(s.elapsed().as_secs_f64() * 1e6);
            }
            p50[on as usize] = percentile(t, 0.5);
        }
        println!(
            "round {round}: p50 off {:.1} µs, on {:.1} µs, on/off {:.3}",
            p50[0],
            p50[1],
            p50[1] / p50[0]
        );
        offs.push(p50[0]);
        ons.push(p50[1]);
        ratios.push(p50[1] / p50[0]);
    }
    let text = handle.render();
    let recorded = text
        .lines()
        .find(|l| {
            l.starts_with("strata_statement_duration_seconds_count")
                && l.contains("operation=\"find\"")
        })
        .unwrap_or("(none)");
    println!(
        "get p50 over {calls} calls a round, 9 rounds: off {:.1} µs, on {:.1} µs; median per-round on/off {:.3}",
        percentile(offs, 0.5),
        percentile(ons, 0.5),
        percentile(ratios, 0.5)
    );
    println!("recorded while on: {recorded}");
    // What the seam records per statement, without the database: one
    // histogram and one counter with the same three labels.
    for on in [false, true] {
        ON.store(on, Ordering::Relaxed);
        let n = 1_000_000;
        let labels = [("store", "ops"), ("entity", "Note"), ("operation", "find")];
        let s = Instant::now();
        for i in 0..n {
            metrics::histogram!(strata_sdk::metrics::STATEMENT_DURATION, &labels)
                .record(i as f64 * 1e-9);
            metrics::counter!(strata_sdk::metrics::STATEMENT_ROWS, &labels).increment(1);
        }
        let ns = s.elapsed().as_nanos() as f64 / n as f64;
        // The seam's way: `const` keys (hashed at compile time), handed to
        // the current recorder per statement.
        let s = Instant::now();
        for i in 0..n {
            metrics::with_recorder(|r| {
                r.register_histogram(&CONST_DURATION, &CONST_META)
                    .record(i as f64 * 1e-9);
                r.register_counter(&CONST_ROWS, &CONST_META).increment(1);
            });
        }
        let const_ns = s.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "recording one statement's metrics, recorder {}: keys built per call {ns:.0} ns, const keys {const_ns:.0} ns",
            if on { "on" } else { "off" }
        );
    }
}

static CONST_LABELS: [metrics::Label; 3] = [
    metrics::Label::from_static_parts("store", "ops"),
    metrics::Label::from_static_parts("entity", "Note"),
    metrics::Label::from_static_parts("operation", "find"),
];
static CONST_DURATION: metrics::Key =
    metrics::Key::from_static_parts(strata_sdk::metrics::STATEMENT_DURATION, &CONST_LABELS);
static CONST_ROWS: metrics::Key =
    metrics::Key::from_static_parts(strata_sdk::metrics::STATEMENT_ROWS, &CONST_LABELS);
static CONST_META: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

async fn replica(pairs: usize) {
    let db = database().await;
    let base = std::env::var("REPLICA_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433/postgres".into());
    let replica_url = format!("{}/{}", &base[..base.rfind('/').unwrap()], db.name);
    // Wait for the replica to have the table.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = match sqlx::PgPool::connect(&replica_url).await {
            Ok(p) => sqlx::query("SELECT 1 FROM ops_notes LIMIT 1")
                .execute(&p)
                .await
                .is_ok(),
            Err(_) => false,
        };
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never had the table");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let config = PoolConfig {
        store: "ops".into(),
        replicas: vec![replica_url],
        max: Some(4),
        ..PoolConfig::new(db.url.clone())
    };
    let policy = ReplicaPolicy::default().with_wait(Duration::from_millis(10));
    let r = Replicated::connect(&config, policy).await.unwrap();
    let mut id = 0i64;
    let mut run = |label: &'static str, how: u8| {
        let r = r.clone();
        let start = id;
        id += pairs as i64;
        async move {
            let mut t = Vec::with_capacity(pairs);
            let mut on_replica = 0;
            for i in start..start + pairs as i64 {
                Note::insert(r.primary(), &note(i)).await.unwrap();
                // The token is taken with the write and carried to the read.
                let token = r.token().await.unwrap();
                if how == 2 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let s = Instant::now();
                match how {
                    0 => {
                        Note::get(r.primary(), &i).await.unwrap();
                    }
                    _ => {
                        let pool = r.after(&token).await;
                        on_replica += !std::ptr::eq(pool, r.primary()) as usize;
                        Note::get(pool, &i).await.unwrap();
                    }
                }
                t.push(s.elapsed().as_secs_f64() * 1e6);
            }
            println!(
                "{label}: p50 {:.1} µs, p99 {:.1} µs, served by the replica {on_replica}/{pairs}",
                percentile(t.clone(), 0.5),
                percentile(t, 0.99)
            );
        }
    };
    for _ in 0..2 {
        run("primary read", 0).await;
        run("token read at once, replica keeping up", 1).await;
        run("token read 5 ms after the write", 2).await;
    }
    let pause = |sql: &str| {
        std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                "5433",
                "-U",
                "postgres",
                "-qtAc",
                sql,
            ])
            .status()
            .unwrap();
    };
    pause("SELECT pg_wal_replay_pause()");
    let paused = std::panic::AssertUnwindSafe(run("token read, replay paused (wait 10 ms)", 1));
    let out = futures_util::FutureExt::catch_unwind(paused).await;
    pause("SELECT pg_wal_replay_resume()");
    out.unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |d: usize| args.get(1).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("seam") => seam(n(20_000)).await,
        Some("replica") => replica(n(2_000)).await,
        _ => {
            seam(n(20_000)).await;
            replica(n(2_000)).await;
        }
    }
}
