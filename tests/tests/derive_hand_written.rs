//! `#[derive(Entity)]` on a struct written by hand (no schema file): the
//! same repository the generated structs get, against a real PostgreSQL.

mod sdk_support;

use sdk_support::TestDb;
use strata_sdk::postgres::PageRequest;

/// A bookmark, keyed by (owner, url); `String` and plain std types as a user writes them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(
    table = "bookmarks",
    key(owner, url),
    query(for_owner(params(owner), order = "url", limit = 100)),
    query(starred(fixed(starred = true), order = "url desc"))
)]
pub struct Bookmark {
    pub owner: String,
    pub url: String,
    pub title: Option<String>,
    #[strata(default = false)]
    pub starred: bool,
    #[strata(column = "hit_count", default = 0)]
    #[sqlx(rename = "hit_count")]
    pub hits: i64,
}

const DDL: &str = r#"CREATE TABLE "bookmarks" (
    "owner" text NOT NULL, "url" text NOT NULL, "title" text,
    "starred" boolean NOT NULL DEFAULT false, "hit_count" bigint NOT NULL DEFAULT 0,
    PRIMARY KEY ("owner", "url"));"#;

fn new(owner: &str, url: &str) -> NewBookmark {
    NewBookmark {
        owner: owner.into(),
        url: url.into(),
        title: None,
        starred: None,
        hits: None,
    }
}

#[tokio::test]
async fn hand_written_struct_gets_the_repository() {
    let db = TestDb::with_ddl(DDL).await;
    let pool = &db.pool;
    let b = Bookmark::insert(pool, &new("ann", "https://a"))
        .await
        .unwrap();
    assert_eq!((b.starred, b.hits), (false, 0));
    let key: BookmarkKey = ("ann".into(), "https://a".into());
    assert_eq!(Bookmark::get(pool, &key).await.unwrap(), b);
    let c = Bookmark::upsert_many(
        pool,
        (0..30).map(|i| NewBookmark {
            starred: Some(i % 3 == 0),
            hits: Some(i),
            ..new("ann", &format!("https://{i:02}"))
        }),
    )
    .await
    .unwrap();
    assert_eq!(c.inserted, 30);
    assert_eq!(Bookmark::for_owner(pool, "ann").await.unwrap().len(), 31);
    assert_eq!(Bookmark::starred(pool).await.unwrap().len(), 10);
    let p = Bookmark::patch(
        pool,
        &key,
        &BookmarkPatch {
            hits: Some(9),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(p.hits, 9);
    let page = Bookmark::list(pool, &PageRequest::first(20)).await.unwrap();
    assert_eq!(page.items.len(), 20);
    let rest = Bookmark::list(pool, &PageRequest::first(20).after(page.next.unwrap()))
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.next), (11, None));
}
