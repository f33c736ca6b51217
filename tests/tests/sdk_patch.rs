//! Concurrent read-modify-writes do not lose updates by default: a patch of
//! a versioned entity must expect a version (or opt out), and number
//! fields can be incremented atomically (`add_<field>`). 200 concurrent
//! "add one" patches: with increments all 200 land; with the version
//! check the losers get `StaleVersion` and nothing is lost; without either
//! the patch is refused before it is sent.

mod sdk_support;

use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::Error;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "patch_counters", key(name))]
pub struct PatchCounter {
    pub name: String,
    #[strata(default = 0)]
    pub hits: i64,
    #[strata(ty = "decimal(20,8)")]
    pub balance: Option<Decimal>,
    #[strata(ty = "i64", default = "1", version)]
    pub version: i64,
}

const DDL: &str = r#"CREATE TABLE "patch_counters" ("name" text PRIMARY KEY,
    "hits" bigint NOT NULL DEFAULT 0, "balance" numeric(20,8),
    "version" bigint NOT NULL DEFAULT 1);"#;

fn key() -> String {
    "c".to_string()
}

async fn setup() -> TestDb {
    let db = TestDb::with_ddl(DDL).await;
    let new = NewPatchCounter {
        name: key(),
        hits: None,
        balance: None,
    };
    PatchCounter::insert(&db.pool, &new).await.unwrap();
    db
}

#[tokio::test]
async fn a_patch_without_a_version_or_an_opt_out_is_refused() {
    let db = setup().await;
    let patch = PatchCounterPatch {
        hits: Some(5),
        ..Default::default()
    };
    let e = PatchCounter::patch(&db.pool, &key(), &patch)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::VersionRequired {
                entity: "PatchCounter"
            }
        ),
        "{e:?}"
    );
    let row = PatchCounter::get(&db.pool, &key()).await.unwrap();
    assert_eq!((row.hits, row.version), (0, 1), "nothing written");
}

#[tokio::test]
async fn concurrent_increments_all_land() {
    let db = setup().await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                let patch = PatchCounterPatch {
                    add_hits: Some(1),
                    add_balance: Some(Decimal::new(1, 8)),
                    any_version: true,
                    ..Default::default()
                };
                PatchCounter::patch(&pool, &key(), &patch).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let row = PatchCounter::get(&db.pool, &key()).await.unwrap();
    assert_eq!(row.hits, 200);
    // A NULL balance counts as 0.
    assert_eq!(row.balance, Some(Decimal::new(200, 8)));
    assert_eq!(row.version, 201);
    // Set then add, in one statement; an increment is checked like a value.
    let patch = PatchCounterPatch {
        hits: Some(10),
        add_hits: Some(5),
        expected_version: Some(201),
        ..Default::default()
    };
    assert_eq!(
        PatchCounter::patch(&db.pool, &key(), &patch)
            .await
            .unwrap()
            .hits,
        15
    );
    let patch = PatchCounterPatch {
        add_balance: Some(Decimal::new(1, 9)),
        any_version: true,
        ..Default::default()
    };
    let e = PatchCounter::patch(&db.pool, &key(), &patch)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Refused {
                field: "balance",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn concurrent_read_modify_writes_lose_nothing_with_the_version_check() {
    let db = setup().await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                let row = PatchCounter::get(&pool, &key()).await.unwrap();
                let patch = PatchCounterPatch {
                    hits: Some(row.hits + 1),
                    expected_version: Some(row.version),
                    ..Default::default()
                };
                PatchCounter::patch(&pool, &key(), &patch).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::StaleVersion { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    let row = PatchCounter::get(&db.pool, &key()).await.unwrap();
    // Every patch that returned Ok is counted: none was lost.
    assert_eq!(row.hits, ok);
    assert_eq!(row.version, 1 + ok);
}
