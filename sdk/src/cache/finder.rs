//! Cached `one: true` finders (a named query on a unique field, such as
//! `Order::by_client_id`), read through the cache when the executor is a
//! [`Store`].
//!
//! A finder's cache entry is a **pointer**,
//! `<prefix>:<entity>:<fingerprint>:q<n>:{<parameters>}` → the Redis key of
//! the row it found, and the row itself stays where [`super::repo::get`]
//! keeps it. A hit reads the pointer, then the row's entry, and returns the
//! row only when it still matches the finder's parameters: the row entry
//! is never stale after a write (the lease rules of [`crate::cache`]), so a
//! pointer left behind by an update of the unique field, or by a delete,
//! reads as a miss and is never served. This is why no write has to know
//! which finder values a row had before (PostgreSQL 15 cannot return the
//! old row of an `UPDATE`).
//!
//! A miss runs the finder on PostgreSQL, reads the row it found through
//! `get`'s path (which fills its entry under the lease; a second, keyed
//! query when the row is not cached yet), and points the finder at it.
//! Costs: a hit is two `GET`s (on a Cluster the pointer and the row live
//! in different slots); a miss is the finder query plus `get`'s. A finder
//! that finds nothing is not cached (no negative entries), and a parameter
//! that matches in SQL but not by Rust's `==` (a `citext` column, say) is
//! always a miss, never a wrong row.

use super::repo::{find_cached, Cacheable};
use super::{entry, unix_ms, Event, Store};
use crate::error::Result;
use crate::postgres::{repo as pg, Args, CacheDef, Db, Fut};

/// The row the `index`-th named query (declared `one: true`) finds, read
/// through the cache ([module docs](self)) when `db` is a [`Store`] and
/// `T` has `cache:`, else from PostgreSQL. `params` is the parameters
/// rendered as a key part ([`crate::finder_key!`]); `matches` tells
/// whether a row has the parameters' values.
pub fn query_one<'a, T, A, M>(
    db: A,
    index: usize,
    a: Result<Args>,
    params: Result<String>,
    matches: M,
) -> Fut<'a, Option<T>>
where
    T: Cacheable,
    A: Db<'a>,
    M: Fn(&T) -> bool + Send + Sync + 'a,
{
    match (db.store(), T::CACHE) {
        (Some(store), Some(def)) => Box::pin(async move {
            let pointer = pointer_key::<T>(store, def, index, &params?);
            find::<T>(store, def, index, a?, &pointer, &matches).await
        }),
        _ => pg::query_one::<T, A>(db, index, a),
    }
}

fn pointer_key<T: Cacheable>(store: &Store, def: &CacheDef, index: usize, params: &str) -> String {
    let (prefix, entity) = (store.cache.prefix(), T::DEF.entity);
    format!("{prefix}:{entity}:{}:q{index}:{params}", def.fingerprint)
}

async fn find<T: Cacheable>(
    store: &Store,
    def: &'static CacheDef,
    index: usize,
    a: Args,
    pointer: &str,
    matches: &(dyn Fn(&T) -> bool + Send + Sync),
) -> Result<Option<T>> {
    let (cache, entity) = (&store.cache, T::DEF.entity);
    let usable = cache.usable(&cache.entity(entity));
    if !usable {
        cache.count(Event::Bypass, entity, 1);
        return pg::query_one::<T, _>(store.pool(), index, Ok(a)).await;
    }
    if let Some(row) = hit::<T>(store, pointer, matches).await {
        cache.count(Event::Hit, entity, 1);
        return Ok(Some(row));
    }
    cache.count(Event::Miss, entity, 1);
    cache.count(Event::Load, entity, 1);
    let Some(row) = pg::query_one::<T, _>(store.pool(), index, Ok(a)).await? else {
        return Ok(None);
    };
    let key = row.key();
    // Through `get`'s path: a hit, or a keyed load that fills under the lease.
    if find_cached::<T>(store, def, &key)
        .await?
        .is_some_and(|r| matches(&r))
    {
        let rkey = entry::key::<T>(cache.prefix(), &key)?;
        let px = super::expiry_ms(def.ttl_ms, cache.inner.cfg.jitter);
        let mut set = redis::cmd("SET");
        set.arg(pointer).arg(rkey).arg("PX").arg(px);
        let _ = cache.run::<()>(entity, &set).await;
    }
    Ok(Some(row))
}

/// The row a pointer leads to, if its entry is a value that still matches.
async fn hit<T: Cacheable>(
    store: &Store,
    pointer: &str,
    matches: &(dyn Fn(&T) -> bool + Send + Sync),
) -> Option<T> {
    let (cache, entity) = (&store.cache, T::DEF.entity);
    let rkey: String = cache
        .run::<Option<String>>(entity, redis::cmd("GET").arg(pointer))
        .await??;
    // Only a row key of this entity (its shape is checked in the entry).
    let own = format!("{}:{entity}:{{", cache.prefix());
    if !rkey.starts_with(&own) || !rkey.ends_with('}') {
        return None;
    }
    let got = cache
        .run::<Option<Vec<u8>>>(entity, redis::cmd("GET").arg(&rkey))
        .await??;
    let entry::Entry::Value { expiry_ms, row, .. } = entry::parse_for::<T>(&got) else {
        return None;
    };
    if expiry_ms <= unix_ms() {
        return None;
    }
    entry::decode::<T>(row).filter(|r| matches(r))
}
