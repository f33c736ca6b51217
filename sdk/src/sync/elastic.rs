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

    /// The document of a row: every column under its name, as
    /// [`cell::to_json`] writes it; a value JSON cannot hold is
    /// [`SyncError::Value`] naming the column. The one encoder of the
    /// writes and of `verify`.
    pub fn document(spec: &TableSpec, cells: &[Cell]) -> Result<Map<String, Value>, SyncError> {
        let mut doc = Map::new();
        for (c, v) in spec.columns.iter().zip(cells) {
            let value = cell::to_json(v).map_err(|reason| SyncError::Value {
                table: spec.source_table.clone(),
                column: c.name.clone(),
                reason,
            })?;
            doc.insert(c.name.clone(), value);
        }
        Ok(doc)
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
        let doc = match deleted {
            true => Map::new(),
            false => Self::document(spec, cells)?,
        };
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

/// Documents per page of a point-in-time read (`TRUNCATE`, `verify`):
/// one page is held at a time.
pub const PAGE: usize = 1_000;

impl Elastic {
    /// One JSON request; an answer other than 2xx is an error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SyncError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.err(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.err(e.to_string()))?;
        if !status.is_success() {
            return Err(self.err(format!(
                "{path}: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Makes every write so far visible to searches of `index` (an index
    /// or an alias).
    pub async fn refresh(&self, index: &str) -> Result<(), SyncError> {
        let path = format!("/{}/_refresh", urlencode(index));
        self.call(reqwest::Method::POST, &path, None).await?;
        Ok(())
    }

    /// Opens a point in time on `index` (an index or an alias) for
    /// reading it in pages ([`Pit::page`]); Elasticsearch 7.12 or later
    /// (`_shard_doc`).
    pub async fn open_pit(&self, index: &str) -> Result<Pit<'_>, SyncError> {
        let path = format!("/{}/_pit?keep_alive=5m", urlencode(index));
        let v = self.call(reqwest::Method::POST, &path, None).await?;
        let id =
            (v["id"].as_str()).ok_or_else(|| self.err(format!("no point-in-time id in {v}")))?;
        Ok(Pit {
            es: self,
            id: id.to_string(),
            after: None,
        })
    }

    /// Empties the indexes of pipeline tables `tables` as of commit
    /// position `version` (see [`super::truncate`]): refreshes each index,
    /// reads its ids through a point in time, page by page, and deletes
    /// each with `version` = `version`, `version_type=external_gte`. A
    /// versioned delete is conditional, unlike `_delete_by_query`: a
    /// document of a later change (a replay after a crash finds it) is
    /// refused with 409 and stays, and the tombstone carries `version`, so
    /// a row the same transaction writes after its `TRUNCATE` (also at
    /// `version`) is written. Returns once every delete was acknowledged.
    pub async fn truncate(&self, tables: &[usize], version: u64) -> Result<(), SyncError> {
        for ix in self.indexes.iter().filter(|i| tables.contains(&i.table)) {
            self.refresh(&ix.index).await?;
            let mut pit = self.open_pit(&ix.index).await?;
            let mut listed = 0u64;
            loop {
                let hits = pit.page(PAGE, false).await?;
                if hits.is_empty() {
                    break;
                }
                let mut body = Vec::new();
                for h in &hits {
                    let Some(id) = h["_id"].as_str() else {
                        continue;
                    };
                    let action = json!({"delete": {"_index": ix.index, "_id": id, "version": version, "version_type": "external_gte"}});
                    body.extend_from_slice(action.to_string().as_bytes());
                    body.push(b'\n');
                }
                self.bulk(&body).await?;
                listed += hits.len() as u64;
            }
            pit.close().await;
            self.refresh(&ix.index).await?;
            tracing::info!(index = %ix.index, version, listed, "TRUNCATE carried to Elasticsearch");
        }
        Ok(())
    }
}

/// A point in time of an index, read in pages sorted by `_shard_doc`
/// with `search_after`: a stable view of every document, whatever is
/// written meanwhile, and only one page in memory.
pub struct Pit<'a> {
    es: &'a Elastic,
    id: String,
    after: Option<Value>,
}

impl Pit<'_> {
    /// The next `size` hits (`_id`, `_version`, and `_source` when
    /// `source`); empty at the end.
    pub async fn page(&mut self, size: usize, source: bool) -> Result<Vec<Value>, SyncError> {
        let mut body = json!({
            "size": size,
            "pit": {"id": self.id, "keep_alive": "5m"},
            "sort": [{"_shard_doc": "asc"}],
            "track_total_hits": false,
            "version": true,
            "_source": source,
        });
        if let Some(a) = &self.after {
            body["search_after"] = a.clone();
        }
        let mut v = self
            .es
            .call(reqwest::Method::POST, "/_search", Some(&body))
            .await?;
        if let Some(id) = v["pit_id"].as_str() {
            self.id = id.to_string();
        }
        let hits = match v["hits"]["hits"].take() {
            Value::Array(h) => h,
            _ => return Err(self.es.err(format!("no hits in a search answer: {v}"))),
        };
        if let Some(last) = hits.last() {
            if !last["sort"].is_array() {
                return Err(self.es.err("a hit without `sort` values: is the cluster older than Elasticsearch 7.12 (`_shard_doc`)?"));
            }
            self.after = Some(last["sort"].clone());
        }
        Ok(hits)
    }

    /// Starts again from the first document (of the same point in time).
    pub fn rewind(&mut self) {
        self.after = None;
    }

    /// Closes the point in time (best effort: it expires by itself).
    pub async fn close(self) {
        let body = json!({ "id": self.id });
        let _ = (self.es)
            .call(reqwest::Method::DELETE, "/_pit", Some(&body))
            .await;
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
