//! The cached reads by key: what the derive calls for `find`, `get` and
//! `get_many` of an entity with `cache:`. Given an executor without a
//! cache ([`Db::store`] is `None`) they are the PostgreSQL reads of
//! [`crate::postgres::repo`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::flight::{self, Found, Role};
use super::{entry, unix_ms, Cache, Event, Store};
use crate::error::{Error, Result};
use crate::postgres::{repo as pg, CacheDef, Db, Fut, Table};

/// A row type the cache can hold.
pub trait Cacheable: Table + Serialize + DeserializeOwned {}
impl<T: Table + Serialize + DeserializeOwned> Cacheable for T {}

/// The row with this key, if any: from Redis when cached, else from
/// PostgreSQL (then cached). Redis errors fall back to PostgreSQL.
pub fn find<'a, T: Cacheable, A: Db<'a>>(db: A, key: &'a T::Key) -> Fut<'a, Option<T>> {
    match (db.store(), T::CACHE) {
        (Some(store), Some(def)) => Box::pin(find_cached::<T>(store, def, key)),
        _ => pg::find::<T, A>(db, key),
    }
}

/// [`find`], or [`Error::NotFound`].
pub fn get<'a, T: Cacheable, A: Db<'a>>(db: A, key: &'a T::Key) -> Fut<'a, T> {
    Box::pin(async move {
        find::<T, A>(db, key).await?.ok_or_else(|| {
            let e = Error::NotFound {
                entity: T::DEF.entity,
            };
            let call = crate::postgres::repo::call::<T>(crate::postgres::seam::Operation::Find);
            crate::postgres::seam::failed(call, &e);
            e
        })
    })
}

/// The rows with these keys (missing keys skipped, each row once, in the
/// order of `keys`): one `MGET`, then one PostgreSQL statement for the
/// misses, whose rows are filled.
pub fn get_many<'a, T: Cacheable, A: Db<'a>>(db: A, keys: &'a [T::Key]) -> Fut<'a, Vec<T>> {
    match (db.store(), T::CACHE) {
        (Some(store), Some(def)) => Box::pin(get_many_cached::<T>(store, def, keys)),
        _ => pg::get_many::<T, A>(db, keys),
    }
}

/// What a reader noted before reading PostgreSQL.
struct Note {
    /// The entry's token as the fill script reads it.
    seen: Vec<u8>,
    epoch: u64,
    at: Instant,
}

async fn load<T: Table>(store: &Store, key: &T::Key) -> Result<(Option<T>, u32)> {
    let t = Instant::now();
    store.cache.count(Event::Load, T::DEF.entity, 1);
    let row = pg::find::<T, _>(store.pool(), key).await?;
    Ok((row, t.elapsed().as_millis().min(u32::MAX as u128) as u32))
}

pub(super) async fn find_cached<T: Cacheable>(
    store: &Store,
    def: &'static CacheDef,
    key: &T::Key,
) -> Result<Option<T>> {
    let cache = &store.cache;
    let entity = T::DEF.entity;
    let ent = cache.entity(entity);
    if !cache.usable(&ent) {
        cache.count(Event::Bypass, entity, 1);
        return pg::find::<T, _>(store.pool(), key).await;
    }
    let rkey = entry::key::<T>(cache.prefix(), key)?;
    let writes = ent.writes.load(std::sync::atomic::Ordering::Acquire);
    let epoch = cache.epoch();
    let at = Instant::now();
    let Some(got) = cache
        .run::<Option<Vec<u8>>>(entity, redis::cmd("GET").arg(&rkey))
        .await
    else {
        return pg::find::<T, _>(store.pool(), key).await;
    };
    if let Some(b) = &got {
        if let entry::Entry::Value {
            expiry_ms,
            load_ms,
            row,
        } = entry::parse_for::<T>(b)
        {
            if !early_refresh(cache, expiry_ms, load_ms) {
                if let Some(row) = entry::decode::<T>(row) {
                    cache.count(Event::Hit, entity, 1);
                    return Ok(Some(row));
                }
            }
        }
    }
    cache.count(Event::Miss, entity, 1);
    let note = Note {
        seen: entry::seen(got.as_deref()),
        epoch,
        at,
    };
    let leader = match cache.inner.flights.join(&rkey, writes) {
        Role::Leader(l) => l,
        Role::Follower(rx) => {
            match flight::wait(rx).await {
                Some(Found::Row(b)) => {
                    if let Some(row) = entry::decode::<T>(&b) {
                        return Ok(Some(row));
                    }
                }
                Some(Found::Absent) => return Ok(None),
                None => {}
            }
            // The leader failed: read PostgreSQL, and fill as any miss.
            return load_and_fill::<T>(store, def, key, &rkey, note, None)
                .await
                .map(|(r, _)| r);
        }
    };
    // Across processes: one loader per key while the lease lasts.
    let lease = entry::lease(&rkey);
    let token: u64 = rand::random();
    let mut set = redis::cmd("SET");
    set.arg(&lease)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(cache.inner.cfg.lease.as_millis() as u64);
    let leased = cache.run::<Option<String>>(entity, &set).await;
    if let Some(None) = leased {
        // Another process loads: wait briefly for its fill.
        if let Some(row) = poll::<T>(cache, entity, &rkey).await {
            if let Ok(b) = entry::encode(&row) {
                leader.send(Found::Row(Arc::new(b)));
            }
            return Ok(Some(row));
        }
    }
    let owned = matches!(leased, Some(Some(_))).then_some(token);
    if owned.is_some() {
        // The lease may have been freed by a loader that filled after this
        // reader's GET: look once more before loading.
        if let Some(row) = refill_check::<T>(cache, entity, &rkey, &note.seen).await {
            release(cache, entity, &rkey, token).await;
            if let Ok(b) = entry::encode(&row) {
                leader.send(Found::Row(Arc::new(b)));
            }
            return Ok(Some(row));
        }
    }
    let (row, bytes) = load_and_fill::<T>(store, def, key, &rkey, note, owned).await?;
    leader.send(match bytes {
        Some(b) => Found::Row(Arc::new(b)),
        None => Found::Absent,
    });
    Ok(row)
}

/// Whether a hit should be refreshed early (XFetch): with probability
/// rising as expiry nears, scaled by how long the load took.
fn early_refresh(cache: &Cache, expiry_ms: u64, load_ms: u32) -> bool {
    let beta = cache.inner.cfg.xfetch_beta;
    if beta <= 0.0 {
        return false;
    }
    let r: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
    let gap = -(f64::from(load_ms.max(1))) * beta * r.ln();
    unix_ms() as f64 + gap >= expiry_ms as f64
}

/// A value another loader filled since this reader's GET (another entry
/// than the one it saw: an early refresh saw a value and wants a new one).
async fn refill_check<T: Cacheable>(
    cache: &Cache,
    entity: &'static str,
    rkey: &str,
    seen: &[u8],
) -> Option<T> {
    let got = cache
        .run::<Option<Vec<u8>>>(entity, redis::cmd("GET").arg(rkey))
        .await??;
    if entry::seen(Some(&got)) == seen {
        return None;
    }
    let entry::Entry::Value { row, .. } = entry::parse_for::<T>(&got) else {
        return None;
    };
    entry::decode::<T>(row)
}

/// Polls for another process's fill for up to `lease_wait`.
async fn poll<T: Cacheable>(cache: &Cache, entity: &'static str, rkey: &str) -> Option<T> {
    let until = Instant::now() + cache.inner.cfg.lease_wait;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let got = cache
            .run::<Option<Vec<u8>>>(entity, redis::cmd("GET").arg(rkey))
            .await?;
        if let Some(b) = got {
            if let entry::Entry::Value { row, .. } = entry::parse_for::<T>(&b) {
                if let Some(row) = entry::decode::<T>(row) {
                    return Some(row);
                }
            }
        }
    }
    None
}

/// Reads PostgreSQL, then fills if the noted entry is still there.
async fn load_and_fill<T: Cacheable>(
    store: &Store,
    def: &CacheDef,
    key: &T::Key,
    rkey: &str,
    note: Note,
    lease: Option<u64>,
) -> Result<(Option<T>, Option<Vec<u8>>)> {
    let (row, load_ms) = load::<T>(store, key).await?;
    let Some(row) = row else {
        if let Some(token) = lease {
            release(&store.cache, T::DEF.entity, rkey, token).await;
        }
        return Ok((None, None));
    };
    let bytes = entry::encode(&row)?;
    fill(
        &store.cache,
        T::DEF.entity,
        def,
        rkey,
        &note,
        &bytes,
        load_ms,
        lease,
    )
    .await;
    Ok((Some(row), Some(bytes)))
}

static FILL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
local seen = ''
if cur then seen = 'x' .. string.sub(cur, 2, 9) end
local wrote = 0
if seen == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  wrote = 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
return wrote
",
    )
});

