//! Connection faults on a real PostgreSQL arrive as typed errors: a pool
//! or statement timeout is `Timeout`, a broken connection is `Connection`
//! for a read and `OutcomeUnknown` for a write that was sent outside a
//! transaction (or a batch whose `COMMIT` failed), and the server's DETAIL
//! and HINT are kept (without row dumps).

mod sdk_support;

use std::time::Duration;

use sdk_support::TestDb;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use strata_sdk::Error;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "fault_items", key(name))]
pub struct FaultItem {
    pub name: String,
    #[strata(default = 0)]
    pub n: i64,
}

/// `fault_items`, and a deferred trigger that sleeps in `COMMIT` when a
/// row named `slow-commit` is written (to cut the connection there).
const DDL: &str = r#"
CREATE TABLE fault_items (name text PRIMARY KEY, n bigint NOT NULL DEFAULT 0 CHECK (n >= 0));
CREATE FUNCTION fault_sleep() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN IF NEW.name = 'slow-commit' THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER fault_sleep AFTER INSERT ON fault_items
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_sleep();
"#;

fn item(name: &str) -> NewFaultItem {
    NewFaultItem {
        name: name.into(),
        n: None,
    }
}

async fn pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Terminates backend `pid` once it waits (on a lock, or in `pg_sleep`).
async fn terminate_when_waiting(pool: &sqlx::PgPool, pid: i32) {
    for _ in 0..200 {
        let waiting: bool = sqlx::query_scalar(
            "SELECT coalesce(wait_event_type IN ('Lock', 'Timeout'), false) FROM pg_stat_activity WHERE pid = $1",
        )
        .bind(pid)
        .fetch_optional(pool)
        .await
        .unwrap()
        .unwrap_or(false);
        if waiting {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(pool)
                .await
                .unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("backend {pid} never waited");
}

#[tokio::test]
async fn timeouts_are_typed() {
    let db = TestDb::with_ddl(DDL).await;
    let small = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect(&db.db.url)
        .await
        .unwrap();
    let held = small.acquire().await.unwrap();
    let e = FaultItem::get(&small, &"a".to_string()).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    drop(held);

    // A statement timeout while an update waits on a row lock.
    FaultItem::insert(&db.pool, &item("a")).await.unwrap();
    let mut locker = db.pool.begin().await.unwrap();
    sqlx::query("SELECT * FROM fault_items WHERE name = 'a' FOR UPDATE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.db.url).await.unwrap();
    sqlx::query("SET statement_timeout = '200ms'")
        .execute(&mut conn)
        .await
        .unwrap();
    let patch = FaultItemPatch {
        n: Some(5),
        ..Default::default()
    };
    let e = FaultItem::patch(&mut conn, &"a".to_string(), &patch)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    locker.rollback().await.unwrap();
    // The connection is still usable.
    assert_eq!(
        FaultItem::get(&mut conn, &"a".to_string()).await.unwrap().n,
        0
    );
}

#[tokio::test]
async fn a_write_cut_after_it_was_sent_has_an_unknown_outcome() {
    let db = TestDb::with_ddl(DDL).await;
    FaultItem::insert(&db.pool, &item("a")).await.unwrap();
    let mut locker = db.pool.begin().await.unwrap();
    sqlx::query("SELECT * FROM fault_items WHERE name = 'a' FOR UPDATE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.db.url).await.unwrap();
    let victim = pid(&mut conn).await;
    let patch = FaultItemPatch {
        n: Some(5),
        ..Default::default()
    };
    let key = "a".to_string();
    let (r, ()) = tokio::join!(
        FaultItem::patch(&mut conn, &key, &patch),
        terminate_when_waiting(&db.pool, victim)
    );
    let e = r.unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
    locker.rollback().await.unwrap();

    // A read on a dead connection is a connection error.
    let e = FaultItem::get(&mut conn, &key).await.unwrap_err();
    assert!(matches!(e, Error::Connection { .. }), "{e:?}");
}

#[tokio::test]
async fn a_batch_whose_commit_is_cut_has_an_unknown_outcome() {
    let db = TestDb::with_ddl(DDL).await;
    let mut conn = PgConnection::connect(&db.db.url).await.unwrap();
    let victim = pid(&mut conn).await;
    let rows = [item("x"), item("slow-commit")];
    let (r, ()) = tokio::join!(
        FaultItem::insert_many(&mut conn, rows),
        terminate_when_waiting(&db.pool, victim)
    );
    let e = r.unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
    // Here the server rolled back: reconciling finds nothing.
    assert_eq!(FaultItem::count(&db.pool).await.unwrap(), 0);
}

#[tokio::test]
async fn detail_and_hint_are_kept_but_not_row_dumps() {
    let db = TestDb::with_ddl(DDL).await;
    let e = FaultItem::insert(
        &db.pool,
        &NewFaultItem {
            n: Some(-1),
            ..item("a")
        },
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, Error::InvalidValue { ref code, .. } if code == "23514"),
        "{e:?}"
    );
    assert!(
        text.contains("DETAIL: Failing row contains (values not shown)"),
        "{text}"
    );
    // A DETAIL without values is kept as PostgreSQL wrote it.
    let e = sqlx::query("SELECT 'x'::int")
        .execute(&db.pool)
        .await
        .map_err(Error::from)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e:?}");
    let e = sqlx::query("SELECT '2020-13-01'::date")
        .execute(&db.pool)
        .await
        .map_err(Error::from)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("HINT: Perhaps you need a different \"datestyle\" setting."),
        "{e}"
    );
}
