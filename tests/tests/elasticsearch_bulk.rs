//! The bulk indexer on the wire: NDJSON chunked by bytes, external
//! versions, per-item results. No Elasticsearch can be installed here, so
//! the answers are scripted by a plain TCP listener with the response shape
//! Elasticsearch 8 documents; elasticsearch_live.rs runs the real thing when
//! ELASTIC_URL is set.

#[allow(dead_code)]
mod search {
    pub use strata_tests::fixtures::search::elasticsearch::*;
}

use serde_json::{json, Value};
use strata_sdk::elasticsearch;

use strata_tests::support::{json_ok, serve_script};

/// Answers each `_bulk` request with the next JSON answer; returns each
/// request's head and body.
async fn script(listener: tokio::net::TcpListener, answers: Vec<String>) -> Vec<(String, String)> {
    let responses = answers.iter().map(|a| json_ok(a)).collect();
    serve_script(listener, responses)
        .await
        .into_iter()
        .map(|(head, body)| (head, String::from_utf8(body).unwrap()))
        .collect()
}

fn ticket(n: i64) -> search::find::TicketDoc {
    search::find::TicketDoc {
        id: uuid::Uuid::from_u128(n as u128),
        number: n,
        subject: format!("subject {n}"),
        body: "body".into(),
        priority: "LOW".into(),
        labels: vec![],
        amount: None,
        big_amount: None,
        rating: None,
        escalated: false,
        due_on: None,
        context: None,
        tries: 0,
        level: 0,
        created_at: chrono::DateTime::from_timestamp_micros(1).unwrap(),
        updated_at: chrono::DateTime::from_timestamp_micros(2).unwrap(),
        version: n,
    }
}

fn items(statuses: &[(i64, u16)]) -> String {
    let items: Vec<Value> = statuses
        .iter()
        .map(|(id, status)| {
            let id = uuid::Uuid::from_u128(*id as u128).to_string();
            match status {
                409 => json!({ "index": { "_index": "x", "_id": id, "status": 409,
                    "error": { "type": "version_conflict_engine_exception", "reason": "stale" } } }),
                200 | 201 => json!({ "index": { "_index": "x", "_id": id, "status": status } }),
                _ => json!({ "index": { "_index": "x", "_id": id, "status": status,
                    "error": { "type": "document_parsing_exception", "reason": "bad" } } }),
            }
        })
        .collect();
    json!({ "took": 1, "errors": true, "items": items }).to_string()
}

#[tokio::test]
async fn bulk_requests_are_chunked_by_bytes_and_report_each_item() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // One document's two lines are about 450 bytes: 1,000 bytes hold two.
    let answers = vec![
        items(&[(1, 201), (2, 409)]),
        items(&[(3, 201), (4, 400)]),
        items(&[(5, 200)]),
    ];
    let server = tokio::spawn(script(listener, answers));
    let mut bulk =
        elasticsearch::Writer::new(elasticsearch::WriterConfig::new(url).with_max_bytes(1_000));
    for n in 1..=5 {
        bulk.write(&ticket(n)).await.unwrap();
    }
    bulk.flush().await.unwrap();
    let report = bulk.take_report();
    assert_eq!((report.indexed, report.stale), (3, 1));
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].id, uuid::Uuid::from_u128(4).to_string());
    assert_eq!(report.failed[0].status, 400);

    let seen = server.await.unwrap();
    assert_eq!(
        seen.len(),
        3,
        "five documents in requests of at most 1,000 bytes"
    );
    for (head, body) in &seen {
        assert!(head.starts_with("POST /_bulk HTTP/1.1"));
        assert!(head
            .to_ascii_lowercase()
            .contains("content-type: application/x-ndjson"));
        assert!(body.len() <= 1_000 && body.ends_with('\n'));
        for pair in body.lines().collect::<Vec<_>>().chunks(2) {
            let action: Value = serde_json::from_str(pair[0]).unwrap();
            assert_eq!(action["index"]["_index"], "helpdesk_tickets");
            assert_eq!(action["index"]["version_type"], "external");
            let doc: search::find::TicketDoc = serde_json::from_str(pair[1]).unwrap();
            assert_eq!(action["index"]["_id"], doc.id.to_string());
            assert_eq!(action["index"]["version"], doc.version);
        }
    }
}
