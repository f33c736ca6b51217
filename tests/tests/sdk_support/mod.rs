//! A fresh PostgreSQL database per test, dropped when the guard goes away
//! (even when the test panics).

#![allow(dead_code)]

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Executor;

/// The server's URL without a database name.
pub fn server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match url.rfind('/') {
        Some(i) if url[..i].contains("//") && i > url.find("//").unwrap_or(0) + 1 => {
            url[..i].to_string()
        }
        _ => url,
    }
}

pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
}

impl TestDb {
    /// Creates `strata_test_<random>` and runs `ddl` in it.
    pub async fn with_ddl(ddl: &str) -> TestDb {
        let name = format!("strata_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{}/postgres", server_url()))
            .await
            .expect("PostgreSQL at DATABASE_URL (see scripts/services.sh)");
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create test database");
        admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&format!("{}/{name}", server_url()))
            .await
            .expect("connect to test database");
        sqlx::raw_sql(ddl).execute(&pool).await.expect("apply DDL");
        TestDb { pool, name }
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
        Self::with_ddl(&create_all(&catalog(model, store))).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a thread with its own runtime drops the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(admin) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&format!("{}/postgres", server_url()))
                    .await
                {
                    let _ = admin
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                    admin.close().await;
                }
            })
        })
        .join();
    }
}
