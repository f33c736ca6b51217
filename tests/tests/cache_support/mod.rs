//! Shared pieces of the cache tests: a cached entity written by hand, its
//! table in a fresh database, a store on the shared Redis under a key
//! prefix of its own (deleted afterwards), and a private `redis-server`
//! a test may stop and restart.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata_sdk::cache::{Cache, CacheConfig, Store};

pub mod load;

#[path = "../sdk_support/mod.rs"]
mod sdk_support;
pub use sdk_support::TestDb;

/// An account, cached for 30 s.
#[derive(
    Debug,
    Clone,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    strata_derive::Entity,
)]
#[strata(table = "accounts", key(id), cache(ttl_ms = 30000))]
pub struct Account {
    pub id: i64,
    pub owner: String,
    pub balance: i64,
    pub note: Option<String>,
    pub tags: serde_json::Value,
}

pub const DDL: &str = r#"CREATE TABLE "accounts" (
    "id" bigint PRIMARY KEY, "owner" text NOT NULL, "balance" bigint NOT NULL,
    "note" text, "tags" jsonb NOT NULL);"#;

pub fn account(id: i64, balance: i64) -> NewAccount {
    NewAccount {
        id,
        owner: format!("owner-{id}"),
        balance,
        note: (id % 2 == 0).then(|| format!("note {id}")),
        tags: serde_json::json!({"n": id, "f": 0.1, "list": [1, "two", null]}),
    }
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test uses.
pub fn prefix() -> String {
    format!("strata_test_{}", uuid::Uuid::new_v4().simple())
}

/// A database with `accounts` and a store on it, caching under a fresh
/// prefix of the shared Redis (its keys are deleted on drop).
pub struct Fixture {
    pub store: Store,
    pub db: TestDb,
    pub cleanup: Cleanup,
}

pub async fn fixture() -> Fixture {
    fixture_with(|c| c).await
}

pub async fn fixture_with(cfg: impl FnOnce(CacheConfig) -> CacheConfig) -> Fixture {
    let db = TestDb::with_ddl(DDL).await;
    let prefix = prefix();
    let cache = Cache::connect(cfg(CacheConfig::new(redis_url(), &prefix)))
        .await
        .expect("cache");
    let store = Store::new(db.pool.clone(), cache);
    Fixture {
        store,
        db,
        cleanup: Cleanup {
            url: redis_url(),
            prefix,
        },
    }
}

/// Deletes every key under a prefix when dropped.
pub struct Cleanup {
    pub url: String,
    pub prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(c) = redis::Client::open(self.url.as_str()) {
            if let Ok(mut conn) = c.get_connection() {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}:*", self.prefix))
                    .query(&mut conn)
                    .unwrap_or_default();
                for k in keys {
                    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(k).query(&mut conn);
                }
            }
        }
    }
}

/// A raw connection to a Redis URL, for looking at what the cache stored.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A `redis-server` of this test's own, on a free loopback port, keeping
/// nothing on disk. Killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = PrivateRedis { port, child: None };
        r.restart();
        r
    }
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    /// Starts it again (empty) on the same port, waiting until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        for _ in 0..200 {
            if let Ok(c) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = c.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("private redis-server did not start on {}", self.port);
    }
    /// Kills it (SIGKILL: no goodbye to clients), waiting for the exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// Pauses it (SIGSTOP): connected, but answering nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }
    pub fn resume(&self) {
        self.signal("-CONT");
    }
    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// A loopback port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` process of this test's own (a replica, a sentinel),
/// killed, and its folder removed, when dropped.
pub struct Sentinel {
    child: Child,
    dir: std::path::PathBuf,
}

impl Sentinel {
    /// A sentinel (quorum 1, a master down after 500 ms, failover within
    /// 5 s) watching the master on `master_port` as `strata`, and its
    /// `redis+sentinel://…/strata` URL.
    pub fn start(master_port: u16) -> (Sentinel, String) {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("strata-sentinel-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor strata 127.0.0.1 {master_port} 1\nsentinel down-after-milliseconds strata 500\nsentinel failover-timeout strata 5000\n"
            ),
        )
        .unwrap();
        let s = spawn(&[conf.to_str().unwrap(), "--sentinel"], dir);
        (s, format!("redis+sentinel://127.0.0.1:{port}/strata"))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `redis-server args…` in `dir`; the guard kills it.
pub fn spawn(args: &[&str], dir: std::path::PathBuf) -> Sentinel {
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args(args)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    Sentinel { child, dir }
}

/// A replica of the master on `master_port`, on a free port, and its URL.
pub fn replica_of(master_port: u16) -> (Sentinel, String) {
    let port = free_port();
    let r = spawn(
        &[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--replicaof",
            "127.0.0.1",
            &master_port.to_string(),
        ],
        std::env::temp_dir().join(format!("strata-replica-{port}")),
    );
    (r, format!("redis://127.0.0.1:{port}"))
}

/// `INFO section` of the server at `url` (empty when it does not answer).
pub async fn info(url: &str, section: &str) -> String {
    match redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
    {
        Ok(mut c) => redis::cmd("INFO")
            .arg(section)
            .query_async(&mut c)
            .await
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `f` every 100 ms for up to `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {secs} s");
}
