//! Batch writes invalidate the cached rows they change, also when the key
//! field has a default (`uuid`, `default: generated`) and the caller gives
//! it: `insert_many`/`upsert_many` of existing rows, on the statement path
//! (fewer rows than a chunk) and the `COPY` path (more).

mod cache_support;

use cache_support::{prefix, redis_url, Cleanup, TestDb};
use strata_sdk::cache::{Cache, CacheConfig, Store};
use uuid::Uuid;

/// A book whose key PostgreSQL generates unless the row gives it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    strata_derive::Entity,
)]
#[strata(table = "books", key(id), cache(ttl_ms = 300000))]
pub struct Book {
    #[strata(default = generated)]
    pub id: Uuid,
    pub title: String,
}

const DDL: &str = r#"CREATE TABLE "books" (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(), "title" text NOT NULL);"#;

async fn upserts_invalidate(n: usize) {
    let db = TestDb::with_ddl(DDL).await;
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: redis_url(),
        prefix: prefix.clone(),
    };
    let cache = Cache::connect(CacheConfig::new(redis_url(), &prefix))
        .await
        .unwrap();
    let s = &Store::new(db.pool.clone(), cache);
    let new = |id: Uuid, title: &str| NewBook {
        id: Some(id),
        title: title.into(),
    };
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    Book::insert_many(s, ids.iter().map(|&id| new(id, "orig")))
        .await
        .unwrap();
    // Cached, then rewritten by a batch upsert that gives the keys.
    let sample = [ids[0], ids[n / 2], ids[n - 1]];
    for id in &sample {
        assert_eq!(Book::get(s, id).await.unwrap().title, "orig");
    }
    let counts = Book::upsert_many(s, ids.iter().map(|&id| new(id, "changed")))
        .await
        .unwrap();
    assert_eq!(counts.updated as usize, n, "{counts:?}");
    for id in &sample {
        assert_eq!(Book::get(s, id).await.unwrap().title, "changed", "{n} rows");
    }
    let many = Book::get_many(s, &sample).await.unwrap();
    assert!(many.iter().all(|b| b.title == "changed"), "{many:?}");
    // A row that leaves the key to its default is new: nothing to invalidate.
    Book::insert_many(
        s,
        [NewBook {
            id: None,
            title: "fresh".into(),
        }],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn upsert_many_invalidates_given_keys_on_the_statement_path() {
    upserts_invalidate(100).await;
}

#[tokio::test]
async fn upsert_many_invalidates_given_keys_on_the_copy_path() {
    upserts_invalidate(12_000).await;
}
