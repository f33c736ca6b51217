//! The table that records applied migrations: where it is, creating it, and
//! moving a store's rows out of the shared default table.
//!
//! Each postgres store with its own `schema:` records its migrations in
//! `<schema>.strata_migrations`, so two stores of one database never share a
//! record, and a role that may not create in `public` (PostgreSQL 15's
//! default) can apply a store that has its own schema. A store without
//! `schema:` keeps the table on the search path (`public.strata_migrations`),
//! as before.

use sqlx::{Executor, PgConnection};

use super::MigrateError;

/// The record table of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub schema: Option<String>,
    pub table: String,
}

impl Record {
    /// The table's name as SQL: quoted, qualified when it has a schema.
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.table)),
            None => quote_ident(&self.table),
        }
    }

    /// `app_a.strata_migrations`, or the bare name (found on the search path).
    pub fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.table),
            None => self.table.clone(),
        }
    }

    /// Whether the table exists.
    pub async fn exists(&self, conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(self.sql())
            .fetch_one(&mut *conn)
            .await?;
        Ok(found.is_some())
    }

    /// Whether the current role holds `privilege` (`SELECT`, `DELETE`) on
    /// the table, which must exist.
    pub async fn may(&self, conn: &mut PgConnection, privilege: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT has_table_privilege(to_regclass($1), $2)")
            .bind(self.sql())
            .bind(privilege)
            .fetch_one(&mut *conn)
            .await
    }

    /// Creates the schema (only when missing: `CREATE SCHEMA IF NOT EXISTS`
    /// needs the database's CREATE privilege even when the schema exists)
    /// and the table.
    pub async fn create(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if let Some(s) = &self.schema {
            let found: Option<String> = sqlx::query_scalar("SELECT to_regnamespace($1)::text")
                .bind(quote_ident(s))
                .fetch_one(&mut *conn)
                .await?;
            if found.is_none() {
                conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(s)).as_str())
                    .await?;
            }
        }
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {} (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                no_transaction boolean NOT NULL DEFAULT false,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms bigint NOT NULL DEFAULT 0
            )",
            self.sql()
        );
        conn.execute(create.as_str()).await?;
        Ok(())
    }
}

/// Checks a schema or table name given to the [`super::Migrator`]: 1 to 63
/// bytes, no NUL (it is quoted in SQL, so any other character is safe).
pub(super) fn check_name(name: &str) -> Result<(), MigrateError> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(MigrateError::BadTable(name.to_string()));
    }
    Ok(())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
