//! Tables, columns, keys and indexes of a [`Catalog`] diff.
//!
//! Renames (`renamed_from` on a table or column) are applied to a copy of the
//! old catalog first; after that, everything is matched by name, and an index
//! or constraint whose definition is unchanged but whose (derived) name moved
//! is renamed rather than rebuilt.

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{Catalog, Column, Table};
use super::ddl::{add_foreign_key, cols, column_def, create_index, create_table, qualified};
use super::diff::{DiffOptions, Step};
use super::diff_column::{alter_column, is_widening};
use super::diff_rename::apply_renames;
use crate::names::quote_ident;

/// The table steps, grouped by the phase they run in (see `diff::diff`).
#[derive(Default)]
pub struct TablePlan {
    pub renames: Vec<Step>,
    pub drops_before: Vec<Step>,
    pub drop_tables: Vec<Step>,
    pub create_tables: Vec<Step>,
    /// Indexes on (or whose predicate names) a column whose type changes,
    /// dropped before the change.
    pub rebuild_drops: Vec<Step>,
    /// Columns moved to a rebuilt enum type.
    pub rebuild: Vec<Step>,
    pub alters: Vec<Step>,
    /// The indexes of `rebuild_drops`, created again.
    pub rebuild_indexes: Vec<Step>,
    pub adds_after: Vec<Step>,
    pub concurrent: Vec<Step>,
    /// (table, index) of each index `concurrent` builds.
    pub concurrent_indexes: Vec<(String, String)>,
    pub foreign_keys: Vec<Step>,
}

/// PostgreSQL's name for a primary key, `{table}_pkey` cut to 63 bytes. For a
/// table name of 63 bytes that cut gives the table's own name, which the key's
/// index cannot share: such a name is shortened with a hash instead.
pub fn pkey_name(table: &str) -> String {
    if table.len() >= 63 {
        return crate::model::constraint_name(table, &[], "pkey");
    }
    let mut s = format!("{table}_pkey");
    s.truncate(63);
    s
}

/// What every table's diff needs to know.
struct Ctx<'a> {
    cat: &'a Catalog,
    opts: &'a DiffOptions,
    /// Qualified names of the enum types being rebuilt.
    rebuilt: &'a [String],
    /// (table, column) of every column whose type changes, by new names.
    retyped: BTreeSet<(String, String)>,
}

impl Ctx<'_> {
    fn is_rebuilt(&self, sql_type: &str) -> bool {
        let base = sql_type.strip_suffix("[]").unwrap_or(sql_type);
        self.rebuilt.iter().any(|r| r == base)
    }
}

pub fn diff_tables(
    old: &Catalog,
    new: &Catalog,
    opts: &DiffOptions,
    rebuilt: &[String],
) -> TablePlan {
    let mut p = TablePlan::default();
    let (renamed, was) = apply_renames(old, new, &mut p.renames);
    let olds: BTreeMap<&str, &Table> = renamed.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut ctx = Ctx {
        cat: new,
        opts,
        rebuilt,
        retyped: BTreeSet::new(),
    };
    ctx.retyped = retyped_columns(&ctx, &olds, new);
    let mut fk_drops = Vec::new();
    for t in &new.tables {
        match olds.get(t.name.as_str()) {
            Some(o) => {
                let old_name = was.get(&t.name).unwrap_or(&t.name);
                diff_table(&ctx, o, t, old_name, &mut p, &mut fk_drops)
            }
            None => {
                p.create_tables.push(Step::new(create_table(new, t)));
                for i in &t.indexes {
                    p.create_tables
                        .push(Step::new(create_index(new, &t.name, i, false)));
                }
                for fk in &t.foreign_keys {
                    p.foreign_keys
                        .push(Step::new(add_foreign_key(new, &t.name, fk)));
                }
            }
        }
    }
    for o in &renamed {
        if !new.tables.iter().any(|t| t.name == o.name) {
            // Foreign keys between dropped tables go first so the drops succeed in any order.
            for fk in &o.foreign_keys {
                fk_drops.push(Step::new(format!(
                    "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {};",
                    qualified(new, &o.name),
                    quote_ident(&fk.name)
                )));
            }
            p.drop_tables.push(Step::destructive(
                format!("DROP TABLE {};", qualified(new, &o.name)),
                format!("drops table \"{}\" and its rows", o.name),
            ));
        }
    }
    fk_drops.append(&mut p.drops_before);
    p.drops_before = fk_drops;
    p
}

