//! What PostgreSQL will refuse at run time although the schema is valid,
//! reported as warnings by `strata check`.
//!
//! A B-tree index entry is at most [`BTREE_MAX_ENTRY`] bytes (a third of an
//! 8 KiB page, less overhead): an index, unique constraint or primary key
//! over unbounded text accepts the schema, then refuses the first row whose
//! value is longer (`index row size … exceeds btree version 4 maximum 2704`).

use super::error::{EntryBound, PostgresError};
use crate::diagnostics::Problem;
use crate::model::{Entity, EntityKind, Field, IndexMethod, Model, ScalarType, StoreKindTag};
use crate::source::Span;

/// Largest B-tree index entry PostgreSQL stores with 8 KiB pages, in bytes.
pub const BTREE_MAX_ENTRY: usize = 2704;

/// Bytes of an index tuple's own header.
const TUPLE_HEADER: usize = 8;

/// Longest `string(N)` whose values always fit one B-tree entry alone: a
/// character takes up to 4 bytes in UTF-8, a long value carries a 4-byte
/// header, and the entry an 8-byte one (measured: `string(675)` of 4-byte
/// characters makes a 2712-byte entry).
pub const MAX_INDEXED_CHARS: usize = (BTREE_MAX_ENTRY - TUPLE_HEADER - 4) / 4;

/// Every warning of the PostgreSQL back end.
pub fn lint(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for e in model.entities_in(StoreKindTag::Postgres) {
        if e.kind != EntityKind::Record {
            continue;
        }
        let key_span = e.key.first().map_or(e.span, |&i| e.fields[i].span);
        let mut lookups: Vec<(&[usize], Span, &'static str)> =
            vec![(&e.key, key_span, "primary key")];
        for u in &e.uniques {
            lookups.push((&u.fields, u.span, "unique constraint"));
        }
        let index_fields: Vec<(Vec<usize>, Span, &'static str)> = (e.indexes.iter())
            .filter(|i| i.method == IndexMethod::BTree)
            .map(|i| {
                let what = if i.unique {
                    "unique index"
                } else {
                    "B-tree index"
                };
                (i.columns.iter().map(|c| c.field).collect(), i.span, what)
            })
            .collect();
        for (fields, span, what) in &index_fields {
            lookups.push((fields, *span, what));
        }
        for (fields, span, what) in lookups {
            if let Some(p) = oversized(e, fields, span, what) {
                out.push(p);
            }
        }
    }
    out
}

/// A warning when the entries of a B-tree over `fields` can outgrow a page.
fn oversized(e: &Entity, fields: &[usize], at: Span, what: &'static str) -> Option<Problem> {
    let sizes: Vec<(&Field, Option<usize>)> = fields
        .iter()
        .map(|&i| (&e.fields[i], max_bytes(&e.fields[i])))
        .collect();
    let unbounded = sizes.iter().find(|(_, b)| b.is_none()).map(|(f, _)| *f);
    // Each column after the first may be padded to an 8-byte boundary.
    let padding = 7 * fields.len().saturating_sub(1);
    let total: usize = TUPLE_HEADER + padding + sizes.iter().filter_map(|(_, b)| *b).sum::<usize>();
    if unbounded.is_none() && total <= BTREE_MAX_ENTRY {
        return None;
    }
    let (field, bound) = match unbounded {
        Some(f) => (f, EntryBound::Unbounded { ty: f.ty.clone() }),
        None => {
            let f = sizes
                .iter()
                .max_by_key(|(_, b)| b.unwrap_or(0))
                .map(|(f, _)| *f)?;
            (f, EntryBound::Total { bytes: total })
        }
    };
    Some(Problem::from(PostgresError::OversizedEntry {
        at,
        what,
        table: e.name.schema.clone(),
        field: field.name.schema.clone(),
        bound,
    }))
}

/// Most bytes a value of the field takes in an index entry; `None` when unbounded.
fn max_bytes(f: &Field) -> Option<usize> {
    if f.ty.is_array() {
        return None;
    }
    Some(match f.ty.scalar() {
        ScalarType::String { max: Some(n) } => 4 + 4 * *n as usize,
        ScalarType::String { max: None }
        | ScalarType::Text
        | ScalarType::Json
        | ScalarType::Bytes
        | ScalarType::Secret => return None,
        ScalarType::Uuid => 16,
        ScalarType::Bool => 1,
        ScalarType::I16 => 2,
        ScalarType::I32 | ScalarType::Date | ScalarType::Enum(_) => 4,
        ScalarType::I64 | ScalarType::F64 | ScalarType::Timestamptz => 8,
        // numeric: a header plus 2 bytes per 4 decimal digits.
        ScalarType::Decimal { precision, .. } => 8 + 2 * (*precision as usize / 4 + 2),
    })
}

/// The name PostgreSQL gives an object it names itself (`makeObjectName` in
/// `src/backend/commands/indexcmds.c`): `name1_name2_label`, where name1 and
/// name2 are cut, the longer one first, so that the whole fits in 63 bytes.
/// An identity column's sequence is `implicit_name(table, Some(column), "seq")`.
pub fn implicit_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let max = crate::names::MAX_SQL_IDENT;
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let avail = max.saturating_sub(overhead);
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    // Names are checked to be ASCII; stay on a character boundary anyway.
    let cut = |s: &str, mut n: usize| {
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_string()
    };
    match name2 {
        Some(n) => format!("{}_{}_{label}", cut(name1, n1), cut(n, n2)),
        None => format!("{}_{label}", cut(name1, n1)),
    }
}

/// Names that clash in a PostgreSQL schema's one namespace of relations
/// (`super::relations`); also run on a model the resolver refused.
pub fn names(model: &Model) -> Vec<Problem> {
    super::relations::clashes(model)
}

/// Every error of the PostgreSQL back end on a checked model: what the
/// schema asks that PostgreSQL cannot build. Today: index methods without an
/// operator class for the indexed types (the migration would fail with
/// `data type … has no default operator class for access method …`).
pub fn check(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for e in &model.entities {
        for i in &e.indexes {
            out.extend(operator_class(e, i));
        }
    }
    out
}

/// gin needs arrays or json; gist has no class for Strata's scalar types
/// without the btree_gist extension; brin none for booleans, enums, json or
/// arrays.
fn operator_class(e: &Entity, i: &crate::model::Index) -> Option<Problem> {
    let fields = || i.columns.iter().map(|c| &e.fields[c.field]);
    let at = i.method_span;
    match i.method {
        IndexMethod::Gin => {
            let ok = fields().all(|f| f.ty.is_array() || f.ty.scalar() == &ScalarType::Json);
            (!ok).then(|| Problem::from(PostgresError::GinNeedsArrays { at }))
        }
        IndexMethod::Gist => fields().next().map(|f| {
            Problem::from(PostgresError::NoGistClass {
                at,
                ty: f.ty.clone(),
            })
        }),
        IndexMethod::Brin => {
            let no_class = |f: &&Field| {
                f.ty.is_array()
                    || matches!(
                        f.ty.scalar(),
                        ScalarType::Bool | ScalarType::Json | ScalarType::Enum(_)
                    )
            };
            fields().find(no_class).map(|f| {
                Problem::from(PostgresError::NoBrinClass {
                    at,
                    field: f.name.schema.clone(),
                    ty: f.ty.clone(),
                })
            })
        }
        IndexMethod::BTree | IndexMethod::Hash => None,
    }
}
