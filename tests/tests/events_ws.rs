//! The `live_orders` example, tested as a browser would use it: change
//! capture runs in-process on the trading schema's `<main>_cache`
//! pipeline, the example's server runs on a free port, and real WebSocket
//! clients (tokio-tungstenite) see every order change (written through the
//! SDK and through plain SQL) once, in order per key, deletes included; a
//! client that reconnects with `?from=` resumes. (`Order` has no secret
//! field; secrets in events are tested in `events_live.rs`.)

mod events_support;
#[path = "../../generated/examples/live_orders.rs"]
#[allow(dead_code)]
mod live_orders;

use std::collections::BTreeMap;
use std::time::Duration;

use deepalpha_db::*;
use events_support::{single_url, Cleanup};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::migrate::Migrator;
use strata_sdk::sync::{self, RunOptions, TargetSpec};
use strata_tests::support::PgDatabase;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, from: Option<&str>) -> Ws {
    let url = match from {
        Some(p) => format!("ws://{addr}/orders?from={p}"),
        None => format!("ws://{addr}/orders"),
    };
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// The next `n` JSON messages.
async fn read(ws: &mut Ws, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} messages", out.len()))
            .expect("open")
            .expect("a message");
        if let Message::Text(t) = m {
            out.push(serde_json::from_str(&t).expect("json"));
        }
    }
    out
}

fn order(i: u32) -> NewOrder {
    NewOrder {
        id: None,
        client_order_id: format!("ws-{i}"),
        exchange_order_id: None,
        decision_id: None,
        strategy_id: None,
        symbol: "BTCUSDT".into(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        time_in_force: None,
        status: None,
        quantity: Decimal::new(25, 2),
        price: Some(Decimal::new(430005, 1)),
        stop_price: None,
        filled_quantity: None,
        average_fill_price: None,
        fee: None,
        fee_currency: None,
        notes: Some(format!("note {i}")),
        submitted_at: None,
        filled_at: None,
    }
}

#[tokio::test]
async fn browsers_see_every_order_change_in_order_and_resume() {
    let pg = PgDatabase::new().await;
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    Migrator::new(deepalpha_db::migrations())
        .apply_pool(&pool)
        .await
        .unwrap();
    let prefix = events_support::prefix();
    let _cleanup = Cleanup {
        url: single_url(),
        prefix: prefix.clone(),
    };
    // The trading schema's Redis pipeline, on this database and prefix.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let model = strata_codegen::compile(&strata_codegen::load(&root).unwrap()).unwrap();
    let (src, redis) = (pg.url.clone(), single_url());
    let urls = move |s: &str| -> Result<String, String> {
        Ok(if s == "main" {
            src.clone()
        } else {
            redis.clone()
        })
    };
    let opts = PipelineOptions::default().with_targets(vec!["cache".into()]);
    let mut p = pipelines(&model, &urls, &opts).unwrap().remove(0);
    let TargetSpec::Redis { key_prefix, .. } = &mut p.targets[0] else {
        panic!("a redis pipeline")
    };
    *key_prefix = prefix.clone();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = {
        let p = p.clone();
        tokio::spawn(
            async move { sync::run(&p, RunOptions::default().with_progress(false), rx).await },
        )
    };
    let mut c = pg.connect().await;
    for _ in 0..300 {
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The example's server on a free port.
    let client = strata_sdk::events::Client::connect(&single_url(), &prefix)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, live_orders::router(client)).await });
    let mut a = connect(&addr, None).await;
    let mut b = connect(&addr, None).await;

    // Writes: inserts and a patch through the SDK, updates and a delete in SQL.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(Order::insert(&pool, &order(i)).await.unwrap().id);
    }
    let first = Order::get(&pool, &ids[0]).await.unwrap();
    Order::patch(
        &pool,
        &ids[0],
        &OrderPatch {
            status: Some(OrderStatus::Filled),
            expected_version: Some(first.version),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE live_order SET notes = 'sql ' || notes WHERE client_order_id IN ('ws-1', 'ws-2')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM live_order WHERE client_order_id = 'ws-3'")
        .execute(&pool)
        .await
        .unwrap();
    let total = 5 + 1 + 2 + 1;

    let got = read(&mut a, total).await;
    assert_eq!(
        read(&mut b, total).await,
        got,
        "every client sees the same changes"
    );
    let mut per_key: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    for m in &got {
        let id = m["key"]["id"].as_str().unwrap().to_string();
        let notes = m["row"]["notes"].as_str().map(str::to_string);
        per_key
            .entry(id)
            .or_default()
            .push((m["op"].as_str().unwrap().into(), notes));
        assert!(m["position"].as_str().is_some() && m["committed_at"].is_string());
    }
    let s = |op: &str, n: Option<&str>| (op.to_string(), n.map(str::to_string));
    let k = |i: usize| ids[i].to_string();
    assert_eq!(
        per_key[&k(0)],
        [s("insert", Some("note 0")), s("update", Some("note 0"))]
    );
    assert_eq!(
        per_key[&k(1)],
        [s("insert", Some("note 1")), s("update", Some("sql note 1"))]
    );
    assert_eq!(
        per_key[&k(3)],
        [s("insert", Some("note 3")), s("delete", None)]
    );
    assert_eq!(per_key[&k(4)], [s("insert", Some("note 4"))]);
    assert_eq!(got[5]["row"]["status"], "FILLED");

    // A reconnect with `?from=` gets what came after, nothing before.
    let pos = got[4]["position"].as_str().unwrap();
    let mut again = connect(&addr, Some(pos)).await;
    assert_eq!(read(&mut again, total - 5).await, got[5..].to_vec());
    // A new client without `from` starts now: its first message is the
    // next change, none of the nine before.
    let mut late = connect(&addr, None).await;
    sqlx::query("UPDATE live_order SET notes = 'late' WHERE client_order_id = 'ws-4'")
        .execute(&pool)
        .await
        .unwrap();
    let m = read(&mut late, 1).await;
    assert_eq!(
        (m[0]["op"].as_str(), m[0]["row"]["notes"].as_str()),
        (Some("update"), Some("late"))
    );
    // A bad position is refused before the upgrade.
    let bad = tokio_tungstenite::connect_async(format!("ws://{addr}/orders?from=nope")).await;
    assert!(bad.is_err());

    stop.send(true).unwrap();
    run.await.unwrap().expect("the sync ran cleanly");
    for _ in 0..50 {
        if sync::drop_pipeline(&p).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
