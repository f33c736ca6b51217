//! A nullable field added to a synced entity.
//!
//! By the generated migration (`strata migrate diff`): the migration lists
//! the column in the sync's publication in its own transaction, the
//! running sync stops before the first change carrying it
//! (`SyncError::SchemaReload`), `strata sync run` re-reads the schema and
//! goes on in the same process, the ClickHouse column is added in place,
//! and the table is **not** copied again. A secret field added stays out
//! of the publication.
//!
//! By a hand-written migration (the publication does not list the column
//! until the sync restarts with the new schema): the ClickHouse column is
//! added in place, the publication lists it, the table is copied again
//! (values written to the field before the restart arrive too), the sync
//! carries on, and the copy equals the source. Also: an entity added to
//! the `sync:` rules after the first snapshot gets its existing rows
//! copied.

mod pg_common;
mod sync_common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_common::{strata_bin, TempDir};
use strata_codegen::postgres::{catalog::catalog, diff::DiffOptions, migration};
use strata_sdk::sync::{RunOptions, SyncError};
use sync_common::{insert_accounts, Fixture, SCHEMA};

/// The schema with a nullable field `extra` added to `Account`, and
/// (with `secret`) a secret field `pin`.
fn with_extra(secret: bool) -> String {
    let pin = if secret {
        "      pin: { type: secret, nullable: true }\n"
    } else {
        ""
    };
    let v2 = SCHEMA.replace(
        "      doc: { type: json, nullable: true }\n",
        &format!("      doc: {{ type: json, nullable: true }}\n      extra: {{ type: text, nullable: true }}\n{pin}"),
    );
    assert_ne!(v2, SCHEMA);
    v2
}

/// The migration `strata migrate diff` writes from schema `v1` to `v2`
/// (one file: the main transaction).
fn generated_migration(v1: &str, v2: &str) -> String {
    let m1 = strata_codegen::compile_str("schema.yaml", v1).unwrap();
    let m2 = strata_codegen::compile_str("schema.yaml", v2).unwrap();
    let main = |m: &strata_codegen::Model| m.store_id("main").unwrap();
    let (old, new) = (catalog(&m1, main(&m1)), catalog(&m2, main(&m2)));
    let plan = migration::plan(&old, &new, &DiffOptions::default(), false).unwrap();
    let files = migration::files(&plan, 2, "add_extra", &new).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].sql.clone()
}

/// Applies a migration as `strata migrate apply` does: in one transaction.
async fn apply(c: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .execute(c)
        .await
        .unwrap();
}

/// The columns publication `publication` lists of table `account`.
async fn published(c: &mut sqlx::PgConnection, publication: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT unnest(attnames)::text FROM pg_publication_tables WHERE pubname = $1 AND tablename = 'account'",
    )
    .bind(publication)
    .fetch_all(c)
    .await
    .unwrap()
}

/// The snapshot chunks recorded for the pipeline: a second copy plans
/// them again (new rows, another snapshot's `xmin`).
async fn chunks(c: &mut sqlx::PgConnection, pipeline: &str) -> Vec<(i32, i32, Option<i64>, bool)> {
    sqlx::query_as(
        "SELECT tbl, chunk, snap_xmin, done FROM strata_sync.chunks WHERE pipeline = $1 ORDER BY tbl, chunk",
    )
    .bind(pipeline)
    .fetch_all(c)
    .await
    .unwrap()
}

/// How many copies of the table ClickHouse holds: row versions shared by
/// at least `n` rows (a copy writes every row at one version; a streamed
/// transaction of this test writes fewer).
async fn copies(f: &Fixture, n: u32) -> String {
    f.ch_query(&format!(
        "SELECT count() FROM (SELECT _version, count() AS n FROM `{}`.account GROUP BY _version HAVING n >= {n}) FORMAT TSV",
        f.ch.name
    ))
    .await
    .trim()
    .to_string()
}

