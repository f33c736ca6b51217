//! Typed readers of YAML values (names, flags, numbers, durations, literals)
//! and of mappings with a known set of keys. Each reports what it expected.

use super::ast::*;
use super::yaml::{Node, NodeKind};
use crate::diagnostics::{did_you_mean, Code, Problem, Problems};
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
        let mut misspelt = Vec::new();
        let NodeKind::Map(entries) = &node.kind else {
            probs.push(
                Problem::new(
                    Code::ExpectedMapping,
                    node.span,
                    format!("{what} must be a mapping"),
                )
                .label(format!("found {}", node.describe()))
                .help(format!(
                    "write `key: value` pairs; known keys: {}",
                    known.join(", ")
                )),
            );
            return None;
        };
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if !known.contains(&key) {
                let mut p = Problem::new(
                    Code::UnknownKey,
                    k.span,
                    format!("unknown key `{key}` in {what}"),
                )
                .label("unknown key");
                if key.ends_with(')')
                    && key
                        .trim_end_matches(')')
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ' ')
                {
                    // `{ type: decimal(20,8) }`: the comma ended the flow entry.
                    p = p.help("inside `{ }` a comma separates entries: quote the type, as in `type: \"decimal(20,8)\"`");
                }
                // The known lists are short: no need to budget this suggestion.
                let instead = key_alias(key)
                    .filter(|k| known.contains(k))
                    .or_else(|| did_you_mean(key, known.iter().copied()));
                if let Some(hint) = field_hint(known, key) {
                    p = p.help(hint);
                } else if let Some(instead) = instead {
                    p = p.help(format!("did you mean `{instead}`?"));
                    misspelt.push(instead);
                }
                probs.push(p.help_or(format!("known keys: {}", known.join(", "))));
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
    pub(super) fn report_missing(&self, key: &str, p: Problem, probs: &mut Problems) {
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
            probs.push(
                Problem::new(
                    Code::ExpectedMapping,
                    node.span,
                    format!("{what} must be a mapping of names"),
                )
                .label(format!("found {}", node.describe()))
                .help("write one `Name: ...` entry per line"),
            );
            Vec::new()
        }
    }
}

pub(super) fn seq<'a>(node: &'a Node, what: &str, probs: &mut Problems) -> Vec<&'a Node> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            probs.push(
                Problem::new(
                    Code::ExpectedList,
                    node.span,
                    format!("{what} must be a list"),
                )
                .label(format!("found {}", node.describe()))
                .help("write `[a, b]` or one `- item` per line"),
            );
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
            probs.push(
                Problem::new(
                    Code::ExpectedName,
                    node.span,
                    format!("{what} must be a name"),
                )
                .label(format!("found {}", node.describe()))
                .help("write a plain name such as `symbol`"),
            );
            None
        }
    }
}

pub(super) fn boolean(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<bool>> {
    match node.kind {
        NodeKind::Scalar(ref s, false) if s == "true" => Some(Spanned::new(true, node.span)),
        NodeKind::Scalar(ref s, false) if s == "false" => Some(Spanned::new(false, node.span)),
        _ => {
            probs.push(
                Problem::new(
                    Code::ExpectedBool,
                    node.span,
                    format!("{what} must be true or false"),
                )
                .label(format!("found {}", node.describe_value()))
                .help("write `true` or `false` without quotes"),
            );
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
            let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            let (message, help) = match (digits, text.strip_prefix('-')) {
                (true, _) => (
                    format!("{what} is out of range"),
                    format!(
                        "write a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ),
                (false, Some(rest))
                    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    (
                        format!("{what} cannot be negative"),
                        "write a positive whole number such as `100`".to_string(),
                    )
                }
                _ => (
                    format!("{what} must be a whole number"),
                    "write a number such as `100`".to_string(),
                ),
            };
            let code = match digits {
                true => Code::OutOfRange,
                false => Code::ExpectedNumber,
            };
            probs.push(
                Problem::new(code, node.span, message)
                    .label(format!("found {}", node.describe_value()))
                    .help(help),
            );
            None
        }
    }
}

pub(super) use super::keys::parse_duration;
use super::keys::DURATION_RANGE;

pub(super) fn duration(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<u64>> {
    match node.as_str().and_then(parse_duration) {
        Some(ms) => Some(Spanned::new(ms, node.span)),
        None if node.as_str().is_some_and(super::keys::duration_overflows) => {
            probs.push(
                Problem::new(
                    Code::OutOfRange,
                    node.span,
                    format!("{what} is out of range"),
                )
                .label(format!("found {}", node.describe_value()))
                .help(DURATION_RANGE),
            );
            None
        }
        None => {
            probs.push(
                Problem::new(
                    Code::ExpectedDuration,
                    node.span,
                    format!("{what} must be a duration"),
                )
                .label(format!("found {}", node.describe_value()))
                .help("write a number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`"),
            );
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
            probs.push(
                Problem::new(Code::ExpectedLiteral, node.span, format!("{what} must be a single value"))
                    .label(format!("found {}", node.describe()))
                    .help("write a literal such as `0`, `true`, `'text'`, an enum member, `now` or `generated`"),
            );
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
            probs.push(
                Problem::new(
                    Code::BadDoc,
                    text.span,
                    format!("this `doc` holds the character {}", c.escape_unicode()),
                )
                .label("cannot stand in a Rust doc comment")
                .help("a doc is text: letters, punctuation, spaces, tabs and line breaks; remove control and text-direction characters"),
            );
            None
        }
        None => Some(doc),
    }
}

pub(super) fn missing(span: Span, what: &str, key: &str, help: &str) -> Problem {
    Problem::new(Code::MissingKey, span, format!("{what} has no `{key}`"))
        .label(format!("needs `{key}:`"))
        .help(help)
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
fn field_hint(known: &[&str], key: &str) -> Option<&'static str> {
    if !known.contains(&"references") {
        return None; // not a field's keys
    }
    Some(match key.to_ascii_lowercase().as_str() {
        "primary_key" | "primary" | "pk" | "is_primary" => {
            "the primary key is declared on the entity: `key: <field>` (a field named `id` is the key by default)"
        }
        "index" | "indexed" => "indexes are declared on the entity: `indexes: [[<field>]]`",
        "values" | "enum" | "options" | "choices" => {
            "declare an enum under `enums:` (e.g. `Status: [ACTIVE, CLOSED]`) and use its name as the type"
        }
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
