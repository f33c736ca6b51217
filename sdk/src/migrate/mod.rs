//! The migration runner: applies a folder of `NNNN_name.sql` files to
//! PostgreSQL in version order, each once, and records them. Used by
//! `strata migrate apply|status`, and by applications at start-up:
//!
//! ```no_run
//! # async fn run() -> Result<(), strata_sdk::migrate::MigrateError> {
//! use strata_sdk::migrate::{Migrations, Migrator};
//! let migrator = Migrator::new(Migrations::from_dir("migrations")?);
//! let mut conn = strata_sdk::migrate::connect("postgres://postgres@127.0.0.1/app").await?;
//! let report = migrator.apply(&mut conn).await?;
//! println!("applied {} migrations", report.applied.len());
//! # Ok(()) }
//! ```
//!
//! Each migration runs in its own transaction together with the row that
//! records it, unless its leading comments hold `-- strata:no-transaction`;
//! then its statements run one by one and it is recorded after the last.
//! The whole run holds a PostgreSQL advisory lock (taken by polling
//! `pg_try_advisory_lock`, so a waiting run holds no transaction that a
//! `CREATE INDEX CONCURRENTLY` in the running one would wait for), so
//! concurrent runs apply each migration exactly once. An applied migration whose file changed, or
//! whose file is gone, stops the run before anything is applied.

mod run;
pub mod split;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use run::{connect, ApplyReport, MigrationState, MigrationStatus, Migrator};

/// The comment line that makes a migration run outside a transaction.
pub const NO_TRANSACTION: &str = "-- strata:no-transaction";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{file}` is not a migration file name: expected `<version>_<name>.sql`, e.g. `0003_add_notes.sql`")]
    BadFileName { file: String },
    #[error("two migrations have version {version}: `{first}` and `{second}`")]
    DuplicateVersion {
        version: i64,
        first: String,
        second: String,
    },
    #[error("migration {version} `{name}` was applied, but its file has changed since (checksum {applied} when applied, {local} now); restore it and put the change in a new migration")]
    Changed {
        version: i64,
        name: String,
        applied: String,
        local: String,
    },
    #[error("migration {version} `{name}` was applied, but its file is missing from the migrations folder")]
    Missing { version: i64, name: String },
    #[error("migration {version} `{name}` failed{}: {source}", at_line(.at))]
    Failed {
        version: i64,
        name: String,
        /// Where in the file: `line N: <first line of the statement>`.
        at: Option<String>,
        source: sqlx::Error,
    },
    #[error("`{0}` is not a valid table name for the migrations record")]
    BadTable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

fn at_line(at: &Option<String>) -> String {
    at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default()
}

/// One migration file.
#[derive(Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub sql: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub checksum: String,
    pub no_transaction: bool,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("version", &self.version)
            .field("name", &self.name)
            .field("checksum", &self.checksum)
            .field("no_transaction", &self.no_transaction)
            .finish_non_exhaustive()
    }
}

impl Migration {
    /// Parses a file name (`0003_add_notes.sql`) and its contents.
    pub fn new(file_name: &str, sql: impl Into<String>) -> Result<Self, MigrateError> {
        let bad = || MigrateError::BadFileName {
            file: file_name.to_string(),
        };
        let stem = file_name.strip_suffix(".sql").ok_or_else(bad)?;
        let (v, name) = stem.split_once('_').ok_or_else(bad)?;
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
            return Err(bad());
        }
        let version = v.parse().map_err(|_| bad())?;
        let sql = sql.into();
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        let no_transaction = sql
            .lines()
            .map(str::trim)
            .take_while(|l| l.is_empty() || l.starts_with("--"))
            .any(|l| l == NO_TRANSACTION);
        Ok(Migration {
            version,
            name: name.to_string(),
            sql,
            checksum,
            no_transaction,
        })
    }
}

/// The migrations of a folder (or embedded), in version order.
#[derive(Debug, Clone, Default)]
pub struct Migrations {
    list: Vec<Migration>,
}

impl Migrations {
    /// Every `*.sql` file of `dir`; other files (such as the `.catalog.json`
    /// that `strata migrate diff` records) are ignored.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, MigrateError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |e| MigrateError::Io { path, source: e }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            if path.is_file() && file.ends_with(".sql") {
                let sql = std::fs::read_to_string(&path).map_err(io(&path))?;
                files.push((file.to_string(), sql));
            }
        }
        Self::from_files(files)
    }

    /// Migrations held in memory, e.g. with `include_str!`: (file name, SQL).
    pub fn from_files<N: AsRef<str>, S: Into<String>>(
        files: impl IntoIterator<Item = (N, S)>,
    ) -> Result<Self, MigrateError> {
        let mut list = Vec::new();
        for (name, sql) in files {
            list.push(Migration::new(name.as_ref(), sql)?);
        }
        list.sort_by_key(|m| m.version);
        for w in list.windows(2) {
            if w[0].version == w[1].version {
                return Err(MigrateError::DuplicateVersion {
                    version: w[0].version,
                    first: w[0].name.clone(),
                    second: w[1].name.clone(),
                });
            }
        }
        Ok(Migrations { list })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.list.iter().find(|m| m.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::{MigrateError, Migration, Migrations};

    #[test]
    fn file_names_versions_and_markers() {
        let m = Migration::new(
            "0012_add_notes.sql",
            "-- x\n-- strata:no-transaction\nSELECT 1;",
        )
        .unwrap();
        assert_eq!(
            (m.version, m.name.as_str(), m.no_transaction),
            (12, "add_notes", true)
        );
        // The marker counts only among the leading comments.
        let m = Migration::new("3_a.sql", "SELECT 1;\n-- strata:no-transaction\n").unwrap();
        assert!(!m.no_transaction);
        assert_eq!(m.checksum.len(), 64);
        for bad in [
            "init.sql",
            "_a.sql",
            "12.sql",
            "12_.sql",
            "x1_a.sql",
            "0001_a.txt",
        ] {
            assert!(
                matches!(
                    Migration::new(bad, ""),
                    Err(MigrateError::BadFileName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn versions_are_ordered_numerically_and_unique() {
        let ms = Migrations::from_files([("10_b.sql", ""), ("9_a.sql", ""), ("0011_c.sql", "")])
            .unwrap();
        let v: Vec<i64> = ms.iter().map(|m| m.version).collect();
        assert_eq!(v, [9, 10, 11]);
        assert!(matches!(
            Migrations::from_files([("1_a.sql", ""), ("001_b.sql", "")]),
            Err(MigrateError::DuplicateVersion { version: 1, .. })
        ));
    }
}
