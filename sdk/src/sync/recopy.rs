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
