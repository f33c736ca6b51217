//! The statement seam's `metrics` keys, built at compile time, one set per
//! (table, operation).
//!
//! `metrics::histogram!(name, &labels)` builds its key on every call: a
//! `Vec` of labels and a hash of name and labels, even when no recorder is
//! installed. The seam runs for every statement, so its keys are instead
//! `const`s ([`metrics::Key::from_static_parts`], whose hash is computed at
//! compile time), and a call only hands a `&'static Key` to whichever
//! recorder is current then: the global one, or a local one in a test
//! (`metrics::with_local_recorder`). Nothing is cached per recorder, so a
//! recorder installed after the first statement still sees every later one.
//!
//! A finder ([`Operation::Query`]) has no `const` keys: its name is picked
//! at run time from the table's list, so its keys are built per call.

use metrics::{Key, Label, Level, Metadata};

use super::Operation;
use crate::metrics::{ACQUIRE_DURATION, STATEMENT_DURATION, STATEMENT_ROWS};
use crate::postgres::Table;

/// What `metrics`' own macros pass as metadata for a metric of this module.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one (table, operation): labels `store`, `entity`,
/// `operation`.
#[derive(Debug)]
pub struct CallKeys {
    duration: Key,
    rows: Key,
}

impl CallKeys {
    /// Records a statement's latency (seconds), and its rows when it
    /// succeeded, on the current recorder.
    pub(crate) fn record(&self, seconds: f64, rows: Option<u64>) {
        metrics::with_recorder(|r| {
            r.register_histogram(&self.duration, &METADATA)
                .record(seconds);
            if let Some(rows) = rows {
                r.register_counter(&self.rows, &METADATA).increment(rows);
            }
        });
    }
}

/// Records the wait (seconds) for a pooled connection of `T`'s store
/// (label `store`).
pub(crate) fn record_acquire<T: Table>(seconds: f64) {
    let key: &'static Key = const {
        let store: &'static [Label] = const { &[Label::from_static_parts("store", T::DEF.store)] };
        &Key::from_static_parts(ACQUIRE_DURATION, store)
    };
    metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(seconds));
}

/// The operations with `const` keys, in [`index`] order.
const FIXED: [Operation; 14] = [
    Operation::Insert,
    Operation::Upsert,
    Operation::Find,
    Operation::GetMany,
    Operation::Update,
    Operation::Patch,
    Operation::Delete,
    Operation::Exists,
    Operation::Count,
    Operation::List,
    Operation::InsertMany,
    Operation::UpsertMany,
    Operation::UpdateMany,
    Operation::DeleteMany,
];

/// `op`'s place in [`FIXED`]; `None` for a finder.
fn index(op: Operation) -> Option<usize> {
    FIXED
        .iter()
        .position(|f| *f == op && !matches!(op, Operation::Query(_)))
}

/// One [`CallKeys`] in a `const` context: the label slices are `const`
/// blocks of their own, so they live as long as the program.
macro_rules! call_keys {
    ($t:ty, $i:expr) => {{
        let labels: &'static [Label] = const {
            &[
                Label::from_static_parts("store", <$t>::DEF.store),
                Label::from_static_parts("entity", <$t>::DEF.entity),
                Label::from_static_parts("operation", FIXED[$i].name()),
            ]
        };
        CallKeys {
            duration: Key::from_static_parts(STATEMENT_DURATION, labels),
            rows: Key::from_static_parts(STATEMENT_ROWS, labels),
        }
    }};
}

/// The keys of `T`'s `op`: a `&'static` into `T`'s own compile-time table;
/// `None` for a finder.
pub(crate) fn of<T: Table>(op: Operation) -> Option<&'static CallKeys> {
    let all: &'static [CallKeys; 14] = const {
        &[
            call_keys!(T, 0),
            call_keys!(T, 1),
            call_keys!(T, 2),
            call_keys!(T, 3),
            call_keys!(T, 4),
            call_keys!(T, 5),
            call_keys!(T, 6),
            call_keys!(T, 7),
            call_keys!(T, 8),
            call_keys!(T, 9),
            call_keys!(T, 10),
            call_keys!(T, 11),
            call_keys!(T, 12),
            call_keys!(T, 13),
        ]
    };
    index(op).map(|i| &all[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_operation_has_its_own_place_and_finders_have_none() {
        for (i, op) in FIXED.iter().enumerate() {
            assert_eq!(index(*op), Some(i), "{op:?}");
            assert!(!matches!(op, Operation::Query(_)));
        }
        assert_eq!(index(Operation::Query("by_symbol")), None);
    }
}
