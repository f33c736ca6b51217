//! The Redis connection behind a [`super::Cache`]: one node, a Cluster or
//! a Sentinel-managed master, chosen by the URL.
//!
//! - `redis://host:port[/db]` (or `rediss://`): one node, through redis-rs'
//!   `ConnectionManager` (multiplexed, reconnects on its own, connects
//!   lazily so an application starts while Redis is down);
//! - `redis+cluster://host:port,host:port,…`, or several `redis://` URLs
//!   separated by commas: a Redis Cluster (redis-rs `cluster-async`, which
//!   routes each key by slot and splits `MGET` across slots);
//! - `redis+sentinel://host:port,host:port,…/service`: asks the sentinels
//!   for the master of `service`, then connects to it as one node, and
//!   asks again after a command fails as a failover makes it fail
//!   ([`SentinelConn`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisFuture, ServerErrorKind, Value};

use crate::error::{Error, Result};

/// Where the cache's Redis is, read from its URL ([module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One node.
    Single(String),
    /// The seed nodes of a Redis Cluster (`redis://host:port` each).
    Cluster(Vec<String>),
    /// Sentinels (`redis://host:port` each) and the monitored service name.
    Sentinel {
        sentinels: Vec<String>,
        service: String,
    },
}

impl Topology {
    /// Reads a cache URL; an unreadable one is [`Error::Config`].
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let hosts = |list: &str| -> Vec<String> {
            list.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| match h.contains("://") {
                    true => h.to_string(),
                    false => format!("redis://{h}"),
                })
                .collect()
        };
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes = hosts(rest.trim_end_matches('/'));
            if nodes.is_empty() {
                return Err(Error::Config(format!("`{url}`: no cluster node")));
            }
            return Ok(Topology::Cluster(nodes));
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (list, service) = rest.split_once('/').unwrap_or((rest, ""));
            let service = service.trim_matches('/');
            if service.is_empty() {
                return Err(Error::Config(format!(
                    "`{url}`: a sentinel URL names the service: redis+sentinel://host:port,…/mymaster"
                )));
            }
            return Ok(Topology::Sentinel {
                sentinels: hosts(list),
                service: service.to_string(),
            });
        }
        if url.contains(',') {
            return Ok(Topology::Cluster(hosts(url)));
        }
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            return Err(Error::Config(format!(
                "`{url}` is not a Redis URL (redis://, rediss://, unix://, redis+cluster://, redis+sentinel://)"
            )));
        }
        Ok(Topology::Single(url.to_string()))
    }
}

/// A cloneable connection to whichever topology the URL named.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelConn>),
}

/// The master of a Sentinel-managed service, asked again when it fails.
///
/// A command that fails in a way a failover causes (connection refused or
/// dropped, I/O error, timeout, `READONLY` from a demoted master) returns
/// its error as usual (the cache then falls back to PostgreSQL) and makes
/// the next command ask the sentinels for the master again; a new address
/// gets a new connection. So the cache follows a failover once Sentinel
/// has promoted a replica, without a restart.
pub(crate) struct SentinelConn {
    sentinels: Vec<String>,
    service: String,
    timeout: Duration,
    current: RwLock<(ConnectionAddr, ConnectionManager)>,
    stale: AtomicBool,
    asking: tokio::sync::Mutex<()>,
}

impl SentinelConn {
    async fn connect(sentinels: &[String], service: &str, timeout: Duration) -> Result<Self> {
        let (addr, manager) = ask_sentinels(sentinels, service, timeout).await?;
        Ok(SentinelConn {
            sentinels: sentinels.to_vec(),
            service: service.to_string(),
            timeout,
            current: RwLock::new((addr, manager)),
            stale: AtomicBool::new(false),
            asking: tokio::sync::Mutex::new(()),
        })
    }

    /// The master's connection, after asking the sentinels again if a
    /// command failed since the last answer.
    async fn manager(&self) -> ConnectionManager {
        if self.stale.load(Ordering::Acquire) {
            if let Ok(_one) = self.asking.try_lock() {
                if self.stale.swap(false, Ordering::AcqRel) {
                    self.ask_again().await;
                }
            }
        }
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.1.clone()
    }

    async fn ask_again(&self) {
        match ask_sentinels(&self.sentinels, &self.service, self.timeout).await {
            Ok((addr, manager)) => {
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                if current.0 != addr {
                    tracing::info!(service = %self.service, master = %addr, "strata cache: Sentinel named a new master");
                    *current = (addr, manager);
                }
            }
            Err(e) => {
                tracing::debug!(service = %self.service, error = %e, "strata cache: sentinels not answering");
                self.stale.store(true, Ordering::Release);
            }
        }
    }

    /// Notes a failed command that a failover may explain.
    fn failed(&self, e: &redis::RedisError) {
        let moved = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || matches!(
                e.kind(),
                ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
            );
        if moved {
            self.stale.store(true, Ordering::Release);
        }
    }
}

/// Asks the sentinels for the master of `service`: its address and a
/// (lazy) connection to it.
async fn ask_sentinels(
    sentinels: &[String],
    service: &str,
    timeout: Duration,
) -> Result<(ConnectionAddr, ConnectionManager)> {
    let mut client = redis::sentinel::SentinelClient::build(
        sentinels.to_vec(),
        service.to_string(),
        None,
        redis::sentinel::SentinelServerType::Master,
    )
    .map_err(config_error)?;
    let master = tokio::time::timeout(timeout * 5, client.async_get_client())
        .await
        .map_err(|_| Error::Connection {
            message: format!("redis sentinel `{service}`: timed out"),
        })?
        .map_err(|e| Error::Connection {
            message: format!("redis sentinel `{service}`: {e}"),
        })?;
    let addr = master.get_connection_info().addr().clone();
    Ok((addr, manager(master, timeout)?))
}

