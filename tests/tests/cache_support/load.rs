//! The randomized load of the consistency tests: reads check that no row
//! is older than the write committed before the read began.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use rand::Rng;
use strata_sdk::cache::{entry, Store};

use super::{account, raw, Account, AccountPatch};

pub const ROWS: i64 = 24;

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
            if b[0] == entry::VALUE_BYTE {
                let cached: Account = rmp_serde_decode(&b[entry::VALUE_HEADER..]);
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
