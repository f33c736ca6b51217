//! `COPY … FROM STDIN (FORMAT binary)` rows, encoded with sqlx's own binary
//! encoders (the same bytes a bound parameter carries), streamed to the
//! server in blocks so the input is never held twice.

use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, PgConnection, PgCopyIn};
use sqlx::{Encode, Postgres};

use super::sql::CopySql;
use super::table::{ArrayValue, Sink, Value};
use crate::error::{Error, Result};

/// Bytes buffered before they are sent to the server.
pub const COPY_BLOCK: usize = 1 << 20;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
const HEADER_LEN: usize = 19;

/// Bytes of rows kept per block by [`insert_rows`] (so a fallback can resend them).
pub const INSERT_BLOCK: usize = 4 << 20;

async fn send_block(conn: &mut PgConnection, sql: &str, block: &[u8]) -> Result<u64> {
    let mut copy = conn.copy_in_raw(sql).await?;
    if let Err(e) = copy.send(block).await {
        return Err(abort(copy, e.into()).await);
    }
    Ok(copy.finish().await?)
}

/// Encodes rows in PostgreSQL's binary COPY format.
///
/// Arrays carry their element type's OID, which `COPY` checks against the
/// column's: sqlx writes the Rust type's (`text` for a `String`, where the
/// column may be `varchar(20)[]`; 0 for an enum, whose OID exists only per
/// database). Give the columns' element OIDs ([`CopyWriter::with_element_oids`],
/// read from the catalog by the batch writers) and each array value is
/// stamped with its column's.
pub struct CopyWriter {
    buf: PgArgumentBuffer,
    /// Per column of a row: the element type OID of an array column.
    element_oids: Vec<Option<u32>>,
    /// The column the next value goes to.
    at: usize,
}

impl Default for CopyWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyWriter {
    pub fn new() -> Self {
        let mut buf = PgArgumentBuffer::default();
        buf.reserve(COPY_BLOCK + 64 * 1024);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyWriter {
            buf,
            element_oids: Vec::new(),
            at: 0,
        }
    }

    /// The element type OID of each array column, by position in the row
    /// (`None` for the other columns).
    pub fn with_element_oids(mut self, oids: Vec<Option<u32>>) -> Self {
        self.element_oids = oids;
        self
    }

