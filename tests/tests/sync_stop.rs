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
