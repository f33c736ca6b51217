//! Splits a SQL script into statements, for migrations run outside a
//! transaction: PostgreSQL runs a multi-statement query string as one implicit
//! transaction, where `CREATE INDEX CONCURRENTLY` is refused.

/// The statements of `sql`, without comment-only pieces. Knows quoted
/// strings and identifiers, dollar quoting and both comment forms, so a `;`
/// inside any of them does not split.
pub fn statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut code = false; // the current piece holds something besides comments
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                // E'…' strings take backslash escapes (E'it\'s').
                let escapes = q == b'\''
                    && i > 0
                    && matches!(b[i - 1], b'e' | b'E')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                code = true;
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                code = true;
                match dollar_tag(&b[i..]) {
                    Some(tag) => {
                        let body = i + tag.len();
                        i = match find(&b[body..], tag) {
                            Some(k) => body + k + tag.len(),
                            None => b.len(),
                        };
                    }
                    None => i += 1,
                }
            }
            b';' => {
                if code {
                    out.push(sql[start..=i].trim().to_string());
                }
                start = i + 1;
                code = false;
                i += 1;
            }
            c => {
                if !c.is_ascii_whitespace() {
                    code = true;
                }
                i += 1;
            }
        }
    }
    if code {
        out.push(sql[start..].trim().to_string());
    }
    out
}

/// `$tag$` or `$$` at the start of `b`.
fn dollar_tag(b: &[u8]) -> Option<&[u8]> {
    let end = b[1..].iter().position(|&c| c == b'$')? + 1;
    let inner = &b[1..end];
    let ok = inner
        .iter()
        .enumerate()
        .all(|(k, &c)| c == b'_' || c.is_ascii_alphabetic() || (k > 0 && c.is_ascii_digit()));
    ok.then(|| &b[..=end])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let sql =
            "-- head; comment\nCREATE INDEX CONCURRENTLY \"a;b\" ON t (x) WHERE y = 'p;q''r';\n\
                   /* c; /* nested; */ */ SELECT $f$ a; b $f$;\nSELECT 1";
        assert_eq!(
            statements(sql),
            vec![
                "-- head; comment\nCREATE INDEX CONCURRENTLY \"a;b\" ON t (x) WHERE y = 'p;q''r';",
                "/* c; /* nested; */ */ SELECT $f$ a; b $f$;",
                "SELECT 1",
            ]
        );
    }

    #[test]
    fn escape_strings() {
        assert_eq!(
            statements("SELECT E'a\\';b'; SELECT 'c\\'; SELECT 2"),
            vec!["SELECT E'a\\';b';", "SELECT 'c\\';", "SELECT 2"]
        );
    }

    #[test]
    fn comment_only_pieces_are_dropped() {
        assert!(statements("-- only\n/* x */ ;  \n").is_empty());
        assert_eq!(statements("SELECT $1;"), vec!["SELECT $1;"]);
    }
}
