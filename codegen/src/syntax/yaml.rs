//! A small YAML tree with byte spans on every node, built from saphyr's event
//! parser. We do not use a serde YAML deserializer: it would lose the spans
//! we need for `file:line:col` diagnostics, and serde_yaml is deprecated.
//!
//! Anchors and aliases are refused (a schema has no need for them, and alias
//! expansion is the classic way to make a YAML loader blow up); nesting is
//! capped at [`MAX_DEPTH`]; duplicate keys are errors.

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

use std::collections::HashMap;

use super::error::{SyntaxError, YamlHint};
use crate::diagnostics::Problems;
use crate::source::{FileId, Span};

/// Deepest nesting a schema file may have. Real schemas use about six.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar and whether it was quoted (a quoted `"true"` is a string).
    Scalar(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
    /// `null`, `~` or empty, unquoted.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s, false) if s.is_empty() || s == "~" || s == "null")
    }
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(..) if self.is_null() => "nothing",
            NodeKind::Scalar(..) => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// Maps saphyr's character indices to byte offsets.
struct Offsets {
    ascii: bool,
    bytes: Vec<usize>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let ascii = text.is_ascii();
        let bytes = if ascii {
            Vec::new()
        } else {
            text.char_indices().map(|(b, _)| b).collect()
        };
        Offsets {
            ascii,
            bytes,
            len: text.len(),
        }
    }
    fn byte(&self, char_index: usize) -> usize {
        if self.ascii {
            char_index.min(self.len)
        } else {
            self.bytes.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

enum Frame {
    Seq(Vec<Node>, usize),
    Map(MapFrame),
}

/// A mapping being built: its entries, its keys (for duplicate checks in
/// constant time) and the key waiting for its value.
struct MapFrame {
    entries: Vec<(Node, Node)>,
    keys: HashMap<String, Span>,
    pending: Option<Pending>,
    start: usize,
}

enum Pending {
    /// A key; `None` when the key was refused and its value is to be dropped.
    Key(Option<Node>),
    /// `8)` of `{ type: decimal(20,8) }`, which YAML splits at the comma: the
    /// key is glued back onto the previous value when its own value is empty.
    Continuation(Node),
}

/// Parses one YAML document into a spanned tree. An empty file gives `None`;
/// so does a syntax error, which is pushed to `probs`. Duplicate and complex
/// keys are reported and skipped, so the rest of the file is still checked.
pub fn load(file: FileId, text: &str, probs: &mut Problems) -> Option<Node> {
    let off = Offsets::new(text);
    let span = |s: YSpan| Span::new(file, off.byte(s.start.index()), off.byte(s.end.index()));
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;

    while let Some(ev) = parser.next_event() {
        let (ev, ys) = match ev {
            Ok(ev) => ev,
            Err(e) => {
                let at = off.byte(e.marker().index());
                probs.push(syntax_error(file, text, at, e.info(), &stack));
                return None;
            }
        };
        let sp = span(ys);
        let node = match ev {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    probs.push(SyntaxError::SecondDocument { at: sp });
                    return None;
                }
                continue;
            }
            Event::Alias(_) => {
                probs.push(SyntaxError::Alias { at: sp });
                return None;
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 {
                    probs.push(anchor_problem(sp));
                    return None;
                }
                if tag.is_some() {
                    probs.push(tag_problem(sp));
                    return None;
                }
                Node {
                    kind: NodeKind::Scalar(value.into_owned(), style != ScalarStyle::Plain),
                    span: sp,
                }
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if anchor != 0 {
                    probs.push(anchor_problem(sp));
                    return None;
                }
                if tag.is_some() {
                    probs.push(tag_problem(sp));
                    return None;
                }
                if stack.len() >= MAX_DEPTH {
                    probs.push(SyntaxError::TooDeep {
                        at: sp,
                        max: MAX_DEPTH,
                    });
                    return None;
                }
                stack.push(if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new(), sp.start)
                } else {
                    Frame::Map(MapFrame {
                        entries: Vec::new(),
                        keys: HashMap::new(),
                        pending: None,
                        start: sp.start,
                    })
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let kind = match stack.pop() {
                    Some(Frame::Seq(items, start)) => (NodeKind::Seq(items), start),
                    Some(Frame::Map(m)) => (NodeKind::Map(m.entries), m.start),
                    None => {
                        probs.push(SyntaxError::Unbalanced { at: sp });
                        return None;
                    }
                };
                Node {
                    span: Span::new(file, kind.1, sp.end.max(kind.1)),
                    kind: kind.0,
                }
            }
        };
        // Attach the finished node to its parent.
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(m)) => attach(m, node, probs),
        }
    }
    root
}

fn attach(m: &mut MapFrame, node: Node, probs: &mut Problems) {
    match m.pending.take() {
        None => m.pending = Some(key(m, node, true, probs)),
        Some(Pending::Key(None)) => {}
        Some(Pending::Key(Some(k))) => m.entries.push((k, node)),
        Some(Pending::Continuation(k)) => {
            if !node.is_null() {
                if let Pending::Key(Some(k)) = key(m, k, false, probs) {
                    m.entries.push((k, node));
                }
            } else if let Some((_, v)) = m.entries.last_mut() {
                if let NodeKind::Scalar(text, _) = &mut v.kind {
                    text.push(',');
                    text.push_str(k.as_str().unwrap_or_default());
                    v.span.end = k.span.end;
                }
            }
        }
    }
}

