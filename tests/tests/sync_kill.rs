//! `kill -9` at random points, 20 times, during the snapshot and during
//! streaming, with concurrent writers: after the last restart the copy
//! equals the source, by `strata sync verify` and by an independent
//! comparison of counts and sums. Some rows hold large (TOASTed) notes
//! that the writers' updates leave unchanged.

mod pg_common;
mod sync_common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_common::{strata_bin, TempDir};
use sync_common::{insert_accounts, mid_snapshot, Fixture, SCHEMA};

/// A small xorshift generator: the test needs spread, not quality.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
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
            "--database-url",
            &f.pg.url,
            "--clickhouse-database",
            &f.ch.name,
            "--chunk-rows",
            "2000",
        ])
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("start strata sync run")
}

async fn writer(url: String, next_id: Arc<AtomicI64>, stop: Arc<AtomicBool>, seed: u64) -> u64 {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut rng = Rng(seed);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let hi = next_id.load(Ordering::Relaxed);
        let r = match rng.below(6) {
            0 => {
                let id = next_id.fetch_add(3, Ordering::Relaxed);
                sqlx::query(
                    "INSERT INTO account (id, name, balance, password, note) SELECT g, 'w ' || g, g, 'x', 'new' FROM generate_series($1::bigint, $1::bigint + 2) g",
                )
                .bind(id)
                .execute(&mut c)
                .await
                .map(|_| ())
            }
            1 | 2 => sqlx::query(
                "UPDATE account SET balance = balance + 1, name = name || '+' WHERE id = $1",
            )
            .bind((rng.below(hi as u64) + 1) as i64)
            .execute(&mut c)
            .await
            .map(|_| ()),
            3 => sqlx::query("DELETE FROM account WHERE id = $1")
                .bind((rng.below(hi as u64) + 1) as i64)
                .execute(&mut c)
                .await
                .map(|_| ()),
            5 => {
                // A row of a large note (every 50th): updated (the note
                // unchanged and unsent), its key moved, then deleted, in
                // three transactions.
                let id = ((rng.below(hi as u64 / 50) + 1) * 50) as i64;
                let moved = next_id.fetch_add(1, Ordering::Relaxed);
                async {
                    sqlx::query("UPDATE account SET balance = balance + 1 WHERE id = $1")
                        .bind(id)
                        .execute(&mut c)
                        .await?;
                    sqlx::query("UPDATE account SET id = $2 WHERE id = $1")
                        .bind(id)
                        .bind(moved)
                        .execute(&mut c)
                        .await?;
                    sqlx::query("DELETE FROM account WHERE id = $1")
                        .bind(moved)
                        .execute(&mut c)
                        .await
                        .map(|_| ())
                }
                .await
            }
            _ => {
                // A multi-statement transaction touching one key twice.
                let id = (rng.below(hi as u64) + 1) as i64;
                async {
                    let mut tx = c.begin().await?;
                    sqlx::query("UPDATE account SET note = 'tx1' WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "UPDATE account SET note = 'tx2', balance = balance * 2 WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await
                }
                .await
            }
        };
        r.expect("writer statement");
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_during_snapshot_and_stream_then_verify_equal() {
    let f = Fixture::new(SCHEMA).await;
    let dir = TempDir::new("sync_kill");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let schema = schema.to_str().unwrap().to_string();
    let log = dir.path().join("sync.log");
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 40_000).await;
    // Large notes (9,600 characters, stored out of line): the writers'
    // updates leave them unchanged and unsent, so a replay after a kill
    // meets keys the copy already deleted (the newcomer's fault: such a
    // run failed on every restart).
    sqlx::query("UPDATE account SET note = (SELECT string_agg(md5(id::text || '-' || g), '') FROM generate_series(1, 300) g) WHERE id % 50 = 0")
        .execute(&mut c)
        .await
        .unwrap();

    let next_id = Arc::new(AtomicI64::new(40_001));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|i| {
            tokio::spawn(writer(
                f.pg.url.clone(),
                next_id.clone(),
                stop.clone(),
                0x9E37_79B9_7F4A_7C15 ^ i,
            ))
        })
        .collect();

    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D ^ std::process::id() as u64);
    let mut killed_in_snapshot = 0;
    for round in 0..20 {
        let mut child = start(&schema, &f, &log);
        if round == 0 {
            // The first kill lands in the snapshot for sure: once a chunk
            // is copied and others are not (a fast machine may finish the
            // snapshot before any random delay).
            mid_snapshot(&mut c, &f.pipeline.name).await;
        } else {
            tokio::time::sleep(Duration::from_millis(300 + rng.below(1_700))).await;
        }
        let done: Option<bool> =
            sqlx::query_scalar("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
                .bind(&f.pipeline.name)
                .fetch_optional(&mut c)
                .await
                .ok()
                .flatten();
        if done != Some(true) {
            killed_in_snapshot += 1;
        }
        child.kill().expect("kill -9");
        child.wait().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }

    // The last run: catch up, stop with SIGTERM, verify.
    let mut child = start(&schema, &f, &log);
    f.caught_up(Duration::from_secs(180)).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "SIGTERM did not stop the run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "the run stopped with {status}: {log_text}"
    );

    let out = Command::new(strata_bin())
        .args([
            "sync",
            "verify",
            &schema,
            "--database-url",
            &f.pg.url,
            "--clickhouse-database",
            &f.ch.name,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("equal"), "{stdout}");

    // An independent comparison: counts and sums on each side.
    let (n, sum, names): (i64, String, i64) = sqlx::query_as(
        "SELECT count(*), sum(balance)::text, sum(length(name))::bigint FROM account",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let ch = f
        .ch_query(&format!(
            "SELECT count(), toString(sum(balance)), sum(lengthUTF8(name)) FROM `{}`.account_current FORMAT TSV",
            f.ch.name
        ))
        .await;
    let parts: Vec<&str> = ch.trim().split('\t').collect();
    assert_eq!(parts[0].parse::<i64>().unwrap(), n);
    assert_eq!(
        parts[1]
            .parse::<rust_decimal::Decimal>()
            .unwrap()
            .normalize(),
        sum.parse::<rust_decimal::Decimal>().unwrap().normalize()
    );
    assert_eq!(parts[2].parse::<i64>().unwrap(), names);
    eprintln!(
        "20 kills ({killed_in_snapshot} during the snapshot), {writes} writer statements, {n} rows equal"
    );
    assert!(killed_in_snapshot >= 1, "no kill landed in the snapshot");
    assert!(writes > 100, "the writers ran ({writes} statements)");
}
