//! Shared by the PostgreSQL and migration tests: a database per test, the
//! `strata` binary, and the live catalog read back from pg_catalog.
#![allow(dead_code)]

pub mod live;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root (the parent of `tests/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A fresh database per test, dropped with the value.
#[allow(unused_imports)]
pub use strata_tests::support::PgDatabase as TestDb;

/// The `strata` binary, built once per test process.
pub fn strata_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test> → target/<profile>/strata
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(Path::parent).expect("target dir");
        let mut args = vec!["build", "-q", "-p", "strata-codegen", "--bin", "strata"];
        if dir.file_name().is_some_and(|n| n == "release") {
            args.push("--release");
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = std::process::Command::new(cargo)
            .args(&args)
            .current_dir(root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the strata binary failed");
        dir.join(format!("strata{}", std::env::consts::EXE_SUFFIX))
    })
}

/// Runs `strata` with `args`: (exit code, stdout, stderr).
pub fn strata(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(strata_bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("strata_{tag}_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixture schemas of `tests/fixtures/valid/` that have a postgres store,
/// in name order. Other back ends add fixtures there with no postgres store
/// (analytics or time-series only); those have nothing to migrate.
pub fn postgres_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/valid"))
        .expect("tests/fixtures/valid exists")
        .map(|e| e.expect("readable fixture folder").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !strata_codegen::postgres::catalog::postgres_stores(&model(p)).is_empty())
        .collect();
    v.sort();
    v
}

/// Compiles a schema file or folder, panicking with the rendered diagnostics.
pub fn model(path: &Path) -> strata_codegen::Model {
    let sources = strata_codegen::load(path).expect("schema loads");
    strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

/// The catalog of the model's only postgres store.
pub fn catalog(path: &Path) -> strata_codegen::postgres::catalog::Catalog {
    let m = model(path);
    let stores = strata_codegen::postgres::catalog::postgres_stores(&m);
    assert_eq!(stores.len(), 1, "one postgres store in {}", path.display());
    strata_codegen::postgres::catalog::catalog(&m, stores[0])
}
