//! Copying tables again while a pipeline's stream goes on: an entity
//! added to the `sync:` rules after the first snapshot (its existing rows
//! were never copied), or a copy that gained columns (a field added: the
//! rows written before the publication listed it carry no value for it).
//!
//! Which tables: those whose ClickHouse copy is missing or lacks a column
//! when a run starts, found *before* the copy is created or altered and
//! recorded as planned chunks, so a crash anywhere after resumes the copy
//! (unfinished chunks of a finished snapshot are this copy's).
//!
//! How it stays consistent with the stream: the chunks are read in a
//! snapshot exported by a **temporary** replication slot, whose consistent
//! point `c` is the version of every row copied. The stream resumes from
//! the pipeline's acknowledged position `a < c`: a replayed change that
//! committed before `c` is in the snapshot too and carries a smaller
//! version, so it loses; a change after `c` wins over the copy. The
//! temporary slot is dropped when its connection closes (also on a crash).
//! This is the consistent-point argument of the first snapshot
//! ([`super::snapshot`]), applied to a second slot.

use sqlx::PgConnection;

use super::apply::{Target, Targets};
use super::error::SyncError;
use super::snapshot;
use super::spec::Pipeline;
use super::wire::{ConnInfo, ReplConn};
use super::RunOptions;

/// Plans a new copy of every table whose target copy misses columns
/// (call before the targets are created or altered).
pub async fn plan(
    ctl: &mut PgConnection,
    p: &Pipeline,
    targets: &Targets,
    opts: &RunOptions,
) -> Result<(), SyncError> {
    let mut need: Vec<usize> = Vec::new();
    for t in &targets.list {
        if let Target::ClickHouse(c) = t {
            need.extend(c.missing_columns(&p.tables).await?);
        }
    }
    need.sort_unstable();
    need.dedup();
    if need.is_empty() {
        return Ok(());
    }
    for &t in &need {
        eprintln!(
            "strata sync: pipeline `{}`: `{}` is new to the copy or gained columns; copying it again",
            p.name, p.tables[t].source_table
        );
    }
    snapshot::replan(ctl, p, &need, opts.chunk_rows).await
}

/// Copies the planned chunks left after a finished snapshot, in a snapshot
/// exported by a temporary slot (module docs). Nothing to do: no slot.
pub async fn run(
    ctl: &mut PgConnection,
    p: &Pipeline,
    targets: &Targets,
    info: &ConnInfo,
    opts: &RunOptions,
) -> Result<(), SyncError> {
    if snapshot::remaining(ctl, p).await?.0.is_empty() {
        return Ok(());
    }
    let mut conn = ReplConn::connect(info, "strata-sync-recopy").await?;
    let slot = format!("strata_recopy_{:016x}", rand::random::<u64>());
    let (cp, snap) = conn.create_slot(&slot, true).await?;
    snapshot::run(p, targets, snapshot::Snapshot::Exported(snap), cp, opts).await?;
    // Closing the exporting connection drops the temporary slot.
    drop(conn);
    Ok(())
}

/// Moves aside the ClickHouse copies of entities `entities` of pipeline
/// `p` (`RENAME TABLE t TO t__replaced_<unix seconds>`, and drops their
/// current-rows view), so that the next run creates them from the schema
/// and copies their rows again while the other tables stream ([`plan`]);
/// and takes their source tables out of the pipeline's publication
/// ([`super::source::unpublish`]: PostgreSQL refuses to retype or drop a
/// column a publication lists), which the next run puts back. The way out
/// when a field's type changed or a field was dropped or renamed, which
/// the run refuses to write into (`SyncError::SchemaChanged`). Returns
/// what was done, one line each.
///
/// Errors: [`SyncError::Config`] for an entity the pipeline does not copy,
/// while a runner holds the pipeline (stop it first), and for a store on a
/// cluster (`ON CLUSTER`: move its tables yourself); the servers' own.
/// Elasticsearch targets are not touched: a changed mapping already makes
/// a new index (see docs/sync.md).
pub async fn replace(p: &Pipeline, entities: &[String]) -> Result<Vec<String>, SyncError> {
    for e in entities {
        if !p.tables.iter().any(|t| &t.entity == e) {
            let synced: Vec<&str> = p.tables.iter().map(|t| t.entity.as_str()).collect();
            return Err(SyncError::Config(format!(
                "pipeline `{}` does not copy entity `{e}` (it copies {})",
                p.name,
                synced.join(", ")
            )));
        }
    }
    let mut c = super::source::connect(&p.source_url).await?;
    if super::status::locked(&mut c, p).await? {
        return Err(SyncError::Config(format!(
            "pipeline `{}` is running: stop `strata sync run` first",
            p.name
        )));
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut moved = Vec::new();
    for target in &p.targets {
        let Some(ch) = target.clickhouse()? else {
            continue;
        };
        let (store, tables) = (&ch.store, &ch.tables);
        let existing = String::from_utf8_lossy(
            &ch.exec(
                "SELECT database, name FROM system.tables FORMAT TabSeparated",
                None,
            )
            .await?,
        )
        .into_owned();
        for t in tables
            .iter()
            .filter(|t| entities.contains(&p.tables[t.table].entity))
        {
            if t.create.iter().any(|s| s.contains(" ON CLUSTER ")) {
                return Err(SyncError::Config(format!(
                    "store `{store}` is on a cluster: rename or drop `{}.{}` on every node yourself, then start the run again",
                    t.database, t.name
                )));
            }
            let exists = existing
                .lines()
                .any(|l| l.split_once('\t') == Some((&t.database, &t.name)));
            if !exists {
                continue;
            }
            let aside = format!("{}__replaced_{stamp}", t.name);
            let q = super::quote_ch;
            ch.exec(
                &format!(
                    "DROP TABLE IF EXISTS {}.{}",
                    q(&t.database),
                    q(&t.current_view)
                ),
                None,
            )
            .await?;
            ch.exec(
                &format!(
                    "RENAME TABLE {}.{} TO {}.{}",
                    q(&t.database),
                    q(&t.name),
                    q(&t.database),
                    q(&aside)
                ),
                None,
            )
            .await?;
            moved.push(format!(
                "moved ClickHouse {}.{} aside to {aside}",
                t.database, t.name
            ));
        }
    }
    for t in super::source::unpublish(&mut c, p, entities).await? {
        moved.push(format!("took {t} out of publication {}", p.publication()));
    }
    Ok(moved)
}
