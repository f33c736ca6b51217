//! The reader side: [`Client::subscribe`] yields every change after a
//! position in position order, reading each partition only up to the head
//! (where every partition is complete).

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::Stream;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::publish::redis_error;
use super::{decode, head_key, stream_key, Change, Events, GroupReader, Position};
use crate::cache::conn::{Conn, Topology};
use crate::error::{Error, Result};

/// How long one blocking read of the head waits before it is repeated.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries read per partition and round trip.
const CHUNK: usize = 512;

/// A connection to the Redis that holds the event streams.
#[derive(Clone)]
pub struct Client {
    topology: Topology,
    prefix: String,
    conn: Conn,
}

impl Client {
    /// Connects to a Redis URL (one node, Cluster or Sentinel, as
    /// [`crate::cache::CacheConfig::url`]; `${VAR}` expands) whose streams
    /// are under `key_prefix` (the redis store's `key_prefix`).
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Client> {
        let url = crate::postgres::expand_env(url, |v| std::env::var(v).ok())?;
        let topology = Topology::parse(&url)?;
        let conn = Conn::open(&topology, Duration::from_secs(5)).await?;
        Ok(Client {
            topology,
            prefix: key_prefix.to_string(),
            conn,
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every change of `T` after `from` (exclusive), in position order
    /// (so in commit order per key), as long as the stream is kept (a
    /// reader task fills it ahead, up to 1,024 changes; dropping the
    /// stream stops the task within 2 s).
    /// Redis errors are retried (waits of 100 ms doubling to 2 s); an
    /// entry that does not decode, or a `from` older than what the
    /// streams still hold, ends the stream with [`Error::Event`].
    pub fn subscribe<T: Events>(
        &self,
        from: Position,
    ) -> impl Stream<Item = Result<Change<T::Row>>> + Send + Unpin + 'static {
        let def = T::EVENTS;
        self.subscribe_as::<T::Row>(def.entity, def.partitions, from)
    }

    /// [`Client::subscribe`] by entity name and partition count, decoding
    /// rows into `R` (`serde_json::Value` reads any entity).
    pub fn subscribe_as<R: DeserializeOwned + Send + 'static>(
        &self,
        entity: &str,
        partitions: u16,
        from: Position,
    ) -> impl Stream<Item = Result<Change<R>>> + Send + Unpin + 'static {
        let (tx, rx) = mpsc::channel(1024);
        let reader = Reader {
            client: self.clone(),
            entity: entity.to_string(),
            partitions,
            cursor: from,
            epoch: None,
        };
        tokio::spawn(reader.run(tx));
        let mut rx = rx;
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    /// The position of the newest change written for `entity` (every
    /// partition holds everything up to it); [`Position::START`] when there
    /// is none. Subscribing from it yields only changes from now on.
    pub async fn head(&self, entity: &str) -> Result<Position> {
        let top: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(head_key(&self.prefix, entity))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(top
            .ids
            .first()
            .and_then(|i| Position::from_stream_id(&i.id))
            .unwrap_or(Position::START))
    }

    /// A consumer-group reader of one partition of `T` (see [`GroupReader`]).
    pub fn group<T: Events>(
        &self,
        group: &str,
        consumer: &str,
        partition: u16,
    ) -> GroupReader<T::Row> {
        GroupReader::new(self.clone(), T::EVENTS.entity, group, consumer, partition)
    }

    /// [`Client::group`] by entity name, decoding rows into `R`.
    pub fn group_as<R: DeserializeOwned>(
        &self,
        entity: &str,
        group: &str,
        consumer: &str,
        partition: u16,
    ) -> GroupReader<R> {
        GroupReader::new(self.clone(), entity, group, consumer, partition)
    }

    pub(crate) fn conn(&self) -> Conn {
        self.conn.clone()
    }

    pub(crate) async fn blocking_conn(&self) -> Result<Conn> {
        Conn::open(&self.topology, BLOCK + Duration::from_secs(3)).await
    }
}

struct Reader {
    client: Client,
    entity: String,
    partitions: u16,
    cursor: Position,
    /// The streams' epoch as first seen ([`super::epoch_key`]).
    epoch: Option<String>,
}

type Tx<R> = mpsc::Sender<Result<Change<R>>>;

impl Reader {
    async fn run<R: DeserializeOwned + Send + 'static>(mut self, tx: Tx<R>) {
        let mut wait = Duration::from_millis(100);
        let mut checked = false;
        let mut block: Option<Conn> = None;
        loop {
            // A dropped subscription ends here within one blocking read
            // (2 s), closing its connection.
            if tx.is_closed() {
                return;
            }
            let round = async {
                if !checked {
                    // The epoch first: it holds the loss floor the start is
                    // checked against.
                    self.check_epoch().await?;
                    self.check_trimmed().await?;
                    checked = true;
                }
                if block.is_none() {
                    block = Some(self.client.blocking_conn().await?);
                }
                let conn = block.as_mut().expect("opened above");
                match self.wait_head(conn).await? {
                    Some(head) => {
                        self.check_epoch().await?;
                        self.read_to(head, &tx).await
                    }
                    None => Ok(true),
                }
            };
            match round.await {
                Ok(true) => wait = Duration::from_millis(100),
                Ok(false) => return, // the subscriber went away
                Err(e @ Error::Event { .. }) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(entity = %self.entity, error = %e, "change events: redis error, retrying");
                    block = None;
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Refuses a start below the streams' loss floor ([`super::epoch_key`],
    /// in the epoch [`Reader::check_epoch`] read first): Redis lost the
    /// streams after changes up to the floor were appended, so the changes
    /// between the cursor and the floor are gone.
    fn check_floor(&self) -> Result<()> {
        match self.epoch.as_deref().and_then(super::epoch_floor) {
            Some(floor) if self.cursor < floor => Err(Error::Event {
                message: format!(
                    "`{}`: Redis lost the change streams' data (restarted without persistence, or failed over to an empty replica) after changes up to {floor} were appended; the changes after position {} up to there are gone: read the current rows from PostgreSQL and subscribe from the head",
                    self.entity, self.cursor
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses to go on when the streams' epoch changed or vanished since
    /// first seen: Redis lost its data while this subscription ran, so
    /// changes after the cursor may be gone ([`Error::Event`]).
    async fn check_epoch(&mut self) -> Result<()> {
        let now: Option<String> = redis::cmd("GET")
            .arg(super::epoch_key(&self.client.prefix, &self.entity))
            .query_async(&mut self.client.conn())
            .await
            .map_err(redis_error)?;
        match (&self.epoch, now) {
            (None, now) => self.epoch = now,
            (Some(was), Some(now)) if *was == now => {}
            (Some(_), _) => {
                return Err(Error::Event {
                    message: format!(
                        "`{}`: Redis lost the change streams' data while this subscription ran (their epoch changed: restarted without persistence, or failed over to an empty replica); changes after {} may be gone: read the current rows from PostgreSQL and subscribe from the head",
                        self.entity, self.cursor
                    ),
                })
            }
        }
        Ok(())
    }

    /// The head once it is past the cursor (`None`: nothing new yet).
    async fn wait_head(&self, conn: &mut Conn) -> Result<Option<Position>> {
        let key = head_key(&self.client.prefix, &self.entity);
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(self.cursor.stream_id())
            .query_async(conn)
            .await
            .map_err(redis_error)?;
        if reply.is_none_or(|r| r.keys.iter().all(|k| k.ids.is_empty())) {
            return Ok(None);
        }
        // Something newer exists: the newest head is the bound.
        let top: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.client.conn())
            .await
            .map_err(redis_error)?;
        Ok(top
            .ids
            .first()
            .and_then(|i| Position::from_stream_id(&i.id))
            .filter(|p| *p > self.cursor))
    }

    /// Reads every partition from the cursor up to `head` and sends the
    /// entries merged in position order; `false` when the receiver is gone.
    async fn read_to<R: DeserializeOwned>(&mut self, head: Position, tx: &Tx<R>) -> Result<bool> {
        let n = usize::from(self.partitions);
        let mut bufs: Vec<VecDeque<StreamId>> = vec![VecDeque::new(); n];
        let mut done = vec![false; n];
        let mut last = vec![self.cursor; n];
        loop {
            for p in 0..n {
                if bufs[p].is_empty() && !done[p] {
                    let got = self.range(p as u16, last[p], head).await?;
                    done[p] = got.len() < CHUNK;
                    if let Some(l) = got.last().and_then(|i| Position::from_stream_id(&i.id)) {
                        last[p] = l;
                    }
                    bufs[p].extend(got);
                }
            }
            // Everything up to `limit` is buffered: partitions not done have
            // been read up to their last entry.
            let limit = (0..n)
                .filter(|&p| !done[p])
                .map(|p| last[p])
                .min()
                .unwrap_or(head);
            while let Some(p) = next_partition(&bufs, limit) {
                let entry = bufs[p].pop_front().expect("non-empty");
                // A truncate sits in every partition at one position: once.
                if Position::from_stream_id(&entry.id).is_some_and(|at| at <= self.cursor) {
                    continue;
                }
                let change = decode::<R>(&self.entity, &entry.id, &entry.map);
                if let Ok(c) = &change {
                    self.cursor = c.position;
                }
                let fatal = change.is_err();
                if tx.send(change).await.is_err() || fatal {
                    return Ok(false);
                }
            }
            if done.iter().all(|d| *d) && bufs.iter().all(VecDeque::is_empty) {
                self.cursor = self.cursor.max(head);
                return Ok(true);
            }
        }
    }

    async fn range(&self, p: u16, after: Position, head: Position) -> Result<Vec<StreamId>> {
        let r: StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream_key(&self.client.prefix, &self.entity, p))
            .arg(format!("({}", after.stream_id()))
            .arg(head.stream_id())
            .arg("COUNT")
            .arg(CHUNK)
            .query_async(&mut self.client.conn())
            .await
            .map_err(redis_error)?;
        Ok(r.ids)
    }

    /// Refuses a start position past the head (the streams never held it:
    /// Redis lost its data, or a foreign position), and one that trimming
    /// may have passed in a partition (changes after it may be gone): entries were trimmed
    /// (`entries-added` above `length`) and the first kept entry is past
    /// the position, or an entry past it was deleted
    /// (`max-deleted-entry-id`). Redis 7's `XINFO STREAM`.
    async fn check_trimmed(&mut self) -> Result<()> {
        if self.cursor == Position::START {
            return self.start_after_trim().await;
        }
        // The head only grows: a start past it is a position these streams
        // never held (Redis lost its data, or another deployment's).
        let head = self.client.head(&self.entity).await?;
        self.check_floor()?;
        if self.cursor > head {
            return Err(Error::Event {
                message: format!(
                    "`{}`: position {} is ahead of the newest change the streams hold ({head}): Redis lost its data (restarted without persistence?) or the position is not from these streams; read the current rows from PostgreSQL and subscribe from the head",
                    self.entity, self.cursor,
                ),
            });
        }
        for p in 0..self.partitions {
            let Some(info) = self.stream_info(p).await? else {
                continue; // no such stream yet
            };
            if let Some(first) = gap_after(&info, self.cursor) {
                return Err(Error::Event {
                    message: format!(
                        "`{}`: position {} is older than what partition {p} still holds (it starts at {first}); read the current rows from PostgreSQL and subscribe from a newer position",
                        self.entity, self.cursor,
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Reader {
    /// Partition `p`'s `XINFO STREAM` reply; `None` while it does not exist.
    async fn stream_info(&self, p: u16) -> Result<Option<redis::Value>> {
        let key = stream_key(&self.client.prefix, &self.entity, p);
        match redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&key)
            .query_async(&mut self.client.conn())
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code() == Some("ERR") => Ok(None),
            Err(e) => Err(redis_error(e)),
        }
    }

    /// From [`Position::START`] on trimmed streams: start after the last
    /// transaction whose changes a trim may have cut, so the first change
    /// yielded begins a whole transaction and every position yielded can be
    /// resumed from. That is after the commit of the highest first-kept
    /// entry over the partitions: every partition keeps everything from its
    /// own first entry on, so a transaction committed later is whole.
    async fn start_after_trim(&mut self) -> Result<()> {
        let mut from: Option<Position> = None;
        for p in 0..self.partitions {
            let Some(info) = self.stream_info(p).await? else {
                continue; // no such stream yet
            };
            if let Some(first) = gap_after(&info, Position::START) {
                from = from.max(Some(first));
            }
        }
        if let Some(first) = from {
            self.cursor = Position::new(first.lsn, u64::MAX);
        }
        Ok(())
    }
}

/// The partition whose first buffered entry is the lowest at or below `limit`.
fn next_partition(bufs: &[VecDeque<StreamId>], limit: Position) -> Option<usize> {
    bufs.iter()
        .enumerate()
        .filter_map(|(p, b)| Some((Position::from_stream_id(&b.front()?.id)?, p)))
        .filter(|(pos, _)| *pos <= limit)
        .min()
        .map(|(_, p)| p)
}

/// The first kept position when changes after `cursor` may have been
/// trimmed or deleted, from an `XINFO STREAM` reply (RESP2 or RESP3).
fn gap_after(info: &redis::Value, cursor: Position) -> Option<Position> {
    use redis::Value;
    let pairs: Vec<(&Value, &Value)> = match info {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| Some((c.first()?, c.get(1)?)))
            .collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        _ => return None,
    };
    let field = |name: &str| {
        pairs.iter().find_map(|(k, v)| {
            (redis::from_redis_value_ref::<String>(k).ok()? == name).then_some(*v)
        })
    };
    let text = |name: &str| field(name).and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
    let num = |name: &str| field(name).and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
    let first = text("recorded-first-entry-id").and_then(|id| Position::from_stream_id(&id))?;
    let trimmed = num("entries-added")
        .zip(num("length"))
        .is_some_and(|(a, l)| a > l);
    let deleted = text("max-deleted-entry-id").and_then(|id| Position::from_stream_id(&id));
    let gap = (trimmed && first > cursor) || deleted.is_some_and(|d| d > cursor);
    gap.then_some(first)
}
