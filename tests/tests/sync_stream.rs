//! Change capture on the real servers: PostgreSQL 15 (logical decoding) to
//! ClickHouse 18.16. Snapshot then stream; every kind of change; a
//! rolled-back transaction; a key changed twice in one transaction; the
//! secret found nowhere.

mod sync_common;

use std::time::Duration;

use strata_sdk::sync::{self, RunOptions};
use sync_common::{insert_accounts, Fixture, SCHEMA, SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_stream_carries_every_committed_change_and_nothing_else() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 1_000).await;
    let (stop, run) = f.start(RunOptions::default().with_chunk_rows(300));
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;

    // Updates, deletes, a multi-statement transaction, a rolled-back one,
    // a key updated twice in one transaction, a key deleted and inserted again.
    sqlx::raw_sql(
        "UPDATE account SET balance = 7, note = 'updated' WHERE id <= 10;
         DELETE FROM account WHERE id BETWEEN 11 AND 20;
         BEGIN;
           INSERT INTO account (id, name, balance, password) VALUES (5000, 'first', 1, 'x');
           UPDATE account SET name = 'second' WHERE id = 5000;
           UPDATE account SET name = 'last', balance = 3.5 WHERE id = 5000;
           DELETE FROM account WHERE id = 21;
           UPDATE account SET tags = ARRAY['new'] WHERE id = 22;
         COMMIT;
         BEGIN;
           INSERT INTO account (id, name, balance, password) VALUES (6000, 'rolled back', 1, 'x');
           UPDATE account SET name = 'rolled back' WHERE id = 30;
         ROLLBACK;
         BEGIN;
           DELETE FROM account WHERE id = 40;
           INSERT INTO account (id, name, balance, password) VALUES (40, 'again', 4, 'x');
         COMMIT;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    insert_accounts(&mut c, 10_000, 200).await;
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;

    let db = &f.ch.name;
    let rows = f
        .ch_query(&format!(
            "SELECT id, name, balance FROM `{db}`.account_current WHERE id IN (1, 5000, 6000, 30, 40, 11) ORDER BY id FORMAT TSV"
        ))
        .await;
    assert_eq!(
        rows,
        "1\tname 1\t7.00000000\n30\tname 30\t37.50000000\n40\tagain\t4.00000000\n5000\tlast\t3.50000000\n"
    );
    // The delete is a tombstone with a higher version than the row it hides.
    let tomb = f
        .ch_query(&format!(
            "SELECT _deleted, count() FROM `{db}`.account FINAL WHERE id BETWEEN 11 AND 21 GROUP BY _deleted FORMAT TSV"
        ))
        .await;
    assert_eq!(tomb, "1\t11\n");
    // A streamed row's version is larger than the snapshot's (row 999 is
    // never changed after it). Compared across rows: a background merge
    // may already have collapsed row 1's snapshot version into its newest.
    let versions = f
        .ch_query(&format!(
            "SELECT (SELECT max(_version) FROM `{db}`.account WHERE id = 1) > (SELECT max(_version) FROM `{db}`.account WHERE id = 999) FORMAT TSV"
        ))
        .await;
    assert_eq!(versions.trim(), "1", "{versions}");

    stop.send(true).unwrap();
    run.await.unwrap().expect("the run stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_neither_the_publication_nor_clickhouse() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 100).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    sqlx::query("UPDATE account SET password = $1 || '-changed', name = 'after' WHERE id < 50")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    insert_accounts(&mut c, 1_000, 10).await;
    f.caught_up(Duration::from_secs(60)).await;

    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(attnames) FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'account'",
    )
    .bind(f.pipeline.publication())
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(
        cols.contains(&"id".to_string()) && cols.contains(&"name".to_string()),
        "{cols:?}"
    );
    assert!(
        !cols.contains(&"password".to_string()),
        "the publication lists the secret: {cols:?}"
    );

    let all = f
        .ch_query(&format!("SELECT * FROM `{}`.account FORMAT TSV", f.ch.name))
        .await;
    assert!(all.lines().count() >= 110, "rows were copied");
    assert!(!all.contains(SECRET), "the secret reached ClickHouse");
    let columns = f
        .ch_query(&format!(
            "SELECT name FROM system.columns WHERE database = '{}' FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert!(!columns.contains("password"), "{columns}");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_snapshot_and_the_position_and_drop_removes_the_slot() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 500).await;
    let (stop, run) = f.start(RunOptions::default().with_chunk_rows(100));
    f.caught_up(Duration::from_secs(60)).await;
    let s = sync::status(&f.pipeline).await.unwrap();
    assert!(s.slot_exists && s.active && s.snapshot_done, "{s}");
    assert_eq!(s.tables.len(), 1);
    // Chunks are page ranges of about 100 rows (never less than a page).
    let t = &s.tables[0];
    assert!(
        t.chunks_done == t.chunks && t.chunks >= 2 && t.rows_copied == 500,
        "{s}"
    );
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    sync::drop_pipeline(&f.pipeline).await.unwrap();
    let slots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1")
            .bind(f.pipeline.slot(&f.pg.name))
            .fetch_one(&mut c)
            .await
            .unwrap();
    let pubs: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_publication WHERE pubname = $1")
        .bind(f.pipeline.publication())
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!((slots, pubs), (0, 0));
}
