//! # strata-migrate-files
//!
//! The one reader of a migrations folder. `strata migrate diff` (to number
//! the next migration), `strata migrate apply|status` and the runner
//! (`strata_sdk::migrate`, which re-exports this crate as
//! `strata_sdk::migrate::files`), and `strata_codegen::build` (to embed the
//! files) all call [`read_dir`] or [`MigrationFile::new`], so a file one of
//! them applies is a file the others see, and a name one refuses is refused
//! by all with the same message.
//!
//! Rules:
//! - a migration is a regular file whose name ends in `.sql`; every other
//!   file (such as the `NNNN_name.catalog.json` that `diff` records) is
//!   ignored;
//! - its name is `<version>_<name>.sql`: `<version>` is ASCII digits (leading
//!   zeros allowed, at most `i64::MAX`), `<name>` is not empty. Any other
//!   name ending in `.sql`, in any case (`0005_a.SQL`), is an error
//!   ([`FilesError::BadFileName`], with the reason), never skipped;
//! - two files may not have one version ([`FilesError::DuplicateVersion`]);
//! - `-- strata:no-transaction` among the leading comment lines makes the
//!   file run outside a transaction (whatever the line endings);
//! - the checksum is SHA-256 of the text with every `\r\n` read as `\n`
//!   ([`checksum`]), so a Windows checkout of an applied file is not
//!   "changed"; [`checksum_matches`] also accepts the checksums that runners
//!   before this rule recorded (of the file's raw bytes).
//!
//! The shape follows sqlx's `sqlx-core/src/migrate/source.rs` (resolve a
//! folder once, in one place).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod sync_names;

/// The comment line that makes a migration run outside a transaction.
pub const NO_TRANSACTION: &str = "-- strata:no-transaction";

/// Why a migrations folder (or one file of it) cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Reading the folder or a file failed.
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A `.sql` file (any case) whose name is not `<version>_<name>.sql`.
    #[error("`{file}` is not a migration file name: {why}")]
    BadFileName { file: String, why: BadName },
    /// Two files with one version (`1_a.sql` and `0001_b.sql`).
    #[error("two migrations have version {version}: `{first}` and `{second}`")]
    DuplicateVersion {
        version: i64,
        first: String,
        second: String,
    },
}

/// What is wrong with a migration file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadName {
    /// Not `<version>_<name>.sql`.
    #[error("expected `<version>_<name>.sql`, e.g. `0003_add_notes.sql`")]
    Shape,
    /// `.SQL`, `.Sql`, …: a migration by its look, but the rule is `.sql`.
    #[error("it ends in another case of `.sql`; rename it to end in lowercase `.sql`")]
    ExtensionCase,
    /// The version is more than `i64::MAX`.
    #[error("its version is above 9223372036854775807, the largest a migration can have")]
    VersionTooLarge,
}

/// One migration file, read and checked. Two are equal when they are the
/// same migration (version, names, SQL, checksum, marker), wherever they
/// were read from: an embedded file equals the folder's.
#[derive(Clone)]
pub struct MigrationFile {
    /// The number before the first `_`.
    pub version: i64,
    /// What follows the first `_`, without `.sql`.
    pub name: String,
    /// The file name as found (`0003_add_notes.sql`).
    pub file_name: String,
    /// Where it was read from; `None` for files given in memory.
    pub path: Option<PathBuf>,
    /// The text, as read (line endings untouched).
    pub sql: String,
    /// [`checksum`] of `sql`: lower-case hex SHA-256.
    pub checksum: String,
    /// Whether its leading comments hold [`NO_TRANSACTION`].
    pub no_transaction: bool,
}

impl PartialEq for MigrationFile {
    fn eq(&self, o: &Self) -> bool {
        (self.version, &self.name, &self.file_name, &self.sql)
            == (o.version, &o.name, &o.file_name, &o.sql)
            && (&self.checksum, self.no_transaction) == (&o.checksum, o.no_transaction)
    }
}

impl Eq for MigrationFile {}

impl std::fmt::Debug for MigrationFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationFile")
            .field("version", &self.version)
            .field("name", &self.name)
            .field("path", &self.path)
            .field("checksum", &self.checksum)
            .field("no_transaction", &self.no_transaction)
            .finish_non_exhaustive()
    }
}

impl MigrationFile {
    /// Checks `file_name` and reads the properties of `sql`.
    pub fn new(file_name: &str, sql: impl Into<String>) -> Result<Self, FilesError> {
        let (version, name) = parse_file_name(file_name)?;
        let sql: String = sql.into();
        // A UTF-8 byte-order mark (some Windows editors write one) is not
        // SQL: PostgreSQL refuses it as a syntax error, so it is dropped
        // here, for every reader alike (checksum, marker, what is sent).
        let sql = match sql.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => sql,
        };
        Ok(MigrationFile {
            version,
            name: name.to_string(),
            file_name: file_name.to_string(),
            path: None,
            checksum: checksum(&sql),
            no_transaction: no_transaction(&sql),
            sql,
        })
    }

    /// Whether `recorded` (a checksum stored when the file was applied)
    /// is this file's; see [`checksum_matches`].
    pub fn matches(&self, recorded: &str) -> bool {
        recorded == self.checksum || checksum_matches(recorded, &self.sql)
    }
}

