//! `TRUNCATE` reaches the ClickHouse copy: rows the truncating transaction
//! wrote before it go with the rest, rows it wrote after it stay, the sync
//! carries on, and a restart that replays the transaction ends equal too.
//! Elasticsearch (versioned deletes through a point in time) is tested in
//! `sync_elastic.rs`, against its scripted listener.

mod sync_common;

use std::time::Duration;

use strata_sdk::sync::RunOptions;
use sync_common::{insert_accounts, Fixture, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_empties_the_clickhouse_copy_as_of_its_commit() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 300).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    insert_accounts(&mut c, 1_000, 50).await;

    sqlx::raw_sql(
        "BEGIN;
         INSERT INTO account (id, name, balance, password) VALUES (5001, 'before', 1, 'x');
         TRUNCATE account;
         INSERT INTO account (id, name, balance, password) VALUES (6001, 'after', 2, 'x'), (6002, 'after', 3, 'x');
         UPDATE account SET balance = 4 WHERE id = 6002;
         COMMIT;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    insert_accounts(&mut c, 7_000, 20).await;
    f.caught_up(Duration::from_secs(60)).await;
    assert!(!run.is_finished(), "the sync stopped at the TRUNCATE");
    f.assert_equal().await;
    let ids = f
        .ch_query(&format!(
            "SELECT count(), min(id), max(id) FROM `{}`.account_current FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(ids, "22\t6001\t7019\n");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    // A second TRUNCATE, then a restart: the copy is empty, then follows.
    sqlx::raw_sql("TRUNCATE account; INSERT INTO account (id, name, balance, password) VALUES (8001, 'n', 1, 'x')")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    let n = f
        .ch_query(&format!(
            "SELECT count() FROM `{}`.account_current FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(n.trim(), "1");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}