/// Fills `rkey` with `row` if nothing changed since `note` (the script
/// compares tokens; the epoch and the read's age are checked here).
#[allow(clippy::too_many_arguments)]
async fn fill(
    cache: &Cache,
    entity: &'static str,
    def: &CacheDef,
    rkey: &str,
    note: &Note,
    row: &[u8],
    load_ms: u32,
    lease: Option<u64>,
) {
    if let Some(gate) = &cache.inner.cfg.fill_gate {
        gate.reached.notify_one();
        gate.release.notified().await;
    }
    let ttl = def.ttl_ms.max(1);
    let fresh = cache.epoch() == note.epoch && note.at.elapsed() < Duration::from_millis(ttl / 2);
    if !fresh {
        cache.count(Event::FillRefused, entity, 1);
        if let Some(token) = lease {
            release(cache, entity, rkey, token).await;
        }
        return;
    }
    let px = super::expiry_ms(ttl, cache.inner.cfg.jitter);
    let value = entry::value(
        rand::random(),
        unix_ms().saturating_add(px),
        load_ms,
        def.fingerprint,
        row,
    );
    let mut inv = FILL.prepare_invoke();
    inv.key(rkey)
        .key(entry::lease(rkey))
        .arg(note.seen.as_slice())
        .arg(value)
        .arg(px)
        .arg(lease.map(|t| t.to_string()).unwrap_or_default());
    match cache.fill_script(entity, inv).await {
        Some(true) => cache.count(Event::Fill, entity, 1),
        Some(false) => cache.count(Event::FillRefused, entity, 1),
        None => {}
    }
}

