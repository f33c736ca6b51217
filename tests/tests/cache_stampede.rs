//! Stampede protection: 1,000 concurrent misses of one key load it once in
//! a process (single flight); several processes (caches with their own
//! connections) load it a handful of times at most (the Redis lease); and
//! a hot key refreshed early (XFetch) never drops out of Redis under load.

mod cache_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_support::*;
use futures_util::future::join_all;
use strata_sdk::cache::{CacheConfig, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_load_once() {
    // A timeout far above the load: 1,000 GETs in one pipeline on a busy
    // 2-core machine can take longer than the default 200 ms, and a
    // timeout (rightly) refuses the fill.
    let f = fixture_with(|c| c.with_timeout(Duration::from_secs(5))).await;
    Account::insert(&f.db.pool, &account(1, 1)).await.unwrap();
    let reads = (0..1_000).map(|_| {
        let s = f.store.clone();
        tokio::spawn(async move { Account::get(&s, &1).await.unwrap().balance })
    });
    for r in join_all(reads).await {
        assert_eq!(r.unwrap(), 1);
    }
    let st = f.store.cache().stats();
    eprintln!("{st:?}");
    assert_eq!(st.loads, 1, "one PostgreSQL load for 1,000 misses");
    assert_eq!(st.hits + st.misses, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_in_eight_processes_load_a_handful_of_times() {
    let f = fixture().await;
    Account::insert(&f.db.pool, &account(1, 1)).await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..8 {
        let cfg = CacheConfig::new(redis_url(), &f.cleanup.prefix)
            .with_timeout(Duration::from_secs(5))
            .with_lease(Duration::from_secs(2), Duration::from_secs(1));
        stores.push(Store::new(f.db.pool.clone(), cfg.connect().await.unwrap()));
    }
    let reads = stores.iter().flat_map(|s| {
        (0..125).map(move |_| {
            let s = s.clone();
            tokio::spawn(async move { Account::get(&s, &1).await.unwrap().balance })
        })
    });
    for r in join_all(reads).await {
        assert_eq!(r.unwrap(), 1);
    }
    let loads: u64 = stores.iter().map(|s| s.cache().stats().loads).sum();
    eprintln!("loads across 8 processes: {loads}");
    // Without the lease each process would load once (8).
    assert!(loads <= 2, "{loads} loads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_is_refreshed_before_it_expires() {
    // TTL 400 ms, no jitter; β = 300 makes the refresh window about
    // 300 × the load time before expiry.
    let f = fixture_with(|c| c.with_xfetch_beta(300.0).with_jitter(0.0)).await;
    // A 400 ms TTL for this test's own entity.
    #[derive(
        Debug,
        Clone,
        PartialEq,
        serde::Serialize,
        serde::Deserialize,
        sqlx::FromRow,
        strata_derive::Entity,
    )]
    #[strata(table = "accounts", key(id), cache(ttl_ms = 400))]
    struct Hot {
        id: i64,
        owner: String,
        balance: i64,
        note: Option<String>,
        tags: serde_json::Value,
    }
    Account::insert(&f.db.pool, &account(1, 1)).await.unwrap();
    Hot::get(&f.store, &1).await.unwrap();
    let key = f.store.cache().key_of::<Hot>(&1).unwrap().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (s, stop) = (f.store.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    Hot::get(&s, &1).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    // Watch the key for 2 s (5 TTLs): it must always hold a value.
    let mut raw = raw(&redis_url()).await;
    let (gone, looks) = (AtomicU64::new(0), AtomicU64::new(0));
    let until = Instant::now() + Duration::from_millis(2_000);
    while Instant::now() < until {
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        looks.fetch_add(1, Ordering::Relaxed);
        if v.is_none_or(|b| b[0] != strata_sdk::cache::entry::VALUE_BYTE) {
            gone.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let st = f.store.cache().stats();
    eprintln!("{st:?}; key absent in {gone:?} of {looks:?} looks");
    assert!(st.fills >= 4, "refreshed about once per TTL: {st:?}");
    assert_eq!(gone.load(Ordering::Relaxed), 0, "the hot key dropped out");
}
