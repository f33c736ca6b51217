//! No stale value survives a write: the forced interleaving (a reader
//! reads the old row, a writer commits and invalidates, then the reader
//! tries to fill) and a randomized concurrent load of 10,000 operations
//! checking every read against the writes committed before it began, and
//! the cache against the database at the end.

mod cache_support;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use cache_support::*;
use rand::{Rng, SeedableRng};
use strata_sdk::cache::{entry, FillGate, Store};

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

const ROWS: i64 = 24;

/// Every row's latest committed balance (balances only grow per row: each
/// row's writes are serialized by a lock and take the next counter value).
pub struct Truth {
    committed: Vec<AtomicI64>,
    locks: Vec<tokio::sync::Mutex<()>>,
    next: AtomicI64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl Truth {
    pub fn new() -> Arc<Truth> {
        Arc::new(Truth {
            committed: (0..ROWS).map(|_| AtomicI64::new(0)).collect(),
            locks: (0..ROWS).map(|_| tokio::sync::Mutex::new(())).collect(),
            next: AtomicI64::new(1),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        })
    }
}

/// One operation of the randomized load; panics on a stale read or on
/// any error returned to the caller.
pub async fn op(s: &Store, t: &Truth, rng: &mut rand::rngs::StdRng) {
    let id = rng.random_range(0..ROWS);
    match rng.random_range(0..100) {
        0..=64 => {
            let floor = t.committed[id as usize].load(Ordering::Acquire);
            let a = Account::get(s, &id).await.expect("a read never fails");
            assert!(
                a.balance >= floor,
                "row {id}: read {} after {floor} committed",
                a.balance
            );
            t.reads.fetch_add(1, Ordering::Relaxed);
        }
        65..=79 => {
            let ids: Vec<i64> = (0..4).map(|_| rng.random_range(0..ROWS)).collect();
            let floors: Vec<i64> = ids
                .iter()
                .map(|&i| t.committed[i as usize].load(Ordering::Acquire))
                .collect();
            let rows = Account::get_many(s, &ids)
                .await
                .expect("a read never fails");
            for r in rows {
                let k = ids.iter().position(|&i| i == r.id).unwrap();
                assert!(
                    r.balance >= floors[k],
                    "row {}: read {} after {} committed",
                    r.id,
                    r.balance,
                    floors[k]
                );
            }
            t.reads.fetch_add(1, Ordering::Relaxed);
        }
        80..=94 => {
            let _g = t.locks[id as usize].lock().await;
            let v = t.next.fetch_add(1, Ordering::AcqRel);
            let p = AccountPatch {
                balance: Some(v),
                ..Default::default()
            };
            Account::patch(s, &id, &p)
                .await
                .expect("a write never fails");
            t.committed[id as usize].store(v, Ordering::Release);
            t.writes.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            // Two rows in one transaction (locks in id order).
            let other = (id + 1 + rng.random_range(0..ROWS - 1)) % ROWS;
            let (a, b) = (id.min(other), id.max(other));
            let _ga = t.locks[a as usize].lock().await;
            let _gb = t.locks[b as usize].lock().await;
            let v = t.next.fetch_add(1, Ordering::AcqRel);
            let mut tx = s.begin().await.expect("begin");
            for k in [a, b] {
                let p = AccountPatch {
                    balance: Some(v),
                    ..Default::default()
                };
                Account::patch(&mut tx, &k, &p).await.expect("write");
            }
            tx.commit().await.expect("a commit never fails");
            t.committed[a as usize].store(v, Ordering::Release);
            t.committed[b as usize].store(v, Ordering::Release);
            t.writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub async fn seed(s: &Store) {
    Account::insert_many(s.pool(), (0..ROWS).map(|i| account(i, 0)))
        .await
        .unwrap();
}

/// Every value entry in Redis equals its row in PostgreSQL.
pub async fn cache_equals_database(s: &Store, url: &str) -> usize {
    let mut raw = raw(url).await;
    let mut values = 0;
    for id in 0..ROWS {
        let key = s.cache().key_of::<Account>(&id).unwrap().unwrap();
        let got: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let db = Account::get(s.pool(), &id).await.unwrap();
        if let Some(b) = got {
            if b[0] == entry::VALUE_V1_BYTE {
                let cached: Account = rmp_serde_decode(&b[21..]);
                assert_eq!(cached, db, "row {id}: cache differs from the database");
                values += 1;
            }
        }
    }
    values
}

fn rmp_serde_decode(b: &[u8]) -> Account {
    strata_sdk::cache::entry::decode_row(b).expect("a cached row decodes")
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
