//! `strata sync status` tells a running pipeline by its runner (the
//! advisory lock), also while the slot is not attached (the snapshot, the
//! start), and reads how far behind the targets are so that caught up is
//! 0 s and 0 bytes, while a change the runner has not applied shows.

mod sync_common;

use std::time::{Duration, Instant};

use sqlx::Connection;
use strata_sdk::sync::{self, RunOptions, Status};
use sync_common::{insert_accounts, Fixture, SCHEMA};

async fn status_until(f: &Fixture, what: &str, ok: impl Fn(&Status) -> bool) -> Status {
    let start = Instant::now();
    loop {
        let s = sync::status(&f.pipeline).await.expect("status");
        if ok(&s) {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_running_by_the_runner_and_caught_up_reads_zero() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 50).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    // Idle and caught up: nothing behind, though the slot keeps some WAL.
    let s = status_until(&f, "caught up", |s| s.lag_bytes == Some(0)).await;
    assert!(s.running() && s.active, "{s}");
    assert_eq!(s.lag_seconds, Some(0.0), "{s}");
    assert!(s.to_string().contains("running (streaming)"), "{s}");
    assert!(
        s.to_string().contains("behind: 0.0 s, 0 bytes (caught up)"),
        "{s}"
    );
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    // Stopped with a change not applied: behind by its WAL and its age.
    insert_accounts(&mut c, 100, 5).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let s = sync::status(&f.pipeline).await.unwrap();
    assert!(!s.running(), "{s}");
    assert!(s.to_string().contains("not running"), "{s}");
    assert!(s.lag_bytes.unwrap() > 0, "{s}");
    let secs = s.lag_seconds.unwrap();
    assert!((1.0..30.0).contains(&secs), "{s}");

    // A runner that holds the pipeline but is not streaming (here: waiting
    // for the table lock to update the publication) is running.
    let mut locker = f.conn().await;
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE account IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    let s = status_until(&f, "the runner's lock seen", |s| s.locked).await;
    assert!(s.running() && !s.active, "{s}");
    assert!(s.to_string().contains("running (not streaming"), "{s}");
    tx.rollback().await.unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    let s = status_until(&f, "caught up again", |s| s.lag_bytes == Some(0)).await;
    assert!(s.active && s.lag_seconds == Some(0.0), "{s}");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

/// A runner retrying its start because its target is down (a newcomer's
/// status said "not running" meanwhile: each attempt dropped the lock)
/// holds the pipeline across the retries, and status says what it
/// retries after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_a_runner_retrying_its_start_and_why() {
    let mut f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 20).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    for t in &mut f.pipeline.targets {
        if let sync::TargetSpec::ClickHouse { url, .. } = t {
            *url = "http://127.0.0.1:1".into();
        }
    }
    let (stop, run) = f.start(RunOptions::default());
    let s = status_until(&f, "the retried error seen", |s| {
        s.last_failure.is_some() && s.locked
    })
    .await;
    // Several reads over the next seconds: the lock is held throughout.
    for _ in 0..3 {
        let s = sync::status(&f.pipeline).await.expect("status");
        assert!(s.running() && !s.active, "{s}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let text = s.to_string();
    assert!(
        text.contains("running (not streaming: starting, retrying after an error at"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("INSERT"), "{text}");
    let asked = Instant::now();
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("a stop ends the wait between attempts")
        .unwrap()
        .unwrap();
    assert!(asked.elapsed() < Duration::from_secs(10));
    // Stopped cleanly: the retried error is not reported as a failed run.
    let s = sync::status(&f.pipeline).await.expect("status");
    assert!(!s.running(), "{s}");
    assert!(s.last_failure.is_none(), "{s}");
    assert!(!s.to_string().contains("last run failed"), "{s}");
}
