//! A unique index built with `--concurrently` on a table holding a duplicate
//! fails and leaves an INVALID index. Retried, `IF NOT EXISTS` skipped it
//! and the migration was recorded with an index PostgreSQL neither uses nor
//! enforces. Now a retry drops the leftover and rebuilds it: it ends valid,
//! or the run fails and records nothing. And the failed build's INVALID index
//! is dropped at once: deleting the migration as the hint allows used to
//! leave an orphan that nothing reported and that a later plain build of the
//! same index collided with ("relation already exists").

mod pg_common;

use pg_common::{strata, TempDir, TestDb};

const V1: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Coupon:\n    fields:\n      id: i64\n      code: string(20)\n";
const V2: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Coupon:\n    fields:\n      id: i64\n      code: string(20)\n    indexes:\n      - { fields: [code], unique: true, name: coupon_code_uniq }\n";

struct Run {
    db: TestDb,
    dir: TempDir,
    schemas: TempDir,
}

impl Run {
    fn diff(&self, name: &str, text: &str, flags: &[&str]) {
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
        assert_eq!(code, 0, "{err}");
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
    async fn index_valid(&self) -> Option<bool> {
        let mut conn = self.db.connect().await;
        sqlx::query_scalar(
            "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass('coupon_code_uniq')",
        )
        .fetch_optional(&mut conn)
        .await
        .unwrap()
    }
    async fn recorded(&self) -> Vec<String> {
        let mut conn = self.db.connect().await;
        sqlx::query_scalar("SELECT name FROM strata_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
    async fn sql(&self, sql: &str) -> Result<(), sqlx::Error> {
        let mut conn = self.db.connect().await;
        sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ())
    }
}

async fn failed_once() -> Run {
    let run = Run {
        db: TestDb::new().await,
        dir: TempDir::new("concurrent"),
        schemas: TempDir::new("concurrent_schema"),
    };
    run.diff("v1", V1, &[]);
    assert_eq!(run.apply().0, 0);
    run.sql("INSERT INTO coupon VALUES (1, 'SAVE'), (2, 'SAVE')")
        .await
        .unwrap();
    run.diff("v2", V2, &["--concurrently"]);
    let (code, err) = run.apply();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("coupon_code_uniq"), "{err}");
    assert!(
        err.contains("DETAIL: Key (code)=(SAVE) is duplicated."),
        "{err}"
    );
    // The rows, not the SQL, are the cause; the INVALID index is gone.
    assert!(
        err.contains("hint: the rows are the likely cause, not the SQL: the table holds duplicates of the unique key (DETAIL names one) (the INVALID index the failed build left has been dropped)"),
        "{err}"
    );
    assert!(
        err.contains("delete 0002_v2.sql, 0002_v2.catalog.json from"),
        "{err}"
    );
    assert_eq!(
        run.index_valid().await,
        None,
        "the failed build's INVALID index is dropped"
    );
    assert_eq!(run.recorded().await, ["v1"]);
    run
}

#[tokio::test]
async fn a_retried_concurrent_build_ends_with_a_valid_index() {
    let run = failed_once().await;
    run.sql("DELETE FROM coupon WHERE id = 2").await.unwrap();
    let (code, err) = run.apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(run.index_valid().await, Some(true));
    assert_eq!(run.recorded().await, ["v1", "v2"]);
    // The index is there and enforces uniqueness.
    let dup = run
        .sql("INSERT INTO coupon VALUES (3, 'SAVE')")
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("coupon_code_uniq"), "{dup}");
}

#[tokio::test]
async fn a_retry_that_fails_again_records_nothing() {
    let run = failed_once().await;
    let (code, err) = run.apply();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is duplicated"), "{err}");
    assert_eq!(run.recorded().await, ["v1"]);
    assert_eq!(run.index_valid().await, None);
    let (code, out, _) = strata(&[
        "migrate",
        "status",
        "--dir",
        run.dir.str(),
        "--database-url",
        &run.db.url,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("0002_v2\tpending"), "{out}");
}

/// The other way out the hint gives: delete the failed migration with its
/// catalog and diff again (here without `--concurrently`). The plain build
/// of the same index used to fail on the orphan ("relation
/// \"coupon_code_uniq\" already exists").
#[tokio::test]
async fn deleting_the_failed_migration_leaves_no_orphan_index() {
    let run = failed_once().await;
    for file in ["0002_v2.sql", "0002_v2.catalog.json"] {
        std::fs::remove_file(run.dir.path().join(file)).unwrap();
    }
    let mut conn = run.db.connect().await;
    let invalid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND n.nspname = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(invalid, 0, "no INVALID index is left behind");
    run.sql("DELETE FROM coupon WHERE id = 2").await.unwrap();
    run.diff("v2", V2, &[]);
    let (code, err) = run.apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(run.index_valid().await, Some(true));
    assert_eq!(run.recorded().await, ["v1", "v2"]);
}

const V2_TWO: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Coupon:\n    fields:\n      id: i64\n      code: string(20)\n    indexes:\n      - { fields: [id, code], name: coupon_a_ix }\n      - { fields: [code], unique: true, name: coupon_code_uniq }\n";

/// A no-transaction migration of concurrent builds fails whole: an index it
/// built before the statement that failed is dropped again, so the database
/// is as before the run (and deleting the migration, as the hint allows,
/// leaves no index behind that no file describes).
#[tokio::test]
async fn a_failed_concurrent_migration_drops_the_indexes_it_built() {
    let run = Run {
        db: TestDb::new().await,
        dir: TempDir::new("concurrent_two"),
        schemas: TempDir::new("concurrent_two_schema"),
    };
    run.diff("v1", V1, &[]);
    assert_eq!(run.apply().0, 0);
    run.sql("INSERT INTO coupon VALUES (1, 'SAVE'), (2, 'SAVE')")
        .await
        .unwrap();
    run.diff("v2", V2_TWO, &["--concurrently"]);
    let file = std::fs::read_to_string(run.dir.path().join("0002_v2.sql")).unwrap();
    let (a, uniq) = (file.find("coupon_a_ix"), file.find("coupon_code_uniq"));
    assert!(
        a.is_some() && a < uniq,
        "the first index is built first:\n{file}"
    );
    let (code, err) = run.apply();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is duplicated"), "{err}");
    assert!(err.contains("were dropped again"), "{err}");
    let mut conn = run.db.connect().await;
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = 'coupon'::regclass AND NOT i.indisprimary",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        left.is_empty(),
        "no index of the failed run is left: {left:?}"
    );
    assert_eq!(run.recorded().await, ["v1"]);
    // Fixed rows, applied again: both indexes are built.
    run.sql("DELETE FROM coupon WHERE id = 2").await.unwrap();
    let (code, err) = run.apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(run.index_valid().await, Some(true));
    assert_eq!(run.recorded().await, ["v1", "v2"]);
}
