//! Values other tools write that the Rust types cannot hold are a typed
//! error naming the column, on every read path, and the connection stays
//! usable: a `numeric` NaN in a `Decimal` field, a `jsonb` number past
//! f64, an enum label added to the type by another migration. (The same
//! kind as `infinity` in a timestamp, tests/tests/sdk_infinity.rs; before,
//! these came back as the catch-all `Error::Database`.)

mod sdk_support;

use deepalpha_db::*;
use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::error::DECODE;
use strata_sdk::postgres::PageRequest;
use strata_sdk::{Error, Secret};

fn unreadable(e: &Error, column: &str) -> bool {
    matches!(e, Error::InvalidValue { code, message }
        if code == DECODE && message.contains(&format!("`Strategy.{column}` holds a value the SDK cannot read")))
}

#[tokio::test]
async fn values_the_sdk_cannot_hold_are_errors_naming_the_column() {
    let db = TestDb::trading().await;
    let pool = &db.pool;
    let user = NewUser {
        id: None,
        username: "ada".into(),
        email: "ada@example.com".into(),
        hashed_password: Secret::new("argon2:xyz"),
        api_key: None,
        api_secret: None,
        role: None,
        is_active: None,
        last_login_at: None,
    };
    let u = User::insert(pool, &user).await.unwrap();
    let new = NewStrategy {
        id: None,
        name: "s".into(),
        description: None,
        status: None,
        parameters: None,
        symbols: None,
        max_position_size: Decimal::ONE,
        risk_limit: None,
        owner_id: u.id,
    };
    let s = Strategy::insert(pool, &new).await.unwrap();
    let cases: [(&str, &[&str]); 3] = [
        ("risk_limit", &["UPDATE strategies SET risk_limit = 'NaN'"]),
        (
            "parameters",
            &["UPDATE strategies SET risk_limit = NULL, parameters = '{\"x\": 1e400}'"],
        ),
        (
            "status",
            &[
                "ALTER TYPE strategy_status ADD VALUE 'ZOMBIE'",
                "UPDATE strategies SET parameters = '{}', status = 'ZOMBIE'",
            ],
        ),
    ];
    for (column, sqls) in cases {
        for sql in sqls {
            sqlx::raw_sql(sql).execute(pool).await.unwrap();
        }
        let e = Strategy::get(pool, &s.id).await.unwrap_err();
        assert!(unreadable(&e, column), "get, {column}: {e:?}");
        let e = Strategy::list(pool, &PageRequest::first(10))
            .await
            .unwrap_err();
        assert!(unreadable(&e, column), "list, {column}: {e:?}");
        let e = Strategy::by_owner(pool, &u.id).await.unwrap_err();
        assert!(unreadable(&e, column), "finder, {column}: {e:?}");
        assert_eq!(User::count(pool).await.unwrap(), 1, "still usable");
    }
}
