//! Health checks per store, each bounded by a timeout, returning a typed
//! [`Report`]: PostgreSQL (the primary and each replica, with its replay
//! lag in seconds and bytes), Redis (`PING`), ClickHouse (`/ping`),
//! Elasticsearch (`/_cluster/health`), InfluxDB and VictoriaMetrics
//! (`/ping`, then `/health`).
//!
//! A check never fails: a store that does not answer in time, refuses the
//! connection or answers wrongly is [`Status::Down`] with the reason (which
//! names the server, never a password). A PostgreSQL store whose primary is
//! up but one of whose replicas is down, not a standby, or further behind
//! than the default `max_lag` ([`crate::postgres::ReplicaPolicy`], 5 s) is
//! [`Status::Degraded`]: reads still work (they fall back to the primary).
//! [`Report::ok`] is false when a *required* store is down.
//!
//! ```ignore
//! let checks = vec![Check::postgres("main", &main_pool_config()), Check::redis("cache", "redis://127.0.0.1:6379")];
//! let report = strata_sdk::health::run(&checks, Duration::from_secs(2)).await;
//! assert!(report.ok);
//! ```

use std::time::{Duration, Instant};

use serde::Serialize;

/// A store's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every server answered.
    Up,
    /// The store serves (its primary is up) but a replica does not.
    Degraded,
    /// The store does not serve.
    Down,
}

/// One server of a store (PostgreSQL has a primary and replicas; the
/// others have one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    /// `primary`, `replica` or `server`.
    pub role: &'static str,
    /// `host:port` (and `/database` for PostgreSQL); never credentials.
    pub name: String,
    pub up: bool,
    /// How long the check took, in milliseconds.
    pub latency_ms: f64,
    /// A replica's replay lag in seconds (zero when it has replayed all it
    /// received).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_lag_seconds: Option<f64>,
    /// How many bytes of WAL the replica is behind the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_lag_bytes: Option<u64>,
    /// Why it is down; or, for a replica that is up, why `replica()`
    /// skips it (replaying further behind than the default `max_lag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One store's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreHealth {
    pub store: String,
    /// `postgres`, `redis`, `clickhouse`, `elasticsearch`, `influxdb`.
    pub kind: &'static str,
    /// A required store that is down makes the report not ok.
    pub required: bool,
    pub status: Status,
    pub servers: Vec<Server>,
}

/// Every store's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// No required store is down.
    pub ok: bool,
    pub stores: Vec<StoreHealth>,
}

/// What to check for one store.
#[derive(Debug, Clone)]
pub struct Check {
    pub store: String,
    pub required: bool,
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        replicas: Vec<String>,
    },
    Redis(String),
    ClickHouse(String),
    Elasticsearch(String),
    InfluxDb(String),
}

impl Check {
    /// A PostgreSQL store: its primary and every replica of `config`
    /// (URL templates expanded from the environment when checked).
    #[cfg(feature = "postgres")]
    pub fn postgres(store: &str, config: &crate::postgres::PoolConfig) -> Check {
        Check::new(
            store,
            Target::Postgres {
                url: config.url.clone(),
                replicas: config.replicas.clone(),
            },
        )
    }
    /// A Redis server (`redis://[user:password@]host[:port]`, a template).
    pub fn redis(store: &str, url: &str) -> Check {
        Check::new(store, Target::Redis(url.into()))
    }
    /// A ClickHouse server's HTTP interface (a template).
    pub fn clickhouse(store: &str, url: &str) -> Check {
        Check::new(store, Target::ClickHouse(url.into()))
    }
    /// An Elasticsearch cluster (a template).
    pub fn elasticsearch(store: &str, url: &str) -> Check {
        Check::new(store, Target::Elasticsearch(url.into()))
    }
    /// An InfluxDB (v1 or v2) or VictoriaMetrics server (a template).
    pub fn influxdb(store: &str, url: &str) -> Check {
        Check::new(store, Target::InfluxDb(url.into()))
    }
    fn new(store: &str, target: Target) -> Check {
        Check {
            store: store.into(),
            required: true,
            target,
        }
    }
    /// Whether a down store makes the report not ok (default: yes).
    pub fn with_required(mut self, required: bool) -> Check {
        self.required = required;
        self
    }
    /// The store's kind.
    pub fn kind(&self) -> &'static str {
        match &self.target {
            #[cfg(feature = "postgres")]
            Target::Postgres { .. } => "postgres",
            Target::Redis(_) => "redis",
            Target::ClickHouse(_) => "clickhouse",
            Target::Elasticsearch(_) => "elasticsearch",
            Target::InfluxDb(_) => "influxdb",
        }
    }
}

