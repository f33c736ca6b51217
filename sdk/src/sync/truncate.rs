//! `TRUNCATE` carried to the copies.
//!
//! PostgreSQL logs a `TRUNCATE` as one message naming its tables, not as
//! per-row deletes, so each target empties its copy as of the truncating
//! transaction's commit position `v` (the version every row it writes
//! carries):
//!
//! - **ClickHouse**: `ALTER TABLE … DELETE WHERE _version <= v`, then wait
//!   until the mutation is done (`system.mutations`) before the position is
//!   acknowledged. A mutation touches only the parts that exist when it is
//!   made, so rows the same transaction inserts after its `TRUNCATE` (also
//!   at `v`, written after it) stay, and rows it inserted before it (at `v`,
//!   flushed first) go. A replay after a crash re-inserts older rows and
//!   then deletes them again, so the end state is the same.
//! - **Redis cache**: every cached key of the entity is tombstoned (found by
//!   `SCAN` on every master), and once more half a TTL later: a reader that
//!   noted "no entry" before the first pass and read the old row may fill
//!   up to half a TTL after its note ([`crate::cache`] refuses later fills),
//!   and the second pass removes such a fill. If the runner stops between
//!   the passes, such an entry lives at most one TTL.
//! - **Change events**: a `truncate` event (`Op::Truncate`, key `{}`, no
//!   row) in every partition of the entity at one position, after its
//!   tombstones: a subscription yields it once, after every earlier change.
//!   `strata sync consume` stops on it (a copy fed by partitions cannot
//!   delete only its partition's rows in ClickHouse) and says to copy again.
//! - **Elasticsearch**: every document of the index at or below `v` is
//!   deleted with a versioned delete at `v` (`version_type=external_gte`):
//!   the index is refreshed, its ids are read through a point in time in
//!   pages of 1,000 (`_shard_doc`, `search_after`) and deleted by `_bulk`,
//!   each page acknowledged before the next; the position is acknowledged
//!   only after the last. Not `_delete_by_query`: its deletes have no
//!   version condition and use internal versioning (the tombstone is the
//!   document's version + 1), so it would delete a document of a later
//!   change that a replay finds, and a row the same transaction writes
//!   after its `TRUNCATE` (at `v`) would meet a tombstone above `v` and be
//!   refused as older. With versioned deletes:
//!   - rows the transaction wrote before its `TRUNCATE` (at `v`) go
//!     (`v >= v`), rows it writes after it (at `v`, after the deletes)
//!     are written over the tombstones at `v`;
//!   - a replay after a crash (from an acknowledged position below `v`)
//!     writes the older changes again with their versions: refused while
//!     a tombstone at `v` or a newer document is there, written once
//!     Elasticsearch forgot the tombstone (`index.gc_deletes`, 60 s);
//!     then the `TRUNCATE` comes again and deletes those at `v`; a
//!     document of a change after the `TRUNCATE` already written before
//!     the crash (version above `v`) refuses the delete (409) and stays;
//!     rows of the truncating transaction after its `TRUNCATE` are
//!     deleted by the replayed `TRUNCATE` and written again right after
//!     it (the replay holds the whole transaction). The end state is the
//!     source's.
//!   - a crash in the middle of the deletes leaves some documents; the
//!     position is not acknowledged, so the replay deletes them.
//!
//!   Needs Elasticsearch 7.12 or later (point in time with `_shard_doc`).

use super::apply::{ChangeMeta, Target, Targets};
use super::clickhouse::ClickHouse;
use super::error::SyncError;
use super::quote_ch;
use super::retry;
use super::spec::Pipeline;

impl Targets {
    /// Empties pipeline tables `tables` at every target as of commit
    /// position `version` (module docs). Call after every row before the
    /// `TRUNCATE` is flushed; its position may be acknowledged once this
    /// returns. Retries a target that fails, like a flush.
    pub async fn truncate(
        &self,
        p: &Pipeline,
        tables: &[usize],
        version: u64,
        meta: ChangeMeta,
    ) -> Result<(), SyncError> {
        #[cfg(not(feature = "cache"))]
        let _ = meta;
        for t in &self.list {
            let what = format!("carrying a TRUNCATE to `{}`", t.store());
            retry::forever(&what, || async {
                match t {
                    Target::ClickHouse(c) => clickhouse(c, tables, version).await,
                    Target::Elastic(e) => e.truncate(tables, version).await,
                    #[cfg(feature = "cache")]
                    Target::Redis(r) => Box::pin(r.truncate(tables, version, meta)).await,
                }
            })
            .await?;
        }
        tracing::info!(pipeline = %p.name, ?tables, version, "TRUNCATE carried to the targets");
        Ok(())
    }
}

/// Deletes every row at or below `version` of the target tables of
/// `tables`, and waits for the mutations to finish.
async fn clickhouse(c: &ClickHouse, tables: &[usize], version: u64) -> Result<(), SyncError> {
    for t in c.tables.iter().filter(|t| tables.contains(&t.table)) {
        let (db, name) = (quote_ch(&t.database), quote_ch(&t.name));
        c.exec(
            &format!("ALTER TABLE {db}.{name} DELETE WHERE _version <= {version}"),
            None,
        )
        .await?;
        let pending = format!(
            "SELECT count() FROM system.mutations WHERE database = {} AND table = {} AND is_done = 0 FORMAT TabSeparated",
            ch_string(&t.database),
            ch_string(&t.name)
        );
        let mut wait = std::time::Duration::from_millis(20);
        while String::from_utf8_lossy(&c.exec(&pending, None).await?).trim() != "0" {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(1));
        }
    }
    Ok(())
}

/// A ClickHouse string literal.
fn ch_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn string_literals_escape_quotes_and_backslashes() {
        assert_eq!(super::ch_string(r"a'b\c"), r"'a\'b\\c'");
    }
}
