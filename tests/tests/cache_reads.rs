//! Cache-aside by key on the real Redis: hits after a miss, `get_many` as
//! one `MGET` plus one query, every write invalidating after its commit
//! (single rows, batches, a `StoreTx`), never for a rollback, the
//! per-call bypass, the key format and the stored bytes.

mod cache_support;

use cache_support::*;
use strata_sdk::cache::entry;
use strata_sdk::postgres::Table;
use strata_sdk::Error;

#[tokio::test]
async fn a_miss_fills_and_the_next_read_hits() {
    let f = fixture().await;
    let s = &f.store;
    let a = Account::insert(&f.db.pool, &account(1, 100)).await.unwrap();
    assert_eq!(Account::get(s, &1).await.unwrap(), a);
    let st = s.cache().stats();
    assert_eq!((st.misses, st.loads, st.fills, st.hits), (1, 1, 1, 0));
    assert_eq!(Account::get(s, &1).await.unwrap(), a);
    assert_eq!(Account::find(s, &1).await.unwrap(), Some(a.clone()));
    let st = s.cache().stats();
    assert_eq!((st.hits, st.loads), (2, 1));
    // A row that does not exist is NotFound, and is not cached.
    assert!(matches!(
        Account::get(s, &99).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(Account::find(s, &99).await.unwrap(), None);
    assert_eq!(s.cache().stats().fills, 1);
}

#[tokio::test]
async fn keys_name_prefix_entity_and_values_carry_format_and_shape() {
    let f = fixture().await;
    let s = &f.store;
    Account::insert(s, &account(7, 5)).await.unwrap();
    Account::get(s, &7).await.unwrap();
    let key = s.cache().key_of::<Account>(&7).unwrap().unwrap();
    let fp = Account::CACHE.unwrap().fingerprint;
    assert_eq!(fp.len(), 8);
    // 7 as a bigint: 8 bytes, big-endian; braces are the Cluster hash tag.
    // The shape's fingerprint is in the entry, not the key: every shape of
    // the entity (a rolling deploy) shares the key.
    assert_eq!(
        key,
        format!("{}:Account:{{0000000000000007}}", f.cleanup.prefix)
    );
    let mut raw = raw(&redis_url()).await;
    let bytes: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(bytes[0], 2, "format version byte");
    assert_eq!(&bytes[21..29], fp.as_bytes(), "the shape's fingerprint");
    assert_eq!(entry::VALUE_HEADER, 29);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        (29_000..=33_000).contains(&ttl),
        "ttl 30 s + up to 10% jitter: {ttl}"
    );
    // Nothing under the prefix but the value (the lease is gone).
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", f.cleanup.prefix))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(keys, vec![key]);
}

#[tokio::test]
async fn get_many_is_one_mget_and_one_query_for_the_misses() {
    let f = fixture().await;
    let s = &f.store;
    for i in 1..=6 {
        Account::insert(s, &account(i, i * 10)).await.unwrap();
    }
    Account::get(s, &2).await.unwrap();
    Account::get(s, &4).await.unwrap();
    let before = s.cache().stats();
    let rows = Account::get_many(s, &[4, 1, 2, 3, 99, 4]).await.unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![4, 1, 2, 3],
        "key order, missing skipped, once each"
    );
    let st = s.cache().stats();
    assert_eq!(st.hits - before.hits, 2);
    assert_eq!(st.loads - before.loads, 1, "one query for the misses");
    assert_eq!(st.fills - before.fills, 2, "1 and 3 filled, 99 absent");
    let rows = Account::get_many(s, &[1, 2, 3, 4]).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(s.cache().stats().loads, st.loads, "all hits now");
    assert!(Account::get_many(s, &[]).await.unwrap().is_empty());
}

/// Reads `id` through the cache (filling it), writes with `write`, and
/// checks the next cached read sees the write.
async fn invalidated_by<F, Fut>(f: &Fixture, id: i64, write: F) -> Account
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    Account::get(&f.store, &id).await.unwrap();
    write().await;
    let now = Account::get(&f.store, &id).await.unwrap();
    assert_eq!(now, Account::get(&f.db.pool, &id).await.unwrap());
    now
}

