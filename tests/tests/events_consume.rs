//! `strata sync consume`: two real consumer processes copy the `Ledger`
//! change events (Redis Streams, 8 partitions) into ClickHouse; they split
//! the partitions, and `kill -9` of one hands its partitions (and the
//! entries it read but never acknowledged) to the other. With writers
//! running throughout, ClickHouse ends equal to PostgreSQL by
//! `sync::verify` (rows inserted before any event existed come from the
//! group's first-start copy).

mod events_support;
mod pg_common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use events_support::{prefix, single_url, Cleanup, DDL, SECRET};
use pg_common::{strata_bin, TempDir};
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::sync::{self, Pipeline, RunOptions, TargetSpec};
use strata_tests::support::{clickhouse_url, ClickHouseDb, PgDatabase};

fn schema(prefix: &str, redis: &str, ch_db: &str) -> String {
    format!(
        r#"
version: 1
stores:
  main: {{ kind: postgres, url: "${{DATABASE_URL}}" }}
  cache: {{ kind: redis, url: "{redis}", key_prefix: {prefix} }}
  analytics: {{ kind: clickhouse, url: "{ch}", database: {ch_db}, server_version: "18.16" }}
entities:
  Ledger:
    table: ledgers
    store: main
    key: id
    events: {{ store: cache, partitions: 8, max_len: 100000 }}
    fields:
      id: i64
      owner: text
      balance: i64
      note: text?
      pin: secret
      tags: json
sync:
  - {{ from: Ledger, to: analytics }}
"#,
        ch = clickhouse_url(),
    )
}

