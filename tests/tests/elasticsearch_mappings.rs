//! Elasticsearch artifacts, checked offline: snapshots of every index body
//! and document struct, a validator of field types and their parameters,
//! and the documents' JSON against their strict mappings.

use std::path::Path;

use serde_json::{json, Value};
use strata_sdk::elasticsearch;
use strata_sdk::elasticsearch::{BulkReport, Document};

#[allow(dead_code)]
mod trading {
    pub use deepalpha_db::elasticsearch::*;
}
#[allow(dead_code)]
mod search {
    pub use strata_tests::fixtures::search::elasticsearch::*;
}

fn files(path: &str) -> strata_codegen::Files {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let sources = strata_codegen::load(&full).expect("load");
    let m = strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    strata_codegen::generate(&m, &Default::default())
}

/// Field types and the parameters each accepts (the subset Strata emits,
/// as the Elasticsearch 8 mapping reference defines them).
fn allowed(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "keyword" => &["type", "ignore_above", "fields"],
        "text" => &["type", "fields"],
        "boolean" | "short" | "integer" | "long" | "double" | "date_nanos" => &["type"],
        "scaled_float" => &["type", "scaling_factor"],
        "date" => &["type", "format"],
        "flattened" => &["type"],
        _ => return None,
    })
}

fn validate_properties(props: &serde_json::Map<String, Value>, at: &str) {
    for (name, m) in props {
        let ty = m["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}.{name} has no type"));
        let params = allowed(ty).unwrap_or_else(|| panic!("{at}.{name}: unknown type {ty}"));
        for k in m.as_object().unwrap().keys() {
            assert!(
                params.contains(&k.as_str()),
                "{at}.{name}: `{k}` is not a {ty} parameter"
            );
        }
        if ty == "scaled_float" {
            let f = m["scaling_factor"].as_f64().expect("scaling_factor");
            assert!(
                f >= 1.0 && f.fract() == 0.0,
                "{at}.{name}: scaling_factor {f}"
            );
        }
        if let Some(n) = m.get("ignore_above") {
            assert!(
                n.as_u64().is_some_and(|n| n > 0),
                "{at}.{name}: ignore_above"
            );
        }
        if let Some(sub) = m.get("fields") {
            validate_properties(sub.as_object().unwrap(), &format!("{at}.{name}"));
        }
    }
}

fn index_bodies(path: &str) -> Vec<(String, Value)> {
    files(path)
        .files
        .into_iter()
        .filter(|(p, _)| p.starts_with("elasticsearch/"))
        .map(|(p, t)| (p, serde_json::from_str(&t).expect("valid JSON")))
        .collect()
}

#[test]
fn mappings_are_valid_and_strict() {
    for path in [
        "../schema",
        "fixtures/valid/search.yaml",
        "fixtures/valid/market_multi_store.yaml",
        "fixtures/valid/library_multi_store.yaml",
    ] {
        let bodies = index_bodies(path);
        assert!(!bodies.is_empty());
        for (file, body) in &bodies {
            let keys: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["aliases", "settings", "mappings"], "{file}");
            assert_eq!(body["mappings"]["dynamic"], "strict", "{file}");
            let index = file
                .trim_start_matches("elasticsearch/")
                .trim_end_matches(".json");
            let alias = body["aliases"].as_object().unwrap().keys().next().unwrap();
            assert!(
                index.starts_with(&format!("{alias}_v")),
                "{index} is {alias} plus a version"
            );
            validate_properties(body["mappings"]["properties"].as_object().unwrap(), file);
        }
    }
}

