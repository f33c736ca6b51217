//! The ClickHouse target: `TabSeparated` inserts over HTTP into the
//! generated `ReplacingMergeTree` tables, `_version` = commit LSN,
//! `_deleted = 1` tombstones. Tables are created from the generated DDL
//! when missing.

use std::time::Duration;

use super::cell::{self, Cell};
use super::error::SyncError;
use super::spec::{ClickHouseFlags, ClickHouseTable, TableSpec};

/// One ClickHouse server of a pipeline.
#[derive(Clone)]
pub struct ClickHouse {
    pub store: String,
    url: reqwest::Url,
    user: Option<(String, Option<String>)>,
    http: reqwest::Client,
    pub flags: ClickHouseFlags,
    pub tables: Vec<ClickHouseTable>,
}

/// Rows of one table waiting for one insert.
#[derive(Default)]
pub struct Pending {
    pub body: Vec<u8>,
    pub rows: usize,
}

impl ClickHouse {
    /// A client for `url` (`http://[user[:password]@]host:port`).
    pub fn new(
        store: &str,
        url: &str,
        flags: ClickHouseFlags,
        tables: Vec<ClickHouseTable>,
    ) -> Result<ClickHouse, SyncError> {
        let mut u = reqwest::Url::parse(url)
            .map_err(|e| SyncError::Config(format!("ClickHouse URL of `{store}`: {e}")))?;
        let user = if u.username().is_empty() {
            None
        } else {
            Some((u.username().to_string(), u.password().map(str::to_string)))
        };
        let _ = u.set_username("");
        let _ = u.set_password(None);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| SyncError::Config(format!("HTTP client: {e}")))?;
        Ok(ClickHouse {
            store: store.to_string(),
            url: u,
            user,
            http,
            flags,
            tables,
        })
    }

    fn err(&self, message: impl Into<String>) -> SyncError {
        SyncError::Target {
            target: self.store.clone(),
            message: message.into(),
        }
    }

    /// Runs one statement (the query in the body) and returns the output.
    pub async fn exec(&self, query: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>, SyncError> {
        let mut req = match body {
            Some(b) => self
                .http
                .post(self.url.clone())
                .query(&[("query", query)])
                .body(b),
            None => self.http.post(self.url.clone()).body(query.to_string()),
        };
        if let Some((u, p)) = &self.user {
            req = req.basic_auth(u, p.as_ref());
        }
        let resp = req.send().await.map_err(|e| self.err(format!("{e}")))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.err(format!("{e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(self.err(format!(
                "HTTP {status}: {}",
                text.trim().chars().take(500).collect::<String>()
            )));
        }
        Ok(bytes.to_vec())
    }

    /// Creates the databases, tables and views that do not exist yet.
    pub async fn ensure(&self) -> Result<(), SyncError> {
        for t in &self.tables {
            for st in &t.create {
                self.exec(st, None).await?;
            }
        }
        Ok(())
    }

    /// The target table of a pipeline table, if this target has one.
    pub fn table_for(&self, table: usize) -> Option<usize> {
        self.tables.iter().position(|t| t.table == table)
    }

    /// Appends one row (`cells` in column order) with its version.
    pub fn push_row(&self, p: &mut Pending, cells: &[Cell], version: u64, deleted: bool) {
        for c in cells {
            cell::write_tsv(&mut p.body, c, self.flags);
            p.body.push(b'\t');
        }
        p.body.extend_from_slice(version.to_string().as_bytes());
        p.body
            .extend_from_slice(if deleted { b"\t1\n" } else { b"\t0\n" });
        p.rows += 1;
    }

    /// Inserts the pending rows of one table, retrying with back-off while
    /// the server is unreachable or refusing (the caller's position is
    /// held meanwhile); gives up only on `stop`.
    pub async fn insert(&self, spec: &TableSpec, t: usize, p: &Pending) -> Result<(), SyncError> {
        if p.rows == 0 {
            return Ok(());
        }
        let tt = &self.tables[t];
        let cols: Vec<String> = spec
            .columns
            .iter()
            .map(|c| crate::sync::quote_ch(&c.name))
            .chain(["`_version`".to_string(), "`_deleted`".to_string()])
            .collect();
        let q = format!(
            "INSERT INTO {}.{} ({}) FORMAT TabSeparated",
            crate::sync::quote_ch(&tt.database),
            crate::sync::quote_ch(&tt.name),
            cols.join(", ")
        );
        super::retry::forever(&format!("insert into ClickHouse `{}`", tt.name), || {
            self.exec(&q, Some(p.body.clone()))
        })
        .await?;
        Ok(())
    }
}
