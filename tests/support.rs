//! Helpers shared by the integration tests in `tests/tests/`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Compiles a schema file or folder given relative to the tests crate
/// (`fixtures/valid/x.yaml`, `../schema`), panicking with the diagnostics.
pub fn model(path: &str) -> strata_codegen::Model {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let sources = strata_codegen::load(&full).expect("load");
    strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

/// Runs `statements`, then `queries`, on chdb (a modern ClickHouse engine in
/// process, through `tests/python/chdb_run.py`); returns each query's rows.
/// Asserts the engine is modern, so a test never silently runs on 18.16.
pub fn chdb(statements: &[String], queries: &[&str]) -> Vec<Vec<Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/chdb_run.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let job = json!({ "statements": statements, "queries": queries });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(job.to_string().as_bytes())
        .expect("write job");
    let out = child.wait_with_output().expect("chdb finishes");
    assert!(
        out.status.success(),
        "chdb failed (is chdb-core installed? `pip install chdb-core`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let version = v["version"].as_str().unwrap_or_default().to_string();
    assert!(
        !version.starts_with("18."),
        "chdb is a modern engine, got {version}"
    );
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r.as_array().expect("rows").clone())
        .collect()
}

/// Accepts one HTTP request on `listener`, answers 200 and returns its head
/// and (de-chunked) body: what a client really put on the wire.
pub async fn capture_one(listener: tokio::net::TcpListener) -> (String, Vec<u8>) {
    let (sock, _) = listener.accept().await.unwrap();
    let mut r = BufReader::new(sock);
    let mut head = String::new();
    let mut chunked = false;
    let mut length = None;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        let l = line.to_ascii_lowercase();
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await.unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).await.unwrap();
    }
    r.get_mut()
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    (head, body)
}

/// The ClickHouse 18.16 server of the tests (`CLICKHOUSE_URL`).
pub fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A ClickHouse database of one test on the 18.16 server, dropped when the
/// test ends (even when it fails).
pub struct ClickHouseDb {
    pub name: String,
    admin: ::clickhouse::Client,
}

impl Default for ClickHouseDb {
    fn default() -> Self {
        Self::new()
    }
}

impl ClickHouseDb {
    /// A fresh, uniquely named database (created by the first DDL applied).
    pub fn new() -> Self {
        ClickHouseDb {
            name: format!("strata_test_{}", uuid::Uuid::new_v4().simple()),
            admin: ::clickhouse::Client::default()
                .with_url(clickhouse_url())
                .with_validation(false),
        }
    }

    /// Creates, in this database, the 18.16 DDL of the tables of store
    /// `store` in `model` whose entity `keep` accepts.
    pub async fn create_tables(
        &self,
        model: &strata_codegen::Model,
        store: &str,
        keep: impl Fn(&strata_codegen::model::Entity) -> bool,
    ) {
        use strata_codegen::clickhouse::{self, DdlOptions, Target};
        let opts = DdlOptions::default()
            .with_target(Target {
                major: 18,
                minor: 16,
            })
            .with_database(&self.name)
            .single_node();
        for (s, e) in clickhouse::tables(model) {
            if s != store || !keep(e) {
                continue;
            }
            for st in clickhouse::statements(model, s, e, &opts) {
                self.admin
                    .query(&st)
                    .execute()
                    .await
                    .unwrap_or_else(|err| panic!("{err}\n{st}"));
            }
        }
    }

    /// A client of this database, as the SDK builds one.
    pub fn client(&self) -> ::clickhouse::Client {
        strata_sdk::clickhouse::client(&clickhouse_url(), &self.name)
    }
}

impl Drop for ClickHouseDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        // Drop runs while the test's runtime is blocked: a fresh client (its
        // own connection pool) on a small runtime of its own does the job.
        let _ = std::thread::spawn(move || {
            let admin = ::clickhouse::Client::default().with_url(clickhouse_url());
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(admin.query(&sql).execute()))
        })
        .join();
    }
}
