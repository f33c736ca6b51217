//! Behaviour of `strata migrate diff` beyond the snapshots: the
//! `--concurrently` split, enum values removed (a type rebuild), type widening.

mod pg_common;

use pg_common::{catalog, live, root, TempDir, TestDb};
use strata_codegen::postgres::catalog::Catalog;
use strata_codegen::postgres::diff::{is_widening, DiffOptions};
use strata_codegen::postgres::migration::{self, MigrationError};
use strata_sdk::migrate::{Migrations, Migrator};

fn fixture(v: &str) -> std::path::PathBuf {
    root().join(format!("tests/fixtures/migrate/{v}.yaml"))
}

fn step(dir: &TempDir, v: &str, opts: &DiffOptions, allow: bool) -> Vec<migration::MigrationFile> {
    let files = migration::next(&catalog(&fixture(v)), dir.path(), Some(v), opts, allow).unwrap();
    migration::write(dir.path(), &files).unwrap();
    files
}

async fn apply(db: &TestDb, dir: &TempDir) {
    let mut conn = db.connect().await;
    Migrator::new(Migrations::from_dir(dir.path()).unwrap())
        .apply(&mut conn)
        .await
        .unwrap();
}

async fn assert_catalog(db: &TestDb, v: &str) {
    let mut conn = db.connect().await;
    let cat = catalog(&fixture(v));
    let live = live::read(&mut conn, None).await;
    assert_eq!(
        live,
        live::expected(&mut conn, &cat).await,
        "catalog after {v}"
    );
}

#[tokio::test]
async fn concurrently_moves_new_indexes_of_existing_tables_to_a_no_transaction_migration() {
    let dir = TempDir::new("conc");
    let db = TestDb::new().await;
    step(&dir, "v1", &DiffOptions::default(), false);
    apply(&db, &dir).await;
    let files = step(
        &dir,
        "v2",
        &DiffOptions::default().with_concurrently(true),
        false,
    );
    let names: Vec<String> = files.iter().map(|f| f.stem()).collect();
    assert_eq!(
        names,
        [
            "0002_v2_enum_values",
            "0003_v2",
            "0004_v2_concurrent_indexes"
        ]
    );
    assert!(files[0].sql.contains(migration::NO_TRANSACTION));
    assert!(!files[1].sql.contains(migration::NO_TRANSACTION));
    assert!(files[2].sql.contains(migration::NO_TRANSACTION));
    // Each file records the catalog after it (before, only the last one
    // did: deleting a failed main migration left no record of the values
    // the enum-values file had added).
    let recorded: Vec<Catalog> = files
        .iter()
        .map(|f| serde_json::from_str(f.catalog.as_deref().expect("a catalog per file")).unwrap())
        .collect();
    let (v1, v2) = (catalog(&fixture("v1")), catalog(&fixture("v2")));
    assert_eq!(
        recorded[0].tables, v1.tables,
        "the enum values change no table"
    );
    assert_eq!(recorded[0].enums.len(), v1.enums.len());
    for e in &recorded[0].enums {
        let want = v2.enums.iter().find(|n| n.name == e.name).unwrap();
        assert_eq!(e.values, want.values, "{}", e.name);
    }
    let mut main = v2.clone();
    for t in &mut main.tables {
        let later = |name: &str| {
            files[2]
                .sql
                .contains(&format!("CONCURRENTLY IF NOT EXISTS \"{name}\""))
        };
        t.indexes.retain(|i| !later(&i.name));
    }
    assert_ne!(main, v2);
    assert_eq!(
        recorded[1], main,
        "the main migration builds no concurrent index"
    );
    assert_eq!(recorded[2], v2);
    // Existing table: concurrently, later; new table: plain, in the main migration.
    assert!(files[2]
        .sql
        .contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"memos_status_priority_idx\""));
    assert!(!files[1]
        .sql
        .contains("CREATE INDEX \"memos_status_priority_idx\""));
    assert!(files[1].sql.contains("CREATE TABLE \"tags\""));
    apply(&db, &dir).await;
    assert_catalog(&db, "v2").await;
}

