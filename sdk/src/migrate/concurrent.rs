//! A `CREATE INDEX CONCURRENTLY` that fails leaves an INVALID index behind;
//! retried as `… IF NOT EXISTS`, the statement then skips it and the
//! migration was recorded with an index PostgreSQL never uses (and, for a
//! unique index, never enforces); left alone, it is an orphan that a later
//! plain `CREATE INDEX` of the same name collides with. The runner reads
//! each such statement's index and table, drops an INVALID leftover before
//! running it, drops the INVALID index its own failed build left (both with
//! `DROP INDEX CONCURRENTLY`), and checks afterwards that the index is
//! valid, failing loudly when it is not.
//!
//! PostgreSQL documents the leftover and the remedy (drop and rebuild) in
//! "Building Indexes Concurrently" of the `CREATE INDEX` page.

use sqlx::PgConnection;

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON
/// [ONLY] table …` statement builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConcurrentIndex {
    /// The index name as PostgreSQL stores it (unquoted, case-folded).
    pub name: String,
    /// The table as written (quoted parts kept), for `to_regclass`.
    pub table: String,
}

/// The index of `statement` when it is a named concurrent index build.
pub(super) fn concurrent_index(statement: &str) -> Option<ConcurrentIndex> {
    let tokens = tokens(statement);
    let word = |k: usize| tokens.get(k).map(|(raw, _)| raw.as_str()).unwrap_or("");
    if !word(0).eq_ignore_ascii_case("create") {
        return None;
    }
    let mut k = 1;
    if word(k).eq_ignore_ascii_case("unique") {
        k += 1;
    }
    if !(word(k).eq_ignore_ascii_case("index") && word(k + 1).eq_ignore_ascii_case("concurrently"))
    {
        return None;
    }
    k += 2;
    if word(k).eq_ignore_ascii_case("if") {
        k += 3; // IF NOT EXISTS
    }
    let (name_raw, name) = tokens.get(k)?;
    if name_raw.eq_ignore_ascii_case("on") {
        return None; // PostgreSQL chooses the name
    }
    k += 1;
    if !word(k).eq_ignore_ascii_case("on") {
        return None;
    }
    k += 1;
    if word(k).eq_ignore_ascii_case("only") {
        k += 1;
    }
    let mut table = word(k).to_string();
    if word(k + 1) == "." {
        table = format!("{table}.{}", word(k + 2));
    }
    (!table.is_empty() && table != "(").then(|| ConcurrentIndex {
        name: name.clone(),
        table,
    })
}

/// The leading tokens of a statement: (as written, as PostgreSQL folds it).
/// Words and quoted identifiers are tokens, so are `.` and `(`; comments
/// and white space are skipped. Stops at the first `(`.
fn tokens(sql: &str) -> Vec<(String, String)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < 16 {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' {
            let start = i;
            let mut name = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'"' && b.get(i + 1) == Some(&b'"') {
                    name.push('"');
                    i += 2;
                } else if b[i] == b'"' {
                    i += 1;
                    break;
                } else {
                    let ch = sql[i..].chars().next().unwrap_or('\u{fffd}');
                    name.push(ch);
                    i += ch.len_utf8().max(1);
                }
            }
            out.push((sql[start..i.min(b.len())].to_string(), name));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            let raw = &sql[start..i];
            out.push((raw.to_string(), raw.to_ascii_lowercase()));
        } else {
            out.push(((c as char).to_string(), (c as char).to_string()));
            if c == b'(' {
                break;
            }
            i += 1;
        }
    }
    out
}

/// Whether the index `ix` exists next to its table, and if so whether it is valid.
pub(super) async fn validity(
    conn: &mut PgConnection,
    ix: &ConcurrentIndex,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid \
         WHERE c.relname = $1 \
           AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass($2))",
    )
    .bind(&ix.name)
    .bind(&ix.table)
    .fetch_optional(&mut *conn)
    .await
}

/// Drops `ix` when an earlier, failed build left it INVALID. Returns whether it did.
pub(super) async fn drop_invalid(
    conn: &mut PgConnection,
    ix: &ConcurrentIndex,
) -> Result<bool, sqlx::Error> {
    if validity(conn, ix).await? != Some(false) {
        return Ok(false);
    }
    drop_index(conn, ix).await?;
    Ok(true)
}

/// `DROP INDEX CONCURRENTLY IF EXISTS` of `ix`, in its table's schema.
pub(super) async fn drop_index(
    conn: &mut PgConnection,
    ix: &ConcurrentIndex,
) -> Result<(), sqlx::Error> {
    let schema: String = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE t.oid = to_regclass($1)",
    )
    .bind(&ix.table)
    .fetch_one(&mut *conn)
    .await?;
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let drop = format!(
        "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
        q(&schema),
        q(&ix.name)
    );
    sqlx::Executor::execute(&mut *conn, drop.as_str()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{concurrent_index, ConcurrentIndex};

    fn ix(name: &str, table: &str) -> Option<ConcurrentIndex> {
        Some(ConcurrentIndex {
            name: name.into(),
            table: table.into(),
        })
    }

    #[test]
    fn reads_the_index_and_table_of_concurrent_builds() {
        for (sql, want) in [
            (
                "-- c\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"Ix\" ON \"app\".\"t\" (a);",
                ix("Ix", "\"app\".\"t\""),
            ),
            (
                "create index concurrently My_Ix on only T using btree (a)",
                ix("my_ix", "T"),
            ),
            ("CREATE INDEX CONCURRENTLY ix ON s.t(a)", ix("ix", "s.t")),
            ("/* x */ CREATE INDEX CONCURRENTLY ON t (a)", None),
            ("CREATE INDEX ix ON t (a)", None),
            ("CREATE TABLE t (a int)", None),
        ] {
            assert_eq!(concurrent_index(sql), want, "{sql}");
        }
    }
}
