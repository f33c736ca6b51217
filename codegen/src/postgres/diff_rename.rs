//! `renamed_from`: the renames a diff emits, and the old catalog as it looks
//! once they ran, so the rest of the diff matches everything by name.

use std::collections::BTreeMap;

use super::catalog::{Catalog, Table};
use super::ddl::qualified;
use super::diff::Step;
use crate::names::quote_ident;

/// The old tables with every `renamed_from` applied, emitting the renames;
/// and the old name of each table renamed here (new name → old name).
pub fn apply_renames(
    old: &Catalog,
    new: &Catalog,
    steps: &mut Vec<Step>,
) -> (Vec<Table>, BTreeMap<String, String>) {
    let has_old = |n: &str| old.tables.iter().any(|t| t.name == n);
    let has_new = |n: &str| new.tables.iter().any(|t| t.name == n);
    let mut tables: Vec<Table> = old.tables.clone();
    let mut table_map: BTreeMap<String, String> = BTreeMap::new();
    for t in &new.tables {
        let Some(from) = &t.renamed_from else {
            continue;
        };
        if has_old(&t.name) || !has_old(from) || has_new(from) {
            continue; // already renamed, or a stale note
        }
        steps.push(Step::new(format!(
            "ALTER TABLE {} RENAME TO {};",
            qualified(new, from),
            quote_ident(&t.name)
        )));
        table_map.insert(from.clone(), t.name.clone());
    }
    for t in &mut tables {
        if let Some(n) = table_map.get(&t.name) {
            t.name = n.clone();
        }
        for fk in &mut t.foreign_keys {
            if let Some(n) = table_map.get(&fk.ref_table) {
                fk.ref_table = n.clone();
            }
        }
    }
    // Column renames, then every reference to the renamed columns.
    let mut col_maps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for t in &new.tables {
        let Some(o) = tables.iter().find(|o| o.name == t.name) else {
            continue;
        };
        let mut map = BTreeMap::new();
        for c in &t.columns {
            let Some(from) = &c.renamed_from else {
                continue;
            };
            let exists = |tab: &Table, n: &str| tab.columns.iter().any(|c| c.name == n);
            if exists(o, &c.name) || !exists(o, from) || exists(t, from) {
                continue;
            }
            steps.push(Step::new(format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {};",
                qualified(new, &t.name),
                quote_ident(from),
                quote_ident(&c.name)
            )));
            map.insert(from.clone(), c.name.clone());
        }
        if !map.is_empty() {
            col_maps.insert(t.name.clone(), map);
        }
    }
    let rn = |map: Option<&BTreeMap<String, String>>, c: &mut String| {
        if let Some(n) = map.and_then(|m| m.get(c.as_str())) {
            *c = n.clone();
        }
    };
    for t in &mut tables {
        let map = col_maps.get(&t.name);
        t.columns.iter_mut().for_each(|c| rn(map, &mut c.name));
        t.primary_key.iter_mut().for_each(|c| rn(map, c));
        for u in &mut t.uniques {
            u.columns.iter_mut().for_each(|c| rn(map, c));
        }
        for i in &mut t.indexes {
            i.columns.iter_mut().for_each(|(c, _)| rn(map, c));
            if let (Some(pred), Some(m)) = (&mut i.predicate, map) {
                for (from, to) in m {
                    *pred = pred.replace(&quote_ident(from), &quote_ident(to));
                }
            }
        }
        for fk in &mut t.foreign_keys {
            fk.columns.iter_mut().for_each(|c| rn(map, c));
            let target = col_maps.get(&fk.ref_table);
            fk.ref_columns.iter_mut().for_each(|c| rn(target, c));
        }
    }
    let was = table_map.into_iter().map(|(o, n)| (n, o)).collect();
    (tables, was)
}
