//! Reads the spanned YAML tree into the schema AST. Every shape mistake is
//! collected as a [`Problem`]; unknown keys are errors with a "did you mean".
//! This file reads the top level, stores, enums and sync rules; `entity.rs`
//! reads entities, `reader.rs` holds the typed readers of single values.

use super::ast::*;
use super::entity::entity;
use super::error::{Missing, SyntaxError};
use super::keys::*;
use super::reader::*;
use super::yaml::{Node, NodeKind};
use crate::diagnostics::Problems;

/// Decodes one file's tree. `None` (an empty file) gives an empty schema.
pub fn decode(root: Option<&Node>, probs: &mut Problems) -> SchemaFile {
    let mut out = SchemaFile::default();
    let Some(root) = root else { return out };
    // `---` alone, or `~`: an empty document, like an empty file.
    if root.is_null() {
        return out;
    }
    let Some(mut top) = MapReader::new(root, "the schema file", TOP_KEYS, probs) else {
        return out;
    };
    if let Some(v) = top.get("version") {
        if v.as_str() != Some("1") {
            probs.push(SyntaxError::Version { at: v.span });
        }
    }
    if let Some(n) = top.get("stores") {
        for (k, v) in entries(n, "`stores`", probs) {
            // A real store (it has a `kind`) may be called `database`.
            let has_kind = matches!(&v.kind, NodeKind::Map(e) if e.iter().any(|(k, _)| k.as_str() == Some("kind")));
            if !has_kind && misplaced(k, "a store", STORE_KEYS, probs) {
                out.broken.push(key_name(k).value);
                out.broken_store = true;
                continue;
            }
            match store(k, v, probs) {
                Some(s) => out.stores.push(s),
                None => {
                    out.broken.push(key_name(k).value);
                    out.broken_store = true;
                }
            }
        }
    }
    if let Some(n) = top.get("enums") {
        for (k, v) in entries(n, "`enums`", probs) {
            if misplaced(k, "an enum", ENUM_KEYS, probs) {
                out.broken.push(key_name(k).value);
                continue;
            }
            match enum_decl(k, v, probs) {
                Some(e) => out.enums.push(e),
                None => out.broken.push(key_name(k).value),
            }
        }
    }
    if let Some(n) = top.get("entities") {
        for (k, v) in entries(n, "`entities`", probs) {
            if misplaced(k, "an entity", ENTITY_KEYS, probs) {
                out.broken.push(key_name(k).value);
                continue;
            }
            match entity(k, v, probs) {
                Some(e) => out.entities.push(e),
                None => out.broken.push(key_name(k).value),
            }
        }
    }
    if let Some(n) = top.get("sync") {
        for item in seq(n, "`sync`", probs) {
            if let Some(s) = sync(item, probs) {
                out.sync.push(s);
            }
        }
    }
    out
}

fn store(k: &Node, v: &Node, probs: &mut Problems) -> Option<StoreDecl> {
    let what = format!("store `{}`", k.as_str().unwrap_or_default());
    let mut m = MapReader::new(v, &what, STORE_KEYS, probs)?;
    let kind = match m.get("kind") {
        Some(n) => name(n, "`kind`", probs)?,
        None => {
            m.report_missing("kind", missing(k.span, &what, Missing::StoreKind), probs);
            return None;
        }
    };
    let url = m.get("url").and_then(|n| name(n, "`url`", probs));
    let mut settings = Vec::new();
    for (key, val) in m.entries {
        let key_s = key.as_str().unwrap_or_default();
        if matches!(key_s, "kind" | "url") || !STORE_KEYS.contains(&key_s) {
            continue;
        }
        let setting = match &val.kind {
            NodeKind::Map(inner) => Setting::Map(
                inner
                    .iter()
                    .filter_map(|(ik, iv)| Some((key_name(ik), name(iv, "a setting", probs)?)))
                    .collect(),
            ),
            NodeKind::Seq(items) => Setting::List(
                items
                    .iter()
                    .filter_map(|i| name(i, &format!("an item of `{key_s}`"), probs))
                    .collect(),
            ),
            _ => Setting::Scalar(name(val, &format!("`{key_s}`"), probs)?),
        };
        settings.push((key_name(key), setting));
    }
    Some(StoreDecl {
        name: key_name(k),
        kind,
        url,
        settings,
        span: m.span,
    })
}

/// A declaration named like a top-level section (`entities:` indented under
/// `stores:`) or like a key of what it sits in (`fields:` indented one level
/// too little, beside the entities): an indentation mistake, said as such.
fn misplaced(k: &Node, what: &str, own_keys: &[&str], probs: &mut Problems) -> bool {
    let Some(name) = k.as_str() else {
        return false;
    };
    let top_level = TOP_KEYS.contains(&name);
    if !top_level && !own_keys.contains(&name) {
        return false;
    }
    probs.push(SyntaxError::MisplacedKey {
        at: k.span,
        name: name.to_string(),
        what: what.to_string(),
        top_level,
    });
    true
}

fn enum_decl(k: &Node, v: &Node, probs: &mut Problems) -> Option<EnumDecl> {
    let what = format!("enum `{}`", k.as_str().unwrap_or_default());
    let (values, sql_name, doc_s) = match &v.kind {
        NodeKind::Seq(_) => (names(v, "an enum value", probs), None, None),
        _ => {
            let mut m = MapReader::new(v, &what, ENUM_KEYS, probs)?;
            let values = match m.get("values") {
                Some(n) => names(n, "an enum value", probs),
                // `vales:` was reported: the enum is not also "without values".
                None if m.was_misspelt("values") => return None,
                None => Vec::new(),
            };
            let sql_name = m.get("sql_name").and_then(|n| name(n, "`sql_name`", probs));
            (values, sql_name, doc(m.get("doc"), probs))
        }
    };
    Some(EnumDecl {
        name: key_name(k),
        values,
        sql_name,
        doc: doc_s,
        span: v.span,
    })
}

fn sync(node: &Node, probs: &mut Problems) -> Option<SyncDecl> {
    let mut m = MapReader::new(node, "a sync rule", SYNC_KEYS, probs)?;
    let from = match m.get("from") {
        Some(n) => name(n, "`from`", probs)?,
        None => {
            m.report_missing(
                "from",
                missing(node.span, "a sync rule", Missing::SyncFrom),
                probs,
            );
            return None;
        }
    };
    let to = match m.get("to") {
        Some(n) if matches!(&n.kind, NodeKind::Seq(items) if items.is_empty()) => {
            probs.push(SyntaxError::SyncToNothing { at: n.span });
            return None;
        }
        Some(n) => names(n, "a store", probs),
        None => {
            m.report_missing(
                "to",
                missing(node.span, "a sync rule", Missing::SyncTo),
                probs,
            );
            return None;
        }
    };
    Some(SyncDecl {
        from,
        to,
        span: node.span,
    })
}
