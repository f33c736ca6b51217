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
    /// The source publishes a column of `table` that the pipeline does not
    /// copy: a migration added a field and listed it in the publication in
    /// the same transaction (what `strata migrate diff` generates for a
    /// synced entity). The stream stopped **before** applying any change
    /// that carries it, so nothing of it is lost and nothing past it is
    /// acknowledged. Run again with a pipeline built from the schema that
    /// has the field: the run adds the target column in place (no second
    /// copy) and resumes from the acknowledged position. `strata sync run`
    /// does so itself, re-reading the schema files; a library caller of
    /// [`super::run`] rebuilds its [`super::Pipeline`] and calls it again
    /// (calling it with the same pipeline stops here again).
    #[error("table `{table}`: the source publishes column `{column}`, which this pipeline does not copy (a field added by a migration); run again with the schema that has the field")]
    SchemaReload { table: String, column: String },
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
