//! A stop while a target keeps failing (here: no server at its address)
//! ends the run at once instead of after hours of retries.

mod sync_common;

use std::time::{Duration, Instant};

use strata_sdk::sync::{RunOptions, TargetSpec};
use sync_common::{Fixture, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_run_whose_target_never_answers() {
    let mut f = Fixture::new(SCHEMA).await;
    for t in &mut f.pipeline.targets {
        if let TargetSpec::ClickHouse { url, .. } = t {
            *url = "http://127.0.0.1:1".into();
        }
    }
    let (stop, run) = f.start(RunOptions::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!run.is_finished(), "a refused connection is retried");
    let asked = Instant::now();
    stop.send(true).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run ends within 10 s of the stop");
    ended.unwrap().expect("a stopped run ends cleanly");
    assert!(asked.elapsed() < Duration::from_secs(10));
}

/// A stop during the first snapshot ends the run after the chunks in
/// flight (a newcomer's run copied on to the last chunk): many small
/// chunks, one worker, the stop set once the first chunk is done. The run
/// returns soon with chunks left, the snapshot is not marked done, and a
/// second run resumes at the first chunk not done and ends equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_the_snapshot_ends_it_after_the_chunks_in_flight() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    sync_common::insert_accounts(&mut c, 1, 30_000).await;
    sqlx::query("ANALYZE account")
        .execute(&mut c)
        .await
        .unwrap();
    let opts = RunOptions::default()
        .with_chunk_rows(100)
        .with_snapshot_workers(1);
    let (stop, run) = f.start(opts.clone());
    sync_common::mid_snapshot(&mut c, &f.pipeline.name).await;
    let asked = Instant::now();
    stop.send(true).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run ends within 10 s of the stop");
    ended.unwrap().expect("a stopped run ends cleanly");
    let took = asked.elapsed();
    let (done, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE done), count(*) FROM strata_sync.chunks WHERE pipeline = $1",
    )
    .bind(&f.pipeline.name)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(
        done < all,
        "the stop after {took:?} left no chunk undone ({done}/{all})"
    );
    assert!(all >= 100, "small chunks planned: {all}");
    let marked: bool =
        sqlx::query_scalar("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
            .bind(&f.pipeline.name)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert!(!marked, "a stopped snapshot is not done");
    // The second run resumes and finishes; the copy equals the source.
    let (stop, run) = f.start(opts);
    f.caught_up(Duration::from_secs(120)).await;
    stop.send(true).unwrap();
    run.await.unwrap().expect("the second run ends cleanly");
    let (done, all): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE done), count(*) FROM strata_sync.chunks WHERE pipeline = $1",
    )
    .bind(&f.pipeline.name)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(done, all);
    f.assert_equal().await;
}
