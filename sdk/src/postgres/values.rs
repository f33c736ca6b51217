//! Multi-row `VALUES` chunks (the statements are built by [`super::sql`]), for batch writes of rows that neither
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
