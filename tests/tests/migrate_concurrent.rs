//! A unique index built with `--concurrently` on a table holding a duplicate
//! fails and leaves an INVALID index. Retried, `IF NOT EXISTS` skipped it
//! and the migration was recorded with an index PostgreSQL neither uses nor
//! enforces. Now a retry drops the leftover and rebuilds it: it ends valid,
//! or the run fails and records nothing.

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
    assert_eq!(
        run.index_valid().await,
        Some(false),
        "the failed build leaves an INVALID index"
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
    assert_eq!(run.index_valid().await, Some(false));
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
