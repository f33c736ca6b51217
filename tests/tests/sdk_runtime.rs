//! Runtime pieces without a table: pool settings from the schema, `${VAR}`
//! expansion at run time, secrets redacted in every rendering.

use strata_sdk::postgres::PoolConfig;
use strata_sdk::{Error, Secret};

#[test]
fn pool_settings_come_from_the_schema() {
    let c = deepalpha_db::main_pool_config();
    assert_eq!(
        c.url,
        "${DATABASE_URL:postgres://postgres@127.0.0.1:5432/deepalpha}"
    );
    assert_eq!((c.max, c.min), (Some(10), Some(1)));
    assert_eq!(
        (c.acquire_timeout_ms, c.idle_timeout_ms),
        (Some(30_000), Some(600_000))
    );
}

#[tokio::test]
async fn a_missing_variable_is_a_config_error_naming_it() {
    let c = PoolConfig::new("postgres://${STRATA_SURELY_UNSET_VAR}@127.0.0.1/x");
    match c.connect().await {
        Err(Error::Config(m)) => assert!(m.contains("STRATA_SURELY_UNSET_VAR"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pool_connects_through_the_template() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pool = PoolConfig {
        max: Some(2),
        ..PoolConfig::new(format!("${{STRATA_SURELY_UNSET_VAR:{url}}}"))
    }
    .connect()
    .await
    .unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[test]
fn secrets_never_render() {
    let s = Secret::new("hunter2");
    assert_eq!(
        format!("{s} {s:?} {s:#?}"),
        "[redacted] [redacted] [redacted]"
    );
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
    let user = deepalpha_db::User {
        id: uuid::Uuid::nil(),
        username: "u".into(),
        email: "e".into(),
        hashed_password: Secret::new("hunter2"),
        api_key: None,
        api_secret: Some(Secret::new("hunter3")),
        role: deepalpha_db::UserRole::Viewer,
        is_active: true,
        last_login_at: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        version: 1,
    };
    let rendered = format!("{user:?} {}", serde_json::to_string(&user).unwrap());
    assert!(!rendered.contains("hunter"), "{rendered}");
}
