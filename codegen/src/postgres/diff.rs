//! The difference between two [`Catalog`]s as ordered SQL steps: what a
//! migration from `old` to `new` must run. Renames come only from
//! `renamed_from`, never from guessing; destructive steps are flagged so the
//! caller can refuse them.

use std::collections::BTreeMap;

use super::catalog::{Catalog, PgEnum};
use super::ddl::{create_enum, qualified};
pub use super::diff_column::is_widening;
use super::diff_table::{self, TablePlan};
use super::lossy::dollar_quote;
use crate::names::{quote_ident, quote_literal};

/// One SQL statement of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub sql: String,
    /// Why the step can lose data, when it can.
    pub destructive: Option<String>,
    /// A remark written above the statement (e.g. "fails if rows exist").
    pub note: Option<String>,
}

impl Step {
    pub fn new(sql: impl Into<String>) -> Self {
        Step {
            sql: sql.into(),
            destructive: None,
            note: None,
        }
    }
    pub fn destructive(sql: impl Into<String>, why: impl Into<String>) -> Self {
        Step {
            destructive: Some(why.into()),
            ..Step::new(sql)
        }
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// The steps of a migration, in three phases that become up to three files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `ALTER TYPE … ADD VALUE`: run outside a transaction, before `main`, so
    /// `main` may use the new values (PostgreSQL forbids using a value added in
    /// the same transaction).
    pub enum_values: Vec<Step>,
    /// Everything else, in one transaction.
    pub main: Vec<Step>,
    /// `CREATE INDEX CONCURRENTLY` on tables that already exist, outside a
    /// transaction, after `main` (only with [`DiffOptions::concurrently`]).
    pub concurrent: Vec<Step>,
    /// The catalog once `enum_values` ran: the old one with the added
    /// values. Each file records the catalog after it, so deleting a file
    /// that failed leaves the catalog of what the earlier ones did.
    pub after_enum_values: Catalog,
    /// The catalog once `main` ran: the new one without the indexes that
    /// `concurrent` builds.
    pub after_main: Catalog,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.enum_values.is_empty() && self.main.is_empty() && self.concurrent.is_empty()
    }
    /// Every step, in run order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.enum_values
            .iter()
            .chain(&self.main)
            .chain(&self.concurrent)
    }
    /// The reasons of every destructive step.
    pub fn destructive(&self) -> Vec<&str> {
        self.steps()
            .filter_map(|s| s.destructive.as_deref())
            .collect()
    }
}

/// How to diff. Built with `with_*` methods.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    pub(crate) concurrently: bool,
}

impl DiffOptions {
    /// Build indexes on existing tables with `CREATE INDEX CONCURRENTLY`, in
    /// their own migration run outside a transaction.
    pub fn with_concurrently(mut self, yes: bool) -> Self {
        self.concurrently = yes;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("the PostgreSQL schema changed from {old:?} to {new:?}; moving tables between schemas is not supported")]
    SchemaChanged {
        old: Option<String>,
        new: Option<String>,
    },
}