fn diff_table(
    ctx: &Ctx,
    o: &Table,
    t: &Table,
    old_name: &str,
    p: &mut TablePlan,
    fk_drops: &mut Vec<Step>,
) {
    let (cat, opts) = (ctx.cat, ctx.opts);
    let table = qualified(cat, &t.name);
    let alter = |rest: String| Step::new(format!("ALTER TABLE {table} {rest};"));
    let rename_constraint = |from: &str, to: &str| {
        alter(format!(
            "RENAME CONSTRAINT {} TO {}",
            quote_ident(from),
            quote_ident(to)
        ))
    };

    // Primary key: its name follows the table's.
    let old_pk = if o.primary_key.is_empty() {
        None
    } else {
        Some(pkey_name(old_name))
    };
    if o.primary_key != t.primary_key {
        if let Some(n) = &old_pk {
            p.drops_before
                .push(alter(format!("DROP CONSTRAINT {}", quote_ident(n))));
        }
        if !t.primary_key.is_empty() {
            p.adds_after.push(alter(format!(
                "ADD CONSTRAINT {} PRIMARY KEY ({})",
                quote_ident(&pkey_name(&t.name)),
                cols(&t.primary_key)
            )));
        }
    } else if let Some(n) = old_pk.filter(|n| *n != pkey_name(&t.name)) {
        p.renames.push(rename_constraint(&n, &pkey_name(&t.name)));
    }

    // Unique constraints.
    let (keep, drop, add) = match_named(
        &o.uniques,
        &t.uniques,
        |u| &u.name,
        |a, b| a.columns == b.columns,
    );
    for (from, to) in keep {
        p.renames.push(rename_constraint(&from.name, &to.name));
    }
    for u in drop {
        p.drops_before
            .push(alter(format!("DROP CONSTRAINT {}", quote_ident(&u.name))));
    }
    for u in add {
        p.adds_after.push(alter(format!(
            "ADD CONSTRAINT {} UNIQUE ({})",
            quote_ident(&u.name),
            cols(&u.columns)
        )));
    }

    // Indexes.
    let (keep, drop, add) = match_named(
        &o.indexes,
        &t.indexes,
        |i| &i.name,
        |a, b| {
            (&a.columns, a.unique, &a.method, &a.predicate)
                == (&b.columns, b.unique, &b.method, &b.predicate)
        },
    );
    for (from, to) in keep {
        p.renames.push(Step::new(format!(
            "ALTER INDEX {} RENAME TO {};",
            qualified(cat, &from.name),
            quote_ident(&to.name)
        )));
    }
    for i in drop {
        p.drops_before.push(Step::new(format!(
            "DROP INDEX {};",
            qualified(cat, &i.name)
        )));
    }
    for i in add {
        if opts.concurrently {
            let sql = create_index(cat, &t.name, i, true).replacen(
                " CONCURRENTLY ",
                " CONCURRENTLY IF NOT EXISTS ",
                1,
            );
            p.concurrent.push(Step::new(sql));
            p.concurrent_indexes.push((t.name.clone(), i.name.clone()));
        } else {
            p.adds_after
                .push(Step::new(create_index(cat, &t.name, i, false)));
        }
    }

    // Foreign keys.
    let (keep, drop, add) = match_named(
        &o.foreign_keys,
        &t.foreign_keys,
        |f| &f.name,
        |a, b| {
            (&a.columns, &a.ref_table, &a.ref_columns, &a.on_delete)
                == (&b.columns, &b.ref_table, &b.ref_columns, &b.on_delete)
        },
    );
    for (from, to) in keep {
        p.renames.push(rename_constraint(&from.name, &to.name));
    }
    for f in drop {
        fk_drops.push(alter(format!("DROP CONSTRAINT {}", quote_ident(&f.name))));
    }
    for f in add {
        p.foreign_keys
            .push(Step::new(add_foreign_key(cat, &t.name, f)));
    }

    // Columns.
    let mut added: Vec<&str> = Vec::new();
    for c in &t.columns {
        match o.columns.iter().find(|oc| oc.name == c.name) {
            None => {
                let mut s = alter(format!("ADD COLUMN {}", column_def(c)));
                if !c.nullable && c.default.is_none() && !c.identity {
                    s = s.with_note("NOT NULL without a default: fails if the table has rows");
                }
                p.alters.push(s);
                added.push(&c.name);
            }
            Some(oc) if oc.sql_type == c.sql_type && ctx.is_rebuilt(&c.sql_type) => {
                p.rebuild.extend(convert_column(&table, oc, c));
                // After the conversion the column has its new default.
                let now = Column {
                    default: c.default.clone(),
                    ..oc.clone()
                };
                p.alters.extend(alter_column(&table, &now, c));
            }
            Some(oc) => p.alters.extend(alter_column(&table, oc, c)),
        }
    }
    // Before any column drop of this table: a published column still
    // blocks its drop, as without this step.
    p.alters.extend(republish(cat, t, &added));
    rebuild_dependents(ctx, o, t, p, fk_drops);
    for oc in &o.columns {
        if !t.columns.iter().any(|c| c.name == oc.name) {
            p.alters.push(Step::destructive(
                format!("ALTER TABLE {table} DROP COLUMN {};", quote_ident(&oc.name)),
                format!(
                    "drops column \"{}\" of \"{}\" and its data",
                    oc.name, t.name
                ),
            ));
        }
    }
}

