//! The statement seam (`strata_sdk::postgres::seam`) on a real PostgreSQL:
//! after-commit hooks get the keys of every write once it is durable, only
//! then, and never for a write that failed or rolled back. (The spans are
//! tested in `sdk_seam_spans.rs`, a process of their own: tracing caches a
//! callsite's interest process-wide, and a test running in parallel
//! without a subscriber can leave it at "never".)

mod sdk_support;

use std::sync::{Arc, Mutex};

use sdk_support::TestDb;
use strata_sdk::postgres::seam::{self, Commit, Operation};
use strata_sdk::Error;

/// A counter keyed by name; its own table, so the hooks registered here
/// (process-wide, per type) see no other test's writes.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "seam_counters", key(name))]
pub struct SeamCounter {
    pub name: String,
    #[strata(default = 0)]
    pub hits: i64,
    #[strata(ty = "i64", default = "1", version)]
    pub version: i64,
}

const DDL: &str = r#"CREATE TABLE "seam_counters" ("name" text PRIMARY KEY,
    "hits" bigint NOT NULL DEFAULT 0, "version" bigint NOT NULL DEFAULT 1);"#;

type Seen = Arc<Mutex<Vec<(Operation, Commit, Vec<String>)>>>;

fn hooked() -> Seen {
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    SEEN.get_or_init(|| {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        seam::on_commit::<SeamCounter, _>(move |w| {
            assert_eq!(w.entity, "SeamCounter");
            s.lock()
                .unwrap()
                .push((w.operation, w.commit, w.keys.to_vec()));
        });
        seen
    })
    .clone()
}

fn take(seen: &Seen) -> Vec<(Operation, Commit, Vec<String>)> {
    std::mem::take(&mut *seen.lock().unwrap())
}

fn new(name: &str) -> NewSeamCounter {
    NewSeamCounter {
        name: name.into(),
        hits: None,
    }
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// One test, so that the process-wide hook sees the writes in order.
#[tokio::test]
async fn hooks_run_after_commit_with_the_keys_written() {
    let seen = hooked();
    let db = TestDb::with_ddl(DDL).await;
    let pool = &db.pool;
    let committed = Commit::Committed;

    let a = SeamCounter::insert(pool, &new("a")).await.unwrap();
    SeamCounter::upsert(pool, &new("b")).await.unwrap();
    let a = SeamCounter::update(pool, &SeamCounter { hits: 5, ..a })
        .await
        .unwrap();
    let patch = SeamCounterPatch {
        hits: Some(6),
        any_version: true,
        ..Default::default()
    };
    SeamCounter::patch(pool, &"a".to_string(), &patch)
        .await
        .unwrap();
    assert!(SeamCounter::delete(pool, &"b".to_string()).await.unwrap());
    assert!(!SeamCounter::delete(pool, &"b".to_string()).await.unwrap());
    assert_eq!(
        take(&seen),
        [
            (Operation::Insert, committed, names(&["a"])),
            (Operation::Upsert, committed, names(&["b"])),
            (Operation::Update, committed, names(&["a"])),
            (Operation::Patch, committed, names(&["a"])),
            (Operation::Delete, committed, names(&["b"])),
        ]
    );

    // Reads and failed writes report nothing.
    SeamCounter::get(pool, &"a".to_string()).await.unwrap();
    let stale = SeamCounter::update(pool, &a).await.unwrap_err();
    assert!(matches!(stale, Error::StaleVersion { .. }), "{stale:?}");
    let taken = SeamCounter::insert(pool, &new("a")).await.unwrap_err();
    assert!(matches!(taken, Error::Conflict { .. }), "{taken:?}");
    assert_eq!(take(&seen), []);

    // Batches: every key, once, after the batch's own COMMIT.
    let c = SeamCounter::upsert_many(pool, ["c", "d", "a"].map(new))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (2, 1));
    SeamCounter::delete_many(pool, names(&["c", "zz"]))
        .await
        .unwrap();
    assert_eq!(
        take(&seen),
        [
            (Operation::UpsertMany, committed, names(&["c", "d", "a"])),
            (Operation::DeleteMany, committed, names(&["c", "zz"])),
        ]
    );

    // A batch that fails writes nothing and reports nothing.
    let rows = SeamCounter::get_many(pool, &names(&["a", "d"]))
        .await
        .unwrap();
    let mut stale_rows = rows.clone();
    stale_rows[1].version += 7;
    let e = SeamCounter::update_many(pool, stale_rows)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BatchIncomplete { .. }), "{e:?}");
    assert_eq!(take(&seen), []);

    // Inside the caller's transaction: reported as pending; nothing more
    // when that transaction rolls back.
    let mut tx = pool.begin().await.unwrap();
    SeamCounter::insert(&mut *tx, &new("e")).await.unwrap();
    SeamCounter::update_many(&mut *tx, rows).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        take(&seen),
        [
            (Operation::Insert, Commit::Pending, names(&["e"])),
            (Operation::UpdateMany, Commit::Pending, names(&["a", "d"])),
        ]
    );
    assert!(!SeamCounter::exists(pool, &"e".to_string()).await.unwrap());
}
