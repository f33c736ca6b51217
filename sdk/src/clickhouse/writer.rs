//! The batching ClickHouse writer.

use std::time::{Duration, Instant};

use std::marker::PhantomData;

use ::clickhouse::insert_formatted::InsertFormatted;
use ::clickhouse::{Client, RowOwned, RowWrite};
use bytes::{Bytes, BytesMut};

use super::row_binary::{self, EncodeError};
use super::Table;
use crate::writer::{Retry, Settings};

/// Limits of one batch, the retry policy and the timeout: the
/// [`Settings`] every writer shares, set with the same `with_*` methods.
/// Defaults: 100,000 rows, 32 MiB, 1 s, 5 retries from 100 ms (at most
/// 102.4 s apart), 30 s timeout.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    settings: Settings,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            settings: Settings {
                max_rows: 100_000,
                max_bytes: 32 << 20,
                max_age: Duration::from_secs(1),
                retry: Retry::new(
                    5,
                    Duration::from_millis(100),
                    Duration::from_millis(102_400),
                ),
                timeout: crate::writer::DEFAULT_TIMEOUT,
                store: None,
            },
        }
    }
}

impl WriterConfig {
    crate::writer::settings_methods!();

    /// How many times a failed insert is retried, with doubling backoff from
    /// `first_backoff` (at most 1,024 times it).
    #[deprecated(note = "use `with_retry(Retry::new(n, first, max))`, the same on every writer")]
    pub fn with_retries(self, n: u32, first_backoff: Duration) -> Self {
        self.with_retry(Retry::new(
            n,
            first_backoff,
            first_backoff.saturating_mul(1024),
        ))
    }
}

/// Why a write or flush failed. The batch stays buffered after an insert
/// error, so a later `flush` retries it; nothing is dropped silently.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("insert into `{table}` failed after {attempts} attempts: {source}")]
    Insert {
        table: &'static str,
        attempts: u32,
        source: ::clickhouse::error::Error,
    },
    /// The row given to this `write` was not accepted: the writer already
    /// holds twice a batch and could not send it.
    #[error("the writer holds {rows} unsent rows (twice its batch limit) and could not flush them, so this row was not accepted: {source}")]
    Backlog { rows: usize, source: Box<Error> },
    /// The row given to this `write` has no RowBinary encoding, or holds a
    /// value its column cannot hold exactly ([`EncodeError::Value`], from
    /// [`Table::check`]: a decimal with too many places, a date outside
    /// `Date32`, … naming the field and the row's key): it was not
    /// buffered, the batch is unchanged.
    #[error("a row for `{table}` was refused: {source}")]
    Encode {
        table: &'static str,
        source: EncodeError,
    },
}

impl Error {
    /// For an error of [`Writer::write`]: whether the row given was taken
    /// (it is buffered with its batch, which failed to insert and stays for
    /// the next flush), so writing it again would send it twice. `false`
    /// for [`Encode`](Error::Encode) and [`Backlog`](Error::Backlog): the row
    /// was not taken and may be written again.
    pub fn taken(&self) -> bool {
        matches!(self, Error::Insert { .. })
    }
}

/// Encoded bytes are cut into chunks of about this size and streamed into
/// the batch's `INSERT` as they fill: the `clickhouse` crate's own rule
/// (a 256 KiB buffer, sent once it holds 254 KiB), so the writer puts the
/// same chunks on the wire as a bare `Insert` does.
const CHUNK: usize = 256 * 1024;
const CHUNK_SEND: usize = CHUNK - 2048;

/// Buffers rows of one table and inserts them in batches, by count, bytes
/// and age.
///
/// Each row is encoded once, as it is written, into RowBinary
/// ([`row_binary`](super::row_binary)); every 254 KiB of it is streamed into
/// the batch's `INSERT` (compressed as the client says) and also kept, as
/// shared `Bytes` that cost no copy, until the server acknowledges the
/// batch. A failed insert is replayed from those bytes, whole. Replays
/// cannot duplicate a row's effect, because the table is a
/// `ReplacingMergeTree` keyed by the primary key and versioned by
/// `_version`: a row sent twice is collapsed with its copy.
///
/// The insert is plain `RowBinary` into the columns of `T` (the
/// `clickhouse` crate's `Row` names), without the crate's schema
/// validation; [`client`](super::client()) turns validation off for the
/// same reason (servers before 24.x reject it).
///
/// ```no_run
/// # async fn f<T>(rows: Vec<T>) -> Result<(), strata_sdk::clickhouse::Error>
/// # where T: strata_sdk::clickhouse::Table + clickhouse::RowOwned + clickhouse::RowWrite {
/// let client = strata_sdk::clickhouse::client("http://127.0.0.1:8123", "deepalpha");
/// let mut w = strata_sdk::clickhouse::Writer::<T>::new(client, Default::default());
/// for r in rows { w.write(&r).await?; }
/// w.flush().await?;
/// # Ok(()) }
/// ```
pub struct Writer<T> {
    client: Client,
    config: WriterConfig,
    /// `INSERT INTO `table`(`col`,…) FORMAT RowBinary`.
    sql: String,
    /// Encoded rows not yet cut into a chunk.
    buf: BytesMut,
    /// The batch's chunks already cut, kept until the server acknowledges
    /// them (each is also owned by the insert it was streamed into).
    chunks: Vec<Bytes>,
    /// The insert the current batch streams into, started with its first chunk.
    insert: Option<InsertFormatted>,
    /// False once a batch failed: its chunks are only sent by `flush`, as a
    /// replay, until one succeeds.
    streaming: bool,
    /// Why streaming into `insert` failed: the first attempt's error.
    stream_error: Option<::clickhouse::error::Error>,
    rows: usize,
    bytes: usize,
    oldest: Option<Instant>,
    sent: u64,
    table: &'static str,
    meter: crate::writer::Meter,
    _rows: PhantomData<fn(T)>,
}

