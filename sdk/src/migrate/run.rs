//! Applying migrations and reading their state, on one connection.

use chrono::{DateTime, Utc};
use sqlx::{Connection, Executor, PgConnection};

use super::concurrent;
use super::record::{check_name, Record};
use super::{split, MigrateError, Migration, Migrations};

/// The advisory lock key every run takes ("STRATAMG").
pub const LOCK_KEY: i64 = 0x5354_5241_5441_4d47;
/// The table that records applied migrations, by default.
pub const DEFAULT_TABLE: &str = "strata_migrations";

/// Opens the single connection a run uses (the advisory lock is per session).
pub async fn connect(url: &str) -> Result<PgConnection, MigrateError> {
    Ok(PgConnection::connect(url).await?)
}

/// Applies a set of migrations. Built with `with_*` methods.
#[derive(Debug, Clone)]
pub struct Migrator {
    migrations: Migrations,
    record: Record,
    /// Accept migrations applied by a newer program (see
    /// [`Migrator::allow_newer`]).
    allow_newer: bool,
}

/// What one `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// (version, name) of each migration this run applied, in order.
    pub applied: Vec<(i64, String)>,
    /// How many were already applied.
    pub already_applied: usize,
    /// The migrations of `applied` whose version is below one applied
    /// before this run (a file added below the latest, as after merging two
    /// branches): applied, in version order, but after a later one, so a
    /// reader should check it does not depend on what came after.
    pub out_of_order: Vec<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationState {
    Applied {
        at: DateTime<Utc>,
    },
    Pending,
    /// Applied, but the file differs from what was applied.
    Changed {
        at: DateTime<Utc>,
    },
    /// Applied, but no file has this version any more.
    Missing {
        at: DateTime<Utc>,
    },
    /// Applied, and newer than every migration of this set: a newer
    /// program applied it (a rolling deploy, or a rollback).
    Newer {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    pub state: MigrationState,
}

struct Applied {
    version: i64,
    name: String,
    checksum: String,
    at: DateTime<Utc>,
}

impl Migrator {
    pub fn new(migrations: Migrations) -> Self {
        Migrator {
            migrations,
            record: Record {
                schema: None,
                table: DEFAULT_TABLE.to_string(),
            },
            allow_newer: false,
        }
    }

    /// Whether migrations applied by a *newer* program (versions above
    /// every migration of this set) are accepted. By default `apply`
    /// refuses them ([`MigrateError::Newer`]): this program may not work
    /// with the database they made. During a rolling deploy or a rollback
    /// whose newer migrations are compatible with this program (additive:
    /// a new nullable column, a new table or index), allow them: `apply`
    /// then skips them with a warning. A migration missing from the middle
    /// of the set is still [`MigrateError::Missing`]. (sqlx calls this
    /// `ignore_missing`.)
    pub fn allow_newer(mut self, allow: bool) -> Self {
        self.allow_newer = allow;
        self
    }

    /// Whether [`Migrator::allow_newer`] is set.
    pub fn allows_newer(&self) -> bool {
        self.allow_newer
    }

    /// Records applied migrations in the PostgreSQL schema `schema` (as
    /// `<schema>.strata_migrations`), created if missing: the store's own
    /// `schema:`, so that stores sharing a database keep separate records.
    /// Without it the table is found on the search path (`public`).
    ///
    /// When the table does not exist yet but the search-path table holds
    /// this folder's history (every row a migration of this set, with its
    /// checksum), as runs before per-store records wrote it, `apply` moves
    /// those rows here and `status` reports them.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, MigrateError> {
        check_name(schema)?;
        self.record.schema = Some(schema.to_string());
        Ok(self)
    }

    /// Where this migrator records: `app_a.strata_migrations`, or
    /// `strata_migrations` (the search path's, normally `public`).
    pub fn record_table(&self) -> String {
        self.record.display()
    }

    /// Records applied migrations in `table` (a plain lower-case name).
    pub fn with_table(mut self, table: &str) -> Result<Self, MigrateError> {
        let mut chars = table.chars();
        let ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && table.len() <= 63;
        if !ok {
            return Err(MigrateError::BadTable(table.to_string()));
        }
        self.record.table = table.to_string();
        Ok(self)
    }

    pub fn migrations(&self) -> &Migrations {
        &self.migrations
    }

    /// Applies every pending migration, in version order, under the advisory lock.
    pub async fn apply(&self, conn: &mut PgConnection) -> Result<ApplyReport, MigrateError> {
        lock(conn).await?;
        let result = self.apply_locked(conn).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await;
        let report = result?;
        unlocked?;
        Ok(report)
    }

    /// [`Migrator::apply`] on a connection of `pool`. On an error the
    /// connection is closed rather than returned, so no session state (such
    /// as the advisory lock) outlives the run.
    pub async fn apply_pool(&self, pool: &sqlx::PgPool) -> Result<ApplyReport, MigrateError> {
        let mut conn = pool.acquire().await?;
        let result = self.apply(&mut conn).await;
        if result.is_err() {
            let _ = conn.detach().close().await;
        }
        result
    }

    async fn apply_locked(&self, conn: &mut PgConnection) -> Result<ApplyReport, MigrateError> {
        if !self.record.exists(conn).await? {
            if self.migrations.is_empty() {
                // Nothing to apply and nothing recorded: leave the database as is.
                return Ok(ApplyReport::default());
            }
            if let Some(there) = self.recorded_elsewhere(conn).await? {
                let here = self.record.display();
                return Err(MigrateError::RecordedElsewhere { here, there });
            }
            let legacy = self.adoptable(conn).await?;
            self.record.create(conn).await?;
            if !legacy.is_empty() {
                self.adopt(conn, &legacy).await?;
            }
        }
        let applied = self.applied(conn).await?;
        self.verify(&applied)?;
        let mut report = ApplyReport {
            already_applied: applied.len(),
            ..ApplyReport::default()
        };
        let latest_applied = applied.iter().map(|a| a.version).max();
        for m in self.migrations.iter() {
            if applied.iter().any(|a| a.version == m.version) {
                continue;
            }
            self.apply_one(conn, m)
                .await
                .map_err(|(cause, at)| match cause {
                    StepCause::Sql(source) => MigrateError::Failed {
                        version: m.version,
                        name: m.name.clone(),
                        at,
                        source,
                    },
                    StepCause::InvalidIndex(ix) => MigrateError::InvalidIndex {
                        version: m.version,
                        name: m.name.clone(),
                        index: ix.name,
                        table: ix.table,
                    },
                })?;
            tracing::info!(version = m.version, name = %m.name, "applied migration");
            report.applied.push((m.version, m.name.clone()));
            if latest_applied.is_some_and(|v| m.version < v) {
                tracing::warn!(version = m.version, name = %m.name, "applied migration out of order");
                report.out_of_order.push((m.version, m.name.clone()));
            }
        }
        Ok(report)
    }

    /// Runs one migration statement by statement (inside a transaction unless
    /// marked otherwise), so that a failure names the statement's line.
    async fn apply_one(&self, conn: &mut PgConnection, m: &Migration) -> Result<(), StepError> {
        let started = std::time::Instant::now();
        let record = format!(
            "INSERT INTO {} (version, name, checksum, no_transaction, duration_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            self.record.sql()
        );
        let plain = |e: sqlx::Error| (StepCause::Sql(e), None);
        if !m.no_transaction {
            conn.execute("BEGIN").await.map_err(plain)?;
        }
        let mut from = 0;
        let mut body: Result<(), StepError> = Ok(());
        // Indexes this run of a no-transaction migration built, dropped
        // again when a later statement fails.
        let mut built = Vec::new();
        for statement in split::statements(&m.sql) {
            let at = locate(&m.sql, &mut from, &statement);
            let run = if m.no_transaction {
                run_outside_transaction(conn, &statement)
                    .await
                    .map(|new| built.extend(new))
            } else {
                conn.execute(statement.as_str())
                    .await
                    .map(|_| ())
                    .map_err(StepCause::Sql)
            };
            if let Err(e) = run {
                body = Err((e, Some(at)));
                break;
            }
        }
        if body.is_ok() {
            body = record_row(&record, m, started)
                .execute(&mut *conn)
                .await
                .map(|_| ())
                .map_err(plain);
        }
        if m.no_transaction {
            if body.is_err() {
                undo_builds(conn, &built).await;
            }
            return body;
        }
        match body {
            Ok(()) => {
                conn.execute("COMMIT").await.map_err(plain)?;
                Ok(())
            }
            Err(e) => {
                conn.execute("ROLLBACK").await.map_err(plain)?;
                Err(e)
            }
        }
    }

    /// The rows of this migrator's record; when it does not exist yet, the
    /// rows [`Migrator::adoptable`] would move into it.
    async fn applied(&self, conn: &mut PgConnection) -> Result<Vec<Applied>, MigrateError> {
        if self.record.exists(conn).await? {
            return Ok(read_rows(conn, &self.record).await?);
        }
        self.adoptable(conn).await
    }

    /// For a migrator with its own schema whose record does not exist yet:
    /// the rows of the search-path record when every one of them is a
    /// migration of this set with its checksum (this folder's history,
    /// written before records were per store); else none.
    async fn adoptable(&self, conn: &mut PgConnection) -> Result<Vec<Applied>, MigrateError> {
        if self.record.schema.is_none() {
            return Ok(Vec::new());
        }
        let legacy = self.legacy();
        // A table this role may not read (another role's default store) is not its history.
        if !legacy.exists(conn).await? || !legacy.may(conn, "SELECT").await? {
            return Ok(Vec::new());
        }
        let rows = read_rows(conn, &legacy).await?;
        let ours = |a: &Applied| {
            self.migrations
                .get(a.version)
                .is_some_and(|m| m.matches(&a.checksum))
        };
        Ok(if rows.iter().all(ours) {
            rows
        } else {
            Vec::new()
        })
    }

    /// For a record on the search path that does not exist yet: another
    /// schema's record table (one this role may read) holding one of this
    /// set's migrations, as `strata migrate apply` writes for a store with
    /// `schema:`. Applying here would run them a second time.
    async fn recorded_elsewhere(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Option<String>, MigrateError> {
        if self.record.schema.is_some() {
            return Ok(None);
        }
        let schemas: Vec<String> = sqlx::query_scalar(
            "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = $1 AND c.relkind IN ('r', 'p') \
             AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1",
        )
        .bind(&self.record.table)
        .fetch_all(&mut *conn)
        .await?;
        for schema in schemas {
            let other = Record {
                schema: Some(schema),
                table: self.record.table.clone(),
            };
            let rows = read_rows(conn, &other).await?;
            let ours = |a: &Applied| {
                self.migrations
                    .get(a.version)
                    .is_some_and(|m| m.matches(&a.checksum))
            };
            if rows.iter().any(ours) {
                return Ok(Some(other.display()));
            }
        }
        Ok(None)
    }

    /// Moves `rows` from the search-path record into this one, in one transaction.
    async fn adopt(&self, conn: &mut PgConnection, rows: &[Applied]) -> Result<(), MigrateError> {
        let versions: Vec<i64> = rows.iter().map(|a| a.version).collect();
        let cols = "version, name, checksum, no_transaction, applied_at, duration_ms";
        let (new, old) = (self.record.sql(), self.legacy().sql());
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query(&format!(
            "INSERT INTO {new} ({cols}) SELECT {cols} FROM {old} WHERE version = ANY($1)"
        ))
        .bind(&versions)
        .execute(&mut *tx)
        .await?;
        // Rows this role may not delete stay behind (copied, not moved).
        if self.legacy().may(&mut tx, "DELETE").await? {
            sqlx::query(&format!("DELETE FROM {old} WHERE version = ANY($1)"))
                .bind(&versions)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(
            rows = versions.len(),
            from = %self.legacy().display(),
            to = %self.record.display(),
            "moved migration records into the store's own table"
        );
        Ok(())
    }

    fn legacy(&self) -> Record {
        Record {
            schema: None,
            table: self.record.table.clone(),
        }
    }

    fn verify(&self, applied: &[Applied]) -> Result<(), MigrateError> {
        let latest = self.migrations.iter().map(|m| m.version).max().unwrap_or(0);
        for a in applied {
            match self.migrations.get(a.version) {
                None if a.version > latest && self.allow_newer => {
                    tracing::warn!(
                        version = a.version,
                        name = %a.name,
                        latest,
                        "the database has a migration newer than this program's; accepted (allow_newer)"
                    );
                }
                None if a.version > latest => {
                    return Err(MigrateError::Newer {
                        version: a.version,
                        name: a.name.clone(),
                        latest,
                    })
                }
                None => {
                    return Err(MigrateError::Missing {
                        version: a.version,
                        name: a.name.clone(),
                    })
                }
                Some(m) if !m.matches(&a.checksum) => {
                    return Err(MigrateError::Changed {
                        version: a.version,
                        name: a.name.clone(),
                        applied: a.checksum.clone(),
                        local: m.checksum.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Every migration known to the folder or the database, in version order.
    pub async fn status(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<MigrationStatus>, MigrateError> {
        let applied = self.applied(conn).await?;
        let mut out: Vec<MigrationStatus> = self
            .migrations
            .iter()
            .map(|m| {
                let state = match applied.iter().find(|a| a.version == m.version) {
                    None => MigrationState::Pending,
                    Some(a) if !m.matches(&a.checksum) => MigrationState::Changed { at: a.at },
                    Some(a) => MigrationState::Applied { at: a.at },
                };
                MigrationStatus {
                    version: m.version,
                    name: m.name.clone(),
                    state,
                }
            })
            .collect();
        let latest = self.migrations.iter().map(|m| m.version).max().unwrap_or(0);
        for a in &applied {
            if self.migrations.get(a.version).is_none() {
                let state = match a.version > latest {
                    true => MigrationState::Newer { at: a.at },
                    false => MigrationState::Missing { at: a.at },
                };
                out.push(MigrationStatus {
                    version: a.version,
                    name: a.name.clone(),
                    state,
                });
            }
        }
        out.sort_by_key(|s| s.version);
        Ok(out)
    }
}

async fn read_rows(conn: &mut PgConnection, record: &Record) -> Result<Vec<Applied>, sqlx::Error> {
    let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT version, name, checksum, applied_at FROM {} ORDER BY version",
        record.sql()
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(version, name, checksum, at)| Applied {
            version,
            name,
            checksum,
            at,
        })
        .collect())
}

/// The server process id of the session holding the migrations' advisory
/// lock ([`LOCK_KEY`]), if any: another run, or one killed whose session
/// the server has not ended yet (`pg_terminate_backend(pid)` ends it). A
/// 64-bit advisory key shows in `pg_locks` as `classid` (high 32 bits) and
/// `objid` (low 32 bits) with `objsubid = 1`.
pub async fn lock_holder(conn: &mut PgConnection) -> Result<Option<i32>, MigrateError> {
    let pid = sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = ($1 >> 32)::oid AND objid = ($1 & 4294967295)::oid AND objsubid = 1 \
         AND pid <> pg_backend_pid() LIMIT 1",
    )
    .bind(LOCK_KEY)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(pid)
}

/// Takes the advisory lock by polling `pg_try_advisory_lock`. A session
/// blocked in `pg_advisory_lock` sits in an open transaction, and
/// `CREATE INDEX CONCURRENTLY` in the session holding the lock waits for every
/// open transaction to end: the two would deadlock.
async fn lock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut wait = std::time::Duration::from_millis(20);
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if got {
            return Ok(());
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_millis(500));
    }
}

/// Runs one statement of a migration marked `-- strata:no-transaction`. A
/// named `CREATE INDEX CONCURRENTLY` first drops an INVALID index a failed
/// earlier run left (`IF NOT EXISTS` would skip it), and must end with a
/// valid index; when it fails, the INVALID index it left is dropped before
/// the error is reported, so no failure leaves an orphan behind (whatever
/// the user does next: apply again, or delete the migration). Returns the
/// index when this statement built it (it did not exist, valid, before).
async fn run_outside_transaction(
    conn: &mut PgConnection,
    statement: &str,
) -> Result<Option<concurrent::ConcurrentIndex>, StepCause> {
    let Some(ix) = concurrent::concurrent_index(statement) else {
        conn.execute(statement).await?;
        return Ok(None);
    };
    if concurrent::drop_invalid(conn, &ix).await? {
        tracing::warn!(index = %ix.name, table = %ix.table, "dropped an INVALID index left by an earlier failed concurrent build; building it again");
    }
    let existed = concurrent::validity(conn, &ix).await?.is_some();
    if let Err(e) = conn.execute(statement).await {
        drop_failed_build(conn, &ix).await;
        return Err(e.into());
    }
    match concurrent::validity(conn, &ix).await? {
        Some(false) => {
            drop_failed_build(conn, &ix).await;
            Err(StepCause::InvalidIndex(ix))
        }
        _ => Ok((!existed).then_some(ix)),
    }
}

/// Drops again the indexes a failed no-transaction migration built before
/// the statement that failed, so that its concurrent index builds fail
/// whole, as a transactional migration does (the next apply builds them
/// again). Statements of other kinds (an enum value added) cannot be undone
/// and stay applied; they are written to be re-runnable. A drop that fails
/// is logged: the index is valid and the next apply's `IF NOT EXISTS`
/// keeps it.
async fn undo_builds(conn: &mut PgConnection, built: &[concurrent::ConcurrentIndex]) {
    for ix in built.iter().rev() {
        match concurrent::drop_index(conn, ix).await {
            Ok(()) => {
                tracing::warn!(index = %ix.name, table = %ix.table, "dropped the index this failed migration built (it is built again by the next apply)")
            }
            Err(e) => {
                tracing::warn!(index = %ix.name, table = %ix.table, error = %e, "could not drop the index this failed migration built; it is valid and the next apply keeps it")
            }
        }
    }
}

/// Drops the INVALID index a failed concurrent build of `ix` left. The build's
/// own error is the one reported; should this drop fail too, the next run
/// drops the leftover before building it again.
async fn drop_failed_build(conn: &mut PgConnection, ix: &concurrent::ConcurrentIndex) {
    match concurrent::drop_invalid(conn, ix).await {
        Ok(true) => {
            tracing::warn!(index = %ix.name, table = %ix.table, "dropped the INVALID index the failed concurrent build left")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(index = %ix.name, table = %ix.table, error = %e, "could not drop the INVALID index the failed concurrent build left; the next apply drops it")
        }
    }
}

/// Why a step failed.
enum StepCause {
    Sql(sqlx::Error),
    /// A concurrent build left its index INVALID.
    InvalidIndex(concurrent::ConcurrentIndex),
}

impl From<sqlx::Error> for StepCause {
    fn from(e: sqlx::Error) -> Self {
        StepCause::Sql(e)
    }
}

/// A failed step and where it is (`line N: ALTER TABLE …`).
type StepError = (StepCause, Option<String>);

/// Finds `statement` in `sql` from `*from` on (statements come in file order)
/// and describes it by its line and its first line of code.
fn locate(sql: &str, from: &mut usize, statement: &str) -> String {
    let at = sql
        .get(*from..)
        .and_then(|rest| rest.find(statement))
        .map_or(*from, |i| *from + i);
    *from = (at + statement.len()).min(sql.len());
    let mut line = sql[..at.min(sql.len())].matches('\n').count() + 1;
    let mut first = "";
    for l in statement.lines() {
        let t = l.trim();
        if t.is_empty() || t.starts_with("--") {
            line += 1;
            continue;
        }
        first = t;
        break;
    }
    let mut excerpt: String = first.chars().take(100).collect();
    if first.chars().count() > 100 {
        excerpt.push('…');
    }
    format!("line {line}: {excerpt}")
}

fn record_row<'q>(
    sql: &'q str,
    m: &'q Migration,
    started: std::time::Instant,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    sqlx::query(sql)
        .bind(m.version)
        .bind(&m.name)
        .bind(&m.checksum)
        .bind(m.no_transaction)
        .bind(ms)
}

#[cfg(test)]
mod tests {
    /// Applications run migrations from spawned tasks.
    #[allow(dead_code)]
    fn apply_is_send(m: &super::Migrator, c: &mut sqlx::PgConnection) {
        fn send<T: Send>(_: T) {}
        send(m.apply(c));
        send(m.status(c));
    }
}
