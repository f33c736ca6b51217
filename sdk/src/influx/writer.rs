//! The batching InfluxDB v2 writer: line protocol, gzip, `POST /api/v2/write`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::line::{EncodeError, LineEncoder, Point, Precision};

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
        }
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
pub enum WriteError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The server refused the batch for good (4xx other than 429): its
    /// points are not kept, and this says how many they were.
    #[error("the server rejected {points} points with HTTP {status}: {body}")]
    Rejected {
        status: u16,
        body: String,
        points: usize,
    },
    /// Retries ran out; the points stay buffered for the next flush.
    #[error("write failed after {attempts} attempts ({points} points kept): {last}")]
    Unavailable {
        attempts: u32,
        points: usize,
        last: String,
    },
}

/// Buffers points as line protocol and posts them in batches. Memory is
/// bounded by `buffer_bytes`: a full buffer makes `write` wait for a flush.
pub struct InfluxWriter {
    http: reqwest::Client,
    config: InfluxConfig,
    enc: LineEncoder,
    oldest: Option<Instant>,
    sent: u64,
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
            http: reqwest::Client::new(),
            enc: LineEncoder::new(config.precision)
                .allow_newlines_in_strings(config.newlines_in_strings),
            config,
            oldest: None,
            sent: 0,
        }
    }

    /// Encodes a point into the batch, sending the batch when it is due.
    /// A point that cannot be encoded is refused with its reason.
    pub async fn write<P: Point + ?Sized>(&mut self, point: &P) -> Result<(), WriteError> {
        if self.enc.len() >= self.config.buffer_bytes {
            // Back-pressure: the caller waits for the buffer to drain.
            self.flush().await?;
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
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        if self.enc.is_empty() {
            return Ok(());
        }
        let points = self.enc.lines();
        let body = if self.config.gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(self.enc.len() / 4),
                flate2::Compression::fast(),
            );
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(self.enc.as_bytes());
            gz.finish().unwrap_or_default()
        } else {
            self.enc.as_bytes().to_vec()
        };
        let body = bytes::Bytes::from(body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (retry_after, last) = match self.post(body.clone()).await {
                Ok(resp) if resp.status().is_success() => break,
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
                        self.enc.clear();
                        self.oldest = None;
                        return Err(WriteError::Rejected {
                            status: status.as_u16(),
                            body: text,
                            points,
                        });
                    }
                    (retry_after, format!("HTTP {status}: {text}"))
                }
                Err(e) => (None, e.to_string()),
            };
            if attempt > self.config.retries {
                return Err(WriteError::Unavailable {
                    attempts: attempt,
                    points,
                    last,
                });
            }
            let backoff = self
                .config
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16));
            let wait = retry_after.unwrap_or(backoff).min(self.config.max_backoff);
            tracing::warn!(attempt, ?wait, error = %last, "influx write failed; retrying");
            tokio::time::sleep(wait).await;
        }
        self.sent += points as u64;
        self.enc.clear();
        self.oldest = None;
        Ok(())
    }

    async fn post(&self, body: bytes::Bytes) -> reqwest::Result<reqwest::Response> {
        let c = &self.config;
        let mut req = self
            .http
            .post(format!("{}/api/v2/write", c.url))
            .query(&[
                ("org", c.org.as_str()),
                ("bucket", c.bucket.as_str()),
                ("precision", c.precision.as_str()),
            ])
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
