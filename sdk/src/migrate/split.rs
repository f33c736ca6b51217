//! Splits a SQL script into statements the way `psql` does, so that each
//! statement can run on its own (a migration outside a transaction, where
//! `CREATE INDEX CONCURRENTLY` must not share a query string) and a failure
//! can name its statement's line.
//!
//! The rules are those of psql's lexer (`src/fe_utils/psqlscan.l` in
//! PostgreSQL 15): a `;` ends a statement only outside
//! - quoted strings (`'…'` with `''`, `E'…'` with backslash escapes) and
//!   quoted identifiers (`"…"`),
//! - dollar quotes (`$$…$$`, `$tag$…$tag$`; `$1` and `a$b` are not quotes),
//! - `--` comments and nested `/* … /* … */ … */` comments,
//! - parentheses, and
//! - the body of `CREATE [OR REPLACE] FUNCTION|PROCEDURE … BEGIN ATOMIC … END`
//!   (psql's heuristic: after such a head, `BEGIN` and, inside one, `CASE`
//!   open a block that `END` closes).

/// The statements of `sql`, each with its terminating `;`, without
/// comment-only pieces.
pub fn statements(sql: &str) -> Vec<String> {
    let mut lexer = Lexer {
        b: sql.as_bytes(),
        i: 0,
        stmt: Statement::default(),
    };
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(end) = lexer.next_end() {
        if lexer.stmt.code {
            out.push(sql[start..end].trim().to_string());
        }
        start = end;
        lexer.stmt = Statement::default();
    }
    out
}

/// What the lexer tracks within one statement.
#[derive(Default)]
struct Statement {
    /// Something besides comments and white space.
    code: bool,
    paren_depth: usize,
    begin_depth: usize,
    /// The first letters of the leading words, where a word is one of
    /// `create`, `or`, `replace`, `function`, `procedure` (else 0).
    heads: [u8; 4],
    words: usize,
}

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    stmt: Statement,
}

impl Lexer<'_> {
    /// Advances past the end of the current statement: the byte offset after
    /// its `;` (or the end of the text); `None` at the end.
    fn next_end(&mut self) -> Option<usize> {
        if self.i >= self.b.len() {
            return None;
        }
        while self.i < self.b.len() {
            let c = self.b[self.i];
            let next = self.b.get(self.i + 1).copied();
            match c {
                b'-' if next == Some(b'-') => self.line_comment(),
                b'/' if next == Some(b'*') => self.block_comment(),
                b'\'' => self.quoted(b'\'', false),
                b'"' => self.quoted(b'"', false),
                b'$' => self.dollar(),
                b'(' | b')' => {
                    self.stmt.code = true;
                    self.stmt.paren_depth = if c == b'(' {
                        self.stmt.paren_depth + 1
                    } else {
                        self.stmt.paren_depth.saturating_sub(1)
                    };
                    self.i += 1;
                }
                b';' => {
                    self.i += 1;
                    if self.stmt.paren_depth == 0 && self.stmt.begin_depth == 0 {
                        return Some(self.i);
                    }
                }
                c if is_word_start(c) => self.word(),
                c if c.is_ascii_digit() => {
                    self.stmt.code = true;
                    while self.i < self.b.len() && is_word_char(self.b[self.i]) {
                        self.i += 1;
                    }
                }
                c => {
                    self.stmt.code |= !c.is_ascii_whitespace();
                    self.i += 1;
                }
            }
        }
        Some(self.b.len())
    }

    fn line_comment(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
    }

    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while self.i < self.b.len() {
            if self.b[self.i..].starts_with(b"/*") {
                depth += 1;
                self.i += 2;
            } else if self.b[self.i..].starts_with(b"*/") {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.i += 1;
            }
        }
    }

    /// A string or quoted identifier from its opening quote; a doubled quote
    /// is one quote character, and `escapes` makes `\` escape the next byte.
    fn quoted(&mut self, q: u8, escapes: bool) {
        self.stmt.code = true;
        self.i += 1;
        while self.i < self.b.len() {
            let c = self.b[self.i];
            let escaped = escapes && c == b'\\';
            let doubled = c == q && self.b.get(self.i + 1) == Some(&q);
            if escaped || doubled {
                self.i += 2;
            } else if c == q {
                self.i += 1;
                return;
            } else {
                self.i += 1;
            }
        }
    }

    fn dollar(&mut self) {
        self.stmt.code = true;
        let Some(tag) = dollar_tag(&self.b[self.i..]) else {
            // `$1` (a parameter) or a lone `$`.
            self.i += 1;
            while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
                self.i += 1;
            }
            return;
        };
        let body = self.i + tag.len();
        self.i = match find(&self.b[body..], tag) {
            Some(k) => body + k + tag.len(),
            None => self.b.len(),
        };
    }

    /// An unquoted word: keywords that open and close `BEGIN ATOMIC` blocks,
    /// and `E'…'` strings.
    fn word(&mut self) {
        self.stmt.code = true;
        let start = self.i;
        while self.i < self.b.len() && is_word_char(self.b[self.i]) {
            self.i += 1;
        }
        let word = &self.b[start..self.i];
        if word.eq_ignore_ascii_case(b"e") && self.b.get(self.i) == Some(&b'\'') {
            self.quoted(b'\'', true);
            return;
        }
        self.track_blocks(word);
    }

    /// psql's heuristic for SQL-standard function bodies.
    fn track_blocks(&mut self, word: &[u8]) {
        let s = &mut self.stmt;
        let head = ["create", "function", "procedure", "or", "replace"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k.as_bytes()));
        if head && s.words < s.heads.len() {
            s.heads[s.words] = word[0].to_ascii_lowercase();
        }
        s.words += 1;
        let h = s.heads;
        let routine = h[0] == b'c'
            && (matches!(h[1], b'f' | b'p')
                || (h[1] == b'o' && h[2] == b'r' && matches!(h[3], b'f' | b'p')));
        if !routine || s.paren_depth != 0 {
            return;
        }
        // CASE also ends with END; it counts only inside a BEGIN.
        let opens = word.eq_ignore_ascii_case(b"begin")
            || (word.eq_ignore_ascii_case(b"case") && s.begin_depth >= 1);
        if opens {
            s.begin_depth += 1;
        } else if word.eq_ignore_ascii_case(b"end") {
            s.begin_depth = s.begin_depth.saturating_sub(1);
        }
    }
}

/// The first byte of an unquoted identifier or keyword (non-ASCII bytes are
/// letters to PostgreSQL).
fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// A later byte of one: `$` too (`a$b` is one identifier, not a dollar quote).
fn is_word_char(c: u8) -> bool {
    is_word_start(c) || c.is_ascii_digit() || c == b'$'
}

/// `$tag$` or `$$` at the start of `b` (a tag is an identifier without `$`).
fn dollar_tag(b: &[u8]) -> Option<&[u8]> {
    let end = b[1..].iter().position(|&c| c == b'$')? + 1;
    let inner = &b[1..end];
    let ok = inner
        .iter()
        .enumerate()
        .all(|(k, &c)| is_word_start(c) || (k > 0 && c.is_ascii_digit()));
    ok.then(|| &b[..=end])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
