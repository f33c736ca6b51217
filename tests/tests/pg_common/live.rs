//! The catalog of a live database, read from pg_catalog, in the same shape as
//! the schema's [`Catalog`]; and the schema's catalog normalised the way
//! PostgreSQL prints it (types by `format_type`, defaults and predicates by
//! `pg_get_expr`), so the two compare with `assert_eq!`.

use sqlx::PgConnection;
use strata_codegen::postgres::catalog::{
    Catalog, Column, ForeignKey, PgEnum, PgIndex, Table, UniqueConstraint,
};

fn unquote(s: &str) -> String {
    s.replace('"', "")
}

/// Our SQL type text as `format_type` prints it.
pub fn pg_type(ours: &str) -> String {
    if let Some(inner) = ours.strip_suffix("[]") {
        return format!("{}[]", pg_type(inner));
    }
    if let Some(n) = ours.strip_prefix("varchar(") {
        return format!("character varying({n}");
    }
    match ours {
        "timestamptz" => "timestamp with time zone".to_string(),
        // Enums: `format_type` qualifies only types outside the search path.
        t => unquote(t.strip_prefix("\"public\".").unwrap_or(t)),
    }
}

/// Reads the live catalog of namespace `ns` (`public` for `None`).
pub async fn read(conn: &mut PgConnection, schema: Option<&str>) -> Catalog {
    let ns = schema.unwrap_or("public");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.typname::text, e.enumlabel::text FROM pg_type t
         JOIN pg_enum e ON e.enumtypid = t.oid
         JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = $1 ORDER BY t.typname, e.enumsortorder",
    )
    .bind(ns)
    .fetch_all(&mut *conn)
    .await
    .expect("read enums");
    let mut enums: Vec<PgEnum> = Vec::new();
    for (name, value) in rows {
        match enums.last_mut() {
            Some(e) if e.name == name => e.values.push(value),
            _ => enums.push(PgEnum {
                name,
                values: vec![value],
            }),
        }
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'strata_migrations'
         ORDER BY 1",
    )
    .bind(ns)
    .fetch_all(&mut *conn)
    .await
    .expect("read tables");
    let mut tables = Vec::new();
    for name in names {
        let rel = format!("\"{ns}\".\"{name}\"");
        tables.push(read_table(conn, &rel, name).await);
    }
    Catalog {
        schema: schema.map(String::from),
        store: None,
        enums,
        tables,
    }
}

const CONSTRAINT_COLS: &str =
    "array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)";

/// name, kind, columns, referenced table, referenced columns, ON DELETE code.
type ConstraintRow = (
    String,
    String,
    Vec<String>,
    Option<String>,
    Vec<String>,
    String,
);
/// name, unique, method, predicate, columns, descending flags.
type IndexRow = (String, bool, String, Option<String>, Vec<String>, Vec<bool>);

async fn read_table(conn: &mut PgConnection, rel: &str, name: String) -> Table {
    let columns: Vec<(String, String, bool, Option<String>, bool)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
    )
    .bind(rel)
    .fetch_all(&mut *conn)
    .await
    .expect("read columns");
    let constraints: Vec<ConstraintRow> =
        sqlx::query_as(&format!(
            "SELECT c.conname::text, c.contype::text, {CONSTRAINT_COLS},
                (SELECT r.relname::text FROM pg_class r WHERE r.oid = c.confrelid),
                array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o),
                c.confdeltype::text
             FROM pg_constraint c WHERE c.conrelid = $1::regclass ORDER BY c.conname"
        ))
        .bind(rel)
        .fetch_all(&mut *conn)
        .await
        .expect("read constraints");
    let indexes: Vec<IndexRow> =
        sqlx::query_as(
            "SELECT ic.relname::text, i.indisunique, am.amname::text, pg_get_expr(i.indpred, i.indrelid),
                array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k),
                array(SELECT (i.indoption[k - 1] & 1) = 1 FROM generate_series(1, i.indnkeyatts) k)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
             WHERE i.indrelid = $1::regclass AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))
             ORDER BY 1",
        )
        .bind(rel)
        .fetch_all(&mut *conn)
        .await
        .expect("read indexes");
    let on_delete = |c: &str| match c {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    };
    Table {
        name,
        renamed_from: None,
        columns: columns
            .into_iter()
            .map(|(name, ty, nullable, default, identity)| Column {
                name,
                sql_type: ty,
                nullable,
                default,
                identity,
                renamed_from: None,
            })
            .collect(),
        primary_key: constraints
            .iter()
            .find(|c| c.1 == "p")
            .map(|c| c.2.clone())
            .unwrap_or_default(),
        uniques: constraints
            .iter()
            .filter(|c| c.1 == "u")
            .map(|c| UniqueConstraint {
                name: c.0.clone(),
                columns: c.2.clone(),
            })
            .collect(),
        foreign_keys: constraints
            .iter()
            .filter(|c| c.1 == "f")
            .map(|c| ForeignKey {
                name: c.0.clone(),
                columns: c.2.clone(),
                ref_table: c.3.clone().unwrap_or_default(),
                ref_columns: c.4.clone(),
                on_delete: on_delete(&c.5).to_string(),
            })
            .collect(),
        indexes: indexes
            .into_iter()
            .map(|(name, unique, method, predicate, cols, desc)| PgIndex {
                name,
                columns: cols.iter().map(|c| unquote(c)).zip(desc).collect(),
                unique,
                method,
                predicate,
            })
            .collect(),
        // Publications are the sync's, not the schema's DDL.
        publications: Vec::new(),
    }
}