/// Runs every check concurrently, each server bounded by `timeout`, and
/// records `strata_health_up{store, kind}`.
pub async fn run(checks: &[Check], timeout: Duration) -> Report {
    let stores = futures_util::future::join_all(checks.iter().map(|c| check(c, timeout))).await;
    for s in &stores {
        let labels = [("store", s.store.clone()), ("kind", s.kind.to_string())];
        let up = if s.status == Status::Down { 0.0 } else { 1.0 };
        metrics::gauge!(crate::metrics::HEALTH_UP, &labels).set(up);
    }
    Report {
        ok: stores
            .iter()
            .all(|s| !s.required || s.status != Status::Down),
        stores,
    }
}

async fn check(c: &Check, timeout: Duration) -> StoreHealth {
    let servers = match &c.target {
        #[cfg(feature = "postgres")]
        Target::Postgres { url, replicas } => postgres::check(url, replicas, timeout).await,
        Target::Redis(url) => redis_servers(url, timeout).await,
        Target::ClickHouse(url) => vec![timed(url, timeout, http(url, &["/ping"])).await],
        Target::Elasticsearch(url) => {
            vec![timed(url, timeout, http(url, &["/_cluster/health"])).await]
        }
        Target::InfluxDb(url) => vec![timed(url, timeout, http(url, &["/ping", "/health"])).await],
    };
    let primary_up = servers.first().is_some_and(|s| s.up);
    let status = match (
        primary_up,
        servers.iter().all(|s| s.up && s.error.is_none()),
    ) {
        (true, true) => Status::Up,
        (true, false) => Status::Degraded,
        (false, _) => Status::Down,
    };
    StoreHealth {
        store: c.store.clone(),
        kind: c.kind(),
        required: c.required,
        status,
        servers,
    }
}

/// Runs one server's check within `timeout`.
async fn timed(
    template: &str,
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> Server {
    let name = host_of(template);
    let (out, took) = within(timeout, probe).await;
    Server {
        role: "server",
        name,
        up: out.is_ok(),
        latency_ms: took.as_secs_f64() * 1e3,
        replay_lag_seconds: None,
        replay_lag_bytes: None,
        error: out.err(),
    }
}

/// Runs `probe` bounded by `timeout`: its outcome and how long it took.
/// An answer that came later than the timeout (the timer's resolution is a
/// millisecond) counts as none, so a server reported up always has a
/// latency within the timeout, and one reported as not answering a latency
/// of at least the timeout.
async fn within<T>(
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<T, String>>,
) -> (Result<T, String>, Duration) {
    let started = Instant::now();
    let r = tokio::time::timeout(timeout, probe).await;
    let took = started.elapsed();
    let late = || {
        Err(format!(
            "no answer within {} ms",
            timeout.as_secs_f64() * 1e3
        ))
    };
    let out = match r {
        Ok(_) if took > timeout => late(),
        Ok(r) => r,
        Err(_) => late(),
    };
    (out, took)
}

/// `host:port` of a URL template, expanded (never its credentials).
fn host_of(template: &str) -> String {
    let url = crate::template::expand_with(template, |v| std::env::var(v).ok())
        .unwrap_or_else(|_| template.to_string());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or_default();
    rest.rsplit_once('@').map_or(rest, |(_, h)| h).to_string()
}

fn expand(template: &str) -> Result<String, String> {
    crate::template::expand_with(template, |v| std::env::var(v).ok()).map_err(|e| e.to_string())
}

/// `PING` over RESP; `AUTH` first when the URL has a password.
/// Every node of a Redis store's URL, each `PING`ed: one `redis://`
/// node; a Cluster (`redis+cluster://h:p,h:p`, or comma-separated
/// `redis://` URLs) node by node; a Sentinel deployment
/// (`redis+sentinel://h:p,h:p/service`) sentinel by sentinel. The URL's
/// credentials go to each node, never into a report.
async fn redis_servers(template: &str, timeout: Duration) -> Vec<Server> {
    let nodes = match expand(template) {
        Ok(url) => redis_nodes(&url),
        Err(_) => vec![template.to_string()],
    };
    let checks = nodes.iter().map(|n| timed(n, timeout, redis(n)));
    futures_util::future::join_all(checks).await
}

/// The single-node `redis://` URLs behind a Redis store URL (see
/// [`redis_servers`]).
fn redis_nodes(url: &str) -> Vec<String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    match scheme {
        "redis+cluster" | "redis+sentinel" => {
            let hosts = rest.split(['/', '?']).next().unwrap_or_default();
            let (auth, hosts) = match hosts.rsplit_once('@') {
                // Sentinels do not take the data nodes' password.
                Some(_) if scheme == "redis+sentinel" => {
                    ("", hosts.rsplit_once('@').map_or(hosts, |(_, h)| h))
                }
                Some((a, h)) => (a, h),
                None => ("", hosts),
            };
            let at = if auth.is_empty() {
                String::new()
            } else {
                format!("{auth}@")
            };
            hosts
                .split(',')
                .map(|h| format!("redis://{at}{}", h.trim()))
                .collect()
        }
        _ if url.contains(',') => url.split(',').map(|u| u.trim().to_string()).collect(),
        _ => vec![url.to_string()],
    }
}

