//! Shared by the change-event tests: an entity with `events:` and a secret
//! (hand-written, as the derive sees it), its schema for the compiler, a
//! database of the test's own with its table, the `<source>_cache`
//! pipeline, and a key prefix of the test's own on a single Redis or the
//! Cluster, whose keys are deleted afterwards.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::events::{Change, Client};
use strata_sdk::sync::{self, Pipeline, RunOptions};
use strata_tests::support::PgDatabase;
use tokio::sync::watch;

/// The secret every test writes: it must never reach Redis.
pub const SECRET: &str = "S3CR3T-never-published";

/// A ledger row; its changes are published over 4 partitions.
#[derive(
    Debug,
    Clone,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    strata_derive::Entity,
)]
#[strata(
    table = "ledgers",
    key(id),
    events(partitions = 4, max_len = 100000, pubsub = true)
)]
pub struct Ledger {
    pub id: i64,
    pub owner: String,
    pub balance: i64,
    pub note: Option<String>,
    pub pin: strata_sdk::Secret,
    pub tags: serde_json::Value,
}

/// The same entity in the schema language.
pub fn schema(prefix: &str, redis_url: &str) -> String {
    format!(
        r#"
version: 1
stores:
  main: {{ kind: postgres, url: "${{DATABASE_URL}}" }}
  cache: {{ kind: redis, url: "{redis_url}", key_prefix: {prefix} }}
entities:
  Ledger:
    table: ledgers
    store: main
    key: id
    events: {{ store: cache, partitions: 4, max_len: 100000, pubsub: true }}
    fields:
      id: i64
      owner: text
      balance: i64
      note: text?
      pin: secret
      tags: json
"#
    )
}

pub const DDL: &str = r#"CREATE TABLE ledgers (id bigint PRIMARY KEY, owner text NOT NULL,
    balance bigint NOT NULL, note text, pin text NOT NULL, tags jsonb NOT NULL);"#;

pub fn single_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The Cluster's seed nodes, comma-separated (as the cache takes them).
pub fn cluster_url() -> String {
    std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        "redis://127.0.0.1:7100,redis://127.0.0.1:7101,redis://127.0.0.1:7102".into()
    })
}

/// Every node of a URL (one, or the Cluster's masters).
pub fn nodes(url: &str) -> Vec<String> {
    url.split(',').map(|s| s.trim().to_string()).collect()
}

/// Runs one keyed command on a single node or the Cluster (routed by key).
pub async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> T {
    let nodes = nodes(url);
    if nodes.len() > 1 {
        let client = redis::cluster::ClusterClient::new(nodes).unwrap();
        cmd.query_async(&mut client.get_async_connection().await.unwrap())
            .await
            .unwrap()
    } else {
        let client = redis::Client::open(url).unwrap();
        cmd.query_async(&mut client.get_multiplexed_async_connection().await.unwrap())
            .await
            .unwrap()
    }
}

pub fn prefix() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

/// Every key under `prefix` on every node, with its type.
pub async fn keys(url: &str, prefix: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for node in nodes(url) {
        let mut c = redis::Client::open(node.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let ks: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut c)
            .await
            .unwrap();
        for k in ks {
            let t: String = redis::cmd("TYPE")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap();
            out.push((node.clone(), k, t));
        }
    }
    out
}

/// Every field value of every stream entry under `prefix`, as text.
pub async fn stream_texts(url: &str, prefix: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (node, key, ty) in keys(url, prefix).await {
        if key.ends_with(":partitions") || key.ends_with(":epoch") {
            // The recorded partition count, the streams' epoch: strings.
            assert_eq!(ty, "string", "{key}");
            continue;
        }
        assert_eq!(
            ty, "stream",
            "{key}: only streams (and the partition count and epoch) live under the events prefix"
        );
        let mut c = redis::Client::open(node.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut c)
            .await
            .unwrap();
        for id in r.ids {
            let vals = id
                .map
                .values()
                .map(|v| redis::from_redis_value_ref::<String>(v).unwrap())
                .collect();
            out.push((key.clone(), id.id.clone(), vals));
        }
    }
    out
}

