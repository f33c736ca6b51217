//! While a target is down and its writes are retried, `strata sync run`'s
//! lag metrics keep following the clock. They used to freeze at their last
//! value (0 after catching up) for as long as the retry lasted, because the
//! position was recorded only between writes: `/metrics` showed a stuck
//! pipeline as caught up. Here ClickHouse sits behind a TCP proxy that the
//! test cuts and restores.

mod pg_common;
mod sync_common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_common::strata_bin;
use sync_common::{insert_accounts, metrics_addr, Fixture, SCHEMA};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to `upstream` that can be cut: open connections are closed
/// and new ones are closed on accept.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, k) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let upstream = upstream.clone();
                k.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Proxy {
            port,
            cut,
            conns,
            accept,
        }
    }
    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            self.conns.lock().unwrap().drain(..).for_each(|h| h.abort());
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set_cut(true);
    }
}

fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains("main_analytics"))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn lag(http: &reqwest::Client, addr: &str) -> (f64, f64) {
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .unwrap();
    (
        value(&text, "strata_sync_lag_bytes").unwrap_or(0.0),
        value(&text, "strata_sync_lag_seconds").unwrap_or(0.0),
    )
}

#[tokio::test]
async fn lag_metrics_move_while_a_target_is_down() {
    let f = Fixture::new(SCHEMA).await;
    insert_accounts(&mut f.conn().await, 1, 100).await;
    let ch = std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let upstream = ch
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(upstream).await;
    let dir = std::env::temp_dir().join(format!("strata_sync_lag_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let mut child = Command::new(strata_bin())
        .args(["sync", "run", schema.to_str().unwrap()])
        .args(["--database-url", &f.pg.url])
        .args(["--clickhouse-database", &f.ch.name])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env("CLICKHOUSE_URL", format!("http://127.0.0.1:{}", proxy.port))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata sync run");
    let addr = metrics_addr(&mut child);
    f.caught_up(Duration::from_secs(60)).await;

    proxy.set_cut(true);
    insert_accounts(&mut f.conn().await, 1_000, 50).await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let (bytes, secs) = lag(&http, &addr).await;
        if bytes > 0.0 && secs > 0.0 {
            break secs;
        }
        assert!(
            Instant::now() < deadline,
            "the lag shows within 20 s: {bytes} B, {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Still down: the lag keeps growing with the clock.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, later) = lag(&http, &addr).await;
    assert!(later >= first + 2.0, "lag {first} s, 5 s later {later} s");

    proxy.set_cut(false);
    f.caught_up(Duration::from_secs(60)).await;
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
