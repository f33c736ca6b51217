//! Unchanged large (TOASTed) values kept per batch, not per row.
//!
//! An update that leaves a large value unchanged does not carry it. Since
//! the last write, the pending batch may already hold the row (its insert,
//! an earlier update): the value is taken from there, with no write and no
//! read. Otherwise, with a ClickHouse copy of the table, the update is held
//! back unresolved and every such update of the batch is filled at write
//! time from ONE `SELECT … FINAL` per table (per [`READ_KEYS`] keys), read
//! before the batch is written: exactly the rows before the batch's
//! changes, which are the rows these updates left alone (a key with an
//! earlier change in the batch was filled from memory instead). From the
//! first held update on, every later change is held too, so the targets
//! receive the changes in stream order.
//!
//! `STRATA_SYNC_TOAST_PER_ROW=1` turns this off (one write and one read per
//! such update, as before): a switch for comparisons.

use std::collections::{HashMap, HashSet};

use super::apply::{ChangeMeta, Targets};
use super::cell::{self, Cell};
use super::error::SyncError;
use super::spec::{Pipeline, TableSpec};

/// Held updates in one batch at most: the batch is written when reached.
pub(super) const MAX_HELD_UPDATES: usize = 2_000;
/// Keys per ClickHouse read.
pub(super) const READ_KEYS: usize = 500;

/// What the batch knows of a key since the last write.
enum Known {
    /// The newest row pushed for the key; `unknown` columns are still to be
    /// read under `lookup` (the key the copy held the row under before the
    /// batch).
    Row {
        cells: Vec<Cell>,
        unknown: Vec<usize>,
        lookup: Option<Vec<Cell>>,
    },
    /// Deleted (or moved to another key) in the batch.
    Gone,
}

/// A change held back until the batch is written.
pub(super) struct Held {
    pub table: usize,
    pub cells: Vec<Cell>,
    pub version: u64,
    pub deleted: bool,
    pub meta: Option<ChangeMeta>,
    /// Only a cache invalidation (`cells` holds the key).
    pub invalidation: bool,
    /// Columns to fill from the copy's row under `lookup` before pushing.
    pub unknown: Vec<usize>,
    pub lookup: Vec<Cell>,
    /// The key as PostgreSQL printed it (a dead letter's key).
    pub raw_key: Vec<Option<String>>,
}

/// The applier's state for unchanged large values.
pub(super) struct KeptValues {
    /// One write and one read per update (the switch).
    pub per_row: bool,
    /// Per pipeline table: rows are followed (from the first unchanged
    /// large value of the table on, after a write, so nothing pending is
    /// unknown).
    followed: Vec<bool>,
    known: Vec<HashMap<String, Known>>,
    pub held: Vec<Held>,
    held_updates: usize,
    held_bytes: usize,
}

/// A stable text of a row's key (for the maps).
pub(super) fn key_text(t: &TableSpec, cells: &[Cell]) -> String {
    let mut s = String::new();
    for (col, c) in t.columns.iter().zip(cells) {
        if col.key {
            cell::canonical(c, &mut s);
            s.push('\u{1}');
        }
    }
    s
}

fn size_of(cells: &[Cell]) -> usize {
    cells
        .iter()
        .map(|c| match c {
            Cell::Text(s) => s.len() + 16,
            Cell::Bytes(b) => b.len() + 16,
            Cell::Array(a) => size_of(a) + 16,
            _ => 16,
        })
        .sum()
}

impl KeptValues {
    pub fn new(p: &Pipeline) -> KeptValues {
        let per_row = std::env::var("STRATA_SYNC_TOAST_PER_ROW").is_ok_and(|v| v == "1");
        KeptValues {
            per_row,
            followed: vec![false; p.tables.len()],
            known: p.tables.iter().map(|_| HashMap::new()).collect(),
            held: Vec::new(),
            held_updates: 0,
            held_bytes: 0,
        }
    }

    /// Whether rows of `table` are followed (else the batch must be written
    /// first, then [`follow`](Self::follow) called).
    pub fn followed(&self, table: usize) -> bool {
        self.followed[table]
    }

    pub fn follow(&mut self, table: usize) {
        self.followed[table] = true;
    }

    /// Changes held (counted as rows of the batch).
    pub fn rows(&self) -> usize {
        self.held.len()
    }

    pub fn bytes(&self) -> usize {
        self.held_bytes
    }

    /// The batch is full of held updates.
    pub fn full(&self) -> bool {
        self.held_updates >= MAX_HELD_UPDATES
    }

    /// Records a row pushed (or held) for `table`; `deleted` for a
    /// tombstone.
    pub fn pushed(
        &mut self,
        t: &TableSpec,
        table: usize,
        cells: &[Cell],
        deleted: bool,
        unknown: &[usize],
        lookup: Option<&[Cell]>,
    ) {
        if !self.followed[table] {
            return;
        }
        let k = key_text(t, cells);
        let v = if deleted {
            Known::Gone
        } else {
            Known::Row {
                cells: cells.to_vec(),
                unknown: unknown.to_vec(),
                lookup: lookup.map(<[Cell]>::to_vec),
            }
        };
        self.known[table].insert(k, v);
    }

