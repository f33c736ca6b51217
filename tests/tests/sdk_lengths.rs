//! A `string(n)` value longer than `n` characters is refused before it is
//! written, as `Error::Refused` naming the entity and field (PostgreSQL's
//! own `22001` names neither), on every write path: insert, upsert,
//! update, patch; batches through `UNNEST`, binary `COPY` and multi-row
//! `VALUES` (array columns, each element checked). PostgreSQL counts
//! characters, not bytes: `n` two-byte characters are accepted.

mod sdk_support;

use deepalpha_db::*;
use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::{Error, Secret};

fn order(i: usize, symbol: &str) -> NewOrder {
    NewOrder {
        id: None,
        client_order_id: format!("c{i}"),
        exchange_order_id: None,
        decision_id: None,
        strategy_id: None,
        symbol: symbol.into(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        time_in_force: None,
        status: None,
        quantity: Decimal::ONE,
        price: None,
        stop_price: None,
        filled_quantity: None,
        average_fill_price: None,
        fee: None,
        fee_currency: None,
        notes: None,
        submitted_at: None,
        filled_at: None,
    }
}

/// Refused, naming `Entity.field`, and saying the limit.
fn refused(e: &Error, entity: &str, field: &str, max: u32) -> bool {
    matches!(e, Error::Refused { entity: en, field: f, reason } if *en == entity && *f == field
        && reason.contains(&format!("string({max})")))
}

#[tokio::test]
async fn strings_longer_than_their_column_are_refused_naming_the_field_on_every_path() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let long = "X".repeat(21); // symbol: string(20)
    let e = Order::insert(pool, &order(0, &long)).await.unwrap_err();
    assert!(refused(&e, "Order", "symbol", 20), "{e:?}");
    assert!(
        e.to_string().contains("symbol") && !e.to_string().contains(&long),
        "{e}"
    );
    let e = Order::upsert(pool, &order(0, &long)).await.unwrap_err();
    assert!(refused(&e, "Order", "symbol", 20), "{e:?}");
    assert_eq!(Order::count(pool).await.unwrap(), 0);

    // Twenty two-byte characters are twenty characters: accepted.
    let wide = "é".repeat(20);
    let o = Order::insert(pool, &order(1, &wide)).await.unwrap();
    assert_eq!(o.symbol, wide);
    let e = Order::update(
        pool,
        &Order {
            symbol: format!("{wide}é"),
            ..o.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(refused(&e, "Order", "symbol", 20), "{e:?}");
    let patch = OrderPatch {
        fee_currency: Some(Some("EURUSDTBTCX".into())), // string(10)?
        ..Default::default()
    };
    let e = Order::patch(pool, &o.id, &patch).await.unwrap_err();
    assert!(refused(&e, "Order", "fee_currency", 10), "{e:?}");
    assert_eq!(Order::get(pool, &o.id).await.unwrap(), o, "nothing changed");

    // Batches: UNNEST (small) and COPY (past 10,000 rows), the bad row last.
    for n in [10, strata_sdk::postgres::BATCH_CHUNK + 5] {
        let rows = || (2..n).map(|i| order(i, "BTCUSDT")).chain([order(n, &long)]);
        let e = Order::insert_many(pool, rows()).await.unwrap_err();
        assert!(refused(&e, "Order", "symbol", 20), "{n} rows: {e:?}");
        let e = Order::upsert_many(pool, rows()).await.unwrap_err();
        assert!(refused(&e, "Order", "symbol", 20), "{n} rows: {e:?}");
        assert_eq!(
            Order::count(pool).await.unwrap(),
            1,
            "{n} rows: nothing written"
        );
    }
    let e = Order::update_many(
        pool,
        [Order {
            symbol: long.clone(),
            ..o.clone()
        }],
    )
    .await
    .unwrap_err();
    assert!(refused(&e, "Order", "symbol", 20), "{e:?}");
}

#[tokio::test]
async fn each_element_of_a_string_array_is_checked() {
    // Strategy.symbols is string(20)[]: its batches go in multi-row VALUES.
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let owner = User::insert(
        pool,
        &NewUser {
            id: None,
            username: "ada".into(),
            email: "ada@example.com".into(),
            hashed_password: Secret::new("argon2:xyz"),
            api_key: None,
            api_secret: None,
            role: None,
            is_active: None,
            last_login_at: None,
        },
    )
    .await
    .unwrap();
    let strategy = |name: &str, symbols: Vec<String>| NewStrategy {
        id: None,
        name: name.into(),
        description: None,
        status: None,
        parameters: None,
        symbols: Some(symbols),
        max_position_size: Decimal::ONE,
        risk_limit: None,
        owner_id: owner.id,
    };
    let rows = [
        strategy("a", vec!["BTCUSDT".into()]),
        strategy("b", vec!["ETHUSDT".into(), "Y".repeat(21)]),
    ];
    let e = Strategy::insert_many(pool, rows).await.unwrap_err();
    assert!(refused(&e, "Strategy", "symbols", 20), "{e:?}");
    let e = Strategy::insert(pool, &strategy("c", vec!["Z".repeat(21)]))
        .await
        .unwrap_err();
    assert!(refused(&e, "Strategy", "symbols", 20), "{e:?}");
    assert_eq!(Strategy::count(pool).await.unwrap(), 0);
}