/// Inserts and updates accounts until `stop`; once `migrated`, writes
/// `extra` too (inserts and updates of older rows).
async fn writer(
    url: String,
    next_id: Arc<AtomicI64>,
    migrated: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> u64 {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let sql = if migrated.load(Ordering::Relaxed) {
            "INSERT INTO account (id, name, balance, password, extra) VALUES ($1, 'w', 1, 'x', 'new ' || $1);
             UPDATE account SET balance = balance + 1, extra = 'upd ' || $1 WHERE id = $1 - 100"
        } else {
            "INSERT INTO account (id, name, balance, password) VALUES ($1, 'w', 1, 'x');
             UPDATE account SET balance = balance + 1 WHERE id = $1 - 100"
        };
        // Two statements, one transaction each (bound parameters need the
        // extended protocol: one statement at a time).
        for st in sql.split(';') {
            sqlx::query(st).bind(id).execute(&mut c).await.unwrap();
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

/// The generated migration's publication step, the typed stop of a
/// library run, the run again with the old schema (stops at once, the
/// publication untouched), with the new one (no second copy), and a secret
/// field kept out of the publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_migration_keeps_the_publication_in_step_and_the_library_run_stops_for_a_reload(
) {
    let mut f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 300).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    let publication = f.pipeline.publication();
    let before = chunks(&mut c, &f.pipeline.name).await;
    assert!(!before.is_empty());

    let v2 = with_extra(true);
    let sql = generated_migration(SCHEMA, &v2);
    assert!(
        sql.contains("ADD COLUMN \"extra\" text") && sql.contains("ADD COLUMN \"pin\" text"),
        "{sql}"
    );
    assert!(sql.contains("'strata_main_analytics'"), "{sql}");
    assert!(sql.contains("ARRAY['extra']::name[]"), "{sql}");
    assert!(!sql.contains("'pin'"), "a secret is never published: {sql}");
    let before_migration: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    apply(&mut c, &sql).await;
    let migrated_at: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let cols = published(&mut c, &publication).await;
    assert!(cols.contains(&"extra".to_string()), "{cols:?}");
    assert!(!cols.contains(&"pin".to_string()), "{cols:?}");
    assert!(!cols.contains(&"password".to_string()), "{cols:?}");

    sqlx::query("UPDATE account SET extra = 'after ' || id, pin = 'S3CR3T' WHERE id <= 10")
        .execute(&mut c)
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops at the first change carrying the column")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&e, SyncError::SchemaReload { table, column } if table == "account" && column == "extra"),
        "{e}"
    );
    drop(stop);
    // What pgoutput sent: decoded again from a temporary copy of the slot
    // (the slot itself does not move), the first Relation message of
    // `account` that lists `extra` comes after the migration's commit.
    sqlx::query("SELECT pg_copy_logical_replication_slot($1, 'strata_test_peek', true)")
        .bind(f.pipeline.slot(&f.pg.name))
        .execute(&mut c)
        .await
        .unwrap();
    let messages: Vec<(String, bool, Vec<u8>)> = sqlx::query_as(
        "SELECT lsn::text, lsn > $2::pg_lsn, data FROM pg_logical_slot_peek_binary_changes('strata_test_peek', NULL, NULL, 'proto_version', '1', 'publication_names', $1)",
    )
    .bind(&publication)
    .bind(&migrated_at)
    .fetch_all(&mut c)
    .await
    .unwrap();
    let relations: Vec<&(String, bool, Vec<u8>)> = (messages.iter())
        .filter(|(_, _, d)| d.first() == Some(&b'R') && d.windows(8).any(|w| w == b"account\0"))
        .collect();
    let with_extra = |d: &[u8]| d.windows(6).any(|w| w == b"extra\0");
    assert!(
        relations
            .iter()
            .any(|(_, after, d)| *after && with_extra(d)),
        "no Relation with `extra` after {migrated_at} (before: {before_migration}): {relations:?}"
    );
    assert!(
        relations
            .iter()
            .all(|(_, after, d)| *after || !with_extra(d)),
        "a Relation with `extra` before the migration committed: {relations:?}"
    );
    assert!(
        (messages.iter()).all(|(_, _, d)| !d.windows(6).any(|w| w == b"S3CR3T")),
        "a secret reached the stream"
    );
    // Not recorded as a failure: the caller runs again at once.
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    assert!(status.last_failure.is_none(), "{status}");

    // The same (old) pipeline again: it cannot carry the column, so it
    // stops at once, and leaves the publication as the migration made it.
    let (_stop, run) = f.start(RunOptions::default());
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("stops again")
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SyncError::SchemaReload { .. }), "{e}");
    assert!(published(&mut c, &publication)
        .await
        .contains(&"extra".to_string()));

    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (stop, run) = f.start(RunOptions::default());
    f.carry(&mut c, "UPDATE account SET extra = 'later' WHERE id = 11")
        .await;
    f.assert_equal().await;
    let rows = f
        .ch_query(&format!(
            "SELECT id, extra FROM `{}`.account_current WHERE id IN (1, 10, 11, 12) ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(rows, "1\tafter 1\n10\tafter 10\n11\tlater\n12\t\\N\n");
    assert_eq!(copies(&f, 300).await, "1", "the table was copied again");
    assert_eq!(
        chunks(&mut c, &f.pipeline.name).await,
        before,
        "chunks planned again"
    );
    let ch_cols = f
        .ch_query(&format!(
            "SELECT name FROM system.columns WHERE database = '{}' AND table = 'account' AND name IN ('extra', 'pin', 'password') FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(ch_cols, "extra\n");
    let cols = published(&mut c, &publication).await;
    assert!(
        cols.contains(&"extra".to_string()) && !cols.contains(&"pin".to_string()),
        "{cols:?}"
    );
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

/// `strata sync run` with writers inserting and updating throughout: the
/// generated migration is applied and the schema file updated while it
/// runs; the process re-reads the schema and goes on (it does not exit),
/// the values written after the migration reach ClickHouse, the table is
/// not copied again, and `verify` finds the copy equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_sync_run_rereads_the_schema_and_carries_on_without_a_new_copy() {
    let mut f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 500).await;
    let dir = TempDir::new("sync_addcol");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let log = dir.path().join("sync.log");
    let mut child = Command::new(strata_bin())
        .args([
            "sync",
            "run",
            schema.to_str().unwrap(),
            "--database-url",
            &f.pg.url,
            "--clickhouse-database",
            &f.ch.name,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start strata sync run");
    f.caught_up(Duration::from_secs(120)).await;
    let before = chunks(&mut c, &f.pipeline.name).await;

    let next_id = Arc::new(AtomicI64::new(10_000));
    let (migrated, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let w = tokio::spawn(writer(
        f.pg.url.clone(),
        next_id.clone(),
        migrated.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v2 = with_extra(false);
    // The schema file first, as a deployment would; the migration second.
    std::fs::write(&schema, &v2).unwrap();
    apply(&mut c, &generated_migration(SCHEMA, &v2)).await;
    migrated.store(true, Ordering::Relaxed);
    let first_after = next_id.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = w.await.unwrap();
    assert!(writes > 50, "{writes} writes");
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    f.caught_up(Duration::from_secs(120)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run exited: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    f.assert_equal().await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("re-reading the schema"), "{text}");
    assert!(text.contains("without copying the table again"), "{text}");
    assert!(!text.contains("copying it again"), "{text}");
    // Values written after the migration are in the copy.
    let (pg_n,): (i64,) = sqlx::query_as("SELECT count(*) FROM account WHERE extra IS NOT NULL")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(pg_n > 50, "{pg_n}");
    let ch_n = f
        .ch_query(&format!(
            "SELECT count() FROM `{}`.account_current WHERE extra IS NOT NULL AND id >= {first_after} FORMAT TSV",
            f.ch.name
        ))
        .await;
    let (pg_after,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM account WHERE extra IS NOT NULL AND id >= $1")
            .bind(first_after)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(ch_n.trim(), pg_after.to_string());
    assert_eq!(
        copies(&f, 500).await,
        "1",
        "the table was copied again: {text}"
    );
    assert_eq!(
        chunks(&mut c, &f.pipeline.name).await,
        before,
        "chunks planned again"
    );

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
    assert!(
        status.success(),
        "{status}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// A hand-written migration (`ALTER TABLE … ADD COLUMN` alone): the
/// publication does not list the column until the restart, so the table is
/// copied again, as before the generated migrations kept the publication in
/// step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_migration_adds_the_clickhouse_column_and_the_table_is_copied_again() {
    let mut f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 200).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;

    // The migration runs while the old sync still streams.
    sqlx::query("ALTER TABLE account ADD COLUMN extra text")
        .execute(&mut c)
        .await
        .unwrap();
    insert_accounts(&mut c, 1_000, 10).await;
    // Values written before the sync knows the field: the old publication
    // does not carry them, so the restart copies the table again.
    sqlx::query("UPDATE account SET extra = 'early ' || id WHERE id <= 20")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let v2 = with_extra(false);
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (stop, run) = f.start(RunOptions::default());
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::raw_sql("UPDATE account SET extra = 'set ' || id WHERE id % 2 = 0; INSERT INTO account (id, name, balance, password, extra) VALUES (5000, 'n', 1, 'x', 'new row')")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    let cols = f
        .ch_query(&format!(
            "SELECT name, type FROM system.columns WHERE database = '{}' AND table = 'account' AND name = 'extra' FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(cols, "extra\tNullable(String)\n");
    let rows = f
        .ch_query(&format!(
            "SELECT id, extra FROM `{}`.account_current WHERE id IN (2, 3, 5000) ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(rows, "2\tset 2\n3\tearly 3\n5000\tnew row\n");
    let early = f
        .ch_query(&format!(
            "SELECT extra FROM `{}`.account_current WHERE id IN (1, 20) ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(early, "early 1\nset 20\n");
    // Two copies: the first snapshot (200 rows at its consistent point)
    // and the second (210 rows at the temporary slot's); every streamed
    // transaction wrote fewer rows.
    let copies = f
        .ch_query(&format!(
            "SELECT count() FROM (SELECT _version, count() AS n FROM `{}`.account GROUP BY _version HAVING n >= 200) FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(copies.trim(), "2");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

const LEDGER: &str = "  Ledger:
    table: ledger
    store: main
    key: id
    fields:
      id: { type: i64 }
      amount: decimal(20,8)
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_added_to_the_sync_rules_gets_its_rows_copied() {
    let v1 = SCHEMA.replace("sync:\n", &format!("{LEDGER}sync:\n"));
    let mut f = Fixture::new(&v1).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 50).await;
    sqlx::query("INSERT INTO ledger SELECT g, g * 0.5 FROM generate_series(1, 300) g")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    sqlx::query("UPDATE ledger SET amount = 7 WHERE id = 1")
        .execute(&mut c)
        .await
        .unwrap();

    let v2 = v1.replace(
        "  - { from: Account, to: analytics }\n",
        "  - { from: Account, to: analytics }\n  - { from: Ledger, to: analytics }\n",
    );
    assert_ne!(v2, v1);
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (stop, run) = f.start(RunOptions::default().with_chunk_rows(64));
    f.carry(&mut c, "DELETE FROM ledger WHERE id = 2").await;
    f.assert_equal().await;
    let n = f
        .ch_query(&format!(
            "SELECT count(), sum(toFloat64(amount)) FROM `{}`.ledger_current FORMAT TSV",
            f.ch.name
        ))
        .await;
    // 299 rows: 1..300 without 2; amounts 0.5·(sum 1..300 − 1 − 2) + 7.
    assert_eq!(n, "299\t22580.5\n");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

const LOANS: &str = r#"
version: 1
stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
  analytics: { kind: clickhouse, url: "${CLICKHOUSE_URL:http://127.0.0.1:8123}", database: sync_test, server_version: "18.16" }
entities:
  Loan:
    table: loan
    store: main
    key: id
    fields:
      id: { type: i64 }
      qty: { type: i32 }
      note: { type: text, nullable: true }
sync:
  - { from: Loan, to: analytics }
"#;

/// A field whose type changed (`i32` → `i64`). PostgreSQL refuses to
/// retype a column a publication lists; taken out of it by hand, the column
/// altered, the run refuses to write RowBinary of the new type into the old
/// ClickHouse column, naming the column and `strata sync recopy`; the
/// recopy moves the old table aside (and takes the table out of the
/// publication again), and the next run creates the new shape and copies
/// the rows again, equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retyped_field_stops_the_table_until_it_is_copied_again_into_a_new_table() {
    let mut f = Fixture::new(LOANS).await;
    let mut c = f.conn().await;
    sqlx::raw_sql("INSERT INTO loan SELECT g, g, 'n' || g FROM generate_series(1, 50) g")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let retype = "ALTER TABLE loan ALTER COLUMN qty TYPE bigint";
    let e = sqlx::query(retype).execute(&mut c).await.unwrap_err();
    assert!(e.to_string().contains("publication"), "{e}");
    let publication = f.pipeline.publication();
    sqlx::raw_sql(&format!(
        "ALTER PUBLICATION \"{publication}\" DROP TABLE loan; {retype}; UPDATE loan SET qty = 5000000000 + id WHERE id <= 5"
    ))
    .execute(&mut c)
    .await
    .unwrap();
    let v2 = LOANS.replace("qty: { type: i32 }", "qty: { type: i64 }");
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (_stop, run) = f.start(RunOptions::default());
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops on the changed shape")
        .unwrap()
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`qty`") && text.contains("Int32") && text.contains("strata sync recopy"),
        "{text}"
    );
    let before = f
        .ch_query(&format!(
            "SELECT max(qty) FROM `{}`.loan FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(before.trim(), "50", "nothing of the new shape was written");
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    let (error, _) = status
        .last_failure
        .clone()
        .expect("the failure is recorded");
    assert!(error.contains("`qty`"), "{error}");
    assert!(
        status.to_string().contains("last run failed at"),
        "{status}"
    );

    let done = strata_sdk::sync::recopy_entities(&f.pipeline, &["Loan".to_string()])
        .await
        .unwrap();
    assert_eq!(
        done.len(),
        2,
        "moved aside, out of the publication: {done:?}"
    );
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    assert_eq!(status.unpublished, ["loan"], "{status}");
    // Out of the publication, the column can change again.
    sqlx::query("ALTER TABLE loan ALTER COLUMN note TYPE varchar(100)")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.carry(&mut c, "UPDATE loan SET qty = 7000000000 WHERE id = 50")
        .await;
    f.assert_equal().await;
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    assert!(
        status.unpublished.is_empty() && status.last_failure.is_none(),
        "{status}"
    );
    let tables = f
        .ch_query(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND name LIKE 'loan\\_\\_replaced\\_%' FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(tables.lines().count(), 1, "the old table is kept: {tables}");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

/// A field with a schema default, by the generated migration: PostgreSQL
/// fills the existing rows without any change in the WAL, so although the
/// publication listed the column from the migration on, the table is
/// copied again (and its untouched rows hold the default in ClickHouse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_with_a_default_is_copied_again_even_by_the_generated_migration() {
    let mut f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 200).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    let v2 = SCHEMA.replace(
        "      doc: { type: json, nullable: true }\n",
        "      doc: { type: json, nullable: true }\n      extra: { type: text, nullable: true, default: \"dflt\" }\n",
    );
    assert_ne!(v2, SCHEMA);
    apply(&mut c, &generated_migration(SCHEMA, &v2)).await;
    sqlx::query("UPDATE account SET extra = 'set' WHERE id = 1")
        .execute(&mut c)
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops at the new column")
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SyncError::SchemaReload { .. }), "{e}");
    drop(stop);
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    assert_eq!(copies(&f, 200).await, "2", "the table was not copied again");
    let rows = f
        .ch_query(&format!(
            "SELECT id, extra FROM `{}`.account_current WHERE id IN (1, 2) ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(rows, "1\tset\n2\tdflt\n");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

/// The generated migration applied while `strata sync run` runs with a
/// schema file that lacks the field: the process re-reads the file, finds
/// no such field, and the pipeline stops with an error naming the table
/// and the column and saying to add the field (exit 1, its only pipeline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_sync_run_stops_naming_the_column_when_the_schema_file_lacks_the_field() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 20).await;
    let dir = TempDir::new("sync_addcol_stale");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let mut child = Command::new(strata_bin())
        .args([
            "sync",
            "run",
            schema.to_str().unwrap(),
            "--database-url",
            &f.pg.url,
            "--clickhouse-database",
            &f.ch.name,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata sync run");
    f.caught_up(Duration::from_secs(120)).await;
    apply(&mut c, &generated_migration(SCHEMA, &with_extra(false))).await;
    sqlx::query("UPDATE account SET extra = 'x' WHERE id = 1")
        .execute(&mut c)
        .await
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("re-reading the schema")
            && err.contains("`account` gained column `extra`")
            && err.contains("add the field to the schema"),
        "{err}"
    );
}
