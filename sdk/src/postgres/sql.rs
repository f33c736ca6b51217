//! The one statement builder: every SQL statement a repository runs is
//! assembled here from a [`TableDef`], once per table (the derive keeps the
//! result in a `OnceLock`), from quoted identifiers and numbered
//! placeholders. Values are never part of the text: they are bound
//! parameters, `UNNEST` arrays or binary `COPY` rows. The only literals are
//! the schema's own defaults and fixed finder values, quoted here.

use std::fmt::Write;

use super::table::{Column, QueryDef, TableDef};

/// Alias of the target table in statements that need one.
const ALIAS: &str = "\"_s\"";
/// The per-call staging table of the `COPY` paths (a temp table, dropped at
/// the end of the call or with the rollback of a failed one).
pub const STAGE: &str = "\"_strata_stage\"";

/// `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The four statements of one keyset listing: first page or after a
/// cursor, ascending or descending. The limit is the last parameter.
#[derive(Debug, Clone)]
pub struct ListSql {
    pub asc: String,
    pub desc: String,
    pub asc_after: String,
    pub desc_after: String,
}

impl ListSql {
    pub fn pick(&self, desc: bool, after: bool) -> &str {
        match (desc, after) {
            (false, false) => &self.asc,
            (true, false) => &self.desc,
            (false, true) => &self.asc_after,
            (true, true) => &self.desc_after,
        }
    }
}

/// The statements of the `COPY` paths of `insert_many`/`upsert_many`.
#[derive(Debug, Clone)]
pub struct CopySql {
    /// `COPY t (cols) FROM STDIN (FORMAT binary)`, when an insert can go
    /// straight into the table (no default applied to a `None`).
    pub copy_direct: Option<String>,
    pub create_stage: String,
    pub copy_stage: String,
    /// `INSERT INTO t … SELECT … FROM stage ON CONFLICT (key) DO NOTHING`.
    pub insert_from_stage: String,
    /// `(inserted, updated)` of an `ON CONFLICT DO UPDATE` from the stage.
    pub upsert_on_conflict: String,
    /// The set-based upsert from the stage (see [`super::upsert_staged`]),
    /// when there is something to update.
    pub upsert_set_based: Option<String>,
    pub drop_stage: String,
}

/// Every statement of one table. Built by [`Statements::build`].
#[derive(Debug, Clone)]
pub struct Statements {
    /// Qualified, quoted table name.
    pub table: String,
    /// Every column, quoted, in field order.
    pub columns: String,
    pub insert: String,
    pub upsert: String,
    pub find: String,
    pub get_many: String,
    pub update: String,
    pub patch: String,
    /// `SELECT version FROM t WHERE key`, for entities with a version.
    pub version_of: Option<String>,
    pub delete: String,
    pub exists: String,
    pub count: String,
    pub list: ListSql,
    /// One per sort field of [`TableDef::sorts`], in order.
    pub list_by: Vec<ListSql>,
    /// One per query of [`TableDef::queries`], in order.
    pub queries: Vec<String>,
    pub insert_unnest: String,
    pub upsert_unnest: String,
    /// `None` when nothing can be updated (every column is the key).
    pub update_unnest: Option<String>,
    pub delete_unnest: String,
    pub copy: CopySql,
    /// Columns of [`TableDef::new_columns`], [`TableDef::update_columns`]
    /// and the key (indexes), for the `VALUES` statements.
    new: Vec<usize>,
    upd_key_version: Vec<usize>,
    def: &'static TableDef,
}

/// Where an `INSERT … SELECT` reads its rows.
enum Source {
    Unnest,
    Stage,
    Values(usize),
}

struct Builder<'d> {
    def: &'d TableDef,
    table: String,
    new: Vec<usize>,
    upd: Vec<usize>,
    version: Option<usize>,
    updated_at: Option<usize>,
}