/// `AUTH` (when the URL has a password), `SELECT` (when it names a
/// database) and `PING`, each reply checked in order as the cache's
/// client would: a refused `AUTH` (a wrong password, or one given to a
/// server that has none) or `SELECT` is down with the server's words.
async fn redis(template: &str) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let url = expand(template)?;
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("`{}` is not a redis:// URL", host_of(template)))?;
    let (rest, db) = match rest.split('?').next().unwrap_or_default().split_once('/') {
        Some((r, db)) => (r, Some(db).filter(|d| !d.is_empty())),
        None => (rest.split('?').next().unwrap_or_default(), None),
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let addr = match host.contains(':') {
        true => host.to_string(),
        false => format!("{host}:6379"),
    };
    let mut sock = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut cmds: Vec<Vec<&str>> = Vec::new();
    match auth.map(|a| a.split_once(':')) {
        None => {}
        Some(Some(("", pw))) => cmds.push(vec!["AUTH", pw]),
        Some(Some((user, pw))) => cmds.push(vec!["AUTH", user, pw]),
        Some(None) => cmds.push(vec!["AUTH", auth.unwrap_or_default()]),
    }
    if let Some(db) = db {
        cmds.push(vec!["SELECT", db]);
    }
    cmds.push(vec!["PING"]);
    let mut out = Vec::new();
    for c in &cmds {
        resp(&mut out, c);
    }
    sock.write_all(&out)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let replies = read_lines(&mut sock, cmds.len())
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    for (c, reply) in cmds.iter().zip(&replies) {
        if let Some(error) = reply.strip_prefix('-') {
            // The command's name only: AUTH's arguments are secrets.
            return Err(format!("{addr}: {} refused: {error}", c[0]));
        }
    }
    match replies.last().map(String::as_str) {
        Some("+PONG") => Ok(()),
        other => Err(format!("{addr} answered {:?} to PING", other.unwrap_or(""))),
    }
}

/// The first `n` reply lines (simple strings and errors, without `\r\n`).
async fn read_lines(sock: &mut tokio::net::TcpStream, n: usize) -> std::io::Result<Vec<String>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.windows(2).filter(|w| w == b"\r\n").count() < n {
        let k = sock.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        got.extend_from_slice(&buf[..k]);
    }
    let text = String::from_utf8_lossy(&got);
    Ok(text.split("\r\n").take(n).map(str::to_string).collect())
}

fn resp(out: &mut Vec<u8>, parts: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
}

/// A GET of the first of `paths` that answers 2xx.
#[cfg(any(feature = "influxdb", feature = "elasticsearch"))]
async fn http(template: &str, paths: &[&str]) -> Result<(), String> {
    let url = expand(template)?;
    let base = url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let mut last = String::new();
    for path in paths {
        match client.get(format!("{base}{path}")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("{}{path} answered {}", host_of(template), r.status()),
            Err(e) => {
                // reqwest's Display stops at "error sending request".
                let e = e.without_url();
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                last = format!("{}: {text}", host_of(template))
            }
        }
    }
    Err(last)
}

