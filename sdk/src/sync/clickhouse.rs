//! The ClickHouse target: `TabSeparated` inserts over HTTP into the
//! generated `ReplacingMergeTree` tables, `_version` = commit LSN,
//! `_deleted = 1` tombstones. Tables are created from the generated DDL
//! when missing.

use std::time::Duration;

use super::cell::Cell;
use super::error::SyncError;
use super::spec::{ClickHouseFlags, ClickHouseTable, ColumnSpec, ColumnType, TableSpec};

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
        // No idle connections kept: a restarted or replaced server (or a
        // proxy switched over) is reached by the next insert at once.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(0)
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

    /// A request that got no answer: the server's address and the short
    /// reason, never the request's URL (an insert's query travels in it,
    /// about 300 characters a line while the server is down); the query
    /// goes to the debug log. Neither holds a value: rows travel in the
    /// body.
    fn transport(&self, e: reqwest::Error, query: &str) -> SyncError {
        tracing::debug!(store = %self.store, query, "ClickHouse request failed: {e}");
        let host = self.url.host_str().unwrap_or("?");
        let at = match self.url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        self.err(format!("{at}: {}", with_causes(&e.without_url())))
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
        let resp = req.send().await.map_err(|e| self.transport(e, query))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e, query))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let message = format!(
                "HTTP {status}: {}",
                text.trim().chars().take(500).collect::<String>()
            );
            return Err(match permanent(&text) {
                Some(hint) => SyncError::TargetRefused {
                    target: self.store.clone(),
                    message,
                    hint,
                },
                None => self.err(message),
            });
        }
        Ok(bytes.to_vec())
    }

    /// Creates the databases, tables and views that do not exist yet.
    pub async fn ensure(&self, specs: &[TableSpec]) -> Result<(), SyncError> {
        // Views last: ClickHouse 18.16 analyses a view's SELECT even when
        // it exists already, so its columns must exist first.
        let is_view = |s: &String| s.starts_with("CREATE VIEW");
        for t in &self.tables {
            for st in t.create.iter().filter(|s| !is_view(s)) {
                self.exec(st, None).await?;
            }
        }
        // Fields the schema gained: add their columns, then recreate the
        // current-rows view (it lists its columns).
        let listed = self.listed_columns().await?;
        for t in &self.tables {
            let have = columns_of(&listed, t);
            let spec = &specs[t.table];
            check_shape(t, spec, &have)?;
            let mut added = false;
            for (i, col) in spec.columns.iter().enumerate() {
                if have.iter().any(|(n, _)| *n == col.name) {
                    continue;
                }
                let Some(ty) = t.column_types.get(i) else {
                    return Err(self.err(format!(
                        "`{}` has no column `{}` and the pipeline gives no type to add it with",
                        t.name, col.name
                    )));
                };
                self.exec(
                    &format!(
                        "ALTER TABLE {}.{} ADD COLUMN {} {ty}",
                        crate::sync::quote_ch(&t.database),
                        crate::sync::quote_ch(&t.name),
                        crate::sync::quote_ch(&col.name)
                    ),
                    None,
                )
                .await?;
                eprintln!(
                    "strata sync: added column `{}` to ClickHouse `{}.{}`",
                    col.name, t.database, t.name
                );
                added = true;
            }
            if added {
                self.exec(
                    &format!(
                        "DROP TABLE IF EXISTS {}.{}",
                        crate::sync::quote_ch(&t.database),
                        crate::sync::quote_ch(&t.current_view)
                    ),
                    None,
                )
                .await?;
            }
            for st in t.create.iter().filter(|s| is_view(s)) {
                self.exec(st, None).await?;
            }
        }
        Ok(())
    }

    /// `database \t table \t column \t type` lines of every column of the server.
    async fn listed_columns(&self) -> Result<String, SyncError> {
        let listed = self
            .exec(
                "SELECT database, table, name, type FROM system.columns FORMAT TabSeparated",
                None,
            )
            .await?;
        Ok(String::from_utf8_lossy(&listed).into_owned())
    }

    /// The pipeline tables whose copy here does not hold every column yet:
    /// the table is missing (an entity added to the `sync:` rules after
    /// the first snapshot) or lacks a column (a field added). Their rows
    /// must be copied again once [`ClickHouse::ensure`] has made them.
    pub async fn missing_columns(&self, specs: &[TableSpec]) -> Result<Vec<usize>, SyncError> {
        Ok((self.missing(specs).await?.into_iter())
            .map(|m| m.table)
            .collect())
    }

    /// What [`ClickHouse::missing_columns`] finds, per table: the columns
    /// the copy lacks, or that the whole table is missing.
    pub async fn missing(&self, specs: &[TableSpec]) -> Result<Vec<Missing>, SyncError> {
        let listed = self.listed_columns().await?;
        Ok((self.tables.iter())
            .filter_map(|t| {
                let have = columns_of(&listed, t);
                let columns: Vec<String> = (specs[t.table].columns.iter())
                    .filter(|c| !have.iter().any(|(n, _)| *n == c.name))
                    .map(|c| c.name.clone())
                    .collect();
                let whole_table = have.is_empty();
                (!columns.is_empty()).then_some(Missing {
                    table: t.table,
                    columns,
                    whole_table,
                })
            })
            .collect())
    }

    /// Of `columns`, those the copy of pipeline table `table` lacks; empty
    /// when this target has no copy of it or the copy does not exist yet.
    pub async fn lacking(
        &self,
        table: usize,
        columns: &[String],
    ) -> Result<Vec<String>, SyncError> {
        let Some(t) = self.tables.iter().find(|t| t.table == table) else {
            return Ok(Vec::new());
        };
        let listed = self.listed_columns().await?;
        let have = columns_of(&listed, t);
        if have.is_empty() {
            return Ok(Vec::new());
        }
        Ok((columns.iter())
            .filter(|c| !have.iter().any(|(n, _)| *n == c.as_str()))
            .cloned()
            .collect())
    }

    /// The target table of a pipeline table, if this target has one.
    pub fn table_for(&self, table: usize) -> Option<usize> {
        self.tables.iter().position(|t| t.table == table)
    }

    /// Appends one row (`cells` in column order) with its version, as
    /// RowBinary: floats travel as their bits (ClickHouse 18.16's text
    /// parser rounds some doubles), and every value as the integer or bytes
    /// its column holds. A value its column cannot hold is refused and
    /// nothing of the row is kept.
    pub fn push_row(
        &self,
        spec: &TableSpec,
        p: &mut Pending,
        cells: &[Cell],
        version: u64,
        deleted: bool,
    ) -> Result<(), SyncError> {
        let mark = p.body.len();
        for (col, c) in spec.columns.iter().zip(cells) {
            let written = in_range(self.flags, col, c).and_then(|()| encode(&mut p.body, col, c));
            if let Err(reason) = written {
                p.body.truncate(mark);
                return Err(SyncError::Value {
                    table: spec.source_table.clone(),
                    column: col.name.clone(),
                    reason,
                });
            }
        }
        p.body.extend_from_slice(&version.to_le_bytes());
        p.body.push(u8::from(deleted));
        p.rows += 1;
        Ok(())
    }

    /// The current row of a key in target table `t` (highest version, not
    /// deleted), read with the key sent as external data (a temporary
    /// table in the request, not text in the query), or `None`.
    pub async fn current_row(
        &self,
        spec: &TableSpec,
        t: usize,
        cells: &[Cell],
    ) -> Result<Option<Vec<Cell>>, SyncError> {
        Ok(self
            .current_rows(spec, t, &[cells])
            .await?
            .into_iter()
            .next())
    }

    /// The current rows (highest version, not deleted) of the keys in
    /// `keys` (each a row's cells, only its key columns read), in one
    /// `SELECT … FINAL`: the keys travel as external data (a temporary
    /// table in the request, never text in the query). Rows come in no
    /// particular order; a key without a current row has none.
    pub async fn current_rows(
        &self,
        spec: &TableSpec,
        t: usize,
        keys_of: &[&[Cell]],
    ) -> Result<Vec<Vec<Cell>>, SyncError> {
        if keys_of.is_empty() {
            return Ok(Vec::new());
        }
        let tt = &self.tables[t];
        let keys = spec.key_indexes();
        let mut data = Vec::new();
        let mut structure = Vec::new();
        for (n, &k) in keys.iter().enumerate() {
            structure.push(format!("k{n} {}", key_type(&spec.columns[k], self.flags)));
        }
        for cells in keys_of {
            for (n, &k) in keys.iter().enumerate() {
                if n > 0 {
                    data.push(b'\t');
                }
                super::cell::write_tsv(&mut data, &cells[k], self.flags);
            }
            data.push(b'\n');
        }
        let key_list: Vec<String> = keys
            .iter()
            .map(|&k| crate::sync::quote_ch(&spec.columns[k].name))
            .collect();
        let inner: Vec<String> = (0..keys.len()).map(|n| format!("k{n}")).collect();
        let cols: Vec<String> = spec
            .columns
            .iter()
            .map(|c| crate::sync::quote_ch(&c.name))
            .collect();
        let q = format!(
            "SELECT {} FROM {}.{} FINAL WHERE ({}) IN (SELECT {} FROM strata_keys) AND `_deleted` = 0 FORMAT TabSeparated",
            cols.join(", "),
            crate::sync::quote_ch(&tt.database),
            crate::sync::quote_ch(&tt.name),
            key_list.join(", "),
            inner.join(", ")
        );
        let boundary = format!("strata{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"strata_keys\"; filename=\"strata_keys\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let structure = structure.join(", ");
        let out = super::retry::forever("reading a kept value from ClickHouse", || async {
            let mut req = self
                .http
                .post(self.url.clone())
                .query(&[
                    ("query", q.as_str()),
                    ("strata_keys_structure", structure.as_str()),
                    ("strata_keys_format", "TabSeparated"),
                ])
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body.clone());
            if let Some((u, p)) = &self.user {
                req = req.basic_auth(u, p.as_ref());
            }
            let resp = req.send().await.map_err(|e| self.transport(e, &q))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| self.transport(e, &q))?;
            if !status.is_success() {
                return Err(self.err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                )));
            }
            Ok(bytes)
        })
        .await?;
        let mut rows = Vec::new();
        for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let fields = super::cell::split_tsv(line);
            let mut row = Vec::with_capacity(spec.columns.len());
            for (col, f) in spec.columns.iter().zip(fields) {
                row.push(super::cell::parse_ch(col, f, self.flags).map_err(|reason| {
                    SyncError::Value {
                        table: spec.source_table.clone(),
                        column: col.name.clone(),
                        reason,
                    }
                })?);
            }
            rows.push(row);
        }
        Ok(rows)
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
            "INSERT INTO {}.{} ({}) FORMAT RowBinary",
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

