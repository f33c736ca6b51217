//! Reads entities: fields, keys, constraints, indexes, queries, cache and search.

use super::ast::*;
use super::error::{Missing, SyntaxError};
use super::keys::*;
use super::reader::*;
use super::yaml::{Node, NodeKind};
use crate::diagnostics::Problems;
use crate::source::{Span, Spanned};

pub(super) fn entity(k: &Node, v: &Node, probs: &mut Problems) -> Option<EntityDecl> {
    let before = probs.list.len();
    let mut e = entity_parts(k, v, probs)?;
    e.incomplete = probs.list.len() > before;
    Some(e)
}

/// Keys of an entity written where its `fields:` should be (`id: uuid` right
/// under the entity): what a field looks like, when there is no `fields:`.
fn stray_fields(v: &Node) -> Vec<Span> {
    let NodeKind::Map(entries) = &v.kind else {
        return Vec::new();
    };
    let looks_like_a_type = |t: &str| {
        let base = t.trim_end_matches('?').trim_end_matches("[]");
        let base = base.split('(').next().unwrap_or_default();
        crate::model::BUILTIN_TYPES.contains(&base)
    };
    (entries.iter())
        .filter(|(k, _)| !k.as_str().is_some_and(|k| ENTITY_KEYS.contains(&k)))
        .filter(|(_, v)| match &v.kind {
            NodeKind::Map(e) => e.iter().any(|(k, _)| k.as_str() == Some("type")),
            _ => v.as_str().is_some_and(looks_like_a_type),
        })
        .map(|(k, _)| k.span)
        .collect()
}

