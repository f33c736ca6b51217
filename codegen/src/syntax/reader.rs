//! Typed readers of YAML values (names, flags, numbers, durations, literals)
//! and of mappings with a known set of keys. Each reports what it expected.

use super::ast::*;
use super::error::{Missing, MovedKey, SyntaxError};
use super::yaml::{Node, NodeKind};
use crate::diagnostics::{did_you_mean, Problems};
use crate::source::{Span, Spanned};

/// A mapping whose keys are checked against a known list.
pub(super) struct MapReader<'a> {
    pub(super) entries: &'a [(Node, Node)],
    pub(super) span: Span,
    /// Known keys that an unknown key was taken for (`feilds` → `fields`).
    misspelt: Vec<&'static str>,
}

impl<'a> MapReader<'a> {
    pub(super) fn new(
        node: &'a Node,
        what: &str,
        known: &[&'static str],
        probs: &mut Problems,
    ) -> Option<Self> {
        let mut errors = Vec::new();
        let m = Self::collect(node, what, known, &mut errors);
        for e in errors {
            probs.push(e);
        }
        m
    }
    /// [`MapReader::new`], keeping the problems typed for the caller to sift.
    pub(super) fn collect(
        node: &'a Node,
        what: &str,
        known: &[&'static str],
        errors: &mut Vec<SyntaxError>,
    ) -> Option<Self> {
        let mut misspelt = Vec::new();
        let NodeKind::Map(entries) = &node.kind else {
            errors.push(SyntaxError::ExpectedMapping {
                at: node.span,
                what: what.to_string(),
                found: node.describe(),
                known: known.to_vec(),
            });
            return None;
        };
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if !known.contains(&key) {
                // `{ type: decimal(20,8) }`: the comma ended the flow entry.
                let args = key.trim_end_matches(')');
                let flow_comma =
                    key.ends_with(')') && args.chars().all(|c| c.is_ascii_digit() || c == ' ');
                // The known lists are short: no need to budget this suggestion.
                let instead = key_alias(key)
                    .filter(|k| known.contains(k))
                    .or_else(|| did_you_mean(key, known.iter().copied()));
                let moved = field_hint(known, key);
                let suggestion = instead.filter(|_| moved.is_none());
                misspelt.extend(suggestion);
                errors.push(SyntaxError::UnknownKey {
                    at: k.span,
                    key: key.to_string(),
                    what: what.to_string(),
                    known: known.to_vec(),
                    moved,
                    suggestion: suggestion.map(str::to_string),
                    flow_comma,
                });
            }
        }
        Some(MapReader {
            entries,
            span: node.span,
            misspelt,
        })
    }
    /// Reports a missing required key, unless a misspelling of it was
    /// reported already (`feilds:` is not also "no `fields`").
    pub(super) fn report_missing(&self, key: &str, p: SyntaxError, probs: &mut Problems) {
        if !self.misspelt.contains(&key) {
            probs.push(p);
        }
    }
    /// Whether an unknown key was reported as a misspelling of `key`.
    pub(super) fn was_misspelt(&self, key: &str) -> bool {
        self.misspelt.contains(&key)
    }
    pub(super) fn get(&mut self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

pub(super) fn entries<'a>(
    node: &'a Node,
    what: &str,
    probs: &mut Problems,
) -> Vec<(&'a Node, &'a Node)> {
    match &node.kind {
        NodeKind::Map(e) => e.iter().map(|(k, v)| (k, v)).collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            probs.push(SyntaxError::ExpectedNamedMapping {
                at: node.span,
                what: what.to_string(),
                found: node.describe(),
            });
            Vec::new()
        }
    }
}

pub(super) fn seq<'a>(node: &'a Node, what: &str, probs: &mut Problems) -> Vec<&'a Node> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            probs.push(SyntaxError::ExpectedList {
                at: node.span,
                what: what.to_string(),
                found: node.describe(),
            });
            Vec::new()
        }
    }
}

/// A scalar or a list of scalars, as a list.
pub(super) fn names(node: &Node, what: &str, probs: &mut Problems) -> Vec<Name> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().filter_map(|n| name(n, what, probs)).collect(),
        _ => name(node, what, probs).into_iter().collect(),
    }
}

pub(super) fn name(node: &Node, what: &str, probs: &mut Problems) -> Option<Name> {
    match &node.kind {
        NodeKind::Scalar(s, _) if !node.is_null() => Some(Spanned::new(s.clone(), node.span)),
        _ => {
            probs.push(SyntaxError::ExpectedName {
                at: node.span,
                what: what.to_string(),
                found: node.describe(),
            });
            None
        }
    }
}

