//! The Elasticsearch target of the sync, against a scripted listener that
//! keeps documents the way Elasticsearch does with external versions
//! (`external_gte`: a write with a lower version is refused with 409), so
//! the wire format, the versioning and the retry are checked without a
//! server. With `ELASTIC_URL` set, the same pipeline also runs live.

mod pg_common;
mod sync_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pg_common::{strata_bin, TempDir};
use serde_json::{json, Value};
use strata_sdk::sync::{self, verify::DiffKind, RunOptions, TargetSpec};
use strata_tests::support::read_request;
use sync_common::{Fixture, SECRET};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;

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
    /// An alias that points to an index of an older mapping
    /// (`<alias>_v00000000`).
    old_alias: Option<String>,
    /// The mappings of that older index (`GET /<index>`); `PUT
    /// /<index>/_mapping` adds properties to them.
    old_mappings: Option<Value>,
    /// Every request: method, path, body.
    requests: Vec<(String, String, String)>,
    /// Open points in time: id → the live documents when it was opened
    /// (id, version, source), in id order.
    pits: HashMap<String, Vec<(String, u64, Value)>>,
    /// Documents put in when a point in time is opened (before its view
    /// is taken): id, version, source.
    at_pit: Vec<(String, u64, Value)>,
    /// Hold the answer to a `_bulk` sent after a point in time was opened
    /// until `release` gets permits.
    hold_after_pit: bool,
    /// A `_bulk` is being held.
    held: bool,
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
        "GET"
            if c.old_alias
                .as_ref()
                .is_some_and(|a| path == format!("/{a}_v00000000")) =>
        {
            let name = path.trim_start_matches('/');
            let a = c.old_alias.clone().unwrap();
            // As Elasticsearch answers: settings as strings, and more of them.
            let settings = json!({"index": {"number_of_shards": "1", "number_of_replicas": "1",
                "uuid": "Xq3", "provided_name": name, "creation_date": "1700000000000",
                "version": {"created": "8500003"}}});
            let body = json!({ name: {
                "aliases": { a: { "is_write_index": true } },
                "mappings": c.old_mappings.clone().unwrap_or(json!({})),
                "settings": settings,
            }});
            respond("200 OK", &body.to_string())
        }
        "PUT" if path.ends_with("/_mapping") => {
            let add: Value = serde_json::from_slice(body).unwrap();
            let m = c.old_mappings.as_mut().expect("a mapping to put into");
            for (k, v) in add["properties"].as_object().unwrap() {
                m["properties"][k] = v.clone();
            }
            respond("200 OK", r#"{"acknowledged":true}"#)
        }
        "POST" if path.ends_with("/_refresh") => respond("200 OK", r#"{"_shards":{}}"#),
        "POST" if path.contains("/_pit?") => {
            for (id, v, doc) in std::mem::take(&mut c.at_pit) {
                c.docs.insert(id, (v, Some(doc)));
            }
            let mut view: Vec<(String, u64, Value)> = (c.docs.iter())
                .filter_map(|(k, (v, d))| Some((k.clone(), *v, d.clone()?)))
                .collect();
            view.sort_by(|a, b| a.0.cmp(&b.0));
            let id = format!("pit{}", c.pits.len());
            c.pits.insert(id.clone(), view);
            respond("200 OK", &json!({ "id": id }).to_string())
        }
        "DELETE" if path == "/_pit" => respond("200 OK", r#"{"succeeded":true}"#),
        "POST" if path == "/_search" => {
            let q: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(q["sort"], json!([{"_shard_doc": "asc"}]), "{q}");
            let view = &c.pits[q["pit"]["id"].as_str().unwrap()];
            let from = q["search_after"][0].as_u64().unwrap_or(0) as usize;
            let size = q["size"].as_u64().unwrap() as usize;
            let hits: Vec<Value> = (view.iter().enumerate().skip(from).take(size))
                .map(|(i, (id, v, doc))| {
                    let mut h = json!({"_id": id, "_version": v, "sort": [i + 1]});
                    if q["_source"] != json!(false) {
                        h["_source"] = doc.clone();
                    }
                    h
                })
                .collect();
            respond(
                "200 OK",
                &json!({"pit_id": q["pit"]["id"], "hits": {"hits": hits}}).to_string(),
            )
        }
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
    fake_cluster_held(cluster, Arc::new(Semaphore::new(0))).await
}

/// A fake cluster whose held answers wait for a permit of `release`.
async fn fake_cluster_held(cluster: Arc<Mutex<Cluster>>, release: Arc<Semaphore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let cluster = cluster.clone();
            let release = release.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                let (head, body) = read_request(&mut r).await;
                let hold = {
                    let mut c = cluster.lock().unwrap();
                    let line = head.lines().next().unwrap_or_default();
                    let mut parts = line.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let hold = c.hold_after_pit && path == "/_bulk" && !c.pits.is_empty();
                    c.held |= hold;
                    let text = String::from_utf8_lossy(&body).to_string();
                    c.requests
                        .push((method.to_string(), path.to_string(), text));
                    hold
                };
                let answer = handle(&mut cluster.lock().unwrap(), &head, &body);
                if hold {
                    // Applied, but not answered yet.
                    let _ = release.acquire().await.unwrap();
                }
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
    f.carry(
        &mut c,
        "UPDATE note SET title = 'changed' WHERE id <= 5;
         DELETE FROM note WHERE id BETWEEN 6 AND 10;
         BEGIN; UPDATE note SET title = 'first' WHERE id = 11; UPDATE note SET title = 'last' WHERE id = 11; COMMIT;",
    )
    .await;
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
    f.carry(&mut c, "DELETE FROM note WHERE id <= 5").await;
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

/// The generated mappings of the pipeline's one index.
fn generated_mappings(f: &Fixture) -> Value {
    let TargetSpec::Elasticsearch { indexes, .. } = &f.pipeline.targets[0] else {
        unreachable!()
    };
    indexes[0].create_body["mappings"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_mapping_stops_the_sync_instead_of_filling_a_new_partial_index() {
    let mut f = Fixture::new(SCHEMA).await;
    // The older index had `title` as a keyword: a changed property.
    let mut old = generated_mappings(&f);
    old["properties"]["title"] = json!({"type": "keyword"});
    let cluster = Arc::new(Mutex::new(Cluster {
        old_alias: Some("t_note".into()),
        old_mappings: Some(old),
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
            && msg.contains("property `title` changed")
            && msg.contains("strata sync drop"),
        "{msg}"
    );
    let cl = cluster.lock().unwrap();
    assert!(cl.indexes.is_empty(), "no new index was created");
    assert!(
        !(cl.requests.iter()).any(|(m, p, _)| m == "PUT" || p == "/_bulk"),
        "nothing was changed or written: {:?}",
        cl.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_field_goes_into_the_old_indexs_mapping_and_the_sync_carries_on() {
    let mut f = Fixture::new(SCHEMA).await;
    // The index the alias points to was made before the nullable `at` was
    // added to the entity; its numbers spelt as Elasticsearch answers.
    let want = generated_mappings(&f);
    let mut old = want.clone();
    old["properties"].as_object_mut().unwrap().remove("at");
    old["properties"]["amount"]["scaling_factor"] = json!(100);
    let cluster = Arc::new(Mutex::new(Cluster {
        old_alias: Some("t_note".into()),
        old_mappings: Some(old),
        ..Cluster::default()
    }));
    let url = fake_cluster(cluster.clone()).await;
    point_at(&mut f, &url);
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token) SELECT g, 'note ' || g, g, $1 FROM generate_series(1, 20) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.carry(
        &mut c,
        "UPDATE note SET title = 'changed', at = now() WHERE id = 2",
    )
    .await;
    assert!(!run.is_finished(), "the sync stopped");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    {
        let cl = cluster.lock().unwrap();
        assert!(
            cl.indexes.is_empty(),
            "a new index was created: {:?}",
            cl.indexes
        );
        let at = |m: &str, p: &str| (cl.requests.iter()).position(|(rm, rp, _)| rm == m && rp == p);
        let get = at("GET", "/t_note_v00000000").expect("the old index was read");
        let put = at("PUT", "/t_note_v00000000/_mapping").expect("its mapping was extended");
        assert!(get < put);
        let body: Value = serde_json::from_str(&cl.requests[put].2).unwrap();
        assert_eq!(
            body,
            json!({"properties": {"at": want["properties"]["at"].clone()}}),
            "exactly the new property"
        );
        let bulks: Vec<usize> = (cl.requests.iter().enumerate())
            .filter(|(_, (m, p, _))| m == "POST" && p == "/_bulk")
            .map(|(i, _)| i)
            .collect();
        assert!(bulks.len() >= 3 && bulks[0] > put, "{:?}", cl.requests);
        for i in bulks {
            for line in cl.requests[i].2.lines() {
                let a: Value = serde_json::from_str(line).unwrap();
                if let Some(meta) = a.get("index").or(a.get("delete")) {
                    assert_eq!(meta["_index"], "t_note_v00000000", "{line}");
                }
            }
        }
        assert_eq!(cl.docs["2"].1.as_ref().unwrap()["title"], "changed");
        assert!(cl.docs["2"].1.as_ref().unwrap()["at"].is_string());
    }

    // Documents written before the field existed lack it: equal to NULL.
    {
        let mut cl = cluster.lock().unwrap();
        for id in ["1", "3"] {
            let d = cl.docs.get_mut(id).unwrap().1.as_mut().unwrap();
            d.as_object_mut()
                .unwrap()
                .remove("at")
                .expect("written with `at`");
        }
    }
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    assert!(r.equal(), "{:?}", r.differences);
    assert_eq!((r.tables[0].source_rows, r.tables[0].target_rows), (20, 20));
    // But not to a value.
    {
        let mut cl = cluster.lock().unwrap();
        let d = cl.docs.get_mut("2").unwrap().1.as_mut().unwrap();
        d.as_object_mut().unwrap().remove("at");
    }
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    let got: Vec<(String, DiffKind)> = (r.differences.iter())
        .map(|d| (d.key.clone(), d.kind.clone()))
        .collect();
    assert_eq!(got, [("2".to_string(), DiffKind::Differs)]);

    // A restart finds the old index's mapping complete: nothing to put.
    let puts = |cl: &Cluster| (cl.requests.iter()).filter(|(m, _, _)| m == "PUT").count();
    let before = puts(&cluster.lock().unwrap());
    let (stop, run) = f.start(RunOptions::default());
    sqlx::query("INSERT INTO note (id, title, amount, token) VALUES (21, 'after', 1, 'x')")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let cl = cluster.lock().unwrap();
    assert!(cl.docs["21"].1.is_some());
    let gets = (cl.requests.iter())
        .filter(|(m, p, _)| m == "GET" && p == "/t_note_v00000000")
        .count();
    assert_eq!(gets, 2, "read again at the restart");
    assert_eq!(puts(&cl), before, "{:?}", cl.requests);
    assert!(cl.indexes.is_empty());
}

fn point_at(f: &mut Fixture, url: &str) {
    for t in &mut f.pipeline.targets {
        if let TargetSpec::Elasticsearch { url: u, .. } = t {
            *u = url.to_string();
        }
    }
}

/// The slot's acknowledged position, as a number.
async fn confirmed(f: &Fixture, c: &mut sqlx::PgConnection) -> u64 {
    let n: i64 = sqlx::query_scalar(
        "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(f.pipeline.slot(&f.pg.name))
    .fetch_one(c)
    .await
    .unwrap();
    n as u64
}

fn live(cl: &Cluster) -> Vec<String> {
    let mut ids: Vec<String> = (cl.docs.iter())
        .filter(|(_, (_, d))| d.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_deletes_each_document_with_a_versioned_delete_before_the_position_is_acknowledged(
) {
    let mut f = Fixture::new(SCHEMA).await;
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let release = Arc::new(Semaphore::new(0));
    let url = fake_cluster_held(cluster.clone(), release.clone()).await;
    point_at(&mut f, &url);
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token) SELECT g, 'note ' || g, g, $1 FROM generate_series(1, 30) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    {
        let mut cl = cluster.lock().unwrap();
        cl.hold_after_pit = true;
        // What a replay after a crash finds: a document of a change after
        // the TRUNCATE (a version above it), and an older write that came
        // back once Elasticsearch forgot its tombstone.
        cl.at_pit = vec![
            (
                "9999".into(),
                u64::MAX / 2,
                json!({"id": 9999, "title": "later"}),
            ),
            ("8888".into(), 1, json!({"id": 8888, "title": "replayed"})),
        ];
    }
    sqlx::raw_sql(
        "BEGIN;
         INSERT INTO note (id, title, amount, token) VALUES (1001, 'before', 1, 'x'), (1002, 'before', 1, 'x');
         TRUNCATE note;
         INSERT INTO note (id, title, amount, token) VALUES (1001, 'after', 2, 'x'), (2001, 'after', 3, 'x');
         COMMIT;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let start = std::time::Instant::now();
    while !cluster.lock().unwrap().held {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no delete was sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The deletes are applied but not answered: the position must wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked_while_held = confirmed(&f, &mut c).await;
    release.add_permits(1 << 20);
    f.carry(
        &mut c,
        "INSERT INTO note (id, title, amount, token) VALUES (3001, 'next', 4, 'x')",
    )
    .await;
    assert!(!run.is_finished(), "the sync stopped at the TRUNCATE");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let cl = cluster.lock().unwrap();
    let v = cl.docs["2001"].0;
    assert!(
        acked_while_held < v,
        "the TRUNCATE's position ({v}) was acknowledged ({acked_while_held}) before its deletes were"
    );
    assert_eq!(live(&cl), ["1001", "2001", "3001", "9999"]);
    assert_eq!(cl.docs["1001"].1.as_ref().unwrap()["title"], "after");
    assert_eq!(
        cl.docs["1001"].0, v,
        "the row written after the TRUNCATE went over its tombstone"
    );
    assert!(cl.docs["3001"].0 > v);
    // The requests: refresh, a point in time on the index, pages sorted by
    // `_shard_doc` without sources, then versioned deletes of every id.
    let index = cl.indexes[0].clone();
    let at = |m: &str, p: &str| {
        (cl.requests.iter())
            .position(|(rm, rp, _)| rm == m && rp == p)
            .unwrap_or_else(|| panic!("no {m} {p}: {:?}", cl.requests))
    };
    let pit = at("POST", &format!("/{index}/_pit?keep_alive=5m"));
    assert!(at("POST", &format!("/{index}/_refresh")) < pit);
    let search: Value = serde_json::from_str(&cl.requests[at("POST", "/_search")].2).unwrap();
    assert_eq!(search["_source"], false);
    let mut deleted: Vec<String> = Vec::new();
    for (_, _, body) in (cl.requests.iter().skip(pit)).filter(|(_, p, _)| p == "/_bulk") {
        for line in body.lines() {
            let a: Value = serde_json::from_str(line).unwrap();
            let Some(d) = a.get("delete") else { continue };
            assert_eq!(d["version"], v, "{line}");
            assert_eq!(d["version_type"], "external_gte", "{line}");
            assert_eq!(d["_index"], index.as_str(), "{line}");
            deleted.push(d["_id"].as_str().unwrap().to_string());
        }
    }
    deleted.sort_by_key(|d| d.parse::<u64>().unwrap());
    let mut want: Vec<String> = (1..=30).map(|i| i.to_string()).collect();
    want.extend(["1001", "1002", "8888", "9999"].map(String::from));
    assert_eq!(
        deleted, want,
        "one versioned delete per document at the TRUNCATE"
    );
    assert!(cl.docs["1002"].1.is_none() && cl.docs["8888"].1.is_none());
    assert!(
        cl.requests
            .iter()
            .any(|(m, p, _)| m == "DELETE" && p == "/_pit"),
        "the point in time was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_compares_every_document_by_id_and_source_through_the_alias() {
    let mut f = Fixture::new(SCHEMA).await;
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let url = fake_cluster(cluster.clone()).await;
    point_at(&mut f, &url);
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token, at) SELECT g, 'note ' || g, g * 0.25, $1, now() FROM generate_series(1, 40) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    {
        // Another order of the same fields is the same document.
        let mut cl = cluster.lock().unwrap();
        let d = cl.docs.get_mut("8").unwrap().1.as_mut().unwrap();
        let reversed: serde_json::Map<String, Value> = (d.as_object().unwrap().iter().rev())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *d = Value::Object(reversed);
    }
    for rows in [1_000_000, 7] {
        let r = sync::verify_in_buckets(&f.pipeline, None, rows)
            .await
            .unwrap();
        assert!(r.equal(), "{rows}: {:?}", r.differences);
        assert_eq!(
            (r.tables[0].source_rows, r.tables[0].target_rows),
            (40, 40),
            "{rows}"
        );
    }
    {
        // One missing, one different, one extra.
        let mut cl = cluster.lock().unwrap();
        cl.docs.remove("5");
        cl.docs.get_mut("7").unwrap().1.as_mut().unwrap()["title"] = json!("changed");
        let mut extra = cl.docs["6"].clone();
        extra.1.as_mut().unwrap()["id"] = json!(9999);
        cl.docs.insert("9999".into(), extra);
    }
    for rows in [1_000_000, 7] {
        let r = sync::verify_in_buckets(&f.pipeline, None, rows)
            .await
            .unwrap();
        let mut got: Vec<(String, DiffKind)> = (r.differences.iter())
            .map(|d| (d.key.clone(), d.kind.clone()))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("5".to_string(), DiffKind::Missing),
                ("7".to_string(), DiffKind::Differs),
                ("9999".to_string(), DiffKind::Extra),
            ],
            "buckets of {rows}"
        );
        assert_eq!((r.tables[0].source_rows, r.tables[0].target_rows), (40, 40));
        assert_eq!(r.tables[0].target, "search");
    }
    let cl = cluster.lock().unwrap();
    assert!(
        (cl.requests.iter()).any(|(m, p, _)| m == "POST" && p == "/t_note/_pit?keep_alive=5m"),
        "read through the alias: {:?}",
        cl.requests.iter().map(|r| &r.1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_command_compares_an_elasticsearch_target_and_fails_on_a_difference() {
    let mut f = Fixture::new(SCHEMA).await;
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let url = fake_cluster(cluster.clone()).await;
    point_at(&mut f, &url);
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token) SELECT g, 'note ' || g, g, $1 FROM generate_series(1, 10) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let dir = TempDir::new("es_verify");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let verify = |url: String, db: String, schema: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(strata_bin())
                .args(["sync", "verify"])
                .arg(&schema)
                .args(["--database-url", &db, "--to", "search"])
                .env("ELASTIC_URL", &url)
                .env("DATABASE_URL", &db)
                .output()
                .unwrap()
        })
    };
    let out = verify(url.clone(), f.pg.url.clone(), schema.clone())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("search: public.note: source 10 rows, target 10 rows")
            || stdout.contains("search: note: source 10 rows, target 10 rows"),
        "{stdout}"
    );
    cluster.lock().unwrap().docs.remove("3");
    let out = verify(url, f.pg.url.clone(), schema).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Missing search.") && stdout.contains("key 3"),
        "{stdout}"
    );
    assert!(stdout.contains("different"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_truncate_and_verify_when_elastic_url_is_set() {
    let Ok(url) = std::env::var("ELASTIC_URL") else {
        eprintln!("skipped: ELASTIC_URL is not set (no Elasticsearch server here)");
        return;
    };
    // An index of its own: the other live test runs alongside.
    let mut f = Fixture::new(&SCHEMA.replace("index_prefix: t }", "index_prefix: tlive }")).await;
    point_at(&mut f, &url);
    let TargetSpec::Elasticsearch { indexes, .. } = f.pipeline.targets[0].clone() else {
        unreachable!()
    };
    let http = reqwest::Client::new();
    // What an earlier failed run left.
    let _ = http
        .delete(format!("{url}/{}", indexes[0].index))
        .send()
        .await;
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token, at) SELECT g, 'note ' || g, g * 0.5, $1, now() FROM generate_series(1, 30) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    assert!(r.equal(), "{:?}", r.differences);
    sqlx::raw_sql(
        "BEGIN;
         INSERT INTO note (id, title, amount, token) VALUES (1001, 'before', 1, 'x');
         TRUNCATE note;
         INSERT INTO note (id, title, amount, token) VALUES (1001, 'after', 2, 'x'), (2001, 'after', 3, 'x');
         COMMIT;
         INSERT INTO note (id, title, amount, token) VALUES (3001, 'next', 4, 'x');",
    )
    .execute(&mut c)
    .await
    .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    assert!(r.equal(), "{:?}", r.differences);
    assert_eq!((r.tables[0].source_rows, r.tables[0].target_rows), (3, 3));
    http.delete(format!("{url}/{}/_doc/2001?refresh=true", indexes[0].index))
        .send()
        .await
        .unwrap();
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    assert_eq!(r.differences.len(), 1, "{:?}", r.differences);
    assert_eq!(r.differences[0].kind, DiffKind::Missing);
    let _ = http
        .delete(format!("{url}/{}", indexes[0].index))
        .send()
        .await;
}

/// The migration `strata migrate diff` writes from schema `v1` to `v2`.
fn generated_migration(v1: &str, v2: &str) -> String {
    use strata_codegen::postgres::{catalog::catalog, diff::DiffOptions, migration};
    let m1 = strata_codegen::compile_str("schema.yaml", v1).unwrap();
    let m2 = strata_codegen::compile_str("schema.yaml", v2).unwrap();
    let main = |m: &strata_codegen::Model| m.store_id("main").unwrap();
    let (old, new) = (catalog(&m1, main(&m1)), catalog(&m2, main(&m2)));
    let plan = migration::plan(&old, &new, &DiffOptions::default(), false).unwrap();
    let files = migration::files(&plan, 2, "add_extra", &new).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].sql.clone()
}

/// The whole path: the generated migration adds a nullable field while
/// the sync streams, the library run stops for a reload, and the run with
/// the new schema puts the field into the index the alias points to and
/// carries on without copying the table again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_migration_adding_a_field_carries_on_into_the_same_index() {
    let mut f = Fixture::new(SCHEMA).await;
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let url = fake_cluster(cluster.clone()).await;
    point_at(&mut f, &url);
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token) SELECT g, 'note ' || g, g, $1 FROM generate_series(1, 20) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    {
        // The alias now points to the index just made (under the fake's
        // name for it), with the mapping of the schema before the field.
        let mut cl = cluster.lock().unwrap();
        cl.old_alias = Some("t_note".into());
        cl.old_mappings = Some(generated_mappings(&f));
    }
    let v2 = SCHEMA.replace(
        "      at: { type: timestamptz, nullable: true }\n",
        "      at: { type: timestamptz, nullable: true }\n      extra: { type: text, nullable: true }\n",
    );
    assert_ne!(v2, SCHEMA);
    let sql = generated_migration(SCHEMA, &v2);
    sqlx::raw_sql(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("UPDATE note SET extra = 'after ' || id WHERE id <= 3")
        .execute(&mut c)
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops at the first change carrying the column")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&e, sync::SyncError::SchemaReload { column, .. } if column == "extra"),
        "{e}"
    );
    drop(stop);
    let untouched = cluster.lock().unwrap().docs["10"].0;

    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    point_at(&mut f, &url);
    let (stop, run) = f.start(RunOptions::default());
    f.carry(&mut c, "UPDATE note SET extra = 'later' WHERE id = 4")
        .await;
    assert!(!run.is_finished(), "the sync stopped");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    {
        let cl = cluster.lock().unwrap();
        assert_eq!(
            cl.indexes.len(),
            1,
            "a new index was created: {:?}",
            cl.indexes
        );
        let put = (cl.requests.iter())
            .find(|(m, p, _)| m == "PUT" && p == "/t_note_v00000000/_mapping")
            .expect("the field was put into the old index's mapping");
        let body: Value = serde_json::from_str(&put.2).unwrap();
        assert_eq!(
            body,
            json!({"properties": {"extra": {"type": "keyword", "ignore_above": 1024}}})
        );
        let extra = |id: &str| cl.docs[id].1.as_ref().unwrap()["extra"].clone();
        assert_eq!(
            [extra("1"), extra("3"), extra("4"), extra("5")],
            [
                json!("after 1"),
                json!("after 3"),
                json!("later"),
                Value::Null
            ]
        );
        assert_eq!(cl.docs["10"].0, untouched, "the table was copied again");
    }
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    assert!(r.equal(), "{:?}", r.differences);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_added_field_goes_into_the_aliased_index_when_elastic_url_is_set() {
    let Ok(url) = std::env::var("ELASTIC_URL") else {
        eprintln!("skipped: ELASTIC_URL is not set (no Elasticsearch server here)");
        return;
    };
    // An index of its own: the other live tests run alongside.
    let mut f = Fixture::new(&SCHEMA.replace("index_prefix: t }", "index_prefix: tadd }")).await;
    point_at(&mut f, &url);
    let TargetSpec::Elasticsearch { indexes, .. } = f.pipeline.targets[0].clone() else {
        unreachable!()
    };
    let (new, alias) = (indexes[0].index.clone(), indexes[0].alias.clone().unwrap());
    let old = format!("{alias}_v00000000");
    let http = reqwest::Client::new();
    for i in [&new, &old] {
        let _ = http.delete(format!("{url}/{i}")).send().await;
    }
    // The index of the schema before the nullable `at`, under the alias.
    let mut body = indexes[0].create_body.clone();
    body["mappings"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("at");
    let r = http
        .put(format!("{url}/{old}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let mut c = f.conn().await;
    sqlx::query("INSERT INTO note (id, title, amount, token) SELECT g, 'note ' || g, g, $1 FROM generate_series(1, 10) g")
        .bind(SECRET)
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.carry(&mut c, "UPDATE note SET at = now() WHERE id = 2")
        .await;
    assert!(!run.is_finished(), "the sync stopped");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    let head = http.head(format!("{url}/{new}")).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 404, "a new index was created");
    let m: Value = (http
        .get(format!("{url}/{old}/_mapping"))
        .send()
        .await
        .unwrap())
    .json()
    .await
    .unwrap();
    assert_eq!(
        m[&old]["mappings"]["properties"]["at"]["type"], "date_nanos",
        "{m}"
    );
    let r = sync::verify(&f.pipeline, None).await.unwrap();
    assert!(r.equal(), "{:?}", r.differences);
    assert_eq!((r.tables[0].source_rows, r.tables[0].target_rows), (10, 10));
    let _ = http.delete(format!("{url}/{old}")).send().await;
}