pub(super) fn entity_parts(k: &Node, v: &Node, probs: &mut Problems) -> Option<EntityDecl> {
    let what = format!("entity `{}`", k.as_str().unwrap_or_default());
    let stray = stray_fields(v);
    let has_fields =
        matches!(&v.kind, NodeKind::Map(e) if e.iter().any(|(k, _)| k.as_str() == Some("fields")));
    let mut m = if stray.is_empty() {
        MapReader::new(v, &what, ENTITY_KEYS, probs)?
    } else {
        let mut errors = Vec::new();
        let m = MapReader::collect(v, &what, ENTITY_KEYS, &mut errors);
        for e in errors {
            match e {
                SyntaxError::UnknownKey { at, key, what, .. } if stray.contains(&at) => {
                    if has_fields {
                        // Some fields sit one level too far left.
                        probs.push(SyntaxError::FieldOutsideFields { at, key, what });
                    }
                }
                e => probs.push(e),
            }
        }
        if !has_fields {
            // One problem for the missing `fields:`, not an unknown key per field.
            probs.push(SyntaxError::FieldsNotUnderFields {
                at: stray[0],
                what: what.clone(),
            });
        }
        m?
    };
    let mut e = EntityDecl {
        name: key_name(k),
        span: v.span,
        ..Default::default()
    };
    e.doc = doc(m.get("doc"), probs);
    e.store = m.get("store").and_then(|n| name(n, "`store`", probs));
    e.table = m.get("table").and_then(|n| name(n, "`table`", probs));
    e.renamed_from = m
        .get("renamed_from")
        .and_then(|n| name(n, "`renamed_from`", probs));
    if let Some(n) = m.get("key") {
        e.key = names(n, "a key field", probs);
        e.key_span = Some(n.span);
    }
    // A value that is not a boolean (`yes`) is reported, then read as
    // `true`, the likely intent: a query ordered by `created_at` must not
    // add a second, misleading "no field `created_at`".
    e.timestamps = m
        .get("timestamps")
        .map(|n| boolean(n, "`timestamps`", probs).unwrap_or(Spanned::new(true, n.span)));
    e.version = m
        .get("version")
        .and_then(|n| boolean(n, "`version`", probs));
    e.partition_by = m
        .get("partition_by")
        .and_then(|n| name(n, "`partition_by`", probs));
    e.time = m.get("time").and_then(|n| name(n, "`time`", probs));
    e.measurement = m
        .get("measurement")
        .and_then(|n| name(n, "`measurement`", probs));
    if let Some(n) = m.get("tags") {
        e.tags = names(n, "a tag field", probs);
    }
    if let Some(n) = m.get("fields") {
        for (fk, fv) in entries(n, "`fields`", probs) {
            match field(fk, fv, probs) {
                Some(f) => e.fields.push(f),
                None => e.broken_fields.push(key_name(fk).value),
            }
        }
    }
    if let Some(n) = m.get("unique") {
        for item in seq(n, "`unique`", probs) {
            if let NodeKind::Map(_) = item.kind {
                // `{ fields: [a, b] }` is the shape of an index, not of a unique item.
                probs.push(SyntaxError::UniqueIsMapping { at: item.span });
                continue;
            }
            let before = probs.list.len();
            let fields = names(item, "a unique field", probs);
            // A malformed item is reported once, not again as an empty constraint.
            if probs.list.len() == before {
                e.unique.push(Spanned::new(fields, item.span));
            }
        }
    }
    if let Some(n) = m.get("indexes") {
        for item in seq(n, "`indexes`", probs) {
            if let Some(i) = index(item, probs) {
                e.indexes.push(i);
            }
        }
    }
    if let Some(n) = m.get("queries") {
        for (qk, qv) in entries(n, "`queries`", probs) {
            if let Some(q) = query(qk, qv, probs) {
                e.queries.push(q);
            }
        }
    }
    if let Some(n) = m.get("cache") {
        if let Some(mut c) = MapReader::new(n, "`cache`", CACHE_KEYS, probs) {
            let store = c.get("store").and_then(|s| name(s, "`store`", probs));
            let ttl = c.get("ttl").and_then(|t| duration(t, "`ttl`", probs));
            match store {
                Some(store) => {
                    e.cache = Some(CacheDecl {
                        store,
                        ttl,
                        span: n.span,
                    })
                }
                None => c.report_missing(
                    "store",
                    missing(n.span, "`cache`", Missing::CacheStore),
                    probs,
                ),
            }
        }
    }
    if let Some(n) = m.get("events") {
        e.events = events(n, probs);
    }
    if let Some(n) = m.get("search") {
        if let Some(mut c) = MapReader::new(n, "`search`", SEARCH_KEYS, probs) {
            let store = c.get("store").and_then(|s| name(s, "`store`", probs));
            let text = c
                .get("text")
                .map(|t| names(t, "a text field", probs))
                .unwrap_or_default();
            match store {
                Some(store) => {
                    e.search = Some(SearchDecl {
                        store,
                        text,
                        span: n.span,
                    })
                }
                None => c.report_missing(
                    "store",
                    missing(n.span, "`search`", Missing::SearchStore),
                    probs,
                ),
            }
        }
    }
    Some(e)
}

/// `events: cache` (defaults) or `events: { store: cache, partitions: 8, ... }`.
fn events(n: &Node, probs: &mut Problems) -> Option<EventsDecl> {
    if let NodeKind::Scalar(..) = n.kind {
        return Some(EventsDecl {
            store: name(n, "`events`", probs)?,
            partitions: None,
            max_len: None,
            pubsub: None,
            span: n.span,
        });
    }
    let mut c = MapReader::new(n, "`events`", EVENTS_KEYS, probs)?;
    let store = c.get("store").and_then(|s| name(s, "`store`", probs));
    let partitions = c
        .get("partitions")
        .and_then(|v| number(v, "`partitions`", 1..=1024, probs));
    let max_len = c
        .get("max_len")
        .and_then(|v| number(v, "`max_len`", 1000..=u32::MAX, probs));
    let pubsub = c.get("pubsub").and_then(|v| boolean(v, "`pubsub`", probs));
    let Some(store) = store else {
        let p = missing(n.span, "`events`", Missing::EventsStore);
        c.report_missing("store", p, probs);
        return None;
    };
    Some(EventsDecl {
        store,
        partitions,
        max_len,
        pubsub,
        span: n.span,
    })
}

