//! `strata sync status`: snapshot progress, acknowledged position and lag.

use sqlx::Row;

use super::dead_letter::{self, DeadLetter};
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
    /// A runner is attached to the slot now (streaming).
    pub active: bool,
    /// A runner holds the pipeline's advisory lock: it is running, also
    /// while it copies the snapshot (the slot is not attached then).
    pub locked: bool,
    /// The slot's confirmed (acknowledged) position.
    pub confirmed: Option<String>,
    /// How far the targets are behind, in WAL bytes: from the oldest
    /// published change they have not acknowledged to the server's current
    /// position; 0 when caught up. `None` when it could not be read (see
    /// `behind_unknown`).
    pub lag_bytes: Option<i64>,
    /// How far behind, in seconds: age of the oldest unacknowledged
    /// published commit (its commit time to now); 0 when caught up.
    pub lag_seconds: Option<f64>,
    /// Why the lag could not be read, when it could not.
    pub behind_unknown: Option<String>,
    /// WAL the server keeps for the slot: current position − confirmed.
    /// Not 0 when caught up: it also holds WAL of other databases and of
    /// the runner's own progress writes until the next acknowledgement.
    pub wal_kept_bytes: Option<i64>,
    pub snapshot_done: bool,
    pub tables: Vec<TableStatus>,
    /// Changes set aside ([`super::dead_letter`]): how many, and the
    /// oldest few (at most 10).
    pub dead_letters: i64,
    pub oldest_dead_letters: Vec<DeadLetter>,
    /// Why the last run ended with an error, and when (RFC 3339), unless a
    /// run started streaming since; while a runner holds the lock without
    /// streaming, the error it is retrying after.
    pub last_failure: Option<(String, String)>,
    /// Tables of the pipeline its publication does not list (taken out by
    /// `strata sync recopy`): their changes are not captured until the
    /// next run puts them back.
    pub unpublished: Vec<String>,
}

