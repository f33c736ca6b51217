//! Dead letters: changes whose value a target cannot hold, set aside
//! instead of stopping the pipeline, when the run asks for it
//! ([`super::RunOptions::with_dead_letters`], `strata sync run
//! --dead-letter`; for a consumer group
//! [`super::ConsumeOptions::with_dead_letters`], `strata sync consume
//! --dead-letter`). Off by default: a refused value then stops the
//! pipeline, as before.
//!
//! The idea is Kafka Connect's dead-letter queue (`errors.tolerance =
//! all` with `errors.deadletterqueue.topic.name`): one bad record must not
//! hold every later one. Here the queue is a table of the source
//! database, `strata_sync.dead_letters`, written before the change's
//! position is acknowledged, so a crash cannot lose a dead letter; a
//! replay writes the same row again, which is kept once.
//!
//! What a set-aside change leaves at the targets: the copies keep the row
//! as it was before the change (a snapshot row: no row), no change event
//! is published, and a cache target still tombstones the key (so the
//! cache never serves the row from before the change). `strata sync
//! verify` lists the key as differing until the row is corrected at the
//! source: the correcting update is a later change, copied as usual.

use sqlx::PgConnection;

use super::error::SyncError;
use super::lsn::Lsn;
use super::source::META_SCHEMA;
use super::spec::Pipeline;
use super::wire::quote_ident;

/// One change set aside: where it came from and why a target refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The source table (`TableSpec::source_table`).
    pub table: String,
    /// The key columns' values as PostgreSQL prints them, in key order
    /// (`None` for a value that was not sent).
    pub key: Vec<Option<String>>,
    /// The commit position of the change's transaction (for a snapshot
    /// row, the snapshot's consistent point).
    pub lsn: Lsn,
    /// The column whose value was refused.
    pub column: String,
    /// Why (the conversion's message).
    pub reason: String,
}

impl DeadLetter {
    /// The dead letter of a refusal: `Ok` for a value a target cannot
    /// hold ([`SyncError::Value`]), the error itself otherwise (those still
    /// stop or retry the pipeline as before).
    pub fn of(e: SyncError, key: Vec<Option<String>>, lsn: Lsn) -> Result<DeadLetter, SyncError> {
        match e {
            SyncError::Value {
                table,
                column,
                reason,
            } => Ok(DeadLetter {
                table,
                key,
                lsn,
                column,
                reason,
            }),
            other => Err(other),
        }
    }
}

/// The table's statement, run with the other progress tables.
pub(super) fn create_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.dead_letters (
         pipeline text NOT NULL,
         tbl text NOT NULL,
         key text[] NOT NULL,
         lsn pg_lsn NOT NULL,
         col text NOT NULL,
         reason text NOT NULL,
         recorded_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (pipeline, tbl, lsn, key))",
        quote_ident(META_SCHEMA)
    )
}

/// Records `letters` of pipeline `p` (one statement; a letter already
/// recorded by an earlier run is kept as it was) and counts them in
/// `strata_sync_dead_letters_total{pipeline, table}`. Errors: the source's.
pub async fn record(
    c: &mut PgConnection,
    p: &Pipeline,
    letters: &[DeadLetter],
) -> Result<(), SyncError> {
    if letters.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = letters.iter().map(|l| key_literal(&l.key)).collect();
    sqlx::query(&format!(
        "INSERT INTO {}.dead_letters (pipeline, tbl, key, lsn, col, reason)
         SELECT $1, t, k::text[], l::pg_lsn, c, r
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(t, k, l, c, r)
         ON CONFLICT DO NOTHING",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .bind(letters.iter().map(|l| l.table.as_str()).collect::<Vec<_>>())
    .bind(&keys)
    .bind(letters.iter().map(|l| l.lsn.to_string()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.column.as_str()).collect::<Vec<_>>())
    .bind(letters.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>())
    .execute(&mut *c)
    .await?;
    for l in letters {
        tracing::warn!(
            pipeline = %p.name, table = %l.table, column = %l.column, lsn = %l.lsn,
            "change set aside as a dead letter: {}", l.reason
        );
        metrics::counter!(crate::metrics::SYNC_DEAD_LETTERS,
            "pipeline" => p.name.clone(), "table" => l.table.clone())
        .increment(1);
    }
    Ok(())
}

/// A dead letter as `list` reads it: table, key, LSN text, column, reason.
type Row = (String, Vec<Option<String>>, String, String, String);

/// The dead letters of pipeline `pipeline`, oldest first (at most `limit`),
/// and how many there are in all. A database without Strata's progress
/// tables has none.
pub async fn list(
    c: &mut PgConnection,
    pipeline: &str,
    limit: i64,
) -> Result<(Vec<DeadLetter>, i64), SyncError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{}.dead_letters", quote_ident(META_SCHEMA)))
        .fetch_one(&mut *c)
        .await?;
    if !exists {
        return Ok((Vec::new(), 0));
    }
    let table = format!("{}.dead_letters", quote_ident(META_SCHEMA));
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE pipeline = $1"))
            .bind(pipeline)
            .fetch_one(&mut *c)
            .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT tbl, key, lsn::text, col, reason FROM {table}
             WHERE pipeline = $1 ORDER BY lsn, tbl, key LIMIT $2"
    ))
    .bind(pipeline)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    let letters = rows
        .into_iter()
        .map(|(table, key, lsn, column, reason)| DeadLetter {
            table,
            key,
            lsn: lsn.parse().unwrap_or(Lsn(0)),
            column,
            reason,
        })
        .collect();
    Ok((letters, total))
}

/// A `text[]` literal of `key` (elements quoted, `NULL` for a value not
/// sent), bound as one text and cast by the statement.
fn key_literal(key: &[Option<String>]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|k| match k {
            None => "NULL".to_string(),
            Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_literals_quote_every_element() {
        assert_eq!(key_literal(&[Some("7".into())]), r#"{"7"}"#);
        assert_eq!(
            key_literal(&[Some(r#"a"b\c"#.into()), None, Some("".into())]),
            r#"{"a\"b\\c",NULL,""}"#
        );
    }

    #[test]
    fn only_refused_values_become_dead_letters() {
        let value = SyncError::Value {
            table: "loan".into(),
            column: "fine".into(),
            reason: "NaN".into(),
        };
        let l = DeadLetter::of(value, vec![Some("1".into())], Lsn(16)).unwrap();
        assert_eq!((l.table.as_str(), l.column.as_str()), ("loan", "fine"));
        let target = SyncError::Target {
            target: "analytics".into(),
            message: "down".into(),
        };
        assert!(matches!(
            DeadLetter::of(target, vec![], Lsn(16)),
            Err(SyncError::Target { .. })
        ));
    }
}