pub(super) fn field(k: &Node, v: &Node, probs: &mut Problems) -> Option<FieldDecl> {
    let mut f = FieldDecl {
        name: key_name(k),
        span: Span::new(k.span.file, k.span.start, v.span.end),
        ..Default::default()
    };
    match &v.kind {
        _ if v.is_null() => {
            let what = format!("field `{}`", f.name.value);
            probs.push(missing(k.span, &what, Missing::FieldType));
            return None;
        }
        NodeKind::Scalar(..) => f.ty = name(v, "a field type", probs)?,
        _ => {
            let what = format!("field `{}`", k.as_str().unwrap_or_default());
            let mut m = MapReader::new(v, &what, FIELD_KEYS, probs)?;
            match m.get("type") {
                Some(t) => f.ty = name(t, "`type`", probs)?,
                None => {
                    let p = missing(k.span, &what, Missing::FieldTypeKey);
                    m.report_missing("type", p, probs);
                    return None;
                }
            }
            f.nullable = m
                .get("nullable")
                .and_then(|n| boolean(n, "`nullable`", probs));
            f.default = m
                .get("default")
                .and_then(|n| literal(n, "`default`", probs));
            f.max = m
                .get("max")
                .and_then(|n| number(n, "`max`", 1..=10_485_760, probs));
            f.unique = m.get("unique").and_then(|n| boolean(n, "`unique`", probs));
            f.references = m
                .get("references")
                .and_then(|n| name(n, "`references`", probs));
            f.on_delete = m
                .get("on_delete")
                .and_then(|n| name(n, "`on_delete`", probs));
            f.renamed_from = m
                .get("renamed_from")
                .and_then(|n| name(n, "`renamed_from`", probs));
            f.doc = doc(m.get("doc"), probs);
        }
    }
    // `type?` is shorthand for `nullable: true`.
    if let Some(stripped) = f.ty.value.strip_suffix('?') {
        let s = f.ty.span;
        f.ty = Spanned::new(stripped.trim_end().to_string(), s);
        if let Some(n) = f.nullable.as_ref().filter(|n| !n.value) {
            probs.push(SyntaxError::NullableConflict { at: n.span });
        }
        f.nullable = Some(Spanned::new(true, s));
    }
    Some(f)
}

/// `"created_at desc"` → (`created_at`, true).
pub(super) fn ordered(n: Name, probs: &mut Problems) -> (Name, bool) {
    // Where the text starts in its span: 0 plain, 1 quoted (`"name desc"`),
    // unknown when the scalar had escapes or folded lines.
    let lead = match n.span.len().checked_sub(n.value.len()) {
        Some(0) => Some(0),
        Some(2) => Some(1),
        _ => None,
    };
    let mut parts = n.value.split_whitespace();
    let field = parts.next().unwrap_or_default().to_string();
    let suffix = parts.next();
    let desc = match suffix {
        Some(d) if d.eq_ignore_ascii_case("desc") => true,
        Some(a) if a.eq_ignore_ascii_case("asc") => false,
        None => false,
        // `name descending`, `name dsc`: the field is fine, the order word is not.
        Some(word) => {
            let at = n.value.find(word).filter(|_| lead.is_some());
            let span = match (at, lead) {
                (Some(i), Some(l)) => {
                    let start = n.span.start + l + i;
                    Span::new(n.span.file, start, start + word.len())
                }
                _ => n.span,
            };
            probs.push(SyntaxError::BadOrder {
                at: span,
                word: word.to_string(),
                field: field.clone(),
            });
            false
        }
    };
    if let Some(extra) = parts.next().filter(|_| {
        suffix.is_some_and(|s| s.eq_ignore_ascii_case("desc") || s.eq_ignore_ascii_case("asc"))
    }) {
        probs.push(SyntaxError::ExtraAfterOrder {
            at: n.span,
            extra: extra.to_string(),
            field: field.clone(),
        });
    }
    let span = match lead {
        Some(l) => {
            let start = n.span.start + l + n.value.len() - n.value.trim_start().len();
            Span::new(n.span.file, start, start + field.len())
        }
        None => n.span,
    };
    (Spanned::new(field, span), desc)
}