impl Builder<'_> {
    fn col(&self, i: usize) -> String {
        quote_ident(self.def.columns[i].name)
    }

    /// `f(col)` of each column, joined with `, `.
    fn list(&self, cols: &[usize], f: impl Fn(String) -> String) -> String {
        let items: Vec<String> = cols.iter().map(|&i| f(self.col(i))).collect();
        items.join(", ")
    }

    fn all(&self) -> Vec<usize> {
        (0..self.def.columns.len()).collect()
    }

    /// The columns a statement returns, `prefix.`-qualified, in column order
    /// (the decoder checks timestamps and dates by position).
    fn select(&self, prefix: &str) -> String {
        self.list(&self.all(), |c| format!("{prefix}{c}"))
    }

    /// `"a" = $first AND "b" = $first+1`.
    fn key_where(&self, first: usize) -> String {
        let parts: Vec<String> = (self.def.key.iter().enumerate())
            .map(|(n, &i)| format!("{} = ${}", self.col(i), first + n))
            .collect();
        parts.join(" AND ")
    }

    fn key_row(&self) -> String {
        format!("({})", self.list(self.def.key, |c| c))
    }

    /// The value an insert writes for a column, given its placeholder.
    fn insert_expr(&self, i: usize, placeholder: &str) -> String {
        let c: &Column = &self.def.columns[i];
        match (c.default, c.optional_in_new()) {
            (Some(d), true) => format!("COALESCE({placeholder}, {d})"),
            _ => placeholder.to_string(),
        }
    }

    /// `SET` items of the maintained columns on every update.
    fn maintained(&self, alias: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(i) = self.updated_at {
            out.push(format!("{} = now()", self.col(i)));
        }
        if let Some(i) = self.version {
            out.push(format!("{c} = {alias}.{c} + 1", c = self.col(i)));
        }
        out
    }

    fn placeholders(width: usize) -> String {
        let p: Vec<String> = (1..=width).map(|n| format!("${n}")).collect();
        p.join(", ")
    }

    /// `UNNEST($1, …) AS u(cols)`, `stage AS u` or `(VALUES (…), …) AS u(cols)`.
    fn source(&self, source: &Source, cols: &[usize]) -> String {
        let names = self.list(cols, |c| c);
        match source {
            Source::Unnest => format!("UNNEST({}) AS u({names})", Self::placeholders(cols.len())),
            Source::Stage => format!("{STAGE} AS u"),
            Source::Values(rows) => format!("{} AS u({names})", values(cols.len(), *rows)),
        }
    }

    fn select_new(&self, source: &Source) -> String {
        let exprs = self.list_exprs(|i| self.insert_expr(i, &format!("u.{}", self.col(i))));
        format!("SELECT {exprs} FROM {}", self.source(source, &self.new))
    }

    fn list_exprs(&self, f: impl Fn(usize) -> String) -> String {
        let items: Vec<String> = self.new.iter().map(|&i| f(i)).collect();
        items.join(", ")
    }

    /// `SET` items of an upsert: every update column from `EXCLUDED`.
    fn upsert_sets(&self) -> Vec<String> {
        let mut sets: Vec<String> = (self.upd.iter())
            .map(|&i| format!("{c} = EXCLUDED.{c}", c = self.col(i)))
            .collect();
        sets.extend(self.maintained(ALIAS));
        sets
    }

    fn insert_select(&self, source: &Source) -> String {
        format!(
            "INSERT INTO {} ({}) {} ON CONFLICT {} DO NOTHING",
            self.table,
            self.list(&self.new, |c| c),
            self.select_new(source),
            self.key_row()
        )
    }

    fn upsert_select(&self, source: &Source) -> String {
        let sets = self.upsert_sets();
        let conflict = match sets.is_empty() {
            true => "DO NOTHING".to_string(),
            false => format!("DO UPDATE SET {}", sets.join(", ")),
        };
        format!(
            "WITH w AS (INSERT INTO {} AS {ALIAS} ({}) {} ON CONFLICT {} {conflict} RETURNING (xmax = 0) AS ins) \
             SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w",
            self.table,
            self.list(&self.new, |c| c),
            self.select_new(source),
            self.key_row()
        )
    }

    fn upd_key_version(&self) -> Vec<usize> {
        let mut cols = self.upd.clone();
        cols.extend(self.def.key);
        cols.extend(self.version);
        cols
    }

    /// `None` when nothing can be set.
    fn update_from(&self, source: &Source) -> Option<String> {
        let mut sets: Vec<String> = (self.upd.iter())
            .map(|&i| format!("{c} = u.{c}", c = self.col(i)))
            .collect();
        sets.extend(self.maintained(ALIAS));
        if sets.is_empty() {
            return None;
        }
        let mut conds: Vec<String> = (self.def.key.iter().chain(&self.version))
            .map(|&i| format!("{ALIAS}.{c} = u.{c}", c = self.col(i)))
            .collect();
        conds.dedup();
        Some(format!(
            "UPDATE {} AS {ALIAS} SET {} FROM {} WHERE {}",
            self.table,
            sets.join(", "),
            self.source(source, &self.upd_key_version()),
            conds.join(" AND ")
        ))
    }
}

