//! `strata sync verify`: compares each target table with its source, by
//! key and content. Both sides are read in buckets of the key's hash (at
//! most about 100,000 source rows in memory at a time), every value normalised to
//! a [`Cell`](super::cell::Cell) (so `1.50` and `1.5`, a timestamp and its
//! microseconds compare equal), each row hashed under its key; then the
//! keys missing, extra or different are listed. Run it when the sync has
//! caught up (writers paused), or a row in flight shows as a difference.
//! ClickHouse tables and Elasticsearch indexes ([`elastic`]) share the
//! source reading ([`source_rows`], with the target's own encoder), the
//! bucketing and the comparison ([`BucketCompare`]).

mod elastic;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures_util::TryStreamExt;
use sqlx::Row;

use super::cell::{self, Cell};
use super::clickhouse::ClickHouse;
use super::error::SyncError;
use super::source::{self, qualified};
use super::spec::{ClickHouseTable, Pipeline, TableSpec};
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
    /// The source row holds a value the target cannot hold (a NaN
    /// decimal, an `infinity` timestamp, …): a dead letter, or the change
    /// a stopped pipeline failed on. It cannot be equal until the row is
    /// corrected at the source.
    Refused,
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
        .map(|&k| cell::key_text(&cells[k]))
        .collect::<Vec<_>>()
        .join("/")
}

/// Rows per bucket a comparison aims at: each bucket's source rows are
/// held in memory (a hash and a key text per row) while its target rows
/// stream past them.
const BUCKET_ROWS: u64 = 100_000;

/// One slice of a table, the same on both sides: rows whose key text's
/// MD5 (first 16 bits) is `index` modulo `of`. `of == 1`: the whole table.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: u32,
    of: u32,
}

/// Whether both servers render the key as the same text (integers, UUIDs,
/// text), so a bucket holds the same keys on both sides.
fn hashable_key(t: &TableSpec) -> bool {
    use super::spec::ColumnType::*;
    t.key_indexes()
        .iter()
        .all(|&k| !t.columns[k].array && matches!(t.columns[k].ty, I16 | I32 | I64 | Uuid | Text))
}

/// The bucket predicate for PostgreSQL.
fn pg_bucket(t: &TableSpec, b: Bucket) -> String {
    if b.of == 1 {
        return "true".into();
    }
    let keys: Vec<String> = (t.key_indexes().iter())
        .map(|&k| format!("{}::text", quote_ident(&t.columns[k].name)))
        .collect();
    format!(
        "(('x' || substr(md5(concat_ws(E'\\x01', {})), 1, 4))::bit(16)::int % {}) = {}",
        keys.join(", "),
        b.of,
        b.index
    )
}

/// The bucket predicate for ClickHouse (the same keys as [`pg_bucket`]).
fn ch_bucket(t: &TableSpec, b: Bucket) -> String {
    if b.of == 1 {
        return "1".into();
    }
    let keys: Vec<String> = (t.key_indexes().iter())
        .map(|&k| format!("toString({})", super::quote_ch(&t.columns[k].name)))
        .collect();
    let text = match keys.as_slice() {
        [one] => one.clone(),
        _ => format!("concat({})", keys.join(", '\\x01', ")),
    };
    format!(
        "(reinterpretAsUInt16(reverse(substring(MD5({text}), 1, 2))) % {}) = {}",
        b.of, b.index
    )
}

/// How a target writes a row, for comparing: the row's key as the
/// target's rows are matched by, and its content hash, `None` when the
/// target's own encoder refuses the row (an array with a NULL element, a
/// date out of range, a NaN in a JSON document), as the applier would.
type Encode<'a> = &'a (dyn Fn(&TableSpec, &[Cell]) -> (String, Option<u64>) + Sync);

/// The ClickHouse encoding of a source row ([`Encode`]).
fn ch_encode(ch: &ClickHouse, t: &TableSpec, cells: &[Cell]) -> (String, Option<u64>) {
    let mut scratch = super::clickhouse::Pending::default();
    let refused = ch.push_row(t, &mut scratch, cells, 0, false).is_err();
    let (k, h) = key_and_hash(t, cells);
    (k, (!refused).then_some(h))
}

