//! The Elasticsearch target: `_bulk` requests with `_id` = the key and
//! external versions (`external_gte`) = the commit LSN, deletes as
//! versioned deletes. An older replay is refused by Elasticsearch with a
//! version conflict (409), which is success here: a newer version is
//! already there. `external_gte` rather than `external` so that two
//! changes of one key in one transaction (the same version) end as the
//! last one.

use std::sync::{Arc, RwLock};
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
    /// The index each of `indexes` is written to: its own, or the older
    /// index its alias points to when [`Elastic::ensure`] added the new
    /// fields to that index's mapping in place. Shared by the clones.
    write: Arc<RwLock<Vec<String>>>,
}

impl Elastic {
    /// A client for the cluster at `url`.
    pub fn new(store: &str, url: &str, indexes: Vec<ElasticIndex>) -> Result<Elastic, SyncError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| SyncError::Config(format!("HTTP client: {e}")))?;
        let write = indexes.iter().map(|i| i.index.clone()).collect();
        Ok(Elastic {
            store: store.to_string(),
            base: url.trim_end_matches('/').to_string(),
            http,
            indexes,
            write: Arc::new(RwLock::new(write)),
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

    /// The index the documents of `indexes[ix]` are written to (see
    /// [`Elastic::ensure`]).
    pub fn write_index(&self, ix: usize) -> String {
        self.write.read().unwrap_or_else(|e| e.into_inner())[ix].clone()
    }

    /// [`Elastic::write_index`] of every one of `indexes`, in their order:
    /// read once by a batch (`apply::Batch`) for all its documents.
    pub fn write_indexes(&self) -> Vec<String> {
        self.write.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Creates the indexes that do not exist yet (`PUT /<index>` with the
    /// generated mappings; "already exists" is success). When the index
    /// does not exist but its alias points to one older index whose
    /// mapping differs from the generated one only by added properties
    /// (fields added to the entity), the added properties are put into
    /// that index's mapping and its documents are written there from then
    /// on ([`Elastic::write_index`]); any other difference is
    /// [`SyncError::SchemaChanged`].
    pub async fn ensure(&self) -> Result<(), SyncError> {
        for (n, ix) in self.indexes.iter().enumerate() {
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
                    let why = match old.as_slice() {
                        [o] => match self.extend_in_place(ix, o).await? {
                            Ok(()) => {
                                self.write.write().unwrap_or_else(|e| e.into_inner())[n] =
                                    o.clone();
                                continue;
                            }
                            Err(why) => why,
                        },
                        _ => "it does not point to exactly one index".to_string(),
                    };
                    return Err(SyncError::SchemaChanged {
                        table: ix.index.clone(),
                        reason: format!(
                            "the mapping changed: alias `{alias}` points to {old:?}, the schema now needs index `{}` ({why}); copy into the new index with `strata sync drop` then `strata sync run` (then move the alias)",
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

    /// Whether index `old` (which `ix`'s alias points to) can take `ix`'s
    /// documents: its settings are the generated ones and its mapping is
    /// the generated one less some properties. Then the missing
    /// properties are put into its mapping (`PUT /<old>/_mapping`) and
    /// `Ok(Ok(()))`; otherwise `Ok(Err(why))`, with nothing changed.
    async fn extend_in_place(
        &self,
        ix: &ElasticIndex,
        old: &str,
    ) -> Result<Result<(), String>, SyncError> {
        let path = format!("/{}", urlencode(old));
        let held = self.call(reqwest::Method::GET, &path, None).await?;
        let held = &held[old];
        let want = &ix.create_body;
        if let Some(why) = settings_differ(&want["settings"], &held["settings"], "settings") {
            return Ok(Err(why));
        }
        let added = match added_properties(&want["mappings"], &held["mappings"]) {
            Ok(a) => a,
            Err(why) => return Ok(Err(why)),
        };
        let names: Vec<&String> = added.keys().collect();
        if !added.is_empty() {
            let body = json!({ "properties": added });
            let path = format!("/{}/_mapping", urlencode(old));
            self.call(reqwest::Method::PUT, &path, Some(&body)).await?;
        }
        let done = match names.is_empty() {
            true => "its mapping already has the added field(s)".to_string(),
            false => format!("field(s) {names:?} added to its mapping in place"),
        };
        eprintln!(
            "strata sync: `{}`: index `{}` is not there; alias `{}` points to `{old}`: {done}, its documents are written there, without copying the table again",
            self.store,
            ix.index,
            ix.alias.as_deref().unwrap_or_default()
        );
        Ok(Ok(()))
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

    /// Appends one action (and its document) on index `index` (the
    /// table's [`Elastic::write_index`], which the caller resolves once
    /// per batch) to a bulk body; a value JSON cannot hold
    /// ([`cell::to_json`]) appends nothing and is [`SyncError::Value`]
    /// naming the column.
    pub fn push(
        body: &mut Vec<u8>,
        spec: &TableSpec,
        index: &str,
        cells: &[Cell],
        version: u64,
        deleted: bool,
    ) -> Result<(), SyncError> {
        let doc = match deleted {
            true => Map::new(),
            false => Self::document(spec, cells)?,
        };
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
        for (n, ix) in self.indexes.iter().enumerate() {
            if !tables.contains(&ix.table) {
                continue;
            }
            let index = self.write_index(n);
            self.refresh(&index).await?;
            let mut pit = self.open_pit(&index).await?;
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
                    let action = json!({"delete": {"_index": index, "_id": id, "version": version, "version_type": "external_gte"}});
                    body.extend_from_slice(action.to_string().as_bytes());
                    body.push(b'\n');
                }
                self.bulk(&body).await?;
                listed += hits.len() as u64;
            }
            pit.close().await;
            self.refresh(&index).await?;
            tracing::info!(%index, version, listed, "TRUNCATE carried to Elasticsearch");
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

/// The properties of generated mappings `want` that mappings `held` (an
/// index's, as `GET /<index>` answers) lack, when everything else is the
/// same (`dynamic`, `_meta`, each held property's definition); otherwise
/// what differs.
fn added_properties(want: &Value, held: &Value) -> Result<Map<String, Value>, String> {
    let (Some(want), Some(held)) = (want.as_object(), held.as_object()) else {
        return Err("no mappings to compare".into());
    };
    for (k, v) in want.iter().filter(|(k, _)| *k != "properties") {
        if !same(v, held.get(k).unwrap_or(&Value::Null)) {
            return Err(format!("mapping `{k}` differs"));
        }
    }
    if let Some(k) = held
        .keys()
        .find(|k| *k != "properties" && !want.contains_key(*k))
    {
        return Err(format!("mapping `{k}` differs"));
    }
    let empty = Map::new();
    let wp = want["properties"].as_object().unwrap_or(&empty);
    let hp = held.get("properties").and_then(Value::as_object);
    let hp = hp.unwrap_or(&empty);
    for (k, v) in hp {
        match wp.get(k) {
            None => return Err(format!("property `{k}` was removed")),
            Some(w) if !same(w, v) => return Err(format!("property `{k}` changed: {v} -> {w}")),
            Some(_) => {}
        }
    }
    Ok((wp.iter())
        .filter(|(k, _)| !hp.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// Dynamic index settings an operator may tune on a live index (a single
/// node's `number_of_replicas: 0`, a bulk load's `refresh_interval`):
/// not compared, so such a change does not stop an in-place extension.
const OPERATOR_SETTINGS: &[&str] = &[
    "number_of_replicas",
    "auto_expand_replicas",
    "refresh_interval",
];

/// Where generated settings `want` differ from an index's `held` ones (as
/// `GET /<index>` answers: every value a string, and more keys, such as
/// its uuid, that are not compared; nor are [`OPERATOR_SETTINGS`]).
fn settings_differ(want: &Value, held: &Value, at: &str) -> Option<String> {
    match want {
        Value::Object(m) => (m.iter())
            .filter(|(k, _)| !OPERATOR_SETTINGS.contains(&k.as_str()))
            .find_map(|(k, v)| settings_differ(v, &held[k], &format!("{at}.{k}"))),
        _ if same(want, held) => None,
        _ if want.as_str().is_none() && held.as_str() == Some(&want.to_string()) => None,
        _ => Some(format!("`{at}` is {held}, the schema needs {want}")),
    }
}

/// JSON equality, numbers by value (`100` and `100.0` are the same).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mappings(props: Value) -> Value {
        json!({"_meta": {"entity": "note"}, "dynamic": "strict", "properties": props})
    }

    #[test]
    fn only_added_properties_extend_an_index_in_place() {
        let want = mappings(json!({
            "id": {"type": "long"},
            "amount": {"type": "scaled_float", "scaling_factor": 100.0},
            "at": {"type": "date_nanos"},
        }));
        let held = mappings(json!({
            "amount": {"type": "scaled_float", "scaling_factor": 100},
            "id": {"type": "long"},
        }));
        let added = added_properties(&want, &held).unwrap();
        assert_eq!(Value::Object(added), json!({"at": {"type": "date_nanos"}}));
        assert!(added_properties(&want, &want).unwrap().is_empty());
        // A changed or removed property, other mapping parameters.
        let changed = mappings(json!({"id": {"type": "keyword"}}));
        let e = added_properties(&want, &changed).unwrap_err();
        assert!(e.contains("property `id` changed"), "{e}");
        let removed = mappings(json!({"id": {"type": "long"}, "gone": {"type": "long"}}));
        let e = added_properties(&want, &removed).unwrap_err();
        assert!(e.contains("property `gone` was removed"), "{e}");
        let mut dynamic = held.clone();
        dynamic["dynamic"] = json!("true");
        assert!(added_properties(&want, &dynamic).is_err());
        let mut more = held.clone();
        more["_source"] = json!({"enabled": false});
        assert!(added_properties(&want, &more).is_err());
    }

    #[test]
    fn settings_are_compared_by_the_generated_values_only() {
        let want = json!({"index": {"number_of_shards": 1, "number_of_replicas": 1}});
        let held = json!({"index": {"number_of_shards": "1", "number_of_replicas": "1",
            "uuid": "x", "creation_date": "1"}});
        assert_eq!(settings_differ(&want, &held, "settings"), None);
        let two = json!({"index": {"number_of_shards": "2", "number_of_replicas": "1"}});
        let why = settings_differ(&want, &two, "settings").unwrap();
        assert!(why.contains("settings.index.number_of_shards"), "{why}");
        // An operator's replica count is not the schema's business.
        let replicas = json!({"index": {"number_of_shards": "1", "number_of_replicas": "0"}});
        assert_eq!(settings_differ(&want, &replicas, "settings"), None);
        assert!(settings_differ(&want, &json!({}), "settings").is_some());
    }
}