pub(super) fn index(node: &Node, probs: &mut Problems) -> Option<IndexDecl> {
    let mut i = IndexDecl {
        columns: Vec::new(),
        unique: false,
        name: None,
        method: None,
        filter: None,
        span: node.span,
    };
    match &node.kind {
        NodeKind::Seq(_) | NodeKind::Scalar(..) => {
            i.columns = names(node, "an index field", probs)
                .into_iter()
                .map(|n| ordered(n, probs))
                .collect();
        }
        NodeKind::Map(_) => {
            let mut m = MapReader::new(node, "an index", INDEX_KEYS, probs)?;
            match m.get("fields") {
                Some(f) => {
                    i.columns = names(f, "an index field", probs)
                        .into_iter()
                        .map(|n| ordered(n, probs))
                        .collect()
                }
                None => {
                    let p = missing(node.span, "an index", Missing::IndexFields);
                    m.report_missing("fields", p, probs);
                    return None;
                }
            }
            i.unique = m
                .get("unique")
                .and_then(|n| boolean(n, "`unique`", probs))
                .is_some_and(|b| b.value);
            i.name = m.get("name").and_then(|n| name(n, "`name`", probs));
            i.method = m.get("method").and_then(|n| name(n, "`method`", probs));
            i.filter = m.get("where").and_then(|n| filter(n, probs));
        }
    }
    Some(i)
}

pub(super) fn filter(node: &Node, probs: &mut Problems) -> Option<Filter> {
    match &node.kind {
        NodeKind::Map(entries) => Some(Filter::Equals(
            entries
                .iter()
                .filter_map(|(k, v)| {
                    if v.is_null() {
                        // `{ deleted_at: ~ }`: in a query `~` is a parameter, so
                        // here it is not read as IS NULL; say how to write that.
                        let field = key_name(k).value;
                        probs.push(SyntaxError::NullInFilter { at: v.span, field });
                        return None;
                    }
                    Some((key_name(k), literal(v, "a filter value", probs)?))
                })
                .collect(),
        )),
        NodeKind::Scalar(..) if !node.is_null() => name(node, "`where`", probs).map(Filter::Sql),
        _ => {
            probs.push(SyntaxError::BadFilter {
                at: node.span,
                found: node.describe(),
            });
            None
        }
    }
}

pub(super) fn query(k: &Node, v: &Node, probs: &mut Problems) -> Option<QueryDecl> {
    let what = format!("query `{}`", k.as_str().unwrap_or_default());
    let mut m = MapReader::new(v, &what, QUERY_KEYS, probs)?;
    let mut q = QueryDecl {
        name: key_name(k),
        params: Vec::new(),
        fixed: Vec::new(),
        order: Vec::new(),
        limit: None,
        one: false,
        span: v.span,
        incomplete: m.was_misspelt("where") || m.was_misspelt("limit"),
    };
    if let Some(w) = m.get("where") {
        match &w.kind {
            NodeKind::Map(entries) => {
                for (fk, fv) in entries {
                    // `{ status: PENDING }` fixes a value; `{ symbol: ? }`... is not a thing: a bare
                    // list names parameters. A mapping value of `~` (null) makes a parameter too.
                    if fv.is_null() {
                        q.params.push(key_name(fk));
                    } else if let Some(l) = literal(fv, "a query value", probs) {
                        q.fixed.push((key_name(fk), l));
                    }
                }
            }
            _ => q.params = names(w, "a query field", probs),
        }
    }
    if let Some(o) = m.get("order") {
        q.order = names(o, "an order field", probs)
            .into_iter()
            .map(|n| ordered(n, probs))
            .collect();
    }
    q.limit = m
        .get("limit")
        .and_then(|n| number(n, "`limit`", 1..=u32::MAX, probs));
    q.one = m
        .get("one")
        .and_then(|n| boolean(n, "`one`", probs))
        .is_some_and(|b| b.value);
    Some(q)
}