/// The plan that takes a database from `old` to `new`.
pub fn diff(old: &Catalog, new: &Catalog, opts: &DiffOptions) -> Result<Plan, DiffError> {
    let mut plan = Plan::default();
    if old.schema != new.schema && !(old.tables.is_empty() && old.enums.is_empty()) {
        return Err(DiffError::SchemaChanged {
            old: old.schema.clone(),
            new: new.schema.clone(),
        });
    }
    if let (Some(s), true) = (&new.schema, old.tables.is_empty() && old.enums.is_empty()) {
        // Not `CREATE SCHEMA IF NOT EXISTS`: PostgreSQL checks the database's
        // CREATE privilege before it checks existence, so a role that owns a
        // schema an administrator created for it could not run it.
        plan.main.push(Step::new(format!(
            "DO $$ BEGIN\n    IF to_regnamespace({}) IS NULL THEN CREATE SCHEMA {}; END IF;\nEND $$;",
            quote_literal(&quote_ident(s)),
            quote_ident(s)
        )));
    }
    let rebuilt = enums_before(old, new, &mut plan);
    let rebuilt_types: Vec<String> = rebuilt.iter().map(|e| qualified(new, &e.name)).collect();
    let TablePlan {
        renames,
        drops_before,
        drop_tables,
        create_tables,
        rebuild_drops,
        rebuild,
        alters,
        rebuild_indexes,
        adds_after,
        concurrent,
        concurrent_indexes,
        foreign_keys,
    } = diff_table::diff_tables(old, new, opts, &rebuilt_types);
    plan.main.extend(renames);
    plan.main.extend(drops_before);
    plan.main.extend(drop_tables);
    plan.main.extend(create_tables);
    // Columns of a rebuilt enum move to the new type before other changes.
    plan.main.extend(rebuild_drops);
    plan.main.extend(rebuild);
    plan.main.extend(alters);
    // An index the rebuild creates again is not created twice.
    let adds_after: Vec<Step> = adds_after
        .into_iter()
        .filter(|s| !rebuild_indexes.contains(s))
        .collect();
    plan.main.extend(rebuild_indexes);
    plan.main.extend(adds_after);
    plan.main.extend(foreign_keys);
    plan.concurrent.extend(concurrent);
    enums_after(old, new, &rebuilt, &mut plan);
    plan.after_enum_values = with_added_values(old, new);
    plan.after_main = without_indexes(new, &concurrent_indexes);
    Ok(plan)
}

/// `old` with the values `new` adds to its enums (the only change the
/// enum-values file makes), owned by `new`'s store.
fn with_added_values(old: &Catalog, new: &Catalog) -> Catalog {
    let mut cat = old.clone();
    cat.store.clone_from(&new.store);
    for e in &mut cat.enums {
        if let Some(n) = new.enums.iter().find(|n| n.name == e.name) {
            if let EnumChange::Added(_) = enum_change(e, n) {
                e.values.clone_from(&n.values);
            }
        }
    }
    cat
}

/// `cat` without the indexes (table, index) built later.
fn without_indexes(cat: &Catalog, later: &[(String, String)]) -> Catalog {
    let mut cat = cat.clone();
    for t in &mut cat.tables {
        t.indexes
            .retain(|i| !later.iter().any(|(tt, ii)| *tt == t.name && *ii == i.name));
    }
    cat
}

/// How an enum's values changed.
enum EnumChange {
    Same,
    /// Only insertions, old values keep their order: `ADD VALUE` each.
    Added(Vec<(String, Placement)>),
    /// Removed or reordered values: PostgreSQL cannot do this in place.
    Rebuild,
}

enum Placement {
    After(String),
    Before(String),
}

fn enum_change(old: &PgEnum, new: &PgEnum) -> EnumChange {
    if old.values == new.values {
        return EnumChange::Same;
    }
    let kept: Vec<&String> = new
        .values
        .iter()
        .filter(|v| old.values.contains(v))
        .collect();
    if kept.len() != old.values.len() || kept.iter().zip(&old.values).any(|(a, b)| *a != b) {
        return EnumChange::Rebuild;
    }
    let mut added = Vec::new();
    for (i, v) in new.values.iter().enumerate() {
        if old.values.contains(v) {
            continue;
        }
        // The previous value in the new order already exists when this one is added.
        let place = match i.checked_sub(1) {
            Some(p) => Placement::After(new.values[p].clone()),
            None => Placement::Before(old.values.first().cloned().unwrap_or_default()),
        };
        added.push((v.clone(), place));
    }
    EnumChange::Added(added)
}