impl Status {
    /// A runner runs the pipeline (holds its lock or is attached to its slot).
    pub fn running(&self) -> bool {
        self.active || self.locked
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pipeline {}  slot {}", self.pipeline, self.slot)?;
        // A finished snapshot with chunks left is a copy made again (a
        // table that gained a column, or is new to the sync rules).
        let recopy = self.tables.iter().any(|t| t.chunks_done < t.chunks);
        let running = match (self.active, self.locked, self.snapshot_done) {
            (true, _, _) => "running (streaming)".to_string(),
            // The runner holds the lock across its retries and records
            // the error each one follows (cleared once it streams).
            (false, true, _) if self.last_failure.is_some() => {
                let (error, at) = self.last_failure.clone().unwrap_or_default();
                format!(
                    "running (not streaming: starting, retrying after an error at {at}: {error})"
                )
            }
            (false, true, false) => {
                "running (not streaming: copying the snapshot or starting)".to_string()
            }
            // Between streams: starting, or a target failed and the run
            // retries it from the acknowledged position.
            (false, true, true) => {
                "running (not streaming: starting, or retrying a target that failed)".to_string()
            }
            (false, false, _) => "not running".to_string(),
        };
        if let (false, Some((error, at))) = (self.running(), &self.last_failure) {
            writeln!(f, "  last run failed at {at}: {error}")?;
        }
        if !self.slot_exists {
            let what = if self.locked {
                running.as_str()
            } else {
                "not started (or dropped)"
            };
            return writeln!(f, "  no slot: {what}");
        }
        writeln!(
            f,
            "  {running}; confirmed {}",
            self.confirmed.as_deref().unwrap_or("-")
        )?;
        match (self.lag_seconds, self.lag_bytes, &self.behind_unknown) {
            // The stream starts only once the snapshot is copied: nothing
            // is caught up before that.
            (Some(s), Some(b), _) if b == 0 && (!self.snapshot_done || recopy) => writeln!(
                f,
                "  behind: {s:.1} s, {b} bytes in the stream (a copy is not finished)"
            )?,
            (Some(s), Some(b), _) if b == 0 => {
                writeln!(f, "  behind: {s:.1} s, {b} bytes (caught up)")?
            }
            (Some(s), Some(b), _) => writeln!(
                f,
                "  behind: {s:.1} s, {b} bytes (oldest unacknowledged commit)"
            )?,
            (_, _, why) => writeln!(f, "  behind: unknown ({})", why.as_deref().unwrap_or("-"))?,
        }
        writeln!(
            f,
            "  WAL kept for the slot: {} bytes",
            self.wal_kept_bytes.unwrap_or(0)
        )?;
        writeln!(
            f,
            "  snapshot: {}",
            match (self.snapshot_done, recopy) {
                (true, false) => "done",
                (true, true) =>
                    "done; copying tables again (a field added, or an entity new to the sync rules)",
                (false, _) => "in progress",
            }
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "    {}: {}/{} chunks, {} rows copied",
                t.table, t.chunks_done, t.chunks, t.rows_copied
            )?;
        }
        for t in &self.unpublished {
            writeln!(
                f,
                "    {t}: not in the publication (after `strata sync recopy`): its changes are not captured until `strata sync run` starts again"
            )?;
        }
        if self.dead_letters > 0 {
            writeln!(
                f,
                "  dead letters: {} (changes set aside; oldest first, all in strata_sync.dead_letters)",
                self.dead_letters
            )?;
        }
        for l in &self.oldest_dead_letters {
            let key: Vec<&str> = l
                .key
                .iter()
                .map(|k| k.as_deref().unwrap_or("NULL"))
                .collect();
            writeln!(
                f,
                "    {} key ({}) at {}: `{}`: {}",
                l.table,
                key.join(", "),
                l.lsn,
                l.column,
                l.reason
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
        locked: locked(&mut c, p).await?,
        confirmed: None,
        lag_bytes: None,
        lag_seconds: None,
        behind_unknown: None,
        wal_kept_bytes: None,
        snapshot_done: false,
        tables: Vec::new(),
        dead_letters: 0,
        oldest_dead_letters: Vec::new(),
        last_failure: None,
        unpublished: Vec::new(),
    };
    if let Some(r) = row {
        st.active = r.get(0);
        st.confirmed = r.get(1);
        st.wal_kept_bytes = r.get(2);
        match behind(&p.source_url, &st.slot, &p.publication()).await {
            Ok((seconds, bytes)) => (st.lag_seconds, st.lag_bytes) = (Some(seconds), Some(bytes)),
            Err(e) => st.behind_unknown = Some(e.to_string()),
        }
    }
    let meta: bool = sqlx::query_scalar("SELECT to_regclass('strata_sync.pipelines') IS NOT NULL")
        .fetch_one(&mut c)
        .await?;
    if !meta {
        return Ok(st);
    }
    if let Some(r) = sqlx::query("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
        .bind(&p.name)
        .fetch_optional(&mut c)
        .await?
    {
        st.snapshot_done = r.get(0);
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
    (st.oldest_dead_letters, st.dead_letters) = dead_letter::list(&mut c, &p.name, 10).await?;
    st.last_failure = last_failure(&mut c, p).await?;
    st.unpublished = unpublished(&mut c, p).await?;
    Ok(st)
}

async fn last_failure(
    c: &mut sqlx::PgConnection,
    p: &Pipeline,
) -> Result<Option<(String, String)>, SyncError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('strata_sync.failures') IS NOT NULL")
        .fetch_one(&mut *c)
        .await?;
    if !exists {
        return Ok(None);
    }
    Ok(sqlx::query_as(
        "SELECT error, to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
         FROM strata_sync.failures WHERE pipeline = $1",
    )
    .bind(&p.name)
    .fetch_optional(&mut *c)
    .await?)
}

/// The pipeline's tables its publication (when it exists) does not list.
async fn unpublished(c: &mut sqlx::PgConnection, p: &Pipeline) -> Result<Vec<String>, SyncError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(p.publication())
            .fetch_one(&mut *c)
            .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let listed = super::source::published_tables(c, p).await?;
    Ok((p.tables.iter())
        .filter(|t| !listed.contains(&(t.source_schema.clone(), t.source_table.clone())))
        .map(|t| t.source_table.clone())
        .collect())
}

/// Whether a session holds the pipeline's advisory lock (a runner).
pub(crate) async fn locked(c: &mut sqlx::PgConnection, p: &Pipeline) -> Result<bool, SyncError> {
    // A bigint advisory lock shows in pg_locks as its high and low halves.
    let key = source::lock_key(p) as u64;
    let held: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
           AND l.classid::int8 = $1 AND l.objid::int8 = $2 AND l.objsubid = 1)",
    )
    .bind((key >> 32) as i64)
    .bind((key & 0xffff_ffff) as i64)
    .fetch_one(c)
    .await?;
    Ok(held)
}