/// Checks a key; a refused key's value is dropped.
fn key(m: &mut MapFrame, node: Node, glue: bool, probs: &mut Problems) -> Pending {
    let NodeKind::Scalar(text, quoted) = &node.kind else {
        probs.push(SyntaxError::ComplexKey { at: node.span });
        return Pending::Key(None);
    };
    if glue
        && !quoted
        && is_continuation(text)
        && m.entries.last().is_some_and(|(_, v)| opens_args(v))
    {
        return Pending::Continuation(node);
    }
    if text == "<<" && !quoted {
        // YAML 1.1 merge keys: this parser would read `<<` as a name.
        probs.push(SyntaxError::MergeKey { at: node.span });
        return Pending::Key(None);
    }
    if let Some(&first) = m.keys.get(text.as_str()) {
        probs.push(SyntaxError::DuplicateKey {
            at: node.span,
            key: text.clone(),
            first,
        });
        return Pending::Key(None);
    }
    m.keys.insert(text.clone(), node.span);
    Pending::Key(Some(node))
}

/// `decimal(20` (a plain scalar with an unclosed argument list).
fn opens_args(v: &Node) -> bool {
    matches!(&v.kind, NodeKind::Scalar(s, false)
        if s.rfind('(').is_some_and(|i| !s[i..].contains(')')
            && s[i + 1..].trim().chars().all(|c| c.is_ascii_digit() || c == ' ' || c == ',')))
}

/// `8)`, `8)?`, `8)[]`: the rest of a type's argument list.
fn is_continuation(k: &str) -> bool {
    k.split_once(')').is_some_and(|(args, rest)| {
        !args.trim().is_empty()
            && args
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == ',')
            && matches!(rest.trim(), "" | "?" | "[]" | "[]?")
    })
}

/// A YAML syntax error, pointed at the most useful place: an unclosed `{` or
/// `[` rather than the end of the file, with a help line for the usual causes.
fn syntax_error(file: FileId, text: &str, at: usize, info: &str, stack: &[Frame]) -> SyntaxError {
    let opener = stack.iter().rev().find_map(|f| {
        let start = match f {
            Frame::Seq(_, s) => *s,
            Frame::Map(m) => m.start,
        };
        let c = text.get(start..)?.chars().next()?;
        matches!(c, '[' | '{').then_some((start, c))
    });
    let end = text.trim_end().len();
    let at_end = at >= end;
    let hint = if info.contains("tab") {
        YamlHint::Tabs
    } else if let Some((start, open)) = opener {
        let (line, col) = line_col(text, start);
        YamlHint::Unclosed { open, line, col }
    } else if info.contains("mapping values are not allowed") {
        YamlHint::ValueWithColon
    } else if info.contains("indentation") || info.contains("did not find expected key") {
        YamlHint::Indentation
    } else if info.contains("cannot start any token") {
        YamlHint::BadStart
    } else if info.contains("quoted scalar") {
        YamlHint::Quote
    } else if info.contains("recursion limit") {
        YamlHint::TooDeep
    } else {
        YamlHint::Other
    };
    let error_line = line_col(text, at.min(end)).0;
    if info.contains("mapping values are not allowed") && opener.is_none() {
        // `id uuid` on one line and `symbol: x` on the next read as one
        // scalar `id uuid symbol` followed by a stray `:`: the fix is above.
        if let Some(p) = missing_colon(file, text, at) {
            return p;
        }
    }
    match opener {
        // The collection opened on an earlier line and YAML gave up later: the
        // opening bracket is where the fix goes.
        Some((start, open)) if at_end || line_col(text, start).0 < error_line => {
            SyntaxError::UnclosedBracket {
                at: Span::new(file, start, start + 1),
                open,
                stopped_line: error_line,
                info: info.to_string(),
            }
        }
        _ => {
            // The scanner may report where a scalar began; the tab itself
            // (`\tpin: secret`, the next line's indentation) is the fix.
            let tab = (hint == YamlHint::Tabs).then(|| indent_tab(text, at));
            let at = tab.flatten().unwrap_or(at);
            let mut at = at.min(end.saturating_sub(1));
            while at > 0 && !text.is_char_boundary(at) {
                at -= 1;
            }
            let next = text[at..].chars().next().map_or(0, char::len_utf8);
            SyntaxError::InvalidYaml {
                at: Span::new(file, at, at + next),
                info: info.to_string(),
                hint,
            }
        }
    }
}

/// The first tab in the indentation of `at`'s line or the line after it.
fn indent_tab(text: &str, at: usize) -> Option<usize> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let mut pos = start;
    for line in text[start..].split_inclusive('\n').take(2) {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(i) = line[..indent].find('\t') {
            return Some(pos + i);
        }
        pos += line.len();
    }
    None
}

/// The line above `at`, when it is a plain `word word` line without a colon.
fn missing_colon(file: FileId, text: &str, at: usize) -> Option<SyntaxError> {
    let line_start = text.get(..at)?.rfind('\n')?;
    let above = text[..line_start]
        .rsplit('\n')
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let trimmed = above.trim();
    if trimmed.contains(':') || trimmed.starts_with(['-', '[', '{', '"', '\'']) {
        return None;
    }
    let offset =
        above.as_ptr() as usize - text.as_ptr() as usize + (above.len() - above.trim_start().len());
    Some(SyntaxError::MissingColon {
        at: Span::new(file, offset, offset + trimmed.len()),
    })
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

fn tag_problem(at: Span) -> SyntaxError {
    SyntaxError::Tag { at }
}

fn anchor_problem(at: Span) -> SyntaxError {
    SyntaxError::Anchor { at }
}
