//! `COPY … FROM STDIN (FORMAT binary)` rows, encoded with sqlx's own binary
//! encoders (the same bytes a bound parameter carries), streamed to the
//! server in blocks so the input is never held twice.

use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, PgConnection, PgCopyIn};
use sqlx::{Encode, Postgres};

use crate::error::{Error, Result};

/// Bytes buffered before they are sent to the server.
pub const COPY_BLOCK: usize = 1 << 20;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Encodes rows in PostgreSQL's binary COPY format.
///
/// Only scalar values: arrays of user-defined types need OIDs that are
/// resolved per connection, which this encoder does not do.
pub struct CopyWriter {
    buf: PgArgumentBuffer,
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
        CopyWriter { buf }
    }

    /// Starts a row of `fields` values.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
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
