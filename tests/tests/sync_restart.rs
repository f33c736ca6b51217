//! Acknowledged position, restarts and faults: a stopped sync resumes from
//! its slot; a run dropped mid-snapshot resumes at chunk granularity; a
//! second runner waits and takes over when the first dies; a target down
//! holds the position and loses nothing.

mod sync_common;

use std::time::{Duration, Instant};

use strata_sdk::sync::{self, RunOptions};
use strata_tests::support::{clickhouse_url, Gate, GateMode};
use sync_common::{insert_accounts, Fixture, SCHEMA};

async fn slot_pid(f: &Fixture) -> Option<i32> {
    let mut c = f.conn().await;
    sqlx::query_scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1")
        .bind(f.pipeline.slot(&f.pg.name))
        .fetch_optional(&mut c)
        .await
        .unwrap()
        .flatten()
}

async fn confirmed_ge(f: &Fixture, lsn: &str) -> bool {
    let mut c = f.conn().await;
    sqlx::query_scalar(
        "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(f.pipeline.slot(&f.pg.name))
    .bind(lsn)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sync_resumes_from_its_acknowledged_position() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 300).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    // Written while no sync runs: kept by the slot.
    insert_accounts(&mut c, 1_000, 300).await;
    sqlx::raw_sql("UPDATE account SET name = 'while stopped' WHERE id % 4 = 0; DELETE FROM account WHERE id % 9 = 0")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    // No second snapshot: the table holds one snapshot row per first key.
    let snap = f
        .ch_query(&format!(
            "SELECT uniqExact(id) FROM `{}`.account WHERE _version = (SELECT min(_version) FROM `{}`.account) FORMAT TSV",
            f.ch.name, f.ch.name
        ))
        .await;
    assert_eq!(snap.trim(), "300");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_dropped_during_the_snapshot_resumes_at_the_first_chunk_not_done() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 30_000).await;
    let (_stop, run) = f.start(RunOptions::default().with_chunk_rows(1_000));
    // Crash once a few chunks are recorded done.
    let start = Instant::now();
    let done_before = loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM strata_sync.chunks WHERE pipeline = $1 AND done",
        )
        .bind(&f.pipeline.name)
        .fetch_one(&mut c)
        .await
        .unwrap_or(0);
        if n >= 3 {
            run.abort();
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no chunk finished"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = run.await;
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM strata_sync.chunks WHERE pipeline = $1")
            .bind(&f.pipeline.name)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert!(
        done_before < total,
        "the crash came before the snapshot ended"
    );
    // Changes between the crash and the restart: the stream replays them
    // over rows copied from a fresh snapshot.
    sqlx::raw_sql("UPDATE account SET balance = balance + 1 WHERE id % 10 = 0; DELETE FROM account WHERE id % 13 = 0")
        .execute(&mut c)
        .await
        .unwrap();
    insert_accounts(&mut c, 100_000, 100).await;

    let (stop, run) = f.start(RunOptions::default().with_chunk_rows(1_000));
    f.caught_up(Duration::from_secs(120)).await;
    f.assert_equal().await;
    let s = sync::status(&f.pipeline).await.unwrap();
    assert_eq!(s.tables[0].chunks_done, total, "{s}");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_runner_waits_and_takes_over_when_the_first_dies() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 100).await;
    let (_stop_a, run_a) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    let pid_a = slot_pid(&f).await.expect("runner A streams");

    let (stop_b, run_b) = f.start(RunOptions::default());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!run_b.is_finished(), "B waits, it does not fail");
    assert_eq!(slot_pid(&f).await, Some(pid_a), "A still owns the slot");

    // A dies (its connections close with it); B takes over within seconds.
    run_a.abort();
    let _ = run_a.await;
    let died = Instant::now();
    insert_accounts(&mut c, 500, 100).await;
    f.caught_up(Duration::from_secs(30)).await;
    assert!(
        died.elapsed() < Duration::from_secs(15),
        "took over in {:?}",
        died.elapsed()
    );
    let pid_b = slot_pid(&f).await.expect("runner B streams");
    assert_ne!(pid_a, pid_b);
    f.assert_equal().await;
    stop_b.send(true).unwrap();
    run_b.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_holds_the_position_and_the_sync_catches_up() {
    let mut f = Fixture::new(SCHEMA).await;
    let gate = Gate::new(&clickhouse_url(), GateMode::Open).await;
    for t in &mut f.pipeline.targets {
        if let sync::TargetSpec::ClickHouse { url, .. } = t {
            *url = gate.url.clone();
        }
    }
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 100).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;

    gate.set(GateMode::Closed);
    let before = gate.accepted();
    insert_accounts(&mut c, 1_000, 500).await;
    sqlx::query("DELETE FROM account WHERE id < 50")
        .execute(&mut c)
        .await
        .unwrap();
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        gate.accepted() > before + 1,
        "the sync retried the refused insert"
    );
    assert!(
        !confirmed_ge(&f, &written).await,
        "the slot moved past writes no target holds"
    );

    gate.set(GateMode::Open);
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

