//! Single flight: concurrent misses of one key in one process share one
//! PostgreSQL load.
//!
//! A miss joins the load in flight for its key only if that load began
//! after the last write this cache invalidated for the entity (the load's
//! `writes` count equals the current one): a load that began earlier may
//! hold a row older than a write the joiner must see. Otherwise it starts
//! a load of its own, which later misses join.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What a load found, as the followers get it.
#[derive(Clone)]
pub(crate) enum Found {
    /// The row, MessagePack-encoded.
    Row(Arc<Vec<u8>>),
    Absent,
}

pub(crate) struct Flight {
    writes: u64,
    rx: watch::Receiver<Option<Found>>,
}

#[derive(Default)]
pub(crate) struct Flights(Mutex<HashMap<String, Arc<Flight>>>);

/// The load a miss leads (it sends the result, and removes the flight when
/// dropped, also when its future is cancelled).
pub(crate) struct Leader<'f> {
    flights: &'f Flights,
    key: String,
    flight: Arc<Flight>,
    tx: watch::Sender<Option<Found>>,
}

impl Leader<'_> {
    pub(crate) fn send(&self, found: Found) {
        let _ = self.tx.send(Some(found));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut map = self.flights.0.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            map.remove(&self.key);
        }
    }
}

pub(crate) enum Role<'f> {
    Leader(Leader<'f>),
    /// Waits for the leader; `None` if it failed or was cancelled.
    Follower(watch::Receiver<Option<Found>>),
}

impl Flights {
    /// Joins the flight of `key` begun at `writes`, or starts one.
    pub(crate) fn join(&self, key: &str, writes: u64) -> Role<'_> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(key) {
            if f.writes == writes {
                return Role::Follower(f.rx.clone());
            }
        }
        let (tx, rx) = watch::channel(None);
        let flight = Arc::new(Flight { writes, rx });
        map.insert(key.to_string(), flight.clone());
        Role::Leader(Leader {
            flights: self,
            key: key.to_string(),
            flight,
            tx,
        })
    }
}

/// The leader's result, or `None` if it failed or was dropped.
pub(crate) async fn wait(mut rx: watch::Receiver<Option<Found>>) -> Option<Found> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}