/// Days since 1970 that `Date32` holds: 1900-01-01 to 2299-12-31.
const DATE32_DAYS: std::ops::RangeInclusive<i32> = -25_567..=120_529;
/// Microseconds since 1970 that `DateTime64` holds (same years).
const DATETIME64_MICROS: std::ops::RangeInclusive<i64> =
    -25_567 * 86_400_000_000..=120_530 * 86_400_000_000 - 1;

/// Refuses a date or time that a modern server's `Date32`/`DateTime64`
/// column would clamp without an error (the 18.16 target's `Int32` days
/// and `Int64` microseconds hold every PostgreSQL value).
fn in_range(f: ClickHouseFlags, col: &ColumnSpec, c: &Cell) -> Result<(), String> {
    match (col.ty, c) {
        (_, Cell::Array(items)) => items.iter().try_for_each(|it| in_range(f, col, it)),
        (ColumnType::Date, Cell::Days(d)) if f.date32 && !DATE32_DAYS.contains(d) => Err(format!(
            "{d} days from 1970 is outside what ClickHouse `Date32` holds (1900-01-01 to 2299-12-31)"
        )),
        (ColumnType::Timestamptz, Cell::Micros(us))
            if f.datetime64 && !DATETIME64_MICROS.contains(us) =>
        {
            Err(format!(
                "{us} µs from 1970 is outside what ClickHouse `DateTime64` holds (1900 to 2299)"
            ))
        }
        _ => Ok(()),
    }
}