/// Dropping a writer that still holds rows loses them (a destructor cannot
/// await an insert); it says so loudly instead of silently. Call `flush`
/// before letting a writer go.
impl<T> Drop for Writer<T> {
    fn drop(&mut self) {
        if self.rows > 0 {
            tracing::error!(
                table = self.table,
                rows = self.rows,
                "clickhouse writer dropped with unsent rows; they are lost (call flush first)"
            );
        }
    }
}

impl<T: Table + RowOwned + RowWrite> Writer<T> {
    pub fn new(client: Client, config: WriterConfig) -> Self {
        let store = config.settings.store().or(Some(T::STORE));
        let meter = crate::writer::Meter::new("clickhouse", store, T::TABLE);
        Writer {
            sql: insert_sql(T::TABLE, T::COLUMN_NAMES),
            client,
            config,
            buf: BytesMut::new(),
            chunks: Vec::new(),
            insert: None,
            streaming: true,
            stream_error: None,
            rows: 0,
            bytes: 0,
            oldest: None,
            sent: 0,
            table: T::TABLE,
            meter,
            _rows: PhantomData,
        }
    }

    /// Buffers a row, inserting the batch when a limit is reached. The row
    /// is encoded at once and only borrowed, so a row refused with
    /// [`Error::Encode`] or [`Error::Backlog`] is still the caller's to
    /// retry or set aside; a refused row leaves the batch as it was. An
    /// [`Error::Insert`] from `write` means the row **was** taken: its batch
    /// stays buffered for the next flush; do not write it again.
    /// [`Error::taken`] tells which.
    pub async fn write(&mut self, row: &T) -> Result<(), Error> {
        // The rare steps (once per chunk, once per batch) are boxed, so the
        // future `write` builds for every row stays small.
        if self.rows >= self.config.settings.max_rows.saturating_mul(2)
            || self.bytes >= self.config.settings.max_bytes.saturating_mul(2)
        {
            if let Err(e) = Box::pin(self.flush()).await {
                return Err(Error::Backlog {
                    rows: self.rows,
                    source: Box::new(e),
                });
            }
        }
        self.encode(row)?;
        if self.buf.len() >= CHUNK_SEND {
            Box::pin(self.cut()).await;
        }
        if self.due() {
            Box::pin(self.flush()).await?;
        }
        Ok(())
    }

