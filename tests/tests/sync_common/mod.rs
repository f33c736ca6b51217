//! Shared by the change-capture tests: a PostgreSQL database and a
//! ClickHouse database of the test's own, the schema's tables created from
//! the generated DDL, the pipeline built by the compiler, and clean-up of
//! the slot and publication (a forgotten slot keeps WAL forever).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sqlx::Connection;
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::sync::{self, Pipeline, RunOptions};
use strata_tests::support::{clickhouse_url, ClickHouseDb, PgDatabase};
use tokio::sync::watch;

/// The secret every test writes: it must never reach a copy.
pub const SECRET: &str = "S3CR3T-never-copied";

/// A schema with one synced entity of every kind of column, and a secret.
pub const SCHEMA: &str = r#"
version: 1
stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
  analytics: { kind: clickhouse, url: "${CLICKHOUSE_URL:http://127.0.0.1:8123}", database: sync_test, server_version: "18.16" }
entities:
  Account:
    table: account
    store: main
    key: id
    fields:
      id: { type: i64 }
      name: { type: string(40) }
      balance: decimal(20,8)
      password: secret
      tags: { type: "string[]", default: empty }
      note: { type: text, nullable: true }
      at: { type: timestamptz, nullable: true }
      born: { type: date, nullable: true }
      ok: { type: bool, default: true }
      score: { type: f64, nullable: true }
      ref: { type: uuid, nullable: true }
      doc: { type: json, nullable: true }
sync:
  - { from: Account, to: analytics }
"#;

/// One test's databases and pipeline.
pub struct Fixture {
    pub pg: PgDatabase,
    pub ch: ClickHouseDb,
    pub pipeline: Pipeline,
    pub model: strata_codegen::Model,
}

impl Fixture {
    /// Creates the databases and the source tables of `schema`.
    pub async fn new(schema: &str) -> Fixture {
        let model = strata_codegen::compile_str("schema.yaml", schema).expect("schema compiles");
        Self::from_model(model, &[]).await
    }

    /// The same for a compiled model, syncing only to the stores `to`
    /// (all when empty; the result must be one pipeline).
    pub async fn from_model(model: strata_codegen::Model, to: &[&str]) -> Fixture {
        let pg = PgDatabase::new().await;
        let ch = ClickHouseDb::new();
        let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
        let ddl = files
            .files
            .iter()
            .find(|(k, _)| k.starts_with("postgres/") && k.ends_with(".sql"))
            .map(|(_, v)| v.clone())
            .expect("postgres DDL generated");
        let mut c = pg.connect().await;
        sqlx::raw_sql(&ddl)
            .execute(&mut c)
            .await
            .expect("create source tables");
        let pipeline = Self::pipeline_of(&model, &pg, &ch, to);
        Fixture {
            pg,
            ch,
            pipeline,
            model,
        }
    }

    /// The pipeline of `model` against this fixture's databases.
    pub fn pipeline_of(
        model: &strata_codegen::Model,
        pg: &PgDatabase,
        ch: &ClickHouseDb,
        to: &[&str],
    ) -> Pipeline {
        let url = pg.url.clone();
        let urls = move |store: &str| -> Result<String, String> {
            Ok(if store == "main" {
                url.clone()
            } else {
                clickhouse_url()
            })
        };
        let mut ps = pipelines(
            model,
            &urls,
            &PipelineOptions::default()
                .with_clickhouse_database(ch.name.clone())
                .with_targets(to.iter().map(|s| s.to_string()).collect()),
        )
        .expect("pipelines");
        assert_eq!(ps.len(), 1);
        ps.remove(0)
    }

    pub async fn conn(&self) -> sqlx::PgConnection {
        self.pg.connect().await
    }

    /// Starts the engine in this process; the returned sender stops it.
    pub fn start(
        &self,
        opts: RunOptions,
    ) -> (
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<(), sync::SyncError>>,
    ) {
        let (tx, rx) = watch::channel(false);
        let p = self.pipeline.clone();
        let h = tokio::spawn(async move { sync::run(&p, opts.with_progress(false), rx).await });
        (tx, h)
    }

    /// A ClickHouse query's `TabSeparated` output.
    pub async fn ch_query(&self, q: &str) -> String {
        let resp = reqwest::Client::new()
            .post(clickhouse_url())
            .body(q.to_string())
            .send()
            .await
            .expect("ClickHouse reachable");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{q}: {text}");
        text
    }

