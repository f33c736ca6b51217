//! A tour of the generated SDK against the local PostgreSQL:
//!
//! ```sh
//! scripts/services.sh            # PostgreSQL on 127.0.0.1:5432
//! cargo run -p deepalpha-db --example trading
//! ```
//!
//! It says which server and database it uses: it (re)creates the database
//! `deepalpha_example` (or `EXAMPLE_DATABASE`) on the server of
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`), applies the
//! migrations embedded at build time (`generated/migrations`), writes a user,
//! a strategy, decisions, orders and a position, reads orders through the
//! Redis cache (`REDIS_URL`, default `redis://127.0.0.1:6379`; without
//! Redis the reads fall back to PostgreSQL), bulk-upserts 100,000 candles, reads them back through the schema's
//! finders and keyset pagination, and leaves the database for you to look at.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use deepalpha_db::*;
use rust_decimal::Decimal;
use sqlx::{Connection, Executor, PgConnection};
use strata_sdk::postgres::PageRequest;
use strata_sdk::{Error, Secret};

const DB: &str = "deepalpha_example";

fn dec(s: &str) -> Decimal {
    s.parse().expect("a decimal literal")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let db = std::env::var("EXAMPLE_DATABASE").unwrap_or_else(|_| DB.to_string());
    let server = format!(
        "{}:{} as {}",
        options.get_host(),
        options.get_port(),
        options.get_username()
    );
    println!(
        "server {server} (from DATABASE_URL); the tour works in its own database `{db}` \
         (EXAMPLE_DATABASE to choose another), which it drops and creates again"
    );

    // A fresh database, migrated with the migrations embedded at build time
    // (`generated/migrations`, through `Build::with_migrations`).
    let mut admin = PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL at {server}: {e}"))?;
    let quoted = format!("\"{}\"", db.replace('"', "\"\""));
    admin
        .execute(format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)").as_str())
        .await?;
    admin
        .execute(format!("CREATE DATABASE {quoted}").as_str())
        .await?;
    let options = options.database(&db);
    let pool = main_pool_config()
        .options()
        .connect_with(options.clone())
        .await?;
    let report = strata_sdk::migrate::Migrator::new(deepalpha_db::migrations())
        .apply_pool(&pool)
        .await?;
    for (version, name) in &report.applied {
        println!("applied migration {version} {name}");
    }
    println!("created database {db} with the schema of store `main`");

    // A user and a strategy.
    let user = User::insert(
        &pool,
        &NewUser {
            id: None,
            username: "ada".into(),
            email: "ada@example.com".into(),
            hashed_password: Secret::new("$argon2id$v=19$..."),
            api_key: None,
            api_secret: None,
            role: Some(UserRole::Admin),
            is_active: None,
            last_login_at: None,
        },
    )
    .await?;
    println!(
        "user {} ({:?}), password prints as {:?}",
        user.username, user.role, user.hashed_password
    );
    let strategy = Strategy::insert(
        &pool,
        &NewStrategy {
            id: None,
            name: "mean-reversion".into(),
            description: Some("buys dips".into()),
            status: Some(StrategyStatus::Active),
            parameters: Some(serde_json::json!({ "window": 20, "z": 2.0 })),
            symbols: Some(vec!["BTCUSDT".into(), "ETHUSDT".into()]),
            max_position_size: dec("10"),
            risk_limit: Some(dec("0.02")),
            owner_id: user.id,
        },
    )
    .await?;

    // Decisions, and an order and a position for each BUY, in one transaction.
    let mut tx = pool.begin().await?;
    let mut orders = Vec::new();
    for (i, (symbol, kind)) in [
        ("BTCUSDT", DecisionType::Buy),
        ("ETHUSDT", DecisionType::Buy),
        ("BTCUSDT", DecisionType::Hold),
    ]
    .into_iter()
    .enumerate()
    {
        let decision = Decision::insert(
            &mut *tx,
            &NewDecision {
                id: None,
                symbol: symbol.into(),
                timeframe: "1h".into(),
                decision_type: kind,
                status: None,
                confidence: Some(0.6 + i as f64 / 10.0),
                price: Some(dec("43000.5")),
                quantity: Some(dec("0.25")),
                reasoning: Some(serde_json::json!({ "signal": "z-score", "z": -2.1 })),
                summary: Some(format!("{kind} {symbol}")),
                strategy_id: Some(strategy.id),
                executed_at: None,
            },
        )
        .await?;
        if kind != DecisionType::Buy {
            continue;
        }
        let order = Order::insert(
            &mut *tx,
            &NewOrder {
                id: None,
                client_order_id: format!("ex-{i}"),
                exchange_order_id: None,
                decision_id: Some(decision.id),
                strategy_id: Some(strategy.id),
                symbol: symbol.into(),
                side: OrderSide::Buy,
                order_type: OrderType::Limit,
                time_in_force: None,
                status: None,
                quantity: dec("0.25"),
                price: Some(dec("43000.5")),
                stop_price: None,
                filled_quantity: None,
                average_fill_price: None,
                fee: None,
                fee_currency: None,
                notes: None,
                submitted_at: Some(Utc::now()),
                filled_at: None,
            },
        )
        .await?;
        orders.push(order);
        Position::insert(
            &mut *tx,
            &NewPosition {
                id: None,
                strategy_id: strategy.id,
                symbol: symbol.into(),
                side: PositionSide::Long,
                status: None,
                quantity: dec("0.25"),
                entry_price: dec("43000.5"),
                current_price: None,
                unrealized_pnl: None,
                realized_pnl: None,
                opened_at: None,
                closed_at: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    println!(
        "wrote {} decisions, {} orders, {} positions",
        Decision::count(&pool).await?,
        Order::count(&pool).await?,
        Position::count(&pool).await?
    );

    // Fill an order with a patch; a second writer holding the old version loses.
    let first = &orders[0];
    let filled = Order::patch(
        &pool,
        &first.id,
        &OrderPatch {
            status: Some(OrderStatus::Filled),
            filled_quantity: Some(first.quantity),
            average_fill_price: Some(Some(dec("42990.1"))),
            filled_at: Some(Some(Utc::now())),
            expected_version: Some(first.version),
            ..Default::default()
        },
    )
    .await?;
    println!(
        "order {} is {} (version {})",
        filled.client_order_id, filled.status, filled.version
    );
    let mut stale = first.clone();
    stale.notes = Some("written from an old copy".into());
    match Order::update(&pool, &stale).await {
        Err(Error::StaleVersion {
            expected, found, ..
        }) => {
            println!("stale update refused: expected version {expected}, row has {found}")
        }
        other => println!("unexpected: {other:?}"),
    }

    // The cache: reads by key of the entities with `cache:` (Decision,
    // Order, Position) go through Redis when given a `Store`; every write
    // through it invalidates after its commit. Redis down: the reads fall
    // back to PostgreSQL and nothing fails.
    let cache = connect_cache().await?;
    let store = strata_sdk::cache::Store::new(pool.clone(), cache);
    let t = Instant::now();
    let cold = Order::get(&store, &first.id).await?;
    let miss = t.elapsed();
    let t = Instant::now();
    let warm = Order::get(&store, &first.id).await?;
    let hit = t.elapsed();
    assert_eq!(cold, warm);
    println!(
        "Order::get through the cache: {miss:.2?} on the miss (PostgreSQL, then filled), {hit:.2?} on the hit"
    );
    let noted = Order::patch(
        &store,
        &first.id,
        &OrderPatch {
            notes: Some(Some("noted through the store".into())),
            expected_version: Some(warm.version),
            ..Default::default()
        },
    )
    .await?;
    let after = Order::get(&store, &first.id).await?;
    assert_eq!(after, noted);
    println!(
        "after a patch through the store the cache serves version {} with notes {:?}",
        after.version, after.notes
    );
    let ids: Vec<OrderKey> = orders.iter().map(|o| o.id).collect();
    let many = Order::get_many(&store, &ids).await?;
    let st = store.cache().stats();
    println!(
        "Order::get_many of {} keys: {} rows (one MGET, one query for the misses); cache so far: \
         {} hits, {} misses, {} PostgreSQL loads, {} fills, {} invalidations, {} Redis errors",
        ids.len(),
        many.len(),
        st.hits,
        st.misses,
        st.loads,
        st.fills,
        st.invalidations,
        st.errors
    );
    if st.errors > 0 {
        println!("(Redis was not reachable at REDIS_URL: every read came from PostgreSQL)");
    }

    // 100,000 candles in one call (25,000 per symbol, one a minute).
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"];
    let candles = |base: f64| {
        (0..100_000usize).map(move |i| {
            let p = base + (i % 500) as f64;
            NewCandleBar {
                symbol: symbols[i % 4].into(),
                timeframe: "1m".into(),
                ts: t0 + Duration::minutes((i / 4) as i64),
                open: p,
                high: p + 5.0,
                low: p - 5.0,
                close: p + 1.0,
                volume: 1.0 + (i % 17) as f64,
            }
        })
    };
    let t = Instant::now();
    let counts = CandleBar::upsert_many(&pool, candles(100.0)).await?;
    println!(
        "upsert_many of 100,000 candles: {counts} in {:.2?}",
        t.elapsed()
    );
    let t = Instant::now();
    let counts = CandleBar::upsert_many(&pool, candles(200.0).take(50_000)).await?;
    println!(
        "upsert_many of 50,000 known candles again: {counts} in {:.2?}",
        t.elapsed()
    );

    // Reading back: finders and keyset pagination.
    let btc = Decision::by_symbol(&pool, "BTCUSDT").await?;
    println!(
        "Decision::by_symbol(BTCUSDT): {} rows, newest first: {:?}",
        btc.len(),
        btc.iter().map(|d| d.decision_type).collect::<Vec<_>>()
    );
    // The copies that sync rules keep in ClickHouse and Elasticsearch are
    // converted from the entity (no secrets; enums as their stored names).
    if let Some(d) = btc.first() {
        let row = deepalpha_db::clickhouse::analytics::DecisionRow::from(d);
        let doc = deepalpha_db::elasticsearch::search::DecisionDoc::from(d);
        println!(
            "as a ClickHouse row: {} {} version {}; as a search document: {}",
            row.symbol,
            row.decision_type,
            row._version,
            serde_json::to_string(&doc)?
        );
    }
    let by_client = Order::by_client_id(&pool, "ex-0").await?;
    println!(
        "Order::by_client_id(ex-0): {:?}",
        by_client.map(|o| (o.symbol, o.status))
    );
    let open = Position::open_for_strategy(&pool, &strategy.id).await?;
    println!(
        "Position::open_for_strategy: {:?}",
        open.iter().map(|p| &p.symbol).collect::<Vec<_>>()
    );
    let series = CandleBar::series(&pool, "ETHUSDT", "1m").await?;
    println!(
        "CandleBar::series(ETHUSDT, 1m): {} bars, first close {}, last ts {}",
        series.len(),
        series[0].close,
        series[series.len() - 1].ts
    );
    let mut req = PageRequest::first(20_000);
    let (mut pages, mut rows) = (0, 0);
    loop {
        let page = CandleBar::list(&pool, &req).await?;
        pages += 1;
        rows += page.items.len();
        match page.next_request(&req) {
            Some(next) => req = next,
            None => break,
        }
    }
    println!("CandleBar::list: {rows} bars in {pages} keyset pages of 20,000");
    let keys: Vec<CandleBarKey> = (0..3)
        .map(|m| {
            (
                "BTCUSDT".to_string(),
                "1m".to_string(),
                t0 + Duration::minutes(m),
            )
        })
        .collect();
    println!(
        "CandleBar::get_many of 3 keys: {} rows in one round trip",
        CandleBar::get_many(&pool, &keys).await?.len()
    );
    println!(
        "done; inspect with: psql -h {} -p {} -U {} {db}",
        options.get_host(),
        options.get_port(),
        options.get_username()
    );
    Ok(())
}
