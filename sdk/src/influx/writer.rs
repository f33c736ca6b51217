//! The batching InfluxDB v2 writer: line protocol, gzip, `POST /api/v2/write`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::line::{EncodeError, LineEncoder, Point, Precision};
use crate::writer::http::{describe, retry_after};
use crate::writer::{Retry, Settings};

/// Where and how to write, with the [`Settings`] every writer shares (set
/// with the same `with_*` methods). Defaults: 5,000 points, 1 MiB, 1 s,
/// 5 retries from 200 ms up to 30 s, 30 s timeout, an 8 MiB buffer, gzip.
/// The token is redacted from `Debug`.
#[derive(Clone)]
pub struct WriterConfig {
    url: String,
    org: String,
    bucket: String,
    token: Option<String>,
    precision: Precision,
    settings: Settings,
    buffer_bytes: usize,
    gzip: bool,
    newlines_in_strings: bool,
    victoriametrics: bool,
    /// `Some(db)`: the InfluxDB 1.x API (`POST /write?db=…`) instead of v2.
    v1_database: Option<String>,
}

/// The old name of [`WriterConfig`].
#[deprecated(note = "use `strata_sdk::influx::WriterConfig`, named as every writer's config")]
pub type InfluxConfig = WriterConfig;

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("v1_database", &self.v1_database)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("precision", &self.precision)
            .field("settings", &self.settings)
            .field("buffer_bytes", &self.buffer_bytes)
            .finish_non_exhaustive()
    }
}

impl WriterConfig {
    /// `url` is the server root (`http://host:8086`); `/api/v2/write` is added.
    pub fn new(url: impl Into<String>, org: impl Into<String>, bucket: impl Into<String>) -> Self {
        WriterConfig {
            url: url.into().trim_end_matches('/').to_string(),
            org: org.into(),
            bucket: bucket.into(),
            token: None,
            precision: Precision::Ns,
            settings: Settings {
                max_rows: 5_000,
                max_bytes: 1 << 20,
                max_age: Duration::from_secs(1),
                retry: Retry::new(5, Duration::from_millis(200), Duration::from_secs(30)),
                timeout: crate::writer::DEFAULT_TIMEOUT,
                store: None,
            },
            buffer_bytes: 8 << 20,
            gzip: true,
            newlines_in_strings: false,
            victoriametrics: false,
            v1_database: None,
        }
    }
    /// The InfluxDB 1.x write API (`POST /write?db=<database>`), which
    /// InfluxDB 1.x and VictoriaMetrics answer; `url` is the server root.
    pub fn v1(url: impl Into<String>, database: impl Into<String>) -> Self {
        let database = database.into();
        let mut c = WriterConfig::new(url, "", database.clone());
        c.v1_database = Some(database);
        c
    }

    crate::writer::settings_methods!();

    /// Lets string field values hold newlines: InfluxDB accepts them,
    /// VictoriaMetrics skips such points, so it is off by default.
    pub fn with_newlines_in_strings(mut self, on: bool) -> Self {
        self.newlines_in_strings = on;
        self
    }
    /// Sent as `Authorization: Token …`; an empty token sends no header.
    /// The server is VictoriaMetrics: points are encoded so that nothing
    /// it would change or drop is sent ([`LineEncoder::for_victoriametrics`]).
    pub fn with_victoriametrics(mut self, on: bool) -> Self {
        self.victoriametrics = on;
        self
    }
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }
    pub fn with_precision(mut self, p: Precision) -> Self {
        self.precision = p;
        self
    }
    /// The old name of [`with_max_bytes`](Self::with_max_bytes).
    #[deprecated(note = "use `with_max_bytes`, the same on every writer")]
    pub fn with_batch_bytes(self, n: usize) -> Self {
        self.with_max_bytes(n)
    }
    /// The old name of [`with_max_rows`](Self::with_max_rows).
    #[deprecated(note = "use `with_max_rows`, the same on every writer")]
    pub fn with_batch_points(self, n: usize) -> Self {
        self.with_max_rows(n)
    }
    /// The most unsent bytes held while the server fails. When full, a
    /// write waits for a flush to succeed (back-pressure) or returns its error.
    pub fn with_buffer_bytes(mut self, n: usize) -> Self {
        self.buffer_bytes = n.max(1);
        self
    }
    /// Retries of 429, 5xx and network errors, with doubling backoff from
    /// `first`, capped at `max`; a `Retry-After` header is respected (capped too).
    #[deprecated(note = "use `with_retry(Retry::new(n, first, max))`, the same on every writer")]
    pub fn with_retries(self, n: u32, first: Duration, max: Duration) -> Self {
        self.with_retry(Retry::new(n, first, max))
    }
    pub fn with_gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }
    pub fn precision(&self) -> Precision {
        self.precision
    }
}

