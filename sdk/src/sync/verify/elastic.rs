//! `verify` of an Elasticsearch target: each source row is encoded as
//! the sync writes its document ([`Elastic::document`], `_id` =
//! [`Elastic::doc_id`]) and compared with the index read through its
//! alias, by `_id` and `_source` (as JSON values: key order and number
//! spelling do not matter). The index is read through one point in time,
//! in pages of [`PAGE`] documents sorted by `_shard_doc` (`search_after`),
//! once per bucket of the source: a document belongs to the bucket of its
//! key fields' MD5, computed here as PostgreSQL computes the source's
//! (`pg_bucket`), so memory holds one bucket of source hashes and one
//! page of documents, at the cost of one pass over the index per bucket.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

use super::{
    buckets_of, hashable_key, source_count, source_rows, Bucket, BucketCompare, TableCount,
    VerifyReport,
};
use crate::sync::cell::Cell;
use crate::sync::elastic::{Elastic, PAGE};
use crate::sync::error::SyncError;
use crate::sync::spec::{ColumnType, ElasticIndex, Pipeline, TableSpec};

/// Compares one index with its source table, bucket by bucket.
pub(super) async fn verify_index(
    p: &Pipeline,
    es: &Elastic,
    ix: &ElasticIndex,
    bucket_rows: u64,
    report: &mut VerifyReport,
) -> Result<(), SyncError> {
    let t = &p.tables[ix.table];
    let of = buckets_of(t, source_count(p, t).await?, bucket_rows);
    let mut count = TableCount {
        target: es.store.clone(),
        table: t.source_table.clone(),
        source_rows: 0,
        target_rows: 0,
    };
    // What readers see: the alias when the index has one.
    let name = ix.alias.as_deref().unwrap_or(&ix.index);
    es.refresh(name).await?;
    let mut pit = es.open_pit(name).await?;
    let encode = |t: &TableSpec, cells: &[Cell]| {
        let id = Elastic::doc_id(t, cells);
        let hash = Elastic::document(t, cells)
            .ok()
            .map(|d| doc_hash(t, &Value::Object(d)));
        (id, hash)
    };
    let result = async {
        for index in 0..of {
            let b = Bucket { index, of };
            let src = source_rows(p, &encode, ix.table, b).await?;
            count.source_rows += src.len() as u64;
            let mut cmp = BucketCompare::new(&es.store, &t.source_table, src);
            pit.rewind();
            loop {
                let hits = pit.page(PAGE, true).await?;
                if hits.is_empty() {
                    break;
                }
                for h in &hits {
                    let id = h["_id"].as_str().unwrap_or_default().to_string();
                    let source = &h["_source"];
                    if bucket_of(t, &id, source, of) != index {
                        continue;
                    }
                    let hash = doc_hash(t, source);
                    cmp.target_row(report, &mut count, id.clone(), id, hash);
                }
            }
            cmp.finish(report);
        }
        Ok::<(), SyncError>(())
    }
    .await;
    pit.close().await;
    result?;
    report.tables.push(count);
    Ok(())
}

