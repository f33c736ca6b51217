//! Migrations applied to an empty database give exactly the catalog the
//! schema describes: columns, types, nullability, defaults, keys, unique and
//! foreign-key constraints (with ON DELETE), indexes (DESC, partial, method).

mod pg_common;

use pg_common::{catalog, live, postgres_fixtures, root, TempDir, TestDb};
use strata_codegen::postgres::{diff::DiffOptions, migration};
use strata_sdk::migrate::{Migrations, Migrator};

async fn assert_live_matches(db: &TestDb, cat: &strata_codegen::postgres::catalog::Catalog) {
    let mut conn = db.connect().await;
    let live = live::read(&mut conn, cat.schema.as_deref()).await;
    let expected = live::expected(&mut conn, cat).await;
    assert_eq!(live, expected);
}

/// As [`assert_live_matches`], but a column added by `ALTER TABLE` comes
/// last, so after a migration the column order may differ from a fresh
/// `CREATE TABLE` (e.g. a table whose key went from `(owner_id, name)` to a
/// new `id`).
async fn assert_live_matches_in_any_column_order(
    db: &TestDb,
    cat: &strata_codegen::postgres::catalog::Catalog,
) {
    let mut conn = db.connect().await;
    let mut live = live::read(&mut conn, cat.schema.as_deref()).await;
    let mut expected = live::expected(&mut conn, cat).await;
    for c in [&mut live, &mut expected] {
        for t in &mut c.tables {
            t.columns.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    assert_eq!(live, expected);
}

#[tokio::test]
async fn trading_migrations_build_the_schema_catalog() {
    let db = TestDb::new().await;
    let migrations = Migrations::from_dir(root().join("generated/migrations")).unwrap();
    assert!(!migrations.is_empty());
    let mut conn = db.connect().await;
    let report = Migrator::new(migrations.clone())
        .apply(&mut conn)
        .await
        .unwrap();
    assert_eq!(report.applied.len(), migrations.len());
    let cat = catalog(&root().join("schema"));
    assert!(cat.tables.len() >= 7, "the trading schema has its tables");
    assert_live_matches(&db, &cat).await;
}

#[tokio::test]
async fn every_fixture_migrates_to_its_catalog() {
    let fixtures = postgres_fixtures();
    assert!(fixtures.len() >= 5);
    for path in fixtures {
        let cat = catalog(&path);
        let tmp = TempDir::new("fixture");
        let files =
            migration::next(&cat, tmp.path(), None, &DiffOptions::default(), false).unwrap();
        migration::write(tmp.path(), &files).unwrap();
        let db = TestDb::new().await;
        let mut conn = db.connect().await;
        Migrator::new(Migrations::from_dir(tmp.path()).unwrap())
            .apply(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_live_matches(&db, &cat).await;
    }
}

/// The comparison above can fail: drift in the database is seen.
#[tokio::test]
async fn drift_in_the_database_is_detected() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    Migrator::new(Migrations::from_dir(root().join("generated/migrations")).unwrap())
        .apply(&mut conn)
        .await
        .unwrap();
    let cat = catalog(&root().join("schema"));
    for drift in [
        "ALTER TABLE live_order ALTER COLUMN symbol DROP NOT NULL",
        "ALTER TABLE live_order ALTER COLUMN fee SET DEFAULT 1",
        "DROP INDEX live_order_status_idx",
        "ALTER TABLE positions DROP CONSTRAINT positions_strategy_id_fkey",
        "ALTER TYPE order_side ADD VALUE 'SHORT'",
    ] {
        sqlx::raw_sql("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::raw_sql(drift).execute(&mut conn).await.unwrap();
        let live = live::read(&mut conn, None).await;
        let expected = live::expected(&mut conn, &cat).await;
        assert_ne!(live, expected, "drift not seen: {drift}");
        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    let live = live::read(&mut conn, None).await;
    assert_eq!(live, live::expected(&mut conn, &cat).await);
}

/// One database taken through every fixture in turn (destructive steps
/// allowed): drops of tables with foreign keys, of enums, and creates, each
/// ending in exactly the next fixture's catalog.
#[tokio::test]
async fn one_database_through_every_fixture() {
    let db = TestDb::new().await;
    let tmp = TempDir::new("chain");
    let mut conn = db.connect().await;
    let mut paths = postgres_fixtures();
    // Back to the first, too.
    paths.push(paths[0].clone());
    for path in paths {
        let cat = catalog(&path);
        if cat.schema.is_some() {
            continue; // moving between PostgreSQL schemas is refused by design
        }
        let files = migration::next(&cat, tmp.path(), None, &DiffOptions::default(), true).unwrap();
        migration::write(tmp.path(), &files).unwrap();
        Migrator::new(Migrations::from_dir(tmp.path()).unwrap())
            .apply(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("to {}: {e}", path.display()));
        assert_live_matches_in_any_column_order(&db, &cat).await;
    }
}
