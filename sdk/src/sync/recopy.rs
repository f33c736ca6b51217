//! Copying tables again while a pipeline's stream goes on: an entity
//! added to the `sync:` rules after the first snapshot (its existing rows
//! were never copied), or a copy that gained columns (a field added: the
//! rows written before the publication listed it carry no value for it).
//!
//! Which tables: those whose ClickHouse copy is missing, or lacks a column
//! the stream did not carry from the moment it existed ([`plan`]: a column
//! a generated migration listed in the publication is added in place
//! instead), found *before* the copy is created or altered and before the
//! publication is changed, and recorded as planned chunks, so a crash
//! anywhere after resumes the copy (unfinished chunks of a finished
//! snapshot are this copy's).
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

use std::collections::HashMap;

use sqlx::PgConnection;

use super::apply::{Target, Targets};
use super::error::SyncError;
use super::snapshot;
use super::spec::Pipeline;
use super::wire::{ConnInfo, ReplConn};
use super::RunOptions;

/// Plans a new copy of every table whose ClickHouse copy is missing, or
/// lacks columns that the stream may not have carried every value of
/// (call before the targets are created or altered, and before
/// [`super::source::ensure_publication`] changes the publication).
///
/// A copy that only lacks columns is **altered in place, not copied
/// again** ([`super::clickhouse::ClickHouse::ensure`] adds them) when
/// every lacking column was already listed in the publication before this
/// run (`listed`, read before the publication is touched) and got no
/// value in existing rows when it was added (no default: see
/// [`super::source::filled_columns`]). Such a column was listed by the
/// migration that added it, in the same transaction (`strata migrate
/// diff` generates that for a synced entity): every change decoded after
/// the column existed carries it, and a stream stopped at the first of
/// them ([`SyncError::SchemaReload`]) resumes from the acknowledged
/// position, before them; rows no change touched since hold NULL at the
/// source as at the copy. Otherwise (a hand-written migration: the
/// column joins the publication only now, so the changes in between lack
/// it; or a default that filled existing rows without a change), the
/// table is copied again as before.
pub async fn plan(
    ctl: &mut PgConnection,
    p: &Pipeline,
    targets: &Targets,
    opts: &RunOptions,
    listed: &HashMap<(String, String), Vec<String>>,
) -> Result<(), SyncError> {
    let mut need: Vec<usize> = Vec::new();
    for t in &targets.list {
        let Target::ClickHouse(c) = t else {
            continue;
        };
        for m in c.missing(&p.tables).await? {
            let spec = &p.tables[m.table];
            if m.whole_table {
                // What the run found, not why: the entity may be new to
                // the rules, or its copy was moved aside by `recopy`.
                eprintln!(
                    "strata sync: pipeline `{}`: `{}` has no copy at the target `{}` (new to the sync rules, or moved aside by `strata sync recopy`); copying it",
                    p.name, spec.source_table, c.store
                );
                need.push(m.table);
                continue;
            }
            let published = listed
                .get(&(spec.source_schema.clone(), spec.source_table.clone()))
                .map_or(&[][..], Vec::as_slice);
            let unlisted: Vec<&str> = (m.columns.iter())
                .filter(|c| !published.contains(*c))
                .map(String::as_str)
                .collect();
            let filled = super::source::filled_columns(ctl, spec, &m.columns).await?;
            let cols = m.columns.join("`, `");
            if unlisted.is_empty() && filled.is_empty() {
                eprintln!(
                    "strata sync: pipeline `{}`: `{}` gained `{cols}`, which the publication already carried since the migration that added it: adding the column(s) in place, without copying the table again",
                    p.name, spec.source_table
                );
                continue;
            }
            let why = if unlisted.is_empty() {
                format!(
                    "`{}` filled existing rows with a default, which no change carries",
                    filled.join("`, `")
                )
            } else {
                format!(
                    "the publication did not list `{}` until now (the migration did not), so changes since it ran lack the value",
                    unlisted.join("`, `")
                )
            };
            eprintln!(
                "strata sync: pipeline `{}`: `{}` gained `{cols}`; copying it again: {why}",
                p.name, spec.source_table
            );
            need.push(m.table);
        }
    }
    need.sort_unstable();
    need.dedup();
    if need.is_empty() {
        return Ok(());
    }
    snapshot::replan(ctl, p, &need, opts.chunk_rows).await
}

/// Refuses to start a pipeline built from a schema older than the
/// source: the publication lists a column of one of its tables that the
/// pipeline does not copy and that its ClickHouse copy lacks, i.e. a
/// migration added the field and listed it ([`SyncError::SchemaReload`],
/// as the stream would at its first change). Checked before
/// [`super::source::ensure_publication`], which would take the column out
/// of the publication again: a later run with the new schema would then
/// have to copy the table again instead of adding the column in place.
/// A column the copy has (a field dropped from the copy, or made secret)
/// is left to the shape check, which refuses it with the way out.
pub async fn check_not_behind(
    p: &Pipeline,
    targets: &Targets,
    listed: &HashMap<(String, String), Vec<String>>,
) -> Result<(), SyncError> {
    for (ti, t) in p.tables.iter().enumerate() {
        let Some(published) = listed.get(&(t.source_schema.clone(), t.source_table.clone())) else {
            continue;
        };
        let unknown: Vec<String> = (published.iter())
            .filter(|c| !t.columns.iter().any(|k| &k.name == *c))
            .cloned()
            .collect();
        if unknown.is_empty() {
            continue;
        }
        for target in &targets.list {
            if let Target::ClickHouse(c) = target {
                if let Some(column) = c.lacking(ti, &unknown).await?.into_iter().next() {
                    return Err(SyncError::SchemaReload {
                        table: t.source_table.clone(),
                        column,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Copies the planned chunks left after a finished snapshot, in a snapshot
/// exported by a temporary slot (module docs). Nothing to do: no slot. A
/// stop leaves the chunks not yet taken to the next run
/// ([`snapshot::Copied::Stopped`]), which copies them in a snapshot of
/// its own, as after a crash.
pub async fn run(
    ctl: &mut PgConnection,
    p: &Pipeline,
    targets: &Targets,
    info: &ConnInfo,
    opts: &RunOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<snapshot::Copied, SyncError> {
    if snapshot::remaining(ctl, p).await?.0.is_empty() {
        return Ok(snapshot::Copied::All);
    }
    if *stop.borrow() {
        return Ok(snapshot::Copied::Stopped);
    }
    let mut conn = ReplConn::connect(info, "strata-sync-recopy").await?;
    let slot = format!("strata_recopy_{:016x}", rand::random::<u64>());
    let (cp, snap) = conn.create_slot(&slot, true).await?;
    let copied = snapshot::run(
        p,
        targets,
        snapshot::Snapshot::Exported(snap),
        cp,
        opts,
        stop,
    )
    .await?;
    // Closing the exporting connection drops the temporary slot.
    drop(conn);
    Ok(copied)
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