/// The source rows of one bucket: key → (content hash, key text); the
/// hash is `None` for a row holding a value the target cannot hold: one
/// that does not parse, or that the target's encoder refuses.
async fn source_rows(
    p: &Pipeline,
    encode: Encode<'_>,
    ti: usize,
    b: Bucket,
) -> Result<HashMap<String, (Option<u64>, String)>, SyncError> {
    let t = &p.tables[ti];
    let mut c = source::connect(&p.source_url).await?;
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("{}::text", quote_ident(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        cols.join(", "),
        qualified(t),
        pg_bucket(t, b)
    );
    let mut out = HashMap::new();
    let mut rows = sqlx::query(&sql).fetch(&mut c);
    while let Some(r) = rows.try_next().await? {
        let texts: Vec<Option<&str>> = (0..t.columns.len())
            .map(|i| r.try_get(i))
            .collect::<Result<_, _>>()?;
        let parsed: Vec<Result<Cell, String>> = (t.columns.iter().zip(&texts))
            .map(|(col, text)| cell::parse_pg(col, *text))
            .collect();
        let key_refused = (t.columns.iter().zip(&parsed)).any(|(c, v)| c.key && v.is_err());
        if key_refused {
            // A key the target cannot hold matches no target key.
            let raw: Vec<&str> = (t.columns.iter().zip(&texts))
                .filter(|(c, _)| c.key)
                .map(|(_, t)| t.unwrap_or("NULL"))
                .collect();
            out.insert(format!("\u{0}{}", raw.join("/")), (None, raw.join("/")));
            continue;
        }
        let refused = parsed.iter().any(Result::is_err);
        let cells: Vec<Cell> = (t.columns.iter().zip(parsed))
            .map(|(col, v)| v.unwrap_or_else(|_| cell::zero(col)))
            .collect();
        let (k, h) = encode(t, &cells);
        out.insert(k, (h.filter(|_| !refused), key_text(t, &cells)));
    }
    Ok(out)
}

/// The comparison of one bucket: the source rows, then each target row
/// as it streams past them ([`BucketCompare::target_row`]), then what is
/// left is missing ([`BucketCompare::finish`]). Shared by every target.
struct BucketCompare<'a> {
    target: &'a str,
    table: &'a str,
    src: HashMap<String, (Option<u64>, String)>,
    seen: std::collections::HashSet<String>,
}

impl<'a> BucketCompare<'a> {
    fn new(target: &'a str, table: &'a str, src: HashMap<String, (Option<u64>, String)>) -> Self {
        BucketCompare {
            target,
            table,
            src,
            seen: Default::default(),
        }
    }

    fn diff(&self, key: String, kind: DiffKind) -> Difference {
        Difference {
            target: self.target.to_string(),
            table: self.table.to_string(),
            key,
            kind,
        }
    }

    /// One target row: its match key `k`, the key as printed, its hash.
    fn target_row(
        &mut self,
        report: &mut VerifyReport,
        count: &mut TableCount,
        k: String,
        key_text: String,
        h: u64,
    ) {
        count.target_rows += 1;
        if !self.seen.insert(k.clone()) {
            // Twice in the target's current view: a duplicate.
            report
                .differences
                .push(self.diff(key_text, DiffKind::Extra));
            return;
        }
        let kind = match self.src.remove(&k) {
            None => DiffKind::Extra,
            Some((None, _)) => DiffKind::Refused,
            Some((Some(sh), _)) if sh != h => DiffKind::Differs,
            Some(_) => return,
        };
        report.differences.push(self.diff(key_text, kind));
    }

    /// The source rows no target row matched, sorted by key.
    fn finish(mut self, report: &mut VerifyReport) {
        let mut missing: Vec<(String, DiffKind)> = (std::mem::take(&mut self.src).into_values())
            .map(|(h, k)| match h {
                Some(_) => (k, DiffKind::Missing),
                None => (k, DiffKind::Refused),
            })
            .collect();
        missing.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, kind) in missing {
            report.differences.push(self.diff(k, kind));
        }
    }
}

/// How many buckets a table of `rows` source rows is read in.
fn buckets_of(t: &TableSpec, rows: i64, bucket_rows: u64) -> u32 {
    match hashable_key(t) {
        true => (rows.max(0) as u64 / bucket_rows + 1).min(65_536) as u32,
        false => 1,
    }
}

/// The source's row count of a table.
async fn source_count(p: &Pipeline, t: &TableSpec) -> Result<i64, SyncError> {
    let mut c = source::connect(&p.source_url).await?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", qualified(t)))
        .fetch_one(&mut c)
        .await?;
    Ok(rows)
}

