//! A small YAML tree with byte spans on every node, built from saphyr's event
//! parser. We do not use a serde YAML deserializer: it would lose the spans
//! we need for `file:line:col` diagnostics, and serde_yaml is deprecated.
//!
//! Anchors and aliases are refused (a schema has no need for them, and alias
//! expansion is the classic way to make a YAML loader blow up); nesting is
//! capped at [`MAX_DEPTH`]; duplicate keys are errors.

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

use crate::diagnostics::Problem;
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
    Map(Vec<(Node, Node)>, Option<Node>, usize),
}

/// Parses one YAML document into a spanned tree. An empty file gives `None`.
pub fn load(file: FileId, text: &str) -> Result<Option<Node>, Problem> {
    let off = Offsets::new(text);
    let span = |s: YSpan| Span::new(file, off.byte(s.start.index()), off.byte(s.end.index()));
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;

    while let Some(ev) = parser.next_event() {
        let (ev, ys) = ev.map_err(|e| {
            let at = off.byte(e.marker().index());
            Problem::new(
                "strata::yaml",
                Span::new(file, at, at + 1),
                format!("invalid YAML: {}", e.info()),
            )
            .label("here")
            .help("check indentation and quoting around this point")
        })?;
        let sp = span(ys);
        let node = match ev {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Problem::new(
                        "strata::yaml",
                        sp,
                        "a schema file holds one YAML document",
                    )
                    .label("second document starts here")
                    .help("split the documents into separate files in the schema directory"));
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(Problem::new(
                    "strata::yaml_alias",
                    sp,
                    "YAML aliases are not supported in schemas",
                )
                .label("alias")
                .help(
                    "write the value out; anchors and aliases are refused to keep schemas explicit",
                ));
            }
            Event::Scalar(value, style, anchor, _tag) => {
                if anchor != 0 {
                    return Err(anchor_problem(sp));
                }
                Node {
                    kind: NodeKind::Scalar(value.into_owned(), style != ScalarStyle::Plain),
                    span: sp,
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if anchor != 0 {
                    return Err(anchor_problem(sp));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(Problem::new(
                        "strata::yaml_depth",
                        sp,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    )
                    .label("too deep")
                    .help(
                        "a schema never needs this much nesting; check for a runaway structure",
                    ));
                }
                stack.push(if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new(), sp.start)
                } else {
                    Frame::Map(Vec::new(), None, sp.start)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, start)) => Node {
                    kind: NodeKind::Seq(items),
                    span: Span::new(file, start, sp.end.max(start)),
                },
                _ => unreachable_event(sp)?,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(entries, _, start)) => Node {
                    kind: NodeKind::Map(entries),
                    span: Span::new(file, start, sp.end.max(start)),
                },
                _ => unreachable_event(sp)?,
            },
        };
        // Attach the finished node to its parent.
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _)) => match pending.take() {
                None => {
                    if !matches!(node.kind, NodeKind::Scalar(..)) {
                        return Err(Problem::new(
                            "strata::yaml_key",
                            node.span,
                            "mapping keys must be plain names",
                        )
                        .label("complex key")
                        .help("use a plain scalar such as `name:` as the key"));
                    }
                    if entries.iter().any(|(k, _)| k.as_str() == node.as_str()) {
                        return Err(Problem::new(
                            "strata::duplicate_key",
                            node.span,
                            format!("duplicate key `{}`", node.as_str().unwrap_or_default()),
                        )
                        .label("written again here")
                        .help("each key may appear once in a mapping; merge the two entries"));
                    }
                    *pending = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok(root)
}

fn anchor_problem(sp: Span) -> Problem {
    Problem::new(
        "strata::yaml_alias",
        sp,
        "YAML anchors are not supported in schemas",
    )
    .label("anchor")
    .help("write the value out; anchors and aliases are refused to keep schemas explicit")
}

fn unreachable_event(sp: Span) -> Result<Node, Problem> {
    Err(Problem::new("strata::yaml", sp, "invalid YAML: unbalanced collection").label("here"))
}
