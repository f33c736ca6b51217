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
    /// range, a NULL in a required column, a failed check; or a stored
    /// value the SDK cannot read (code [`DECODE`], the message names the
    /// column).
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
    /// A value the SDK refuses before anything is written, because a store
    /// would change it silently: a decimal with more scale or integer
    /// digits than its column, a secret holding the redaction marker.
    #[error("`{entity}.{field}`: {reason}")]
    Refused {
        entity: &'static str,
        field: &'static str,
        reason: String,
    },
    /// A patch of a versioned entity set neither `expected_version` nor
    /// `any_version: true`: without one, concurrent read-modify-writes lose
    /// updates. Nothing was written.
    #[error("a patch of `{entity}` needs `expected_version` (or `any_version: true`, or only `add_<field>` increments with `any_version: true`)")]
    VersionRequired { entity: &'static str },
    /// A setting could not be read (a `${VAR}` with no value and no default).
    #[error("configuration: {0}")]
    Config(String),
    /// Waiting took too long: for a pooled connection (`acquire_timeout`),
    /// for a statement (`statement_timeout`, SQLSTATE 57014) or a lock
    /// (`lock_timeout`, 55P03). Nothing was written by the statement that
    /// timed out; the call may be retried.
    #[error("timed out: {message}")]
    Timeout { message: String },
    /// The connection failed or the server is unavailable (I/O or TLS
    /// error, SQLSTATE class 08, an administrator or crash shutdown
    /// 57P01/57P02, a server starting 57P03, a closed pool). For a read,
    /// retry; for a write outside a transaction it is
    /// [`Error::OutcomeUnknown`] instead.
    #[error("connection failed: {message}")]
    Connection { message: String },
    /// A write's connection failed after the statement or `COMMIT` was
    /// sent: it may have committed or not. Read the row back (or rely on
    /// an idempotent key) before retrying.
    #[error(
        "the outcome of this write is unknown (the connection failed after it was sent): {message}"
    )]
    OutcomeUnknown { message: String },
    /// A change event could not be read: an entry of an unknown format
    /// version, a row that does not decode into the entity's type, or a
    /// resume position older than what the stream still holds.
    #[error("change events: {message}")]
    Event { message: String },
    /// Anything else the driver reported.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Database(sqlx::Error),
}

/// The `code` of an [`Error::InvalidValue`] for a stored value the SDK
/// could not decode (SQLSTATE class 22, data exception; raised by the
/// SDK, not the server).
pub const DECODE: &str = "22000";

/// Results of repository calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(feature = "postgres")]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let message = || e.to_string();
        match &e {
            sqlx::Error::PoolTimedOut => return Error::Timeout { message: message() },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => return Error::Connection { message: message() },
            // A value another tool wrote that the Rust type cannot hold
            // (numeric NaN in a `Decimal`, a jsonb number past f64, an enum
            // label the SDK does not know): an error for that row, like
            // `infinity` in a timestamp, not a driver catch-all.
            sqlx::Error::ColumnDecode { index, source } => {
                return Error::InvalidValue {
                    code: DECODE.into(),
                    message: format!(
                        "column {} holds a value the SDK cannot read: {source}",
                        index.trim_matches('"')
                    ),
                };
            }
            _ => {}
        }
        let sqlx::Error::Database(db) = &e else {
            return Error::Database(e);
        };
        let Some(code) = db.code().map(|c| c.into_owned()) else {
            return Error::Database(e);
        };
        let constraint = || db.constraint().unwrap_or("?").to_string();
        // PostgreSQL's DETAIL and HINT say which value and what to do.
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
        let detail = pg.and_then(|p| p.detail()).map(detail_text);
        let hint = pg.and_then(|p| p.hint()).map(|h| format!(" HINT: {h}"));
        let full = || {
            let (d, h) = (
                detail.as_deref().unwrap_or(""),
                hint.as_deref().unwrap_or(""),
            );
            format!("{}{d}{h}", db.message())
        };
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
                    message: full(),
                    code,
                }
            }
            "40001" | "40P01" => Error::Retry {
                message: full(),
                code,
            },
            "57014" | "55P03" => Error::Timeout {
                message: db.message().to_string(),
            },
            c if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03") => {
                Error::Connection {
                    message: format!("{} ({code})", db.message()),
                }
            }
            _ => Error::Database(e),
        }
    }
}

/// A DETAIL as kept in an error: a row dump (`Failing row contains (…)`,
/// every column, secrets included) is left out.
fn detail_text(d: &str) -> String {
    match d.starts_with("Failing row contains") {
        true => " DETAIL: Failing row contains (values not shown)".into(),
        false => format!(" DETAIL: {d}"),
    }
}

impl Error {
    /// This error, as the error of a write that was sent and may have
    /// committed: a [`Error::Connection`] becomes [`Error::OutcomeUnknown`].
    pub fn after_send(self) -> Self {
        match self {
            Error::Connection { message } => Error::OutcomeUnknown { message },
            e => e,
        }
    }

    /// A short, stable name of the error's kind, for the `kind` label of
    /// `strata_statement_errors_total`: `not_found`, `conflict`,
    /// `foreign_key`, `stale_version`, `invalid_value`, `retry`,
    /// `batch_incomplete`, `refused`, `version_required`, `config`,
    /// `timeout`, `connection`, `outcome_unknown`, `database`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::ForeignKey { .. } => "foreign_key",
            Error::StaleVersion { .. } => "stale_version",
            Error::InvalidValue { .. } => "invalid_value",
            Error::Retry { .. } => "retry",
            Error::BatchIncomplete { .. } => "batch_incomplete",
            Error::Refused { .. } => "refused",
            Error::VersionRequired { .. } => "version_required",
            Error::Config(_) => "config",
            Error::Timeout { .. } => "timeout",
            Error::Connection { .. } => "connection",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
            Error::Event { .. } => "event",
            #[cfg(feature = "postgres")]
            Error::Database(_) => "database",
        }
    }

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
