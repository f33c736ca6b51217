//! The migration runner on a real database: concurrent runs apply each
//! migration exactly once; an edited or missing applied migration is refused;
//! no-transaction migrations run statement by statement.

mod pg_common;

use pg_common::{root, strata, TempDir, TestDb};
use strata_sdk::migrate::{MigrateError, MigrationState, Migrations, Migrator};

/// The trading migrations plus three that leave a trace of each run.
fn migrations_dir() -> TempDir {
    let dir = TempDir::new("runner");
    for e in std::fs::read_dir(root().join("generated/migrations")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let extra = [
        (
            "0101_probe.sql",
            "CREATE TABLE probe (n int NOT NULL);\nINSERT INTO probe VALUES (101);\n",
        ),
        (
            "0102_concurrent.sql",
            "-- strata:no-transaction\nINSERT INTO probe VALUES (102);\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS live_order_notes_idx ON live_order (notes);\n",
        ),
        ("0103_more.sql", "INSERT INTO probe VALUES (103);\n"),
    ];
    for (name, sql) in extra {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    dir
}

#[tokio::test]
async fn four_concurrent_runs_apply_each_migration_once() {
    let db = TestDb::new().await;
    let dir = migrations_dir();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let total = migrations.len();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (migrations, url) = (migrations.clone(), db.url.clone());
        tasks.push(tokio::spawn(async move {
            let m = Migrator::new(migrations);
            if i % 2 == 0 {
                let mut conn = strata_sdk::migrate::connect(&url).await?;
                m.apply(&mut conn).await
            } else {
                let pool = sqlx::PgPool::connect(&url).await?;
                let report = m.apply_pool(&pool).await;
                pool.close().await;
                report
            }
        }));
    }
    let mut applied = 0;
    for t in tasks {
        applied += t.await.unwrap().unwrap().applied.len();
    }
    assert_eq!(applied, total, "each migration applied by exactly one run");
    let mut conn = db.connect().await;
    let probe: Vec<i32> = sqlx::query_scalar("SELECT n FROM probe ORDER BY n")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(probe, [101, 102, 103]);
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, no_transaction FROM strata_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let expected: Vec<i64> = migrations.iter().map(|m| m.version).collect();
    assert_eq!(versions, expected);
    assert!(rows.iter().any(|&(v, nt)| v == 102 && nt));
    let valid: bool = sqlx::query_scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'live_order_notes_idx'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(valid);
}

#[tokio::test]
async fn four_concurrent_cli_processes_apply_each_migration_once() {
    let db = TestDb::new().await;
    let dir = migrations_dir();
    let bin = pg_common::strata_bin();
    let procs: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(bin)
                .args([
                    "migrate",
                    "apply",
                    "--dir",
                    dir.str(),
                    "--database-url",
                    &db.url,
                ])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut conn = db.connect().await;
    let probe: Vec<i32> = sqlx::query_scalar("SELECT n FROM probe ORDER BY n")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(probe, [101, 102, 103]);
}

#[tokio::test]
async fn an_edited_or_missing_applied_migration_is_refused() {
    let db = TestDb::new().await;
    let dir = migrations_dir();
    let mut conn = db.connect().await;
    let m = Migrator::new(Migrations::from_dir(dir.path()).unwrap());
    m.apply(&mut conn).await.unwrap();

    // A new pending migration next to an edited applied one: nothing runs.
    std::fs::write(
        dir.path().join("0103_more.sql"),
        "INSERT INTO probe VALUES (999);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("0104_next.sql"),
        "INSERT INTO probe VALUES (104);\n",
    )
    .unwrap();
    let edited = Migrator::new(Migrations::from_dir(dir.path()).unwrap());
    match edited.apply(&mut conn).await {
        Err(MigrateError::Changed { version: 103, .. }) => {}
        other => panic!("expected Changed for 103, got {other:?}"),
    }
    let status = edited.status(&mut conn).await.unwrap();
    assert!(matches!(
        status.iter().find(|s| s.version == 103).unwrap().state,
        MigrationState::Changed { .. }
    ));
    assert_eq!(
        status.iter().find(|s| s.version == 104).unwrap().state,
        MigrationState::Pending
    );
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("migration 103 `more` was applied, but its file has changed"),
        "{err}"
    );
    let (code, out, _) = strata(&[
        "migrate",
        "status",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 3);
    assert!(
        out.contains("0103_more\tCHANGED") && out.contains("0104_next\tpending"),
        "{out}"
    );
    let probe: Vec<i32> = sqlx::query_scalar("SELECT n FROM probe ORDER BY n")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(probe, [101, 102, 103], "nothing ran");

    // Restored, then removed: a missing applied migration is refused too.
    std::fs::write(
        dir.path().join("0103_more.sql"),
        "INSERT INTO probe VALUES (103);\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("0102_concurrent.sql")).unwrap();
    match Migrator::new(Migrations::from_dir(dir.path()).unwrap())
        .apply(&mut conn)
        .await
    {
        Err(MigrateError::Missing { version: 102, .. }) => {}
        other => panic!("expected Missing for 102, got {other:?}"),
    }
}

/// A rolling deploy or rollback: the database has a migration newer than
/// the program's. Refused by default with a typed error that says what to
/// do; accepted with `allow_newer` (and `--allow-newer`); a migration
/// missing from the middle is still refused.
#[tokio::test]
async fn a_migration_newer_than_the_program_is_refused_unless_allowed() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let dir = TempDir::new("newer");
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write("0001_init.sql", "CREATE TABLE t (id int PRIMARY KEY);\n");
    write("0002_more.sql", "ALTER TABLE t ADD COLUMN note text;\n");
    let newer = Migrations::from_dir(dir.path()).unwrap();
    Migrator::new(newer).apply(&mut conn).await.unwrap();
    // The older program knows only 0001.
    std::fs::remove_file(dir.path().join("0002_more.sql")).unwrap();
    let older = || Migrator::new(Migrations::from_dir(dir.path()).unwrap());
    match older().apply(&mut conn).await {
        Err(
            e @ MigrateError::Newer {
                version: 2,
                latest: 1,
                ..
            },
        ) => {
            assert!(e.to_string().contains("allow_newer"), "{e}");
        }
        other => panic!("expected Newer for 2, got {other:?}"),
    }
    let report = older().allow_newer(true).apply(&mut conn).await.unwrap();
    assert_eq!((report.applied.len(), report.already_applied), (0, 2));
    let status = older().status(&mut conn).await.unwrap();
    assert!(
        matches!(status[1].state, MigrationState::Newer { .. }),
        "{status:?}"
    );
    let args = [
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ];
    let (code, _, err) = strata(&args);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("newer than this program's latest (1)"),
        "{err}"
    );
    let (code, _, err) = strata(&[&args[..], &["--allow-newer"]].concat());
    assert_eq!(code, 0, "{err}");
    // A gap below the program's latest is a missing file, not a newer one.
    write("0003_after.sql", "SELECT 1;\n");
    match older().allow_newer(true).apply(&mut conn).await {
        Err(MigrateError::Missing { version: 2, .. }) => {}
        other => panic!("expected Missing for 2, got {other:?}"),
    }
}

