//! Each postgres store records its migrations in its own schema
//! (`<schema>.strata_migrations`): two stores of one database no longer
//! share `public.strata_migrations` (the second one's `0001_init` was
//! refused as "changed"), a role that may not create in `public` can apply
//! a store with its own schema, and a store's rows written to the shared
//! table by earlier runs are moved, not applied again.

mod pg_common;

use pg_common::{strata, TempDir, TestDb};
use strata_sdk::migrate::{Migrations, Migrator};

const TWO_STORES: &str = "stores:\n  a: { kind: postgres, schema: app_a }\n  b: { kind: postgres, schema: app_b }\nentities:\n  Note:\n    store: a\n    fields:\n      id: i64\n      body: text\n  Tag:\n    store: b\n    fields:\n      id: i64\n      label: text\n";

struct Two {
    schema: TempDir,
    a: TempDir,
    b: TempDir,
}

impl Two {
    fn new() -> Two {
        let two = Two {
            schema: TempDir::new("record_schema"),
            a: TempDir::new("record_a"),
            b: TempDir::new("record_b"),
        };
        std::fs::write(two.file(), TWO_STORES).unwrap();
        for (store, dir) in [("a", &two.a), ("b", &two.b)] {
            let (code, _, err) = strata(&[
                "migrate",
                "diff",
                &two.path(),
                "--dir",
                dir.str(),
                "--store",
                store,
            ]);
            assert_eq!(code, 0, "{err}");
        }
        two
    }
    fn file(&self) -> std::path::PathBuf {
        self.schema.path().join("schema.yaml")
    }
    fn path(&self) -> String {
        self.file().display().to_string()
    }
}

async fn rows(conn: &mut sqlx::PgConnection, table: &str) -> Option<Vec<(i64, String)>> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    exists?;
    Some(
        sqlx::query_as(&format!(
            "SELECT version, name FROM {table} ORDER BY version"
        ))
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
    )
}

fn init() -> Option<Vec<(i64, String)>> {
    Some(vec![(1, "init".to_string())])
}

#[tokio::test]
async fn two_stores_of_one_database_keep_separate_records() {
    let db = TestDb::new().await;
    let two = Two::new();
    // From the folder alone (its catalog names the schema) ...
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        two.a.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("recorded in app_a.strata_migrations"), "{err}");
    // ... or from the schema and the store.
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        &two.path(),
        "--store",
        "b",
        "--dir",
        two.b.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 applied now, 0 already applied (recorded in app_b.strata_migrations)"),
        "{err}"
    );

    let mut conn = db.connect().await;
    assert_eq!(rows(&mut conn, "app_a.strata_migrations").await, init());
    assert_eq!(rows(&mut conn, "app_b.strata_migrations").await, init());
    assert_eq!(rows(&mut conn, "public.strata_migrations").await, None);
    for dir in [&two.a, &two.b] {
        let (code, out, err) = strata(&[
            "migrate",
            "status",
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("0001_init\tapplied"), "{out}");
    }
}

/// PostgreSQL 15 gives no one but the owner CREATE in `public`; a role with
/// its own schema could not apply at all, because the record went to `public`.
/// The default store's record there (another role's, unreadable) is left alone.
#[tokio::test]
async fn a_role_that_may_not_create_in_public_applies_its_own_schema() {
    let db = TestDb::new().await;
    let two = Two::new();
    let role = format!("strata_role_{}", uuid::Uuid::new_v4().simple());
    let mut admin = db.connect().await;
    sqlx::raw_sql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'pw'; GRANT CREATE, CONNECT ON DATABASE \"{}\" TO {role};\
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;\
         CREATE TABLE strata_migrations (version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,\
           no_transaction boolean NOT NULL DEFAULT false, applied_at timestamptz NOT NULL DEFAULT now(),\
           duration_ms bigint NOT NULL DEFAULT 0);\
         INSERT INTO strata_migrations (version, name, checksum) VALUES (1, 'init', 'another store');",
        db.name
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let rest = db.url.split_once('@').map_or_else(
        || db.url.trim_start_matches("postgres://").to_string(),
        |(_, r)| r.to_string(),
    );
    let url = format!("postgres://{role}:pw@{rest}");
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        two.a.str(),
        "--database-url",
        &url,
    ]);
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE schemaname = 'app_a' AND tablename = 'strata_migrations'",
    )
    .fetch_optional(&mut admin)
    .await
    .unwrap();
    let cleanup = format!("DROP OWNED BY {role}; DROP ROLE {role};");
    sqlx::raw_sql(&cleanup).execute(&mut admin).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(owner.as_deref(), Some(role.as_str()));
}

