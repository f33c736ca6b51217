//! `CREATE` statements of the ClickHouse tables and their current-rows views.

use crate::model::{Entity, ScalarType, Store, StoreKind};

use super::types::{column_type, columns, Target};

/// The version column: a replay of the same row (same key, same version)
/// collapses into one, a newer version replaces an older one.
pub const VERSION_COLUMN: &str = "_version";
/// 1 marks the key as deleted (a tombstone row with a higher version).
pub const DELETED_COLUMN: &str = "_deleted";
/// Suffix of the view that reads the current, non-deleted rows.
pub const CURRENT_SUFFIX: &str = "_current";
/// Suffix of the per-shard table when the store declares a cluster.
pub const LOCAL_SUFFIX: &str = "_local";

/// Where and for which server the DDL is rendered. Built with `with_*`.
#[derive(Debug, Clone, Default)]
pub struct DdlOptions {
    target: Option<Target>,
    database: Option<String>,
    single_node: bool,
}

impl DdlOptions {
    /// Render for this release instead of the store's `server_version`.
    pub fn with_target(mut self, t: Target) -> Self {
        self.target = Some(t);
        self
    }
    /// Render for one server even when the store declares a cluster (no
    /// `ON CLUSTER`, no Replicated engine, no Distributed table).
    pub fn single_node(mut self) -> Self {
        self.single_node = true;
        self
    }
    /// Use this database instead of the store's (tests use their own).
    pub fn with_database(mut self, db: impl Into<String>) -> Self {
        self.database = Some(db.into());
        self
    }
}

/// Backtick-quotes a ClickHouse identifier (names are checked snake_case
/// already; the escaping keeps even a bad one harmless).
pub fn q(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The database of a ClickHouse store's tables: its `database:`, else the
/// store's name.
pub fn database_of(store: &Store) -> String {
    match &store.kind {
        StoreKind::ClickHouse {
            database: Some(d), ..
        } => d.clone(),
        _ => store.name.clone(),
    }
}

fn cluster_of(store: &Store) -> Option<String> {
    match &store.kind {
        StoreKind::ClickHouse { cluster, .. } => cluster.clone(),
        _ => None,
    }
}

/// The statements that create one entity's table and view in the
/// ClickHouse store `store` (`model[id]`, or `clickhouse::tables`), in order.
pub fn statements(store: &Store, e: &Entity, opts: &DdlOptions) -> Vec<String> {
    let t = opts.target.unwrap_or_else(|| Target::of(store));
    let db = opts.database.clone().unwrap_or_else(|| database_of(store));
    let cluster = cluster_of(store).filter(|_| !opts.single_node);
    let on = cluster
        .as_ref()
        .map(|c| format!(" ON CLUSTER {}", q(c)))
        .unwrap_or_default();
    let table = &e.name.sql;
    let storage = match &cluster {
        Some(_) => format!("{table}{LOCAL_SUFFIX}"),
        None => table.clone(),
    };
    let mut cols: Vec<String> = columns(e)
        .map(|f| format!("    {} {}", q(&f.name.sql), column_type(f, t)))
        .collect();
    cols.push(format!("    {} UInt64", q(VERSION_COLUMN)));
    cols.push(format!("    {} UInt8", q(DELETED_COLUMN)));
    let mut args = vec![q(VERSION_COLUMN)];
    if t.has_is_deleted() {
        args.push(q(DELETED_COLUMN));
    }
    let engine = match &cluster {
        Some(_) => {
            let path = lit(&format!("/clickhouse/tables/{{shard}}/{db}/{storage}"));
            format!(
                "ReplicatedReplacingMergeTree({path}, '{{replica}}', {})",
                args.join(", ")
            )
        }
        None => format!("ReplacingMergeTree({})", args.join(", ")),
    };
    let key: Vec<String> = e.key_fields().map(|f| q(&f.name.sql)).collect();
    let mut create = format!(
        "CREATE TABLE IF NOT EXISTS {}.{}{on}\n(\n{}\n)\nENGINE = {engine}\n",
        q(&db),
        q(&storage),
        cols.join(",\n")
    );
    if let Some(p) = e.partition_by.map(|i| &e.fields[i]) {
        create.push_str(&format!("PARTITION BY {}\n", partition(p, t)));
    }
    create.push_str(&format!("ORDER BY ({})", key.join(", ")));
    let mut out = vec![
        format!("CREATE DATABASE IF NOT EXISTS {}{on}", q(&db)),
        create,
    ];
    if let Some(c) = &cluster {
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {}.{}{on} AS {}.{}\nENGINE = Distributed({}, {}, {}, cityHash64({}))",
            q(&db),
            q(table),
            q(&db),
            q(&storage),
            lit(c),
            lit(&db),
            lit(&storage),
            key.join(", ")
        ));
    }
    let names: Vec<String> = columns(e).map(|f| q(&f.name.sql)).collect();
    out.push(format!(
        "CREATE VIEW IF NOT EXISTS {}.{}{on} AS\nSELECT {}\nFROM {}.{} FINAL\nWHERE {} = 0",
        q(&db),
        q(&format!("{table}{CURRENT_SUFFIX}")),
        names.join(", "),
        q(&db),
        q(table),
        q(DELETED_COLUMN)
    ));
    out
}

/// `toYYYYMM` of the partition field, converted from its stand-in type on
/// old servers.
fn partition(f: &crate::model::Field, t: Target) -> String {
    let c = q(&f.name.sql);
    match f.ty.scalar() {
        ScalarType::Timestamptz if !t.has_datetime64() => {
            format!("toYYYYMM(toDateTime(intDiv({c}, 1000000), 'UTC'))")
        }
        ScalarType::Date if !t.has_date32() => {
            format!("toYYYYMM(toDateTime({c} * 86400, 'UTC'))")
        }
        _ => format!("toYYYYMM({c})"),
    }
}

/// One `.sql` file of the ClickHouse store `store`: the header, the target
/// and what it lacks, the statements.
pub fn file(store: &Store, e: &Entity, opts: &DdlOptions) -> String {
    let t = opts.target.unwrap_or_else(|| Target::of(store));
    let mut s = crate::files::header("--");
    s.push_str(&format!(
        "-- Entity `{}` in ClickHouse store `{}`, for ClickHouse {t}{}.\n",
        e.name.schema,
        store.name,
        if t == super::types::MODERN {
            " and later"
        } else {
            ""
        }
    ));
    for l in t.lacks() {
        s.push_str(&format!("-- ClickHouse {t}: {l}.\n"));
    }
    for st in statements(store, e, opts) {
        s.push('\n');
        s.push_str(&st);
        s.push_str(";\n");
    }
    s
}