#[tokio::test]
async fn removing_an_enum_value_is_refused_then_rebuilds_the_type_keeping_rows() {
    let dir = TempDir::new("enumrm");
    let db = TestDb::new().await;
    step(&dir, "v1", &DiffOptions::default(), false);
    step(&dir, "v2", &DiffOptions::default(), false);
    apply(&db, &dir).await;
    let mut conn = db.connect().await;
    sqlx::query("INSERT INTO memos (title, status) VALUES ('a', 'PAUSED'), ('b', 'CLOSED')")
        .execute(&mut conn)
        .await
        .unwrap();
    match migration::next(
        &catalog(&fixture("v4")),
        dir.path(),
        None,
        &DiffOptions::default(),
        false,
    ) {
        Err(MigrationError::Destructive(reasons)) => {
            assert!(
                reasons
                    .iter()
                    .any(|r| r.contains("removes value(s) ARCHIVED")),
                "{reasons:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let files = step(&dir, "v4", &DiffOptions::default(), true);
    assert!(files[0]
        .sql
        .contains("-- strata:destructive: removes value(s) ARCHIVED"));
    apply(&db, &dir).await;
    assert_catalog(&db, "v4").await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT title, status::text FROM memos ORDER BY title")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [("a".into(), "PAUSED".into()), ("b".into(), "CLOSED".into())]
    );
}

#[test]
fn widening_and_narrowing() {
    for (a, b) in [
        ("smallint", "integer"),
        ("integer", "bigint"),
        ("varchar(20)", "varchar(64)"),
        ("varchar(20)", "text"),
        ("numeric(20,8)", "numeric(28,8)"),
        ("numeric(10,2)", "numeric(12,4)"),
        ("integer", "numeric(12,0)"),
        ("varchar(5)[]", "varchar(9)[]"),
    ] {
        assert!(is_widening(a, b), "{a} -> {b} widens");
    }
    for (a, b) in [
        ("bigint", "integer"),
        ("varchar(64)", "varchar(20)"),
        ("text", "varchar(20)"),
        ("numeric(28,8)", "numeric(20,8)"),
        ("numeric(12,4)", "numeric(12,2)"),
        ("bigint", "numeric(10,0)"),
        ("text", "integer"),
        ("uuid", "text"),
    ] {
        assert!(!is_widening(a, b), "{a} -> {b} narrows or converts");
    }
}

fn cat_of(yaml: &str) -> strata_codegen::postgres::catalog::Catalog {
    let m = strata_codegen::compile_str("inline.yaml", yaml)
        .unwrap_or_else(|d| panic!("{}", d.render_plain()));
    strata_codegen::postgres::catalog::catalog(&m, m.store_id("db").unwrap())
}

const RENAME_V1: &str = r#"
version: 1
stores: { db: { kind: postgres, url: "x" } }
entities:
  Author:
    table: authors
    store: db
    fields:
      id:    { type: uuid, default: generated }
      email: { type: string(100), unique: true }
    indexes: [[email]]
  Book:
    table: books
    store: db
    fields:
      id:        { type: uuid, default: generated }
      author_id: { type: uuid, references: Author, on_delete: cascade }
"#;

#[test]
fn renames_come_from_renamed_from_and_carry_dependent_names() {
    let v2 = RENAME_V1
        .replace(
            "table: authors",
            "table: writers\n    renamed_from: authors",
        )
        .replace(
            "email: { type: string(100), unique: true }",
            "mail: { type: string(100), unique: true, renamed_from: email }",
        )
        .replace("indexes: [[email]]", "indexes: [[mail]]");
    let plan = strata_codegen::postgres::diff::diff(
        &cat_of(RENAME_V1),
        &cat_of(&v2),
        &DiffOptions::default(),
    )
    .unwrap();
    let sql: Vec<&str> = plan.steps().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sql,
        [
            "ALTER TABLE \"authors\" RENAME TO \"writers\";",
            "ALTER TABLE \"writers\" RENAME COLUMN \"email\" TO \"mail\";",
            "ALTER TABLE \"writers\" RENAME CONSTRAINT \"authors_pkey\" TO \"writers_pkey\";",
            "ALTER TABLE \"writers\" RENAME CONSTRAINT \"authors_email_key\" TO \"writers_mail_key\";",
            "ALTER INDEX \"authors_email_idx\" RENAME TO \"writers_mail_idx\";",
        ]
    );
    assert!(plan.destructive().is_empty());
}

#[test]
fn a_rename_without_renamed_from_is_a_refused_drop_and_add() {
    let v2 = RENAME_V1
        .replace(
            "email: { type: string(100), unique: true }",
            "mail: { type: string(100), unique: true }",
        )
        .replace("indexes: [[email]]", "indexes: [[mail]]");
    let tmp = TempDir::new("norename");
    migration::write(
        tmp.path(),
        &migration::next(
            &cat_of(RENAME_V1),
            tmp.path(),
            None,
            &DiffOptions::default(),
            false,
        )
        .unwrap(),
    )
    .unwrap();
    match migration::next(
        &cat_of(&v2),
        tmp.path(),
        None,
        &DiffOptions::default(),
        false,
    ) {
        Err(MigrationError::Destructive(r)) => {
            assert_eq!(r, ["drops column \"email\" of \"authors\" and its data"]);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every file `diff` writes (SQL and catalog, in each of its three kinds)
/// ends with exactly one newline.
#[test]
fn every_written_file_ends_with_one_newline() {
    let dir = TempDir::new("newline");
    step(&dir, "v1", &DiffOptions::default(), false);
    step(
        &dir,
        "v2",
        &DiffOptions::default().with_concurrently(true),
        false,
    );
    step(&dir, "v3", &DiffOptions::default(), true);
    let mut seen = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with('\n') && !text.ends_with("\n\n"),
            "{}: {:?}",
            path.display(),
            &text[text.len().saturating_sub(20)..]
        );
        seen += 1;
    }
    assert_eq!(seen, 10, "5 migrations, each with its catalog");
}

const SYNCED_V1: &str = r#"
version: 1
stores:
  db: { kind: postgres, url: "x" }
  analytics: { kind: clickhouse, url: "http://127.0.0.1:8123", database: a }
  cache: { kind: redis, url: "redis://127.0.0.1", key_prefix: t }
entities:
  Acct:
    table: acct
    store: db
    key: id
    events: cache
    fields:
      id: { type: i64 }
      name: { type: text }
      password: secret
  Plain:
    table: plain
    store: db
    key: id
    fields:
      id: { type: i64 }
sync:
  - { from: Acct, to: analytics }
"#;

/// A column added to a table change capture copies re-lists the table in
/// each sync publication (the ClickHouse copy's and the events'), in the
/// migration's transaction, when the publication exists and lists it: its
/// columns grow by the new one (never a secret), its row filter stays;
/// without publications, or for a table nothing copies, nothing happens.
#[tokio::test]
async fn an_added_column_of_a_synced_table_joins_the_existing_publications() {
    let v2 = SYNCED_V1
        .replace(
            "      password: secret\n",
            "      password: secret\n      extra: { type: text, nullable: true }\n      pin: { type: secret, nullable: true }\n",
        )
        .replace(
            "      id: { type: i64 }\nsync:",
            "      id: { type: i64 }\n      extra: { type: text, nullable: true }\nsync:",
        );
    let (c1, c2) = (cat_of(SYNCED_V1), cat_of(&v2));
    let names: Vec<&str> = c2.tables[0]
        .publications
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["strata_db_analytics", "strata_db_cache"]);
    assert!(c2.tables[1].publications.is_empty());
    assert_eq!(
        c2.tables[0].publications[0].columns,
        ["id", "name", "extra"]
    );
    let plan = migration::plan(&c1, &c2, &DiffOptions::default(), false).unwrap();
    let files = migration::files(&plan, 2, "v2", &c2).unwrap();
    insta::assert_snapshot!("synced_add_column", files[0].sql);

    for with_publications in [true, false] {
        let dir = TempDir::new("synced_add");
        let db = TestDb::new().await;
        let first = migration::files(
            &migration::plan(&Catalog::default(), &c1, &DiffOptions::default(), false).unwrap(),
            1,
            "v1",
            &c1,
        )
        .unwrap();
        migration::write(dir.path(), &first).unwrap();
        apply(&db, &dir).await;
        let mut conn = db.connect().await;
        if with_publications {
            // As `strata sync run` makes them (the events' with a row
            // filter, which the re-listing must keep).
            sqlx::raw_sql(
                "CREATE PUBLICATION strata_db_analytics FOR TABLE acct (id, name);
                 CREATE PUBLICATION strata_db_cache FOR TABLE acct (id, name) WHERE (id > 0)",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        migration::write(dir.path(), &files).unwrap();
        apply(&db, &dir).await;
        let listed: Vec<(String, String, Vec<String>, Option<String>)> = sqlx::query_as(
            "SELECT pubname::text, tablename::text, attnames::text[], rowfilter FROM pg_publication_tables ORDER BY pubname",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        if !with_publications {
            assert!(listed.is_empty(), "{listed:?}");
            continue;
        }
        let cols = || vec!["id".to_string(), "name".to_string(), "extra".to_string()];
        assert_eq!(
            listed,
            [
                ("strata_db_analytics".into(), "acct".into(), cols(), None),
                (
                    "strata_db_cache".into(),
                    "acct".into(),
                    cols(),
                    Some("(id > 0)".to_string())
                ),
            ]
        );
    }
}
