//! The batching ClickHouse writer.

use std::time::{Duration, Instant};

use ::clickhouse::{Client, RowOwned, RowWrite};

use super::Table;

/// Limits of one batch and the retry policy. Built with `with_*` methods.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    max_rows: usize,
    max_bytes: usize,
    max_age: Duration,
    retries: u32,
    backoff: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_rows: 100_000,
            max_bytes: 32 << 20,
            max_age: Duration::from_secs(1),
            retries: 5,
            backoff: Duration::from_millis(100),
        }
    }
}

impl WriterConfig {
    /// Flush once this many rows are buffered.
    pub fn with_max_rows(mut self, n: usize) -> Self {
        self.max_rows = n.max(1);
        self
    }
    /// Flush once the buffered rows reach this many RowBinary bytes.
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n.max(1);
        self
    }
    /// Flush on the next write once the oldest buffered row is this old.
    pub fn with_max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }
    /// How many times a failed insert is retried (with doubling backoff).
    pub fn with_retries(mut self, n: u32, first_backoff: Duration) -> Self {
        self.retries = n;
        self.backoff = first_backoff;
        self
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
}

/// Buffers rows of one table and inserts them in batches, by count, bytes
/// and age. A failed insert is retried with the whole batch; replays cannot
/// duplicate a row's effect, because the table is a `ReplacingMergeTree`
/// keyed by the primary key and versioned by `_version`: a row sent twice
/// is collapsed with its copy.
///
/// ```no_run
/// # async fn f<T>(rows: Vec<T>) -> Result<(), strata_sdk::clickhouse::Error>
/// # where T: strata_sdk::clickhouse::Table + clickhouse::RowOwned + clickhouse::RowWrite {
/// let client = strata_sdk::clickhouse::client("http://127.0.0.1:8123", "deepalpha");
/// let mut w = strata_sdk::clickhouse::Writer::<T>::new(client, Default::default());
/// for r in rows { w.write(r).await?; }
/// w.flush().await?;
/// # Ok(()) }
/// ```
pub struct Writer<T> {
    client: Client,
    config: WriterConfig,
    /// Serializes each row as it is written (RowBinary, once) and sends the
    /// batch on flush; `healthy` turns false when a write into it failed.
    inserter: ::clickhouse::inserter::Inserter<T>,
    healthy: bool,
    /// Every row of the batch, kept until the server acknowledges it, so a
    /// failed insert can be replayed whole.
    rows: Vec<T>,
    bytes: usize,
    oldest: Option<Instant>,
    sent: u64,
}

impl<T: Table + RowOwned + RowWrite> Writer<T> {
    pub fn new(client: Client, config: WriterConfig) -> Self {
        Writer {
            inserter: Self::inserter(&client),
            healthy: true,
            client,
            config,
            rows: Vec::new(),
            bytes: 0,
            oldest: None,
            sent: 0,
        }
    }

    /// Buffers a row, inserting the batch when a limit is reached.
    pub async fn write(&mut self, row: T) -> Result<(), Error> {
        if self.rows.len() >= self.config.max_rows.saturating_mul(2)
            || self.bytes >= self.config.max_bytes.saturating_mul(2)
        {
            if let Err(e) = self.flush().await {
                return Err(Error::Backlog {
                    rows: self.rows.len(),
                    source: Box::new(e),
                });
            }
        }
        self.bytes += row.encoded_len();
        self.stream(&row).await;
        if self.rows.capacity() == 0 {
            self.rows.reserve(self.config.max_rows.min(1 << 17));
        }
        self.rows.push(row);
        self.oldest.get_or_insert_with(Instant::now);
        if self.due() {
            self.flush().await?;
        }
        Ok(())
    }

    fn due(&self) -> bool {
        let n = self.rows.len();
        // Reading the clock on every row costs a few percent at a million
        // rows/s; a busy batch checks its age every 64 rows, a slow one always.
        let check_age = n < 256 || n % 64 == 0;
        n >= self.config.max_rows
            || self.bytes >= self.config.max_bytes
            || (check_age
                && self
                    .oldest
                    .is_some_and(|t| t.elapsed() >= self.config.max_age))
    }

    /// Flushes when the oldest buffered row has reached `max_age`: call it
    /// from a timer when writes can pause, since age is otherwise checked
    /// only on `write`.
    pub async fn flush_if_due(&mut self) -> Result<(), Error> {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.config.max_age)
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Rows buffered and not yet inserted.
    pub fn pending(&self) -> usize {
        self.rows.len()
    }

    /// Rows inserted so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    fn inserter(client: &Client) -> ::clickhouse::inserter::Inserter<T> {
        // Limits are the writer's own; the inserter never commits by itself.
        client
            .inserter::<T>(T::TABLE)
            .with_max_rows(u64::MAX)
            .with_max_bytes(u64::MAX)
            .with_period(None)
    }

    /// Serializes a row into the pending `INSERT`. A failure only marks it
    /// broken: the row is kept, and `flush` replays the batch.
    async fn stream(&mut self, row: &T) {
        if self.healthy && self.inserter.write(row).await.is_err() {
            self.healthy = false;
        }
    }

    /// Inserts every buffered row now, retrying a failed insert.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut result = if self.healthy {
            self.inserter.force_commit().await.map(drop)
        } else {
            // A row failed to serialize: the replay reports the real error.
            self.inserter = Self::inserter(&self.client);
            self.healthy = true;
            self.insert().await
        };
        let mut attempt = 1;
        while let Err(e) = result {
            // Drop the broken insert (dropping aborts it); replays start afresh.
            self.inserter = Self::inserter(&self.client);
            if attempt > self.config.retries || !retryable(&e) {
                // The kept rows are no longer in the pending insert: the
                // next flush replays them all.
                self.healthy = false;
                return Err(Error::Insert {
                    table: T::TABLE,
                    attempts: attempt,
                    source: e,
                });
            }
            tracing::warn!(table = T::TABLE, attempt, error = %e, "clickhouse insert failed; retrying");
            let wait = self
                .config
                .backoff
                .saturating_mul(1 << (attempt - 1).min(10));
            tokio::time::sleep(wait).await;
            attempt += 1;
            result = self.insert().await;
        }
        self.sent += self.rows.len() as u64;
        self.rows.clear();
        self.bytes = 0;
        self.oldest = None;
        Ok(())
    }

    /// Sends the whole batch in a new `INSERT` (a replay after a failure).
    async fn insert(&self) -> ::clickhouse::error::Result<()> {
        let mut insert = self.client.insert::<T>(T::TABLE).await?;
        for row in &self.rows {
            insert.write(row).await?;
        }
        insert.end().await
    }
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
