//! The Elasticsearch target of the sync, against a scripted listener that
//! keeps documents the way Elasticsearch does with external versions
//! (`external_gte`: a write with a lower version is refused with 409), so
//! the wire format, the versioning and the retry are checked without a
//! server. With `ELASTIC_URL` set, the same pipeline also runs live.

mod sync_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use strata_sdk::sync::{RunOptions, TargetSpec};
use strata_tests::support::read_request;
use sync_common::{Fixture, SECRET};
use tokio::io::{AsyncWriteExt, BufReader};

const SCHEMA: &str = r#"
version: 1
stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
  search: { kind: elasticsearch, url: "${ELASTIC_URL:http://127.0.0.1:9200}", index_prefix: t }
entities:
  Note:
    table: note
    store: main
    key: id
    fields:
      id: { type: i64 }
      title: { type: string(100) }
      amount: decimal(12,2)
      token: secret
      at: { type: timestamptz, nullable: true }
    search: { store: search, text: [title] }
sync:
  - { from: Note, to: search }
"#;

/// What the fake cluster holds: id → (version, document or None when deleted).
#[derive(Default)]
struct Cluster {
    docs: HashMap<String, (u64, Option<Value>)>,
    indexes: Vec<String>,
    bodies: Vec<String>,
    refused_first: bool,
    conflicts: usize,
    /// An alias that points to an index of an older mapping.
    old_alias: Option<String>,
}