/// `(VALUES ($1, …, $width), …)` for `rows` rows.
fn values(width: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 7 + 16);
    sql.push_str("(VALUES ");
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            n += 1;
            let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
    sql.push(')');
    sql
}

impl Statements {
    /// Every statement of `def`. Deterministic: the same text each time,
    /// so each is prepared once per connection.
    pub fn build(def: &'static TableDef) -> Self {
        let table = match def.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(def.table)),
            None => quote_ident(def.table),
        };
        let b = Builder {
            def,
            table,
            new: def.new_columns(),
            upd: def.update_columns(),
            version: def.version(),
            updated_at: def.updated_at(),
        };
        let columns = b.list(&b.all(), |c| c);
        let select = b.select("");
        let (table, kw) = (b.table.clone(), b.key_where(1));
        let (insert, upsert) = single_inserts(&b, &select);
        Statements {
            find: format!("SELECT {select} FROM {table} WHERE {kw}"),
            get_many: get_many(&b, &select),
            update: update(&b, &select),
            patch: patch(&b, &select),
            version_of: b
                .version
                .map(|v| format!("SELECT {} FROM {table} WHERE {kw}", b.col(v))),
            delete: format!("DELETE FROM {table} WHERE {kw}"),
            exists: format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {kw})"),
            count: format!("SELECT count(*) FROM {table}"),
            list: list(&b, &select, None),
            list_by: def
                .sorts
                .iter()
                .map(|&s| list(&b, &select, Some(s)))
                .collect(),
            queries: def.queries.iter().map(|q| query(&b, &select, q)).collect(),
            insert_unnest: b.insert_select(&Source::Unnest),
            upsert_unnest: b.upsert_select(&Source::Unnest),
            update_unnest: b.update_from(&Source::Unnest),
            delete_unnest: format!(
                "DELETE FROM {table} WHERE {} IN (SELECT * FROM {})",
                b.key_row(),
                b.source(&Source::Unnest, def.key)
            ),
            copy: copy_sql(&b),
            new: b.new.clone(),
            upd_key_version: b.upd_key_version(),
            insert,
            upsert,
            table,
            columns,
            def,
        }
    }

    /// `insert_many`'s statement for `rows` rows in multi-row `VALUES`.
    pub fn insert_values(&self, rows: usize) -> String {
        self.builder().insert_select(&Source::Values(rows))
    }

    /// `upsert_many`'s statement for `rows` rows in multi-row `VALUES`.
    pub fn upsert_values(&self, rows: usize) -> String {
        self.builder().upsert_select(&Source::Values(rows))
    }

    /// `update_many`'s statement for `rows` rows in multi-row `VALUES`.
    pub fn update_values(&self, rows: usize) -> Option<String> {
        self.builder().update_from(&Source::Values(rows))
    }

    /// Values per row of `insert_values`/`upsert_values`.
    pub fn new_width(&self) -> usize {
        self.new.len()
    }

    /// Values per row of `update_values`.
    pub fn row_width(&self) -> usize {
        self.upd_key_version.len()
    }

    fn builder(&self) -> Builder<'static> {
        Builder {
            def: self.def,
            table: self.table.clone(),
            new: self.new.clone(),
            upd: self.def.update_columns(),
            version: self.def.version(),
            updated_at: self.def.updated_at(),
        }
    }
}

