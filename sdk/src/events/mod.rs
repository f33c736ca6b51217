//! Typed change events of entities with `events:` (feature `cache`).
//!
//! Change capture (`strata sync run`, the `<source>_<redis store>`
//! pipeline) appends every committed insert, update and delete of such an
//! entity to a **Redis Stream per partition**, and (with `pubsub: true`)
//! publishes it on a channel too. This module reads them back as typed
//! [`Change`]s; the derive only declares ([`EventsDef`], the [`Events`]
//! impl), the behaviour is here.
//!
//! ```no_run
//! # async fn demo() -> strata_sdk::Result<()> {
//! use futures_util::StreamExt;
//! use strata_sdk::events::{Client, Position};
//! let client = Client::connect("redis://127.0.0.1:6379", "app").await?;
//! // let mut changes = Order::subscribe(&client, Position::START);
//! let mut changes = client.subscribe_as::<serde_json::Value>("Order", 8, Position::START);
//! while let Some(change) = changes.next().await {
//!     let change = change?;
//!     println!("{} {:?} {}", change.position, change.op, change.key);
//! }
//! # Ok(()) }
//! ```
//!
//! **Layout.** Partition `p` of entity `E` is the stream
//! `<key_prefix>:events:<E>:{<p>}` (the hash tag spreads partitions over a
//! Cluster's nodes); `p` is FNV-1a (64 bit) of the key's JSON text modulo
//! the partition count ([`partition_of`]), so one row always lands in one
//! partition, in commit order. The entry ID is the change's [`Position`]
//! (`<commit LSN>-<index in the transaction>`), so IDs grow in commit
//! order across partitions, and a replay after a crash (the engine
//! acknowledges the slot only after Redis took the entries) is refused by
//! `XADD` (an ID at or below the stream's top) and skipped: every change is
//! in its stream exactly once. Each partition is trimmed with
//! `MAXLEN ~ <max_len>`. After each write the engine appends the highest
//! position written to `<key_prefix>:events:<E>:head`, which subscribers
//! block on: everything up to the head is in every partition.
//!
//! **Entries** (format 1): `v` = `1`, `op` = `insert` | `update` |
//! `delete`, `key` = the key fields as a JSON object, `row` = the row
//! without its secret fields as a JSON object (absent for deletes), `ts` =
//! the commit time in microseconds since 1970. Field names are the Rust
//! field names of the entity; values are JSON as serde reads them into the
//! entity's types (decimals as text, timestamps RFC 3339, bytes as arrays).
//! The pub/sub message on `<key_prefix>:events:<E>` is one JSON object
//! with the same fields plus `position`.
//!
//! **Snapshot rows are not events.** The initial copy of `strata sync`
//! publishes nothing; a reader that needs the state reads PostgreSQL, then
//! subscribes from [`Position::START`] (or a position it kept).
//!
//! **Order.** [`Client::subscribe`] yields changes in position order
//! across all partitions (it reads only up to the head, where every
//! partition is complete), so a change of a key always comes after the
//! earlier changes of that key, and resuming from the last position seen
//! loses and repeats nothing. A position older than what trimming kept is
//! refused with [`Error::Event`]. [`GroupReader`] reads one partition in a
//! consumer group with acknowledgements (at-least-once; part of
//! `strata sync consume`).

mod group;
mod position;
mod publish;
mod subscribe;

/// The `Stream` trait the subscriptions implement (`futures_util`'s, so
/// generated code needs no dependency of its own).
pub use futures_util::Stream;
pub use group::GroupReader;
pub use position::{BadPosition, Position};
pub use publish::{Event, Publisher};
pub use subscribe::Client;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::Value;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The entry format written by this release (the `v` field).
pub const FORMAT: &str = "1";

/// What an entity's `events:` declares, as the derive emits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsDef {
    /// The entity's schema name (part of every stream key).
    pub entity: &'static str,
    /// How many partitions (streams) the entity's changes spread over.
    pub partitions: u16,
    /// Each partition is trimmed to about this many entries.
    pub max_len: u64,
    /// Whether each change is also published on the entity's channel.
    pub pubsub: bool,
}

/// An entity whose changes are published (`events:` in the schema); the
/// derive implements it.
pub trait Events {
    /// The entity's event settings.
    const EVENTS: EventsDef;
    /// The row a change carries: the entity itself, or its view without
    /// secret fields when it has any.
    type Row: DeserializeOwned + Send + 'static;

    /// Every change from `from` on (exclusive), in position order; see
    /// [`Client::subscribe`].
    fn subscribe(
        client: &Client,
        from: Position,
    ) -> impl futures_util::Stream<Item = Result<Change<Self::Row>>> + Send + Unpin + 'static
    where
        Self: Sized,
    {
        client.subscribe::<Self>(from)
    }
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Insert,
    Update,
    Delete,
    /// Every row of the entity's table went (`TRUNCATE`): `key` is `{}`
    /// and `row` is `None`. Appended to every partition at one position, so
    /// it follows every earlier change of every key: a subscription yields
    /// it once; a consumer group reads it once per partition (each
    /// partition's consumer forgets the keys of its partition).
    Truncate,
}

impl Op {
    /// `insert`, `update`, `delete` or `truncate`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Truncate => "truncate",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "insert" => Op::Insert,
            "update" => Op::Update,
            "delete" => Op::Delete,
            "truncate" => Op::Truncate,
            _ => return None,
        })
    }
}

/// One committed change of an entity's row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change<T> {
    pub op: Op,
    /// The key fields, as a JSON object (`{"id": "…"}`).
    pub key: serde_json::Value,
    /// The row after the change, without secret fields; `None` for a
    /// delete and a truncate.
    pub row: Option<T>,
    /// Where the change sits in commit order (resume from here).
    pub position: Position,
    /// When its transaction committed.
    pub committed_at: DateTime<Utc>,
}

