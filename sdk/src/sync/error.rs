//! What a sync can fail with.

/// Why a sync step failed. Nothing is acknowledged to the slot when one is
/// returned: a restart replays from the last acknowledged position.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A setting or the pipeline description is wrong (a bad name, a URL
    /// that does not parse).
    #[error("configuration: {0}")]
    Config(String),
    /// The source server is not set up for logical decoding.
    #[error("the source PostgreSQL is not ready for change capture: {0}")]
    NotConfigured(String),
    /// The source connection failed (network, authentication).
    #[error("source: {0}")]
    Source(String),
    /// The source server answered with an error.
    #[error("source server error {code}: {message}")]
    Server { code: String, message: String },
    /// A replication message could not be decoded.
    #[error("decode: {0}")]
    Decode(String),
    /// A value from the source does not fit its column's declared type.
    #[error("`{table}.{column}`: {reason}")]
    Value {
        table: String,
        column: String,
        reason: String,
    },
    /// A table's shape at the source no longer matches the pipeline (a
    /// column dropped, renamed or retyped): the table's sync stops.
    #[error("table `{table}`: {reason}")]
    SchemaChanged { table: String, reason: String },
    /// A target refused or could not be reached after the retries.
    #[error("target `{target}`: {message}")]
    Target { target: String, message: String },
    /// A target refused a statement in a way waiting cannot cure (a
    /// ClickHouse server that does not know a type, a syntax or setting it
    /// does not have, a column that does not exist): not retried; `hint`
    /// says what to change.
    #[error("target `{target}` refused: {message}{}", hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    TargetRefused {
        target: String,
        message: String,
        hint: Option<String>,
    },
    /// A query on the source through sqlx failed.
    #[error("source query: {0}")]
    Sql(#[from] sqlx::Error),
}

impl SyncError {
    /// Whether waiting and retrying may cure it (a connection lost, a
    /// target down, the slot still held by a dying process).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Source(_) | SyncError::Target { .. } => true,
            // 55006 object_in_use: the slot is active for another process.
            SyncError::Server { code, .. } => {
                code == "55006" || code.starts_with("08") || code == "57P01"
            }
            SyncError::Sql(e) => matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut),
            _ => false,
        }
    }
}