/// How far the targets are behind (seconds, bytes): the oldest published
/// transaction after the slot's confirmed position, read by peeking a
/// temporary copy of the slot (the slot itself may be in use, and peeking
/// does not move anything). Bounded by a 5 s statement timeout: a huge
/// pending transaction is decoded whole.
async fn behind(url: &str, slot: &str, publication: &str) -> Result<(f64, i64), SyncError> {
    let mut c = source::connect(url).await?;
    let peek: String = sqlx::query_scalar("SELECT 'strata_status_' || pg_backend_pid()")
        .fetch_one(&mut c)
        .await?;
    sqlx::query("SELECT pg_copy_logical_replication_slot($1, $2, true)")
        .bind(slot)
        .bind(&peek)
        .execute(&mut c)
        .await?;
    sqlx::raw_sql("SET statement_timeout = '5s'")
        .execute(&mut c)
        .await?;
    let first: Option<(Vec<u8>, i64, f64)> = sqlx::query_as(
        "SELECT data, (pg_current_wal_lsn() - lsn)::int8, extract(epoch FROM clock_timestamp())::float8
         FROM pg_logical_slot_peek_binary_changes($1, NULL, 1, 'proto_version', '1', 'publication_names', $2)
         LIMIT 1",
    )
    .bind(&peek)
    .bind(publication)
    .fetch_optional(&mut c)
    .await?;
    // Temporary: gone with the session too.
    let _ = sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(&peek)
        .execute(&mut c)
        .await;
    let Some((data, bytes, now)) = first else {
        return Ok((0.0, 0));
    };
    // pgoutput BEGIN: 'B', final LSN (8), commit time (8, µs since 2000-01-01), xid.
    let commit_us = match data.get(..17) {
        Some(b) if b[0] == b'B' => i64::from_be_bytes(b[9..17].try_into().unwrap_or([0; 8])),
        _ => {
            return Err(SyncError::Decode(
                "a peeked change did not start with BEGIN".into(),
            ))
        }
    };
    let commit = commit_us as f64 / 1e6 + 946_684_800.0;
    Ok(((now - commit).max(0.0), bytes.max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(active: bool, locked: bool, snapshot_done: bool) -> Status {
        Status {
            pipeline: "main_analytics".into(),
            slot: "strata_x".into(),
            slot_exists: true,
            active,
            locked,
            confirmed: Some("0/16B3748".into()),
            lag_bytes: Some(0),
            lag_seconds: Some(0.0),
            behind_unknown: None,
            wal_kept_bytes: Some(0),
            snapshot_done,
            tables: Vec::new(),
            dead_letters: 0,
            oldest_dead_letters: Vec::new(),
            last_failure: None,
            unpublished: Vec::new(),
        }
    }

    /// A newcomer saw "copying the snapshot" beside "snapshot: done", and
    /// "caught up" beside "snapshot: in progress".
    #[test]
    fn the_state_lines_agree_with_the_snapshot() {
        let retrying = status(false, true, true).to_string();
        assert!(retrying.contains("retrying a target"), "{retrying}");
        assert!(!retrying.contains("copying the snapshot"), "{retrying}");
        let copying = status(false, true, false).to_string();
        assert!(copying.contains("copying the snapshot"), "{copying}");
        let failed = status(false, false, false).to_string();
        assert!(!failed.contains("caught up"), "{failed}");
        assert!(failed.contains("a copy is not finished"), "{failed}");
        let streaming = status(true, true, true).to_string();
        assert!(streaming.contains("(caught up)"), "{streaming}");
        // A second copy (a field added, a recopy) is not caught up either.
        let mut again = status(false, true, true);
        again.tables.push(TableStatus {
            table: "lots".into(),
            chunks_done: 0,
            chunks: 1,
            rows_copied: 0,
        });
        let again = again.to_string();
        assert!(!again.contains("caught up"), "{again}");
        assert!(again.contains("copying tables again"), "{again}");
        // A failed run is said while nothing runs; out-of-publication tables too.
        // A runner retrying its start says so, with the error it retries.
        let mut starting = status(false, true, true);
        starting.last_failure = Some((
            "target `analytics`: 127.0.0.1:1: error sending request".into(),
            "2026-12-06T19:00:00Z".into(),
        ));
        let starting = starting.to_string();
        assert!(
            starting.contains("running (not streaming: starting, retrying after an error at 2026-12-06T19:00:00Z: target `analytics`"),
            "{starting}"
        );
        assert!(!starting.contains("last run failed"), "{starting}");
        let mut failed = status(false, false, true);
        failed.last_failure = Some(("`lots.reserve`: NaN".into(), "2026-12-06T19:00:00Z".into()));
        failed.unpublished = vec!["lots".into()];
        let failed = failed.to_string();
        assert!(
            failed.contains("last run failed at 2026-12-06T19:00:00Z: `lots.reserve`"),
            "{failed}"
        );
        assert!(failed.contains("lots: not in the publication"), "{failed}");
    }
}