/// The bucket of a document: its key fields as PostgreSQL prints them
/// (the keys [`hashable_key`] buckets are integers, UUIDs and text, which
/// JSON holds as the same text), joined by `\x01`, MD5, first 16 bits,
/// modulo `of`. A document without its key fields (not written by the
/// sync) falls in bucket 0 unless its `_id` is its one key's text.
fn bucket_of(t: &TableSpec, id: &str, source: &Value, of: u32) -> u32 {
    use md5::{Digest, Md5};
    if of == 1 || !hashable_key(t) {
        return 0;
    }
    let keys = t.key_indexes();
    let parts: Option<Vec<String>> = (keys.iter())
        .map(|&k| match &source[&t.columns[k].name] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    let text = match parts {
        Some(p) => p.join("\u{1}"),
        None if keys.len() == 1 => id.to_string(),
        None => return 0,
    };
    let d = Md5::digest(text.as_bytes());
    u16::from_be_bytes([d[0], d[1]]) as u32 % of
}

/// The hash of a document's content: its JSON with object keys sorted,
/// and a `json` column's text read as JSON (a copy fed from change events
/// holds serde_json's compact text, the source jsonb its own spacing). A
/// column's field that is null hashes as an absent one: a document
/// written before its field was added to the index in place
/// ([`Elastic::ensure`]) lacks it, and equals a row whose value is NULL
/// (only NULL: any other value differs from an absent field).
fn doc_hash(t: &TableSpec, doc: &Value) -> u64 {
    let mut doc = doc.clone();
    if let Some(m) = doc.as_object_mut() {
        for c in &t.columns {
            if m.get(&c.name).is_some_and(Value::is_null) {
                m.remove(&c.name);
            }
        }
    }
    for c in t.columns.iter().filter(|c| c.ty == ColumnType::Json) {
        if let Some(v) = doc.get_mut(&c.name) {
            if let Some(parsed) = v.as_str().and_then(|s| serde_json::from_str(s).ok()) {
                *v = Value::String(sorted(&parsed).to_string());
            }
        }
    }
    let mut h = DefaultHasher::new();
    sorted(&doc).to_string().hash(&mut h);
    h.finish()
}

/// A JSON value with every object's keys in sorted order.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::spec::ColumnSpec;
    use serde_json::json;

    fn table(key: &[(&str, ColumnType)], rest: &[(&str, ColumnType)]) -> TableSpec {
        let col = |(name, ty): &(&str, ColumnType), key| ColumnSpec {
            name: name.to_string(),
            ty: *ty,
            nullable: false,
            array: false,
            key,
        };
        TableSpec {
            entity: "E".into(),
            source_schema: "public".into(),
            source_table: "e".into(),
            columns: (key.iter().map(|c| col(c, true)))
                .chain(rest.iter().map(|c| col(c, false)))
                .collect(),
        }
    }

    #[test]
    fn a_documents_bucket_is_the_one_postgresql_computes_for_its_key() {
        let t = table(&[("id", ColumnType::I64)], &[("doc", ColumnType::Json)]);
        // md5('5') = e4da3b7f…: ('x' || 'e4da')::bit(16)::int = 58586.
        assert_eq!(bucket_of(&t, "5", &json!({"id": 5}), 7), 58586 % 7);
        assert_eq!(bucket_of(&t, "5", &json!({"id": 5}), 1), 0);
        // Without its key field, by its `_id` (one key).
        assert_eq!(bucket_of(&t, "5", &json!({}), 7), 58586 % 7);
        // Two keys: joined by \x01, as `concat_ws(E'\x01', …)`.
        let two = table(&[("a", ColumnType::Text), ("b", ColumnType::I32)], &[]);
        let d = <md5::Md5 as md5::Digest>::digest("x\u{1}2".as_bytes());
        let want = u16::from_be_bytes([d[0], d[1]]) as u32 % 9;
        assert_eq!(bucket_of(&two, "x/2", &json!({"a": "x", "b": 2}), 9), want);
        assert_eq!(bucket_of(&two, "x/2", &json!({"a": "x"}), 9), 0);
    }

    #[test]
    fn a_documents_hash_ignores_key_order_and_json_spacing_but_not_values() {
        let t = table(&[("id", ColumnType::I64)], &[("doc", ColumnType::Json)]);
        let a = doc_hash(&t, &json!({"id": 1, "doc": "{\"b\": 1, \"a\": [1, 2]}"}));
        let b = doc_hash(&t, &json!({"doc": "{\"a\":[1,2],\"b\":1}", "id": 1}));
        assert_eq!(a, b);
        let c = doc_hash(&t, &json!({"id": 1, "doc": "{\"a\":[2,1],\"b\":1}"}));
        assert_ne!(a, c);
        assert_ne!(
            a,
            doc_hash(&t, &json!({"id": 2, "doc": "{\"a\":[1,2],\"b\":1}"}))
        );
    }

    #[test]
    fn a_missing_field_equals_a_null_column_and_nothing_else() {
        let t = table(&[("id", ColumnType::I64)], &[("at", ColumnType::Text)]);
        let old = doc_hash(&t, &json!({"id": 1}));
        assert_eq!(old, doc_hash(&t, &json!({"id": 1, "at": null})));
        assert_ne!(old, doc_hash(&t, &json!({"id": 1, "at": "x"})));
        assert_ne!(old, doc_hash(&t, &json!({"id": 1, "at": ""})));
        assert_ne!(old, doc_hash(&t, &json!({"id": 1, "at": 0})));
        // A field that is no column is compared as it is.
        assert_ne!(old, doc_hash(&t, &json!({"id": 1, "other": null})));
    }
}
