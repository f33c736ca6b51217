//! Dates and times PostgreSQL accepts but chrono's `%Y` could not read
//! (years of five digits and more, BC) reach the 18.16 copy (`Int32` days,
//! `Int64` microseconds hold them all) instead of stopping the sync.

mod sync_common;

use std::time::Duration;

use strata_sdk::sync::RunOptions;
use sync_common::{insert_accounts, Fixture, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_and_bc_dates_and_times_are_copied() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 10).await;
    let edge = "UPDATE account SET born = $2::date, at = $3::timestamptz WHERE id = $1";
    let values = [
        (1, "12000-01-01", "12000-01-01 00:00:00+00"),
        (2, "0044-03-15 BC", "0044-03-15 12:00:00.5+00 BC"),
        (3, "262142-12-31", "200000-12-31 23:59:59.999999+00"),
        (4, "5874897-12-31", "2024-02-29 23:59:59.999999-05:30"),
    ];
    // Half before the snapshot (read by the snapshot's SELECT), half after
    // (decoded from the stream).
    for (id, d, t) in &values[..2] {
        sqlx::query(edge)
            .bind(id)
            .bind(d)
            .bind(t)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    for (id, d, t) in &values[2..] {
        sqlx::query(edge)
            .bind(id)
            .bind(d)
            .bind(t)
            .execute(&mut c)
            .await
            .unwrap();
    }
    f.caught_up(Duration::from_secs(60)).await;
    assert!(!run.is_finished(), "the sync stopped: {:?}", run.await);
    f.assert_equal().await;
    // Exact values: days and microseconds from 1970 as PostgreSQL counts them.
    let want: String = sqlx::query_scalar(
        "SELECT string_agg(format('%s\t%s\t%s', id, born - DATE '1970-01-01',
                 (extract(epoch FROM at) * 1000000)::numeric(30,0)), E'\n' ORDER BY id) || E'\n'
         FROM account WHERE id <= 4",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let got = f
        .ch_query(&format!(
            "SELECT id, born, at FROM `{}`.account_current WHERE id <= 4 ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(got, want);
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}
