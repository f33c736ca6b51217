//! The source side through an ordinary (sqlx) connection: the server
//! checks, the publication, Strata's own progress tables, the advisory
//! lock that keeps a pipeline to one runner.

use sqlx::{Connection, PgConnection, Row};

use super::error::SyncError;
use super::lsn::Lsn;
use super::spec::{Pipeline, TableSpec};
use super::wire::quote_ident;

/// Schema of Strata's progress tables in the source database.
pub const META_SCHEMA: &str = "strata_sync";

/// Opens a connection with the session settings every value text is read
/// under (UTC timestamps, ISO dates, round-tripping floats).
pub async fn connect(url: &str) -> Result<PgConnection, SyncError> {
    let mut c = PgConnection::connect(url).await?;
    for set in [
        "SET TimeZone = 'UTC'",
        "SET DateStyle = 'ISO'",
        "SET extra_float_digits = 3",
        "SET bytea_output = 'hex'",
        "SET application_name = 'strata-sync'",
    ] {
        sqlx::query(set).execute(&mut c).await?;
    }
    Ok(c)
}

/// Refuses a server that cannot run change capture, saying what to set.
pub async fn check_server(c: &mut PgConnection) -> Result<(), SyncError> {
    let level: String = sqlx::query_scalar("SELECT current_setting('wal_level')")
        .fetch_one(&mut *c)
        .await?;
    if level != "logical" {
        return Err(SyncError::NotConfigured(format!(
            "wal_level is `{level}`; run `ALTER SYSTEM SET wal_level = logical` (and set max_replication_slots and max_wal_senders above 0, and max_slot_wal_keep_size to cap the WAL a stalled slot may keep), then restart PostgreSQL"
        )));
    }
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *c)
        .await?;
    if version < 150_000 {
        return Err(SyncError::NotConfigured(format!(
            "PostgreSQL {version} has no publication column lists (15 and later do); without them secrets would reach the WAL stream"
        )));
    }
    let slots: i32 = sqlx::query_scalar("SELECT current_setting('max_replication_slots')::int")
        .fetch_one(&mut *c)
        .await?;
    if slots == 0 {
        return Err(SyncError::NotConfigured(
            "max_replication_slots is 0; set it above 0 and restart PostgreSQL".into(),
        ));
    }
    Ok(())
}

/// The key of the pipeline's advisory lock.
pub(crate) fn lock_key(p: &Pipeline) -> i64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("strata_sync:{}", p.name).as_bytes());
    i64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

