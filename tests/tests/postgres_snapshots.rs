//! Snapshots of the PostgreSQL DDL and of every migration, for the trading
//! schema and each fixture schema (one snapshot per schema and artifact, the
//! input path in the snapshot's metadata); and the check that `schema/` has
//! no change that `generated/migrations/` does not capture.

mod pg_common;

use std::path::{Path, PathBuf};

use pg_common::{catalog, model, root, TempDir};
use strata_codegen::postgres::{diff::DiffOptions, migration};

fn fixtures() -> Vec<PathBuf> {
    pg_common::postgres_fixtures()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn snapshot(name: &str, input: &Path, description: &str, text: &str) {
    let mut s = insta::Settings::clone_current();
    s.set_input_file(input);
    s.set_description(format!("{description}: {}", rel(input)));
    s.set_omit_expression(true);
    s.bind(|| insta::assert_snapshot!(name, text));
}

fn ddl(path: &Path) -> String {
    let files = strata_codegen::generate(&model(path), &strata_codegen::Settings::default());
    let ddl: Vec<&str> = files
        .files
        .iter()
        .filter(|(k, _)| k.starts_with("postgres/"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ddl.len(), 1, "one postgres DDL file for {}", path.display());
    ddl[0].to_string()
}

#[test]
fn ddl_of_the_trading_schema() {
    let schema = root().join("schema");
    snapshot("ddl__trading", &schema, "PostgreSQL DDL", &ddl(&schema));
}

#[test]
fn ddl_of_each_fixture() {
    for f in fixtures() {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        snapshot(&format!("ddl__{name}"), &f, "PostgreSQL DDL", &ddl(&f));
    }
}

#[test]
fn migrations_of_the_trading_schema() {
    let dir = root().join("generated/migrations");
    let files = migration::list(&dir).unwrap();
    assert!(!files.is_empty(), "generated/migrations holds migrations");
    for (v, name, path) in files {
        let sql = std::fs::read_to_string(&path).unwrap();
        snapshot(
            &format!("migration__trading__{v:04}_{name}"),
            &path,
            "checked-in migration",
            &sql,
        );
    }
}

#[test]
fn migrations_of_each_fixture() {
    for f in fixtures() {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        let tmp = TempDir::new("snap");
        let files = migration::next(
            &catalog(&f),
            tmp.path(),
            None,
            &DiffOptions::default(),
            false,
        )
        .unwrap();
        assert!(!files.is_empty());
        for m in files {
            snapshot(
                &format!("migration__{name}__{}", m.stem()),
                &f,
                "first migration",
                &m.sql,
            );
        }
    }
}

/// v1 → v2 → v3 of tests/fixtures/migrate: renames, additions, enum values,
/// and (allowed) destructive steps.
#[test]
fn migrations_of_an_evolving_schema() {
    let tmp = TempDir::new("evolve");
    for (v, allow) in [("v1", false), ("v2", false), ("v3", true), ("v4", true)] {
        let input = root().join(format!("tests/fixtures/migrate/{v}.yaml"));
        let files = migration::next(
            &catalog(&input),
            tmp.path(),
            Some(v),
            &DiffOptions::default(),
            allow,
        )
        .unwrap();
        migration::write(tmp.path(), &files).unwrap();
        for m in files {
            snapshot(
                &format!("migration__evolve__{}", m.stem()),
                &input,
                "migration",
                &m.sql,
            );
        }
    }
}

/// Fails when `schema/` changed and no migration in `generated/migrations`
/// captures the change yet.
#[test]
fn schema_changes_are_captured_by_a_migration() {
    let dir = root().join("generated/migrations");
    let (recorded, _) = migration::latest_catalog(&dir).unwrap();
    let current = catalog(&root().join("schema"));
    let plan =
        strata_codegen::postgres::diff::diff(&recorded, &current, &DiffOptions::default()).unwrap();
    let pending: Vec<&str> = plan.steps().map(|s| s.sql.as_str()).collect();
    assert!(
        pending.is_empty(),
        "schema/ has changes no migration captures; run\n  \
         cargo run -p strata-codegen --bin strata -- migrate diff schema --dir generated/migrations --name <what_changed>\n\
         pending steps:\n{}",
        pending.join("\n")
    );
}