/// Why a write or flush failed. No point is dropped without one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The server refused these points for good (a 4xx other than 429, on
    /// their own after the batch was split; see [`Writer::flush`]):
    /// they are not kept. Every other point of the batch was sent.
    #[error("the server rejected {points} points with HTTP {status}: {body}")]
    Rejected {
        /// The HTTP status of the first refusal.
        status: u16,
        /// The server's answer to the first refusal.
        body: String,
        /// How many points were refused.
        points: usize,
        /// The refused points as line protocol, one per line, for the
        /// caller to inspect, log or set aside.
        lines: bytes::Bytes,
    },
    /// Retries ran out; the points stay buffered for the next flush. From
    /// `write`, the point given was taken: it is among them.
    #[error("write failed after {attempts} attempts ({points} points kept): {last}")]
    Unavailable {
        attempts: u32,
        points: usize,
        last: String,
    },
    /// From `write`: the buffer is full and could not be sent, so the point
    /// given was **not** taken (write it again later). `points` are held.
    #[error("the writer holds {points} unsent points and could not send them, so this point was not taken: {source}")]
    Backlog { points: usize, source: Box<Error> },
}

impl Error {
    /// For an error of [`Writer::write`]: whether the point given was
    /// taken (it is buffered, or was sent or handed back by this error), so
    /// writing it again would store it twice. `false` for
    /// [`Encode`](Error::Encode) and [`Backlog`](Error::Backlog).
    pub fn taken(&self) -> bool {
        !matches!(self, Error::Encode(_) | Error::Backlog { .. })
    }
}

/// The old name of [`Writer`].
#[deprecated(note = "use `strata_sdk::influx::Writer`, named as every writer")]
pub type InfluxWriter = Writer;

/// The old name of [`Error`].
#[deprecated(note = "use `strata_sdk::influx::Error`, named as every writer's error")]
pub type WriteError = Error;

/// Buffers points as line protocol and posts them in batches. Memory is
/// bounded by `buffer_bytes`: a full buffer makes `write` wait for a flush.
pub struct Writer {
    http: reqwest::Client,
    config: WriterConfig,
    enc: LineEncoder,
    oldest: Option<Instant>,
    sent: u64,
    meter: crate::writer::Meter,
    /// Lines the server refused, not reported yet.
    rejected: Rejected,
}

/// Why one request failed.
struct Failure {
    /// Whether a retry can cure it.
    retry: bool,
    retry_after: Option<Duration>,
    /// The HTTP status; 0 when there was no answer.
    status: u16,
    /// The answer's body, or the network error.
    text: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            0 => f.write_str(&self.text),
            s => write!(f, "HTTP {s}: {}", self.text),
        }
    }
}

/// What one request (with its retries) came to.
enum Sent {
    Ok,
    /// A 4xx other than 429: sending the same lines again cannot help.
    Refused {
        status: u16,
        body: String,
    },
    /// Retries ran out on 429, 5xx, network errors or timeouts.
    Unavailable {
        attempts: u32,
        last: String,
    },
}

