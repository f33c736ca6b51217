//! Hand-written migrations are split into statements as `psql` splits them:
//! function bodies (dollar-quoted or `BEGIN ATOMIC … END`), quotes and
//! comments holding `;` apply on the real server, in a transaction or out of
//! one, and a failure still names its statement's line.

mod pg_common;

use pg_common::TestDb;
use strata_sdk::migrate::{MigrateError, Migrations, Migrator};

const FUNCTIONS: &str = r#"-- Function bodies hold semicolons; so do strings, names and comments.
CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, "odd;name" text DEFAULT 'a;b');

CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.n := NEW.n + 1; -- one more
  RETURN NEW;
END
$body$;

CREATE TRIGGER counter_bump BEFORE INSERT ON counter FOR EACH ROW EXECUTE FUNCTION bump();

CREATE OR REPLACE FUNCTION sign_of(a int) RETURNS text LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN a > 0 THEN 'positive;' WHEN a < 0 THEN 'negative;' ELSE 'zero' END;
END;

CREATE PROCEDURE add_row(i int) LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO counter (id) VALUES (i);
  INSERT INTO counter (id) VALUES (i + 100);
END;

/* a nested /* comment; */ still a comment; */
DO $$ BEGIN PERFORM 1; END $$;
CALL add_row(1);
"#;

async fn check_applied(db: &TestDb) {
    let mut conn = db.connect().await;
    let rows: Vec<(i32, i32, String)> =
        sqlx::query_as("SELECT id, n, \"odd;name\" FROM counter ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows, [(1, 1, "a;b".into()), (101, 1, "a;b".into())]);
    let signs: (String, String, String) =
        sqlx::query_as("SELECT sign_of(5), sign_of(-2), sign_of(0)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        signs,
        ("positive;".into(), "negative;".into(), "zero".into())
    );
}

#[tokio::test]
async fn function_bodies_apply_in_a_transaction() {
    let db = TestDb::new().await;
    let m = Migrations::from_files([("0001_functions.sql", FUNCTIONS)]).unwrap();
    let mut conn = db.connect().await;
    let report = Migrator::new(m).apply(&mut conn).await.unwrap();
    assert_eq!(report.applied, [(1, "functions".to_string())]);
    check_applied(&db).await;
}

#[tokio::test]
async fn function_bodies_apply_outside_a_transaction() {
    let db = TestDb::new().await;
    let sql = format!(
        "-- strata:no-transaction\r\n{}",
        FUNCTIONS.replace('\n', "\r\n")
    );
    let m = Migrations::from_files([("0001_functions.sql", sql)]).unwrap();
    let mut conn = db.connect().await;
    Migrator::new(m).apply(&mut conn).await.unwrap();
    check_applied(&db).await;
}

/// The statement that fails is named by its line, after a function body.
#[tokio::test]
async fn a_failure_after_a_function_names_its_line() {
    let db = TestDb::new().await;
    let sql = format!("{FUNCTIONS}\nINSERT INTO counter (id) VALUES (1);\n");
    let line = sql.lines().count();
    let m = Migrations::from_files([("0001_functions.sql", sql)]).unwrap();
    let mut conn = db.connect().await;
    let err = Migrator::new(m).apply(&mut conn).await.unwrap_err();
    let MigrateError::Failed { at, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        at.as_deref(),
        Some(format!("line {line}: INSERT INTO counter (id) VALUES (1);").as_str()),
        "{err}"
    );
    // Nothing of the failed transactional migration remains.
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('counter')::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, None);
}

/// Statements whose text holds `;` in every place psql does not split at.
const TRICKY: &[&str] = &[
    "SELECT 'a;b'",
    "SELECT 'it''s; fine'",
    "SELECT E'\\'; still a string'",
    "SELECT \"odd;name\" FROM t",
    "SELECT $$ ; $$",
    "SELECT $tag$ ; $notag$ ; $tag$",
    "SELECT a$b$c FROM t",
    "SELECT $1",
    "/* ; /* nested ; */ ; */ SELECT 1",
    "-- a comment; with a semicolon\nSELECT 2",
    "SELECT (1; 2)",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END",
    "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
    "BEGIN",
    "END",
    "SELECT 'x'\r\n",
];

proptest::proptest! {
    /// Joined in any order and number, the tricky statements split back
    /// into exactly themselves.
    #[test]
    fn tricky_statements_split_back_into_themselves(
        picks in proptest::collection::vec(0..TRICKY.len(), 1..12),
        crlf in proptest::bool::ANY,
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let parts: Vec<String> = picks.iter().map(|&k| format!("{};", TRICKY[k].trim_end())).collect();
        let sql = parts.join(nl);
        proptest::prop_assert_eq!(strata_sdk::migrate::split::statements(&sql), parts);
    }
}