/// For columns `added` to table `t` that a change-capture publication
/// copies: one statement per publication that, **if the publication exists
/// and lists the table** (the sync has run), re-lists the table with the
/// columns it listed plus the added ones, keeping its row filter.
///
/// Why here, in the migration's own transaction: a publication with a
/// column list (PostgreSQL 15; Strata's keep secrets out of the WAL
/// stream) does not carry a column added to the table until it is listed.
/// Without this the changes committed between the migration and the
/// sync's restart with the new schema carry no value for the column, and
/// the sync must copy the whole table again. Committed together, every
/// change decoded after the column exists carries it: the running sync
/// sees a Relation message with the new column, stops before applying it
/// (`SyncError::SchemaReload`), and `strata sync run` re-reads the schema
/// and goes on, adding the ClickHouse column in place (docs/sync.md,
/// "Schema changes").
///
/// How: PostgreSQL 15 has no statement for one table's column list
/// (`ALTER PUBLICATION … SET TABLE` replaces every table), so the table is
/// dropped from the publication and added back with its list, in this
/// transaction (no committed state lacks the table). Publications owned
/// by a role the migration's user is not a member of are left alone with a
/// warning (the sync copies the table again at its restart, as before);
/// `FOR ALL TABLES` publications list every column already.
fn republish(cat: &Catalog, t: &Table, added: &[&str]) -> Vec<Step> {
    use crate::names::quote_literal;
    let mut steps = Vec::new();
    for publication in &t.publications {
        let cols: Vec<&str> = (added.iter().copied())
            .filter(|a| publication.columns.iter().any(|c| c == a))
            .collect();
        if cols.is_empty() {
            continue;
        }
        let pubname = quote_literal(&publication.name);
        let rel = quote_literal(&qualified(cat, &t.name));
        let new_cols = format!(
            "ARRAY[{}]::name[]",
            (cols.iter().map(|c| quote_literal(c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let body = format!(
            "\nDECLARE\n    t record;\n    cols text;\nBEGIN\n    \
             SELECT pt.attnames, pt.rowfilter, pg_has_role(p.pubowner, 'USAGE') AS owner INTO t\n    \
             FROM pg_publication_tables pt JOIN pg_publication p ON p.pubname = pt.pubname\n    \
             WHERE pt.pubname = {pubname} AND NOT p.puballtables\n      \
             AND format('%I.%I', pt.schemaname, pt.tablename)::regclass = {rel}::regclass;\n    \
             IF NOT FOUND THEN\n        RETURN;\n    END IF;\n    \
             IF {new_cols} <@ t.attnames THEN\n        RETURN;\n    END IF;\n    \
             IF NOT t.owner THEN\n        \
             RAISE WARNING 'publication % is not owned by this role: not adding % to it (the sync copies the table again when it restarts)', {pubname}, {new_cols};\n        \
             RETURN;\n    END IF;\n    \
             SELECT string_agg(format('%I', c), ', ' ORDER BY n) INTO cols\n    \
             FROM (SELECT c, min(n) AS n FROM unnest(t.attnames || {new_cols}) WITH ORDINALITY AS u(c, n) GROUP BY c) s;\n    \
             EXECUTE format('ALTER PUBLICATION %I DROP TABLE %s', {pubname}, {rel}::regclass);\n    \
             EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s (%s)', {pubname}, {rel}::regclass, cols)\n        \
             || coalesce(' WHERE (' || t.rowfilter || ')', '');\nEND\n"
        );
        steps.push(
            Step::new(format!("DO {};", super::lossy::dollar_quote(&body))).with_note(format!(
                "the sync's publication {} carries the new column(s) from this commit on (if it exists and lists the table)",
                publication.name
            )),
        );
    }
    steps
}

/// Every (table, column) whose SQL type changes, or whose enum type is
/// rebuilt, other than by widening: a widening change (`varchar(20)` to
/// `varchar(40)` or `text`, `integer` to `bigint`, …) keeps every value and
/// every comparison, so PostgreSQL keeps the dependent objects (for a
/// binary-coercible change without even rebuilding them), and so does the
/// migration.
fn retyped_columns(
    ctx: &Ctx,
    olds: &BTreeMap<&str, &Table>,
    new: &Catalog,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for t in &new.tables {
        let Some(o) = olds.get(t.name.as_str()) else {
            continue;
        };
        for c in &t.columns {
            if let Some(oc) = o.columns.iter().find(|oc| oc.name == c.name) {
                let changed = oc.sql_type != c.sql_type && !is_widening(&oc.sql_type, &c.sql_type);
                if changed || ctx.is_rebuilt(&c.sql_type) {
                    out.insert((t.name.clone(), c.name.clone()));
                }
            }
        }
    }
    out
}

/// Indexes and foreign keys that depend on a column whose type changes are
/// dropped before the change and built again after it from the new
/// definition. PostgreSQL would rebuild them itself by re-parsing their old
/// definition against the new type, which fails where that definition no
/// longer means the same: a predicate comparing with a literal of the old
/// type (`(state)::text = 'OPEN'::text` on an enum needs a non-IMMUTABLE
/// cast), a foreign key between columns that no longer compare. Primary keys
/// and unique constraints are plain column lists, which PostgreSQL rebuilds
/// correctly; defaults are handled by [`alter_column`].
fn rebuild_dependents(
    ctx: &Ctx,
    o: &Table,
    t: &Table,
    p: &mut TablePlan,
    fk_drops: &mut Vec<Step>,
) {
    let cat = ctx.cat;
    let retyped =
        |table: &str, col: &str| ctx.retyped.contains(&(table.to_string(), col.to_string()));
    for i in &t.indexes {
        // Only indexes that exist before and after (a changed one is dropped and added anyway).
        if !o.indexes.contains(i) && !o.indexes.iter().any(|oi| same_index(oi, i)) {
            continue;
        }
        let on_column = i.columns.iter().any(|(c, _)| retyped(&t.name, c));
        let in_predicate = t.columns.iter().any(|c| {
            retyped(&t.name, &c.name)
                && i.predicate.as_deref().is_some_and(|p| mentions(p, &c.name))
        });
        if on_column || in_predicate {
            p.rebuild_drops.push(Step::new(format!(
                "DROP INDEX IF EXISTS {};",
                qualified(cat, &i.name)
            )));
            p.rebuild_indexes
                .push(Step::new(create_index(cat, &t.name, i, false)));
        }
    }
    for f in &t.foreign_keys {
        if !o.foreign_keys.iter().any(|of| {
            of.columns == f.columns
                && of.ref_table == f.ref_table
                && of.ref_columns == f.ref_columns
                && of.on_delete == f.on_delete
        }) {
            continue;
        }
        let depends = f.columns.iter().any(|c| retyped(&t.name, c))
            || f.ref_columns.iter().any(|c| retyped(&f.ref_table, c));
        if depends {
            fk_drops.push(Step::new(format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {};",
                qualified(cat, &t.name),
                quote_ident(&f.name)
            )));
            p.foreign_keys
                .push(Step::new(add_foreign_key(cat, &t.name, f)));
        }
    }
}

/// Same definition, whatever the name (a renamed index).
fn same_index(a: &super::catalog::PgIndex, b: &super::catalog::PgIndex) -> bool {
    (&a.columns, a.unique, &a.method, &a.predicate)
        == (&b.columns, b.unique, &b.method, &b.predicate)
}

/// Whether the SQL text `sql` names the column `name`: as an unquoted word
/// (case-insensitive) or a quoted identifier, outside string literals.
pub(crate) fn mentions(sql: &str, name: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            i += 1;
            while i < b.len() && !(b[i] == b'\'' && b.get(i + 1) != Some(&b'\'')) {
                i += if b[i] == b'\'' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && !(b[i] == b'"' && b.get(i + 1) != Some(&b'"')) {
                i += if b[i] == b'"' { 2 } else { 1 };
            }
            if sql[start..i.min(b.len())].replace("\"\"", "\"") == name {
                return true;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            if sql[start..i].to_ascii_lowercase() == name {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

/// Moves a column to the rebuilt enum type of the same name, through text.
fn convert_column(table: &str, o: &Column, c: &Column) -> Vec<Step> {
    let col = quote_ident(&c.name);
    let via = if c.sql_type.ends_with("[]") {
        "text[]"
    } else {
        "text"
    };
    let mut steps = Vec::new();
    if o.default.is_some() {
        steps.push(Step::new(format!(
            "ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT;"
        )));
    }
    steps.push(Step::new(format!(
        "ALTER TABLE {table} ALTER COLUMN {col} TYPE {} USING {col}::{via}::{};",
        c.sql_type, c.sql_type
    )));
    if let Some(d) = &c.default {
        steps.push(Step::new(format!(
            "ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {d};"
        )));
    }
    steps
}

/// Pairs items by name; unmatched new items whose definition equals an
/// unmatched old one's become renames. Returns (renames, drops, adds).
type Matched<'a, T> = (Vec<(&'a T, &'a T)>, Vec<&'a T>, Vec<&'a T>);

fn match_named<'a, T>(
    old: &'a [T],
    new: &'a [T],
    name: impl Fn(&T) -> &String,
    same: impl Fn(&T, &T) -> bool,
) -> Matched<'a, T> {
    let mut renames = Vec::new();
    let mut drops = Vec::new();
    let mut adds = Vec::new();
    let mut old_left: Vec<&T> = Vec::new();
    for o in old {
        match new.iter().find(|n| name(n) == name(o)) {
            Some(n) if same(o, n) => {}
            Some(_) => drops.push(o),
            None => old_left.push(o),
        }
    }
    for n in new {
        match old.iter().find(|o| name(o) == name(n)) {
            Some(o) if same(o, n) => {}
            Some(_) => adds.push(n),
            None => match old_left.iter().position(|o| same(o, n)) {
                Some(k) => renames.push((old_left.remove(k), n)),
                None => adds.push(n),
            },
        }
    }
    drops.extend(old_left);
    (renames, drops, adds)
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn predicates_name_columns_as_words_or_quoted_identifiers() {
        assert!(mentions("state = 'OPEN'", "state"));
        assert!(mentions("\"State\" = 'x'", "State"));
        assert!(mentions("(STATE)::text <> 'x'", "state"));
        assert!(!mentions("status = 'state'", "state"));
        assert!(!mentions("statement_id > 0", "state"));
        assert!(!mentions("\"State\" = 'x'", "state"));
        assert!(mentions("a = 'it''s' AND state IS NULL", "state"));
    }
}
