//! Cache benchmarks (not tests): run in release.
//!
//! ```sh
//! cargo run --release -p strata-tests --example cache_bench           # both
//! cargo run --release -p strata-tests --example cache_bench -- get    # latency
//! cargo run --release -p strata-tests --example cache_bench -- zipf   # hit ratio
//! ```
//!
//! `get`: a cached `get` (a hit) against a raw redis-rs `GET` of the same
//! key (the same bytes, on the same kind of connection, no decoding) and
//! against the uncached PostgreSQL `get`: 7 rounds of 3,000 sequential
//! calls of each side, the cached and raw calls interleaved with the first
//! of each pair alternating; p50 and p99 over all calls.
//!
//! `zipf`: 10,000 rows, 8 tasks, 100,000 operations (95 % `get`, 5 %
//! `patch`, keys drawn from a Zipf distribution, s = 1.0) through the
//! cache, then the same load without it: hit ratio, PostgreSQL loads,
//! operations per second.
//!
//! DATABASE_URL (a fresh database is made and dropped) and REDIS_URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use strata_sdk::cache::{CacheConfig, Store};
use strata_tests::support::PgDatabase;

/// An order-like row: uuid key, text, decimals, an enum-like text, a
/// timestamp, a nullable text and json.
#[derive(
    Debug,
    Clone,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    strata_derive::Entity,
)]
#[strata(table = "bench_orders", key(id), cache(ttl_ms = 600000))]
pub struct BenchOrder {
    pub id: i64,
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    #[strata(ty = "decimal(20,8)")]
    pub quantity: Decimal,
    #[strata(ty = "decimal(20,8)")]
    pub price: Decimal,
    pub status: String,
    pub submitted_at: chrono::DateTime<chrono::Utc>,
    pub notes: Option<String>,
    pub meta: serde_json::Value,
    pub version: i64,
}

const DDL: &str = r#"CREATE TABLE "bench_orders" (
  "id" bigint PRIMARY KEY, "client_order_id" text NOT NULL, "symbol" text NOT NULL,
  "side" text NOT NULL, "quantity" numeric(20,8) NOT NULL, "price" numeric(20,8) NOT NULL,
  "status" text NOT NULL, "submitted_at" timestamptz NOT NULL, "notes" text,
  "meta" jsonb NOT NULL, "version" bigint NOT NULL)"#;

fn row(id: i64) -> NewBenchOrder {
    NewBenchOrder {
        id,
        client_order_id: format!("client-{id:08}"),
        symbol: ["BTCUSDT", "ETHUSDT", "SOLUSDT"][id as usize % 3].into(),
        side: "BUY".into(),
        quantity: Decimal::new(25 + id, 2),
        price: Decimal::new(4_300_050, 2),
        status: "NEW".into(),
        submitted_at: chrono::Utc::now(),
        notes: (id % 2 == 0).then(|| "a note of some length".into()),
        meta: serde_json::json!({"source": "bench", "n": id}),
        version: 1,
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn setup(rows: i64) -> (PgDatabase, sqlx::PgPool, Store, String) {
    let db = PgDatabase::new().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&db.url)
        .await
        .unwrap();
    sqlx::raw_sql(DDL).execute(&pool).await.unwrap();
    BenchOrder::insert_many(&pool, (0..rows).map(row))
        .await
        .unwrap();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("strata_bench_{}", uuid::Uuid::new_v4().simple());
    let cache = CacheConfig::new(&url, &prefix).connect().await.unwrap();
    (db, pool.clone(), Store::new(pool, cache), url)
}

async fn cleanup(url: &str, prefix: &str) {
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

async fn bench_get() {
    let (_db, pool, store, url) = setup(1).await;
    let key = store.cache().key_of::<BenchOrder>(&0).unwrap().unwrap();
    BenchOrder::get(&store, &0).await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = redis::aio::ConnectionManager::new(client).await.unwrap();
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    println!(
        "cached entry: {} bytes ({} of them the row)",
        bytes.len(),
        bytes.len() - strata_sdk::cache::entry::VALUE_HEADER
    );
    let (mut cached, mut rawv, mut pg) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..7 {
        // Alternate which side goes first, call by call.
        for i in 0..3_000 {
            for side in [i % 2, 1 - i % 2] {
                let t = Instant::now();
                if side == 0 {
                    let b: Vec<u8> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut raw)
                        .await
                        .unwrap();
                    rawv.push(t.elapsed());
                    std::hint::black_box(b);
                } else {
                    let r = BenchOrder::get(&store, &0).await.unwrap();
                    cached.push(t.elapsed());
                    std::hint::black_box(r);
                }
            }
        }
        if round % 2 == 0 {
            for _ in 0..3_000 {
                let t = Instant::now();
                let r = BenchOrder::get(&pool, &0).await.unwrap();
                pg.push(t.elapsed());
                std::hint::black_box(r);
            }
        }
    }
    let st = store.cache().stats();
    assert_eq!(st.loads, 1, "every cached call was a hit: {st:?}");
    let (c50, c99) = (pct(&mut cached, 0.5), pct(&mut cached, 0.99));
    let (r50, r99) = (pct(&mut rawv, 0.5), pct(&mut rawv, 0.99));
    let (p50, p99) = (pct(&mut pg, 0.5), pct(&mut pg, 0.99));
    println!("raw redis GET          p50 {r50:>9.1?}  p99 {r99:>9.1?}");
    println!(
        "cached get (hit)       p50 {c50:>9.1?}  p99 {c99:>9.1?}  = {:.3}x the raw GET",
        c50.as_secs_f64() / r50.as_secs_f64()
    );
    println!(
        "uncached get (PG)      p50 {p50:>9.1?}  p99 {p99:>9.1?}  = {:.2}x the cached get",
        p50.as_secs_f64() / c50.as_secs_f64()
    );
    cleanup(&url, store.cache().prefix()).await;
}

/// Ranks 0..n drawn with probability ∝ 1/(rank+1)^s (inverse CDF).
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        Zipf(cdf.into_iter().map(|c| c / sum).collect())
    }
    fn sample(&self, rng: &mut impl Rng) -> i64 {
        let u: f64 = rng.random();
        self.0.partition_point(|&c| c < u) as i64
    }
}

