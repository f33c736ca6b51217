//! Identifier rules. Every SQL name is checked to be a safe identifier here
//! *and* quoted when emitted, so a reserved word like `order` or `user` works
//! as a table or column name.

/// PostgreSQL truncates identifiers longer than this many bytes.
pub const MAX_SQL_IDENT: usize = 63;

/// `snake_case` ASCII: a lower-case letter or `_`, then lower-case letters, digits, `_`.
pub fn is_snake_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= MAX_SQL_IDENT
}

/// `UpperCamelCase` ASCII: an upper-case letter, then letters and digits.
pub fn is_type_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && s.len() <= MAX_SQL_IDENT
}

/// An enum value: ASCII letters, digits and `_`, starting with a letter.
pub fn is_enum_value(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= MAX_SQL_IDENT
}

/// Quotes a SQL identifier. Callers pass names already checked by
/// [`is_snake_ident`]; the doubling of `"` keeps even a bad name harmless.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a SQL string literal (for DDL defaults and predicates written in the
/// schema; never for run-time values, which are always bound parameters).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// The Rust spelling of a name: raw (`r#type`) for keywords.
pub fn rust_ident(s: &str) -> String {
    if matches!(s, "self" | "Self" | "super" | "crate") {
        format!("{s}_")
    } else if RUST_KEYWORDS.contains(&s) {
        format!("r#{s}")
    } else {
        s.to_string()
    }
}