/// A consumer process, killed when the test ends.
struct Consumer(Child);

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn consumer(
    schema: &str,
    pg: &PgDatabase,
    ch: &str,
    name: &str,
    log: &std::path::Path,
) -> Consumer {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let args = [
        "sync",
        "consume",
        schema,
        "--to",
        "analytics",
        "--group",
        "copy",
        "--consumer",
        name,
        "--database-url",
        &pg.url,
        "--clickhouse-database",
        ch,
        "--lease-ms",
        "2000",
    ];
    Consumer(
        Command::new(strata_bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start strata sync consume"),
    )
}

/// Who holds each partition's lease (one node or the Cluster).
async fn holders(url: &str, prefix: &str) -> BTreeMap<u16, String> {
    let mut out = BTreeMap::new();
    for p in 0..8u16 {
        let get = redis::cmd("GET")
            .arg(format!("{prefix}:consume:copy:Ledger:{{{p}}}:lease"))
            .clone();
        let v: Option<String> = events_support::query(url, &get).await;
        if let Some(v) = v {
            out.insert(p, v);
        }
    }
    out
}

async fn until_held(url: &str, prefix: &str, want: &[&str], secs: u64) -> BTreeMap<u16, String> {
    let start = Instant::now();
    loop {
        let h = holders(url, prefix).await;
        let names: BTreeSet<&str> = h.values().map(String::as_str).collect();
        if h.len() == 8 && names == want.iter().copied().collect() {
            return h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "leases after {secs} s: {h:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Inserts, updates and deletes until told to stop; the number of statements.
async fn writer(pool: sqlx::PgPool, next: Arc<AtomicI64>, stop: Arc<AtomicBool>, seed: i64) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = next.fetch_add(1, Ordering::SeqCst);
        let old = (id * 7 + seed) % id.max(1) + 1;
        let q = match n % 4 {
            0 | 1 => {
                sqlx::query("INSERT INTO ledgers VALUES ($1, 'w', $1, NULL, $2, '{\"k\": [1]}')")
                    .bind(id)
                    .bind(SECRET)
            }
            2 => sqlx::query("UPDATE ledgers SET balance = balance + 1, note = 'u' WHERE id = $1")
                .bind(old),
            _ => sqlx::query("DELETE FROM ledgers WHERE id = $1").bind(old),
        };
        q.execute(&pool).await.expect("write");
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    n
}

/// Waits (at most 60 s) until pipeline `name`'s snapshot is done.
async fn capture_snapshot_done(pool: &sqlx::PgPool, name: &str) {
    let start = Instant::now();
    loop {
        let done: Option<bool> =
            sqlx::query_scalar("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .ok()
                .flatten();
        if done == Some(true) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "capture's snapshot within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The schema's two pipelines against these servers: change capture into
/// the Redis streams, and the ClickHouse copy the consumers run.
fn capture_and_copy(
    model: &strata_codegen::Model,
    pg_url: &str,
    redis_url: &str,
    ch_db: &str,
) -> (Pipeline, Pipeline) {
    let (src, redis) = (pg_url.to_string(), redis_url.to_string());
    let urls = move |s: &str| -> Result<String, String> {
        Ok(match s {
            "main" => src.clone(),
            "cache" => redis.clone(),
            _ => clickhouse_url(),
        })
    };
    let opts = PipelineOptions::default().with_clickhouse_database(ch_db.to_string());
    let ps = pipelines(model, &urls, &opts).unwrap();
    (pipeline(&ps, true), pipeline(&ps, false))
}

fn pipeline(ps: &[Pipeline], redis: bool) -> Pipeline {
    ps.iter()
        .find(|p| {
            p.targets
                .iter()
                .any(|t| matches!(t, TargetSpec::Redis { .. }))
                == redis
        })
        .cloned()
        .expect("pipeline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_partitions_and_survive_a_kill_9_single_node() {
    scenario(&single_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_partitions_and_survive_a_kill_9_cluster() {
    scenario(&events_support::cluster_url()).await;
}

/// The tests of this file run one at a time: each runs change capture,
/// consumer processes and replication slots, and two at once on 2 cores
/// (their slot creations wait for each other's snapshot transactions)
/// starved the kill test in full-suite runs.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scenario(redis_url: &str) {
    let _serial = SERIAL.lock().await;
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: redis_url.to_string(),
        prefix: prefix.clone(),
    };
    let pg = PgDatabase::new().await;
    let ch = ClickHouseDb::new();
    let text = schema(&prefix, redis_url, &ch.name);
    let model = strata_codegen::compile_str("schema.yaml", &text).expect("compiles");
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(DDL).execute(&pool).await.unwrap();
    // Rows from before any event: only the group's first-start copy has them.
    sqlx::query("INSERT INTO ledgers SELECT g, 'early', g, NULL, $1, '{}' FROM generate_series(1000000, 1000299) g")
        .bind(SECRET)
        .execute(&pool)
        .await
        .unwrap();
    let ch_name = ch.name.clone();
    let (to_redis, to_ch) = capture_and_copy(&model, &pg.url, redis_url, &ch_name);

    // Change capture into the streams, in this process. Its snapshot is
    // done before the consumers start: a change committed before the
    // slot's consistent point is in no event, so a group's first copy must
    // begin after it (docs/sync.md).
    let (stop_capture, rx) = tokio::sync::watch::channel(false);
    let capture = {
        let p = to_redis.clone();
        tokio::spawn(
            async move { sync::run(&p, RunOptions::default().with_progress(false), rx).await },
        )
    };
    capture_snapshot_done(&pool, &to_redis.name).await;

    let dir = TempDir::new("events_consume");
    let file = dir.path().join("schema.yaml");
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap().to_string();
    let log = dir.path().join("consume.log");
    let mut c1 = consumer(&file, &pg, &ch_name, "c1", &log);
    let c2 = consumer(&file, &pg, &ch_name, "c2", &log);

    let (next, stop) = (
        Arc::new(AtomicI64::new(1)),
        Arc::new(AtomicBool::new(false)),
    );
    let writers: Vec<_> = (0..2)
        .map(|s| tokio::spawn(writer(pool.clone(), next.clone(), stop.clone(), s)))
        .collect();
    // Both take a share: four partitions each (a moment of five and three
    // while one gives back what is over its share is not the end state).
    let start = Instant::now();
    let c1_parts = loop {
        let split = until_held(redis_url, &prefix, &["c1", "c2"], 30).await;
        let c1_parts = split.values().filter(|v| *v == "c1").count();
        if c1_parts == 4 {
            break c1_parts;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{split:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    // kill -9 of c1 while writes go on: c2 takes everything over.
    c1.0.kill().unwrap();
    c1.0.wait().unwrap();
    let killed = Instant::now();
    until_held(redis_url, &prefix, &["c2"], 30).await;
    let takeover = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    assert!(writes > 500, "only {writes} writes");

    // ClickHouse equals PostgreSQL once c2 has caught up.
    let start = Instant::now();
    loop {
        let r = sync::verify(&to_ch, None).await.expect("verify");
        if r.equal() {
            let t = &r.tables[0];
            assert!(
                t.source_rows >= 300 && t.source_rows == t.target_rows,
                "{t:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "still different after 90 s: {:?}\n{}",
            r.differences.iter().take(5).collect::<Vec<_>>(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{writes} writes; c1 held {c1_parts} partitions; c2 took over in {takeover:?}");
    drop(c2);
    stop_capture.send(true).unwrap();
    capture.await.unwrap().expect("capture ran cleanly");
    for _ in 0..50 {
        if sync::drop_pipeline(&to_redis).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A field added while everything runs (the migration, then writes to the
/// new column, then `sync run` and `sync consume` restarted with the new
/// schema): the changes written in between were published without the
/// column, so the consumer group copies the table again at a consistent
/// point, and ClickHouse ends equal to PostgreSQL, new column included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_added_while_consuming_is_copied_again() {
    let _serial = SERIAL.lock().await;
    let prefix = prefix();
    let redis_url = single_url();
    let _cleanup = Cleanup {
        url: redis_url.clone(),
        prefix: prefix.clone(),
    };
    let pg = PgDatabase::new().await;
    let ch = ClickHouseDb::new();
    let v1 = schema(&prefix, &redis_url, &ch.name);
    let v2 = v1.replace(
        "      tags: json\n",
        "      tags: json\n      extra: text?\n",
    );
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(DDL).execute(&pool).await.unwrap();
    let build = |text: &str| {
        let model = strata_codegen::compile_str("schema.yaml", text).expect("compiles");
        capture_and_copy(&model, &pg.url, &redis_url, &ch.name)
    };
    let capture = |p: Pipeline| {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let h = tokio::spawn(async move {
            sync::run(&p, RunOptions::default().with_progress(false), rx).await
        });
        (stop, h)
    };
    let dir = TempDir::new("events_consume_added");
    let log = dir.path().join("consume.log");
    let write = |name: &str, text: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        f.to_str().unwrap().to_string()
    };
    let (f1, f2) = (write("v1.yaml", &v1), write("v2.yaml", &v2));
    let equal = |p: Pipeline, log: std::path::PathBuf| async move {
        let start = Instant::now();
        loop {
            // The consumer may not have created the copy yet: not equal.
            let r = sync::verify(&p, None).await;
            if let Ok(r) = &r {
                if r.equal() {
                    return r.tables[0].source_rows;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "still different after 60 s: {:?}\n{}",
                r.map(|r| r.differences.into_iter().take(5).collect::<Vec<_>>()),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };

    let (to_redis1, to_ch1) = build(&v1);
    let name1 = to_redis1.name.clone();
    let (stop1, run1) = capture(to_redis1);
    capture_snapshot_done(&pool, &name1).await;
    let c = consumer(&f1, &pg, &ch.name, "c1", &log);
    sqlx::query(
        "INSERT INTO ledgers SELECT g, 'o', g, NULL, $1, '{}' FROM generate_series(1, 200) g",
    )
    .bind(SECRET)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(equal(to_ch1, log.clone()).await, 200);
    // The migration, and writes to the new column while v1 still runs.
    sqlx::raw_sql("ALTER TABLE ledgers ADD COLUMN extra text; UPDATE ledgers SET extra = 'x' || id WHERE id <= 50")
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(c);
    stop1.send(true).unwrap();
    run1.await.unwrap().expect("v1 capture ran cleanly");

    // Everything restarted on v2.
    let (to_redis2, to_ch2) = build(&v2);
    let (stop2, run2) = capture(to_redis2.clone());
    let c = consumer(&f2, &pg, &ch.name, "c1", &log);
    sqlx::query("UPDATE ledgers SET extra = 'y' WHERE id = 200")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(equal(to_ch2, log.clone()).await, 200);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("gained columns; copying again"), "{text}");
    // A TRUNCATE reaches the group as a `truncate` event, which a copy fed
    // by partitions cannot carry: the consumer stops and says so, instead
    // of keeping the rows.
    let mut c = c;
    sqlx::query("TRUNCATE ledgers")
        .execute(&pool)
        .await
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = c.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the consumer stops on the TRUNCATE"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("a TRUNCATE at"), "{text}");
    drop(c);
    stop2.send(true).unwrap();
    run2.await.unwrap().expect("v2 capture ran cleanly");
    for _ in 0..50 {
        if sync::drop_pipeline(&to_redis2).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ClickHouse copy's live ids (`FINAL`, tombstones left out).
async fn ch_ids(copy: &Pipeline) -> Vec<i64> {
    let table = copy
        .targets
        .iter()
        .find_map(|t| match t {
            TargetSpec::ClickHouse { tables, .. } => tables.first().cloned(),
            _ => None,
        })
        .expect("a ClickHouse table");
    let sql = format!(
        "SELECT id FROM `{}`.`{}` FINAL WHERE _deleted = 0 ORDER BY id FORMAT TabSeparated",
        table.database, table.name
    );
    let text = reqwest::Client::new()
        .post(clickhouse_url())
        .body(sql)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().filter_map(|l| l.parse().ok()).collect()
}

/// A change event the copy cannot read (here a `balance` that is not an
/// integer, as another publisher might write) stops `sync consume`; with
/// dead letters it is set aside in `strata_sync.dead_letters` (recorded
/// before its entry is acknowledged) and the changes around it are copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_sets_a_refused_change_aside_as_a_dead_letter() {
    use strata_sdk::events::{Event, Op, Position, Publisher};
    let _serial = SERIAL.lock().await;
    let redis_url = single_url();
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: redis_url.clone(),
        prefix: prefix.clone(),
    };
    let pg = PgDatabase::new().await;
    let ch = ClickHouseDb::new();
    let text = schema(&prefix, &redis_url, &ch.name);
    let model = strata_codegen::compile_str("schema.yaml", &text).expect("compiles");
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(DDL).execute(&pool).await.unwrap();
    let (_, copy) = capture_and_copy(&model, &pg.url, &redis_url, &ch.name);
    let (pg_url, r_url) = (pg.url.clone(), redis_url.clone());
    let urls = move |s: &str| -> Result<String, String> {
        Ok(match s {
            "main" => pg_url.clone(),
            "cache" => r_url.clone(),
            _ => clickhouse_url(),
        })
    };
    let src = strata_codegen::sync_pipeline::stream_source(&model, &urls, &copy).unwrap();
    let publisher = Publisher::connect(&redis_url, &prefix).await.unwrap();
    publisher.claim_partitions("Ledger", 8).await.unwrap();
    let event = |id: i64, balance: &str| Event {
        partition: 0,
        position: Position::new(100 + id as u64, 0),
        op: Op::Insert,
        key: format!(r#"{{"id":{id}}}"#),
        row: Some(format!(
            r#"{{"id":{id},"owner":"o","balance":{balance},"note":null,"tags":{{}}}}"#
        )),
        ts_us: 0,
    };
    let events = [event(1, "1"), event(2, r#""lots""#), event(3, "3")];
    assert_eq!(
        publisher
            .append("Ledger", 100_000, false, &events)
            .await
            .unwrap(),
        3
    );

    // Without dead letters, the consumer stops at the change.
    let (_keep, rx) = tokio::sync::watch::channel(false);
    let strict = sync::ConsumeOptions::new("strict", "c1");
    let e = tokio::time::timeout(
        Duration::from_secs(60),
        sync::consume(&copy, &src, strict, rx),
    )
    .await
    .expect("the consumer stops")
    .unwrap_err();
    assert!(e.to_string().contains("balance"), "{e}");

    // With them, 1 and 3 are copied and 2 is set aside.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let lenient = sync::ConsumeOptions::new("lenient", "c1").with_dead_letters(true);
    let (p2, s2) = (copy.clone(), src.clone());
    let run = tokio::spawn(async move { sync::consume(&p2, &s2, lenient, rx).await });
    let start = Instant::now();
    while ch_ids(&copy).await != [1, 3] {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            ch_ids(&copy).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let letters: Vec<(Vec<String>, String)> =
        sqlx::query_as("SELECT key, reason FROM strata_sync.dead_letters WHERE pipeline = $1")
            .bind(&copy.name)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, ["2"]);
    assert!(letters[0].1.contains("balance"), "{letters:?}");
    tx.send(true).unwrap();
    run.await
        .unwrap()
        .expect("the lenient consumer ran cleanly");
}

/// The lock of a group's first copy (and of a recopy) is extended while
/// the copy runs, by its holder only: a copy longer than the lock's time
/// used to let another consumer start the same copy.
#[tokio::test]
async fn a_copy_lock_is_extended_by_its_holder_only() {
    use strata_sdk::sync::consume::lease::Leases;
    let redis_url = single_url();
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: redis_url.clone(),
        prefix: prefix.clone(),
    };
    let client = strata_sdk::events::Client::connect(&redis_url, &prefix)
        .await
        .unwrap();
    let ttl = Duration::from_millis(300);
    let me = Leases::new(&client, "g", "c1", ttl);
    let other = Leases::new(&client, "g", "c2", ttl);
    assert!(me.set_nx("copy:lock", ttl).await.unwrap());
    assert!(!other.set_nx("copy:lock", ttl).await.unwrap(), "held");
    assert!(!other
        .extend("copy:lock", Duration::from_secs(5))
        .await
        .unwrap());
    assert!(me
        .extend("copy:lock", Duration::from_secs(5))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(me.get("copy:lock").await.unwrap().as_deref(), Some("c1"));
    assert!(!other.set_nx("copy:lock", ttl).await.unwrap(), "still held");
}