/// The least-privilege set-up: an administrator creates the store's schema
/// for a role that has no CREATE on the database. The record table and the
/// first migration (which creates the schema unless it exists) both work.
#[tokio::test]
async fn a_role_owning_a_precreated_schema_applies_without_database_privileges() {
    let db = TestDb::new().await;
    let two = Two::new();
    let role = format!("strata_owner_{}", uuid::Uuid::new_v4().simple());
    let mut admin = db.connect().await;
    sqlx::raw_sql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'pw'; CREATE SCHEMA app_a AUTHORIZATION {role};\
         REVOKE CREATE ON DATABASE \"{}\" FROM PUBLIC;",
        db.name
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let rest = db.url.split_once('@').map_or_else(
        || db.url.trim_start_matches("postgres://").to_string(),
        |(_, r)| r.to_string(),
    );
    let url = format!("postgres://{role}:pw@{rest}");
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        two.a.str(),
        "--database-url",
        &url,
    ]);
    let (status, out, _) = strata(&[
        "migrate",
        "status",
        "--dir",
        two.a.str(),
        "--database-url",
        &url,
    ]);
    sqlx::raw_sql(&format!(
        "DROP SCHEMA app_a CASCADE; DROP OWNED BY {role}; DROP ROLE {role};"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(status, 0);
    assert!(out.starts_with("0001_init\tapplied"), "{out}");
}

/// Before per-store records, store `a`'s history went to
/// `public.strata_migrations`; it is moved to `app_a`, not applied again,
/// and `public`'s table is left to the default store.
#[tokio::test]
async fn a_stores_history_in_the_shared_table_is_moved_to_its_own() {
    let db = TestDb::new().await;
    let two = Two::new();
    let mut conn = db.connect().await;
    let migrations = || Migrations::from_dir(two.a.path()).unwrap();
    Migrator::new(migrations()).apply(&mut conn).await.unwrap();
    assert_eq!(rows(&mut conn, "public.strata_migrations").await, init());

    let with_schema = Migrator::new(migrations()).with_schema("app_a").unwrap();
    assert_eq!(with_schema.record_table(), "app_a.strata_migrations");
    let status = with_schema.status(&mut conn).await.unwrap();
    assert!(
        matches!(
            status[0].state,
            strata_sdk::migrate::MigrationState::Applied { .. }
        ),
        "{status:?}"
    );
    let report = with_schema.apply(&mut conn).await.unwrap();
    assert_eq!((report.applied.len(), report.already_applied), (0, 1));
    assert_eq!(rows(&mut conn, "app_a.strata_migrations").await, init());
    assert_eq!(
        rows(&mut conn, "public.strata_migrations").await,
        Some(vec![])
    );

    // Store b's files are not a's history: b starts its own record.
    let b = Migrator::new(Migrations::from_dir(two.b.path()).unwrap())
        .with_schema("app_b")
        .unwrap();
    assert_eq!(b.apply(&mut conn).await.unwrap().applied.len(), 1);
}

/// Build scripts embed a `migrator()` that records where the CLI does.
#[test]
fn the_embedded_migrator_records_in_the_stores_schema() {
    let two = Two::new();
    let out = TempDir::new("record_build");
    let o = strata_codegen::build::Build::new(two.file())
        .with_migrations(two.a.path())
        .with_out_dir(out.path())
        .with_rerun_if_changed(false)
        .generate()
        .unwrap();
    let modules = std::fs::read_to_string(o.dir.join("modules.rs")).unwrap();
    assert!(modules.contains("pub fn migrator()"), "{modules}");
    assert!(modules.contains(".with_schema(\"app_a\")"), "{modules}");
    assert_eq!(deepalpha_db::migrator().record_table(), "strata_migrations");
}

/// `migrate apply <schema> --dir <a's folder> --store b`: the record of `b`
/// called a's `0001_init` "changed since applied" and told the user to
/// restore a file nobody had touched. Every command given a store now
/// checks the folder's latest catalog and names both stores (exit 2).
#[tokio::test]
async fn a_folder_of_another_store_is_refused_naming_both() {
    let db = TestDb::new().await;
    let two = Two::new();
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        &two.path(),
        "--store",
        "b",
        "--dir",
        two.b.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 0, "{err}");
    let says = [
        "holds the migrations of store `a` (PostgreSQL schema `app_a`)",
        "not of store `b` (PostgreSQL schema `app_b`)",
        "pass the folder of store `b`, or `--store a` for this one",
    ];
    let schema = two.path();
    let wrong = |cmd: &str| {
        let mut args = vec![
            "migrate",
            cmd,
            &schema,
            "--store",
            "b",
            "--dir",
            two.a.str(),
        ];
        if cmd != "diff" {
            args.extend(["--database-url", &db.url]);
        }
        strata(&args)
    };
    for cmd in ["apply", "status", "diff"] {
        let (code, _, err) = wrong(cmd);
        assert_eq!(code, 2, "{cmd}: {err}");
        for s in says {
            assert!(err.contains(s), "{cmd}: no `{s}` in\n{err}");
        }
    }
    assert_eq!(
        std::fs::read_dir(two.a.path()).unwrap().count(),
        2,
        "diff wrote nothing"
    );
    let mut conn = db.connect().await;
    assert_eq!(rows(&mut conn, "app_b.strata_migrations").await, init());
    assert_eq!(rows(&mut conn, "app_a.strata_migrations").await, None);

    // A catalog written before catalogs named their store: told by its
    // PostgreSQL schema.
    let json = two.a.path().join("0001_init.catalog.json");
    let mut cat: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(cat["store"], "a");
    cat.as_object_mut().unwrap().remove("store");
    std::fs::write(&json, serde_json::to_string_pretty(&cat).unwrap()).unwrap();
    let (code, _, err) = wrong("apply");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(says[0]) && err.contains(says[1]), "{err}");
}
