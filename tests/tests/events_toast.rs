//! Change events for an update that leaves a large (TOASTed) value
//! unchanged: PostgreSQL does not send that value, and the table has a
//! secret, so `REPLICA IDENTITY FULL` is impossible. The pipeline takes the
//! value from the row's previous event (exactly the value the update left
//! alone), also when a later transaction changed it or deleted the row.
//! The pipeline never stops.

mod events_support;

use events_support::*;
use strata_sdk::events::{Op, Position};

/// An out-of-line value: 19,200 characters of hex that pglz cannot shrink
/// under the 2 KB TOAST threshold.
const BIG: &str = "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 600) g)";

#[tokio::test]
async fn an_unchanged_toasted_value_is_read_back_and_the_pipeline_goes_on() {
    let f = Fixture::new(&single_url()).await;
    let (stop, run) = f.start();
    f.snapshot_done().await;
    let client = f.client().await;
    let mut changes = Box::pin(Ledger::subscribe(&client, Position::START));
    let big: String = sqlx::query_scalar(&format!("SELECT {BIG}"))
        .fetch_one(&f.pool)
        .await
        .unwrap();
    let exec = |sql: String| {
        let pool = f.pool.clone();
        async move { sqlx::raw_sql(&sql).execute(&pool).await.unwrap() }
    };
    exec(format!(
        "INSERT INTO ledgers VALUES (1, 'o1', 1, {BIG}, '{SECRET}', '{{}}'), (2, 'o2', 1, {BIG}, '{SECRET}', '{{}}')"
    ))
    .await;
    let stored: String = sqlx::query_scalar(
        "SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'ledgers'::regclass AND attname = 'note'",
    )
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(
        stored, "x",
        "note is stored extended (out of line when large)"
    );
    // The large value is left alone: the server sends the 'u' marker.
    exec("UPDATE ledgers SET balance = 2 WHERE id = 1".into()).await;
    // In one transaction: an update that leaves it alone, then one that
    // changes it. The first must show the value as it was, not the later one.
    exec("BEGIN; UPDATE ledgers SET balance = 4 WHERE id = 1; UPDATE ledgers SET note = 'NEW' WHERE id = 1; COMMIT".into()).await;
    // Updated then deleted in one transaction: when the pipeline reads
    // the update, the source row is gone; the row's previous event has it.
    exec("BEGIN; UPDATE ledgers SET balance = 3 WHERE id = 2; DELETE FROM ledgers WHERE id = 2; COMMIT".into()).await;
    exec(format!(
        "INSERT INTO ledgers VALUES (3, 'o3', 1, 'small', '{SECRET}', '{{}}')"
    ))
    .await;

    let got = take(&mut changes, 8, 30).await;
    quiet(&mut changes, 500).await;
    let summary: Vec<(Op, i64, Option<i64>)> = got
        .iter()
        .map(|c| {
            (
                c.op,
                c.key["id"].as_i64().unwrap(),
                c.row.as_ref().map(|r| r.balance),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Op::Insert, 1, Some(1)),
            (Op::Insert, 2, Some(1)),
            (Op::Update, 1, Some(2)),
            (Op::Update, 1, Some(4)),
            (Op::Update, 1, Some(4)),
            (Op::Update, 2, Some(3)),
            (Op::Delete, 2, None),
            (Op::Insert, 3, Some(1)),
        ]
    );
    let note = |i: usize| got[i].row.as_ref().unwrap().note.clone();
    assert_eq!(note(2).as_deref(), Some(big.as_str()), "the whole value");
    assert_eq!(
        note(3).as_deref(),
        Some(big.as_str()),
        "as it was, not the later `NEW`"
    );
    assert_eq!(note(4).as_deref(), Some("NEW"));
    assert_eq!(
        note(5).as_deref(),
        Some(big.as_str()),
        "from the previous event: the row is gone"
    );
    assert!(!run.is_finished(), "the pipeline stopped: {:?}", run.await);
    stop.send(true).unwrap();
    run.await.unwrap().expect("the sync ran cleanly");
    f.drop_pipeline().await;
}