#[cfg(not(any(feature = "influxdb", feature = "elasticsearch")))]
async fn http(_template: &str, _paths: &[&str]) -> Result<(), String> {
    Err("HTTP checks need strata-sdk's `influxdb` or `elasticsearch` feature".into())
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::time::Duration;

    use sqlx::postgres::PgConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    use super::Server;

    fn options(template: &str) -> Result<(PgConnectOptions, String), String> {
        let url = super::expand(template)?;
        let o: PgConnectOptions = url
            .parse()
            .map_err(|e| format!("the postgres URL does not parse: {e}"))?;
        let name = format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        );
        Ok((o.application_name("strata-health"), name))
    }

    pub(super) async fn check(url: &str, replicas: &[String], timeout: Duration) -> Vec<Server> {
        let (primary, lsn, want) = server("primary", url, timeout, None).await;
        let mut out = vec![primary];
        for r in replicas {
            let (mut s, replay, got) = server("replica", r, timeout, lsn).await;
            if let (Some(p), Some(r)) = (lsn, replay) {
                s.replay_lag_bytes = Some(p.saturating_sub(r));
            }
            // A replica of another database or cluster is no replica of this.
            if let (Some(want), Some(got)) = (&want, &got) {
                if let Some(why) = replica::mismatch(want, got) {
                    s.up = false;
                    s.error = Some(why);
                }
            }
            out.push(s);
        }
        out
    }

    /// A primary's row as a [`replica::Probe`] reads a replica's: in
    /// recovery, and its WAL flush position (what a replica can replay).
    const PRIMARY: &str = "SELECT pg_is_in_recovery(), \
        (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::int8, true, true, NULL::float8";
    use crate::postgres::replica::{self, Identity, Probe};
    use crate::postgres::Lsn;

    /// One server: up, its WAL position (primary) or replay position and
    /// lag (replica, behind the primary's position `primary` when known),
    /// and which database of which cluster it serves.
    async fn server(
        role: &'static str,
        template: &str,
        timeout: Duration,
        primary: Option<u64>,
    ) -> (Server, Option<u64>, Option<Identity>) {
        let mut s = Server {
            role,
            name: super::host_of(template),
            up: false,
            latency_ms: 0.0,
            replay_lag_seconds: None,
            replay_lag_bytes: None,
            error: None,
        };
        let (mut position, mut identity) = (None, None);
        let probe = async {
            let (o, name) = options(template)?;
            s.name = name;
            let mut c = o
                .connect()
                .await
                .map_err(|e| crate::Error::from(e).to_string())?;
            let row = match role {
                "primary" => Probe::read_sql(PRIMARY, &mut c).await,
                _ => Probe::read(&mut c).await,
            }
            .map_err(|e| crate::Error::from(e).to_string())?;
            let id = sqlx::query_as::<_, (String, String)>(replica::IDENTITY)
                .fetch_one(&mut c)
                .await
                .ok()
                .map(|(database, system)| Identity {
                    database,
                    system: Some(system),
                });
            let _ = c.close().await;
            Ok::<_, String>((row, id))
        };
        let (out, took) = super::within(timeout, probe).await;
        s.latency_ms = took.as_secs_f64() * 1e3;
        match out {
            Ok((probe, id)) => {
                position = probe.replay.map(|l| l.0);
                identity = id;
                match (role, probe.in_recovery) {
                    ("replica", false) => s.error = Some("not in recovery (not a standby)".into()),
                    ("primary", true) => {
                        s.error = Some("in recovery (a standby, not a primary)".into())
                    }
                    ("replica", true) => {
                        s.up = true;
                        let lag = probe.lag(primary.map(Lsn));
                        s.replay_lag_seconds = Some(lag);
                        let max = replica::ReplicaPolicy::default().max_lag;
                        if lag > max.as_secs_f64() {
                            s.error = Some(format!(
                                "replays {lag:.1} s behind the primary, past the default max_lag of {} s: replica() skips it",
                                max.as_secs()
                            ));
                        }
                    }
                    _ => s.up = true,
                }
            }
            Err(e) => s.error = Some(e),
        }
        (s, position, identity)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_store_urls_name_each_node() {
        assert_eq!(
            super::redis_nodes("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000"),
            ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7000"]
        );
        assert_eq!(
            super::redis_nodes("redis://a:7100, redis://b:7101"),
            ["redis://a:7100", "redis://b:7101"]
        );
        assert_eq!(
            super::redis_nodes("redis+sentinel://:pw@s1:26379,s2:26379/mymaster"),
            ["redis://s1:26379", "redis://s2:26379"]
        );
        assert_eq!(super::redis_nodes("redis://h:1/0"), ["redis://h:1/0"]);
    }

    #[test]
    fn names_a_server_without_its_credentials() {
        assert_eq!(
            super::host_of("postgres://ada:pw@db.local:5433/app?sslmode=disable"),
            "db.local:5433"
        );
        assert_eq!(
            super::host_of("redis://:s3cret@127.0.0.1:6379/0"),
            "127.0.0.1:6379"
        );
        assert_eq!(super::host_of("http://127.0.0.1:8123"), "127.0.0.1:8123");
    }
}
