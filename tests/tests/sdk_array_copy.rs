//! Batches of rows with array columns past 10,000 rows travel as binary
//! `COPY`, each array stamped with its column's element type OID read from
//! the catalog: `smallint[]`, an enum array (whose OID exists only per
//! database), `timestamptz[]`, `date[]`, `uuid[]`, `varchar(n)[]` (sqlx
//! writes `text`'s OID) and `numeric[]`. Every value reads back as
//! written; a statement trigger shows the rows came from the staging table
//! that `COPY` fills, not from `VALUES`.

mod sdk_support;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use sdk_support::TestDb;
use strata_sdk::Secret;
use strata_tests::fixtures::market_multi_store::entities::*;

const N: usize = strata_sdk::postgres::BATCH_CHUNK + 50;

fn user(i: usize) -> NewUser {
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    NewUser {
        id: Some(uuid::Uuid::from_u128(i as u128 + 1)),
        handle: format!("u{i}"),
        email: format!("u{i}@example.com"),
        tier: None,
        born_on: None,
        avatar: None,
        password: Secret::new("pw"),
        referrer_id: None,
        group: None,
        flags: Some(vec![i as i16 % 7, -1]),
        badges: Some(match i % 3 {
            0 => vec![],
            1 => vec![Tier::Gold],
            _ => vec![Tier::Bronze, Tier::Silver],
        }),
        seen: Some(vec![t0 + Duration::seconds(i as i64)]),
        days: Some(vec![NaiveDate::from_ymd_opt(2020, 2, 29).unwrap()]),
        keys: Some(vec![
            uuid::Uuid::from_u128(7),
            uuid::Uuid::from_u128(i as u128),
        ]),
    }
}

/// Records the text of each statement that writes `user`.
const TRIGGER: &str = r#"
CREATE TABLE stmt_log (q text);
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO stmt_log VALUES (current_query()); RETURN NULL; END $$;
CREATE TRIGGER log_user AFTER INSERT OR UPDATE ON "user"
  FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();
"#;

#[tokio::test]
async fn array_batches_past_a_chunk_go_through_copy_and_read_back_as_written() {
    let model = strata_tests::support::model(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/valid/market_multi_store.yaml"
    ));
    let db = TestDb::for_model(&model, "pg").await;
    let pool = &db.pool;
    sqlx::raw_sql(TRIGGER).execute(pool).await.unwrap();

    let c = User::upsert_many(pool, (0..N).map(user)).await.unwrap();
    assert_eq!((c.inserted, c.updated), (N as u64, 0));
    let logged: Vec<String> = sqlx::query_scalar("SELECT q FROM stmt_log")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        logged
            .iter()
            .all(|q| q.contains("_strata_stage") && !q.contains("VALUES")),
        "{logged:?}"
    );

    // Every array reads back as written.
    let ids: Vec<uuid::Uuid> = (0..N)
        .map(|i| uuid::Uuid::from_u128(i as u128 + 1))
        .collect();
    let mut rows = User::get_many(pool, &ids).await.unwrap();
    rows.sort_by_key(|u| u.id);
    assert_eq!(rows.len(), N);
    for (i, u) in rows.iter().enumerate() {
        let want = user(i);
        assert_eq!(Some(&u.flags), want.flags.as_ref(), "row {i}");
        assert_eq!(Some(&u.badges), want.badges.as_ref(), "row {i}");
        assert_eq!(Some(&u.seen), want.seen.as_ref(), "row {i}");
        assert_eq!(Some(&u.days), want.days.as_ref(), "row {i}");
        assert_eq!(Some(&u.keys), want.keys.as_ref(), "row {i}");
    }

    // Overwrite every row (the set-based upsert from the staging table).
    let changed = (0..N).map(|i| NewUser {
        badges: Some(vec![Tier::Silver; i % 4]),
        ..user(i)
    });
    let c = User::upsert_many(pool, changed).await.unwrap();
    assert_eq!((c.inserted, c.updated), (0, N as u64));
    let u = User::get(pool, &uuid::Uuid::from_u128(4)).await.unwrap();
    assert_eq!(u.badges, vec![Tier::Silver; 3]);

    // varchar(20)[] and numeric[]: orders, inserted through COPY.
    let owner = uuid::Uuid::from_u128(1);
    let orders = (0..N).map(|i| NewOrder {
        user_id: owner,
        state: None,
        r#type: None,
        total: rust_decimal::Decimal::new(i as i64, 2),
        fee: None,
        qty: 1,
        lines: serde_json::json!([]),
        meta: None,
        labels: Some(vec![format!("l{}", i % 5), "é✓".into()]),
        amounts: Some(vec![rust_decimal::Decimal::new(-12345, 4)]),
        placed_on: None,
        note: None,
        ratio: None,
        active: None,
    });
    let c = Order::insert_many(pool, orders).await.unwrap();
    assert_eq!(c.inserted, N as u64);
    let labels: Vec<Vec<String>> =
        sqlx::query_scalar(r#"SELECT labels FROM "order" ORDER BY total LIMIT 2"#)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(labels, [vec!["l0", "é✓"], vec!["l1", "é✓"]]);
}