/// New enums, added values, and the first half of rebuilds. Returns the enums being rebuilt.
fn enums_before(old: &Catalog, new: &Catalog, plan: &mut Plan) -> Vec<PgEnum> {
    let olds: BTreeMap<&str, &PgEnum> = old.enums.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut rebuilt = Vec::new();
    for e in &new.enums {
        let Some(o) = olds.get(e.name.as_str()) else {
            plan.main.push(Step::new(create_enum(new, e)));
            continue;
        };
        match enum_change(o, e) {
            EnumChange::Same => {}
            EnumChange::Added(values) => {
                for (v, place) in values {
                    let place = match place {
                        Placement::After(p) => format!("AFTER {}", quote_literal(&p)),
                        Placement::Before(p) => format!("BEFORE {}", quote_literal(&p)),
                    };
                    plan.enum_values.push(Step::new(format!(
                        "ALTER TYPE {} ADD VALUE IF NOT EXISTS {} {place};",
                        qualified(new, &e.name),
                        quote_literal(&v)
                    )));
                }
                plan.enum_values.push(
                    Step::new(enum_order_check(new, e)).with_note(
                        "fails if the database's values differ from the schema's (a value that already existed keeps its place)",
                    ),
                );
            }
            EnumChange::Rebuild => {
                let removed: Vec<&str> = o
                    .values
                    .iter()
                    .filter(|v| !e.values.contains(v))
                    .map(String::as_str)
                    .collect();
                let why = if removed.is_empty() {
                    format!(
                        "reorders the values of enum \"{}\" (rebuilds the type)",
                        e.name
                    )
                } else {
                    format!(
                        "removes value(s) {} of enum \"{}\" (rows holding them make the migration fail)",
                        removed.join(", "),
                        e.name
                    )
                };
                plan.main.push(Step::destructive(
                    format!(
                        "ALTER TYPE {} RENAME TO {};",
                        qualified(new, &e.name),
                        quote_ident(&old_type_name(&e.name))
                    ),
                    why,
                ));
                plan.main.push(Step::new(create_enum(new, e)));
                rebuilt.push(e.clone());
            }
        }
    }
    rebuilt
}

/// After `ADD VALUE IF NOT EXISTS … AFTER …`: the enum's values, in the
/// database's order, must be the schema's. A value the database already had
/// (added by a migration whose file was deleted, or by hand) is skipped
/// where it is, so the order could differ from the schema's without a word.
fn enum_order_check(cat: &Catalog, e: &PgEnum) -> String {
    let ty = qualified(cat, &e.name);
    let values: Vec<String> = e.values.iter().map(|v| quote_literal(v)).collect();
    let declared = format!("({})", e.values.join(","));
    let message_head = quote_literal(&format!("enum {} has the values (", quote_ident(&e.name)));
    let message_tail = quote_literal(&format!(
        ") in the database, but the schema declares {declared}: a value the database already had keeps its place (ADD VALUE IF NOT EXISTS does not move it)"
    ));
    let hint = quote_literal(
        "Declare the values in the database's order (delete this migration and the later ones with their .catalog.json, change the schema, diff again); to reorder them, diff the new order in a later migration (the type is rebuilt, --allow-destructive).",
    );
    let body = format!(
        "\nBEGIN\n    IF enum_range(NULL::{ty})::text[] IS DISTINCT FROM ARRAY[{}]::text[] THEN\n        RAISE EXCEPTION USING\n            ERRCODE = 'object_not_in_prerequisite_state',\n            MESSAGE = {message_head} || array_to_string(enum_range(NULL::{ty}), ',') || {message_tail},\n            HINT = {hint};\n    END IF;\nEND\n",
        values.join(", ")
    );
    format!("DO {};", dollar_quote(&body))
}

fn old_type_name(name: &str) -> String {
    let mut s = format!("{name}__strata_old");
    s.truncate(63);
    s
}

/// Drops enums no longer used, and the old halves of rebuilt ones.
fn enums_after(old: &Catalog, new: &Catalog, rebuilt: &[PgEnum], plan: &mut Plan) {
    for e in rebuilt {
        plan.main.push(Step::new(format!(
            "DROP TYPE {};",
            qualified(new, &old_type_name(&e.name))
        )));
    }
    for e in &old.enums {
        if !new.enums.iter().any(|n| n.name == e.name) {
            plan.main
                .push(Step::new(format!("DROP TYPE {};", qualified(new, &e.name))));
        }
    }
}
