//! Read replicas on real servers: the streaming replica of the local
//! PostgreSQL on 127.0.0.1:5433 (`scripts/services.sh`, `REPLICA_URL`)
//! with its replay paused (`pg_wal_replay_pause()`), a replica URL on a
//! port nothing listens on, and a private primary + streaming replica in a
//! temporary folder that the test stops and starts again.
//!
//! The tests that pause the shared replica run one at a time (a lock), and
//! every pause is resumed by a guard's `Drop`, also when a test fails.

mod ops_support;

use std::time::{Duration, Instant};

use ops_support::{psql, replica_url, wait_for_replica, PausedReplay, PrivatePair, REPLICA_LOCK};
use strata_sdk::postgres::{CausalityToken, PoolConfig, ReplicaPolicy, Replicated};
use strata_tests::fixtures::ops_replicas::entities::{NewNote, Note};
use strata_tests::support::PgDatabase;

const DDL: &str = r#"CREATE TABLE "ops_notes" ("id" bigint PRIMARY KEY, "body" text NOT NULL);"#;

/// A database on the primary with the notes table, visible on the replica.
async fn database() -> PgDatabase {
    let db = PgDatabase::new().await;
    let mut c = db.connect().await;
    sqlx::raw_sql(DDL).execute(&mut c).await.unwrap();
    wait_for_replica(&replica_url(&db.name), "ops_notes").await;
    db
}

async fn handle(db: &PgDatabase, replicas: Vec<String>, policy: ReplicaPolicy) -> Replicated {
    let config = PoolConfig {
        store: "ops".into(),
        replicas,
        max: Some(4),
        acquire_timeout_ms: Some(5_000),
        ..PoolConfig::new(db.url.clone())
    };
    Replicated::connect(&config, policy).await.unwrap()
}

fn note(id: i64) -> NewNote {
    NewNote {
        id,
        body: format!("note {id}"),
    }
}

fn is(pool: &sqlx::PgPool, other: &sqlx::PgPool) -> bool {
    std::ptr::eq(pool, other)
}

/// Whether `pool` is the handle's first replica (the same pool, not a clone).
fn on_replica(r: &Replicated, pool: &sqlx::PgPool) -> bool {
    is(pool, r.replica_pools().next().unwrap().1)
}

/// The replica's pool, once `r.after(t)` picks it: a caught-up replica
/// serves a token's read (within 10 s: on a loaded machine replay can take
/// longer than the policy's wait, and the primary serves it meanwhile).
async fn replica_serves<'r>(r: &'r Replicated, t: &CausalityToken) -> &'r sqlx::PgPool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pool = r.after(t).await;
        if on_replica(r, pool) {
            return pool;
        }
        assert!(
            Instant::now() < deadline,
            "a caught-up replica serves the read within 10 s: {:?}",
            r.replica_states()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn token_reads_never_miss_a_write_while_replay_is_paused() {
    let _serial = REPLICA_LOCK.lock().await;
    let db = database().await;
    let policy = ReplicaPolicy::default().with_wait(Duration::from_millis(50));
    let r = handle(&db, vec![replica_url(&db.name)], policy).await;
    let replica_pool = r.replica_pools().next().unwrap().1.clone();
    assert!(r.replica_states()[0].up, "{:?}", r.replica_states());

    // Caught up: a write, its token, and once the replica has replayed it,
    // the replica serves the read (on a loaded machine replay can take
    // longer than the 50 ms the policy waits; then the primary serves it).
    Note::insert(r.primary(), &note(0)).await.unwrap();
    let t = r.token().await.unwrap();
    let pool = replica_serves(&r, &t).await;
    assert_eq!(Note::get(pool, &0).await.unwrap().body, "note 0");

    let paused = PausedReplay::start().await;
    let mut served_by_primary = 0;
    for id in 1..=20 {
        Note::insert(r.primary(), &note(id)).await.unwrap();
        let t: CausalityToken = r.token().await.unwrap();
        let pool = r.after(&t).await;
        // The read must never miss the write the token came from.
        let got = Note::find(pool, &id).await.unwrap();
        assert_eq!(got.map(|n| n.body), Some(format!("note {id}")), "id {id}");
        served_by_primary += is(pool, r.primary()) as u32;
    }
    // The replica really is behind: it has not seen these rows.
    let rows_on_replica = Note::count(&replica_pool).await.unwrap();
    let rows_on_primary = Note::count(r.primary()).await.unwrap();
    assert_eq!((rows_on_replica, rows_on_primary), (1, 21));
    assert_eq!(
        served_by_primary, 20,
        "paused replay: every read falls back"
    );

    // Replay resumes while a token read waits: the replica serves it once it
    // has replayed past the token.
    Note::insert(r.primary(), &note(100)).await.unwrap();
    let t = r.token().await.unwrap();
    let long = Replicated::from_pools(
        "ops",
        r.primary().clone(),
        vec![("replica".into(), replica_pool.clone())],
        policy.with_wait(Duration::from_secs(10)),
    )
    .await;
    let resume = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(paused);
    });
    let started = Instant::now();
    let pool = long.after(&t).await;
    let waited = started.elapsed();
    assert!(on_replica(&long, pool), "served by the replica");
    assert!(
        waited >= Duration::from_millis(250),
        "it waited for replay: {waited:?}"
    );
    assert_eq!(
        Note::find(pool, &100).await.unwrap().map(|n| n.id),
        Some(100)
    );
    resume.await.unwrap();
}