/// Compares every ClickHouse and Elasticsearch target of the pipeline
/// (or only `only`) with the source, table by table, in buckets of about
/// 100,000 source rows (by a hash of the key both sides compute alike;
/// one bucket for keys of other types), so memory stays bounded by a
/// bucket.
pub async fn verify(p: &Pipeline, only: Option<&str>) -> Result<VerifyReport, SyncError> {
    verify_in_buckets(p, only, BUCKET_ROWS).await
}

/// [`verify`] with buckets of about `bucket_rows` source rows.
pub async fn verify_in_buckets(
    p: &Pipeline,
    only: Option<&str>,
    bucket_rows: u64,
) -> Result<VerifyReport, SyncError> {
    let mut report = VerifyReport::default();
    for target in &p.targets {
        if only.is_some_and(|o| o != target.store()) {
            continue;
        }
        if let Some(ch) = target.clickhouse()? {
            for tt in &ch.tables {
                verify_table(p, &ch, tt, bucket_rows.max(1), &mut report).await?;
            }
        } else if let Some(es) = target.elastic()? {
            for ix in &es.indexes {
                elastic::verify_index(p, &es, ix, bucket_rows.max(1), &mut report).await?;
            }
        } else {
            eprintln!(
                "strata sync verify: target `{}` is a cache; it holds no copy to compare (skipped)",
                target.store()
            );
        }
    }
    Ok(report)
}

/// Compares one target table, bucket by bucket.
async fn verify_table(
    p: &Pipeline,
    ch: &ClickHouse,
    tt: &ClickHouseTable,
    bucket_rows: u64,
    report: &mut VerifyReport,
) -> Result<(), SyncError> {
    let t = &p.tables[tt.table];
    let of = buckets_of(t, source_count(p, t).await?, bucket_rows);
    let mut count = TableCount {
        target: ch.store.clone(),
        table: t.source_table.clone(),
        source_rows: 0,
        target_rows: 0,
    };
    let encode = |t: &TableSpec, cells: &[Cell]| ch_encode(ch, t, cells);
    for index in 0..of {
        let b = Bucket { index, of };
        let src = source_rows(p, &encode, tt.table, b).await?;
        count.source_rows += src.len() as u64;
        compare_bucket(ch, tt, t, b, src, report, &mut count).await?;
    }
    report.tables.push(count);
    Ok(())
}

/// Reads one bucket of the target's current view and compares it with
/// the source rows of the same bucket.
#[allow(clippy::too_many_arguments)]
async fn compare_bucket(
    ch: &ClickHouse,
    tt: &ClickHouseTable,
    t: &TableSpec,
    b: Bucket,
    src: HashMap<String, (Option<u64>, String)>,
    report: &mut VerifyReport,
    count: &mut TableCount,
) -> Result<(), SyncError> {
    let cols: Vec<String> = t.columns.iter().map(|c| super::quote_ch(&c.name)).collect();
    let q = format!(
        "SELECT {} FROM {}.{} WHERE {} FORMAT TabSeparated",
        cols.join(", "),
        super::quote_ch(&tt.database),
        super::quote_ch(&tt.current_view),
        ch_bucket(t, b)
    );
    let body = ch.exec(&q, None).await?;
    let mut cmp = BucketCompare::new(&ch.store, &t.source_table, src);
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let cells = target_cells(ch, tt, t, line)?;
        let (k, h) = key_and_hash(t, &cells);
        cmp.target_row(report, count, k, key_text(t, &cells), h);
    }
    cmp.finish(report);
    Ok(())
}

/// One `TabSeparated` line of the target as cells.
fn target_cells(
    ch: &ClickHouse,
    tt: &ClickHouseTable,
    t: &TableSpec,
    line: &[u8],
) -> Result<Vec<Cell>, SyncError> {
    let fields = cell::split_tsv(line);
    if fields.len() != t.columns.len() {
        return Err(SyncError::Target {
            target: ch.store.clone(),
            message: format!(
                "{} fields in a row of `{}`, expected {}",
                fields.len(),
                tt.current_view,
                t.columns.len()
            ),
        });
    }
    t.columns
        .iter()
        .zip(fields)
        .map(|(col, f)| {
            cell::parse_ch(col, f, ch.flags).map_err(|reason| SyncError::Value {
                table: tt.name.clone(),
                column: col.name.clone(),
                reason,
            })
        })
        .collect()
}
