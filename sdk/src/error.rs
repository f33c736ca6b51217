//! The typed errors every generated repository returns, instead of a bare
//! `sqlx::Error`: callers match on what went wrong (a missing row, a unique
//! key taken, a stale version) without reading SQLSTATE codes.

use std::fmt;

/// What a repository call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No row has the given key.
    #[error("no `{entity}` row has this key")]
    NotFound { entity: &'static str },
    /// A unique key or primary key is already taken (SQLSTATE 23505).
    #[error("conflict on unique key `{constraint}`")]
    Conflict { constraint: String },
    /// A referenced row does not exist, or is still referenced (SQLSTATE 23503).
    #[error("foreign key `{constraint}` violated")]
    ForeignKey { constraint: String },
    /// The row was changed since it was read: the optimistic lock failed and
    /// nothing was written.
    #[error("`{entity}` was changed concurrently (expected version {expected}, found {found})")]
    StaleVersion {
        entity: &'static str,
        expected: i64,
        found: i64,
    },
    /// A value the database refused: too long, a NUL byte in text, out of
    /// range, a NULL in a required column, a failed check.
    #[error("invalid value ({code}): {message}")]
    InvalidValue { code: String, message: String },
    /// A serialization failure or deadlock: the transaction may be retried.
    #[error("transaction conflict ({code}), retry: {message}")]
    Retry { code: String, message: String },
    /// A batch update matched fewer rows than it was given (a missing key or
    /// a stale version); the whole batch was rolled back.
    #[error("batch of `{entity}`: {affected} of {expected} rows matched; nothing was written")]
    BatchIncomplete {
        entity: &'static str,
        expected: u64,
        affected: u64,
    },
    /// A setting could not be read (a `${VAR}` with no value and no default).
    #[error("configuration: {0}")]
    Config(String),
    /// Anything else the driver reported.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Database(sqlx::Error),
}

/// Results of repository calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(feature = "postgres")]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let sqlx::Error::Database(db) = &e else {
            return Error::Database(e);
        };
        let Some(code) = db.code().map(|c| c.into_owned()) else {
            return Error::Database(e);
        };
        let constraint = || db.constraint().unwrap_or("?").to_string();
        match code.as_str() {
            "23505" => Error::Conflict {
                constraint: constraint(),
            },
            "23503" => Error::ForeignKey {
                constraint: constraint(),
            },
            // Class 22 (data exception), not-null and check violations.
            c if c.starts_with("22") || c == "23502" || c == "23514" || c == "21000" => {
                Error::InvalidValue {
                    message: db.message().to_string(),
                    code,
                }
            }
            "40001" | "40P01" => Error::Retry {
                message: db.message().to_string(),
                code,
            },
            _ => Error::Database(e),
        }
    }
}

impl Error {
    /// The SQLSTATE of a database error, if there was one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Error::Conflict { .. } => Some("23505".into()),
            Error::ForeignKey { .. } => Some("23503".into()),
            Error::InvalidValue { code, .. } | Error::Retry { code, .. } => Some(code.clone()),
            #[cfg(feature = "postgres")]
            Error::Database(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

/// Counts of a batch write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl std::ops::AddAssign for BatchCounts {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.deleted += o.deleted;
    }
}

impl fmt::Display for BatchCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} inserted, {} updated, {} deleted",
            self.inserted, self.updated, self.deleted
        )
    }
}
