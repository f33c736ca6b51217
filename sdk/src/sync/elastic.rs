//! The Elasticsearch target: `_bulk` requests with `_id` = the key and
//! external versions (`external_gte`) = the commit LSN, deletes as
//! versioned deletes. An older replay is refused by Elasticsearch with a
//! version conflict (409), which is success here: a newer version is
//! already there. `external_gte` rather than `external` so that two
//! changes of one key in one transaction (the same version) end as the
//! last one.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::cell::{self, Cell};
use super::error::SyncError;
use super::spec::{ElasticIndex, TableSpec};

/// One Elasticsearch cluster of a pipeline.
#[derive(Clone)]
pub struct Elastic {
    pub store: String,
    base: String,
    http: reqwest::Client,
    pub indexes: Vec<ElasticIndex>,
}

impl Elastic {
    /// A client for the cluster at `url`.
    pub fn new(store: &str, url: &str, indexes: Vec<ElasticIndex>) -> Result<Elastic, SyncError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| SyncError::Config(format!("HTTP client: {e}")))?;
        Ok(Elastic {
            store: store.to_string(),
            base: url.trim_end_matches('/').to_string(),
            http,
            indexes,
        })
    }

    fn err(&self, message: impl Into<String>) -> SyncError {
        SyncError::Target {
            target: self.store.clone(),
            message: message.into(),
        }
    }

    /// The index of a pipeline table at this target, if any.
    pub fn index_for(&self, table: usize) -> Option<usize> {
        self.indexes.iter().position(|t| t.table == table)
    }

    /// Creates the indexes that do not exist yet (`PUT /<index>` with the
    /// generated mappings; "already exists" is success).
    pub async fn ensure(&self) -> Result<(), SyncError> {
        for ix in &self.indexes {
            let url = format!("{}/{}", self.base, urlencode(&ix.index));
            let head = self
                .http
                .head(&url)
                .send()
                .await
                .map_err(|e| self.err(e.to_string()))?;
            if head.status().is_success() {
                continue;
            }
            if let Some(alias) = &ix.alias {
                let url = format!("{}/_alias/{}", self.base, urlencode(alias));
                let r = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| self.err(e.to_string()))?;
                if r.status().is_success() {
                    let held: Value = r.json().await.unwrap_or(Value::Null);
                    let old: Vec<String> = held
                        .as_object()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default();
                    return Err(SyncError::SchemaChanged {
                        table: ix.index.clone(),
                        reason: format!(
                            "the mapping changed: alias `{alias}` points to {old:?}, the schema now needs index `{}`; copy into the new index with `strata sync drop` then `strata sync run` (then move the alias)",
                            ix.index
                        ),
                    });
                }
            }
            let resp = self
                .http
                .put(&url)
                .json(&ix.create_body)
                .send()
                .await
                .map_err(|e| self.err(e.to_string()))?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() && !text.contains("resource_already_exists_exception") {
                return Err(self.err(format!(
                    "create index `{}`: HTTP {status}: {text}",
                    ix.index
                )));
            }
        }
        Ok(())
    }

    /// The document id of a row: the key's text (parts joined by `/`).
    pub fn doc_id(spec: &TableSpec, cells: &[Cell]) -> String {
        spec.key_indexes()
            .iter()
            .map(|&i| cell::key_text(&cells[i]))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Appends one action (and its document) to a bulk body; a value JSON
    /// cannot hold ([`cell::to_json`]) appends nothing and is
    /// [`SyncError::Value`] naming the column.
    pub fn push(
        &self,
        body: &mut Vec<u8>,
        spec: &TableSpec,
        ix: usize,
        cells: &[Cell],
        version: u64,
        deleted: bool,
    ) -> Result<(), SyncError> {
        let mut doc = Map::new();
        if !deleted {
            for (c, v) in spec.columns.iter().zip(cells) {
                let value = cell::to_json(v).map_err(|reason| SyncError::Value {
                    table: spec.source_table.clone(),
                    column: c.name.clone(),
                    reason,
                })?;
                doc.insert(c.name.clone(), value);
            }
        }
        let index = &self.indexes[ix].index;
        let id = Self::doc_id(spec, cells);
        let meta =
            json!({"_index": index, "_id": id, "version": version, "version_type": "external_gte"});
        let action = if deleted {
            json!({"delete": meta})
        } else {
            json!({"index": meta})
        };
        body.extend_from_slice(action.to_string().as_bytes());
        body.push(b'\n');
        if !deleted {
            body.extend_from_slice(Value::Object(doc).to_string().as_bytes());
            body.push(b'\n');
        }
        Ok(())
    }

    /// Sends a bulk body, retrying while the cluster is down or answers
    /// 429/5xx, or some items failed for a reason other than a version
    /// conflict.
    pub async fn bulk(&self, body: &[u8]) -> Result<(), SyncError> {
        if body.is_empty() {
            return Ok(());
        }
        super::retry::forever("Elasticsearch bulk", || async {
            let resp = self
                .http
                .post(format!("{}/_bulk", self.base))
                .header("content-type", "application/x-ndjson")
                .body(body.to_vec())
                .send()
                .await
                .map_err(|e| self.err(e.to_string()))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| self.err(e.to_string()))?;
            if !status.is_success() {
                return Err(self.err(format!(
                    "HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                )));
            }
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| self.err(format!("bulk answer is not JSON: {e}")))?;
            if v["errors"].as_bool() == Some(true) {
                for item in v["items"].as_array().into_iter().flatten() {
                    let op = item
                        .as_object()
                        .and_then(|o| o.values().next())
                        .cloned()
                        .unwrap_or(Value::Null);
                    let st = op["status"].as_u64().unwrap_or(0);
                    // 409: a newer version is there already; 404: deleting what is gone.
                    if !(200..300).contains(&st) && st != 409 && st != 404 {
                        return Err(self.err(format!("bulk item failed: {op}")));
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
