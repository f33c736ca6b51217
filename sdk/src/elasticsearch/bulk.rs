//! NDJSON `_bulk` indexing, chunked by bytes, with per-item results.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Document;
use crate::writer::http::{describe, retry_after};
use crate::writer::{Retry, Settings};

/// Where to index, with the [`Settings`] every writer shares (set with the
/// same `with_*` methods; a document counts as a row). Defaults: 5 MiB a
/// request, no limit on documents, 1 s, 3 retries from 200 ms up to 30 s,
/// 30 s timeout. The authorization is redacted from `Debug`.
#[derive(Clone)]
pub struct WriterConfig {
    url: String,
    auth: Option<String>,
    settings: Settings,
}

/// The old name of [`WriterConfig`].
#[deprecated(
    note = "use `strata_sdk::elasticsearch::WriterConfig`, named as every writer's config"
)]
pub type BulkConfig = WriterConfig;

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("url", &self.url)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WriterConfig {
    pub fn new(url: impl Into<String>) -> Self {
        WriterConfig {
            url: url.into().trim_end_matches('/').to_string(),
            auth: None,
            settings: Settings {
                max_rows: usize::MAX,
                max_bytes: 5 << 20,
                max_age: Duration::from_secs(1),
                retry: Retry::new(3, Duration::from_millis(200), Duration::from_secs(30)),
                timeout: crate::writer::DEFAULT_TIMEOUT,
                store: None,
            },
        }
    }

    crate::writer::settings_methods!();

    /// A full `Authorization` header value (`ApiKey …` or `Basic …`).
    pub fn with_authorization(mut self, value: impl Into<String>) -> Self {
        self.auth = Some(value.into());
        self
    }
    /// Retries of a whole request on 429, 5xx and network errors.
    #[deprecated(note = "use `with_retry(Retry::new(n, first, max))`, the same on every writer")]
    pub fn with_retries(self, n: u32, first_backoff: Duration) -> Self {
        self.with_retry(Retry::new(
            n,
            first_backoff,
            first_backoff.saturating_mul(1024),
        ))
    }
}

/// One document the server did not index.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemError {
    pub index: String,
    pub id: String,
    pub status: u16,
    pub kind: String,
    pub reason: String,
}

/// What one or more `_bulk` requests did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkReport {
    /// Created or updated.
    pub indexed: usize,
    /// Skipped because the index already held this or a newer version
    /// (external versioning): a replay, not a failure.
    pub stale: usize,
    /// Every other per-item failure, reported one by one.
    pub failed: Vec<ItemError>,
}

