//! Invalidation from every writer: a row changed behind the SDK's back
//! (plain SQL, as another service, a migration or `psql` would) reaches
//! the Redis cache through change capture's Redis target, so a cached
//! `get` never serves the older row for its TTL. Also: the keys change
//! capture renders from the WAL are the keys the derive renders from the
//! typed key, and the fingerprint `strata sync` computes from the schema is
//! the one the generated crate declares.

mod cache_support;

use std::time::{Duration, Instant};

use cache_support::{raw, redis_url, Account, Cleanup, DDL};
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::cache::{key_from_parts, Cache, CacheConfig, Store};
use strata_sdk::postgres::Table;
use strata_sdk::sync::{self, Pipeline, RunOptions, TargetSpec};
use strata_tests::support::PgDatabase;

/// The schema of cache_support's hand-written `Account`, cached in `cache`.
fn schema(prefix: &str) -> String {
    format!(
        r#"
version: 1
stores:
  main: {{ kind: postgres, url: "${{DATABASE_URL}}" }}
  cache: {{ kind: redis, url: "${{REDIS_URL}}", key_prefix: {prefix} }}
entities:
  Account:
    table: accounts
    store: main
    key: id
    cache: {{ store: cache, ttl: 30s }}
    fields:
      id: {{ type: i64 }}
      owner: {{ type: text }}
      balance: {{ type: i64 }}
      note: {{ type: text, nullable: true }}
      tags: {{ type: json }}
"#
    )
}

fn cache_pipeline(model: &strata_codegen::Model, pg: &PgDatabase) -> Pipeline {
    let url = pg.url.clone();
    let urls = move |store: &str| -> Result<String, String> {
        Ok(match store {
            "main" => url.clone(),
            _ => redis_url(),
        })
    };
    let mut ps = pipelines(model, &urls, &PipelineOptions::default()).expect("pipelines");
    assert_eq!(ps.len(), 1, "one pipeline: main -> cache");
    ps.remove(0)
}

async fn balance(store: &Store, id: i64) -> Option<i64> {
    Account::find(store, &id)
        .await
        .expect("cached read")
        .map(|a| a.balance)
}