fn single_inserts(b: &Builder, columns: &str) -> (String, String) {
    let table = &b.table;
    if b.new.is_empty() {
        // With nothing to insert the key is generated: an upsert is an insert.
        let insert = format!("INSERT INTO {table} DEFAULT VALUES RETURNING {columns}");
        return (insert.clone(), insert);
    }
    let exprs: Vec<String> = (b.new.iter().enumerate())
        .map(|(n, &i)| b.insert_expr(i, &format!("${}", n + 1)))
        .collect();
    let (cols, exprs) = (b.list(&b.new, |c| c), exprs.join(", "));
    let mut sets = b.upsert_sets();
    if sets.is_empty() {
        let c = b.col(b.def.key[0]);
        sets.push(format!("{c} = EXCLUDED.{c}"));
    }
    (
        format!("INSERT INTO {table} ({cols}) VALUES ({exprs}) RETURNING {columns}"),
        format!(
            "INSERT INTO {table} AS {ALIAS} ({cols}) VALUES ({exprs}) ON CONFLICT {} DO UPDATE SET {} RETURNING {}",
            b.key_row(),
            sets.join(", "),
            b.select(&format!("{ALIAS}."))
        ),
    )
}

fn get_many(b: &Builder, columns: &str) -> String {
    match b.def.key {
        [one] => format!(
            "SELECT {columns} FROM {} WHERE {} = ANY($1)",
            b.table,
            b.col(*one)
        ),
        key => format!(
            "SELECT {columns} FROM {} WHERE {} IN (SELECT * FROM UNNEST({}))",
            b.table,
            b.key_row(),
            Builder::placeholders(key.len())
        ),
    }
}

/// Update columns `$1…`, then the key, then the version.
fn update(b: &Builder, columns: &str) -> String {
    let mut sets: Vec<String> = (b.upd.iter().enumerate())
        .map(|(n, &i)| format!("{} = ${}", b.col(i), n + 1))
        .collect();
    sets.extend(b.maintained(&b.table));
    let after = b.upd.len() + 1;
    let mut cond = b.key_where(after);
    if let Some(v) = b.version {
        let _ = write!(cond, " AND {} = ${}", b.col(v), after + b.def.key.len());
    }
    returning_update(b, columns, &sets, &cond)
}

/// A flag and a value per update column (and an increment per number
/// column), then the key, then the expected version.
fn patch(b: &Builder, columns: &str) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut sets: Vec<String> = Vec::new();
    for &i in &b.upd {
        let c = b.col(i);
        let set = format!("CASE WHEN ${} THEN ${} ELSE {c} END", next(), next());
        sets.push(match b.def.columns[i].numeric {
            false => format!("{c} = {set}"),
            true => {
                let add = next();
                format!("{c} = CASE WHEN ${add} IS NULL THEN {set} ELSE COALESCE({set}, 0) + ${add} END")
            }
        });
    }
    sets.extend(b.maintained(&b.table));
    let after = n + 1;
    let mut cond = b.key_where(after);
    if let Some(v) = b.version {
        let n = after + b.def.key.len();
        let _ = write!(cond, " AND (${n}::int8 IS NULL OR {} = ${n})", b.col(v));
    }
    returning_update(b, columns, &sets, &cond)
}

fn returning_update(b: &Builder, columns: &str, sets: &[String], cond: &str) -> String {
    match sets.is_empty() {
        true => format!("SELECT {columns} FROM {} WHERE {cond}", b.table),
        false => format!(
            "UPDATE {} SET {} WHERE {cond} RETURNING {columns}",
            b.table,
            sets.join(", ")
        ),
    }
}

/// Keyset pages in key order, or by `sort` then the key.
fn list(b: &Builder, columns: &str, sort: Option<usize>) -> ListSql {
    let mut fields: Vec<usize> = sort.into_iter().collect();
    fields.extend(b.def.key);
    let n = fields.len();
    let row = format!("({})", b.list(&fields, |c| c));
    let order = |dir: &str| b.list(&fields, |c| format!("{c} {dir}"));
    let sql = |cmp: Option<&str>, dir: &str| match cmp {
        None => format!(
            "SELECT {columns} FROM {} ORDER BY {} LIMIT $1",
            b.table,
            order(dir)
        ),
        Some(cmp) => format!(
            "SELECT {columns} FROM {} WHERE {row} {cmp} ({}) ORDER BY {} LIMIT ${}",
            b.table,
            Builder::placeholders(n),
            order(dir),
            n + 1
        ),
    };
    ListSql {
        asc: sql(None, "ASC"),
        desc: sql(None, "DESC"),
        asc_after: sql(Some(">"), "ASC"),
        desc_after: sql(Some("<"), "DESC"),
    }
}