/// The schema's catalog as PostgreSQL would print it. Defaults and index
/// predicates are put through PostgreSQL itself (on temporary tables in
/// `conn`), so the comparison does not depend on our guess of its printer.
pub async fn expected(conn: &mut PgConnection, cat: &Catalog) -> Catalog {
    let mut out = cat.clone();
    // The database does not know the store's name.
    out.store = None;
    out.enums.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &mut out.tables {
        t.renamed_from = None;
        // The sync creates its publications, not the DDL or migrations.
        t.publications.clear();
        let rel = match &cat.schema {
            Some(s) => format!("\"{s}\".\"{}\"", t.name),
            None => format!("\"{}\"", t.name),
        };
        for c in &mut t.columns {
            c.renamed_from = None;
            if let Some(d) = &c.default {
                c.default = Some(normalise_default(conn, &c.sql_type, d).await);
            }
            c.sql_type = pg_type(&c.sql_type);
        }
        for i in &mut t.indexes {
            if let Some(p) = &i.predicate {
                i.predicate = Some(normalise_predicate(conn, &rel, &i.columns[0].0, p).await);
            }
        }
        t.uniques.sort_by(|a, b| a.name.cmp(&b.name));
        t.foreign_keys.sort_by(|a, b| a.name.cmp(&b.name));
        t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out.tables.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

async fn normalise_default(conn: &mut PgConnection, ty: &str, default: &str) -> String {
    sqlx::raw_sql(&format!(
        "CREATE TEMP TABLE strata_norm (c {ty} DEFAULT {default})"
    ))
    .execute(&mut *conn)
    .await
    .expect("temp table with the default");
    let text: String = sqlx::query_scalar(
        "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'strata_norm'::regclass",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("read the default back");
    sqlx::raw_sql("DROP TABLE strata_norm")
        .execute(&mut *conn)
        .await
        .expect("drop temp table");
    text
}

async fn normalise_predicate(conn: &mut PgConnection, rel: &str, col: &str, pred: &str) -> String {
    sqlx::raw_sql(&format!(
        "CREATE TEMP TABLE strata_norm (LIKE {rel});
         CREATE INDEX strata_norm_idx ON strata_norm (\"{col}\") WHERE {pred};"
    ))
    .execute(&mut *conn)
    .await
    .expect("temp index with the predicate");
    let text: String = sqlx::query_scalar(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'strata_norm_idx'::regclass",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("read the predicate back");
    sqlx::raw_sql("DROP TABLE strata_norm")
        .execute(&mut *conn)
        .await
        .expect("drop temp table");
    text
}

/// The catalog with each table's columns in name order: PostgreSQL appends
/// an added column, so after migrations the column order follows history.
pub fn columns_by_name(mut cat: Catalog) -> Catalog {
    for t in &mut cat.tables {
        t.columns.sort_by(|a, b| a.name.cmp(&b.name));
    }
    cat
}