/// The page of account `id`'s visible row.
async fn page_of(c: &mut sqlx::PgConnection, id: i64) -> i64 {
    sqlx::query_scalar("SELECT (ctid::text::point)[0]::bigint FROM account WHERE id = $1")
        .bind(id)
        .fetch_one(c)
        .await
        .unwrap()
}

/// A resumed snapshot reads again the rows that moved into chunks done
/// before the crash. Here an update carries a row with a large (TOASTed)
/// value from a chunk not yet copied to a done one: the resumed run does
/// not read its old chunk's pages for it, and the stream, whose update
/// leaves the large value out, cannot rebuild the row without a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_moved_into_a_done_chunk_after_a_crash_is_copied_again() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 30_000).await;
    // A large value stored out of line on the last row (the last pages),
    // and a row of 1.5 KB that only an emptied page has room for.
    sqlx::query("ALTER TABLE account ALTER COLUMN note SET STORAGE EXTERNAL")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("UPDATE account SET note = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g), tags = ARRAY(SELECT md5(g::text) FROM generate_series(1, 45) g) WHERE id = 30000")
        .execute(&mut c)
        .await
        .unwrap();
    // Room on the first pages for the row to move to.
    sqlx::query("DELETE FROM account WHERE id <= 300")
        .execute(&mut c)
        .await
        .unwrap();
    // VACUUM frees their space once no snapshot sees them (a standby's
    // feedback can hold them for a few seconds); INDEX_CLEANUP ON, since
    // a VACUUM that skips the indexes for a few dead rows leaves their
    // pages out of the free space map.
    let start = Instant::now();
    loop {
        sqlx::query("VACUUM (INDEX_CLEANUP ON) account")
            .execute(&mut c)
            .await
            .unwrap();
        let dead: i64 = sqlx::query_scalar("SELECT pg_stat_get_dead_tuples('account'::regclass)")
            .fetch_one(&mut c)
            .await
            .unwrap();
        if dead == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "VACUUM left {dead} dead rows"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let opts = RunOptions::default().with_chunk_rows(1_000);
    let (_stop, run) = f.start(opts.clone());
    let start = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM strata_sync.chunks WHERE pipeline = $1 AND done",
        )
        .bind(&f.pipeline.name)
        .fetch_one(&mut c)
        .await
        .unwrap_or(0);
        if n >= 3 {
            run.abort();
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no chunk finished"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = run.await;
    let done: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT lo_page, hi_page FROM strata_sync.chunks WHERE pipeline = $1 AND done",
    )
    .bind(&f.pipeline.name)
    .fetch_all(&mut c)
    .await
    .unwrap();
    let in_done = |page: i64| {
        done.iter()
            .any(|(lo, hi)| page >= *lo && hi.is_none_or(|h| page < h))
    };
    assert!(
        !in_done(page_of(&mut c, 30_000).await),
        "the row's chunk was copied before the crash"
    );
    // An old snapshot held open keeps pruning from making room on the
    // row's page: updates fill it until one lands on a page with room.
    let mut holder = f.conn().await;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut holder)
        .await
        .unwrap();
    sqlx::query("SELECT count(*) FROM account")
        .execute(&mut holder)
        .await
        .unwrap();
    // Each update on a new connection: a server process that inserted
    // keeps extending the table instead of asking the free space map.
    let mut moved = false;
    for _ in 0..500 {
        sqlx::query("UPDATE account SET balance = balance + 1 WHERE id = 30000")
            .execute(&mut f.conn().await)
            .await
            .unwrap();
        if in_done(page_of(&mut c, 30_000).await) {
            moved = true;
            break;
        }
    }
    assert!(moved, "no update moved the row into a done chunk");
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    let (stop, run) = f.start(opts);
    f.caught_up(Duration::from_secs(120)).await;
    f.assert_equal().await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

/// The progress of a copy made again (a recopy, an entity new to the
/// rules) counts only the tables being copied: a newcomer's bar read
/// 261284/261284 for a 211,284-row table, the other table's done rows
/// included. Here table 0 is done and table 1 (planned by hand) has one
/// chunk done (10 rows) and one to copy (about 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_of_a_copy_made_again_counts_only_its_tables() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 500).await;
    let (stop, run) = f.start(RunOptions::default().with_chunk_rows(100));
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    sqlx::query(
        "INSERT INTO strata_sync.chunks (pipeline, tbl, chunk, lo_page, hi_page, est_rows, copied_rows, done, snap_xmin)
         VALUES ($1, 1, 0, 0, 1, 12, 10, true, 1), ($1, 1, 1, 1, NULL, 20, NULL, false, NULL)",
    )
    .bind(&f.pipeline.name)
    .execute(&mut c)
    .await
    .unwrap();
    let (todo, done, total) = strata_sdk::sync::snapshot::remaining(&mut c, &f.pipeline)
        .await
        .unwrap();
    assert_eq!((done, total), (10, 30));
    let chunks: Vec<(usize, i32, bool)> = (todo.iter())
        .map(|ch| (ch.table, ch.chunk, ch.again.is_some()))
        .collect();
    // The chunk to copy first, then the done one read again (resuming).
    assert_eq!(chunks, [(1, 1, false), (1, 0, true)]);
}