#[tokio::test]
async fn every_write_through_the_store_invalidates_after_commit() {
    let f = fixture().await;
    let s = &f.store;
    for i in 1..=5 {
        Account::insert(s, &account(i, 0)).await.unwrap();
    }
    let a = invalidated_by(&f, 1, || async {
        let mut r = Account::get(&f.db.pool, &1).await.unwrap();
        r.balance = 11;
        Account::update(s, &r).await.unwrap();
    })
    .await;
    assert_eq!(a.balance, 11);
    let a = invalidated_by(&f, 1, || async {
        let p = AccountPatch {
            add_balance: Some(5),
            ..Default::default()
        };
        Account::patch(s, &1, &p).await.unwrap();
    })
    .await;
    assert_eq!(a.balance, 16);
    let a = invalidated_by(&f, 2, || async {
        Account::upsert(s, &account(2, 22)).await.unwrap();
    })
    .await;
    assert_eq!(a.balance, 22);
    let a = invalidated_by(&f, 3, || async {
        Account::upsert_many(s, vec![account(3, 33), account(4, 44)])
            .await
            .unwrap();
    })
    .await;
    assert_eq!(a.balance, 33);
    assert_eq!(Account::get(s, &4).await.unwrap().balance, 44);
    let a = invalidated_by(&f, 4, || async {
        let mut r = Account::get(&f.db.pool, &4).await.unwrap();
        r.balance = 45;
        Account::update_many(s, vec![r]).await.unwrap();
    })
    .await;
    assert_eq!(a.balance, 45);
    Account::get(s, &5).await.unwrap();
    assert!(Account::delete(s, &5).await.unwrap());
    assert_eq!(Account::find(s, &5).await.unwrap(), None);
    Account::get(s, &4).await.unwrap();
    Account::delete_many(s, vec![4]).await.unwrap();
    assert_eq!(Account::find(s, &4).await.unwrap(), None);
    // The cached reads after each write were loads, not stale hits.
    assert!(s.cache().stats().invalidations >= 7);
}

#[tokio::test]
async fn a_store_transaction_invalidates_on_commit_and_never_on_rollback() {
    let f = fixture().await;
    let s = &f.store;
    Account::insert(s, &account(1, 1)).await.unwrap();
    Account::get(s, &1).await.unwrap();

    let mut tx = s.begin().await.unwrap();
    let p = AccountPatch {
        balance: Some(2),
        ..Default::default()
    };
    Account::patch(&mut tx, &1, &p).await.unwrap();
    // Inside: reads see the transaction's own write (PostgreSQL, not Redis).
    assert_eq!(Account::get(&mut tx, &1).await.unwrap().balance, 2);
    // Outside, before the commit: the committed row, from the cache.
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 1);
    let inv = s.cache().stats().invalidations;
    tx.rollback().await.unwrap();
    assert_eq!(
        s.cache().stats().invalidations,
        inv,
        "nothing to invalidate"
    );
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 1);

    let mut tx = s.begin().await.unwrap();
    Account::patch(&mut tx, &1, &p).await.unwrap();
    Account::insert(&mut tx, &account(2, 2)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.cache().stats().invalidations, inv + 2);
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 2);

    // Dropped without commit: rolled back, nothing invalidated.
    let mut tx = s.begin().await.unwrap();
    Account::patch(
        &mut tx,
        &1,
        &AccountPatch {
            balance: Some(3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    drop(tx);
    assert_eq!(s.cache().stats().invalidations, inv + 2);
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 2);
}

#[tokio::test]
async fn bypass_reads_postgres_and_still_invalidates_plain_pools_stay_uncached() {
    let f = fixture().await;
    let s = &f.store;
    Account::insert(s, &account(1, 1)).await.unwrap();
    Account::get(s, &1).await.unwrap();
    let before = s.cache().stats();
    Account::get(s.bypass(), &1).await.unwrap();
    Account::get(&f.db.pool, &1).await.unwrap();
    Account::get_many(s.bypass(), &[1]).await.unwrap();
    let st = s.cache().stats();
    assert_eq!((st.hits, st.misses), (before.hits, before.misses));
    let p = AccountPatch {
        balance: Some(9),
        ..Default::default()
    };
    Account::patch(s.bypass(), &1, &p).await.unwrap();
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 9);
}

#[tokio::test]
async fn an_entry_of_another_shape_or_format_is_a_miss_then_overwritten() {
    let f = fixture().await;
    let s = &f.store;
    Account::insert(s, &account(1, 1)).await.unwrap();
    let key = s.cache().key_of::<Account>(&1).unwrap().unwrap();
    let mut raw = raw(&redis_url()).await;
    // Format 1 with a row that does not decode; then an unknown format.
    for junk in [entry_with(b"\x93\x01"), vec![9u8, 1, 2, 3]] {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(junk)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(Account::get(s, &1).await.unwrap().balance, 1);
        assert_eq!(Account::get(s, &1).await.unwrap().balance, 1);
    }
    assert!(s.cache().stats().hits >= 2);
}

