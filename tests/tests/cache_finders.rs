//! `one: true` finders of a cached entity read through the cache: a hit
//! costs no PostgreSQL query, and a pointer left behind by an update of the
//! unique field, or by a delete, is never served.

mod cache_support;

use cache_support::{prefix, redis_url, Cleanup, TestDb};
use strata_sdk::cache::{Cache, CacheConfig, Store};

/// A member with a unique email and an optional unique nickname.
#[derive(
    Debug,
    Clone,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    strata_derive::Entity,
)]
#[strata(
    table = "members",
    key(id),
    cache(ttl_ms = 30000),
    query(by_email(params(email), one)),
    query(by_nick(params(nick), one))
)]
pub struct Member {
    pub id: i64,
    pub email: String,
    pub nick: Option<String>,
    pub score: i64,
}

const DDL: &str = r#"CREATE TABLE "members" (
    "id" bigint PRIMARY KEY, "email" text NOT NULL UNIQUE, "nick" text UNIQUE,
    "score" bigint NOT NULL);"#;

async fn store(db: &TestDb, url: &str, prefix: &str) -> Store {
    let cfg = CacheConfig::new(url, prefix);
    Store::new(db.pool.clone(), Cache::connect(cfg).await.expect("cache"))
}

fn member(id: i64, email: &str, nick: Option<&str>) -> NewMember {
    NewMember {
        id,
        email: email.into(),
        nick: nick.map(Into::into),
        score: id * 10,
    }
}

#[tokio::test]
async fn finders_hit_the_cache_and_never_serve_a_moved_value() {
    let db = TestDb::with_ddl(DDL).await;
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: redis_url(),
        prefix: prefix.clone(),
    };
    let s = &store(&db, &redis_url(), &prefix).await;
    Member::insert(s, &member(1, "a@x", Some("ann")))
        .await
        .unwrap();
    Member::insert(s, &member(2, "b@x", None)).await.unwrap();

    // A miss loads, a second call hits without a load.
    let first = Member::by_email(s, "a@x").await.unwrap().expect("found");
    assert_eq!((first.id, first.score), (1, 10));
    let loads = s.cache().stats().loads;
    let again = Member::by_email(s, "a@x").await.unwrap();
    assert_eq!(again.as_ref(), Some(&first));
    assert_eq!(s.cache().stats().loads, loads, "the second read is a hit");
    let by_nick = Member::by_nick(s, "ann").await.unwrap().expect("nick");
    assert_eq!(by_nick.id, 1);
    assert_eq!(Member::by_nick(s, "ann").await.unwrap().unwrap().id, 1);
    assert_eq!(Member::by_email(s, "nobody@x").await.unwrap(), None);

    // The unique value moves to another row: the old pointer leads to a
    // row that no longer matches, and reads as a miss.
    let p = MemberPatch {
        email: Some("c@x".into()),
        ..Default::default()
    };
    Member::patch(s, &1, &p).await.unwrap();
    assert_eq!(Member::by_email(s, "a@x").await.unwrap(), None);
    assert_eq!(Member::by_email(s, "c@x").await.unwrap().unwrap().id, 1);
    let p = MemberPatch {
        email: Some("a@x".into()),
        nick: Some(Some("ann".into())),
        ..Default::default()
    };
    Member::patch(
        s,
        &1,
        &MemberPatch {
            nick: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Member::patch(s, &2, &p).await.unwrap();
    let now = Member::by_email(s, "a@x").await.unwrap().expect("moved");
    assert_eq!((now.id, now.email.as_str()), (2, "a@x"));
    assert_eq!(Member::by_nick(s, "ann").await.unwrap().unwrap().id, 2);
    // Cached again, then the row is deleted: not served.
    assert_eq!(Member::by_email(s, "a@x").await.unwrap().unwrap().id, 2);
    assert!(Member::delete(s, &2).await.unwrap());
    assert_eq!(Member::by_email(s, "a@x").await.unwrap(), None);
    assert_eq!(Member::by_nick(s, "ann").await.unwrap(), None);
    // Bypassed, it reads PostgreSQL.
    assert_eq!(
        Member::by_email(s.bypass(), "c@x")
            .await
            .unwrap()
            .unwrap()
            .id,
        1
    );
}

#[tokio::test]
async fn finders_fall_back_to_postgres_when_redis_is_unreachable() {
    let db = TestDb::with_ddl(DDL).await;
    let s = &store(&db, "redis://127.0.0.1:1", &prefix()).await;
    Member::insert(s, &member(7, "z@x", Some("zed")))
        .await
        .unwrap();
    for _ in 0..3 {
        let m = Member::by_email(s, "z@x").await.expect("no error");
        assert_eq!(m.map(|m| m.id), Some(7));
        assert_eq!(Member::by_nick(s, "zed").await.unwrap().unwrap().id, 7);
    }
    assert!(s.cache().stats().errors > 0, "Redis was tried and failed");
}
