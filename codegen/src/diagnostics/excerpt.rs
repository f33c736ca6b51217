//! Source excerpts for rendering: a line index per file, so that locating and
//! rendering a problem reads a few lines, never the whole file, and long lines,
//! spans and texts are cut to a readable size.

use std::sync::Arc;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::source::Span;

/// Largest source excerpt rendered for one problem, in bytes.
const MAX_WINDOW: usize = 4096;
/// Bytes shown either side of a problem on a very long line.
const WIDE_CONTEXT: usize = 60;
/// Longest underline, in bytes.
const MAX_UNDERLINE: usize = 200;
/// Longest message, label or help, in characters (they quote the schema's text).
const MAX_TEXT: usize = 300;

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

pub(super) fn shorten(s: &mut String) {
    if s.len() > MAX_TEXT {
        if let Some((cut, _)) = s.char_indices().nth(MAX_TEXT) {
            s.truncate(cut);
            s.push('…');
        }
    }
}

/// One schema file with an index of its line starts, so that locating and
/// rendering a problem costs the size of a few lines, not of the whole file.
#[derive(Debug, Clone)]
pub(super) struct IndexedFile {
    pub(super) name: String,
    text: Arc<str>,
    /// Byte offset where each line starts; the first is 0.
    lines: Arc<[usize]>,
}

impl IndexedFile {
    pub(super) fn new(name: &str, text: &Arc<str>) -> Self {
        let lines = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        IndexedFile {
            name: name.to_string(),
            text: text.clone(),
            lines,
        }
    }
    /// 0-based line of a byte offset.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.lines
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }
    /// `name:line:col` (1-based) of a byte offset on a char boundary.
    pub(super) fn location(&self, offset: usize) -> String {
        let (line, col) = (self.line_of(offset), self.column_of(offset));
        format!("{}:{}:{}", self.name, line + 1, col + 1)
    }
    /// 0-based column, in characters, of a byte offset on a char boundary.
    pub(super) fn column_of(&self, offset: usize) -> usize {
        let start = self.lines[self.line_of(offset)];
        self.text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
    }
    /// The span made safe to render: inside the text, on char boundaries, and
    /// cut at the end of its first line (a problem about a whole mapping points
    /// at where it starts, not at fifty underlined lines).
    pub(super) fn clamp(&self, span: Span) -> (usize, usize) {
        let text = &self.text;
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = span.end.clamp(start, text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if let Some(nl) = text[start..end].find('\n') {
            if nl > 0 {
                end = start + nl;
            }
        }
        (start, ceil_boundary(text, end.min(start + MAX_UNDERLINE)))
    }
}

impl SourceCode for IndexedFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let (start, len) = (span.offset(), span.len());
        let end = start.checked_add(len).ok_or(MietteError::OutOfBounds)?;
        if end > self.text.len() || !self.text.is_char_boundary(start) {
            return Err(MietteError::OutOfBounds);
        }
        let first_line = self.line_of(start);
        let last_line = self.line_of(end.saturating_sub(1).max(start));
        let from_line = first_line.saturating_sub(before);
        let to_line = (last_line + after).min(self.lines.len() - 1);
        let data_start = if before == 0 {
            start
        } else {
            self.lines[from_line]
        };
        let data_end = self
            .lines
            .get(to_line + 1)
            .copied()
            .unwrap_or(self.text.len());
        if data_end - data_start > MAX_WINDOW {
            // A very long line: show the part around the span, not megabytes.
            let line_end = self
                .lines
                .get(first_line + 1)
                .map_or(self.text.len(), |&s| s - 1);
            let from = if before == 0 {
                start
            } else {
                floor_boundary(
                    &self.text,
                    start
                        .saturating_sub(WIDE_CONTEXT)
                        .max(self.lines[first_line]),
                )
            };
            let to = ceil_boundary(&self.text, (end + WIDE_CONTEXT).min(line_end).max(end));
            let column = if before == 0 {
                self.column_of(start)
            } else {
                0
            };
            return Ok(Box::new(MietteSpanContents::new_named(
                self.name.clone(),
                &self.text.as_bytes()[from..to],
                (from, to - from).into(),
                first_line,
                column,
                1,
            )));
        }
        let (line, column) = if before == 0 {
            (first_line, self.column_of(start))
        } else {
            (from_line, 0)
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[data_start..data_end],
            (data_start, data_end - data_start).into(),
            line,
            column,
            to_line - from_line + 1,
        )))
    }
}