/// A lazy, reconnecting connection to one node.
fn manager(client: redis::Client, timeout: Duration) -> Result<ConnectionManager> {
    let cfg = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    ConnectionManager::new_lazy_with_config(client, cfg).map_err(config_error)
}

fn config_error(e: redis::RedisError) -> Error {
    Error::Config(format!("redis: {e}"))
}

impl Conn {
    /// Connects (lazily for one node: the first command connects).
    pub(crate) async fn open(topology: &Topology, timeout: Duration) -> Result<Self> {
        match topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(config_error)?;
                Ok(Conn::Single(manager(client, timeout)?))
            }
            Topology::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1)
                    .build()
                    .map_err(config_error)?;
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(|e| Error::Connection {
                        message: format!("redis cluster: {e}"),
                    })?;
                Ok(Conn::Cluster(conn))
            }
            Topology::Sentinel { sentinels, service } => {
                let conn = SentinelConn::connect(sentinels, service, timeout).await?;
                Ok(Conn::Sentinel(Arc::new(conn)))
            }
        }
    }
}

impl Conn {
    /// Every key matching the glob `pattern`, from every master (`SCAN …
    /// MATCH … COUNT 1000` per node, so no node is blocked as by `KEYS`).
    /// For rare whole-entity work such as a `TRUNCATE` seen by change
    /// capture. Errors: the first Redis error, as [`Error::Connection`].
    pub(crate) async fn scan_match(&self, pattern: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let one = |c: ConnectionManager| async move {
            let mut keys = Vec::new();
            scan_node(&mut keys, pattern, |cmd| {
                let mut c = c.clone();
                async move { cmd.query_async::<Value>(&mut c).await }
            })
            .await
            .map(|()| keys)
        };
        match self {
            Conn::Single(c) => keys = one(c.clone()).await?,
            Conn::Sentinel(s) => keys = one(s.manager().await).await?,
            Conn::Cluster(c) => {
                for (host, port) in masters(c).await? {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port,
                    });
                    scan_node(&mut keys, pattern, |cmd| {
                        let mut c = c.clone();
                        let route = route.clone();
                        async move { c.route_command(cmd, route).await }
                    })
                    .await?;
                }
            }
        }
        Ok(keys)
    }
}

fn scan_error(e: impl std::fmt::Display) -> Error {
    Error::Connection {
        message: format!("redis SCAN: {e}"),
    }
}

/// Runs one node's `SCAN` to its end, adding the keys found.
async fn scan_node<F, Fut>(keys: &mut Vec<String>, pattern: &str, run: F) -> Result<()>
where
    F: Fn(Cmd) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<Value>>,
{
    let mut cursor = 0u64;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let value = run(cmd).await.map_err(scan_error)?;
        let (next, found): (u64, Vec<String>) =
            redis::from_redis_value(value).map_err(scan_error)?;
        keys.extend(found);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The (host, port) of each master of a cluster, from `CLUSTER SLOTS`
/// (`[[start, end, [host, port, id, …], replica…], …]`).
async fn masters(c: &ClusterConnection) -> Result<Vec<(String, u16)>> {
    let mut c = c.clone();
    let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c)
        .await
        .map_err(scan_error)?;
    let mut out: Vec<(String, u16)> = Vec::new();
    for range in slots {
        let Some(master) = range.into_iter().nth(2) else {
            continue;
        };
        let (host, port): (String, u16) = match redis::from_redis_value::<Vec<Value>>(master) {
            Ok(node) if node.len() >= 2 => {
                let mut it = node.into_iter();
                let host = redis::from_redis_value(it.next().unwrap_or(Value::Nil));
                let port = redis::from_redis_value(it.next().unwrap_or(Value::Nil));
                (host.map_err(scan_error)?, port.map_err(scan_error)?)
            }
            _ => return Err(scan_error("CLUSTER SLOTS: a range without its master")),
        };
        if !out.contains(&(host.clone(), port)) {
            out.push((host, port));
        }
    }
    Ok(out)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => Box::pin(async move {
                let r = s.manager().await.req_packed_command(cmd).await;
                if let Err(e) = &r {
                    s.failed(e);
                }
                r
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(s) => Box::pin(async move {
                let r = (s.manager().await)
                    .req_packed_commands(cmd, offset, count)
                    .await;
                if let Err(e) = &r {
                    s.failed(e);
                }
                r
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Topology;

    #[test]
    fn urls_name_their_topology() {
        assert_eq!(
            Topology::parse("redis://127.0.0.1:6379/2").unwrap(),
            Topology::Single("redis://127.0.0.1:6379/2".into())
        );
        assert_eq!(
            Topology::parse("redis+cluster://a:1,b:2").unwrap(),
            Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert_eq!(
            Topology::parse("redis://a:1, redis://b:2").unwrap(),
            Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert_eq!(
            Topology::parse("redis+sentinel://s1:26379,s2:26379/mymaster").unwrap(),
            Topology::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                service: "mymaster".into()
            }
        );
        assert!(Topology::parse("redis+sentinel://s1:26379").is_err());
        assert!(Topology::parse("http://x").is_err());
    }
}