fn entry_with(row: &[u8]) -> Vec<u8> {
    // Kind 1, token, expiry far away, load time, then the row.
    let mut v = vec![1u8];
    v.extend_from_slice(&42u64.to_le_bytes());
    v.extend_from_slice(&u64::MAX.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(row);
    let _ = entry::key::<Account>;
    v
}

#[tokio::test]
async fn writes_through_the_paired_pool_invalidate_too() {
    let f = fixture().await;
    let s = &f.store;
    Account::insert_many(&f.db.pool, vec![account(1, 1), account(2, 2)])
        .await
        .unwrap();
    Account::get_many(s, &[1, 2]).await.unwrap();
    // The pool the store was made from (a clone): single and batch writes.
    let p = AccountPatch {
        balance: Some(10),
        ..Default::default()
    };
    Account::patch(&f.db.pool, &1, &p).await.unwrap();
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 10);
    Account::upsert_many(&f.db.pool, vec![account(2, 20)])
        .await
        .unwrap();
    assert_eq!(Account::get(s, &2).await.unwrap().balance, 20);
    Account::delete(&f.db.pool, &2).await.unwrap();
    assert_eq!(Account::find(s, &2).await.unwrap(), None);
    // Inside a transaction of the caller's: invalidated only through a
    // StoreTx; a plain sqlx transaction leaves the cached row (documented).
    let mut tx = s.begin().await.unwrap();
    Account::patch(
        &mut tx,
        &1,
        &AccountPatch {
            balance: Some(11),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(Account::get(s, &1).await.unwrap().balance, 11);
}

/// The same entity in another shape (a newer program version without
/// `note`): its fingerprint differs, its keys are the same.
mod v2 {
    #[derive(
        Debug,
        Clone,
        PartialEq,
        serde::Serialize,
        serde::Deserialize,
        sqlx::FromRow,
        strata_derive::Entity,
    )]
    #[strata(table = "accounts", key(id), cache(ttl_ms = 30000))]
    pub struct Account {
        pub id: i64,
        pub owner: String,
        pub balance: i64,
        pub tags: serde_json::Value,
    }
}

/// A rolling deploy: two shapes of `Account` share Redis. Each reads only
/// entries of its own shape (the other's read as a miss), and a write by
/// either invalidates what both read.
#[tokio::test]
async fn two_shapes_of_an_entity_never_read_each_others_stale_entries() {
    let f = fixture().await;
    let s = &f.store;
    let (fp1, fp2) = (
        Account::CACHE.unwrap().fingerprint,
        v2::Account::CACHE.unwrap().fingerprint,
    );
    assert_ne!(fp1, fp2, "the shapes differ");
    assert_eq!(
        s.cache().key_of::<Account>(&7).unwrap(),
        s.cache().key_of::<v2::Account>(&7).unwrap()
    );
    Account::insert(s, &account(7, 5)).await.unwrap();
    assert_eq!(Account::get(s, &7).await.unwrap().balance, 5);
    assert_eq!(v2::Account::get(s, &7).await.unwrap().balance, 5);
    let p = v2::AccountPatch {
        balance: Some(6),
        ..Default::default()
    };
    v2::Account::patch(s, &7, &p).await.unwrap();
    assert_eq!(Account::get(s, &7).await.unwrap().balance, 6);
    let p = AccountPatch {
        balance: Some(8),
        ..Default::default()
    };
    Account::patch(s, &7, &p).await.unwrap();
    assert_eq!(v2::Account::get(s, &7).await.unwrap().balance, 8);
    assert_eq!(Account::get(s, &7).await.unwrap().balance, 8);
}

/// `get_many` gives the same rows in the same order through a pool and
/// through the cache: the order of the keys asked, each row once, missing
/// keys skipped.
#[tokio::test]
async fn get_many_orders_rows_as_the_keys_were_asked_on_both_paths() {
    let f = fixture().await;
    for id in [1, 2, 3] {
        Account::insert(&f.db.pool, &account(id, id * 10))
            .await
            .unwrap();
    }
    let ids = [3, 1, 3, 99, 2];
    let ids_of = |rows: Vec<Account>| rows.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids_of(Account::get_many(&f.db.pool, &ids).await.unwrap()),
        [3, 1, 2]
    );
    // Cached: on the misses, then on the hits.
    for _ in 0..2 {
        assert_eq!(
            ids_of(Account::get_many(&f.store, &ids).await.unwrap()),
            [3, 1, 2]
        );
    }
}