#[tokio::test]
async fn status_lists_applied_and_pending_and_a_failure_is_typed() {
    let db = TestDb::new().await;
    let dir = migrations_dir();
    let (code, out, err) = strata(&[
        "migrate",
        "status",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0001_init\tpending"), "{out}");
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = strata(&[
        "migrate",
        "status",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("0001_init\tapplied") && out.contains("0103_more\tapplied"),
        "{out}"
    );

    // A failing migration rolls back with its record, and says which one failed.
    std::fs::write(
        dir.path().join("0200_bad.sql"),
        "INSERT INTO probe VALUES (200);\nSELECT * FROM no_such_table;\n",
    )
    .unwrap();
    let mut conn = db.connect().await;
    match Migrator::new(Migrations::from_dir(dir.path()).unwrap())
        .apply(&mut conn)
        .await
    {
        Err(MigrateError::Failed { version: 200, .. }) => {}
        other => panic!("expected Failed for 200, got {other:?}"),
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM probe WHERE n = 200")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // Usage errors: no database, bad file name.
    let (code, _, err) = std::process::Command::new(pg_common::strata_bin())
        .args(["migrate", "apply", "--dir", dir.str()])
        .env_remove("DATABASE_URL")
        .output()
        .map(|o| {
            (
                o.status.code(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, Some(2), "{err}");
    std::fs::write(dir.path().join("notes.sql"), "SELECT 1;").unwrap();
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`notes.sql` is not a migration file name"),
        "{err}"
    );
}

/// A file added below the latest applied version (a merged branch) is
/// applied, and reported as out of order, by the SDK and the CLI; `status`
/// says so before. While another session holds the migrations' lock, the
/// CLI names that session's process before it waits.
#[tokio::test]
async fn a_late_lower_migration_is_applied_and_reported_out_of_order() {
    let db = TestDb::new().await;
    let dir = TempDir::new("runner_late");
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write("0001_a.sql", "CREATE TABLE late_a (n int);\n");
    write("0003_c.sql", "CREATE TABLE late_c (n int);\n");
    let m = || Migrator::new(Migrations::from_dir(dir.path()).unwrap());
    let mut conn = strata_sdk::migrate::connect(&db.url).await.unwrap();
    let first = m().apply(&mut conn).await.unwrap();
    assert!(first.out_of_order.is_empty(), "{first:?}");

    write("0002_b.sql", "CREATE TABLE late_b (n int);\n");
    let cli = |cmd: &str| {
        let dir = dir.path().to_str().unwrap();
        strata(&["migrate", cmd, "--dir", dir, "--database-url", &db.url])
    };
    let (code, out, _) = cli("status");
    assert_eq!(code, 0);
    assert!(out.contains("0002_b\tpending, below applied 0003"), "{out}");

    // The lock held by another session: the CLI says who holds it, waits,
    // and applies once it is released.
    let mut holder = strata_sdk::migrate::connect(&db.url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(strata_sdk::migrate::LOCK_KEY)
        .execute(&mut holder)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    assert_eq!(
        strata_sdk::migrate::lock_holder(&mut conn).await.unwrap(),
        Some(pid)
    );
    let (d, url) = (dir.path().to_str().unwrap().to_string(), db.url.clone());
    let apply = tokio::task::spawn_blocking(move || {
        strata(&["migrate", "apply", "--dir", &d, "--database-url", &url])
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!apply.is_finished(), "apply must wait for the lock");
    drop(holder);
    let (code, _, err) = apply.await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("held by server process {pid}")),
        "{err}"
    );
    assert!(err.contains("applied 0002_b"), "{err}");
    assert!(
        err.contains("note: 0002_b was applied out of order"),
        "{err}"
    );
    assert_eq!(
        strata_sdk::migrate::lock_holder(&mut conn).await.unwrap(),
        None
    );
}

/// Migrations applied for a store with `schema:` are recorded in that
/// schema; a migrator recording on the search path (`Migrator::new`, where
/// the generated `migrator()` was meant) refuses to apply them a second
/// time, says where they are recorded, and creates nothing.
#[tokio::test]
async fn a_record_in_the_stores_schema_is_not_applied_again_from_the_search_path() {
    let db = TestDb::new().await;
    let dir = TempDir::new("runner_elsewhere");
    let sql = "CREATE TYPE lib_x.genre AS ENUM ('a');\n";
    std::fs::write(dir.path().join("0001_init.sql"), sql).unwrap();
    let set = || Migrations::from_dir(dir.path()).unwrap();
    let mut conn = strata_sdk::migrate::connect(&db.url).await.unwrap();
    sqlx::query("CREATE SCHEMA lib_x")
        .execute(&mut conn)
        .await
        .unwrap();
    let store = Migrator::new(set()).with_schema("lib_x").unwrap();
    assert_eq!(store.apply(&mut conn).await.unwrap().applied.len(), 1);

    let err = Migrator::new(set()).apply(&mut conn).await.unwrap_err();
    match &err {
        MigrateError::RecordedElsewhere { here, there } => {
            assert_eq!(
                (here.as_str(), there.as_str()),
                ("strata_migrations", "lib_x.strata_migrations")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("generated `migrator()`"), "{err}");
    let created: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public.strata_migrations')::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(created, None, "nothing created on the search path");
    // Another folder's migrations are not this one's: they apply.
    let other =
        Migrations::from_files([("0001_other.sql", "CREATE TABLE other_t (n int);")]).unwrap();
    assert_eq!(
        Migrator::new(other)
            .apply(&mut conn)
            .await
            .unwrap()
            .applied
            .len(),
        1
    );
}
