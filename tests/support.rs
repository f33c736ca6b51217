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
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    serve_script(listener, vec![ok.to_string()])
        .await
        .pop()
        .expect("one request")
}

/// Answers each incoming request, one connection each, with the next of
/// `responses` (raw HTTP, head and body); returns each request's head and
/// body (a `Content-Length` or chunked body, de-chunked). For the HTTP
/// clients no server here can drive: scripted throttling and error answers.
pub async fn serve_script(
    listener: tokio::net::TcpListener,
    responses: Vec<String>,
) -> Vec<(String, Vec<u8>)> {
    let mut seen = Vec::new();
    for response in responses {
        let (sock, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(sock);
        seen.push(read_request(&mut r).await);
        r.get_mut().write_all(response.as_bytes()).await.unwrap();
    }
    seen
}

/// A `200 OK` carrying `body` as JSON, closing the connection.
pub fn json_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP request (head, de-chunked body) from a connection.
pub async fn read_request(r: &mut BufReader<tokio::net::TcpStream>) -> (String, Vec<u8>) {
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
        if line == "\r\n" || line.is_empty() {
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
    (head, body)
}

/// A RowBinary body in a temporary file, for chdb to load; the file goes
/// away with this value.
pub struct RowsFile {
    dir: std::path::PathBuf,
    /// `INSERT INTO <table> SELECT * FROM file(…, 'RowBinary', <columns>)`.
    pub insert: String,
}

impl RowsFile {
    /// Writes `body` and builds the statement loading it into `table`, with
    /// the columns read, in order, from the table's `create` statement.
    pub fn new(create: &str, table: &str, body: &[u8]) -> RowsFile {
        let dir =
            std::env::temp_dir().join(format!("strata_rows_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("rows.bin");
        std::fs::write(&data, body).unwrap();
        let cols = create
            .split("\n(\n")
            .nth(1)
            .and_then(|rest| rest.split("\n)\nENGINE").next())
            .expect("column list")
            .lines()
            .map(|l| l.trim().trim_end_matches(','))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!(
            "INSERT INTO {table} SELECT * FROM file('{}', 'RowBinary', '{}')",
            data.display(),
            cols.replace('\'', "\\'")
        );
        RowsFile { dir, insert }
    }
}

impl Drop for RowsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The PostgreSQL server of the tests: `DATABASE_URL`, or the local default.
pub fn pg_admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `pg_admin_url` with another database name (query parameters kept).
pub fn pg_url_for(db: &str) -> String {
    let admin = pg_admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let cut = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..cut])
}

/// A fresh PostgreSQL database of one test, dropped (connections and all)
/// when this value is dropped, also when the test fails.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn new() -> PgDatabase {
        use sqlx::Connection;
        let name = format!("strata_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
            .await
            .expect("PostgreSQL is running (scripts/services.sh) and DATABASE_URL reaches it");
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let url = pg_url_for(&name);
        PgDatabase { name, url }
    }

    pub async fn connect(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime the test may still hold: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        })
        .join();
    }
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
        let store = model.store_id(store).expect("a store of the model");
        for (s, e) in clickhouse::tables(model) {
            if s != store || !keep(e) {
                continue;
            }
            for st in clickhouse::statements(&model[s], e, &opts) {
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

/// A trading order's ClickHouse row `i` at `version` (`deleted`: a
/// tombstone), with awkward text: quotes, a backslash, unicode, a newline.
pub fn order_row(
    i: u128,
    version: u64,
    deleted: u8,
) -> deepalpha_db::clickhouse::analytics::OrderRow {
    let t0 = chrono::DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap();
    deepalpha_db::clickhouse::analytics::OrderRow {
        id: uuid::Uuid::from_u128(i),
        client_order_id: format!("c-{i}-v{version}"),
        exchange_order_id: (i % 2 == 0).then(|| format!("x'{i}\\\"")),
        decision_id: None,
        strategy_id: Some(uuid::Uuid::from_u128(i * 7)),
        symbol: "BTCUSDT".into(),
        side: "BUY".into(),
        order_type: "LIMIT".into(),
        time_in_force: "GTC".into(),
        status: if version > 1 { "FILLED" } else { "NEW" }.into(),
        quantity: rust_decimal::Decimal::new(12_345_678_901_234_567, 8)
            * rust_decimal::Decimal::from(version),
        price: Some(rust_decimal::Decimal::new(-99_999_999_999, 8)),
        stop_price: None,
        filled_quantity: rust_decimal::Decimal::ZERO,
        average_fill_price: Some(rust_decimal::Decimal::new(1, 8)),
        fee: rust_decimal::Decimal::new(5, 2),
        fee_currency: Some("USDT".into()),
        notes: Some("naïve \u{1F680} note, with 'quotes'\nand lines".into()),
        submitted_at: Some(t0 + chrono::Duration::microseconds(i as i64)),
        filled_at: None,
        created_at: t0,
        updated_at: t0 + chrono::Duration::seconds(version as i64),
        version: version as i64,
        _version: version,
        _deleted: deleted,
    }
}

/// How a [`Gate`] treats the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateMode {
    /// Forward to the server behind it.
    Open = 0,
    /// Accept and close at once: a server that is down, as a client sees it.
    Closed = 1,
    /// Accept and never answer: a server stopped with `kill -STOP` (the
    /// kernel still accepts its connections), without stopping a server
    /// other tests share.
    Frozen = 2,
}

/// A TCP proxy on loopback in front of a real server, which a test switches
/// between forwarding, refusing and freezing. A mode applies to connections
/// accepted after it is set (clients keep connections alive, so tests set
/// the mode before the writer's first request, or wait for a new one).
pub struct Gate {
    /// `http://127.0.0.1:<port>`: give this to the client instead of the server's.
    pub url: String,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    /// A gate to `server` (`http://host:port`), in `mode`.
    pub async fn new(server: &str, mode: GateMode) -> Gate {
        use std::sync::atomic::Ordering;
        let target = server
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let gate = Gate {
            url,
            mode: std::sync::Arc::new(std::sync::atomic::AtomicU8::new(mode as u8)),
            accepted: Default::default(),
        };
        let (m, n) = (gate.mode.clone(), gate.accepted.clone());
        tokio::spawn(async move {
            let mut frozen = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                match m.load(Ordering::SeqCst) {
                    0 => {
                        let target = target.clone();
                        tokio::spawn(async move {
                            if let Ok(mut up) = tokio::net::TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
                            }
                        });
                    }
                    1 => drop(sock),
                    _ => frozen.push(sock),
                }
            }
        });
        gate
    }

    /// Switches the mode for connections accepted from now on.
    pub fn set(&self, mode: GateMode) {
        self.mode
            .store(mode as u8, std::sync::atomic::Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