/// `0003_add_notes.sql` → `(3, "add_notes")`; any other name of a `.sql`
/// file is [`FilesError::BadFileName`].
pub fn parse_file_name(file_name: &str) -> Result<(i64, &str), FilesError> {
    let bad = |why| FilesError::BadFileName {
        file: file_name.to_string(),
        why,
    };
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(bad(match is_candidate(file_name) {
            true => BadName::ExtensionCase,
            false => BadName::Shape,
        }));
    };
    let (v, name) = stem.split_once('_').ok_or(bad(BadName::Shape))?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return Err(bad(BadName::Shape));
    }
    let version = v
        .parse::<i64>()
        .map_err(|_| bad(BadName::VersionTooLarge))?;
    Ok((version, name))
}

/// Whether a directory entry named `file_name` is a migration candidate
/// (ends in `.sql`, in any case: `0005_a.SQL` is refused by name, not
/// skipped); the others are not migrations and are ignored.
pub fn is_candidate(file_name: &str) -> bool {
    let n = file_name.len();
    n >= 4 && file_name.is_char_boundary(n - 4) && file_name[n - 4..].eq_ignore_ascii_case(".sql")
}

/// Every migration of `dir`, in version order. A `.sql` entry whose name is
/// not valid UTF-8 or not `<version>_<name>.sql` is an error.
pub fn read_dir(dir: impl AsRef<Path>) -> Result<Vec<MigrationFile>, FilesError> {
    let dir = dir.as_ref();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| FilesError::Io { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let Some(os_name) = path.file_name() else {
            continue;
        };
        let lossy = os_name.to_string_lossy();
        if !is_candidate(&lossy) || !path.is_file() {
            continue;
        }
        let Some(file_name) = os_name.to_str() else {
            return Err(FilesError::BadFileName {
                file: lossy.into_owned(),
                why: BadName::Shape,
            });
        };
        // Check the name before reading, so a bad name is the error even
        // when the file is unreadable.
        parse_file_name(file_name)?;
        let sql = std::fs::read_to_string(&path).map_err(io(&path))?;
        let mut file = MigrationFile::new(file_name, sql)?;
        file.path = Some(path);
        files.push(file);
    }
    sort_and_check(files)
}

/// Migrations given in memory (`include_str!`): (file name, SQL), in version order.
pub fn from_files<N: AsRef<str>, S: Into<String>>(
    files: impl IntoIterator<Item = (N, S)>,
) -> Result<Vec<MigrationFile>, FilesError> {
    let files = files
        .into_iter()
        .map(|(n, s)| MigrationFile::new(n.as_ref(), s))
        .collect::<Result<Vec<_>, _>>()?;
    sort_and_check(files)
}

fn sort_and_check(mut files: Vec<MigrationFile>) -> Result<Vec<MigrationFile>, FilesError> {
    files.sort_by(|a, b| (a.version, &a.file_name).cmp(&(b.version, &b.file_name)));
    for w in files.windows(2) {
        if w[0].version == w[1].version {
            return Err(FilesError::DuplicateVersion {
                version: w[0].version,
                first: w[0].file_name.clone(),
                second: w[1].file_name.clone(),
            });
        }
    }
    Ok(files)
}

/// The checksum of a migration's text: lower-case hex SHA-256 of the text
/// with each `\r\n` read as `\n`. For a file with `\n` endings this is the
/// SHA-256 of its bytes, as before line endings were normalised.
pub fn checksum(sql: &str) -> String {
    if sql.contains("\r\n") {
        sha256_hex(&sql.replace("\r\n", "\n"))
    } else {
        sha256_hex(sql)
    }
}

/// Whether `recorded` is the checksum of `sql` under any line endings: the
/// normalised [`checksum`], or the SHA-256 of the raw text with `\n` or
/// `\r\n` endings (what runners before normalisation recorded for a file
/// applied from a Unix or a Windows checkout). Any other edit is a mismatch.
pub fn checksum_matches(recorded: &str, sql: &str) -> bool {
    let lf = sql.replace("\r\n", "\n");
    recorded == sha256_hex(&lf)
        || recorded == sha256_hex(sql)
        || recorded == sha256_hex(&lf.replace('\n', "\r\n"))
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether the leading comment lines of `sql` (before the first line of
/// code) hold [`NO_TRANSACTION`]. Lines may end in `\n` or `\r\n`; a UTF-8
/// byte-order mark at the start is skipped.
pub fn no_transaction(sql: &str) -> bool {
    sql.trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .take_while(|l| l.is_empty() || l.starts_with("--"))
        .any(|l| l == NO_TRANSACTION)
}

#[cfg(test)]
mod tests;