    #[inline]
    fn encode(&mut self, row: &T) -> Result<(), Error> {
        row.check().map_err(|e| Error::Encode {
            table: T::TABLE,
            source: EncodeError::Value(e),
        })?;
        if self.buf.capacity() == 0 {
            self.buf.reserve(CHUNK);
        }
        let n = row_binary::encode::<T::Value<'_>>(row, &mut self.buf).map_err(|source| {
            Error::Encode {
                table: T::TABLE,
                source,
            }
        })?;
        self.rows += 1;
        self.bytes += n;
        self.oldest.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn due(&self) -> bool {
        let n = self.rows;
        // Reading the clock on every row costs a few percent at a million
        // rows/s; a busy batch checks its age every 64 rows, a slow one always.
        let check_age = n < 256 || n % 64 == 0;
        n >= self.config.settings.max_rows
            || self.bytes >= self.config.settings.max_bytes
            || (check_age
                && self
                    .oldest
                    .is_some_and(|t| t.elapsed() >= self.config.settings.max_age))
    }

    /// Flushes when the oldest buffered row has reached `max_age`: call it
    /// from a timer when writes can pause, since age is otherwise checked
    /// only on `write`.
    pub async fn flush_if_due(&mut self) -> Result<(), Error> {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.config.settings.max_age)
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Rows buffered and not yet inserted.
    pub fn pending(&self) -> usize {
        self.rows
    }

    /// Rows inserted so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Cuts the encoded rows into a chunk, keeps it, and streams it into
    /// the batch's insert. A failed send only stops the streaming: the
    /// chunk is kept, and `flush` reports the error and replays the batch.
    async fn cut(&mut self) {
        let chunk = self.buf.split().freeze();
        // The kept chunk holds its allocation; the next rows get another.
        self.buf = BytesMut::with_capacity(CHUNK);
        self.chunks.push(chunk.clone());
        if !self.streaming {
            return;
        }
        let insert = match &mut self.insert {
            Some(i) => i,
            None => self.insert.insert(self.new_insert()),
        };
        // Not streaming until the chunk is handed over: if this future is
        // dropped half-way, the insert may lack the chunk, so only a replay
        // may send the batch.
        self.streaming = false;
        match insert.send(chunk).await {
            Ok(()) => self.streaming = true,
            Err(e) => {
                // Dropping the insert aborts it.
                self.insert = None;
                self.stream_error = Some(e);
            }
        }
    }

    /// Inserts every buffered row now, retrying a failed insert.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.rows == 0 {
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.cut().await;
        }
        // Until the server acknowledges this batch its chunks only go out in
        // a replay, also when this future is dropped half-way: rows written
        // meanwhile join the kept chunks instead of a new insert.
        let streamed = std::mem::replace(&mut self.streaming, false);
        let first = match (self.stream_error.take(), self.insert.take()) {
            // Streaming failed: that was the first attempt.
            (Some(e), _) => Some(Err(e)),
            (None, Some(insert)) if streamed => Some(insert.end().await),
            // A batch that failed before: its chunks go out again.
            _ => None,
        };
        let started = Instant::now();
        self.meter.backlog(self.rows);
        let this = &*self;
        let mut first = first;
        let (result, attempts) = crate::writer::retry(
            &this.config.settings.retry,
            &this.meter,
            || {
                let done = first.take();
                async move {
                    match done {
                        Some(r) => r,
                        None => this.replay().await,
                    }
                }
            },
            retryable,
            |_| None,
        )
        .await;
        self.meter.flushed(started);
        if let Err(e) = result {
            self.meter.failed("unavailable");
            // The kept chunks are the batch: the next flush replays them.
            return Err(Error::Insert {
                table: T::TABLE,
                attempts,
                source: e,
            });
        }
        self.sent += self.rows as u64;
        self.meter.sent(self.rows as u64, self.bytes as u64);
        self.meter.backlog(0);
        self.chunks.clear();
        self.rows = 0;
        self.bytes = 0;
        self.oldest = None;
        self.streaming = true;
        Ok(())
    }

    /// A new `INSERT` of the batch, bounded by the configured timeout.
    fn new_insert(&self) -> InsertFormatted {
        let t = Some(self.config.settings.timeout);
        self.client
            .insert_formatted_with(self.sql.clone())
            .with_timeouts(t, t)
    }

    /// Sends the kept chunks of the batch in a new `INSERT`.
    async fn replay(&self) -> ::clickhouse::error::Result<()> {
        let mut insert = self.new_insert();
        for chunk in &self.chunks {
            insert.send(chunk.clone()).await?;
        }
        insert.end().await
    }
}

/// The statement the `clickhouse` crate's `Insert` sends for a row type:
/// the table and each column quoted as its `sql::escape::identifier` does.
fn insert_sql(table: &str, columns: &[&str]) -> String {
    let mut sql = String::from("INSERT INTO ");
    quote_identifier(table, &mut sql);
    if !columns.is_empty() {
        sql.push('(');
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            quote_identifier(c, &mut sql);
        }
        sql.push(')');
    }
    sql.push_str(" FORMAT RowBinary");
    sql
}

/// `name` in backquotes, with `\`, `'`, `` ` ``, tab and newline escaped by a
/// backslash.
fn quote_identifier(name: &str, out: &mut String) {
    out.push('`');
    for c in name.chars() {
        if matches!(c, '\\' | '\'' | '`' | '\t' | '\n') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('`');
}

/// Errors a retry can cure: the network and timeouts. A row the server
/// rejects (bad data, unknown table) fails the same way every time.
fn retryable(e: &::clickhouse::error::Error) -> bool {
    use ::clickhouse::error::Error as E;
    match e {
        E::Network(_) | E::TimedOut => true,
        // Server errors of the overloaded or unavailable kind.
        E::BadResponse(m) => {
            m.contains("TOO_MANY_SIMULTANEOUS_QUERIES")
                || m.contains("TOO_MANY_PARTS")
                || m.contains("503")
                || m.contains("502")
        }
        _ => false,
    }
}
