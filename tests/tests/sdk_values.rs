//! Values a store would change silently are refused before anything is
//! written, with a typed error naming the entity and field, on every write
//! path: single-row insert, upsert, update and patch; batches through
//! `UNNEST`, binary `COPY` and multi-row `VALUES`. (Issue: decimals rounded
//! by PostgreSQL; secrets overwritten with the redaction marker.)

mod sdk_support;

use deepalpha_db::*;
use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::{Error, Secret};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn order(i: usize, quantity: Decimal) -> NewOrder {
    NewOrder {
        id: None,
        client_order_id: format!("c{i}"),
        exchange_order_id: None,
        decision_id: None,
        strategy_id: None,
        symbol: "BTCUSDT".into(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        time_in_force: None,
        status: None,
        quantity,
        price: Some(d("100.5")),
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

fn user(name: &str) -> NewUser {
    NewUser {
        id: None,
        username: name.into(),
        email: format!("{name}@example.com"),
        hashed_password: Secret::new("argon2:xyz"),
        api_key: None,
        api_secret: None,
        role: None,
        is_active: None,
        last_login_at: None,
    }
}

fn refused(e: &Error, field: &str) -> bool {
    matches!(e, Error::Refused { entity, field: f, .. } if !entity.is_empty() && *f == field)
}

#[tokio::test]
async fn decimals_with_more_scale_or_digits_than_the_column_are_refused() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let too_fine = d("0.123456789"); // decimal(28,8)
    let e = Order::insert(pool, &order(0, too_fine)).await.unwrap_err();
    assert!(refused(&e, "quantity"), "{e:?}");
    assert!(e.to_string().contains("0.123456789"), "{e}");
    let e = Order::upsert(pool, &order(0, d("100000000000000000000")))
        .await
        .unwrap_err();
    assert!(refused(&e, "quantity"), "{e:?}");
    let mut bad_price = order(0, d("1"));
    bad_price.price = Some(d("0.000000001"));
    let e = Order::insert(pool, &bad_price).await.unwrap_err();
    assert!(refused(&e, "price"), "{e:?}");
    assert_eq!(Order::count(pool).await.unwrap(), 0);

    // Trailing zeros are not scale; the exact value is stored.
    let o = Order::insert(pool, &order(1, d("1.500000000")))
        .await
        .unwrap();
    assert_eq!(o.quantity, d("1.5"));
    let e = Order::update(
        pool,
        &Order {
            quantity: too_fine,
            ..o.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(refused(&e, "quantity"), "{e:?}");
    let patch = OrderPatch {
        fee: Some(d("-0.000000001")),
        ..Default::default()
    };
    let e = Order::patch(pool, &o.id, &patch).await.unwrap_err();
    assert!(refused(&e, "fee"), "{e:?}");
    assert_eq!(Order::get(pool, &o.id).await.unwrap(), o, "nothing changed");

    // Batches: UNNEST (small) and COPY (past 10,000 rows), the bad row last.
    for n in [10, strata_sdk::postgres::BATCH_CHUNK + 5] {
        let rows = (2..n).map(|i| order(i, d("2"))).chain([order(n, too_fine)]);
        let e = Order::insert_many(pool, rows).await.unwrap_err();
        assert!(refused(&e, "quantity"), "{n} rows: {e:?}");
        let rows = (2..n).map(|i| order(i, d("2"))).chain([order(n, too_fine)]);
        let e = Order::upsert_many(pool, rows).await.unwrap_err();
        assert!(refused(&e, "quantity"), "{n} rows: {e:?}");
        assert_eq!(
            Order::count(pool).await.unwrap(),
            1,
            "{n} rows: nothing written"
        );
    }
    let e = Order::update_many(
        pool,
        [Order {
            quantity: too_fine,
            ..o.clone()
        }],
    )
    .await
    .unwrap_err();
    assert!(refused(&e, "quantity"), "{e:?}");
}

#[tokio::test]
async fn values_batches_check_decimals_too() {
    // Strategy has an array column: its batches go in multi-row VALUES.
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let owner = User::insert(pool, &user("ada")).await.unwrap();
    let strategy = |name: &str, size: &str| NewStrategy {
        id: None,
        name: name.into(),
        description: None,
        status: None,
        parameters: None,
        symbols: Some(vec!["BTCUSDT".into()]),
        max_position_size: d(size),
        risk_limit: None,
        owner_id: owner.id,
    };
    let rows = [strategy("a", "1"), strategy("b", "1.000000001")];
    let e = Strategy::insert_many(pool, rows).await.unwrap_err();
    assert!(refused(&e, "max_position_size"), "{e:?}");
    assert_eq!(Strategy::count(pool).await.unwrap(), 0);
}

#[tokio::test]
async fn the_redaction_marker_is_never_read_back_nor_stored() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let u = User::insert(pool, &user("ada")).await.unwrap();
    // Through JSON and back (an HTTP handler, a job queue): the secret
    // serialises as the marker, and reading the marker back is an error.
    let json = serde_json::to_string(&u).unwrap();
    assert!(
        json.contains("[redacted]") && !json.contains("argon2"),
        "{json}"
    );
    let back = serde_json::from_str::<User>(&json).unwrap_err();
    assert!(back.to_string().contains("redaction marker"), "{back}");

    // A marker that reaches a write anyway is refused on every path.
    let marked = Secret::new("[redacted]");
    let e = User::update(
        pool,
        &User {
            hashed_password: marked.clone(),
            ..u.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(refused(&e, "hashed_password"), "{e:?}");
    let e = User::insert(
        pool,
        &NewUser {
            hashed_password: marked.clone(),
            ..user("bob")
        },
    )
    .await
    .unwrap_err();
    assert!(refused(&e, "hashed_password"), "{e:?}");
    let patch = UserPatch {
        api_secret: Some(Some(marked.clone())),
        ..Default::default()
    };
    let e = User::patch(pool, &u.id, &patch).await.unwrap_err();
    assert!(refused(&e, "api_secret"), "{e:?}");
    let rows = (0..3).map(|i| NewUser {
        hashed_password: marked.clone(),
        ..user(&format!("u{i}"))
    });
    let e = User::insert_many(pool, rows).await.unwrap_err();
    assert!(refused(&e, "hashed_password"), "{e:?}");
    // A hand-written query binding the marker is refused by its encoder.
    let e = sqlx::query("UPDATE users SET hashed_password = $1")
        .bind(&marked)
        .execute(pool)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redaction marker"), "{e}");
    let stored = User::get(pool, &u.id).await.unwrap();
    assert_eq!(stored.hashed_password.expose(), "argon2:xyz");
    assert_eq!(User::count(pool).await.unwrap(), 1);
}

/// `levels` nested arrays around a number, built without recursion.
fn nested_json(levels: usize) -> serde_json::Value {
    let mut v = serde_json::json!(1);
    for _ in 0..levels {
        v = serde_json::Value::Array(vec![v]);
    }
    v
}

fn decision(reasoning: serde_json::Value) -> NewDecision {
    NewDecision {
        id: None,
        symbol: "BTCUSDT".into(),
        timeframe: "1h".into(),
        decision_type: DecisionType::Buy,
        status: None,
        confidence: None,
        price: None,
        quantity: None,
        reasoning: Some(reasoning),
        summary: None,
        strategy_id: None,
        executed_at: None,
    }
}

/// A `json` value nested deeper than the SDK's reader goes would be stored
/// by PostgreSQL and then fail to read back (the newcomer saw `insert`
/// return an error for a row it had committed): it is refused before
/// anything is written, on the single and the batch paths; the deepest
/// value allowed round-trips.
#[tokio::test]
async fn json_nested_deeper_than_the_sdk_reads_back_is_refused_before_writing() {
    use strata_sdk::postgres::check::JSON_MAX_DEPTH;
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let deep = nested_json(JSON_MAX_DEPTH + 1);
    let e = Decision::insert(pool, &decision(deep.clone()))
        .await
        .unwrap_err();
    assert!(refused(&e, "reasoning"), "{e:?}");
    assert!(e.to_string().contains("128 levels"), "{e}");
    for n in [3, 10_001] {
        let rows: Vec<NewDecision> = (0..n)
            .map(|i| {
                decision(if i == n - 1 {
                    deep.clone()
                } else {
                    nested_json(1)
                })
            })
            .collect();
        let e = Decision::insert_many(pool, rows).await.unwrap_err();
        assert!(refused(&e, "reasoning"), "{n} rows: {e:?}");
    }
    assert_eq!(Decision::count(pool).await.unwrap(), 0, "nothing written");

    let deepest = nested_json(JSON_MAX_DEPTH);
    let d = Decision::insert(pool, &decision(deepest.clone()))
        .await
        .unwrap();
    assert_eq!(d.reasoning.as_ref(), Some(&deepest));
    let back = Decision::get(pool, &d.id).await.unwrap();
    assert_eq!(back.reasoning, Some(deepest));
}

/// A jsonb number serde_json cannot hold exactly (written by another
/// tool) is a typed error on read, not a nearby double that an `update`
/// would then write back (a newcomer saw 123456789012345678901234567890
/// come back as 123456789012345680000000000000).
#[tokio::test]
async fn json_numbers_the_sdk_would_change_are_refused_on_read() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let d = Decision::insert(pool, &decision(serde_json::json!({"n": 0.1, "m": 1e20})))
        .await
        .unwrap();
    assert_eq!(
        Decision::get(pool, &d.id).await.unwrap().reasoning,
        Some(serde_json::json!({"n": 0.1, "m": 1e20}))
    );
    sqlx::query(
        "UPDATE live_decision_log SET reasoning = '{\"big\": 123456789012345678901234567890}' WHERE id = $1",
    )
    .bind(d.id)
    .execute(pool)
    .await
    .unwrap();
    let e = Decision::get(pool, &d.id).await.unwrap_err();
    let Error::InvalidValue { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("reasoning")
            && message.contains(
                "holds a value the SDK cannot read: the JSON number 123456789012345678901234…"
            ),
        "{message}"
    );
    // The connection pool is still fine.
    assert_eq!(Decision::count(pool).await.unwrap(), 1);
}
