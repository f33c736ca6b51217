//! No stale value survives a write: the forced interleaving (a reader
//! reads the old row, a writer commits and invalidates, then the reader
//! tries to fill) and a randomized concurrent load of 10,000 operations
//! checking every read against the writes committed before it began, and
//! the cache against the database at the end.

mod cache_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cache_support::load::*;
use cache_support::*;
use rand::SeedableRng;
use strata_sdk::cache::{FillGate, Store};

#[tokio::test]
async fn a_reader_that_read_before_a_write_cannot_fill_its_old_row() {
    let gate = Arc::new(FillGate::default());
    let f = fixture_with(|c| c.with_fill_gate(gate.clone())).await;
    let s = f.store.clone();
    Account::insert(&f.db.pool, &account(1, 100)).await.unwrap();

    // The reader misses, reads balance 100 from PostgreSQL, and stops
    // before its fill.
    let reader = tokio::spawn({
        let s = s.clone();
        async move { Account::get(&s, &1).await.unwrap() }
    });
    gate.reached.notified().await;

    // A writer commits 200 and invalidates (its own fill is not involved).
    let p = AccountPatch {
        balance: Some(200),
        ..Default::default()
    };
    Account::patch(&s, &1, &p).await.unwrap();

    // The reader resumes: it returns what it read, but its fill is refused.
    gate.release.notify_one();
    assert_eq!(reader.await.unwrap().balance, 100);
    let st = s.cache().stats();
    assert_eq!((st.fills, st.fills_refused), (0, 1));

    // So the next read loads 200 (its fill goes through the gate too).
    gate.release.notify_one();
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 200);
    assert_eq!(Account::get(&s, &1).await.unwrap().balance, 200);
    assert_eq!(s.cache().stats().fills, 1);
}

#[tokio::test]
async fn a_writer_in_another_process_also_refuses_the_old_fill() {
    // Two caches on one prefix: two processes. The refusal comes from the
    // token check in Redis, not from anything one process knows.
    let gate = Arc::new(FillGate::default());
    let f = fixture_with(|c| c.with_fill_gate(gate.clone())).await;
    let other = Store::new(
        f.db.pool.clone(),
        strata_sdk::cache::CacheConfig::new(redis_url(), &f.cleanup.prefix)
            .connect()
            .await
            .unwrap(),
    );
    Account::insert(&f.db.pool, &account(1, 100)).await.unwrap();
    let reader = tokio::spawn({
        let s = f.store.clone();
        async move { Account::get(&s, &1).await.unwrap() }
    });
    gate.reached.notified().await;
    let p = AccountPatch {
        balance: Some(200),
        ..Default::default()
    };
    Account::patch(&other, &1, &p).await.unwrap();
    gate.release.notify_one();
    assert_eq!(reader.await.unwrap().balance, 100);
    assert_eq!(f.store.cache().stats().fills_refused, 1);
    assert_eq!(Account::get(&other, &1).await.unwrap().balance, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_operations_never_read_older_than_a_committed_write() {
    // Early refresh on hard, so refreshes race writes too.
    let f = fixture_with(|c| c.with_xfetch_beta(50.0)).await;
    seed(&f.store).await;
    let t = Truth::new();
    let tasks: Vec<_> = (0..16u64)
        .map(|n| {
            let (s, t) = (f.store.clone(), t.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed + n);
                for _ in 0..625 {
                    op(&s, &t, &mut rng).await;
                }
            })
        })
        .collect();
    for h in tasks {
        h.await.unwrap();
    }
    let (reads, writes) = (
        t.reads.load(Ordering::Relaxed),
        t.writes.load(Ordering::Relaxed),
    );
    assert_eq!(reads + writes, 10_000);
    let st = f.store.cache().stats();
    eprintln!("reads {reads} writes {writes} stats {st:?}");
    assert!(st.hits > 0 && st.fills > 0 && st.invalidations > 0);
    assert_eq!(st.errors, 0);
    let values = cache_equals_database(&f.store, &redis_url()).await;
    eprintln!("{values} of {ROWS} rows cached at the end, all equal to the database");
}
