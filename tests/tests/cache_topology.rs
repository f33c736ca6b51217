//! The cache on a real 3-master Redis Cluster (keys spread over slots,
//! `MGET` across them, the fill script with its lease in one slot) and
//! through a real Sentinel (a private master and sentinel).

mod cache_support;

use std::time::Duration;

use cache_support::load::{cache_equals_database, op, seed, Truth};
use cache_support::*;
use rand::SeedableRng;
use strata_sdk::cache::{CacheConfig, Store};

fn cluster_urls() -> String {
    std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        "redis://127.0.0.1:7100,redis://127.0.0.1:7101,redis://127.0.0.1:7102".into()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_on_a_redis_cluster() {
    let db = TestDb::with_ddl(DDL).await;
    let cfg = CacheConfig::new(cluster_urls(), prefix());
    let s = Store::new(db.pool.clone(), cfg.connect().await.expect("cluster"));
    seed(&s).await;
    let ids: Vec<i64> = (0..24).collect();
    assert_eq!(Account::get_many(&s, &ids).await.unwrap().len(), 24);
    assert_eq!(Account::get_many(&s, &ids).await.unwrap().len(), 24);
    let st = s.cache().stats();
    assert_eq!((st.fills, st.hits, st.errors), (24, 24, 0), "{st:?}");
    // The keys landed on more than one master.
    let mut nodes = std::collections::BTreeSet::new();
    for id in &ids {
        let key = s.cache().key_of::<Account>(id).unwrap().unwrap();
        for url in cluster_urls().split(',') {
            let mut c = raw(url.trim()).await;
            let n: i64 = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap_or(0);
            if n == 1 {
                nodes.insert(url.to_string());
            }
        }
    }
    assert!(nodes.len() > 1, "keys on {nodes:?}");
    // A short random load, then the cache equals the database.
    let t = Truth::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..500 {
        op(&s, &t, &mut rng).await;
    }
    assert_eq!(s.cache().stats().errors, 0);
    // Compare through a cluster-aware read of each key.
    let values = cache_equals_database_cluster(&s).await;
    assert!(values > 0);
    // A TRUNCATE seen by change capture: every entry of the entity, on
    // every master, becomes a tombstone (found by SCAN per master).
    let def = <Account as strata_sdk::postgres::Table>::CACHE.unwrap();
    let n = s
        .cache()
        .tombstone_entity("Account", def.ttl_ms)
        .await
        .expect("tombstones on every master");
    assert!(
        n >= values as u64,
        "{n} keys tombstoned, {values} values were cached"
    );
    assert_eq!(cache_equals_database_cluster(&s).await, 0, "no value left");
    // Clean up: delete our keys on every node.
    for id in &ids {
        let key = s.cache().key_of::<Account>(id).unwrap().unwrap();
        for url in cluster_urls().split(',') {
            let mut c = raw(url.trim()).await;
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&key).query_async(&mut c).await;
        }
    }
}

async fn cache_equals_database_cluster(s: &Store) -> usize {
    let client = redis::cluster::ClusterClient::new(
        cluster_urls()
            .split(',')
            .map(|u| u.trim().to_string())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    let mut values = 0;
    for id in 0..24i64 {
        let key = s.cache().key_of::<Account>(&id).unwrap().unwrap();
        let got: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        if let Some(b) = got.filter(|b| b[0] == strata_sdk::cache::entry::VALUE_BYTE) {
            let cached: Account =
                strata_sdk::cache::entry::decode_row(&b[strata_sdk::cache::entry::VALUE_HEADER..])
                    .unwrap();
            assert_eq!(cached, Account::get(s.pool(), &id).await.unwrap());
            values += 1;
        }
    }
    values
}

#[tokio::test]
async fn the_cache_finds_its_master_through_sentinel() {
    let master = PrivateRedis::start();
    let (s, _sentinel, _db) = sentinel_store(master.port).await;
    Account::insert(&s, &account(1, 1)).await.unwrap();
    Account::get(&s, &1).await.unwrap();
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 1);
    let st = s.cache().stats();
    assert_eq!((st.fills, st.hits, st.errors), (1, 1, 0));
    // The value is on the master the sentinel named.
    let mut m = raw(&master.url()).await;
    let key = s.cache().key_of::<Account>(&1).unwrap().unwrap();
    let n: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut m)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let _ = cache_equals_database;
}