/// Deletes the prefix's keys on drop.
pub struct Cleanup {
    pub url: String,
    pub prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for node in nodes(&self.url) {
            if let Ok(mut c) = redis::Client::open(node.as_str()).and_then(|c| c.get_connection()) {
                let ks: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}:*", self.prefix))
                    .query(&mut c)
                    .unwrap_or_default();
                for k in ks {
                    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&k).query(&mut c);
                }
            }
        }
    }
}

/// The engine's task in this process.
pub type Runner = tokio::task::JoinHandle<Result<(), sync::SyncError>>;

/// A database with `ledgers`, the pipeline to Redis `url` under a prefix.
pub struct Fixture {
    pub pg: PgDatabase,
    pub pool: sqlx::PgPool,
    pub pipeline: Pipeline,
    pub url: String,
    pub prefix: String,
    pub schema: String,
    pub _cleanup: Cleanup,
}

impl Fixture {
    pub async fn new(url: &str) -> Fixture {
        let prefix = prefix();
        let schema = schema(&prefix, url);
        let model = strata_codegen::compile_str("schema.yaml", &schema).expect("compiles");
        let pg = PgDatabase::new().await;
        let mut c = pg.connect().await;
        sqlx::raw_sql(DDL).execute(&mut c).await.unwrap();
        let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
        let (src, redis) = (pg.url.clone(), url.to_string());
        let urls = move |s: &str| -> Result<String, String> {
            Ok(if s == "main" {
                src.clone()
            } else {
                redis.clone()
            })
        };
        let mut ps = pipelines(&model, &urls, &PipelineOptions::default()).expect("pipelines");
        assert_eq!(ps.len(), 1, "one pipeline: main -> cache");
        Fixture {
            pg,
            pool,
            pipeline: ps.remove(0),
            url: url.to_string(),
            prefix: prefix.clone(),
            schema,
            _cleanup: Cleanup {
                url: url.to_string(),
                prefix,
            },
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url, &self.prefix)
            .await
            .expect("events client")
    }

    /// Runs the engine in this process until the sender says stop.
    pub fn start(&self) -> (watch::Sender<bool>, Runner) {
        self.start_with(RunOptions::default())
    }

    /// [`Fixture::start`] with settings of the caller's.
    pub fn start_with(&self, opts: RunOptions) -> (watch::Sender<bool>, Runner) {
        let (tx, rx) = watch::channel(false);
        let p = self.pipeline.clone();
        let opts = opts.with_progress(false);
        (
            tx,
            tokio::spawn(async move { sync::run(&p, opts, rx).await }),
        )
    }

    /// Waits for the first run's snapshot (no events come from it).
    pub async fn snapshot_done(&self) {
        let mut c = self.pg.connect().await;
        let start = Instant::now();
        loop {
            let done: Option<bool> = sqlx::query_scalar(
                "SELECT snapshot_done FROM strata_sync.pipelines WHERE name = $1",
            )
            .bind(&self.pipeline.name)
            .fetch_optional(&mut c)
            .await
            .ok()
            .flatten();
            if done == Some(true) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no snapshot");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Drops the slot and publication (retried while the runner lets go).
    pub async fn drop_pipeline(&self) {
        for _ in 0..100 {
            if sync::drop_pipeline(&self.pipeline).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the pipeline could not be dropped");
    }
}

/// Reads `n` changes (or fails after `secs`).
pub async fn take<T: serde::de::DeserializeOwned>(
    s: &mut (impl futures_util::Stream<Item = strata_sdk::Result<Change<T>>> + Unpin),
    n: usize,
    secs: u64,
) -> Vec<Change<T>> {
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(c)) => out.push(c.expect("a change")),
            Ok(None) => panic!("the subscription ended after {} changes", out.len()),
            Err(_) => panic!("{} of {n} changes after {secs} s", out.len()),
        }
    }
    out
}

/// Nothing more arrives within `ms`.
pub async fn quiet<T>(
    s: &mut (impl futures_util::Stream<Item = strata_sdk::Result<Change<T>>> + Unpin),
    ms: u64,
) {
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(ms), s.next()).await {
        panic!(
            "an unexpected change: {:?}",
            extra.map(|c| (c.op, c.key, c.position)).ok()
        );
    }
}
