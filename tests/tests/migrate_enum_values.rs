//! Values added to an enum go in a `…_enum_values` migration run before the
//! main one. Only the main file recorded a catalog, so when it failed and
//! the user deleted it (with its catalog) as the hint says, the next diff
//! started from a catalog without the values the enum-values file had added
//! to the database: reverting the schema gave "no changes", and declaring a
//! value elsewhere wrote an `ADD VALUE IF NOT EXISTS … AFTER` that did
//! nothing, leaving the database's order different from the schema's. Now
//! every file records the catalog after it, and the enum-values file checks
//! that the database's values are the schema's, in its order.

mod pg_common;

use pg_common::{strata, TempDir, TestDb};

fn schema(values: &str, extra: &str) -> String {
    format!(
        "stores:\n  db: {{ kind: postgres }}\nenums:\n  State: [{values}]\nentities:\n  Device:\n    fields:\n      id: i64\n      state: State\n{extra}"
    )
}

struct Run {
    db: TestDb,
    dir: TempDir,
    schemas: TempDir,
}

impl Run {
    async fn new(tag: &str) -> Run {
        Run {
            db: TestDb::new().await,
            dir: TempDir::new(tag),
            schemas: TempDir::new(&format!("{tag}_schema")),
        }
    }
    fn diff(&self, name: &str, text: &str, flags: &[&str]) -> (i32, String) {
        let path = self.schemas.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let mut args = vec![
            "migrate",
            "diff",
            &path,
            "--dir",
            self.dir.str(),
            "--name",
            name,
        ];
        args.extend(flags);
        let (code, _, err) = strata(&args);
        (code, err)
    }
    fn apply(&self) -> (i32, String) {
        let (code, _, err) = strata(&[
            "migrate",
            "apply",
            "--dir",
            self.dir.str(),
            "--database-url",
            &self.db.url,
        ]);
        (code, err)
    }
    fn delete(&self, files: &[&str]) {
        for f in files {
            std::fs::remove_file(self.dir.path().join(f)).unwrap();
        }
    }
    async fn order(&self) -> Vec<String> {
        let mut conn = self.db.connect().await;
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::state))::text")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
    async fn sql(&self, sql: &str) {
        let mut conn = self.db.connect().await;
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    }
}

#[tokio::test]
async fn deleting_the_failed_main_migration_keeps_the_values_the_first_file_added() {
    let run = Run::new("enum_failed").await;
    assert_eq!(run.diff("v1", &schema("OPEN, CLOSED", ""), &[]).0, 0);
    assert_eq!(run.apply().0, 0);
    run.sql("INSERT INTO device VALUES (1, 'OPEN')").await;

    // A NOT NULL column without a default fails on a table with rows, after
    // the enum-values file added PAUSED.
    let v2 = schema("OPEN, PAUSED, CLOSED", "      serial: text\n");
    assert_eq!(run.diff("v2", &v2, &[]).0, 0);
    let (code, err) = run.apply();
    assert_eq!(code, 3, "{err}");
    assert_eq!(run.order().await, ["OPEN", "PAUSED", "CLOSED"]);
    // The hint names exactly the files to delete: the failed one, not the
    // enum-values file that was applied.
    assert!(
        err.contains(
            "hint: 0003_v2.catalog.json records the database as if this migration had run"
        ),
        "{err}"
    );
    assert!(
        err.contains("delete 0003_v2.sql, 0003_v2.catalog.json from"),
        "{err}"
    );
    assert!(!err.contains("delete 0002"), "{err}");

    // The user follows it and reverts the schema: the next diff sees PAUSED
    // in the database (it used to say "no changes").
    run.delete(&["0003_v2.sql", "0003_v2.catalog.json"]);
    let (code, err) = run.diff("v1_again", &schema("OPEN, CLOSED", ""), &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("removes value(s) PAUSED"), "{err}");

    // Declaring PAUSED in another place rebuilds the type instead of a
    // no-op `ADD VALUE IF NOT EXISTS 'PAUSED' AFTER 'CLOSED'`.
    let v3 = schema("OPEN, CLOSED, PAUSED", "");
    let (code, err) = run.diff("v3", &v3, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("reorders the values of enum"), "{err}");
    assert_eq!(run.diff("v3", &v3, &["--allow-destructive"]).0, 0);
    let (code, err) = run.apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(run.order().await, ["OPEN", "CLOSED", "PAUSED"]);
    let (code, err) = run.diff("v3", &v3, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no changes"), "{err}");
}

/// A value the database already has (added by hand, or by an enum-values
/// migration whose file was deleted) is skipped by `ADD VALUE IF NOT
/// EXISTS` where it is: the migration now says so instead of leaving the
/// database's order different from the schema's.
#[tokio::test]
async fn a_value_the_database_already_has_elsewhere_is_reported_not_skipped() {
    let run = Run::new("enum_drift").await;
    assert_eq!(run.diff("v1", &schema("OPEN, CLOSED", ""), &[]).0, 0);
    assert_eq!(run.apply().0, 0);
    run.sql("ALTER TYPE state ADD VALUE 'PAUSED' AFTER 'OPEN'")
        .await;

    assert_eq!(
        run.diff("v2", &schema("OPEN, CLOSED, PAUSED", ""), &[]).0,
        0
    );
    let (code, err) = run.apply();
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("enum \"state\" has the values (OPEN,PAUSED,CLOSED) in the database, but the schema declares (OPEN,CLOSED,PAUSED)"),
        "{err}"
    );
    assert!(
        err.contains("HINT: Declare the values in the database's order"),
        "{err}"
    );
    let (_, out, _) = strata(&[
        "migrate",
        "status",
        "--dir",
        run.dir.str(),
        "--database-url",
        &run.db.url,
    ]);
    assert!(out.contains("0002_v2\tpending"), "{out}");

    // The way out: declare the database's order.
    run.delete(&["0002_v2.sql", "0002_v2.catalog.json"]);
    assert_eq!(
        run.diff("v2", &schema("OPEN, PAUSED, CLOSED", ""), &[]).0,
        0
    );
    let (code, err) = run.apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(run.order().await, ["OPEN", "PAUSED", "CLOSED"]);
}