/// Polls until the cached read gives `want`; the time it took.
async fn until(store: &Store, id: i64, want: Option<i64>) -> Duration {
    let start = Instant::now();
    while balance(store, id).await != want {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the cache still serves the old row of {id} after 10 s (want {want:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn writes_behind_the_sdk_invalidate_the_cache_through_change_capture() {
    let prefix = format!("strata_test_{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup {
        url: redis_url(),
        prefix: prefix.clone(),
    };
    let model = strata_codegen::compile_str("schema.yaml", &schema(&prefix)).expect("compiles");
    let pg = PgDatabase::new().await;
    let mut c = pg.connect().await;
    sqlx::raw_sql(DDL).execute(&mut c).await.unwrap();
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let cache = Cache::connect(CacheConfig::new(redis_url(), &prefix))
        .await
        .unwrap();
    let store = Store::new(pool, cache.clone());

    // The schema's fingerprint is the hand-written struct's.
    let p = cache_pipeline(&model, &pg);
    let TargetSpec::Redis { entities, .. } = &p.targets[0] else {
        panic!("a redis target: {:?}", p.targets)
    };
    let fp = Account::CACHE.expect("cached").fingerprint;
    assert_eq!(entities[0].fingerprint, fp);
    // And the key text of the WAL path is the typed path's.
    assert_eq!(
        cache.key_of::<Account>(&7).unwrap().unwrap(),
        key_from_parts(&prefix, "Account", &[Some(7i64.to_be_bytes().to_vec())])
    );

    sqlx::query("INSERT INTO accounts VALUES (1, 'o', 10, NULL, '{}'), (2, 'p', 5, NULL, '[]')")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let p = p.clone();
        let opts = RunOptions::default().with_progress(false);
        (
            tx,
            tokio::spawn(async move { sync::run(&p, opts, rx).await }),
        )
    };

    // The snapshot is done (it tombstones each existing key once).
    let start = Instant::now();
    loop {
        let done: Option<bool> =
            sqlx::query_scalar("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
                .bind(&p.name)
                .fetch_optional(&mut c)
                .await
                .ok()
                .flatten();
        if done == Some(true) {
            break;
        }
        if run.is_finished() {
            panic!("the sync stopped: {:?}", run.await);
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no snapshot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Fill the cache, then change the rows behind the SDK's back.
    assert_eq!(until(&store, 1, Some(10)).await.as_secs(), 0);
    assert_eq!(balance(&store, 2).await, Some(5));
    let key = cache.key_of::<Account>(&1).unwrap().unwrap();
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw(&redis_url()).await)
        .await
        .unwrap();
    assert!(stored.is_some(), "the read filled {key}");

    sqlx::query("UPDATE accounts SET balance = 20 WHERE id = 1")
        .execute(&mut c)
        .await
        .unwrap();
    if run.is_finished() {
        panic!("the sync stopped: {:?}", run.await);
    }
    let took = until(&store, 1, Some(20)).await;
    // Far under the 30 s TTL: invalidated, not expired.
    assert!(took < Duration::from_secs(10), "{took:?}");

    sqlx::query("DELETE FROM accounts WHERE id = 2")
        .execute(&mut c)
        .await
        .unwrap();
    until(&store, 2, None).await;

    // A transaction that rolls back changes nothing, and invalidates nothing
    // that matters: the row reads as before.
    let mut tx = sqlx::Connection::begin(&mut c).await.unwrap();
    sqlx::query("UPDATE accounts SET balance = 99 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(balance(&store, 1).await, Some(20));

    // An update that leaves a large (TOASTed) value alone: the server does
    // not send it, and the cache's invalidation needs only the key.
    sqlx::query(
        "INSERT INTO accounts VALUES (4, 'big', 1, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 600) g), '{}')",
    )
    .execute(&mut c)
    .await
    .unwrap();
    until(&store, 4, Some(1)).await;
    sqlx::query("UPDATE accounts SET balance = 2 WHERE id = 4")
        .execute(&mut c)
        .await
        .unwrap();
    until(&store, 4, Some(2)).await;
    if run.is_finished() {
        panic!(
            "the sync stopped at an unchanged TOASTed value: {:?}",
            run.await
        );
    }

    // A TRUNCATE has no per-row changes: every cached key of the entity
    // is tombstoned, and the sync carries on.
    sqlx::query("INSERT INTO accounts VALUES (3, 'q', 7, NULL, '{}')")
        .execute(&mut c)
        .await
        .unwrap();
    until(&store, 3, Some(7)).await;
    assert_eq!(balance(&store, 1).await, Some(20));
    sqlx::query("TRUNCATE accounts")
        .execute(&mut c)
        .await
        .unwrap();
    until(&store, 1, None).await;
    until(&store, 3, None).await;
    sqlx::query("INSERT INTO accounts VALUES (1, 'o', 30, NULL, '{}')")
        .execute(&mut c)
        .await
        .unwrap();
    until(&store, 1, Some(30)).await;
    if run.is_finished() {
        panic!("the sync stopped after a TRUNCATE: {:?}", run.await);
    }

    stop.send(true).unwrap();
    run.await.unwrap().expect("the sync ran cleanly");
    for _ in 0..50 {
        if sync::drop_pipeline(&p).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The generated crate's cached entities: the fingerprint `strata sync`
/// computes from the schema is the one the derive declared.
#[test]
fn the_schema_and_the_generated_crate_agree_on_fingerprints() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let sources = strata_codegen::load(&root).expect("schema loads");
    let model = strata_codegen::compile(&sources).expect("schema compiles");
    let urls = |s: &str| -> Result<String, String> { Ok(format!("postgres://x/{s}")) };
    let ps = pipelines(&model, &urls, &PipelineOptions::default()).expect("pipelines");
    let mut seen = std::collections::BTreeMap::new();
    for p in &ps {
        for t in &p.targets {
            if let TargetSpec::Redis { entities, .. } = t {
                for e in entities {
                    seen.insert(e.entity.clone(), e.fingerprint.clone());
                }
            }
        }
    }
    let declared = [
        ("Decision", <deepalpha_db::Decision as Table>::CACHE),
        ("Order", <deepalpha_db::Order as Table>::CACHE),
        ("Position", <deepalpha_db::Position as Table>::CACHE),
    ];
    assert!(!seen.is_empty(), "the trading schema caches entities");
    for (name, def) in declared {
        if let Some(fp) = seen.get(name) {
            assert_eq!(fp, def.expect("cached").fingerprint, "{name}");
        }
    }
}

/// A cache-only pipeline takes only keys: a value no copy could hold in
/// another column (a NaN decimal, an `infinity` timestamp, written by
/// psql) is not decoded, so it cannot stop the invalidations of every
/// later change (a newcomer's cache served stale rows after one NaN).
#[tokio::test]
async fn a_value_no_copy_could_hold_does_not_stop_a_cache_only_pipeline() {
    let prefix = format!("strata_test_{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup {
        url: redis_url(),
        prefix: prefix.clone(),
    };
    let yaml = format!(
        r#"
version: 1
stores:
  main: {{ kind: postgres, url: "${{DATABASE_URL}}" }}
  cache: {{ kind: redis, url: "${{REDIS_URL}}", key_prefix: {prefix} }}
entities:
  Fee:
    table: fees
    store: main
    key: id
    cache: {{ store: cache, ttl: 30s }}
    fields:
      id: {{ type: i64 }}
      amount: decimal(8,2)
      due: {{ type: timestamptz, nullable: true }}
"#
    );
    let model = strata_codegen::compile_str("schema.yaml", &yaml).expect("compiles");
    let pg = PgDatabase::new().await;
    let mut c = pg.connect().await;
    sqlx::raw_sql(
        "CREATE TABLE fees (id bigint PRIMARY KEY, amount numeric(8,2) NOT NULL, due timestamptz);
         INSERT INTO fees VALUES (1, 1, NULL), (2, 2, NULL), (3, 'NaN', 'infinity')",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let p = cache_pipeline(&model, &pg);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = {
        let p = p.clone();
        tokio::spawn(
            async move { sync::run(&p, RunOptions::default().with_progress(false), rx).await },
        )
    };
    // Row 3 is read by the snapshot; the updates come through the stream.
    let start = Instant::now();
    loop {
        let done: Option<bool> =
            sqlx::query_scalar("SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1")
                .bind(&p.name)
                .fetch_optional(&mut c)
                .await
                .ok()
                .flatten();
        if done == Some(true) {
            break;
        }
        assert!(
            !run.is_finished(),
            "the pipeline stopped: {:?}",
            run.await.unwrap()
        );
        assert!(start.elapsed() < Duration::from_secs(30), "no snapshot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::raw_sql(
        "UPDATE fees SET amount = 'NaN' WHERE id = 1; UPDATE fees SET due = 'infinity' WHERE id = 1;
         UPDATE fees SET amount = 3 WHERE id = 2",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let target: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let slot = p.slot(&pg.name);
    let start = Instant::now();
    loop {
        assert!(
            !run.is_finished(),
            "the pipeline stopped: {:?}",
            run.await.unwrap()
        );
        let done: Option<bool> = sqlx::query_scalar(
            "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&slot)
        .bind(&target)
        .fetch_optional(&mut c)
        .await
        .unwrap()
        .flatten();
        if done == Some(true) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "acknowledged past the NaN within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    run.await.unwrap().expect("the run stopped cleanly");
    for _ in 0..50 {
        if sync::drop_pipeline(&p).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
