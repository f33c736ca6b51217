//! Every column type through change events into the entity's own Rust
//! types: a composite key (uuid, date), bytes, a decimal, a float, a
//! small integer, a bool, a text array, a nullable timestamp, json, and a
//! field named like a Rust keyword; NaN and ±infinity floats (which JSON
//! has no number for: they travel as `strata_sdk::float` writes them,
//! instead of stopping the pipeline). After inserts, updates and a delete
//! written in plain SQL, each key's last change equals what the
//! repository reads from PostgreSQL.

mod events_support;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use events_support::{single_url, take, Cleanup};
use rust_decimal::Decimal;
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::events::{Op, Position};
use strata_sdk::sync::{self, RunOptions};
use strata_tests::support::PgDatabase;

#[derive(
    Debug,
    Clone,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    strata_derive::Entity,
)]
#[strata(table = "readings", key(sensor, day), events(partitions = 3))]
pub struct Reading {
    pub sensor: uuid::Uuid,
    #[strata(ty = "date")]
    pub day: NaiveDate,
    #[strata(ty = "bytes")]
    pub raw: Vec<u8>,
    #[strata(ty = "decimal(20,8)")]
    pub amount: Decimal,
    // NaN and ±infinity travel as "NaN", "Infinity", "-Infinity".
    #[serde(with = "strata_sdk::float")]
    pub ratio: f64,
    pub small: i16,
    pub ok: bool,
    #[strata(ty = "text[]")]
    pub labels: Vec<String>,
    pub seen_at: Option<DateTime<Utc>>,
    pub doc: serde_json::Value,
    pub r#type: String,
}

const DDL: &str = r#"CREATE TABLE readings (sensor uuid, day date, raw bytea NOT NULL,
    amount numeric(20,8) NOT NULL, ratio double precision NOT NULL, small smallint NOT NULL,
    ok boolean NOT NULL, labels text[] NOT NULL, seen_at timestamptz, doc jsonb NOT NULL,
    "type" text NOT NULL, PRIMARY KEY (sensor, day));"#;

fn schema(prefix: &str) -> String {
    format!(
        r#"
version: 1
stores:
  main: {{ kind: postgres, url: "${{DATABASE_URL}}" }}
  cache: {{ kind: redis, url: "{}", key_prefix: {prefix} }}
entities:
  Reading:
    table: readings
    store: main
    key: [sensor, day]
    events: {{ store: cache, partitions: 3 }}
    fields:
      sensor: uuid
      day: date
      raw: bytes
      amount: decimal(20,8)
      ratio: f64
      small: i16
      ok: bool
      labels: "text[]"
      seen_at: timestamptz?
      doc: json
      type: text
"#,
        single_url()
    )
}

#[tokio::test]
async fn every_type_arrives_as_the_entity_reads_it() {
    let prefix = events_support::prefix();
    let _cleanup = Cleanup {
        url: single_url(),
        prefix: prefix.clone(),
    };
    let model = strata_codegen::compile_str("schema.yaml", &schema(&prefix)).expect("compiles");
    let pg = PgDatabase::new().await;
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    sqlx::raw_sql(DDL).execute(&pool).await.unwrap();
    let src = pg.url.clone();
    let urls = move |s: &str| -> Result<String, String> {
        Ok(if s == "main" {
            src.clone()
        } else {
            single_url()
        })
    };
    let p = pipelines(&model, &urls, &PipelineOptions::default())
        .unwrap()
        .remove(0);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = {
        let p = p.clone();
        tokio::spawn(
            async move { sync::run(&p, RunOptions::default().with_progress(false), rx).await },
        )
    };
    let client = strata_sdk::events::Client::connect(&single_url(), &prefix)
        .await
        .unwrap();
    let mut sub = Box::pin(Reading::subscribe(&client, Position::START));
    // Give the slot time to exist before writing (no snapshot events).
    let mut c = pg.connect().await;
    for _ in 0..200 {
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
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sqlx::raw_sql(
        r#"INSERT INTO readings VALUES
         ('00000000-0000-0000-0000-000000000001', '2024-02-29', '\x00ff10', 1.50000000, 0.1, -3, true,
          '{"a","b c","é"}', '2024-02-29 23:59:59.123456+00', '{"n": 1.5, "s": [null, "x"]}', 'kind-a'),
         ('00000000-0000-0000-0000-000000000002', '1999-12-31', '\x', -12345678.12345678, -1e300, 32767, false,
          '{}', NULL, '[]', 'kind-b'),
         ('00000000-0000-0000-0000-000000000003', '2000-01-01', '\x01', 0, 2.5, 0, true, '{"z"}', NULL, 'null', 'c'),
         ('00000000-0000-0000-0000-000000000004', '2001-01-01', '\x', 0, 'NaN', 0, false, '{}', NULL, '1', 'nan'),
         ('00000000-0000-0000-0000-000000000005', '2001-01-01', '\x', 0, 'Infinity', 0, false, '{}', NULL, '1', 'inf'),
         ('00000000-0000-0000-0000-000000000006', '2001-01-01', '\x', 0, '-Infinity', 0, false, '{}', NULL, '1', '-inf');
         UPDATE readings SET amount = amount * 2, labels = labels || '{"d"}', seen_at = now() WHERE ok;
         DELETE FROM readings WHERE day = '2000-01-01';"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let got = take(&mut sub, 6 + 2 + 1, 20).await;
    let mut last: BTreeMap<String, &strata_sdk::events::Change<Reading>> = BTreeMap::new();
    for ch in &got {
        last.insert(ch.key.to_string(), ch);
    }
    assert_eq!(last.len(), 6);
    for ch in last.values() {
        let key = (
            ch.key["sensor"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
            ch.key["day"]
                .as_str()
                .unwrap()
                .parse::<NaiveDate>()
                .unwrap(),
        );
        match ch.op {
            Op::Delete => assert!(Reading::find(&pool, &key).await.unwrap().is_none()),
            _ => {
                let mut row = Reading::get(&pool, &key).await.unwrap();
                let mut got = ch.row.clone().expect("a row");
                if row.ratio.is_nan() {
                    // NaN equals nothing: it arrived as NaN.
                    assert!(got.ratio.is_nan(), "{got:?}");
                    (row.ratio, got.ratio) = (0.0, 0.0);
                }
                assert_eq!(got, row, "the event's row is the stored row");
            }
        }
    }

    // A TRUNCATE is one `truncate` change (in each of the 3 partitions,
    // yielded once), after every earlier change, before the next.
    sqlx::raw_sql(
        "TRUNCATE readings; INSERT INTO readings VALUES ('00000000-0000-0000-0000-000000000009', '2002-02-02', '\\x', 0, 1, 0, true, '{}', NULL, '1', 'after')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let after = take(&mut sub, 2, 20).await;
    assert_eq!(after[0].op, Op::Truncate, "{:?}", after[0]);
    assert_eq!(after[0].key, serde_json::json!({}));
    assert!(after[0].row.is_none());
    assert!(after[0].position > got.last().unwrap().position);
    assert_eq!(after[1].op, Op::Insert, "once, not once per partition");
    events_support::quiet(&mut sub, 500).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    for _ in 0..50 {
        if sync::drop_pipeline(&p).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
