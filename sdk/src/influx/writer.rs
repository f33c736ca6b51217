//! The batching InfluxDB v2 writer: line protocol, gzip, `POST /api/v2/write`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::line::{EncodeError, LineEncoder, Point, Precision};

/// The request timeout of a writer that sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client whose every request ends within `timeout` (connecting
/// within 10 s of it at most).
pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        // Only a TLS back end that fails to start makes `build` fail; the
        // plain client then fails the same way on its first request.
        .unwrap_or_default()
}

/// A request error as a sentence: its chain of causes, and whether it was
/// the timeout (reqwest's own text says neither).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Where and how to write. Built with `with_*` methods; the token is
/// redacted from `Debug`.
#[derive(Clone)]
pub struct InfluxConfig {
    url: String,
    org: String,
    bucket: String,
    token: Option<String>,
    precision: Precision,
    batch_bytes: usize,
    batch_points: usize,
    max_age: Duration,
    buffer_bytes: usize,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    gzip: bool,
    newlines_in_strings: bool,
    /// `Some(db)`: the InfluxDB 1.x API (`POST /write?db=…`) instead of v2.
    v1_database: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("precision", &self.precision)
            .field("batch_bytes", &self.batch_bytes)
            .field("batch_points", &self.batch_points)
            .field("buffer_bytes", &self.buffer_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl InfluxConfig {
    /// `url` is the server root (`http://host:8086`); `/api/v2/write` is added.
    pub fn new(url: impl Into<String>, org: impl Into<String>, bucket: impl Into<String>) -> Self {
        InfluxConfig {
            url: url.into().trim_end_matches('/').to_string(),
            org: org.into(),
            bucket: bucket.into(),
            token: None,
            precision: Precision::Ns,
            batch_bytes: 1 << 20,
            batch_points: 5_000,
            max_age: Duration::from_secs(1),
            buffer_bytes: 8 << 20,
            retries: 5,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            gzip: true,
            newlines_in_strings: false,
            v1_database: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
    /// The InfluxDB 1.x write API (`POST /write?db=<database>`), which
    /// InfluxDB 1.x and VictoriaMetrics answer; `url` is the server root.
    pub fn v1(url: impl Into<String>, database: impl Into<String>) -> Self {
        let database = database.into();
        let mut c = InfluxConfig::new(url, "", database.clone());
        c.v1_database = Some(database);
        c
    }
    /// Lets string field values hold newlines: InfluxDB accepts them,
    /// VictoriaMetrics skips such points, so it is off by default.
    pub fn with_newlines_in_strings(mut self, on: bool) -> Self {
        self.newlines_in_strings = on;
        self
    }
    /// Sent as `Authorization: Token …`; an empty token sends no header.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }
    pub fn with_precision(mut self, p: Precision) -> Self {
        self.precision = p;
        self
    }
    /// A batch is sent once it holds this many bytes (uncompressed) …
    pub fn with_batch_bytes(mut self, n: usize) -> Self {
        self.batch_bytes = n.max(1);
        self
    }
    /// … or this many points …
    pub fn with_batch_points(mut self, n: usize) -> Self {
        self.batch_points = n.max(1);
        self
    }
    /// … or, on the next write, once its oldest point is this old.
    pub fn with_max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }
    /// The most unsent bytes held while the server fails. When full, a
    /// write waits for a flush to succeed (back-pressure) or returns its error.
    pub fn with_buffer_bytes(mut self, n: usize) -> Self {
        self.buffer_bytes = n.max(1);
        self
    }
    /// Retries of 429, 5xx and network errors, with doubling backoff from
    /// `first`, capped at `max`; a `Retry-After` header is respected (capped too).
    pub fn with_retries(mut self, n: u32, first: Duration, max: Duration) -> Self {
        self.retries = n;
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }
    /// The longest one request may take, from connecting to the end of the
    /// answer (default 30 s). A server that stops answering (a frozen
    /// process, a dead peer behind a live socket) fails the request with a
    /// timeout, which is retried like a network error.
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
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
pub enum WriteError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The server refused these points for good (a 4xx other than 429, on
    /// their own after the batch was split; see [`InfluxWriter::flush`]):
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
    Backlog {
        points: usize,
        source: Box<WriteError>,
    },
}

impl WriteError {
    /// For an error of [`InfluxWriter::write`]: whether the point given was
    /// taken (it is buffered, or was sent or handed back by this error), so
    /// writing it again would store it twice. `false` for
    /// [`Encode`](WriteError::Encode) and [`Backlog`](WriteError::Backlog).
    pub fn taken(&self) -> bool {
        !matches!(self, WriteError::Encode(_) | WriteError::Backlog { .. })
    }
}

/// Buffers points as line protocol and posts them in batches. Memory is
/// bounded by `buffer_bytes`: a full buffer makes `write` wait for a flush.
pub struct InfluxWriter {
    http: reqwest::Client,
    config: InfluxConfig,
    enc: LineEncoder,
    oldest: Option<Instant>,
    sent: u64,
    /// Lines the server refused, not reported yet.
    rejected: Rejected,
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
    fn into_error(self) -> Option<WriteError> {
        (self.points > 0).then(|| WriteError::Rejected {
            status: self.status,
            body: self.body,
            points: self.points,
            lines: self.lines.into(),
        })
    }
}

/// Dropping a writer that still holds points loses them (a destructor
/// cannot await a request); it says so loudly instead of silently.
impl Drop for InfluxWriter {
    fn drop(&mut self) {
        if self.enc.lines() > 0 {
            tracing::error!(
                points = self.enc.lines(),
                "influx writer dropped with unsent points; they are lost (call flush first)"
            );
        }
    }
}

impl InfluxWriter {
    pub fn new(config: InfluxConfig) -> Self {
        InfluxWriter {
            http: http_client(config.timeout),
            enc: LineEncoder::new(config.precision)
                .allow_newlines_in_strings(config.newlines_in_strings),
            config,
            oldest: None,
            sent: 0,
            rejected: Rejected::default(),
        }
    }

    /// Encodes a point into the batch, sending the batch when it is due.
    ///
    /// Whether the point was taken is [`WriteError::taken`]: a point that
    /// cannot be encoded ([`WriteError::Encode`]) or that finds the buffer
    /// full of points the server will not take ([`WriteError::Backlog`]) is
    /// not taken, and may be written again; a point that was taken stays
    /// buffered when the batch it joined could not be sent
    /// ([`WriteError::Unavailable`]): write it again and it is there twice.
    pub async fn write<P: Point + ?Sized>(&mut self, point: &P) -> Result<(), WriteError> {
        if self.enc.len() >= self.config.buffer_bytes {
            // Back-pressure: the caller waits for the buffer to drain.
            if let Err(e) = self.flush().await {
                return Err(WriteError::Backlog {
                    points: self.enc.lines(),
                    source: Box::new(e),
                });
            }
        }
        self.enc.encode(point)?;
        self.oldest.get_or_insert_with(Instant::now);
        if self.enc.len() >= self.config.batch_bytes
            || self.enc.lines() >= self.config.batch_points
            || self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.config.max_age)
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Flushes when the oldest buffered point has reached `max_age`: call it
    /// from a timer when writes can pause, since age is otherwise checked
    /// only on `write`.
    pub async fn flush_if_due(&mut self) -> Result<(), WriteError> {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.config.max_age)
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
    /// server refused on their own are dropped, and [`WriteError::Rejected`]
    /// hands them back. (InfluxDB 1.x writes the good lines of a request it
    /// answers 400, so some are sent twice; a point written again with the
    /// same series and time replaces itself, so nothing is doubled.)
    /// Other refusals (401, 403, 404) are the same for every point: the
    /// batch is dropped and handed back the same way.
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        if self.enc.is_empty() {
            return self.take_rejected();
        }
        // Ranges of line indexes still to send; the last is sent next.
        let mut todo = vec![0..self.enc.lines()];
        while let Some(r) = todo.pop() {
            match self.send(r.clone()).await {
                Sent::Ok => self.sent += r.len() as u64,
                Sent::Refused { status, .. } if splits(status) && r.len() > 1 => {
                    let mid = r.start + r.len() / 2;
                    todo.push(mid..r.end);
                    todo.push(r.start..mid);
                }
                Sent::Refused { status, body } => {
                    let lines = self.enc.lines_bytes(r.clone());
                    self.rejected.add(status, body, r.len(), lines);
                }
                Sent::Unavailable { attempts, last } => {
                    todo.push(r);
                    todo.reverse();
                    self.enc.retain(&todo);
                    return Err(WriteError::Unavailable {
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
    fn take_rejected(&mut self) -> Result<(), WriteError> {
        match std::mem::take(&mut self.rejected).into_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Posts lines `r` of the batch, retrying what a retry can cure.
    async fn send(&self, r: std::ops::Range<usize>) -> Sent {
        let body = bytes::Bytes::from(self.body(self.enc.lines_bytes(r)));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (retry_after, last) = match self.post(body.clone()).await {
                Ok(resp) if resp.status().is_success() => return Sent::Ok,
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    if !(status.as_u16() == 429 || status.is_server_error()) {
                        return Sent::Refused {
                            status: status.as_u16(),
                            body: text,
                        };
                    }
                    (retry_after, format!("HTTP {status}: {text}"))
                }
                Err(e) => (None, describe(&e)),
            };
            if attempt > self.config.retries {
                return Sent::Unavailable {
                    attempts: attempt,
                    last,
                };
            }
            let backoff = self
                .config
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16));
            let wait = retry_after.unwrap_or(backoff).min(self.config.max_backoff);
            tracing::warn!(attempt, ?wait, error = %last, "influx write failed; retrying");
            tokio::time::sleep(wait).await;
        }
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