    /// Waits until the snapshot is done and the slot has acknowledged
    /// everything written so far.
    pub async fn caught_up(&self, timeout: Duration) {
        let mut c = self.conn().await;
        let start = Instant::now();
        loop {
            let done: Option<bool> = sqlx::query_scalar(
                "SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1",
            )
            .bind(&self.pipeline.name)
            .fetch_optional(&mut c)
            .await
            .ok()
            .flatten();
            if done == Some(true) {
                break;
            }
            assert!(
                start.elapsed() < timeout,
                "the snapshot did not finish within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let target: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let slot = self.pipeline.slot(&self.pg.name);
        loop {
            let done: Option<bool> = sqlx::query_scalar(
                "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
            )
            .bind(&slot)
            .bind(&target)
            .fetch_optional(&mut c)
            .await
            .unwrap()
            .flatten();
            if done == Some(true) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "the slot did not reach {target} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the sync has caught up ([`Fixture::caught_up`], 60 s),
    /// runs `sql` on `c`, and waits until the slot has acknowledged that
    /// too: the sync has carried `sql` to the targets. `sql` goes as one
    /// simple query, so it may be a script (`BEGIN; …; COMMIT;`).
    pub async fn carry(&self, c: &mut sqlx::PgConnection, sql: &str) {
        self.caught_up(Duration::from_secs(60)).await;
        sqlx::raw_sql(sql).execute(&mut *c).await.unwrap();
        self.caught_up(Duration::from_secs(60)).await;
    }

    /// Compares the copy with the source and panics with the differences.
    pub async fn assert_equal(&self) {
        let r = sync::verify(&self.pipeline, None)
            .await
            .expect("verify runs");
        assert!(
            r.equal(),
            "copy differs: {:?} {:?}",
            r.tables,
            r.differences.iter().take(20).collect::<Vec<_>>()
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let p = self.pipeline.clone();
        let slot = p.slot(&self.pg.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                // A runner of a failed test may still hold the slot: end it.
                if let Ok(mut c) = sqlx::PgConnection::connect(&strata_tests::support::pg_admin_url()).await {
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL",
                    )
                    .bind(&slot)
                    .execute(&mut c)
                    .await;
                }
                for _ in 0..50 {
                    if sync::drop_pipeline(&p).await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            Some(())
        })
        .join();
    }
}

/// Inserts `n` accounts with ids `from..from+n`.
pub async fn insert_accounts(c: &mut sqlx::PgConnection, from: i64, n: i64) {
    sqlx::query(
        "INSERT INTO account (id, name, balance, password, tags, note, at, born, ok, score, ref, doc)
         SELECT g, 'name ' || g, g * 1.25, $3, ARRAY['a', 'b''q', 'c d'], CASE WHEN g % 3 = 0 THEN E'tab\\there\\nline' END,
                '2024-01-02 03:04:05.123456+00'::timestamptz + g * interval '1 second', DATE '2000-01-01' + (g % 1000)::int,
                g % 2 = 0, g / 7.0, CASE WHEN g % 5 = 0 THEN gen_random_uuid() END, jsonb_build_object('g', g)
         FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g",
    )
    .bind(from)
    .bind(n)
    .bind(SECRET)
    .execute(c)
    .await
    .expect("insert accounts");
}

/// Connects to the admin database (for slot checks).
pub async fn admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&strata_tests::support::pg_admin_url())
        .await
        .unwrap()
}

/// Waits (at most 60 s) until the snapshot of `pipeline` has copied at
/// least one chunk and not all: a moment to kill the runner in.
pub async fn mid_snapshot(c: &mut sqlx::PgConnection, pipeline: &str) {
    let started = Instant::now();
    loop {
        let counts: Option<(i64, i64)> = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE done), count(*) FROM strata_sync.chunks WHERE pipeline = $1",
        )
        .bind(pipeline)
        .fetch_optional(&mut *c)
        .await
        .ok()
        .flatten();
        if let Some((done, all)) = counts {
            if done >= 1 && done < all {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no snapshot in progress"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The `host:port` a `strata sync run --metrics-addr …` child (stderr
/// piped) says it serves on; the rest of its stderr is drained by a thread.
pub fn metrics_addr(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    let addr = loop {
        let line = lines.next().expect("stderr open").expect("utf-8");
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    addr
}
