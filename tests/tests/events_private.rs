//! Change events against a `redis-server` of the test's own: a dropped
//! subscription gives its connection back, a subscription rides out
//! dropped connections (errors retried, nothing yielded twice), and one
//! across Redis losing its data ends with an error instead of skipping.

mod cache_support;
mod events_support;

use std::time::Duration;

use futures_util::StreamExt;

use cache_support::{eventually, info, raw, replica_of, PrivateRedis, Sentinel};
use events_support::{quiet, take};
use strata_sdk::events::{Client, Event, Op, Position, Publisher};

async fn connected(url: &str) -> usize {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("clients").query(&mut c).unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("connected_clients:"))
        .unwrap();
    line["connected_clients:".len()..].trim().parse().unwrap()
}

fn events(from: u64, n: u64) -> Vec<Event> {
    (from..from + n)
        .map(|i| Event {
            partition: (i % 2) as u16,
            position: Position::new(i, 0),
            op: Op::Insert,
            key: format!(r#"{{"id":{i}}}"#),
            row: Some(format!(r#"{{"id":{i}}}"#)),
            ts_us: 0,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_subscriptions_close_their_connections() {
    let redis = PrivateRedis::start();
    let client = Client::connect(&redis.url(), "t").await.unwrap();
    // The client's own shared connection (lazily opened) counts in the base.
    client.head("E").await.unwrap();
    let base = connected(&redis.url()).await;
    let subs: Vec<_> = (0..10)
        .map(|_| Box::pin(client.subscribe_as::<serde_json::Value>("E", 2, Position::START)))
        .collect();
    let mut open = base;
    for _ in 0..100 {
        open = connected(&redis.url()).await;
        if open >= base + 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(open >= base + 10, "{open} connections, base {base}");
    drop(subs);
    for _ in 0..100 {
        if connected(&redis.url()).await <= base {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} connections 10 s after the subscriptions were dropped (base {base})",
        connected(&redis.url()).await
    );
}

/// Redis restarted without persistence while a subscription runs: the
/// entries appended before the crash that it had not read are gone for
/// good (change capture acknowledged them), so it ends with an error
/// instead of going on past the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_across_redis_losing_its_data_ends_with_an_error() {
    let mut redis = PrivateRedis::start();
    let p = Publisher::connect(&redis.url(), "t").await.unwrap();
    let client = Client::connect(&redis.url(), "t").await.unwrap();
    let mut sub = Box::pin(client.subscribe_as::<serde_json::Value>("E", 2, Position::START));
    p.append("E", 1000, false, &events(1, 5)).await.unwrap();
    let first = take(&mut sub, 5, 10).await;
    assert_eq!(first.last().unwrap().position, Position::new(5, 0));
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart(); // empty: nothing persisted
                     // The writer retries until Redis is back (as change capture does).
    let p = Publisher::connect(&redis.url(), "t").await.unwrap();
    p.append("E", 1000, false, &events(10, 5)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("an answer within 20 s")
        .expect("the stream yields");
    match got {
        Err(strata_sdk::Error::Event { message }) => {
            assert!(
                message.contains("lost the change streams' data"),
                "{message}"
            );
        }
        other => panic!("expected Error::Event, got {other:?}"),
    }
}

/// Connections dropped (a network blip, a proxy restart) with the data
/// kept: the subscription retries and goes on, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_rides_out_dropped_connections() {
    let redis = PrivateRedis::start();
    let p = Publisher::connect(&redis.url(), "t").await.unwrap();
    let client = Client::connect(&redis.url(), "t").await.unwrap();
    let mut sub = Box::pin(client.subscribe_as::<serde_json::Value>("E", 2, Position::START));
    p.append("E", 1000, false, &events(1, 5)).await.unwrap();
    let first = take(&mut sub, 5, 10).await;
    assert_eq!(first.last().unwrap().position, Position::new(5, 0));
    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut admin)
        .unwrap();
    let p = Publisher::connect(&redis.url(), "t").await.unwrap();
    p.append("E", 1000, false, &events(6, 5)).await.unwrap();
    let after = take(&mut sub, 5, 20).await;
    let pos: Vec<u64> = after.iter().map(|c| c.position.lsn).collect();
    assert_eq!(pos, [6, 7, 8, 9, 10]);
    quiet(&mut sub, 500).await;
}

/// Change events through Redis Sentinel (`redis+sentinel://…/strata`): the
/// publisher and a subscription find the master through the sentinel, and
/// both follow a failover: after the master dies and its replica is
/// promoted, appends reach the new master and the same subscription goes
/// on from where it was, nothing skipped or yielded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_through_sentinel_and_follow_a_failover() {
    let mut master = PrivateRedis::start();
    let (_replica, replica_url) = replica_of(master.port);
    eventually(20, "the replica connected", || async {
        info(&master.url(), "replication")
            .await
            .contains("connected_slaves:1")
    })
    .await;
    let (_sentinel, url) = Sentinel::start(master.port);
    let mut publisher = None;
    for _ in 0..100 {
        if let Ok(p) = Publisher::connect(&url, "t").await {
            publisher = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = publisher.expect("the sentinel answers");
    let client = Client::connect(&url, "t").await.unwrap();
    let mut sub = Box::pin(client.subscribe_as::<serde_json::Value>("E", 2, Position::START));
    assert_eq!(
        p.append("E", 1000, false, &events(1, 10)).await.unwrap(),
        10
    );
    let first = take(&mut sub, 10, 10).await;
    assert_eq!(first.len(), 10);
    // Replication is asynchronous: everything is on the replica before
    // the master dies.
    let m = raw(&master.url()).await;
    eventually(10, "the replica acknowledged every write", || {
        let mut m = m.clone();
        async move {
            let mut wait = redis::cmd("WAIT");
            wait.arg(1).arg(200);
            let n: redis::RedisResult<i64> = wait.query_async(&mut m).await;
            n.is_ok_and(|n| n == 1)
        }
    })
    .await;
    master.kill();
    eventually(30, "an append on the promoted replica", || async {
        p.append("E", 1000, false, &events(11, 10)).await.is_ok()
    })
    .await;
    assert!(info(&replica_url, "replication")
        .await
        .contains("role:master"));
    let then = take(&mut sub, 10, 30).await;
    let mut seen: Vec<u64> = first.iter().chain(&then).map(|c| c.position.lsn).collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>());
    quiet(&mut sub, 500).await;
}
