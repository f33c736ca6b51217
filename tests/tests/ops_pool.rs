//! Every `pool:` key reaches the real pool or the server session: what
//! PostgreSQL itself reports (`pg_stat_activity`, `SHOW`), and what a
//! repository call meets when a limit is hit (`Error::Timeout`).

use std::time::{Duration, Instant};

use sqlx::Connection;
use strata_sdk::postgres::PoolConfig;
use strata_sdk::Error;
use strata_tests::fixtures::ops_replicas::entities::Note;
use strata_tests::support::PgDatabase;

const DDL: &str = r#"CREATE TABLE "ops_notes" ("id" bigint PRIMARY KEY, "body" text NOT NULL);"#;

#[tokio::test]
async fn every_pool_key_reaches_the_pool_and_the_server() {
    let db = PgDatabase::new().await;
    sqlx::raw_sql(DDL)
        .execute(&mut db.connect().await)
        .await
        .unwrap();
    let app = format!("strata-pool-{}", &db.name[12..24]);
    let config = PoolConfig {
        store: "ops".into(),
        max: Some(3),
        min: Some(2),
        acquire_timeout_ms: Some(400),
        idle_timeout_ms: Some(60_000),
        max_lifetime_ms: Some(120_000),
        statement_timeout_ms: Some(750),
        application_name: Some(app.clone()),
        ..PoolConfig::new(db.url.clone())
    };
    let pool = config.connect().await.unwrap();

    // The pool's own settings.
    let o = pool.options();
    assert_eq!(o.get_max_connections(), 3);
    assert_eq!(o.get_min_connections(), 2);
    assert_eq!(o.get_acquire_timeout(), Duration::from_millis(400));
    assert_eq!(o.get_idle_timeout(), Some(Duration::from_secs(60)));
    assert_eq!(o.get_max_lifetime(), Some(Duration::from_secs(120)));

    // The server sees the session settings on every connection.
    let (timeout, name): (String, String) = sqlx::query_as(
        "SELECT current_setting('statement_timeout'), current_setting('application_name')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((timeout.as_str(), name.as_str()), ("750ms", app.as_str()));
    let show: (String,) = sqlx::query_as("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(show.0, "750ms");

    // `min`: the pool keeps two connections open, seen by the server.
    let mut admin = db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
        )
        .bind(&app)
        .bind(&db.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if n >= 2 {
            assert!(n <= 3, "max 3, the server sees {n}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "min connections never opened ({n})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // `statement_timeout`: a repository read blocked by a lock is cancelled
    // by the server, a typed timeout.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::raw_sql(r#"LOCK TABLE "ops_notes" IN ACCESS EXCLUSIVE MODE"#)
        .execute(&mut *tx)
        .await
        .unwrap();
    let started = Instant::now();
    let e = Note::count(&pool).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    tx.rollback().await.unwrap();
    assert_eq!(Note::count(&pool).await.unwrap(), 0);

    // `max` and `acquire_timeout`: with every connection held, a call waits
    // 400 ms for one, then fails with a typed timeout.
    let held = [
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
    ];
    let started = Instant::now();
    let e = Note::count(&pool).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(held);
    assert_eq!(Note::count(&pool).await.unwrap(), 0);
}