fn respond(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn handle(c: &mut Cluster, head: &str, body: &[u8]) -> String {
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match method {
        "HEAD" => {
            if c.indexes.iter().any(|i| path == format!("/{i}")) {
                respond("200 OK", "")
            } else {
                respond("404 Not Found", "")
            }
        }
        "GET" if path.starts_with("/_alias/") => match &c.old_alias {
            Some(a) if path == format!("/_alias/{a}") => respond(
                "200 OK",
                &format!(r#"{{"{a}_v00000000":{{"aliases":{{"{a}":{{}}}}}}}}"#),
            ),
            _ => respond("404 Not Found", "{}"),
        },
        "PUT" => {
            c.indexes.push(path.trim_start_matches('/').to_string());
            respond("200 OK", r#"{"acknowledged":true}"#)
        }
        "POST" if path == "/_bulk" => {
            let text = String::from_utf8_lossy(body).to_string();
            c.bodies.push(text.clone());
            if !c.refused_first {
                // The first bulk meets an overloaded cluster: retried.
                c.refused_first = true;
                return respond("503 Service Unavailable", r#"{"error":"busy"}"#);
            }
            let mut lines = text.lines();
            let mut items = Vec::new();
            while let Some(action) = lines.next() {
                let a: Value = serde_json::from_str(action).unwrap();
                let (op, meta) = a.as_object().unwrap().iter().next().unwrap();
                assert_eq!(meta["version_type"], "external_gte", "{action}");
                let id = meta["_id"].as_str().unwrap().to_string();
                let version = meta["version"].as_u64().unwrap();
                let doc = if op == "index" {
                    Some(serde_json::from_str::<Value>(lines.next().unwrap()).unwrap())
                } else {
                    assert_eq!(op, "delete");
                    None
                };
                let stored = c.docs.get(&id).map(|d| d.0);
                let status = if stored.is_some_and(|v| version < v) {
                    c.conflicts += 1;
                    409
                } else {
                    c.docs.insert(id, (version, doc));
                    200
                };
                items.push(json!({ op.clone(): { "status": status } }));
            }
            respond("200 OK", &json!({ "errors": items.iter().any(|i| i.to_string().contains("409")), "items": items }).to_string())
        }
        _ => respond("400 Bad Request", "{}"),
    }
}

async fn fake_cluster(cluster: Arc<Mutex<Cluster>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                let (head, body) = read_request(&mut r).await;
                let answer = handle(&mut cluster.lock().unwrap(), &head, &body);
                let _ = r.get_mut().write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_carry_the_key_and_commit_versions_and_deletes_are_versioned() {
    let mut f = Fixture::new(SCHEMA).await;
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let url = fake_cluster(cluster.clone()).await;
    for t in &mut f.pipeline.targets {
        if let TargetSpec::Elasticsearch { url: u, .. } = t {
            *u = url.clone();
        }
    }
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token, at) SELECT g, 'note ' || g, g * 0.5, $1, now() FROM generate_series(1, 50) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    sqlx::raw_sql(
        "UPDATE note SET title = 'changed' WHERE id <= 5;
         DELETE FROM note WHERE id BETWEEN 6 AND 10;
         BEGIN; UPDATE note SET title = 'first' WHERE id = 11; UPDATE note SET title = 'last' WHERE id = 11; COMMIT;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let cl = cluster.lock().unwrap();
    assert_eq!(
        cl.indexes.len(),
        1,
        "the index was created once from the generated mapping"
    );
    assert!(cl.indexes[0].starts_with("t_note_v"), "{:?}", cl.indexes);
    let live: Vec<(&String, &Value)> = cl
        .docs
        .iter()
        .filter_map(|(k, (_, d))| d.as_ref().map(|d| (k, d)))
        .collect();
    assert_eq!(live.len(), 45);
    assert_eq!(cl.docs["1"].1.as_ref().unwrap()["title"], "changed");
    assert_eq!(cl.docs["11"].1.as_ref().unwrap()["title"], "last");
    assert_eq!(cl.docs["12"].1.as_ref().unwrap()["amount"], "6");
    assert!(cl.docs["7"].1.is_none(), "deleted with a version");
    assert!(
        cl.docs["7"].0 > cl.docs["12"].0,
        "the delete's version is larger than the snapshot's"
    );
    assert!(
        cl.bodies.iter().all(|b| !b.contains(SECRET)),
        "the secret reached Elasticsearch"
    );
    assert!(
        cl.bodies.len() >= 3,
        "the refused first bulk was sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_elasticsearch_when_elastic_url_is_set() {
    let Ok(url) = std::env::var("ELASTIC_URL") else {
        eprintln!("skipped: ELASTIC_URL is not set (no Elasticsearch server here)");
        return;
    };
    let mut f = Fixture::new(SCHEMA).await;
    for t in &mut f.pipeline.targets {
        if let TargetSpec::Elasticsearch { url: u, .. } = t {
            *u = url.clone();
        }
    }
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token) SELECT g, 'note ' || g, g, $1 FROM generate_series(1, 20) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    sqlx::query("DELETE FROM note WHERE id <= 5")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let TargetSpec::Elasticsearch { indexes, .. } = &f.pipeline.targets[0] else {
        unreachable!()
    };
    let http = reqwest::Client::new();
    http.post(format!("{url}/{}/_refresh", indexes[0].index))
        .send()
        .await
        .unwrap();
    let n: Value = http
        .get(format!("{url}/{}/_count", indexes[0].index))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(n["count"], 15);
    let _ = http
        .delete(format!("{url}/{}", indexes[0].index))
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_mapping_stops_the_sync_instead_of_filling_a_new_partial_index() {
    let mut f = Fixture::new(SCHEMA).await;
    let cluster = Arc::new(Mutex::new(Cluster {
        old_alias: Some("t_note".into()),
        ..Cluster::default()
    }));
    let url = fake_cluster(cluster.clone()).await;
    for t in &mut f.pipeline.targets {
        if let TargetSpec::Elasticsearch { url: u, .. } = t {
            *u = url.clone();
        }
    }
    let (_stop, run) = f.start(RunOptions::default());
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops by itself")
        .unwrap()
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("the mapping changed")
            && msg.contains("t_note_v00000000")
            && msg.contains("strata sync drop"),
        "{msg}"
    );
    assert!(
        cluster.lock().unwrap().indexes.is_empty(),
        "no new index was created"
    );
}