fn query(b: &Builder, columns: &str, q: &QueryDef) -> String {
    let mut conds: Vec<String> = (q.params.iter().enumerate())
        .map(|(n, &i)| format!("{} = ${}", b.col(i), n + 1))
        .collect();
    conds.extend((q.fixed.iter()).map(|&(i, v)| format!("{} = {}", b.col(i), quote_literal(v))));
    let mut sql = format!("SELECT {columns} FROM {}", b.table);
    if !conds.is_empty() {
        let _ = write!(sql, " WHERE {}", conds.join(" AND "));
    }
    if !q.order.is_empty() {
        let order: Vec<String> = (q.order.iter())
            .map(|&(i, desc)| format!("{} {}", b.col(i), if desc { "DESC" } else { "ASC" }))
            .collect();
        let _ = write!(sql, " ORDER BY {}", order.join(", "));
    }
    match (q.limit, q.one) {
        (Some(l), _) => {
            let _ = write!(sql, " LIMIT {l}");
        }
        (None, true) => sql.push_str(" LIMIT 1"),
        (None, false) => {}
    }
    sql
}

fn copy_sql(b: &Builder) -> CopySql {
    let cols = b.list(&b.new, |c| c);
    let direct = !b.new.iter().any(|&i| b.def.columns[i].optional_in_new());
    CopySql {
        copy_direct: direct
            .then(|| format!("COPY {} ({cols}) FROM STDIN (FORMAT binary)", b.table)),
        create_stage: format!(
            "CREATE TEMP TABLE {STAGE} AS SELECT {cols} FROM {} WITH NO DATA",
            b.table
        ),
        copy_stage: format!("COPY {STAGE} ({cols}) FROM STDIN (FORMAT binary)"),
        insert_from_stage: b.insert_select(&Source::Stage),
        upsert_on_conflict: b.upsert_select(&Source::Stage),
        upsert_set_based: set_based_upsert(b),
        drop_stage: format!("DROP TABLE {STAGE}"),
    }
}

/// The set-based upsert of the staging table (`UPDATE … FROM` the keys that
/// exist, plain `INSERT` of the rest), when every key and updated column
/// travels through the staging table and there is something to update.
fn set_based_upsert(b: &Builder) -> Option<String> {
    let staged = |i: &usize| b.new.contains(i);
    let sets = b.upsert_sets();
    if sets.is_empty() || !b.def.key.iter().all(staged) || !b.upd.iter().all(staged) {
        return None;
    }
    let mut assign: Vec<String> = (b.upd.iter())
        .map(|&i| {
            format!(
                "{} = {}",
                b.col(i),
                b.insert_expr(i, &format!("u.{}", b.col(i)))
            )
        })
        .collect();
    assign.extend(b.maintained(ALIAS));
    let same_key = |left: &str| {
        let parts: Vec<String> = (b.def.key.iter())
            .map(|&i| format!("{left}.{c} = u.{c}", c = b.col(i)))
            .collect();
        parts.join(" AND ")
    };
    Some(format!(
        "WITH \"_u\" AS (UPDATE {table} AS {ALIAS} SET {assign} FROM {STAGE} AS u WHERE {join} RETURNING {ret}), \
         \"_i\" AS (INSERT INTO {table} ({cols}) {select} WHERE NOT EXISTS (SELECT 1 FROM \"_u\" WHERE {anti}) RETURNING 1) \
         SELECT (SELECT count(*) FROM \"_i\"), (SELECT count(*) FROM \"_u\")",
        table = b.table,
        assign = assign.join(", "),
        join = same_key(ALIAS),
        ret = b.list(b.def.key, |c| format!("{ALIAS}.{c}")),
        cols = b.list(&b.new, |c| c),
        select = b.select_new(&Source::Stage),
        anti = same_key("\"_u\""),
    ))
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