async fn release(cache: &Cache, entity: &'static str, rkey: &str, token: u64) {
    // Only our own lease: compare and delete in one script.
    static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        )
    });
    let mut inv = RELEASE.prepare_invoke();
    inv.key(entry::lease(rkey)).arg(token.to_string());
    let _ = cache.fill_script(entity, inv).await;
}

async fn get_many_cached<T: Cacheable>(
    store: &Store,
    def: &'static CacheDef,
    keys: &[T::Key],
) -> Result<Vec<T>> {
    let cache = &store.cache;
    let entity = T::DEF.entity;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let ent = cache.entity(entity);
    if !cache.usable(&ent) {
        cache.count(Event::Bypass, entity, keys.len() as u64);
        return pg::get_many::<T, _>(store.pool(), keys).await;
    }
    let rkeys = keys
        .iter()
        .map(|k| entry::key::<T>(cache.prefix(), k))
        .collect::<Result<Vec<_>>>()?;
    let epoch = cache.epoch();
    let at = Instant::now();
    let Some(got) = cache
        .run::<Vec<Option<Vec<u8>>>>(entity, redis::cmd("MGET").arg(&rkeys))
        .await
    else {
        return pg::get_many::<T, _>(store.pool(), keys).await;
    };
    let mut found: HashMap<&str, T> = HashMap::new();
    let mut misses: Vec<usize> = Vec::new();
    let mut seen: HashMap<&str, Vec<u8>> = HashMap::new();
    for (i, (rkey, b)) in rkeys.iter().zip(&got).enumerate() {
        if found.contains_key(rkey.as_str()) || seen.contains_key(rkey.as_str()) {
            continue;
        }
        if let Some(b) = b {
            if let entry::Entry::Value {
                expiry_ms,
                load_ms,
                row,
            } = entry::parse_for::<T>(b)
            {
                if !early_refresh(cache, expiry_ms, load_ms) {
                    if let Some(row) = entry::decode::<T>(row) {
                        found.insert(rkey, row);
                        continue;
                    }
                }
            }
        }
        seen.insert(rkey, entry::seen(b.as_deref()));
        misses.push(i);
    }
    cache.count(Event::Hit, entity, found.len() as u64);
    if !misses.is_empty() {
        cache.count(Event::Miss, entity, misses.len() as u64);
        cache.count(Event::Load, entity, 1);
        let t = Instant::now();
        let want: Vec<T::Key> = misses.iter().map(|&i| keys[i].clone()).collect();
        let rows = pg::get_many::<T, _>(store.pool(), &want).await?;
        let load_ms = t.elapsed().as_millis().min(u32::MAX as u128) as u32;
        let mut loaded = Vec::new();
        for row in rows {
            let rkey = entry::key::<T>(cache.prefix(), &row.key())?;
            let bytes = entry::encode(&row)?;
            loaded.push((rkey, bytes, row));
        }
        let mut fills = Vec::new();
        for (rkey, bytes, _) in &loaded {
            let Some(s) = seen.get(rkey.as_str()) else {
                continue;
            };
            let note = Note {
                seen: s.clone(),
                epoch,
                at,
            };
            fills.push(
                async move { fill(cache, entity, def, rkey, &note, bytes, load_ms, None).await },
            );
        }
        join_all(fills).await;
        let mut by_key: HashMap<String, T> =
            loaded.into_iter().map(|(k, _, row)| (k, row)).collect();
        let mut out = Vec::with_capacity(keys.len());
        let mut emitted = std::collections::HashSet::new();
        for rkey in &rkeys {
            if !emitted.insert(rkey.as_str()) {
                continue;
            }
            if let Some(row) = found.remove(rkey.as_str()) {
                out.push(row);
            } else if let Some(row) = by_key.remove(rkey) {
                out.push(row);
            }
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(found.len());
    let mut emitted = std::collections::HashSet::new();
    for rkey in &rkeys {
        if emitted.insert(rkey.as_str()) {
            if let Some(row) = found.remove(rkey.as_str()) {
                out.push(row);
            }
        }
    }
    Ok(out)
}