impl BulkReport {
    /// Reads a `_bulk` response body into the report.
    pub fn add_response(&mut self, body: &Value) {
        let Some(items) = body["items"].as_array() else {
            return;
        };
        for item in items {
            let Some((_, r)) = item.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            let status = r["status"].as_u64().unwrap_or(0) as u16;
            let kind = r["error"]["type"].as_str().unwrap_or_default();
            if (200..300).contains(&status) {
                self.indexed += 1;
            } else if status == 409 && kind == "version_conflict_engine_exception" {
                self.stale += 1;
            } else {
                self.failed.push(ItemError {
                    index: r["_index"].as_str().unwrap_or_default().to_string(),
                    id: r["_id"].as_str().unwrap_or_default().to_string(),
                    status,
                    kind: kind.to_string(),
                    reason: r["error"]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("document cannot be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A value the index cannot hold exactly ([`Document::check`]): the
    /// document was not taken.
    #[error("document refused: {0}")]
    Value(#[from] crate::ValueError),
    /// Retries ran out; the documents stay buffered for the next flush.
    #[error("bulk request failed after {attempts} attempts ({docs} documents kept): {last}")]
    Unavailable {
        attempts: u32,
        docs: usize,
        last: String,
    },
    /// From `index`: the buffered documents had to be sent first and could
    /// not be, so the document given was **not** taken (index it again later).
    #[error("the indexer holds {docs} unsent documents and could not send them, so this document was not taken: {source}")]
    Backlog { docs: usize, source: Box<Error> },
}

impl Error {
    /// For an error of [`Writer::write`]: whether the document given
    /// was taken. Always `false`: `index` takes a document only when it
    /// returns `Ok`, so a document refused by any error may be indexed again
    /// without being sent twice.
    pub fn taken(&self) -> bool {
        false
    }
}

/// The old name of [`Writer`].
#[deprecated(note = "use `strata_sdk::elasticsearch::Writer`, named as every writer")]
pub type BulkIndexer = Writer;

/// The old name of [`Error`].
#[deprecated(note = "use `strata_sdk::elasticsearch::Error`, named as every writer's error")]
pub type BulkError = Error;

/// Buffers documents as `_bulk` NDJSON and sends them in requests of at
/// most `max_bytes` (and `max_rows` documents, and by age). Each document
/// is indexed with `version_type=external` when it has a version, so
/// replaying a batch cannot go back in time.
pub struct Writer {
    http: reqwest::Client,
    config: WriterConfig,
    body: Vec<u8>,
    docs: usize,
    oldest: Option<Instant>,
    sent: u64,
    meter: crate::writer::Meter,
    report: BulkReport,
}

/// Dropping an indexer that still holds documents loses them (a destructor
/// cannot await a request); it says so loudly instead of silently.
impl Drop for Writer {
    fn drop(&mut self) {
        if self.docs > 0 {
            tracing::error!(
                documents = self.docs,
                "bulk indexer dropped with unsent documents; they are lost (call flush first)"
            );
        }
    }
}

impl Writer {
    pub fn new(config: WriterConfig) -> Self {
        let meter = crate::writer::Meter::new("elasticsearch", config.settings.store(), "_bulk");
        Writer {
            http: crate::writer::http::client(config.settings.timeout),
            config,
            body: Vec::new(),
            docs: 0,
            oldest: None,
            sent: 0,
            meter,
            report: BulkReport::default(),
        }
    }

    /// Appends the action and source lines of one document to `out`.
    pub fn encode<D: Document>(doc: &D, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut meta = json!({ "_index": D::ALIAS, "_id": doc.id() });
        if let Some(v) = doc.version() {
            meta["version"] = json!(v);
            meta["version_type"] = json!("external");
        }
        serde_json::to_writer(&mut *out, &json!({ "index": meta }))?;
        out.push(b'\n');
        serde_json::to_writer(&mut *out, doc)?;
        out.push(b'\n');
        Ok(())
    }

    /// Buffers a document; sends the buffered ones first when adding it
    /// would pass `max_bytes`, or when they reach `max_rows` or `max_age`.
    /// The document is taken only when this returns `Ok`
    /// ([`Error::taken`]): one refused by a value its index cannot hold, by
    /// serde, or by a backlog the server would not take, is not buffered and
    /// may be written again. A failure to send the batch after taking it is
    /// not an error of this call: the documents stay buffered, and the next
    /// `write` or `flush` reports it.
    pub async fn write<D: Document>(&mut self, doc: &D) -> Result<(), Error> {
        doc.check()?;
        let mut line = Vec::new();
        Self::encode(doc, &mut line)?;
        if self.due(line.len()) {
            if let Err(e) = self.flush().await {
                return Err(Error::Backlog {
                    docs: self.docs,
                    source: Box::new(e),
                });
            }
        }
        self.body.extend_from_slice(&line);
        self.docs += 1;
        self.oldest.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Whether the buffered documents go out before one of `len` bytes joins
    /// them: it would pass `max_bytes`, or the batch is full or old.
    fn due(&self, len: usize) -> bool {
        let s = &self.config.settings;
        !self.body.is_empty()
            && (self.body.len() + len > s.max_bytes
                || self.docs >= s.max_rows
                || self.oldest.is_some_and(|t| t.elapsed() >= s.max_age))
    }

    /// The old name of [`write`](Self::write).
    #[deprecated(note = "use `write`, the same on every writer")]
    pub async fn index<D: Document>(&mut self, doc: &D) -> Result<(), Error> {
        self.write(doc).await
    }

    /// Flushes when the oldest buffered document has reached `max_age`:
    /// call it from a timer.
    pub async fn flush_if_due(&mut self) -> Result<(), Error> {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.config.settings.max_age)
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is buffered; per-item results accumulate in the report.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.body.is_empty() {
            return Ok(());
        }
        // A copy: the buffer stays whole until the server answers, also when
        // this future is dropped half-way.
        let body = bytes::Bytes::copy_from_slice(&self.body);
        let started = Instant::now();
        self.meter.backlog(self.docs);
        let (result, attempts) = crate::writer::retry(
            &self.config.settings.retry,
            &self.meter,
            || self.attempt(body.clone()),
            |f: &Failure| f.retry,
            |f: &Failure| f.retry_after,
        )
        .await;
        self.meter.flushed(started);
        match result {
            Ok(v) => {
                self.meter.sent(self.docs as u64, body.len() as u64);
                self.report.add_response(&v)
            }
            Err(Failure {
                retry: false,
                status,
                text,
                ..
            }) => {
                // The whole request was refused: every document in it failed.
                self.meter.failed("refused");
                self.report.failed.push(ItemError {
                    index: String::new(),
                    id: format!("<{} documents>", self.docs),
                    status,
                    kind: "request".into(),
                    reason: text,
                });
            }
            Err(f) => {
                self.meter.failed("unavailable");
                return Err(Error::Unavailable {
                    attempts,
                    docs: self.docs,
                    last: f.to_string(),
                });
            }
        }
        self.sent += self.docs as u64;
        self.meter.backlog(0);
        self.docs = 0;
        self.body.clear();
        self.oldest = None;
        Ok(())
    }

    /// One `_bulk` request: the answer on 2xx; a 429, a 5xx, an unreadable
    /// answer and a network error or timeout are worth a retry (external
    /// versions make a resent document a no-op), any other answer is not.
    async fn attempt(&self, body: bytes::Bytes) -> Result<Value, Failure> {
        let mut req = self
            .http
            .post(format!("{}/_bulk", self.config.url))
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if let Some(a) = &self.config.auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let failure = |status, text| Failure {
            retry: true,
            retry_after: None,
            status,
            text,
        };
        let resp = req.send().await.map_err(|e| failure(0, describe(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json::<Value>()
                .await
                .map_err(|e| failure(status.as_u16(), describe(&e)));
        }
        let retry_after = retry_after(&resp);
        Err(Failure {
            retry: status.as_u16() == 429 || status.is_server_error(),
            retry_after,
            status: status.as_u16(),
            text: resp.text().await.unwrap_or_default(),
        })
    }

    /// The results so far, and a fresh report.
    pub fn take_report(&mut self) -> BulkReport {
        std::mem::take(&mut self.report)
    }

    /// Documents buffered and not sent yet.
    pub fn pending(&self) -> usize {
        self.docs
    }

    /// Documents sent so far (indexed or reported in the report).
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

/// Why one request failed.
struct Failure {
    /// Whether a retry can cure it.
    retry: bool,
    retry_after: Option<Duration>,
    /// The HTTP status; 0 when there was no answer.
    status: u16,
    /// The answer's body, or the error.
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
