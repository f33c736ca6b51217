//! `strata sync verify`: compares each target table with its source, by
//! key and content. Both sides are read in full, every value normalised to
//! a [`Cell`](super::cell::Cell) (so `1.50` and `1.5`, a timestamp and its
//! microseconds compare equal), each row hashed under its key; then the
//! keys missing, extra or different are listed. Run it when the sync has
//! caught up (writers paused), or a row in flight shows as a difference.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures_util::TryStreamExt;
use sqlx::Row;

use super::cell::{self, Cell};
use super::clickhouse::ClickHouse;
use super::error::SyncError;
use super::source::{self, qualified};
use super::spec::{Pipeline, TableSpec, TargetSpec};
use super::wire::quote_ident;

/// What differs for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffKind {
    /// At the source, not at the target.
    Missing,
    /// At the target (current view), not at the source: lost delete or a stray row.
    Extra,
    /// At both, with different content.
    Differs,
}

/// One differing key.
#[derive(Debug, Clone)]
pub struct Difference {
    pub target: String,
    pub table: String,
    pub key: String,
    pub kind: DiffKind,
}

/// Counts per table and target.
#[derive(Debug, Clone)]
pub struct TableCount {
    pub target: String,
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub tables: Vec<TableCount>,
    /// Every difference found (the CLI prints the first 50).
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    /// No difference was found.
    pub fn equal(&self) -> bool {
        self.differences.is_empty()
    }
}

fn key_and_hash(t: &TableSpec, cells: &[Cell]) -> (String, u64) {
    let mut key = String::new();
    for k in t.key_indexes() {
        cell::canonical(&cells[k], &mut key);
        key.push('\u{1}');
    }
    let mut all = String::new();
    for (col, c) in t.columns.iter().zip(cells) {
        match (col.ty, c) {
            // JSON compares by value: a copy fed from change events holds
            // serde_json's compact text, the source jsonb's own spacing.
            (super::spec::ColumnType::Json, Cell::Text(s)) => {
                match serde_json::from_str::<serde_json::Value>(s) {
                    Ok(v) => all.push_str(&v.to_string()),
                    Err(_) => cell::canonical(c, &mut all),
                }
            }
            _ => cell::canonical(c, &mut all),
        }
        all.push('\u{1}');
    }
    let mut h = DefaultHasher::new();
    all.hash(&mut h);
    (key, h.finish())
}

fn key_text(t: &TableSpec, cells: &[Cell]) -> String {
    t.key_indexes()
        .iter()
        .map(|&k| match cell::to_json(&cells[k]) {
            serde_json::Value::String(s) => s,
            v => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn source_rows(p: &Pipeline, ti: usize) -> Result<HashMap<String, (u64, String)>, SyncError> {
    let t = &p.tables[ti];
    let mut c = source::connect(&p.source_url).await?;
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{}::text", quote_ident(&c.name)))
        .collect();
    let sql = format!("SELECT {} FROM {}", cols.join(", "), qualified(t));
    let mut out = HashMap::new();
    let mut rows = sqlx::query(&sql).fetch(&mut c);
    while let Some(r) = rows.try_next().await? {
        let mut cells = Vec::with_capacity(t.columns.len());
        for (i, col) in t.columns.iter().enumerate() {
            let text: Option<&str> = r.try_get(i)?;
            cells.push(
                cell::parse_pg(col, text).map_err(|reason| SyncError::Value {
                    table: t.source_table.clone(),
                    column: col.name.clone(),
                    reason,
                })?,
            );
        }
        let (k, h) = key_and_hash(t, &cells);
        out.insert(k, (h, key_text(t, &cells)));
    }
    Ok(out)
}

/// Compares every ClickHouse target of the pipeline (or only `only`) with
/// the source.
pub async fn verify(p: &Pipeline, only: Option<&str>) -> Result<VerifyReport, SyncError> {
    let mut report = VerifyReport::default();
    for target in &p.targets {
        if only.is_some_and(|o| o != target.store()) {
            continue;
        }
        let TargetSpec::ClickHouse {
            store,
            url,
            flags,
            tables,
        } = target
        else {
            eprintln!(
                "strata sync verify: target `{}` is not ClickHouse; its comparison is not implemented yet (skipped)",
                target.store()
            );
            continue;
        };
        let ch = ClickHouse::new(store, url, *flags, tables.clone())?;
        for tt in tables {
            let t = &p.tables[tt.table];
            let mut src = source_rows(p, tt.table).await?;
            let source_count = src.len() as u64;
            let cols: Vec<String> = t.columns.iter().map(|c| super::quote_ch(&c.name)).collect();
            let q = format!(
                "SELECT {} FROM {}.{} FORMAT TabSeparated",
                cols.join(", "),
                super::quote_ch(&tt.database),
                super::quote_ch(&tt.current_view)
            );
            let body = ch.exec(&q, None).await?;
            let mut target_count = 0u64;
            let mut seen_twice = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                target_count += 1;
                let fields = cell::split_tsv(line);
                if fields.len() != t.columns.len() {
                    return Err(SyncError::Target {
                        target: store.clone(),
                        message: format!(
                            "{} fields in a row of `{}`, expected {}",
                            fields.len(),
                            tt.current_view,
                            t.columns.len()
                        ),
                    });
                }
                let mut cells = Vec::with_capacity(fields.len());
                for (col, f) in t.columns.iter().zip(fields) {
                    cells.push(cell::parse_ch(col, f, *flags).map_err(|reason| {
                        SyncError::Value {
                            table: tt.name.clone(),
                            column: col.name.clone(),
                            reason,
                        }
                    })?);
                }
                let (k, h) = key_and_hash(t, &cells);
                if !seen.insert(k.clone()) {
                    seen_twice.push(key_text(t, &cells));
                    continue;
                }
                match src.remove(&k) {
                    None => report.differences.push(Difference {
                        target: store.clone(),
                        table: t.source_table.clone(),
                        key: key_text(t, &cells),
                        kind: DiffKind::Extra,
                    }),
                    Some((sh, _)) if sh != h => report.differences.push(Difference {
                        target: store.clone(),
                        table: t.source_table.clone(),
                        key: key_text(t, &cells),
                        kind: DiffKind::Differs,
                    }),
                    Some(_) => {}
                }
            }
            for k in seen_twice {
                report.differences.push(Difference {
                    target: store.clone(),
                    table: t.source_table.clone(),
                    key: k,
                    kind: DiffKind::Extra,
                });
            }
            let mut missing: Vec<String> = src.into_values().map(|(_, k)| k).collect();
            missing.sort();
            for k in missing {
                report.differences.push(Difference {
                    target: store.clone(),
                    table: t.source_table.clone(),
                    key: k,
                    kind: DiffKind::Missing,
                });
            }
            report.tables.push(TableCount {
                target: store.clone(),
                table: t.source_table.clone(),
                source_rows: source_count,
                target_rows: target_count,
            });
        }
    }
    Ok(report)
}
