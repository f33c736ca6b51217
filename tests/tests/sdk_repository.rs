//! Every single-row repository method of the generated trading SDK against
//! a real PostgreSQL, each test on its own database.

mod sdk_support;

use deepalpha_db::*;
use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::postgres::PageRequest;
use strata_sdk::{Error, Secret};

fn new_user(name: &str) -> NewUser {
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

fn new_strategy(owner: uuid::Uuid, name: &str) -> NewStrategy {
    NewStrategy {
        id: None,
        name: name.into(),
        description: None,
        status: None,
        parameters: None,
        symbols: None,
        max_position_size: Decimal::new(1000, 0),
        risk_limit: None,
        owner_id: owner,
    }
}

#[tokio::test]
async fn insert_get_update_patch_delete() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("ada")).await.unwrap();
    assert_eq!(u.version, 1);
    assert_eq!(u.role, UserRole::Trader);
    assert!(u.is_active);
    assert_eq!(format!("{:?}", u.hashed_password), "[redacted]");
    assert!(!format!("{u:?}").contains("argon2"));
    assert_eq!(User::get(pool, &u.id).await.unwrap(), u);
    assert!(User::exists(pool, &u.id).await.unwrap());
    assert_eq!(User::count(pool).await.unwrap(), 1);
    let bob = User::insert(pool, &new_user("bob")).await.unwrap();
    let many = User::get_many(pool, &[u.id, bob.id, uuid::Uuid::new_v4()])
        .await
        .unwrap();
    assert_eq!(many.len(), 2);
    assert!(User::get_many(pool, &[]).await.unwrap().is_empty());
    assert!(User::delete(pool, &bob.id).await.unwrap());

    // Whole-row update bumps version and updated_at.
    let mut changed = u.clone();
    changed.email = "ada@lovelace.org".into();
    let updated = User::update(pool, &changed).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.email, "ada@lovelace.org");
    assert!(updated.updated_at >= u.updated_at);
    assert_eq!(updated.created_at, u.created_at);

    // Stale version: typed error, nothing changed.
    changed.email = "stale@x.org".into();
    match User::update(pool, &changed).await {
        Err(Error::StaleVersion {
            expected: 1,
            found: 2,
            ..
        }) => {}
        other => panic!("expected StaleVersion, got {other:?}"),
    }
    assert_eq!(
        User::get(pool, &u.id).await.unwrap().email,
        "ada@lovelace.org"
    );

    // Patch writes only the fields set; a NULL can be set explicitly.
    let patched = User::patch(
        pool,
        &u.id,
        &UserPatch {
            api_key: Some(Some("k1".into())),
            any_version: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(patched.api_key.as_deref(), Some("k1"));
    assert_eq!(patched.email, "ada@lovelace.org");
    assert_eq!(patched.version, 3);
    let cleared = User::patch(
        pool,
        &u.id,
        &UserPatch {
            api_key: Some(None),
            expected_version: Some(3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(cleared.api_key, None);
    let stale = User::patch(
        pool,
        &u.id,
        &UserPatch {
            username: Some("x".into()),
            expected_version: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(stale, Err(Error::StaleVersion { found: 4, .. })),
        "{stale:?}"
    );

    // Conflict names the unique key.
    match User::insert(pool, &new_user("ada")).await {
        Err(Error::Conflict { constraint }) => {
            assert!(constraint.contains("username"), "{constraint}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }

    assert!(User::delete(pool, &u.id).await.unwrap());
    assert!(!User::delete(pool, &u.id).await.unwrap());
    assert!(matches!(
        User::get(pool, &u.id).await,
        Err(Error::NotFound { entity: "User" })
    ));
    assert!(matches!(
        User::update(pool, &cleared).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn composite_key_upsert_get_many_and_finders() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let cfg = |scope: &str, name: &str, v: i64| NewConfig {
        scope: scope.into(),
        name: name.into(),
        value: serde_json::json!({ "v": v }),
        description: None,
        updated_by: None,
    };
    let a = Config::upsert(pool, &cfg("global", "a", 1)).await.unwrap();
    assert_eq!(a.version, 1);
    let a2 = Config::upsert(pool, &cfg("global", "a", 2)).await.unwrap();
    assert_eq!((a2.version, a2.value["v"].as_i64()), (2, Some(2)));
    Config::insert(pool, &cfg("global", "b", 3)).await.unwrap();
    Config::insert(pool, &cfg("user", "a", 4)).await.unwrap();
    let key = ("global".to_string(), "b".to_string());
    assert_eq!(Config::get(pool, &key).await.unwrap().value["v"], 3);
    let many = Config::get_many(
        pool,
        &[
            key.clone(),
            ("user".into(), "a".into()),
            ("none".into(), "x".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(many.len(), 2);
    let scoped = Config::in_scope(pool, "global").await.unwrap();
    assert_eq!(
        scoped.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(Config::delete(pool, &key).await.unwrap());
    assert_eq!(Config::count(pool).await.unwrap(), 2);
}

#[tokio::test]
async fn keyset_pages_in_both_orders_and_transactions() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let owner = User::insert(pool, &new_user("owner")).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..25 {
        Strategy::insert(&mut *tx, &new_strategy(owner.id, &format!("s{i:02}")))
            .await
            .unwrap();
    }
    // Inside the transaction the rows are visible; outside not yet.
    assert_eq!(Strategy::count(&mut *tx).await.unwrap(), 25);
    assert_eq!(Strategy::count(pool).await.unwrap(), 0);
    tx.commit().await.unwrap();

    for desc in [false, true] {
        let mut req = PageRequest::first(10);
        if desc {
            req = req.desc();
        }
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = Strategy::list(pool, &req).await.unwrap();
            pages += 1;
            seen.extend(page.items.iter().map(|s| s.id));
            match page.next_request(&req) {
                Some(next) => req = next,
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(pages, 3);
        let mut sorted = seen.clone();
        sorted.sort();
        if desc {
            sorted.reverse();
        }
        assert_eq!(seen, sorted);
    }

    // Finders with parameters, fixed values, order and limit.
    let mine = Strategy::by_owner(pool, &owner.id).await.unwrap();
    assert_eq!(mine.len(), 25);
    assert_eq!(mine[0].name, "s00");
    assert!(Strategy::active(pool).await.unwrap().is_empty());
    let by_name = User::by_username(pool, "owner").await.unwrap();
    assert_eq!(by_name.map(|u| u.id), Some(owner.id));
    assert!(User::by_username(pool, "nobody").await.unwrap().is_none());

    // A foreign key violation is typed.
    let orphan = Strategy::insert(pool, &new_strategy(uuid::Uuid::new_v4(), "orphan")).await;
    assert!(
        matches!(orphan, Err(Error::ForeignKey { .. })),
        "{orphan:?}"
    );
}

#[tokio::test]
async fn nulls_enums_decimals_and_json_round_trip() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let d = Decision::insert(
        pool,
        &NewDecision {
            id: None,
            symbol: "BTCUSDT".into(),
            timeframe: "1h".into(),
            decision_type: DecisionType::Buy,
            status: None,
            confidence: Some(0.75),
            price: Some("43210.12345678".parse().unwrap()),
            quantity: None,
            reasoning: Some(serde_json::json!({"why": ["trend", "volume"]})),
            summary: None,
            strategy_id: None,
            executed_at: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(d.status, DecisionStatus::Pending);
    assert_eq!(d.price.unwrap().to_string(), "43210.12345678");
    assert_eq!(d.quantity, None);
    let pending = Decision::pending(pool).await.unwrap();
    assert_eq!(pending, vec![d.clone()]);
    assert_eq!(Decision::by_symbol(pool, "BTCUSDT").await.unwrap().len(), 1);
    assert_eq!(DecisionType::Buy.as_str(), "BUY");
    assert_eq!(
        serde_json::to_string(&DecisionStatus::Pending).unwrap(),
        "\"PENDING\""
    );
}

#[tokio::test]
async fn keyset_pages_by_a_sort_field() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let symbols = ["ETH", "BTC", "SOL", "BTC", "ADA", "BTC", "ETH"];
    let rows = symbols.iter().map(|s| NewDecision {
        id: None,
        symbol: s.to_string(),
        timeframe: "1h".into(),
        decision_type: DecisionType::Hold,
        status: None,
        confidence: None,
        price: None,
        quantity: None,
        reasoning: None,
        summary: None,
        strategy_id: None,
        executed_at: None,
    });
    assert_eq!(Decision::insert_many(pool, rows).await.unwrap().inserted, 7);
    for desc in [false, true] {
        let mut req = PageRequest::first(3);
        if desc {
            req = req.desc();
        }
        let mut seen = Vec::new();
        loop {
            let page = Decision::list_by_symbol(pool, &req).await.unwrap();
            seen.extend(page.items.iter().map(|d| (d.symbol.clone(), d.id)));
            match page.next_request(&req) {
                Some(next) => req = next,
                None => break,
            }
        }
        let mut want = seen.clone();
        want.sort();
        if desc {
            want.reverse();
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(
            seen, want,
            "pages follow (symbol, id) order without gaps or repeats"
        );
    }
    let newest = Decision::list_by_created_at(pool, &PageRequest::first(2).desc())
        .await
        .unwrap();
    assert_eq!(newest.items.len(), 2);
    assert!(newest.next.is_some());
}
