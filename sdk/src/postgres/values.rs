//! Multi-row `VALUES` statements, for batch writes of rows that neither
//! `UNNEST` nor binary `COPY` can carry (rows with array columns: `UNNEST`
//! would flatten an array of arrays, and `COPY` needs each array's element
//! type OID, which for user-defined types is only known per connection).
//! Every value is still a bound parameter, with sqlx resolving its type;
//! only the count of `($n, …)` groups varies, so a full chunk's statement
//! is the same text every time and is prepared once per connection.

/// PostgreSQL's limit on bind parameters in one statement.
const MAX_PARAMS: usize = u16::MAX as usize;

/// Rows per multi-row `VALUES` statement: 1,000 (one round trip each),
/// fewer when the rows are so wide that 1,000 would pass the parameter limit.
pub fn values_chunk(width: usize) -> usize {
    (MAX_PARAMS / width.max(1)).clamp(1, 1_000)
}

/// `{before}(VALUES ($1, …, $width), …) AS u({columns}){after}` for `rows` rows.
///
/// ```
/// let sql = strata_sdk::postgres::values_sql("SELECT * FROM ", "", "\"a\", \"b\"", 2, 2);
/// assert_eq!(sql, "SELECT * FROM (VALUES ($1, $2), ($3, $4)) AS u(\"a\", \"b\")");
/// ```
pub fn values_sql(before: &str, after: &str, columns: &str, width: usize, rows: usize) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(before.len() + after.len() + rows * width * 7 + 32);
    sql.push_str(before);
    sql.push_str("(VALUES ");
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            n += 1;
            let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
    let _ = write!(sql, ") AS u({columns}){after}");
    sql
}