/// Statuses that may be caused by some lines only, so that a split helps:
/// a line InfluxDB cannot parse or a field type conflict (400), a request
/// too large (413), points outside the retention period (422).
fn splits(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

/// The lines the server refused during a flush.
#[derive(Default)]
struct Rejected {
    status: u16,
    body: String,
    points: usize,
    lines: Vec<u8>,
}

impl Rejected {
    fn add(&mut self, status: u16, body: String, points: usize, lines: &[u8]) {
        if self.points == 0 {
            self.status = status;
            self.body = body;
        }
        self.points += points;
        self.lines.extend_from_slice(lines);
    }
    fn into_error(self) -> Option<Error> {
        (self.points > 0).then(|| Error::Rejected {
            status: self.status,
            body: self.body,
            points: self.points,
            lines: self.lines.into(),
        })
    }
}

/// Dropping a writer that still holds points loses them (a destructor
/// cannot await a request); it says so loudly instead of silently.
impl Drop for Writer {
    fn drop(&mut self) {
        if self.enc.lines() > 0 {
            tracing::error!(
                points = self.enc.lines(),
                "influx writer dropped with unsent points; they are lost (call flush first)"
            );
        }
    }
}

impl Writer {
    pub fn new(config: WriterConfig) -> Self {
        Writer {
            http: crate::writer::http::client(config.settings.timeout),
            enc: LineEncoder::new(config.precision)
                .allow_newlines_in_strings(config.newlines_in_strings)
                .for_victoriametrics(config.victoriametrics),
            meter: crate::writer::Meter::new(
                "influxdb",
                config.settings.store(),
                config
                    .v1_database
                    .clone()
                    .unwrap_or_else(|| config.bucket.clone()),
            ),
            config,
            oldest: None,
            sent: 0,
            rejected: Rejected::default(),
        }
    }

    /// Encodes a point into the batch, sending the batch when it is due.
    ///
    /// Whether the point was taken is [`Error::taken`]: a point that
    /// cannot be encoded ([`Error::Encode`]) or that finds the buffer
    /// full of points the server will not take ([`Error::Backlog`]) is
    /// not taken, and may be written again; a point that was taken stays
    /// buffered when the batch it joined could not be sent
    /// ([`Error::Unavailable`]): write it again and it is there twice.
    pub async fn write<P: Point + ?Sized>(&mut self, point: &P) -> Result<(), Error> {
        if self.enc.len() >= self.config.buffer_bytes {
            // Back-pressure: the caller waits for the buffer to drain.
            if let Err(e) = self.flush().await {
                return Err(Error::Backlog {
                    points: self.enc.lines(),
                    source: Box::new(e),
                });
            }
        }
        self.enc.encode(point)?;
        self.oldest.get_or_insert_with(Instant::now);
        if self.enc.len() >= self.config.settings.max_bytes
            || self.enc.lines() >= self.config.settings.max_rows
            || self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.config.settings.max_age)
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Flushes when the oldest buffered point has reached `max_age`: call it
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

    /// Points buffered and not yet accepted by the server.
    pub fn pending(&self) -> usize {
        self.enc.lines()
    }

    /// Points the server accepted so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends every buffered point now.
    ///
    /// A request the server refuses as bad (HTTP 400, 413 or 422: a line it
    /// cannot parse, a field type conflict, a request too large) is split in
    /// two and each half sent on its own, down to single lines, so one bad
    /// point never costs the good points of its batch: only the lines the
    /// server refused on their own are dropped, and [`Error::Rejected`]
    /// hands them back. (InfluxDB 1.x writes the good lines of a request it
    /// answers 400, so some are sent twice; a point written again with the
    /// same series and time replaces itself, so nothing is doubled.)
    /// Other refusals (401, 403, 404) are the same for every point: the
    /// batch is dropped and handed back the same way.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.enc.is_empty() {
            return self.take_rejected();
        }
        let started = Instant::now();
        self.meter.backlog(self.enc.lines());
        let out = self.flush_lines().await;
        self.meter.flushed(started);
        self.meter.backlog(self.enc.lines());
        out
    }

    async fn flush_lines(&mut self) -> Result<(), Error> {
        // Ranges of line indexes still to send; the last is sent next.
        let mut todo = Vec::new();
        todo.push(0..self.enc.lines());
        while let Some(r) = todo.pop() {
            match self.send(r.clone()).await {
                Sent::Ok => self.sent += r.len() as u64,
                Sent::Refused { status, .. } if splits(status) && r.len() > 1 => {
                    let mid = r.start + r.len() / 2;
                    todo.push(mid..r.end);
                    todo.push(r.start..mid);
                }
                Sent::Refused { status, body } => {
                    self.meter.failed("refused");
                    let lines = self.enc.lines_bytes(r.clone());
                    self.rejected.add(status, body, r.len(), lines);
                }
                Sent::Unavailable { attempts, last } => {
                    self.meter.failed("unavailable");
                    todo.push(r);
                    todo.reverse();
                    self.enc.retain(&todo);
                    return Err(Error::Unavailable {
                        attempts,
                        points: self.enc.lines(),
                        last,
                    });
                }
            }
        }
        self.enc.clear();
        self.oldest = None;
        self.take_rejected()
    }

    /// The lines the server refused since the last report, as an error.
    fn take_rejected(&mut self) -> Result<(), Error> {
        match std::mem::take(&mut self.rejected).into_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Posts lines `r` of the batch, retrying what a retry can cure.
    async fn send(&self, r: std::ops::Range<usize>) -> Sent {
        let lines = r.len() as u64;
        let body = bytes::Bytes::from(self.body(self.enc.lines_bytes(r)));
        let (result, attempts) = crate::writer::retry(
            &self.config.settings.retry,
            &self.meter,
            || self.attempt(body.clone()),
            |f: &Failure| f.retry,
            |f: &Failure| f.retry_after,
        )
        .await;
        match result {
            Ok(()) => {
                self.meter.sent(lines, body.len() as u64);
                Sent::Ok
            }
            Err(Failure {
                retry: false,
                status,
                text,
                ..
            }) => Sent::Refused { status, body: text },
            Err(f) => Sent::Unavailable {
                attempts,
                last: f.to_string(),
            },
        }
    }

    /// One request: `Ok` on 2xx; a 429, a 5xx and a network error or
    /// timeout are worth a retry, any other answer is not.
    async fn attempt(&self, body: bytes::Bytes) -> Result<(), Failure> {
        let resp = self.post(body).await.map_err(|e| Failure {
            retry: true,
            retry_after: None,
            status: 0,
            text: describe(&e),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after(&resp);
        Err(Failure {
            retry: status.as_u16() == 429 || status.is_server_error(),
            retry_after,
            status: status.as_u16(),
            text: resp.text().await.unwrap_or_default(),
        })
    }

    /// The request body for `lines`: gzip-compressed when configured.
    fn body(&self, lines: &[u8]) -> Vec<u8> {
        if !self.config.gzip {
            return lines.to_vec();
        }
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(lines.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(lines);
        gz.finish().unwrap_or_default()
    }

    async fn post(&self, body: bytes::Bytes) -> reqwest::Result<reqwest::Response> {
        let c = &self.config;
        let mut req = match &c.v1_database {
            Some(db) => self
                .http
                .post(format!("{}/write", c.url))
                .query(&[("db", db.as_str()), ("precision", c.precision.as_v1_str())]),
            None => self.http.post(format!("{}/api/v2/write", c.url)).query(&[
                ("org", c.org.as_str()),
                ("bucket", c.bucket.as_str()),
                ("precision", c.precision.as_str()),
            ]),
        }
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body);
        if c.gzip {
            req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        if let Some(t) = &c.token {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Token {t}"));
        }
        req.send().await
    }
}