async fn zipf_load(store: Option<Store>, pool: sqlx::PgPool, zipf: Arc<Zipf>) -> (f64, u64) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..8u64)
        .map(|n| {
            let (store, pool, zipf) = (store.clone(), pool.clone(), zipf.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(n);
                let mut writes = 0u64;
                for _ in 0..12_500 {
                    let id = zipf.sample(&mut rng);
                    let write = rng.random_range(0..100) < 5;
                    match (&store, write) {
                        (Some(s), false) => {
                            BenchOrder::get(s, &id).await.unwrap();
                        }
                        (None, false) => {
                            BenchOrder::get(&pool, &id).await.unwrap();
                        }
                        (s, true) => {
                            let p = BenchOrderPatch {
                                add_version: Some(1),
                                ..Default::default()
                            };
                            match s {
                                Some(s) => BenchOrder::patch(s, &id, &p).await.unwrap(),
                                None => BenchOrder::patch(&pool, &id, &p).await.unwrap(),
                            };
                            writes += 1;
                        }
                    }
                }
                writes
            })
        })
        .collect();
    let mut writes = 0;
    for h in tasks {
        writes += h.await.unwrap();
    }
    (100_000.0 / t.elapsed().as_secs_f64(), writes)
}

async fn bench_zipf() {
    let (_db, pool, store, url) = setup(10_000).await;
    let zipf = Arc::new(Zipf::new(10_000, 1.0));
    let (cached_ops, writes) = zipf_load(Some(store.clone()), pool.clone(), zipf.clone()).await;
    let st = store.cache().stats();
    let reads = 100_000 - writes;
    println!("zipf s=1.0 over 10,000 rows, 8 tasks, 100,000 ops ({reads} get, {writes} patch):");
    println!(
        "  through the cache: {cached_ops:>8.0} ops/s, hit ratio {:.3} ({} hits, {} misses), {} PostgreSQL loads for {reads} reads ({:.1} per 1,000), {} fills, {} refused, {} invalidations",
        st.hits as f64 / (st.hits + st.misses) as f64,
        st.hits,
        st.misses,
        st.loads,
        st.loads as f64 * 1000.0 / reads as f64,
        st.fills,
        st.fills_refused,
        st.invalidations
    );
    let (pg_ops, _) = zipf_load(None, pool.clone(), zipf).await;
    println!(
        "  PostgreSQL only:   {pg_ops:>8.0} ops/s ({reads} loads); the cache: {:.2}x the throughput",
        cached_ops / pg_ops
    );
    cleanup(&url, store.cache().prefix()).await;
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if which.is_empty() || which == "get" {
        bench_get().await;
    }
    if which.is_empty() || which == "zipf" {
        bench_zipf().await;
    }
}