    /// Starts a row of `fields` values.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.at = 0;
    }

    /// Stamps the array value that starts at `start` (its length word) with
    /// the current column's element OID: bytes 8..12 of the value are the
    /// element type (after the dimension count and the flags).
    fn stamp_element_oid(&mut self, start: usize) {
        let Some(Some(oid)) = self.element_oids.get(self.at) else {
            return;
        };
        let len = self
            .buf
            .get(start..start + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if len.is_some_and(|l| l >= 12) {
            self.buf[start + 12..start + 16].copy_from_slice(&oid.to_be_bytes());
        }
    }

    /// Appends one value (`None` is NULL).
    pub fn field<'q, T: Encode<'q, Postgres>>(&mut self, value: &T) -> Result<()> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let null = value
            .encode_by_ref(&mut self.buf)
            .map_err(|e| Error::Database(sqlx::Error::Encode(e)))?;
        let len = match null {
            IsNull::Yes => {
                self.buf.truncate(start + 4);
                -1
            }
            IsNull::No => i32::try_from(self.buf.len() - start - 4).map_err(|_| {
                Error::Database(sqlx::Error::Encode("value larger than 2 GiB".into()))
            })?,
        };
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Whether enough bytes are buffered to send a block.
    pub fn full(&self) -> bool {
        self.buf.len() >= COPY_BLOCK
    }

    /// Bytes buffered (header included).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether any row was written since the header.
    pub fn has_rows(&self) -> bool {
        self.buf.len() > HEADER_LEN
    }

    /// The bytes buffered so far (a piece of the stream); the buffer starts
    /// over empty.
    pub fn take_piece(&mut self) -> Vec<u8> {
        let piece = std::mem::take(&mut *self.buf);
        self.buf.reserve(piece.len());
        piece
    }

    /// The buffered rows as one complete COPY stream (header, rows,
    /// trailer); the writer starts over with a fresh header.
    pub fn take_block(&mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let block = std::mem::take(&mut *self.buf);
        self.buf.reserve(block.len());
        self.buf.extend_from_slice(SIGNATURE);
        self.buf.extend_from_slice(&[0; 8]);
        block
    }

    /// Sends the buffered bytes.
    pub async fn flush(&mut self, copy: &mut PgCopyIn<&mut PgConnection>) -> Result<()> {
        if !self.buf.is_empty() {
            copy.send(self.buf.as_slice()).await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the trailer, sends the rest and ends the COPY; returns the rows copied.
    pub async fn finish(mut self, mut copy: PgCopyIn<&mut PgConnection>) -> Result<u64> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.flush(&mut copy).await?;
        Ok(copy.finish().await?)
    }
}

/// Aborts a COPY after an error while encoding, leaving the connection usable.
pub async fn abort(copy: PgCopyIn<&mut PgConnection>, e: Error) -> Error {
    match copy.abort(e.to_string()).await {
        Ok(()) | Err(_) => e,
    }
}

/// Inserts rows, skipping keys that exist, in blocks of [`INSERT_BLOCK`]
/// bytes. Each block streams straight into the table with `COPY` (pieces of
/// [`COPY_BLOCK`] bytes go out while the next rows are encoded) under a
/// savepoint, and its bytes are kept until the block commits; if a key
/// exists (SQLSTATE 23505 at the end of the block) the savepoint is rolled
/// back and the kept bytes go through the staging table and
/// `ON CONFLICT DO NOTHING`. The input rows are consumed once; at most one
/// block of encoded bytes is held.
///
/// Only for tables whose inserts fill every column they name (no defaults
/// applied to `None`s), since `COPY` writes a `None` as NULL: those with a
/// [`CopySql::copy_direct`].
pub async fn insert_rows<R, I, F>(
    conn: &mut PgConnection,
    sql: &CopySql,
    width: i16,
    element_oids: &[Option<u32>],
    rows: I,
    mut encode: F,
) -> Result<u64>
where
    I: Iterator<Item = R>,
    F: FnMut(&mut CopyWriter, R) -> Result<()>,
{
    use sqlx::Executor;
    let mut rows = rows.peekable();
    let mut total = 0;
    while rows.peek().is_some() {
        conn.execute("SAVEPOINT strata_copy").await?;
        let mut kept: Vec<u8> = Vec::new();
        let mut w = CopyWriter::new().with_element_oids(element_oids.to_vec());
        let direct = sql.copy_direct.as_deref().unwrap_or_default();
        let mut copy = conn.copy_in_raw(direct).await?;
        while kept.len() + w.bytes() < INSERT_BLOCK {
            let Some(row) = rows.next() else { break };
            w.row(width);
            if let Err(e) = encode(&mut w, row) {
                return Err(abort(copy, e).await);
            }
            if w.full() {
                let piece = w.take_piece();
                copy.send(piece.as_slice()).await?;
                kept.extend_from_slice(&piece);
            }
        }
        w.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let piece = w.take_piece();
        copy.send(piece.as_slice()).await?;
        kept.extend_from_slice(&piece);
        match copy.finish().await.map_err(Error::from) {
            Ok(n) => {
                conn.execute("RELEASE SAVEPOINT strata_copy").await?;
                total += n;
            }
            Err(Error::Conflict { .. }) => {
                conn.execute("ROLLBACK TO SAVEPOINT strata_copy").await?;
                conn.execute(sql.create_stage.as_str()).await?;
                send_block(conn, &sql.copy_stage, &kept).await?;
                total += conn
                    .execute(sql.insert_from_stage.as_str())
                    .await?
                    .rows_affected();
                conn.execute(sql.drop_stage.as_str()).await?;
                conn.execute("RELEASE SAVEPOINT strata_copy").await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

impl Sink for CopyWriter {
    fn value<T: Value>(&mut self, v: &T) -> Result<()> {
        self.field(v)?;
        self.at += 1;
        Ok(())
    }
    fn array<T: ArrayValue>(&mut self, v: &T) -> Result<()> {
        let start = self.buf.len();
        self.field(v)?;
        self.stamp_element_oid(start);
        self.at += 1;
        Ok(())
    }
}
