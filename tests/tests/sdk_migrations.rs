//! The migrations embedded in `deepalpha-db` at build time
//! (`Build::with_migrations`): applied to a fresh database they give a schema
//! the generated repositories work on, and a second run applies nothing.

mod sdk_support;

use deepalpha_db::*;
use sdk_support::TestDb;
use strata_sdk::migrate::Migrator;
use strata_sdk::Secret;

#[test]
fn the_embedded_migrations_are_the_folder_in_version_order() {
    let embedded = deepalpha_db::migrations();
    let from_dir = strata_sdk::migrate::Migrations::from_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../generated/migrations"
    ))
    .unwrap();
    assert!(!embedded.is_empty());
    let e: Vec<_> = embedded.iter().collect();
    let d: Vec<_> = from_dir.iter().collect();
    assert_eq!(e, d);
    assert!(e.windows(2).all(|w| w[0].version < w[1].version));
}

#[tokio::test]
async fn embedded_migrations_apply_once_then_repositories_work() {
    // An empty database: the migrations create everything.
    let db = TestDb::with_ddl("SELECT 1").await;
    let migrator = Migrator::new(deepalpha_db::migrations());
    let first = migrator.apply_pool(&db.pool).await.unwrap();
    assert_eq!(first.applied.len(), migrator.migrations().len());
    assert_eq!(first.already_applied, 0);

    let user = User::insert(
        &db.pool,
        &NewUser {
            id: None,
            username: "ada".into(),
            email: "ada@example.com".into(),
            hashed_password: Secret::new("argon2:xyz"),
            api_key: None,
            api_secret: None,
            role: Some(UserRole::Admin),
            is_active: None,
            last_login_at: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(User::get(&db.pool, &user.id).await.unwrap(), user);
    assert_eq!(user.role, UserRole::Admin);

    let second = migrator.apply_pool(&db.pool).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.already_applied, migrator.migrations().len());
    assert_eq!(User::count(&db.pool).await.unwrap(), 1);
}
