//! The writer side, used by change capture's Redis target: each partition's
//! entries in one Lua script (atomic, one round trip), then the head.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;

use super::{channel, epoch_key, head_key, stream_key, Op, Position, FORMAT};
use crate::cache::conn::{Conn, Topology};
use crate::error::{Error, Result};

/// Appends each entry unless its ID is at or below the stream's top (a
/// replay after a crash), publishes the added ones when a channel is
/// given, and returns how many were added. ARGV: max_len, channel (or
/// ""), then per entry: id, op, key, row (or "" for none), ts, message.
const APPEND: &str = r#"
local added = 0
for i = 3, #ARGV, 6 do
  local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i], 'v', '1', 'op', ARGV[i + 1], 'key', ARGV[i + 2]}
  if ARGV[i + 3] ~= '' then
    table.insert(args, 'row'); table.insert(args, ARGV[i + 3])
  end
  table.insert(args, 'ts'); table.insert(args, ARGV[i + 4])
  local r = redis.pcall(unpack(args))
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'equal or smaller', 1, true) then
      return redis.error_reply(r.err)
    end
  else
    added = added + 1
    if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[i + 5]) end
  end
end
return added
"#;
// The script writes format `1`; a new format changes both.
const _: () = assert!(FORMAT.len() == 1 && FORMAT.as_bytes()[0] == b'1');

/// One change to append: built by change capture from a decoded WAL row.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub partition: u16,
    pub position: Position,
    pub op: Op,
    /// The key fields as a JSON object (text).
    pub key: String,
    /// The row without secrets as a JSON object (text); `None` for deletes.
    pub row: Option<String>,
    /// Commit time, microseconds since 1970.
    pub ts_us: i64,
}

impl Event {
    /// The pub/sub message: the entry's fields and `position`, one JSON object.
    fn message(&self) -> String {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_string()).ok();
        serde_json::json!({
            "v": 1,
            "op": self.op.as_str(),
            "key": raw(&self.key),
            "row": self.row.as_deref().and_then(raw),
            "ts": self.ts_us,
            "position": self.position.to_string(),
        })
        .to_string()
    }
}

/// Appends change events to an entity's partition streams.
#[derive(Clone)]
pub struct Publisher {
    conn: Conn,
    prefix: String,
    script: Script,
    head: Script,
    /// The highest position known to have been appended before, per
    /// entity (this publisher's appends), and for every entity (an earlier
    /// run's, [`Publisher::written_before`]): a new epoch records it as the
    /// streams' loss floor ([`super::epoch_key`]).
    written: Arc<Mutex<Written>>,
}

#[derive(Default)]
struct Written {
    all: Option<Position>,
    per_entity: HashMap<String, Position>,
}

/// Appends the head unless it is not above the top; ARGV: id.
const HEAD: &str = r#"
local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', '1000', ARGV[1], 'p', '1')
if type(r) == 'table' and r.err and not string.find(r.err, 'equal or smaller', 1, true) then
  return redis.error_reply(r.err)
end
return 1
"#;

