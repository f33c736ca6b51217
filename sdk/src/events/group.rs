//! [`GroupReader`]: one partition read in a Redis consumer group, with
//! acknowledgements, for consumers that must see every change at least
//! once (`strata sync consume`).

use std::marker::PhantomData;
use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use serde::de::DeserializeOwned;

use super::publish::redis_error;
use super::{decode, stream_key, Change, Client, Position};
use crate::cache::conn::Conn;
use crate::error::Result;

/// Reads one partition of an entity as consumer `consumer` of group
/// `group`. An entry read stays in the group's pending entries list until
/// [`GroupReader::ack`]; entries a dead consumer read but never
/// acknowledged are taken over with [`GroupReader::claim`]. Per-key order
/// holds as long as one consumer at a time reads a partition (the
/// partition leases of `strata sync consume` see to that).
pub struct GroupReader<R> {
    client: Client,
    block: Option<Conn>,
    entity: String,
    key: String,
    group: String,
    consumer: String,
    partition: u16,
    _row: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> GroupReader<R> {
    pub(crate) fn new(
        client: Client,
        entity: &str,
        group: &str,
        consumer: &str,
        partition: u16,
    ) -> Self {
        GroupReader {
            key: stream_key(client.prefix(), entity, partition),
            client,
            block: None,
            entity: entity.to_string(),
            group: group.to_string(),
            consumer: consumer.to_string(),
            partition,
            _row: PhantomData,
        }
    }

    /// The partition read.
    pub fn partition(&self) -> u16 {
        self.partition
    }

    /// Creates the group, delivering entries after `start`, unless it
    /// exists (then its own position counts). Creates an empty stream
    /// when the partition has none yet.
    pub async fn create(&self, start: Position) -> Result<()> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.group)
            .arg(start.stream_id())
            .arg("MKSTREAM")
            .query_async(&mut self.client.conn())
            .await;
        match r {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            r => r.map_err(redis_error),
        }
    }

    /// Takes over up to `count` entries that consumers of the group read
    /// and did not acknowledge for at least `min_idle` (`XAUTOCLAIM`), in
    /// position order; they are then pending for this consumer.
    pub async fn claim(&self, min_idle: Duration, count: usize) -> Result<Vec<Change<R>>> {
        let mut out = Vec::new();
        let mut start = "0-0".to_string();
        loop {
            let r: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(&start)
                .arg("COUNT")
                .arg(count.max(1))
                .query_async(&mut self.client.conn())
                .await
                .map_err(redis_error)?;
            out.extend(self.decode_all(&r.claimed)?);
            if r.next_stream_id == "0-0" || out.len() >= count {
                return Ok(out);
            }
            start = r.next_stream_id;
        }
    }

    /// This consumer's own entries read and not yet acknowledged (after a
    /// restart under the same name), up to `count`.
    pub async fn pending(&self, count: usize) -> Result<Vec<Change<R>>> {
        let r: Option<StreamReadReply> = self
            .read_group(&mut self.client.conn(), "0", count, None)
            .await?;
        self.entries(r)
    }

    /// New entries, up to `count`, waiting up to `block` for one.
    pub async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Change<R>>> {
        if self.block.is_none() {
            self.block = Some(self.client.blocking_conn().await?);
        }
        let mut conn = self.block.clone().expect("opened above");
        let r = self.read_group(&mut conn, ">", count, Some(block)).await;
        if r.is_err() {
            self.block = None;
        }
        self.entries(r?)
    }

    /// New entries, up to `count`, without waiting.
    pub async fn read_now(&self, count: usize) -> Result<Vec<Change<R>>> {
        let r = self
            .read_group(&mut self.client.conn(), ">", count, None)
            .await?;
        self.entries(r)
    }

    /// Acknowledges entries (removes them from the pending entries list).
    pub async fn ack(&self, positions: &[Position]) -> Result<u64> {
        if positions.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.key).arg(&self.group);
        for p in positions {
            cmd.arg(p.stream_id());
        }
        cmd.query_async(&mut self.client.conn())
            .await
            .map_err(redis_error)
    }

    async fn read_group(
        &self,
        conn: &mut Conn,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Option<StreamReadReply>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.group).arg(&self.consumer);
        cmd.arg("COUNT").arg(count.max(1));
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(id);
        cmd.query_async(conn).await.map_err(redis_error)
    }

    fn entries(&self, r: Option<StreamReadReply>) -> Result<Vec<Change<R>>> {
        match r {
            Some(r) => self.decode_all(&r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>()),
            None => Ok(Vec::new()),
        }
    }

    fn decode_all(&self, ids: &[StreamId]) -> Result<Vec<Change<R>>> {
        ids.iter()
            .map(|i| decode(&self.entity, &i.id, &i.map))
            .collect()
    }
}
