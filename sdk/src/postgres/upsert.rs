//! The set-based upsert of a staged batch: one `UPDATE … FROM` the staging
//! table for the keys that exist and one plain `INSERT … SELECT` for the
//! rest, in one statement, with `INSERT … ON CONFLICT DO UPDATE` as the
//! fallback that decides every case the fast statement cannot.
//!
//! Why not `ON CONFLICT` alone: it inserts each row speculatively, probing
//! the key index, and locks every conflicting row before updating it (a WAL
//! record each). Joining the staging table to the target updates the
//! existing rows in one pass and inserts the new ones without speculation;
//! BENCHMARKS.md has the figures, including a large table where the two are
//! even.

use sqlx::postgres::PgConnection;
use sqlx::Executor;

use crate::error::{Error, Result};

/// Upserts the `staged` rows of the staging table into the target with
/// the statement `set_based` (`WITH u AS (UPDATE t … FROM stage …), i AS
/// (INSERT … WHERE NOT EXISTS …) SELECT counts`), falling back to
/// `on_conflict` (`INSERT … SELECT … ON CONFLICT DO UPDATE`); both return
/// `(inserted, updated)`, as does this function.
///
/// The set-based statement runs under a savepoint. Its result stands only
/// if it accounts for every staged row: a key staged twice makes the counts
/// fall short (the `UPDATE` touches the row once, the `INSERT` skips both),
/// and a key inserted by a concurrent transaction, or a key staged twice
/// that did not exist, fails its plain `INSERT` with a unique violation.
/// In those cases the savepoint is rolled back and `ON CONFLICT` runs
/// instead, which gives the same result or error as it would alone.
pub async fn upsert_staged(
    conn: &mut PgConnection,
    set_based: &str,
    on_conflict: &str,
    staged: u64,
) -> Result<(u64, u64)> {
    conn.execute("SAVEPOINT strata_upsert").await?;
    let fast = sqlx::query_as::<_, (i64, i64)>(set_based)
        .fetch_one(&mut *conn)
        .await;
    match fast.map_err(Error::from) {
        Ok((i, u)) if (i + u) as u64 == staged => {
            conn.execute("RELEASE SAVEPOINT strata_upsert").await?;
            return Ok((i as u64, u as u64));
        }
        // A key staged twice: let ON CONFLICT report it.
        Ok(_) => {}
        Err(Error::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    conn.execute("ROLLBACK TO SAVEPOINT strata_upsert").await?;
    let (i, u) = sqlx::query_as::<_, (i64, i64)>(on_conflict)
        .fetch_one(&mut *conn)
        .await?;
    conn.execute("RELEASE SAVEPOINT strata_upsert").await?;
    Ok((i as u64, u as u64))
}