/// A sentinel (quorum 1, a master down after 500 ms) watching the master on
/// `master_port` as `strata`, and a store whose cache finds its master
/// through it; the guards keep the sentinel and the database alive.
async fn sentinel_store(master_port: u16) -> (Store, Sentinel, TestDb) {
    let (sentinel, url) = Sentinel::start(master_port);
    let mut cache = None;
    for _ in 0..100 {
        if let Ok(c) = CacheConfig::new(&url, prefix()).connect().await {
            cache = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = TestDb::with_ddl(DDL).await;
    let s = Store::new(db.pool.clone(), cache.expect("sentinel answers"));
    (s, sentinel, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_a_sentinel_failover() {
    let mut master = PrivateRedis::start();
    let (_replica, replica_url) = replica_of(master.port);
    eventually(20, "the replica connected", || async {
        info(&master.url(), "replication")
            .await
            .contains("connected_slaves:1")
    })
    .await;
    let (s, _sentinel, _db) = sentinel_store(master.port).await;
    Account::insert(&s, &account(1, 1)).await.unwrap();
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 1);
    let key = s.cache().key_of::<Account>(&1).unwrap().unwrap();

    // The master dies; Sentinel promotes the replica. Reads never fail,
    // and the cache fills on the new master without being made again.
    master.kill();
    let fills = s.cache().stats().fills;
    let mut n = 0i64;
    eventually(30, "a fill on the promoted replica", || {
        n += 1;
        let (s, key, url) = (&s, key.clone(), replica_url.clone());
        async move {
            let p = AccountPatch {
                add_balance: Some(1),
                ..Default::default()
            };
            Account::patch(s, &1, &p).await.expect("writes never fail");
            let got = Account::get(s, &1).await.expect("reads never fail");
            assert_eq!(got.balance, 1 + n, "never stale");
            let promoted = info(&url, "replication").await.contains("role:master");
            let mut c = raw(&url).await;
            let stored: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap_or(None);
            let filled = stored.is_some_and(|b| b[0] == strata_sdk::cache::entry::VALUE_BYTE);
            promoted && filled && s.cache().stats().fills > fills
        }
    })
    .await;
    // And it hits there.
    let hits = s.cache().stats().hits;
    Account::get(&s, &1).await.unwrap();
    assert_eq!(s.cache().stats().hits, hits + 1);
}

/// One large transaction seen by change capture on the Cluster: 100,000
/// keys to tombstone. They go out in windows, so none waits past its
/// timeout behind the others (all at once, they timed out on every retry
/// and stalled the pipeline for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_tombstones_on_the_cluster_succeed() {
    let prefix = prefix();
    let cache = CacheConfig::new(cluster_urls(), prefix.clone())
        .connect()
        .await
        .expect("cluster");
    let keys: Vec<String> = (0..100_000)
        .map(|i: u64| format!("{prefix}:Account:{{{i:016x}}}"))
        .collect();
    cache
        .tombstone_keys("Account", 1_000, &keys)
        .await
        .expect("every tombstone written");
    assert_eq!(cache.stats().invalidations, 100_000);
    // Tombstones expire (2 × ttl + 1 s); remove them now anyway.
    for url in cluster_urls().split(',') {
        let mut c = raw(url.trim()).await;
        let found: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut c)
            .await
            .unwrap();
        for k in found.chunks(1000) {
            for key in k {
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg(key).query_async(&mut c).await;
            }
        }
    }
}