/// The columns `listed` (`database \t table \t column` lines) gives `t`.
/// The (name, type) of each column of `t` in `listed`.
/// A pipeline table whose ClickHouse copy lacks columns
/// ([`ClickHouse::missing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Index into the pipeline's tables.
    pub table: usize,
    /// The columns the copy lacks (every column when the table is missing).
    pub columns: Vec<String>,
    /// The copy does not exist at all.
    pub whole_table: bool,
}

fn columns_of<'a>(listed: &'a str, t: &ClickHouseTable) -> Vec<(&'a str, &'a str)> {
    listed
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            match (it.next(), it.next(), it.next(), it.next()) {
                (Some(d), Some(n), Some(c), Some(ty)) if d == t.database && n == t.name => {
                    Some((c, ty))
                }
                _ => None,
            }
        })
        .collect()
}

/// Refuses a copy whose existing columns no longer match the schema: a
/// column of another type (the field's type changed: RowBinary values of
/// the new type would be read as the old one, or refused) or a column the
/// schema no longer has (a field dropped or renamed). The way out is a new
/// copy of the table ([`super::recopy::replace`], `strata sync recopy`).
/// Types compare without spaces (`Decimal(18, 2)` is `Decimal(18,2)`); a
/// pipeline description without column types is not checked.
fn check_shape(
    t: &ClickHouseTable,
    spec: &TableSpec,
    have: &[(&str, &str)],
) -> Result<(), SyncError> {
    if t.column_types.len() != spec.columns.len() {
        return Ok(());
    }
    let bare = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    for &(name, ty) in have {
        if matches!(name, "_version" | "_deleted") {
            continue;
        }
        let problem = match spec.columns.iter().position(|c| c.name == name) {
            Some(i) if bare(ty) != bare(&t.column_types[i]) => format!(
                "column `{name}` is {ty} there, but the schema now makes it {} (the field's type changed)",
                t.column_types[i]
            ),
            Some(_) => continue,
            None => format!("column `{name}` is no longer in the schema (the field was dropped or renamed)"),
        };
        return Err(SyncError::SchemaChanged {
            table: spec.source_table.clone(),
            reason: format!(
                "ClickHouse `{}.{}`: {problem}; nothing more is written to it. Copy the table again into a new version: stop `strata sync run`, run `strata sync recopy <schema> --entity {}` (the old table is kept, renamed), and start the run again",
                t.database, t.name, spec.entity
            ),
        });
    }
    Ok(())
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One value in ClickHouse's RowBinary encoding of the column's type
/// (`Nullable` flag byte, `Array` length prefix; 18.16 and modern targets
/// share it: timestamps are Int64 microseconds in both `Int64` and
/// `DateTime64(6)`, dates Int32 days in both `Int32` and `Date32`).
pub fn encode(out: &mut Vec<u8>, col: &ColumnSpec, c: &Cell) -> Result<(), String> {
    if col.array {
        let Cell::Array(items) = c else {
            return Err("expected an array".into());
        };
        leb128(out, items.len() as u64);
        for it in items {
            if matches!(it, Cell::Null) {
                return Err("an array element is NULL; ClickHouse arrays here hold no NULL".into());
            }
            scalar(out, col.ty, it)?;
        }
        return Ok(());
    }
    if col.nullable {
        if matches!(c, Cell::Null) {
            out.push(1);
            return Ok(());
        }
        out.push(0);
    } else if matches!(c, Cell::Null) {
        return Err("NULL in a column that is not nullable".into());
    }
    scalar(out, col.ty, c)
}

fn scalar(out: &mut Vec<u8>, ty: ColumnType, c: &Cell) -> Result<(), String> {
    match (ty, c) {
        (ColumnType::Uuid, Cell::Uuid(u)) => {
            let (hi, lo) = u.as_u64_pair();
            out.extend_from_slice(&hi.to_le_bytes());
            out.extend_from_slice(&lo.to_le_bytes());
        }
        (ColumnType::Text | ColumnType::Json, Cell::Text(s)) => {
            leb128(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        (ColumnType::Bytes, Cell::Bytes(b)) => {
            leb128(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        (ColumnType::Bool, Cell::Bool(b)) => out.push(u8::from(*b)),
        (ColumnType::I16, Cell::Int(i)) => {
            let v = i16::try_from(*i).map_err(|_| format!("{i} is out of Int16"))?;
            out.extend_from_slice(&v.to_le_bytes());
        }
        (ColumnType::I32, Cell::Int(i)) => {
            let v = i32::try_from(*i).map_err(|_| format!("{i} is out of Int32"))?;
            out.extend_from_slice(&v.to_le_bytes());
        }
        (ColumnType::I64, Cell::Int(i)) => out.extend_from_slice(&i.to_le_bytes()),
        (ColumnType::F64, Cell::Float(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (ColumnType::Decimal { precision, scale }, Cell::Decimal(d)) => {
            let mut v = *d;
            if v.scale() > u32::from(scale) {
                return Err(format!("{d} has more than {scale} decimal places"));
            }
            v.rescale(u32::from(scale));
            let m = v.mantissa();
            let limit = 10i128
                .checked_pow(u32::from(precision))
                .unwrap_or(i128::MAX);
            if m.abs() >= limit {
                return Err(format!("{d} does not fit Decimal({precision}, {scale})"));
            }
            match precision {
                0..=9 => out.extend_from_slice(&(m as i32).to_le_bytes()),
                10..=18 => out.extend_from_slice(&(m as i64).to_le_bytes()),
                _ => out.extend_from_slice(&m.to_le_bytes()),
            }
        }
        (ColumnType::Timestamptz, Cell::Micros(us)) => out.extend_from_slice(&us.to_le_bytes()),
        (ColumnType::Date, Cell::Days(d)) => out.extend_from_slice(&d.to_le_bytes()),
        (ty, c) => return Err(format!("a {c:?} is not a {ty:?}")),
    }
    Ok(())
}

/// The ClickHouse type of a key column (keys are never arrays or NULL).
fn key_type(col: &ColumnSpec, f: ClickHouseFlags) -> String {
    match col.ty {
        ColumnType::Uuid => "UUID".into(),
        ColumnType::Text | ColumnType::Json | ColumnType::Bytes => "String".into(),
        ColumnType::Bool if f.bool_type => "Bool".into(),
        ColumnType::Bool => "UInt8".into(),
        ColumnType::I16 => "Int16".into(),
        ColumnType::I32 => "Int32".into(),
        ColumnType::I64 => "Int64".into(),
        ColumnType::F64 => "Float64".into(),
        ColumnType::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
        ColumnType::Timestamptz if f.datetime64 => "DateTime64(6, 'UTC')".into(),
        ColumnType::Timestamptz => "Int64".into(),
        ColumnType::Date if f.date32 => "Date32".into(),
        ColumnType::Date => "Int32".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A newcomer's retry lines printed the whole URL-encoded `INSERT`
    /// (the query travels in the URL): the line says the target, its
    /// address and the reason; rows (values) travel in the body only.
    #[tokio::test]
    async fn an_unreachable_server_is_named_without_the_query_or_values() {
        let flags = ClickHouseFlags {
            datetime64: false,
            date32: false,
            bool_type: false,
            is_deleted: false,
        };
        let ch = ClickHouse::new("analytics", "http://u:pw@127.0.0.1:1", flags, Vec::new())
            .expect("a valid URL");
        let q = "INSERT INTO `db`.`visit` (`id`, `secret_looking`, `_version`, `_deleted`) FORMAT RowBinary";
        let e = ch
            .exec(q, Some(b"VALUE-never-printed".to_vec()))
            .await
            .expect_err("nothing listens on port 1")
            .to_string();
        assert!(e.starts_with("target `analytics`: 127.0.0.1:1: "), "{e}");
        for absent in ["INSERT", "query=", "visit", "VALUE-never-printed", "pw"] {
            assert!(!e.contains(absent), "{absent} in {e}");
        }
        assert!(e.len() < 200, "{} chars: {e}", e.len());
    }

    #[test]
    fn modern_date_columns_refuse_what_they_would_clamp() {
        let col = |ty| ColumnSpec {
            name: "c".into(),
            ty,
            nullable: false,
            array: false,
            key: false,
        };
        let modern = ClickHouseFlags {
            datetime64: true,
            date32: true,
            bool_type: true,
            is_deleted: true,
        };
        let old = ClickHouseFlags {
            datetime64: false,
            date32: false,
            bool_type: false,
            is_deleted: false,
        };
        let date = col(ColumnType::Date);
        assert!(in_range(modern, &date, &Cell::Days(-25_567)).is_ok());
        assert!(in_range(modern, &date, &Cell::Days(-25_568)).is_err());
        assert!(in_range(modern, &date, &Cell::Days(120_530)).is_err());
        assert!(in_range(old, &date, &Cell::Days(3_000_000)).is_ok());
        let ts = col(ColumnType::Timestamptz);
        assert!(in_range(modern, &ts, &Cell::Micros(120_530 * 86_400_000_000 - 1)).is_ok());
        assert!(in_range(modern, &ts, &Cell::Micros(120_530 * 86_400_000_000)).is_err());
        let arr = ColumnSpec {
            array: true,
            ..col(ColumnType::Date)
        };
        assert!(in_range(
            modern,
            &arr,
            &Cell::Array(vec![Cell::Days(0), Cell::Days(200_000)])
        )
        .is_err());
    }
}

/// Whether a ClickHouse exception (`Code: <n>. DB::Exception: …`) is one
/// waiting cannot cure, with a hint when one is known: `Some(hint)` for a
/// permanent refusal, `None` for anything else (network, overload, a
/// server starting: retried). The codes are ClickHouse's
/// `src/Common/ErrorCodes.cpp`.
fn permanent(text: &str) -> Option<Option<String>> {
    let code: u32 = text
        .split("Code: ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let hint = match code {
        // UNKNOWN_TYPE: DateTime64, Date32, LowCardinality… on an old server.
        50 => Some("the server does not know a type of the generated DDL: an old ClickHouse (such as 18.16) needs `server_version: \"18.16\"` on the store in the schema (`strata check` prints which types each store keeps)".to_string()),
        // SYNTAX_ERROR, UNKNOWN_SETTING, NOT_IMPLEMENTED: an older dialect.
        62 | 115 | 48 => Some("the server does not accept the generated statement: check the store's `server_version` against the server's `SELECT version()`".to_string()),
        // NO_SUCH_COLUMN_IN_TABLE, ILLEGAL_COLUMN, UNKNOWN_IDENTIFIER,
        // BAD_ARGUMENTS, THERE_IS_NO_COLUMN: the table differs from the schema.
        16 | 44 | 47 | 36 | 8 => Some("the ClickHouse table differs from what the schema generates: if the schema gained a field, start `strata sync run` with it (it adds the column and copies the table again); if a field changed type or went away, see `strata sync recopy` (docs/sync.md, Schema changes); otherwise compare the table with `strata generate` output".to_string()),
        // AUTHENTICATION_FAILED, ACCESS_DENIED, REQUIRED_PASSWORD.
        516 | 497 | 194 => Some("check the store's user and password, and its grants".to_string()),
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod permanent_tests {
    use super::permanent;

    #[test]
    fn unknown_types_and_syntax_are_permanent_the_rest_is_retried() {
        let old = "Code: 50, e.displayText() = DB::Exception: Unknown data type family: DateTime64 (version 18.16.1)";
        assert!(permanent(old).unwrap().unwrap().contains("server_version"));
        let modern = "Code: 62. DB::Exception: Syntax error: failed at position 1";
        assert!(permanent(modern).is_some());
        // TOO_MANY_SIMULTANEOUS_QUERIES, a timeout, no code at all: retried.
        assert!(permanent("Code: 202. DB::Exception: Too many simultaneous queries").is_none());
        assert!(permanent("Code: 159. DB::Exception: Timeout exceeded").is_none());
        assert!(permanent("connection refused").is_none());
    }
}

/// An error with its causes (`error sending request …: connection
/// refused`): reqwest's own text names only the outermost.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}
