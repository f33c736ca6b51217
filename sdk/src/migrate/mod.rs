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
//! The folder is read by [`files::read_dir`], the one reader that
//! `strata migrate diff` and `strata_codegen::build` use too: the same file
//! names are accepted and refused everywhere, and checksums do not depend on
//! line endings.
//!
//! Each migration runs in its own transaction together with the row that
//! records it, unless its leading comments hold `-- strata:no-transaction`;
//! then its statements run one by one and it is recorded after the last.
//! The whole run holds a PostgreSQL advisory lock (taken by polling
//! `pg_try_advisory_lock`, so a waiting run holds no transaction that a
//! `CREATE INDEX CONCURRENTLY` in the running one would wait for), so
//! concurrent runs apply each migration exactly once. Applied migrations are
//! recorded in `strata_migrations` on the search path, or, with
//! [`Migrator::with_schema`], in the store's own schema.
//!
//! Statements are split as `psql` splits a file ([`split`]), so function
//! bodies apply; in a no-transaction migration a named `CREATE INDEX
//! CONCURRENTLY` replaces an INVALID leftover of a failed earlier build and
//! must end valid ([`MigrateError::InvalidIndex`]); when it fails, the
//! INVALID index it left is dropped before the error is returned. An applied migration whose file changed, or
//! whose file is gone, stops the run before anything is applied.

mod concurrent;
mod record;
mod run;
pub mod split;

use std::path::Path;

/// The folder reader shared with `strata migrate diff` and build scripts.
pub use strata_migrate_files as files;

pub use run::{
    connect, lock_holder, ApplyReport, MigrationState, MigrationStatus, Migrator, LOCK_KEY,
};

/// The comment line that makes a migration run outside a transaction.
pub const NO_TRANSACTION: &str = files::NO_TRANSACTION;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{file}` is not a migration file name: {why}")]
    BadFileName { file: String, why: files::BadName },
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
    /// The database has a migration newer than every one of this set: a
    /// newer program applied it. See `Migrator::allow_newer`.
    #[error("the database has migration {version} `{name}`, newer than this program's latest ({latest}): a newer version of the program applied it; deploy that version, or, during a rolling deploy or rollback whose newer migrations are compatible with this program, start it with `Migrator::allow_newer(true)` (`strata migrate apply --allow-newer`)")]
    Newer {
        version: i64,
        name: String,
        latest: i64,
    },
    /// A statement of the migration failed; the message holds PostgreSQL's
    /// DETAIL and HINT when it sent them.
    #[error("migration {version} `{name}` failed{}: {source}{}", at_line(.at), detail_hint(.source))]
    Failed {
        version: i64,
        name: String,
        /// Where in the file: `line N: <first line of the statement>`.
        at: Option<String>,
        source: sqlx::Error,
    },
    /// A `CREATE INDEX CONCURRENTLY` of a no-transaction migration ran but
    /// its index is INVALID; the index is dropped and the migration is not
    /// recorded.
    #[error("migration {version} `{name}`: index \"{index}\" on {table} was INVALID after CREATE INDEX CONCURRENTLY and has been dropped; the migration is not recorded (apply again to build it again)")]
    InvalidIndex {
        version: i64,
        name: String,
        index: String,
        table: String,
    },
    /// This migrator records on the search path, where nothing is
    /// recorded yet, but another schema's record holds these migrations:
    /// they were applied for a store with `schema:`. Nothing was applied.
    #[error("no migration is recorded in `{here}` (the search path), but `{there}` records these migrations: they were applied for a store with `schema:`; apply with the generated `migrator()` or `Migrator::with_schema(..)` to record there (nothing was applied)")]
    RecordedElsewhere { here: String, there: String },
    #[error("`{0}` is not a valid name for the migrations record (table or schema)")]
    BadTable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<files::FilesError> for MigrateError {
    fn from(e: files::FilesError) -> Self {
        match e {
            files::FilesError::Io { path, source } => MigrateError::Io { path, source },
            files::FilesError::BadFileName { file, why } => MigrateError::BadFileName { file, why },
            files::FilesError::DuplicateVersion {
                version,
                first,
                second,
            } => MigrateError::DuplicateVersion {
                version,
                first,
                second,
            },
        }
    }
}

/// PostgreSQL's DETAIL and HINT of a database error, one per line.
fn detail_hint(e: &sqlx::Error) -> String {
    let Some(pg) = e
        .as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
    else {
        return String::new();
    };
    let mut out = String::new();
    if let Some(d) = pg.detail() {
        out.push_str(&format!("\nDETAIL: {d}"));
    }
    if let Some(h) = pg.hint() {
        out.push_str(&format!("\nHINT: {h}"));
    }
    out
}

fn at_line(at: &Option<String>) -> String {
    at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default()
}

/// One migration file: the one reader's type ([`files::MigrationFile`]:
/// version, name, SQL, checksum, no-transaction marker), so the runner,
/// `build.rs` and `strata migrate diff` read a folder alike.
pub type Migration = files::MigrationFile;

/// The migrations of a folder (or embedded), in version order.
#[derive(Debug, Clone, Default)]
pub struct Migrations {
    list: Vec<Migration>,
}

impl Migrations {
    /// Every `*.sql` file of `dir`; other files (such as the `.catalog.json`
    /// that `strata migrate diff` records) are ignored.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, MigrateError> {
        Ok(Migrations {
            list: files::read_dir(dir)?,
        })
    }

    /// Migrations held in memory, e.g. with `include_str!`: (file name, SQL).
    pub fn from_files<N: AsRef<str>, S: Into<String>>(
        files: impl IntoIterator<Item = (N, S)>,
    ) -> Result<Self, MigrateError> {
        Ok(Migrations {
            list: files::from_files(files)?,
        })
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
    fn the_runner_reads_names_like_the_folder_reader() {
        let m = Migration::new(
            "0012_add_notes.sql",
            "-- x\r\n-- strata:no-transaction\r\nSELECT 1;",
        )
        .unwrap();
        assert_eq!(
            (m.version, m.name.as_str(), m.no_transaction),
            (12, "add_notes", true)
        );
        let err = MigrateError::from(Migration::new("init.sql", "").unwrap_err());
        assert!(matches!(err, MigrateError::BadFileName { .. }));
        assert_eq!(
            err.to_string(),
            super::files::parse_file_name("init.sql")
                .unwrap_err()
                .to_string()
        );
        assert!(matches!(
            Migrations::from_files([("1_a.sql", ""), ("001_b.sql", "")]),
            Err(MigrateError::DuplicateVersion { version: 1, .. })
        ));
    }

    #[test]
    fn a_crlf_checkout_matches_its_lf_record() {
        let lf = Migration::new("1_a.sql", "SELECT 1;\nSELECT 2;\n").unwrap();
        let crlf = Migration::new("1_a.sql", "SELECT 1;\r\nSELECT 2;\r\n").unwrap();
        assert_eq!(lf.checksum, crlf.checksum);
        assert!(crlf.matches(&lf.checksum));
        let edited = Migration::new("1_a.sql", "SELECT 1;\r\nSELECT 3;\r\n").unwrap();
        assert!(!edited.matches(&lf.checksum));
    }
}
