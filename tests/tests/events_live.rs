//! Typed change events on Redis Streams, on a single Redis and on the
//! Cluster: every committed change (written through the SDK or plain SQL)
//! reaches a subscriber once, in order per key, deletes and key moves
//! included, rolled-back work never; no secret in any stream entry or
//! pub/sub message; resuming from a position repeats and loses nothing; a
//! replayed append is refused; streams are trimmed and a position older
//! than the trim is refused.

mod events_support;

use std::collections::BTreeMap;
use std::time::Duration;

use events_support::*;
use futures_util::StreamExt;
use strata_sdk::events::{Event, Events, Op, Position, Publisher};

/// What each key went through, in order: (op, balance after).
type History = BTreeMap<i64, Vec<(Op, Option<i64>)>>;

async fn writes(f: &Fixture) -> History {
    let mut h: History = BTreeMap::new();
    let mut note = |id: i64, op: Op, b: Option<i64>| h.entry(id).or_default().push((op, b));
    // Through the SDK, one statement each.
    for id in 1..=12 {
        Ledger::insert(
            &f.pool,
            &NewLedger {
                id,
                owner: format!("o{id}"),
                balance: id * 10,
                note: None,
                pin: strata_sdk::Secret::new(SECRET),
                tags: serde_json::json!({"n": id, "list": [1, "x"]}),
            },
        )
        .await
        .expect("insert");
        note(id, Op::Insert, Some(id * 10));
    }
    // Plain SQL, several rows per transaction, three times.
    for round in 1..=3 {
        sqlx::query("UPDATE ledgers SET balance = balance + $1 WHERE id <= 6")
            .bind(round)
            .execute(&f.pool)
            .await
            .unwrap();
        for id in 1..=6 {
            let last = h[&id].last().unwrap().1.unwrap();
            h.get_mut(&id)
                .unwrap()
                .push((Op::Update, Some(last + round)));
        }
    }
    // A transaction that rolls back publishes nothing.
    let mut tx = f.pool.begin().await.unwrap();
    sqlx::query("UPDATE ledgers SET balance = -1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    sqlx::query("DELETE FROM ledgers WHERE id > 9")
        .execute(&f.pool)
        .await
        .unwrap();
    for id in 10..=12 {
        h.get_mut(&id).unwrap().push((Op::Delete, None));
    }
    // A key that moves: a delete of the old key, an insert of the new.
    sqlx::query("UPDATE ledgers SET id = 100 WHERE id = 9")
        .execute(&f.pool)
        .await
        .unwrap();
    h.get_mut(&9).unwrap().push((Op::Delete, None));
    h.entry(100).or_default().push((Op::Insert, Some(90)));
    h
}

async fn scenario(url: &str) {
    let f = Fixture::new(url).await;
    let (stop, run) = f.start();
    f.snapshot_done().await;
    let client = f.client().await;
    let mut changes = Box::pin(Ledger::subscribe(&client, Position::START));
    // The pub/sub channel, read raw (on the Cluster, any node hears it).
    let node = nodes(url)[0].clone();
    let mut pubsub = redis::Client::open(node.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub
        .subscribe(strata_sdk::events::channel(&f.prefix, "Ledger"))
        .await
        .unwrap();

    let want = writes(&f).await;
    let total: usize = want.values().map(Vec::len).sum();
    let got = take(&mut changes, total, 30).await;
    quiet(&mut changes, 500).await;

    // Positions strictly grow: the subscription is in commit order.
    assert!(got.windows(2).all(|w| w[0].position < w[1].position));
    let mut seen: History = BTreeMap::new();
    for c in &got {
        let id = c.key["id"].as_i64().expect("key id");
        assert_eq!(c.row.is_none(), c.op == Op::Delete, "{c:?}");
        if let Some(r) = &c.row {
            assert_eq!(
                (r.id, &r.owner),
                (id, &format!("o{}", if id == 100 { 9 } else { id }))
            );
            assert_eq!(r.tags["list"][1], "x", "json arrives as JSON");
        }
        seen.entry(id)
            .or_default()
            .push((c.op, c.row.as_ref().map(|r| r.balance)));
    }
    assert_eq!(seen, want, "every change once, in order per key");

    // Resume from the 10th change: the rest, nothing before it.
    let mut resumed = Box::pin(Ledger::subscribe(&client, got[9].position));
    let rest = take(&mut resumed, total - 10, 20).await;
    quiet(&mut resumed, 300).await;
    let pos = |v: &[strata_sdk::events::Change<LedgerPublic>]| {
        v.iter().map(|c| c.position).collect::<Vec<_>>()
    };
    assert_eq!(pos(&rest), pos(&got[10..]));

    // A bare LSN (as PostgreSQL prints one) starts with change 0 of a
    // commit there: never after it.
    let first = got
        .iter()
        .position(|c| c.position.seq == 0 && c.position.lsn > 0);
    let first = first.expect("a change 0");
    let lsn = got[first].position.lsn;
    let bare: Position = format!("{:X}/{:X}", lsn >> 32, lsn as u32).parse().unwrap();
    let mut from_lsn = Box::pin(Ledger::subscribe(&client, bare));
    let rest = take(&mut from_lsn, total - first, 20).await;
    assert_eq!(pos(&rest), pos(&got[first..]));

    // Pub/sub carried each change once, with its position.
    let mut messages = Vec::new();
    let mut ps = pubsub.on_message();
    while messages.len() < total {
        let m = tokio::time::timeout(Duration::from_secs(5), ps.next())
            .await
            .expect("pub/sub message")
            .unwrap();
        messages.push(m.get_payload::<String>().unwrap());
    }
    // (Partitions are written concurrently: pub/sub order is per partition.)
    let mut heard = Vec::new();
    for m in &messages {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        heard.push(v["position"].as_str().unwrap().parse::<Position>().unwrap());
        assert!(!m.contains(SECRET) && !m.contains("\"pin\""), "{m}");
    }
    heard.sort();
    assert_eq!(heard, got.iter().map(|c| c.position).collect::<Vec<_>>());

    // No secret anywhere under the prefix: streams only, no `pin` field.
    let entries = stream_texts(url, &f.prefix).await;
    assert!(entries.len() >= total, "{} entries", entries.len());
    for (key, id, vals) in &entries {
        for v in vals {
            assert!(
                !v.contains(SECRET) && !v.contains("\"pin\""),
                "{key} {id}: {v}"
            );
        }
    }
    let partitions: std::collections::BTreeSet<&String> = entries
        .iter()
        .map(|(k, _, _)| k)
        .filter(|k| !k.ends_with(":head"))
        .collect();
    assert!(
        partitions.len() > 1,
        "keys spread over partitions: {partitions:?}"
    );

    stop.send(true).unwrap();
    run.await.unwrap().expect("the sync ran cleanly");
    f.drop_pipeline().await;
}

#[tokio::test]
async fn changes_reach_a_subscriber_in_order_without_secrets_single_node() {
    scenario(&single_url()).await;
}

#[tokio::test]
async fn changes_reach_a_subscriber_in_order_without_secrets_cluster() {
    scenario(&cluster_url()).await;
}

fn event(i: u64, partition: u16) -> Event {
    Event {
        partition,
        position: Position::new(1000 + i, i % 3),
        op: Op::Update,
        key: format!(r#"{{"id":{}}}"#, i % 7),
        row: Some(format!(r#"{{"id":{},"n":{i}}}"#, i % 7)),
        ts_us: 1_700_000_000_000_000,
    }
}

async fn replays_and_trimming(url: &str) {
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: url.to_string(),
        prefix: prefix.clone(),
    };
    let p = Publisher::connect(url, &prefix).await.unwrap();
    // The partition count is recorded once; another count is refused.
    p.claim_partitions("T", 2).await.unwrap();
    p.claim_partitions("T", 2).await.unwrap();
    let e = p.claim_partitions("T", 4).await.unwrap_err();
    assert!(e.to_string().contains("written to 2 partitions"), "{e}");
    let batch: Vec<Event> = (0..50).map(|i| event(i, (i % 2) as u16)).collect();
    assert_eq!(p.append("T", 1000, false, &batch).await.unwrap(), 50);
    // The same entries again (a replay after a crash): all refused.
    assert_eq!(p.append("T", 1000, false, &batch).await.unwrap(), 0);
    // A batch that overlaps: only the new part is added.
    let more: Vec<Event> = (40..60).map(|i| event(i, (i % 2) as u16)).collect();
    assert_eq!(p.append("T", 1000, false, &more).await.unwrap(), 10);
    let all = stream_texts(url, &prefix).await;
    assert_eq!(
        all.iter().filter(|(k, _, _)| !k.ends_with(":head")).count(),
        60
    );

    // 5,000 more into partition 0: trimmed to about max_len (whole nodes).
    for chunk in (100..5100).collect::<Vec<u64>>().chunks(500) {
        let b: Vec<Event> = chunk.iter().map(|&i| event(i, 0)).collect();
        p.append("T", 1000, false, &b).await.unwrap();
    }
    let client = strata_sdk::events::Client::connect(url, &prefix)
        .await
        .unwrap();
    let key = strata_sdk::events::stream_key(&prefix, "T", 0);
    let len = stream_texts(url, &prefix)
        .await
        .iter()
        .filter(|(k, _, _)| *k == key)
        .count();
    assert!(
        (1000..=1200).contains(&len),
        "partition 0 holds {len} entries"
    );
    // A position the trim passed is refused, not silently skipped.
    let mut old =
        Box::pin(client.subscribe_as::<serde_json::Value>("T", 2, Position::new(1001, 1)));
    let e = tokio::time::timeout(Duration::from_secs(5), old.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("older than"), "{e}");
    // A position past the head (Redis lost its data, or a foreign one) is
    // refused too, not waited on forever.
    let mut ahead = Box::pin(client.subscribe_as::<serde_json::Value>(
        "T",
        2,
        Position::new(1000 + 5099 + 1, 0),
    ));
    let e = tokio::time::timeout(Duration::from_secs(5), ahead.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("ahead of the newest"), "{e}");
    // From the start on trimmed streams: from the first transaction after
    // the highest first-kept entry (partition 0's), so no transaction is
    // yielded cut; in order, up to the last entry. Partition 1's 30
    // entries are older: a trim elsewhere may have cut their transactions.
    let first_kept = stream_texts(url, &prefix)
        .await
        .iter()
        .filter(|(k, _, _)| *k == key)
        .filter_map(|(_, id, _)| Position::from_stream_id(id))
        .min()
        .unwrap();
    let mut all = Box::pin(client.subscribe_as::<serde_json::Value>("T", 2, Position::START));
    let got = take(&mut all, len - 1, 10).await;
    quiet(&mut all, 300).await;
    assert!(got.windows(2).all(|w| w[0].position < w[1].position));
    assert!(
        got[0].position.lsn > first_kept.lsn,
        "{:?} {first_kept}",
        got[0].position
    );
    assert_eq!(
        got.last().unwrap().position,
        Position::new(1000 + 5099, 5099 % 3)
    );
}

#[tokio::test]
async fn replays_are_refused_and_streams_trimmed_single_node() {
    replays_and_trimming(&single_url()).await;
}

#[tokio::test]
async fn replays_are_refused_and_streams_trimmed_cluster() {
    replays_and_trimming(&cluster_url()).await;
}

/// Deletes every key of `prefix` (what Redis restarting without
/// persistence does to the streams, their head and epoch).
async fn lose_data(url: &str, prefix: &str) {
    drop(Cleanup {
        url: url.to_string(),
        prefix: prefix.to_string(),
    });
    assert!(keys(url, prefix).await.is_empty(), "every key gone");
}

/// The first change a subscription from `from` yields, or its error.
async fn first(client: &strata_sdk::events::Client, from: Position) -> Result<Position, String> {
    let mut s = Box::pin(client.subscribe_as::<serde_json::Value>("T", 2, from));
    match tokio::time::timeout(Duration::from_secs(5), s.next()).await {
        Ok(Some(Ok(c))) => Ok(c.position),
        Ok(Some(Err(e))) => Err(e.to_string()),
        other => panic!("{:?}", other.map(|o| o.map(|r| r.map(|c| c.position)))),
    }
}

/// Redis loses the streams (a restart without persistence) after a
/// subscriber saved its position; the publisher appends newer changes. A
/// subscription resuming from the saved position is refused, not left to
/// skip the lost changes silently; one from the floor, or from the start,
/// reads what the new streams hold. The floor comes from this publisher's
/// own appends, or from an earlier run's (`written_before`, as change
/// capture resuming its slot says).
async fn loss_floor(url: &str) {
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: url.to_string(),
        prefix: prefix.clone(),
    };
    let client = strata_sdk::events::Client::connect(url, &prefix)
        .await
        .unwrap();
    let p = Publisher::connect(url, &prefix).await.unwrap();
    let batch: Vec<Event> = (0..50).map(|i| event(i, (i % 2) as u16)).collect();
    assert_eq!(p.append("T", 1000, false, &batch).await.unwrap(), 50);
    let saved = Position::new(1010, 10 % 3);
    assert_eq!(first(&client, saved).await, Ok(Position::new(1011, 11 % 3)));

    lose_data(url, &prefix).await;
    let newer: Vec<Event> = (100..110).map(|i| event(i, (i % 2) as u16)).collect();
    assert_eq!(p.append("T", 1000, false, &newer).await.unwrap(), 10);
    let e = first(&client, saved).await.unwrap_err();
    assert!(e.contains("Redis lost the change streams' data"), "{e}");
    assert!(
        e.contains(&Position::new(1049, 49 % 3).to_string()),
        "the floor: {e}"
    );
    let last_lost = Position::new(1049, 49 % 3);
    assert_eq!(
        first(&client, last_lost).await,
        Ok(Position::new(1100, 100 % 3))
    );
    assert_eq!(
        first(&client, Position::START).await,
        Ok(Position::new(1100, 100 % 3))
    );

    // A new run (a new publisher) that resumed after position 1200.
    lose_data(url, &prefix).await;
    let next_run = Publisher::connect(url, &prefix).await.unwrap();
    next_run.written_before(Position::before_commit(1200));
    let later: Vec<Event> = (300..305).map(|i| event(i, (i % 2) as u16)).collect();
    assert_eq!(next_run.append("T", 1000, false, &later).await.unwrap(), 5);
    let e = first(&client, Position::new(1109, 109 % 3))
        .await
        .unwrap_err();
    assert!(e.contains("Redis lost"), "{e}");
    assert_eq!(
        first(&client, Position::before_commit(1200)).await,
        Ok(Position::new(1300, 300 % 3))
    );
}

#[tokio::test]
async fn a_position_from_before_redis_lost_the_streams_is_refused_single_node() {
    loss_floor(&single_url()).await;
}

#[tokio::test]
async fn a_position_from_before_redis_lost_the_streams_is_refused_cluster() {
    loss_floor(&cluster_url()).await;
}

#[test]
fn the_derive_declares_the_events_of_an_entity_with_a_secret() {
    let d = <Ledger as Events>::EVENTS;
    assert_eq!(
        (d.entity, d.partitions, d.max_len, d.pubsub),
        ("Ledger", 4, 100_000, true)
    );
    // The row type is the view without the secret.
    let v = LedgerPublic {
        id: 1,
        owner: "o".into(),
        balance: 2,
        note: None,
        tags: serde_json::json!({}),
    };
    assert!(!serde_json::to_string(&v).unwrap().contains("pin"));
}

async fn group_reads(url: &str) {
    let prefix = prefix();
    let _cleanup = Cleanup {
        url: url.to_string(),
        prefix: prefix.clone(),
    };
    let p = Publisher::connect(url, &prefix).await.unwrap();
    let client = strata_sdk::events::Client::connect(url, &prefix)
        .await
        .unwrap();
    let mut a = client.group::<Ledger>("g", "a", 1);
    let b = client.group::<Ledger>("g", "b", 1);
    a.create(Position::START).await.unwrap();
    b.create(Position::START).await.unwrap(); // exists: no error
    let row = |i: u64| format!(r#"{{"id":{i},"owner":"o","balance":{i},"note":null,"tags":{{}}}}"#);
    let batch: Vec<Event> = (1..=6)
        .map(|i| Event {
            row: Some(row(i)),
            ..event(i, 1)
        })
        .collect();
    p.append("Ledger", 100_000, false, &batch).await.unwrap();
    // `a` reads four, acknowledges two, and dies.
    let got = a.read(4, Duration::from_millis(500)).await.unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].row.as_ref().unwrap().balance, 1, "typed rows");
    assert_eq!(a.ack(&[got[0].position, got[1].position]).await.unwrap(), 2);
    assert_eq!(
        a.pending(10).await.unwrap().len(),
        2,
        "two read, not acknowledged"
    );
    drop(a);
    // `b` takes over what `a` left pending, then reads the rest.
    let claimed = b.claim(Duration::ZERO, 10).await.unwrap();
    let pos = |v: &[strata_sdk::events::Change<LedgerPublic>]| {
        v.iter().map(|c| c.position).collect::<Vec<_>>()
    };
    assert_eq!(pos(&claimed), pos(&got[2..]));
    let mut b = b;
    let rest = b.read(10, Duration::from_millis(500)).await.unwrap();
    assert_eq!(rest.len(), 2);
    let mut all = pos(&claimed);
    all.extend(pos(&rest));
    assert_eq!(b.ack(&all).await.unwrap(), 4);
    assert!(b.pending(10).await.unwrap().is_empty());
    assert!(b
        .read(10, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_consumer_group_hands_a_dead_consumers_entries_over_single_node() {
    group_reads(&single_url()).await;
}

#[tokio::test]
async fn a_consumer_group_hands_a_dead_consumers_entries_over_cluster() {
    group_reads(&cluster_url()).await;
}
