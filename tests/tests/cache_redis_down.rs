//! Redis failures are not application failures: a private `redis-server`
//! killed and restarted, and paused (slow), in the middle of a load of
//! concurrent reads and writes. No call returns an error, no read is
//! older than a write committed before it began, and afterwards every
//! cached value equals the database.

mod cache_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cache_support::load::{cache_equals_database, op, seed, Truth};
use cache_support::*;
use rand::SeedableRng;
use strata_sdk::cache::{CacheConfig, Store};

async fn private_store(redis: &PrivateRedis, db: &TestDb) -> Store {
    let cfg = CacheConfig::new(redis.url(), prefix())
        .with_timeout(Duration::from_millis(100))
        .with_down_for(Duration::from_millis(100));
    Store::new(db.pool.clone(), cfg.connect().await.unwrap())
}

/// Runs the random load on 8 tasks until `stop`; returns the op count.
fn load(s: &Store, t: &Arc<Truth>, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..8u64)
        .map(|n| {
            let (s, t, stop) = (s.clone(), t.clone(), stop.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(n);
                let mut ops = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(&s, &t, &mut rng).await;
                    ops += 1;
                }
                ops
            })
        })
        .collect()
}

async fn settle(s: &Store) {
    for _ in 0..500 {
        if s.cache().pending_invalidations() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("pending invalidations never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_during_a_load() {
    let mut redis = PrivateRedis::start();
    let db = TestDb::with_ddl(DDL).await;
    let s = private_store(&redis, &db).await;
    seed(&s).await;
    let t = Truth::new();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&s, &t, &stop);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = s.cache().stats();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = s.cache().stats();
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    for h in tasks {
        ops += h.await.expect("no call failed or read stale");
    }
    settle(&s).await;
    let after = s.cache().stats();
    eprintln!("ops {ops}\nbefore {before:?}\nduring {during:?}\nafter {after:?}");
    assert!(before.hits > 0, "the cache served before the kill");
    assert!(during.errors > before.errors, "the kill was seen");
    assert!(
        during.bypassed > before.bypassed,
        "reads went to PostgreSQL"
    );
    assert!(
        after.hits > during.hits,
        "the cache serves again after the restart"
    );
    let values = cache_equals_database(&s, &redis.url()).await;
    eprintln!("{values} rows cached at the end, all equal to the database");
    assert!(values > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_slow_then_back_during_a_load() {
    let redis = PrivateRedis::start();
    let db = TestDb::with_ddl(DDL).await;
    let s = private_store(&redis, &db).await;
    seed(&s).await;
    let t = Truth::new();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&s, &t, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.pause();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let during = s.cache().stats();
    redis.resume();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    for h in tasks {
        h.await.expect("no call failed or read stale");
    }
    settle(&s).await;
    let after = s.cache().stats();
    eprintln!("during {during:?}\nafter {after:?}");
    assert!(during.errors > 0, "timeouts were seen");
    assert!(after.hits > during.hits);
    cache_equals_database(&s, &redis.url()).await;
}

#[tokio::test]
async fn an_application_starts_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    redis.kill();
    let db = TestDb::with_ddl(DDL).await;
    let s = private_store(&redis, &db).await;
    Account::insert(&s, &account(1, 1)).await.unwrap();
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 1);
    assert_eq!(Account::get_many(&s, &[1]).await.unwrap().len(), 1);
    assert!(s.cache().stats().errors > 0 || s.cache().stats().bypassed > 0);
    redis.restart();
    settle(&s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = AccountPatch {
        balance: Some(2),
        ..Default::default()
    };
    Account::patch(&s, &1, &p).await.unwrap();
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 2);
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 2);
    assert!(s.cache().stats().hits > 0, "{:?}", s.cache().stats());
}

#[tokio::test]
async fn a_key_whose_invalidation_failed_is_never_served_stale() {
    let redis = PrivateRedis::start();
    let db = TestDb::with_ddl(DDL).await;
    let s = private_store(&redis, &db).await;
    Account::insert(&s, &account(1, 1)).await.unwrap();
    Account::get(&s, &1).await.unwrap();
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 1);
    // Redis keeps serving balance 1 but refuses every SET: the write
    // commits, its invalidation fails (a partition that loses commands).
    let mut admin = raw(&redis.url()).await;
    let acl = |rule: &'static str| {
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg(rule)
            .clone()
    };
    let _: () = acl("-set").query_async(&mut admin).await.unwrap();
    let p = AccountPatch {
        balance: Some(2),
        ..Default::default()
    };
    Account::patch(&s, &1, &p)
        .await
        .expect("the write succeeds");
    assert_eq!(s.cache().pending_invalidations(), 1);
    // For 1.5 s, with retries failing and Redis up between them: never 1.
    for _ in 0..150 {
        assert_eq!(Account::get(&s, &1).await.unwrap().balance, 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.cache().pending_invalidations(), 1);
    let _: () = acl("+set").query_async(&mut admin).await.unwrap();
    settle(&s).await;
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 2);
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 2);
    let key = s.cache().key_of::<Account>(&1).unwrap().unwrap();
    let b: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut admin)
        .await
        .unwrap();
    let cached: Account =
        strata_sdk::cache::entry::decode_row(&b[strata_sdk::cache::entry::VALUE_HEADER..]).unwrap();
    assert_eq!(cached.balance, 2);
}
