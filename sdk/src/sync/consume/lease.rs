//! Who reads which partition: a membership set with heartbeats and one
//! lease per (entity, partition) in Redis, `SET NX PX` and renewed by its
//! holder (compare-and-set in Lua). Each live consumer takes its fair
//! share, `ceil(partitions / live consumers)`, and gives back what is over
//! it; a dead consumer's leases expire and its share is taken over.

use std::time::Duration;

use redis::Script;

use crate::cache::conn::Conn;
use crate::events::Client;

/// Adds or refreshes `ARGV[1]` with expiry now + `ARGV[2]` ms (Redis
/// time), drops expired members, returns how many are live.
const HEARTBEAT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return redis.call('ZCARD', KEYS[1])
"#;

/// Renews (`ARGV[2]` = ttl ms) or, with ttl 0, releases the lease when
/// it is still `ARGV[1]`'s; 1 when it was.
const HOLD: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"#;

/// One partition of one entity: the unit a consumer leases.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    /// Index into the pipeline's tables.
    pub table: usize,
    pub entity: String,
    pub partition: u16,
}

/// A consumer's leases and locks in Redis, under
/// `<prefix>:consume:<group>:`: partition leases (`SET NX PX`, renewed and
/// released only by their holder, by a Lua check), the membership
/// heartbeat, and the group's copy locks.
pub struct Leases {
    conn: Conn,
    prefix: String,
    group: String,
    /// This consumer's name (the value its leases hold).
    pub me: String,
    /// How long a lease outlives its holder.
    pub ttl: Duration,
    heartbeat: Script,
    hold: Script,
}

type R<T> = Result<T, redis::RedisError>;

impl Leases {
    /// The leases of consumer `me` of group `group`, on `client`'s Redis
    /// and key prefix; partition leases last `ttl`.
    pub fn new(client: &Client, group: &str, me: &str, ttl: Duration) -> Leases {
        Leases {
            conn: client.conn(),
            prefix: client.prefix().to_string(),
            group: group.to_string(),
            me: me.to_string(),
            ttl,
            heartbeat: Script::new(HEARTBEAT),
            hold: Script::new(HOLD),
        }
    }

    fn base(&self) -> String {
        format!("{}:consume:{}", self.prefix, self.group)
    }

    /// The lease key of a unit (hash tag: the partition's slot).
    pub fn key(&self, u: &Unit) -> String {
        format!("{}:{}:{{{}}}:lease", self.base(), u.entity, u.partition)
    }

    /// Refreshes this consumer's membership; the number of live consumers.
    pub async fn heartbeat(&self) -> R<usize> {
        (self.heartbeat.key(format!("{}:members", self.base())))
            .arg(&self.me)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// Leaves the membership (a clean stop).
    pub async fn leave(&self) -> R<()> {
        redis::cmd("ZREM")
            .arg(format!("{}:members", self.base()))
            .arg(&self.me)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Takes a free lease.
    pub async fn acquire(&self, u: &Unit) -> R<bool> {
        let r: Option<String> = redis::cmd("SET")
            .arg(self.key(u))
            .arg(&self.me)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(r.is_some())
    }

    /// Renews a held lease; `false` when it was lost (expired, taken).
    pub async fn renew(&self, u: &Unit) -> R<bool> {
        self.hold_with(u, self.ttl.as_millis() as u64).await
    }

    /// Gives a held lease back.
    pub async fn release(&self, u: &Unit) -> R<bool> {
        self.hold_with(u, 0).await
    }

    async fn hold_with(&self, u: &Unit, ttl_ms: u64) -> R<bool> {
        let n: i64 = (self.hold.key(self.key(u)))
            .arg(&self.me)
            .arg(ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(n == 1)
    }

    /// Sets `key` to `value` unless it exists, for `ttl`.
    pub async fn set_nx(&self, key: &str, ttl: Duration) -> R<bool> {
        let r: Option<String> = redis::cmd("SET")
            .arg(format!("{}:{key}", self.base()))
            .arg(&self.me)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(r.is_some())
    }

    /// Extends `key` (taken with [`Leases::set_nx`]) by `ttl` while this
    /// consumer holds it; `false` when it was lost (expired, taken).
    pub async fn extend(&self, key: &str, ttl: Duration) -> R<bool> {
        let n: i64 = (self.hold.key(format!("{}:{key}", self.base())))
            .arg(&self.me)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(n == 1)
    }

    /// Sets `key` for good.
    pub async fn set(&self, key: &str, value: &str) -> R<()> {
        redis::cmd("SET")
            .arg(format!("{}:{key}", self.base()))
            .arg(value)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Deletes `key`.
    pub async fn del(&self, key: &str) -> R<()> {
        redis::cmd("DEL")
            .arg(format!("{}:{key}", self.base()))
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Reads `key`.
    pub async fn get(&self, key: &str) -> R<Option<String>> {
        redis::cmd("GET")
            .arg(format!("{}:{key}", self.base()))
            .query_async(&mut self.conn.clone())
            .await
    }
}

/// The fair share of `units` among `live` consumers.
pub fn fair_share(units: usize, live: usize) -> usize {
    units.div_ceil(live.max(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_cover_every_unit() {
        assert_eq!(super::fair_share(8, 2), 4);
        assert_eq!(super::fair_share(8, 3), 3);
        assert_eq!(super::fair_share(8, 0), 8);
        assert_eq!(super::fair_share(1, 2), 1);
    }
}