/// Takes the pipeline's session advisory lock, waiting (polling every
/// 500 ms) while another runner holds it. The lock lives as long as `c`:
/// when the holder dies, PostgreSQL ends its session and the lock frees.
pub async fn lock(c: &mut PgConnection, p: &Pipeline) -> Result<(), SyncError> {
    let mut said = false;
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key(p))
            .fetch_one(&mut *c)
            .await?;
        if got {
            return Ok(());
        }
        if !said {
            eprintln!(
                "strata sync: another runner holds pipeline `{}`; waiting to take over",
                p.name
            );
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Creates Strata's progress tables when missing.
pub async fn ensure_meta(c: &mut PgConnection) -> Result<(), SyncError> {
    let s = quote_ident(META_SCHEMA);
    let statements = [
        format!("CREATE SCHEMA IF NOT EXISTS {s}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.pipelines (
             name text PRIMARY KEY,
             slot text NOT NULL,
             consistent_point pg_lsn,
             snapshot_done boolean NOT NULL DEFAULT false,
             confirmed_lsn pg_lsn,
             last_commit_at timestamptz,
             updated_at timestamptz NOT NULL DEFAULT now())"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.chunks (
             pipeline text NOT NULL,
             tbl int NOT NULL,
             chunk int NOT NULL,
             lo text[],
             hi text[],
             est_rows bigint NOT NULL,
             copied_rows bigint,
             done boolean NOT NULL DEFAULT false,
             PRIMARY KEY (pipeline, tbl, chunk))"
        ),
        // Page-range chunks (`lo`/`hi`, key bounds, are no longer
        // written): the pages, the table's file when planned, and the
        // `xmin` of the snapshot a done chunk was copied in.
        format!(
            "ALTER TABLE {s}.chunks ADD COLUMN IF NOT EXISTS lo_page bigint,
             ADD COLUMN IF NOT EXISTS hi_page bigint,
             ADD COLUMN IF NOT EXISTS filenode bigint,
             ADD COLUMN IF NOT EXISTS snap_xmin bigint"
        ),
        super::dead_letter::create_sql(),
        // The last failure of a pipeline's run, for `strata sync status`
        // (cleared when a run starts).
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.failures (
             pipeline text PRIMARY KEY,
             error text NOT NULL,
             failed_at timestamptz NOT NULL DEFAULT now())"
        ),
    ];
    // Two pipelines starting at once would race on `IF NOT EXISTS` (both
    // see no table, one fails on pg_type's unique index): one transaction
    // under a transaction-scoped advisory lock makes the second wait.
    let mut tx = sqlx::Connection::begin(&mut *c).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('strata_sync.ensure_meta'))")
        .execute(&mut *tx)
        .await?;
    for st in &statements {
        sqlx::query(st).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `"schema"."table"`.
pub fn qualified(t: &TableSpec) -> String {
    format!(
        "{}.{}",
        quote_ident(&t.source_schema),
        quote_ident(&t.source_table)
    )
}

/// Creates the publication with the copy projection as its column lists,
/// or sets its tables and column lists to them when it exists (a field
/// added to the schema joins the stream).
pub async fn ensure_publication(c: &mut PgConnection, p: &Pipeline) -> Result<(), SyncError> {
    let list: Vec<String> = p
        .tables
        .iter()
        .map(|t| {
            let cols: Vec<String> = t.columns.iter().map(|c| quote_ident(&c.name)).collect();
            format!("{} ({})", qualified(t), cols.join(", "))
        })
        .collect();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(p.publication())
            .fetch_one(&mut *c)
            .await?;
    let sql = if exists {
        format!(
            "ALTER PUBLICATION {} SET TABLE {}",
            quote_ident(&p.publication()),
            list.join(", ")
        )
    } else {
        format!(
            "CREATE PUBLICATION {} FOR TABLE {}",
            quote_ident(&p.publication()),
            list.join(", ")
        )
    };
    sqlx::query(&sql).execute(&mut *c).await?;
    Ok(())
}

/// Records why pipeline `p`'s run ended with an error, for `strata sync
/// status`; best effort (the source may be what failed).
pub async fn record_failure(p: &Pipeline, e: &SyncError) {
    if let Ok(mut c) = connect(&p.source_url).await {
        record_retry(&mut c, p, e).await;
    }
}

/// Records the error a running pipeline retries its start (or restart)
/// after, on the connection holding its lock: `strata sync status` shows
/// it while the runner holds the lock and does not stream. Best effort;
/// cleared when the stream starts, replaced by the run's own error if it
/// fails for good.
pub async fn record_retry(c: &mut PgConnection, p: &Pipeline, e: &SyncError) {
    let _ = sqlx::query(&format!(
        "INSERT INTO {}.failures (pipeline, error) VALUES ($1, $2)
         ON CONFLICT (pipeline) DO UPDATE SET error = EXCLUDED.error, failed_at = now()",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .bind(e.to_string())
    .execute(&mut *c)
    .await;
}

/// Forgets pipeline `p`'s last failure (a run started).
pub async fn clear_failure(c: &mut PgConnection, p: &Pipeline) -> Result<(), SyncError> {
    sqlx::query(&format!(
        "DELETE FROM {}.failures WHERE pipeline = $1",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The `(schema, table)` pairs the pipeline's publication lists
/// (`pg_publication_tables`); empty when the publication does not exist.
pub(crate) async fn published_tables(
    c: &mut PgConnection,
    p: &Pipeline,
) -> Result<Vec<(String, String)>, SyncError> {
    Ok(sqlx::query_as(
        "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
    )
    .bind(p.publication())
    .fetch_all(&mut *c)
    .await?)
}

/// The columns the pipeline's publication lists, per `(schema, table)`
/// (`pg_publication_tables.attnames`); empty when it does not exist. Read
/// at the start of a run, before [`ensure_publication`] changes them: a
/// column listed then was listed by a migration in the transaction that
/// added it, so the stream carries its every value (docs/sync.md,
/// "Schema changes").
pub(crate) async fn published_columns(
    c: &mut PgConnection,
    p: &Pipeline,
) -> Result<std::collections::HashMap<(String, String), Vec<String>>, SyncError> {
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT schemaname::text, tablename::text, attnames::text[] FROM pg_publication_tables WHERE pubname = $1",
    )
    .bind(p.publication())
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(s, t, cols)| ((s, t), cols))
        .collect())
}

/// The columns of `t` among `columns` whose existing rows got a value when
/// the column was added without any change in the WAL: a default (a
/// constant one is stored as the "missing" value, a volatile one rewrote
/// the table; neither is decoded), an identity, a generated column. A copy
/// lacking such a column must be copied again; a plain nullable column
/// was NULL in every row until a change, which the stream carries.
pub(crate) async fn filled_columns(
    c: &mut PgConnection,
    t: &TableSpec,
    columns: &[String],
) -> Result<Vec<String>, SyncError> {
    Ok(sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a
         WHERE a.attrelid = $1::text::regclass AND a.attname::text = ANY($2) AND NOT a.attisdropped
           AND (a.atthasdef OR a.atthasmissing OR a.attidentity <> '' OR a.attgenerated <> '')",
    )
    .bind(qualified(t))
    .bind(columns)
    .fetch_all(&mut *c)
    .await?)
}

/// Removes the source tables of entities `entities` from the pipeline's
/// publication, when it exists and lists them: PostgreSQL refuses to
/// change the type of, or drop, a column a publication lists, so a
/// migration that does needs them out first; the next run's
/// [`ensure_publication`] adds them back. Returns the tables removed.
pub async fn unpublish(
    c: &mut PgConnection,
    p: &Pipeline,
    entities: &[String],
) -> Result<Vec<String>, SyncError> {
    let listed = published_tables(c, p).await?;
    let mut removed = Vec::new();
    for t in p.tables.iter().filter(|t| entities.contains(&t.entity)) {
        if !listed.contains(&(t.source_schema.clone(), t.source_table.clone())) {
            continue;
        }
        sqlx::query(&format!(
            "ALTER PUBLICATION {} DROP TABLE {}",
            quote_ident(&p.publication()),
            qualified(t)
        ))
        .execute(&mut *c)
        .await?;
        removed.push(qualified(t));
    }
    Ok(removed)
}

/// The slot's confirmed position, if the slot exists.
pub async fn slot_position(c: &mut PgConnection, slot: &str) -> Result<Option<Lsn>, SyncError> {
    let row: Option<Option<String>> = sqlx::query_scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        None => Ok(None),
        Some(None) => Ok(Some(Lsn(0))),
        Some(Some(t)) => Ok(Some(
            t.parse().map_err(|e| SyncError::Decode(format!("{e}")))?,
        )),
    }
}

/// The recorded state of a pipeline.
#[derive(Debug, Clone)]
pub struct State {
    /// The slot's consistent point: the version of every snapshot row.
    pub consistent_point: Option<Lsn>,
    pub snapshot_done: bool,
}

/// The recorded state of a pipeline, if it ever ran.
pub async fn state(c: &mut PgConnection, p: &Pipeline) -> Result<Option<State>, SyncError> {
    let row = sqlx::query(&format!(
        "SELECT consistent_point::text, snapshot_done FROM {}.pipelines WHERE name = $1",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(|r| State {
        consistent_point: r.get::<Option<String>, _>(0).and_then(|s| s.parse().ok()),
        snapshot_done: r.get(1),
    }))
}

/// Records a new slot: its consistent point, the snapshot to do, no chunks yet.
pub async fn record_new_slot(
    c: &mut PgConnection,
    p: &Pipeline,
    slot: &str,
    cp: Lsn,
) -> Result<(), SyncError> {
    let s = quote_ident(META_SCHEMA);
    let mut tx = c.begin().await?;
    sqlx::query(&format!("DELETE FROM {s}.chunks WHERE pipeline = $1"))
        .bind(&p.name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO {s}.pipelines (name, slot, consistent_point, snapshot_done, confirmed_lsn)
         VALUES ($1, $2, $3::text::pg_lsn, false, $3::text::pg_lsn)
         ON CONFLICT (name) DO UPDATE SET slot = $2, consistent_point = $3::text::pg_lsn,
           snapshot_done = false, confirmed_lsn = $3::text::pg_lsn, updated_at = now()"
    ))
    .bind(&p.name)
    .bind(slot)
    .bind(cp.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records that every chunk of the snapshot is copied.
pub async fn mark_snapshot_done(c: &mut PgConnection, p: &Pipeline) -> Result<(), SyncError> {
    sqlx::query(&format!(
        "UPDATE {}.pipelines SET snapshot_done = true, updated_at = now() WHERE name = $1",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Records the acknowledged position and the commit time of the last
/// applied transaction (for `status`'s lag in seconds), and sets the lag
/// gauges: bytes of WAL the slot keeps past `lsn`, and seconds: the age of
/// `pending_commit_us`, the oldest commit received and not yet in every
/// target (a target down and retried), when there is one; else, while the
/// slot keeps WAL, the time since the last applied commit. Commit times
/// are µs since PostgreSQL's epoch (2000-01-01), as pgoutput sends them.
pub async fn record_position(
    c: &mut PgConnection,
    p: &Pipeline,
    lsn: Lsn,
    last_commit_us: Option<i64>,
    pending_commit_us: Option<i64>,
) -> Result<(), SyncError> {
    const PG_EPOCH: f64 = 946_684_800_000_000.0;
    let lag: Option<(f64, f64)> = sqlx::query_as(&format!(
        "UPDATE {}.pipelines SET confirmed_lsn = $2::text::pg_lsn,
            last_commit_at = COALESCE(to_timestamp($3::float8 / 1e6), last_commit_at), updated_at = now()
         WHERE name = $1
         RETURNING pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_lsn)::float8,
                   COALESCE(EXTRACT(EPOCH FROM now() - COALESCE(to_timestamp($4::float8 / 1e6), last_commit_at)), 0)::float8",
        quote_ident(META_SCHEMA)
    ))
    .bind(&p.name)
    .bind(lsn.to_string())
    .bind(last_commit_us.map(|us| us as f64 + PG_EPOCH))
    .bind(pending_commit_us.map(|us| us as f64 + PG_EPOCH))
    .fetch_optional(&mut *c)
    .await?;
    if let Some((bytes, secs)) = lag {
        use crate::metrics as m;
        let pipeline = p.name.clone();
        metrics::gauge!(m::SYNC_CONFIRMED, "pipeline" => pipeline.clone()).set(lsn.0 as f64);
        metrics::gauge!(m::SYNC_LAG_BYTES, "pipeline" => pipeline.clone()).set(bytes.max(0.0));
        let behind = bytes > 0.0 || pending_commit_us.is_some();
        let secs = if behind { secs.max(0.0) } else { 0.0 };
        metrics::gauge!(m::SYNC_LAG_SECONDS, "pipeline" => pipeline).set(secs);
    }
    Ok(())
}