pub(super) fn boolean(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<bool>> {
    match node.kind {
        NodeKind::Scalar(ref s, false) if s == "true" => Some(Spanned::new(true, node.span)),
        NodeKind::Scalar(ref s, false) if s == "false" => Some(Spanned::new(false, node.span)),
        _ => {
            probs.push(SyntaxError::ExpectedBool {
                at: node.span,
                what: what.to_string(),
                found: node.describe_value(),
                quoted: matches!(node.kind, NodeKind::Scalar(_, true)),
            });
            None
        }
    }
}

/// A whole number; `range` is what the key accepts (checked in the
/// resolver), named in the hint when the text does not even fit a `u32`.
pub(super) fn number(
    node: &Node,
    what: &str,
    range: std::ops::RangeInclusive<u32>,
    probs: &mut Problems,
) -> Option<Spanned<u32>> {
    match node.as_str().and_then(|s| s.parse::<u32>().ok()) {
        Some(n) => Some(Spanned::new(n, node.span)),
        None => {
            let text = node.as_str().unwrap_or_default();
            let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
            let (at, what, found) = (node.span, what.to_string(), node.describe_value());
            probs.push(match text.strip_prefix('-') {
                _ if digits(text) => SyntaxError::NumberOutOfRange {
                    at,
                    what,
                    found,
                    min: *range.start(),
                    max: *range.end(),
                },
                Some(rest) if digits(rest) => SyntaxError::NegativeNumber { at, what, found },
                _ => SyntaxError::ExpectedNumber { at, what, found },
            });
            None
        }
    }
}

pub(super) use super::keys::parse_duration;

pub(super) fn duration(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<u64>> {
    match node.as_str().and_then(parse_duration) {
        Some(ms) => Some(Spanned::new(ms, node.span)),
        None if node.as_str().is_some_and(super::keys::duration_overflows) => {
            probs.push(SyntaxError::DurationOutOfRange {
                at: node.span,
                what: what.to_string(),
                found: node.describe_value(),
            });
            None
        }
        None => {
            probs.push(SyntaxError::ExpectedDuration {
                at: node.span,
                what: what.to_string(),
                found: node.describe_value(),
            });
            None
        }
    }
}

pub(super) fn literal(
    node: &Node,
    what: &str,
    probs: &mut Problems,
) -> Option<Spanned<DefaultLit>> {
    match &node.kind {
        NodeKind::Scalar(s, true) => Some(Spanned::new(DefaultLit::Quoted(s.clone()), node.span)),
        NodeKind::Scalar(s, false) if !node.is_null() => {
            Some(Spanned::new(DefaultLit::Plain(s.clone()), node.span))
        }
        _ => {
            probs.push(SyntaxError::ExpectedLiteral {
                at: node.span,
                what: what.to_string(),
                found: node.describe(),
            });
            None
        }
    }
}

pub(super) trait DescribeValue {
    fn describe_value(&self) -> String;
}
impl DescribeValue for Node {
    fn describe_value(&self) -> String {
        match &self.kind {
            NodeKind::Scalar(s, _) if !self.is_null() => format!("`{}`", truncate(s)),
            _ => self.describe().to_string(),
        }
    }
}

pub(super) fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

pub(super) fn key_name(k: &Node) -> Name {
    Spanned::new(k.as_str().unwrap_or_default().to_string(), k.span)
}

/// A `doc:` text, which becomes a Rust doc comment: line ends are made
/// `\n` (a carriage return is not allowed in a doc comment), and characters
/// that cannot stand in one (other control characters, and the Unicode
/// direction controls rustc refuses in comments) are refused at the text.
pub(super) fn doc(node: Option<&Node>, probs: &mut Problems) -> Option<String> {
    let text = node.and_then(|n| name(n, "`doc`", probs))?;
    let doc = text.value.replace("\r\n", "\n").replace('\r', "\n");
    let bad = doc.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    match bad {
        Some(c) => {
            probs.push(SyntaxError::BadDoc {
                at: text.span,
                char: c,
            });
            None
        }
        None => Some(doc),
    }
}

pub(super) fn missing(at: Span, what: &str, missing: Missing) -> SyntaxError {
    SyntaxError::MissingKey {
        at,
        what: what.to_string(),
        missing,
    }
}

/// Keys other tools spell differently, and the key this language uses.
const KEY_ALIASES: &[(&str, &str)] = &[
    ("columns", "fields"),
    ("column", "fields"),
    ("properties", "fields"),
    ("attributes", "fields"),
    ("primary_key", "key"),
    ("pk", "key"),
    ("optional", "nullable"),
    ("null", "nullable"),
    ("required", "nullable"),
    ("foreign_key", "references"),
    ("fk", "references"),
    ("ref", "references"),
    ("table_name", "table"),
    ("index", "indexes"),
    ("uniq", "unique"),
    ("length", "max"),
    ("max_length", "max"),
    ("enum", "values"),
    ("default_value", "default"),
    ("type_", "type"),
    ("kind_", "kind"),
    ("driver", "kind"),
    ("dsn", "url"),
    ("connection", "url"),
    ("filter", "where"),
    ("order_by", "order"),
    ("sort", "order"),
];

/// Field settings other tools put on the field that this language puts on
/// the entity (or in `enums:`), with where they go.
fn field_hint(known: &[&str], key: &str) -> Option<MovedKey> {
    if !known.contains(&"references") {
        return None; // not a field's keys
    }
    Some(match key.to_ascii_lowercase().as_str() {
        "primary_key" | "primary" | "pk" | "is_primary" => MovedKey::PrimaryKey,
        "index" | "indexed" => MovedKey::Index,
        "values" | "enum" | "options" | "choices" => MovedKey::EnumValues,
        _ => return None,
    })
}

fn key_alias(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    KEY_ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map(|(_, k)| *k)
}