impl Publisher {
    /// Connects to a Redis URL (one node, Cluster or Sentinel, as
    /// [`crate::cache::CacheConfig::url`]); `${VAR}` expands.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Publisher> {
        let url = crate::postgres::expand_env(url, |v| std::env::var(v).ok())?;
        let conn = Conn::open(&Topology::parse(&url)?, Duration::from_secs(5)).await?;
        Ok(Publisher {
            conn,
            prefix: key_prefix.to_string(),
            script: Script::new(APPEND),
            head: Script::new(HEAD),
            written: Arc::default(),
        })
    }

    /// Records that every change up to `p` was appended before, by an
    /// earlier run (change capture resuming its slot): if Redis has lost
    /// the streams since, the next append's new epoch says so, and a
    /// subscriber resuming below `p` is refused instead of skipping the
    /// lost changes.
    pub fn written_before(&self, p: Position) {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        w.all = w.all.max(Some(p));
    }

    /// The highest position known to have been appended for `entity`.
    fn floor(&self, entity: &str) -> Option<Position> {
        let w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        w.all.max(w.per_entity.get(entity).copied())
    }

    fn appended(&self, entity: &str, top: Position) {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let e = w.per_entity.entry(entity.to_string()).or_insert(top);
        *e = (*e).max(top);
    }

    /// Records that `entity`'s changes go to `partitions` streams, or
    /// refuses another count than the one recorded: a subscriber resuming
    /// across the change would never read the entries of the partitions
    /// dropped (or of the new ones before its position). Key:
    /// `<prefix>:events:<entity>:partitions`. Errors: [`Error::Event`] for
    /// a different count, [`Error::Connection`] for Redis.
    pub async fn claim_partitions(&self, entity: &str, partitions: u16) -> Result<()> {
        let key = format!("{}:events:{entity}:partitions", self.prefix);
        let mut c = self.conn.clone();
        let was: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(partitions)
            .arg("NX")
            .arg("GET")
            .query_async(&mut c)
            .await
            .map_err(|e| Error::Connection {
                message: format!("redis: {e}"),
            })?;
        match was {
            Some(n) if n != partitions.to_string() => Err(Error::Event {
                message: format!(
                    "`{entity}`: its change events were written to {n} partitions and the schema now says {partitions}; a subscriber resuming across the change would miss entries. Keep `partitions: {n}`, or start new streams: stop the sync, delete the keys `{}:events:{entity}:*` (subscribers then start from the head) and run again",
                    self.prefix
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The row of the newest event kept for the key `key` (its JSON, as
    /// appended) in partition `partition` of `entity`, looking back at
    /// most `scan` entries; `None` when none is kept or the newest is a
    /// delete. Errors: [`Error::Connection`]-kind Redis errors.
    pub async fn last_row(
        &self,
        entity: &str,
        partition: u16,
        key: &str,
        scan: usize,
    ) -> Result<Option<String>> {
        let stream = stream_key(&self.prefix, entity, partition);
        let mut end = "+".to_string();
        let mut seen = 0usize;
        while seen < scan {
            let page: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(500)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(redis_error)?;
            let Some(last) = page.ids.last() else {
                return Ok(None);
            };
            let text = |id: &redis::streams::StreamId, f: &str| id.get::<String>(f);
            for id in &page.ids {
                if text(id, "key").as_deref() == Some(key) {
                    return Ok(match text(id, "op").as_deref() {
                        Some("delete") => None,
                        _ => text(id, "row").filter(|r| !r.is_empty()),
                    });
                }
            }
            seen += page.ids.len();
            end = format!("({}", last.id);
        }
        Ok(None)
    }

    /// Appends `events` (in position order) to `entity`'s partitions, each
    /// trimmed to about `max_len`, publishing each added one on the
    /// entity's channel when `pubsub`; then moves the head to the highest
    /// position. Entries already there (a replay) are skipped. Returns how
    /// many were added.
    pub async fn append(
        &self,
        entity: &str,
        max_len: u64,
        pubsub: bool,
        events: &[Event],
    ) -> Result<u64> {
        let Some(top) = events.iter().map(|e| e.position).max() else {
            return Ok(0);
        };
        let mut parts: BTreeMap<u16, Vec<&Event>> = BTreeMap::new();
        for e in events {
            parts.entry(e.partition).or_default().push(e);
        }
        // The streams' epoch, set once (a new one after Redis lost it),
        // with the loss floor when changes were appended before.
        redis::cmd("SET")
            .arg(epoch_key(&self.prefix, entity))
            .arg(super::epoch_value(rand::random(), self.floor(entity)))
            .arg("NX")
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let chan = if pubsub {
            channel(&self.prefix, entity)
        } else {
            String::new()
        };
        let writes = parts.iter().map(|(p, list)| {
            let mut inv = self.script.key(stream_key(&self.prefix, entity, *p));
            inv.arg(max_len).arg(&chan);
            for e in list {
                inv.arg(e.position.stream_id())
                    .arg(e.op.as_str())
                    .arg(&e.key)
                    .arg(e.row.as_deref().unwrap_or(""))
                    .arg(e.ts_us)
                    .arg(if pubsub { e.message() } else { String::new() });
            }
            let mut conn = self.conn.clone();
            async move { inv.invoke_async::<u64>(&mut conn).await }
        });
        let mut added = 0;
        for r in futures_util::future::join_all(writes).await {
            added += r.map_err(redis_error)?;
        }
        let mut conn = self.conn.clone();
        self.head
            .key(head_key(&self.prefix, entity))
            .arg(top.stream_id())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(redis_error)?;
        self.appended(entity, top);
        Ok(added)
    }
}

pub(crate) fn redis_error(e: redis::RedisError) -> Error {
    if e.is_timeout() {
        Error::Timeout {
            message: format!("redis: {e}"),
        }
    } else {
        Error::Connection {
            message: format!("redis: {e}"),
        }
    }
}
