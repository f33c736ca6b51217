//! NDJSON `_bulk` indexing, chunked by bytes, with per-item results.

use std::time::Duration;

use serde_json::{json, Value};

use super::Document;

/// Where to index and how big a request may be. Built with `with_*`.
#[derive(Clone)]
pub struct BulkConfig {
    url: String,
    auth: Option<String>,
    max_bytes: usize,
    retries: u32,
    backoff: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for BulkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkConfig")
            .field("url", &self.url)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("max_bytes", &self.max_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BulkConfig {
    pub fn new(url: impl Into<String>) -> Self {
        BulkConfig {
            url: url.into().trim_end_matches('/').to_string(),
            auth: None,
            max_bytes: 5 << 20,
            retries: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        }
    }
    /// A full `Authorization` header value (`ApiKey …` or `Basic …`).
    pub fn with_authorization(mut self, value: impl Into<String>) -> Self {
        self.auth = Some(value.into());
        self
    }
    /// A request is sent once its body reaches this many bytes.
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n.max(1);
        self
    }
    /// The longest one `_bulk` request may take, from connecting to the end
    /// of the answer (default 30 s); a timeout is retried like a network
    /// error.
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Retries of a whole request on 429, 5xx and network errors.
    pub fn with_retries(mut self, n: u32, first_backoff: Duration) -> Self {
        self.retries = n;
        self.backoff = first_backoff;
        self
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
pub enum BulkError {
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
    Backlog { docs: usize, source: Box<BulkError> },
}

impl BulkError {
    /// For an error of [`BulkIndexer::index`]: whether the document given
    /// was taken. Always `false`: `index` takes a document only when it
    /// returns `Ok`, so a document refused by any error may be indexed again
    /// without being sent twice.
    pub fn taken(&self) -> bool {
        false
    }
}

/// Buffers documents as `_bulk` NDJSON and sends them in requests of at
/// most `max_bytes`. Each document is indexed with `version_type=external`
/// when it has a version, so replaying a batch cannot go back in time.
pub struct BulkIndexer {
    http: reqwest::Client,
    config: BulkConfig,
    body: Vec<u8>,
    docs: usize,
    report: BulkReport,
}

/// Dropping an indexer that still holds documents loses them (a destructor
/// cannot await a request); it says so loudly instead of silently.
impl Drop for BulkIndexer {
    fn drop(&mut self) {
        if self.docs > 0 {
            tracing::error!(
                documents = self.docs,
                "bulk indexer dropped with unsent documents; they are lost (call flush first)"
            );
        }
    }
}

impl BulkIndexer {
    pub fn new(config: BulkConfig) -> Self {
        BulkIndexer {
            http: crate::influx::http_client(config.timeout),
            config,
            body: Vec::new(),
            docs: 0,
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
    /// would pass `max_bytes`. The document is taken only when this returns
    /// `Ok` ([`BulkError::taken`]): one refused by a value its index cannot
    /// hold, by serde, or by a backlog the server would not take, is not
    /// buffered and may be indexed again.
    pub async fn index<D: Document>(&mut self, doc: &D) -> Result<(), BulkError> {
        doc.check()?;
        let mut line = Vec::new();
        Self::encode(doc, &mut line)?;
        if !self.body.is_empty() && self.body.len() + line.len() > self.config.max_bytes {
            if let Err(e) = self.flush().await {
                return Err(BulkError::Backlog {
                    docs: self.docs,
                    source: Box::new(e),
                });
            }
        }
        self.body.extend_from_slice(&line);
        self.docs += 1;
        Ok(())
    }

    /// Sends what is buffered; per-item results accumulate in the report.
    pub async fn flush(&mut self) -> Result<(), BulkError> {
        if self.body.is_empty() {
            return Ok(());
        }
        // A copy: the buffer stays whole until the server answers, also when
        // this future is dropped half-way.
        let body = bytes::Bytes::copy_from_slice(&self.body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .post(format!("{}/_bulk", self.config.url))
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(body.clone());
            if let Some(a) = &self.config.auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            let last = match req.send().await {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) => {
                        self.report.add_response(&v);
                        break;
                    }
                    Err(e) => e.to_string(),
                },
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    format!("HTTP {}", r.status())
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    // The whole request was refused: every document in it failed.
                    let n = self.docs;
                    self.docs = 0;
                    self.body.clear();
                    self.report.failed.push(ItemError {
                        index: String::new(),
                        id: format!("<{n} documents>"),
                        status,
                        kind: "request".into(),
                        reason: text,
                    });
                    return Ok(());
                }
                Err(e) => crate::influx::describe(&e),
            };
            if attempt > self.config.retries {
                return Err(BulkError::Unavailable {
                    attempts: attempt,
                    docs: self.docs,
                    last,
                });
            }
            tokio::time::sleep(
                self.config
                    .backoff
                    .saturating_mul(1 << (attempt - 1).min(10)),
            )
            .await;
        }
        self.docs = 0;
        self.body.clear();
        Ok(())
    }

    /// The results so far, and a fresh report.
    pub fn take_report(&mut self) -> BulkReport {
        std::mem::take(&mut self.report)
    }

    /// Documents buffered and not sent yet.
    pub fn pending(&self) -> usize {
        self.docs
    }
}
