//! `strata migrate diff` records the catalog a migration leads to when it
//! writes the migration, before anything is applied. When that migration then
//! fails, the recorded catalog is ahead of the database; the next `diff`
//! used to say "no changes" as if all was well. Now: `apply` says which
//! catalog is ahead and what to do, `diff` names the catalog it compared
//! with, and `diff --database-url` refuses while a migration is not applied.

mod pg_common;

use pg_common::{strata, TempDir, TestDb};

const V1: &str =
    "stores:\n  db: { kind: postgres }\nentities:\n  Device:\n    fields:\n      id: i64\n";
const V2: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Device:\n    fields:\n      id: i64\n      serial: text\n";
const V2_FIXED: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Device:\n    fields:\n      id: i64\n      serial: { type: text, default: unknown }\n";

#[tokio::test]
async fn a_failed_migration_does_not_make_the_next_diff_silent() {
    let db = TestDb::new().await;
    let dir = TempDir::new("failed");
    let schemas = TempDir::new("failed_schema");
    let write = |name: &str, text: &str| {
        let p = schemas.path().join(format!("{name}.yaml"));
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (v1, v2, v2_fixed) = (
        write("v1", V1),
        write("v2", V2),
        write("v2_fixed", V2_FIXED),
    );
    let diff = |schema: &str, extra: &[&str]| {
        let mut args = vec![
            "migrate",
            "diff",
            schema,
            "--dir",
            dir.str(),
            "--name",
            "v2",
        ];
        args.extend(extra);
        strata(&args)
    };
    let apply = || {
        strata(&[
            "migrate",
            "apply",
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ])
    };
    assert_eq!(diff(&v1, &[]).0, 0);
    assert_eq!(apply().0, 0);
    let mut conn = db.connect().await;
    sqlx::raw_sql("INSERT INTO device VALUES (1)")
        .execute(&mut conn)
        .await
        .unwrap();

    // A NOT NULL column without a default fails on a table with rows.
    assert_eq!(diff(&v2, &[]).0, 0);
    let (code, _, err) = apply();
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(
            "hint: 0002_v2.catalog.json records the database as if this migration had run"
        ),
        "{err}"
    );

    // Without a database, diff names the catalog it compared with.
    let (code, _, err) = diff(&v2, &[]);
    assert_eq!(code, 0);
    assert!(
        err.contains("no changes: the schema matches 0002_v2.catalog.json"),
        "{err}"
    );
    assert!(err.contains("strata migrate status"), "{err}");
    // With one, it refuses while 0002 is not applied.
    let (code, _, err) = diff(&v2_fixed, &["--database-url", &db.url]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("not applied to the database (or changed since): 0002_v2"),
        "{err}"
    );
    assert!(!dir.path().join("0003_v2.sql").exists());

    // The way out the hint gives: delete the failed migration, diff, apply.
    std::fs::remove_file(dir.path().join("0002_v2.sql")).unwrap();
    std::fs::remove_file(dir.path().join("0002_v2.catalog.json")).unwrap();
    let (code, _, err) = diff(&v2_fixed, &["--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(apply().0, 0);
    let serial: String = sqlx::query_scalar("SELECT serial FROM device WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(serial, "unknown");
    let (code, _, err) = diff(&v2_fixed, &["--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no changes"), "{err}");
}

/// PostgreSQL refuses to retype a column that a publication (change
/// capture's) lists; the failure says how to get the table out of it.
#[tokio::test]
async fn a_column_change_capture_publishes_gets_the_recopy_hint() {
    let db = TestDb::new().await;
    let dir = TempDir::new("published");
    let schemas = TempDir::new("published_schema");
    let write = |name: &str, text: &str| {
        let p = schemas.path().join(format!("{name}.yaml"));
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let v1 = write("v1", &V2.replace("serial: text", "serial: string(40)"));
    let v2 = write("v2", V2);
    let apply = || {
        strata(&[
            "migrate",
            "apply",
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ])
    };
    let diff = |schema: &str, name: &str| {
        strata(&[
            "migrate",
            "diff",
            schema,
            "--dir",
            dir.str(),
            "--name",
            name,
        ])
    };
    let (code, _, err) = diff(&v1, "v1");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = apply();
    assert_eq!(code, 0, "{err}");
    let mut conn = db.connect().await;
    sqlx::raw_sql("CREATE PUBLICATION strata_main_analytics FOR TABLE device (id, serial)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (code, _, err) = diff(&v2, "v2");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = apply();
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("hint: change capture's publication lists this column"),
        "{err}"
    );
    assert!(err.contains("strata sync recopy"), "{err}");
    sqlx::raw_sql("DROP PUBLICATION strata_main_analytics")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(apply().0, 0, "applies once the publication lets go");
}