#[test]
fn index_bodies_snapshot() {
    for (name, path) in [
        ("trading", "../schema"),
        ("search", "fixtures/valid/search.yaml"),
    ] {
        for (file, body) in index_bodies(path) {
            // Named by alias: the versioned index name is in the snapshot itself.
            let alias = body["aliases"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone();
            let text = format!("{file}\n{}", serde_json::to_string_pretty(&body).unwrap());
            insta::with_settings!({ input_file => path }, {
                insta::assert_snapshot!(format!("{name}__index__{alias}"), text);
            });
        }
        let f = files(path);
        insta::with_settings!({ input_file => path }, {
            insta::assert_snapshot!(format!("{name}__elasticsearch_rs"), f.get("rust/elasticsearch.rs").unwrap());
        });
    }
}

#[test]
fn decimals_are_scaled_float_only_when_lossless_and_secrets_never_appear() {
    let bodies = index_bodies("fixtures/valid/search.yaml");
    let props = &bodies[0].1["mappings"]["properties"];
    assert_eq!(
        props["amount"],
        json!({ "type": "scaled_float", "scaling_factor": 100.0 })
    );
    assert_eq!(props["big_amount"], json!({ "type": "keyword" }));
    assert_eq!(props["context"]["type"], "text");
    assert!(props.get("api_token").is_none());
    let rust = files("fixtures/valid/search.yaml");
    assert!(!rust
        .get("rust/elasticsearch.rs")
        .unwrap()
        .contains("api_token"));
}

fn ticket() -> search::find::TicketDoc {
    use rust_decimal::Decimal;
    search::find::TicketDoc {
        id: uuid::Uuid::from_u128(7),
        number: 42,
        subject: "Printer \"on fire\"".into(),
        body: "It\nburns".into(),
        priority: "URGENT".into(),
        labels: vec!["hw".into(), "fire".into()],
        amount: Some(Decimal::new(12_345, 2)),
        big_amount: Some(Decimal::new(1, 10)),
        rating: None,
        escalated: true,
        due_on: chrono::NaiveDate::from_ymd_opt(2026, 2, 1),
        context: Some(r#"{"seen":true}"#.into()),
        tries: 3,
        level: 1,
        created_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap(),
        updated_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_002).unwrap(),
        version: 5,
    }
}

#[test]
fn documents_match_their_strict_mapping() {
    let doc = serde_json::to_value(ticket()).unwrap();
    let bodies = index_bodies("fixtures/valid/search.yaml");
    let props = bodies[0].1["mappings"]["properties"].as_object().unwrap();
    for (k, v) in doc.as_object().unwrap() {
        let ty = props
            .get(k)
            .unwrap_or_else(|| panic!("`{k}` is not mapped: strict would reject it"))["type"]
            .as_str()
            .unwrap();
        let ok = match ty {
            "keyword" | "text" | "date" | "date_nanos" => {
                v.is_string() || v.is_null() || v.is_array()
            }
            "scaled_float" => v.is_string() || v.is_number() || v.is_null(),
            "boolean" => v.is_boolean(),
            "short" | "integer" | "long" => v.is_i64(),
            "double" => v.is_number() || v.is_null(),
            "flattened" => v.is_object() || v.is_null(),
            _ => false,
        };
        assert!(ok, "`{k}` = {v} does not fit {ty}");
    }
    assert_eq!(
        doc["created_at"], "2023-11-14T22:13:20.000001Z",
        "microseconds kept"
    );
    // And the document reads back from its own _source.
    let back: search::find::TicketDoc = serde_json::from_value(doc).unwrap();
    assert_eq!(back, ticket());
}

#[test]
fn bulk_lines_use_the_alias_the_key_and_external_versions() {
    let t = ticket();
    let mut out = Vec::new();
    elasticsearch::Writer::encode(&t, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let action: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        action,
        json!({ "index": { "_index": "helpdesk_tickets", "_id": t.id.to_string(), "version": 5, "version_type": "external" } })
    );
    assert!(!lines[1].contains('\n'));
    assert_eq!(search::find::TicketDoc::ALIAS, "helpdesk_tickets");
    assert!(search::find::TicketDoc::INDEX.starts_with("helpdesk_tickets_v"));
    // Without a version field, updated_at in microseconds orders the copies.
    assert_eq!(
        trading::search::DecisionDoc::INDEX.split("_v").next(),
        Some("deepalpha_live_decision_log")
    );
}

#[test]
fn bulk_responses_report_each_item() {
    // The shape of an Elasticsearch 8 `_bulk` response with mixed results.
    let resp = json!({
        "took": 3, "errors": true,
        "items": [
            { "index": { "_index": "i_v1", "_id": "1", "status": 201, "result": "created" } },
            { "index": { "_index": "i_v1", "_id": "2", "status": 200, "result": "updated" } },
            { "index": { "_index": "i_v1", "_id": "3", "status": 409,
                "error": { "type": "version_conflict_engine_exception", "reason": "[3]: version conflict, current version [9] is higher or equal to the one provided [5]" } } },
            { "index": { "_index": "i_v1", "_id": "4", "status": 400,
                "error": { "type": "strict_dynamic_mapping_exception", "reason": "mapping set to strict, dynamic introduction of [x] within [_doc] is not allowed" } } }
        ]
    });
    let mut r = BulkReport::default();
    r.add_response(&resp);
    assert_eq!(r.indexed, 2);
    assert_eq!(r.stale, 1);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].id, "4");
    assert_eq!(r.failed[0].status, 400);
    assert_eq!(r.failed[0].kind, "strict_dynamic_mapping_exception");
}