/// The stream of partition `p`: `<prefix>:events:<entity>:{<p>}`.
pub fn stream_key(prefix: &str, entity: &str, p: u16) -> String {
    format!("{prefix}:events:{entity}:{{{p}}}")
}

/// The head stream: the highest position written, after each write.
pub fn head_key(prefix: &str, entity: &str) -> String {
    format!("{prefix}:events:{entity}:head")
}

/// The epoch key: a random value the publisher sets once (`SET NX`)
/// before appending. Redis losing its data (a restart without
/// persistence, a failover to an empty replica) loses it too, and the next
/// append sets another: a running subscription that sees it change knows
/// entries may be gone. When the publisher knows changes were appended
/// before (its own appends, or an earlier run's: [`Publisher::written_before`]),
/// the value carries that position as the streams' *loss floor*
/// (`<random>@<stream id>`, [`epoch_value`]): a subscription starting below
/// it is refused ([`crate::Error::Event`]), since what lay between is gone.
pub fn epoch_key(prefix: &str, entity: &str) -> String {
    format!("{prefix}:events:{entity}:epoch")
}

/// An epoch key's value: 16 hex digits, then `@<floor>` when there is one.
pub fn epoch_value(random: u64, floor: Option<Position>) -> String {
    match floor {
        Some(f) => format!("{random:016x}@{}", f.stream_id()),
        None => format!("{random:016x}"),
    }
}

/// The loss floor an epoch value carries, if any ([`epoch_key`]).
pub fn epoch_floor(value: &str) -> Option<Position> {
    Position::from_stream_id(value.split_once('@')?.1)
}

/// The pub/sub channel: `<prefix>:events:<entity>`.
pub fn channel(prefix: &str, entity: &str) -> String {
    format!("{prefix}:events:{entity}")
}

/// The partition of a key: FNV-1a (64 bit) of its JSON text, modulo
/// `partitions` (stable across releases and processes).
pub fn partition_of(key_json: &str, partitions: u16) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key_json.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u16
}

fn bad(message: impl Into<String>) -> Error {
    Error::Event {
        message: message.into(),
    }
}

fn text(map: &HashMap<String, Value>, field: &str) -> Option<String> {
    match map.get(field)? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Decodes one stream entry into a typed change.
pub(crate) fn decode<T: DeserializeOwned>(
    entity: &str,
    id: &str,
    map: &HashMap<String, Value>,
) -> Result<Change<T>> {
    let position = Position::from_stream_id(id)
        .ok_or_else(|| bad(format!("`{entity}`: entry ID `{id}` is not a position")))?;
    let at = |what: &str| bad(format!("`{entity}` at {position}: {what}"));
    match text(map, "v").as_deref() {
        Some(FORMAT) => {}
        other => {
            return Err(at(&format!(
                "entry format {other:?}, this SDK reads {FORMAT}"
            )))
        }
    }
    let op = text(map, "op")
        .as_deref()
        .and_then(Op::parse)
        .ok_or_else(|| at("no or unknown `op`"))?;
    let key = text(map, "key").ok_or_else(|| at("no `key`"))?;
    let key = serde_json::from_str(&key).map_err(|e| at(&format!("key: {e}")))?;
    let row = match text(map, "row") {
        Some(r) => Some(serde_json::from_str(&r).map_err(|e| at(&format!("row: {e}")))?),
        None if matches!(op, Op::Delete | Op::Truncate) => None,
        None => return Err(at("an insert or update without `row`")),
    };
    let ts = text(map, "ts")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| at("no commit time `ts`"))?;
    Ok(Change {
        op,
        key,
        row,
        position,
        committed_at: ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_partitions_are_stable() {
        assert_eq!(stream_key("app", "Order", 3), "app:events:Order:{3}");
        assert_eq!(head_key("app", "Order"), "app:events:Order:head");
        assert_eq!(channel("app", "Order"), "app:events:Order");
        // FNV-1a's published test vector: "a" → 0xaf63dc4c8601ec8c.
        assert_eq!(
            partition_of("a", u16::MAX),
            (0xaf63dc4c8601ec8c_u64 % 65535) as u16
        );
        assert_eq!(partition_of(r#"{"id":1}"#, 1), 0);
        let spread: std::collections::HashSet<u16> = (0..200)
            .map(|i| partition_of(&format!(r#"{{"id":{i}}}"#), 8))
            .collect();
        assert_eq!(spread.len(), 8);
    }

    #[test]
    fn entries_decode_and_refuse_unknown_formats() {
        let s = |v: &str| Value::BulkString(v.as_bytes().to_vec());
        let mut m: HashMap<String, Value> = [
            ("v", "1"),
            ("op", "update"),
            ("key", r#"{"id":1}"#),
            ("row", r#"{"id":1,"n":"x"}"#),
            ("ts", "1700000000000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), s(v)))
        .collect();
        let c: Change<serde_json::Value> = decode("E", "16-2", &m).unwrap();
        assert_eq!((c.op, c.position), (Op::Update, Position::new(16, 2)));
        assert_eq!(c.row.unwrap()["n"], "x");
        assert_eq!(c.committed_at.timestamp(), 1_700_000_000);
        m.insert("v".into(), s("2"));
        let e = decode::<serde_json::Value>("E", "16-2", &m).unwrap_err();
        assert!(e.to_string().contains("format"), "{e}");
        m.insert("v".into(), s("1"));
        m.remove("row");
        assert!(decode::<serde_json::Value>("E", "16-2", &m).is_err());
        m.insert("op".into(), s("delete"));
        assert!(decode::<serde_json::Value>("E", "16-2", &m)
            .unwrap()
            .row
            .is_none());
    }
}