    /// Fills the `unknown` columns of an update from the batch's newest row
    /// under `lookup` (the key before the update). Returns the columns
    /// still unknown and the key to read them under (that row's own
    /// lookup, or `lookup` when the batch holds no change of the key);
    /// `None` when the batch deleted the key (not expected from a
    /// consistent stream: the caller reads as before).
    pub fn fill(
        &self,
        t: &TableSpec,
        table: usize,
        cells: &mut [Cell],
        lookup: &[Cell],
        unknown: &[usize],
    ) -> Option<(Vec<usize>, Vec<Cell>)> {
        match self.known[table].get(&key_text(t, lookup)) {
            None => Some((unknown.to_vec(), lookup.to_vec())),
            Some(Known::Gone) => None,
            Some(Known::Row {
                cells: prev,
                unknown: still,
                lookup: prev_lookup,
            }) => {
                let mut left = Vec::new();
                for &i in unknown {
                    if still.contains(&i) {
                        left.push(i);
                    } else {
                        cells[i] = prev[i].clone();
                    }
                }
                let at = prev_lookup.clone().unwrap_or_else(|| lookup.to_vec());
                Some((left, at))
            }
        }
    }

    /// Holds a change back until the batch is written.
    pub fn hold(&mut self, h: Held) {
        self.held_bytes += size_of(&h.cells) + 64;
        if !h.unknown.is_empty() {
            self.held_updates += 1;
        }
        self.held.push(h);
    }

    /// After a write: nothing is pending.
    pub fn written(&mut self) {
        for m in &mut self.known {
            m.clear();
        }
        self.held.clear();
        self.held_updates = 0;
        self.held_bytes = 0;
    }

    /// Reads the rows the held updates left unchanged: per table, one
    /// `SELECT … FINAL` per [`READ_KEYS`] distinct keys from the first
    /// ClickHouse target that copies it, before anything of the batch is
    /// written. Fills what is found; returns, per held change, whether the
    /// copy had no live row for its key (the caller reads the source row
    /// instead: see [`super::stream::keep_values`] on why that converges).
    pub async fn resolve(
        &mut self,
        p: &Pipeline,
        targets: &Targets,
    ) -> Result<Vec<bool>, SyncError> {
        let mut missing: Vec<bool> = vec![false; self.held.len()];
        if self.held_updates == 0 {
            return Ok(missing);
        }
        // Per table: the distinct lookup keys, in first-seen order.
        let mut wanted: HashMap<usize, (Vec<usize>, HashSet<String>)> = HashMap::new();
        for (n, h) in self.held.iter().enumerate() {
            if h.unknown.is_empty() {
                continue;
            }
            let t = &p.tables[h.table];
            let (list, seen) = wanted.entry(h.table).or_default();
            if seen.insert(key_text(t, &h.lookup)) {
                list.push(n);
            }
        }
        for (table, (list, _)) in wanted {
            let t = &p.tables[table];
            let Some((ch, ti)) = targets.list.iter().find_map(|x| match x {
                super::apply::Target::ClickHouse(c) => c.table_for(table).map(|ti| (c, ti)),
                _ => None,
            }) else {
                return Err(SyncError::Config(format!(
                    "updates of `{}` were held for a ClickHouse read but no ClickHouse target copies the table",
                    t.source_table
                )));
            };
            let mut rows: HashMap<String, Vec<Cell>> = HashMap::new();
            for chunk in list.chunks(READ_KEYS) {
                let keys: Vec<&[Cell]> = chunk.iter().map(|&n| &self.held[n].lookup[..]).collect();
                for row in ch.current_rows(t, ti, &keys).await? {
                    rows.insert(key_text(t, &row), row);
                }
            }
            for (n, h) in self.held.iter_mut().enumerate() {
                if h.table != table || h.unknown.is_empty() {
                    continue;
                }
                let found = match rows.get(&key_text(t, &h.lookup)) {
                    Some(r) => Some(r.clone()),
                    // A key whose text the read does not give back alike:
                    // asked alone.
                    None => ch.current_row(t, ti, &h.lookup).await?,
                };
                match found {
                    Some(row) => {
                        for &i in &h.unknown {
                            h.cells[i] = row[i].clone();
                        }
                        h.unknown.clear();
                    }
                    None => missing[n] = true,
                }
            }
        }
        Ok(missing)
    }
}

/// Whether a ClickHouse target copies pipeline table `table` (the held
/// updates are read from the first one, as [`super::stream::keep_values`] does).
pub(super) fn copied(targets: &Targets, table: usize) -> bool {
    targets.list.iter().any(|x| match x {
        super::apply::Target::ClickHouse(c) => c.table_for(table).is_some(),
        _ => false,
    })
}
