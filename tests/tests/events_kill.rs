//! `kill -9` of `strata sync run` while changes stream into Redis: after
//! restarts, every committed change is in the event streams exactly once
//! (the replay from the acknowledged position is refused by `XADD`, entry
//! IDs being commit positions), and a subscriber sees each once, in order.

mod events_support;
mod pg_common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_support::*;
use pg_common::{strata_bin, TempDir};
use strata_sdk::events::Position;

/// A runner process, killed when the test ends (or fails).
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether Redis holds entries past the slot's acknowledged position:
/// then the next run replays them, and `XADD` must refuse them.
async fn ahead_of_slot(f: &Fixture) -> bool {
    let db = f.pg.url.rsplit('/').next().unwrap().to_string();
    let confirmed: String = sqlx::query_scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(f.pipeline.slot(&db))
    .fetch_one(&f.pool)
    .await
    .unwrap();
    let confirmed: Position = confirmed.parse().unwrap();
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(strata_sdk::events::head_key(&f.prefix, "Ledger"))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1);
    let top: redis::streams::StreamRangeReply = query(&f.url, &cmd).await;
    let top = top
        .ids
        .first()
        .and_then(|i| Position::from_stream_id(&i.id));
    top.is_some_and(|t| t.lsn >= confirmed.lsn)
}

fn start(schema: &str, f: &Fixture, log: &std::path::Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(strata_bin())
        .args([
            "sync",
            "run",
            schema,
            "--to",
            "cache",
            "--database-url",
            &f.pg.url,
        ])
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("start strata sync run")
}

/// Updates random rows with ever larger balances; notes each committed one.
async fn writer(
    pool: sqlx::PgPool,
    next: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<(i64, i64)>>>,
) {
    let mut i = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let b = next.fetch_add(1, Ordering::SeqCst);
        let id = (b * 7919 + i) % 50 + 1;
        sqlx::query("UPDATE ledgers SET balance = $1 WHERE id = $2")
            .bind(b)
            .bind(id)
            .execute(&pool)
            .await
            .expect("update");
        done.lock().unwrap().push((id, b));
        i += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_runner_duplicates_no_event_single_node() {
    scenario(&single_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_runner_duplicates_no_event_cluster() {
    scenario(&cluster_url()).await;
}

async fn scenario(url: &str) {
    let f = Fixture::new(url).await;
    sqlx::query(
        "INSERT INTO ledgers SELECT g, 'o', 0, NULL, $1, '{}' FROM generate_series(1, 50) g",
    )
    .bind(SECRET)
    .execute(&f.pool)
    .await
    .unwrap();
    let dir = TempDir::new("events_kill");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, &f.schema).unwrap();
    let schema = schema.to_str().unwrap().to_string();
    let log = dir.path().join("sync.log");

    let mut child = Runner(start(&schema, &f, &log));
    f.snapshot_done().await;
    let (next, stop) = (
        Arc::new(AtomicI64::new(1)),
        Arc::new(AtomicBool::new(false)),
    );
    let done: Arc<Mutex<Vec<(i64, i64)>>> = Default::default();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(writer(
                f.pool.clone(),
                next.clone(),
                stop.clone(),
                done.clone(),
            ))
        })
        .collect();
    // Kills land at varied moments; one that lands between Redis taking
    // entries and the slot's status update (within 50 ms of a flush) makes
    // the restart replay them. At least 6 kills, and on until 2 of them
    // did (at most 40).
    let mut replays = 0;
    let mut round = 0u64;
    while round < 6 || (replays < 2 && round < 40) {
        tokio::time::sleep(Duration::from_millis(400 + 97 * (round % 7))).await;
        child.0.kill().expect("kill -9");
        child.0.wait().unwrap();
        replays += ahead_of_slot(&f).await as usize;
        child = Runner(start(&schema, &f, &log));
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let committed = done.lock().unwrap().clone();
    assert!(committed.len() > 500, "only {} writes", committed.len());

    // A subscriber from the start sees each committed change once, in order.
    let client = f.client().await;
    let mut sub = Box::pin(Ledger::subscribe(&client, Position::START));
    let got = tokio::select! {
        got = take(&mut sub, committed.len(), 120) => got,
        _ = async {
            while child.0.try_wait().unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        } => panic!("the runner stopped: {}", std::fs::read_to_string(&log).unwrap_or_default()),
    };
    quiet(&mut sub, 1500).await;
    let mut want: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, b) in &committed {
        want.entry(*id).or_default().push(*b);
    }
    let mut seen: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for c in &got {
        seen.entry(c.row.as_ref().unwrap().id)
            .or_default()
            .push(c.row.as_ref().unwrap().balance);
    }
    // Writers on two connections: per key, commit order is balance order
    // only per writer; compare as sets, and the stream order per key with
    // the commit order (positions) below.
    for v in want.values_mut() {
        v.sort();
    }
    let mut seen_sorted = seen.clone();
    for v in seen_sorted.values_mut() {
        v.sort();
    }
    assert_eq!(seen_sorted, want, "every committed change exactly once");
    assert!(got.windows(2).all(|w| w[0].position < w[1].position));

    // The streams hold exactly those entries (no duplicate under another ID).
    let entries = stream_texts(&f.url, &f.prefix).await;
    let data = entries
        .iter()
        .filter(|(k, _, _)| !k.ends_with(":head"))
        .count();
    assert_eq!(data, committed.len());
    assert!(entries
        .iter()
        .all(|(_, _, vals)| vals.iter().all(|v| !v.contains(SECRET))));

    assert!(
        replays > 0,
        "no kill left entries to replay: the test proved nothing"
    );
    drop(child);
    f.drop_pipeline().await;
}
