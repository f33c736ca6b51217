//! Repository futures are `Send`, so they run in `tokio::spawn` and in web
//! handlers (a compile-time check; the test body only builds the futures).

use deepalpha_db::*;
use strata_sdk::postgres::PageRequest;

fn send<T: Send>(_: &T) {}

#[allow(dead_code)]
async fn futures_are_send(pool: sqlx::PgPool, row: NewCandleBar, user: User) {
    let key = (row.symbol.clone(), row.timeframe.clone(), row.ts);
    send(&CandleBar::insert(&pool, &row));
    send(&CandleBar::get(&pool, &key));
    send(&CandleBar::get_many(&pool, std::slice::from_ref(&key)));
    send(&CandleBar::list(&pool, &PageRequest::first(10)));
    send(&CandleBar::series(&pool, "BTC", "1m"));
    send(&CandleBar::upsert_many(&pool, vec![row.clone()]));
    send(&CandleBar::insert_many(&pool, std::iter::once(row)));
    send(&CandleBar::delete_many(&pool, vec![key]));
    send(&User::update(&pool, &user));
    send(&User::patch(&pool, &user.id, &UserPatch::default()));
}

#[allow(dead_code)]
fn spawn_in_transaction(pool: sqlx::PgPool) {
    tokio::spawn(async move {
        let mut tx = pool.begin().await?;
        let n = User::count(&mut *tx).await?;
        let c = CandleBar::delete_many(&mut *tx, Vec::new()).await?;
        tx.commit().await?;
        Ok::<_, strata_sdk::Error>((n, c))
    });
}

#[test]
fn compiles() {}
