//! A fresh PostgreSQL database per test with a pool on it, dropped when the
//! guard goes away (even when the test panics).

#![allow(dead_code)]

use sqlx::postgres::{PgPool, PgPoolOptions};
use strata_tests::support::PgDatabase;

pub struct TestDb {
    pub pool: PgPool,
    /// Dropped after the pool (fields drop in order): drops the database.
    pub db: PgDatabase,
}

impl TestDb {
    /// Creates `strata_test_<random>` and runs `ddl` in it.
    pub async fn with_ddl(ddl: &str) -> TestDb {
        let db = PgDatabase::new().await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db.url)
            .await
            .expect("connect to test database");
        sqlx::raw_sql(ddl).execute(&pool).await.expect("apply DDL");
        TestDb { pool, db }
    }

    /// The database of the trading schema's `main` store.
    pub async fn trading() -> TestDb {
        let sources = strata_codegen::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema"))
            .expect("schema");
        let model = strata_codegen::compile(&sources).expect("schema compiles");
        Self::for_model(&model, "main").await
    }

    pub async fn for_model(model: &strata_codegen::Model, store: &str) -> TestDb {
        use strata_codegen::postgres::{catalog::catalog, ddl::create_all};
        let store = model.store_id(store).expect("a store of the model");
        Self::with_ddl(&create_all(&catalog(model, store))).await
    }
}