#[tokio::test]
async fn a_lagging_replica_is_skipped_until_it_catches_up() {
    let _serial = REPLICA_LOCK.lock().await;
    let db = database().await;
    let policy = ReplicaPolicy::default()
        .with_max_lag(Duration::from_millis(300))
        .with_recheck(Duration::from_millis(50));
    let r = handle(&db, vec![replica_url(&db.name)], policy).await;
    assert!(on_replica(&r, r.replica()), "{:?}", r.replica_states());

    let paused = PausedReplay::start().await;
    // WAL the replica receives and does not replay: it falls behind.
    Note::insert(r.primary(), &note(1)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_replica(&r, r.replica()) {
        assert!(Instant::now() < deadline, "{:?}", r.replica_states());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let state = &r.replica_states()[0];
    assert!(state.lag.unwrap() > Duration::from_millis(300), "{state:?}");
    // Reads through the handle keep working, on the primary.
    let got = r.read(|p| Note::find(p, &1)).await.unwrap();
    assert_eq!(got.map(|n| n.id), Some(1));

    drop(paused);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !on_replica(&r, r.replica()) {
        assert!(Instant::now() < deadline, "{:?}", r.replica_states());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_replica_nothing_listens_on_is_skipped_and_reads_work() {
    let _serial = REPLICA_LOCK.lock().await;
    let db = database().await;
    let nowhere = "postgres://postgres@127.0.0.1:9/nothing".to_string();
    let policy = ReplicaPolicy::default().with_probe_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let r = handle(&db, vec![nowhere], policy).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let state = &r.replica_states()[0];
    assert!(!state.up, "{state:?}");
    assert!(
        state
            .problem
            .as_deref()
            .unwrap_or_default()
            .contains("127.0.0.1:9"),
        "{state:?}"
    );
    // The connect error itself, not the pool's timeout that hid it.
    assert!(
        state
            .problem
            .as_deref()
            .unwrap_or_default()
            .contains("refused"),
        "{state:?}"
    );
    Note::insert(r.primary(), &note(7)).await.unwrap();
    assert!(is(r.replica(), r.primary()));
    let t = r.token().await.unwrap();
    assert!(is(r.after(&t).await, r.primary()));
    let got = r.read(|p| Note::get(p, &7)).await.unwrap();
    assert_eq!(got.id, 7);
}

/// A private primary and a streaming replica of it with the notes table,
/// and a handle over both probing every 100 ms (500 ms timeout) with
/// `max_lag`.
async fn private_pair(max_lag: Duration) -> (PrivatePair, PoolConfig, Replicated) {
    let pair = PrivatePair::start().await;
    let mut admin = pair.primary_conn().await;
    sqlx::raw_sql(DDL).execute(&mut admin).await.unwrap();
    wait_for_replica(&pair.replica_url(), "ops_notes").await;
    let policy = ReplicaPolicy::default()
        .with_recheck(Duration::from_millis(100))
        .with_probe_timeout(Duration::from_millis(500))
        .with_max_lag(max_lag);
    let config = PoolConfig {
        store: "ops".into(),
        replicas: vec![pair.replica_url()],
        ..PoolConfig::new(pair.primary_url())
    };
    let r = Replicated::connect(&config, policy).await.unwrap();
    (pair, config, r)
}

/// A private primary and a real streaming replica of it: reads go to the
/// replica; the replica is stopped (fast shutdown) and no read fails; it is
/// started again and reads return to it.
#[tokio::test]
async fn stopping_a_replica_causes_no_read_error() {
    // A short max_lag: a restarted replica must not look behind while
    // the primary is idle (its receive position restarts below its replay
    // position).
    let (pair, _, r) = private_pair(Duration::from_millis(500)).await;
    for id in 0..50 {
        Note::insert(r.primary(), &note(id)).await.unwrap();
    }
    let t = r.token().await.unwrap();
    replica_serves(&r, &t).await;
    assert_eq!(r.read(|p| Note::count(p)).await.unwrap(), 50);

    pair.stop_replica();
    // Every read succeeds: on the replica's pool first (it fails there and
    // runs again on the primary), then on the primary once it is marked down.
    for id in 0..50 {
        let got = r.read(|p| Note::get(p, &id)).await.unwrap();
        assert_eq!(got.id, id);
        let t = r.token().await.unwrap();
        let got = r.read_after(&t, |p| Note::get(p, &id)).await.unwrap();
        assert_eq!(got.id, id);
    }
    assert!(!r.replica_states()[0].up, "{:?}", r.replica_states());
    assert!(is(r.replica(), r.primary()));

    pair.start_replica();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !on_replica(&r, r.replica()) {
        assert!(Instant::now() < deadline, "{:?}", r.replica_states());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(r.read(|p| Note::count(p)).await.unwrap(), 50);
    // Idle since the restart, longer than max_lag: still not behind.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    r.recheck().await;
    let state = &r.replica_states()[0];
    assert!(state.up && state.lag == Some(Duration::ZERO), "{state:?}");
    assert!(on_replica(&r, r.replica()));
}

/// Whether the replica on `port` streams from its primary.
fn streaming(port: u16) -> bool {
    psql(
        port,
        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
    )
    .as_deref()
        == Ok("1")
}

/// A replica cut off from its primary (its WAL receiver cannot connect)
/// stays in recovery and answers, with nothing left to replay: it used to
/// report 0 s of lag for ever, so `replica()` served ever staler reads and
/// health said it was fine. Now its lag grows with the primary's commits it
/// lacks (the time since its last replayed commit), it is skipped past
/// `max_lag`, and health shows the lag; reconnected, it is used again.
#[tokio::test]
async fn a_replica_cut_off_from_its_primary_falls_behind_and_is_skipped() {
    let (pair, config, r) = private_pair(Duration::from_secs(1)).await;
    Note::insert(r.primary(), &note(0)).await.unwrap();
    let t = r.token().await.unwrap();
    replica_serves(&r, &t).await;

    // Cut off: the receiver points at a port nothing listens on.
    let port = pair.replica_port;
    let conninfo = psql(port, "SHOW primary_conninfo").unwrap();
    psql(
        port,
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=9 user=postgres'",
    )
    .unwrap();
    psql(port, "SELECT pg_reload_conf()").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while streaming(port) {
        assert!(Instant::now() < deadline, "the receiver stops streaming");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The primary commits on; the replica cannot know.
    let mut id = 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_replica(&r, r.replica()) {
        assert!(Instant::now() < deadline, "{:?}", r.replica_states());
        Note::insert(r.primary(), &note(id)).await.unwrap();
        id += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = &r.replica_states()[0];
    assert!(
        state.up && state.lag.unwrap() > Duration::from_secs(1),
        "{state:?}"
    );
    assert_eq!(r.read(|p| Note::count(p)).await.unwrap(), id);
    // Health shows the lag the router saw.
    let checks = [strata_sdk::health::Check::postgres("ops", &config)];
    let report = strata_sdk::health::run(&checks, Duration::from_secs(2)).await;
    let replica = &report.stores[0].servers[1];
    assert!(replica.replay_lag_seconds.unwrap() > 1.0, "{replica:?}");

    // Reconnected: it catches up and serves reads again.
    let restore = format!(
        "ALTER SYSTEM SET primary_conninfo = '{}'",
        conninfo.replace('\'', "''")
    );
    psql(port, &restore).unwrap();
    psql(port, "SELECT pg_reload_conf()").unwrap();
    let t = r.token().await.unwrap();
    replica_serves(&r, &t).await;
    assert_eq!(r.read(|p| Note::count(p)).await.unwrap(), id);
}

#[tokio::test]
async fn a_token_is_not_held_back_by_wal_not_yet_flushed() {
    let db = database().await;
    let r = handle(&db, vec![replica_url(&db.name)], ReplicaPolicy::default()).await;
    Note::insert(r.primary(), &note(1)).await.unwrap();
    // An aborted transaction: its WAL is inserted now and flushed only by
    // the WAL writer, up to wal_writer_delay later. A replica cannot replay
    // past the primary's flush position, so a token beyond it would wait.
    let e = Note::insert(r.primary(), &note(1)).await.unwrap_err();
    assert!(matches!(e, strata_sdk::Error::Conflict { .. }), "{e:?}");
    let t = r.token().await.unwrap();
    let (flush,): (i64,) =
        sqlx::query_as("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::int8")
            .fetch_one(r.primary())
            .await
            .unwrap();
    assert!(
        t.0 .0 <= flush as u64,
        "token {} beyond flush {flush}",
        t.0 .0
    );
    // It still covers the committed write: the replica serves it.
    let got = r.read_after(&t, |p| Note::get(p, &1)).await.unwrap();
    assert_eq!(got.id, 1);
}

/// A replica URL that names another database of the standby (an easy
/// typo) serves other data: it is down, with why, in the router and in
/// `strata health`, and reads go to the primary.
#[tokio::test]
async fn a_replica_of_another_database_is_not_used_and_health_says_why() {
    let db = database().await;
    let wrong = replica_url("postgres");
    let r = handle(&db, vec![wrong.clone()], ReplicaPolicy::default()).await;
    let state = &r.replica_states()[0];
    assert!(!state.up, "{state:?}");
    let why = state.problem.as_deref().unwrap_or_default();
    assert!(why.contains("serves database `postgres`"), "{why}");
    Note::insert(r.primary(), &note(1)).await.unwrap();
    assert!(is(r.replica(), r.primary()));
    assert_eq!(r.read(|p| Note::count(p)).await.unwrap(), 1);

    let config = PoolConfig {
        replicas: vec![wrong],
        ..PoolConfig::new(db.url.clone())
    };
    let checks = [strata_sdk::health::Check::postgres("ops", &config)];
    let report = strata_sdk::health::run(&checks, Duration::from_secs(5)).await;
    let replica = &report.stores[0].servers[1];
    assert!(!replica.up, "{replica:?}");
    let error = replica.error.as_deref().unwrap_or_default();
    assert!(error.contains("serves database `postgres`"), "{error}");
    // The right database is up in both.
    let right = PoolConfig {
        replicas: vec![replica_url(&db.name)],
        ..PoolConfig::new(db.url.clone())
    };
    let checks = [strata_sdk::health::Check::postgres("ops", &right)];
    let report = strata_sdk::health::run(&checks, Duration::from_secs(5)).await;
    assert!(report.stores[0].servers[1].up, "{:?}", report.stores[0]);
}

#[tokio::test]
async fn the_generated_config_carries_replicas_and_pool_settings() {
    let _serial = REPLICA_LOCK.lock().await;
    let c = strata_tests::fixtures::ops_replicas::entities::ops_pool_config();
    assert_eq!(c.store, "ops");
    assert_eq!(c.replicas.len(), 2);
    assert!(c.replicas[0].starts_with("${OPS_REPLICA_URL:"));
    assert_eq!(
        (c.max, c.min, c.acquire_timeout_ms, c.idle_timeout_ms),
        (Some(3), Some(1), Some(2_000), Some(300_000))
    );
    assert_eq!(
        (c.max_lifetime_ms, c.statement_timeout_ms),
        (Some(1_800_000), Some(1_500))
    );
    assert_eq!(c.application_name.as_deref(), Some("strata-ops"));
    // `connect_ops_replicated` connects the primary and both replicas: the
    // real one answers, the one on port 9 is down and skipped.
    let policy = ReplicaPolicy::default().with_probe_timeout(Duration::from_millis(500));
    let r = strata_tests::fixtures::ops_replicas::entities::connect_ops_replicated(policy)
        .await
        .unwrap();
    let states = r.replica_states();
    assert_eq!(states.len(), 2);
    assert!(states[0].up, "{states:?}");
    assert!(!states[1].up, "{states:?}");
    // The session settings reach the primary and the replica alike.
    for (name, pool) in [("primary", r.primary()), ("replica", r.replica())] {
        let (timeout, app): (String, String) = sqlx::query_as(
            "SELECT current_setting('statement_timeout'), current_setting('application_name')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            (timeout.as_str(), app.as_str()),
            ("1500ms", "strata-ops"),
            "{name}"
        );
    }
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'strata-ops'",
    )
    .fetch_one(r.primary())
    .await
    .unwrap();
    assert!(
        (1..=3).contains(&n),
        "the server sees the pool's sessions by name ({n})"
    );
}
