//! `strata sync status`: snapshot progress, acknowledged position and lag.

use sqlx::Row;

use super::error::SyncError;
use super::source;
use super::spec::Pipeline;
use super::wire::ConnInfo;

/// Snapshot progress of one table.
#[derive(Debug, Clone)]
pub struct TableStatus {
    pub table: String,
    pub chunks_done: i64,
    pub chunks: i64,
    /// Rows copied by the chunks done.
    pub rows_copied: i64,
}

/// Where a pipeline stands.
#[derive(Debug, Clone)]
pub struct Status {
    pub pipeline: String,
    pub slot: String,
    pub slot_exists: bool,
    /// A runner is attached to the slot now.
    pub active: bool,
    /// The slot's confirmed (acknowledged) position.
    pub confirmed: Option<String>,
    /// WAL bytes between the server's current position and the confirmed one.
    pub lag_bytes: Option<i64>,
    /// Seconds since the last applied commit while WAL is unconfirmed
    /// (0 when caught up).
    pub lag_seconds: Option<f64>,
    pub snapshot_done: bool,
    pub tables: Vec<TableStatus>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pipeline {}  slot {}", self.pipeline, self.slot)?;
        if !self.slot_exists {
            return writeln!(f, "  no slot: not started (or dropped)");
        }
        writeln!(
            f,
            "  {}; confirmed {}; lag {} bytes, {:.1} s",
            if self.active {
                "running"
            } else {
                "not running"
            },
            self.confirmed.as_deref().unwrap_or("-"),
            self.lag_bytes.unwrap_or(0),
            self.lag_seconds.unwrap_or(0.0)
        )?;
        writeln!(
            f,
            "  snapshot: {}",
            if self.snapshot_done {
                "done"
            } else {
                "in progress"
            }
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "    {}: {}/{} chunks, {} rows copied",
                t.table, t.chunks_done, t.chunks, t.rows_copied
            )?;
        }
        Ok(())
    }
}

/// Reads the pipeline's status from the source server.
pub async fn status(p: &Pipeline) -> Result<Status, SyncError> {
    let mut c = source::connect(&p.source_url).await?;
    let info = ConnInfo::parse(&p.source_url)?;
    let slot = p.slot(&info.database);
    let row = sqlx::query(
        "SELECT active, confirmed_flush_lsn::text, (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint
         FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(&slot)
    .fetch_optional(&mut c)
    .await?;
    let mut st = Status {
        pipeline: p.name.clone(),
        slot,
        slot_exists: row.is_some(),
        active: false,
        confirmed: None,
        lag_bytes: None,
        lag_seconds: None,
        snapshot_done: false,
        tables: Vec::new(),
    };
    if let Some(r) = row {
        st.active = r.get(0);
        st.confirmed = r.get(1);
        st.lag_bytes = r.get(2);
    }
    let meta: bool = sqlx::query_scalar("SELECT to_regclass('strata_sync.pipelines') IS NOT NULL")
        .fetch_one(&mut c)
        .await?;
    if !meta {
        return Ok(st);
    }
    if let Some(r) = sqlx::query(
        "SELECT snapshot_done, extract(epoch FROM now() - last_commit_at)::float8 FROM strata_sync.pipelines WHERE name = $1",
    )
    .bind(&p.name)
    .fetch_optional(&mut c)
    .await?
    {
        st.snapshot_done = r.get(0);
        let since: Option<f64> = r.get(1);
        st.lag_seconds = Some(if st.lag_bytes.unwrap_or(0) > 0 { since.unwrap_or(0.0).max(0.0) } else { 0.0 });
    }
    for r in sqlx::query(
        "SELECT tbl, count(*) FILTER (WHERE done), count(*), COALESCE(sum(copied_rows) FILTER (WHERE done), 0)::bigint
         FROM strata_sync.chunks WHERE pipeline = $1 GROUP BY tbl ORDER BY tbl",
    )
    .bind(&p.name)
    .fetch_all(&mut c)
    .await?
    {
        let ti: i32 = r.get(0);
        st.tables.push(TableStatus {
            table: p.tables.get(ti as usize).map(|t| t.source_table.clone()).unwrap_or_default(),
            chunks_done: r.get(1),
            chunks: r.get(2),
            rows_copied: r.get(3),
        });
    }
    Ok(st)
}
