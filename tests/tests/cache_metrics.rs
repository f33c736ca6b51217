//! The cache's metrics through the Prometheus recorder: after a load of
//! misses, hits, writes and a Redis that stops, `/metrics` text shows
//! `strata_cache_*` with the load's values (label `entity`).

mod cache_support;

use cache_support::{account, fixture, prefix, Account, PrivateRedis};
use strata_sdk::cache::{Cache, CacheConfig, Store};

fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains("entity=\"Account\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("/metrics lacks {name}:\n{text}"))
}

#[tokio::test]
async fn cache_metrics_show_the_load() {
    let prometheus = strata_sdk::metrics::install_prometheus().unwrap();
    let f = fixture().await;
    let row = Account::insert(&f.store, &account(1, 10)).await.unwrap();
    assert_eq!(Account::get(&f.store, &1).await.unwrap(), row); // miss, load, fill
    assert_eq!(Account::get(&f.store, &1).await.unwrap(), row); // hit
    assert_eq!(Account::get(&f.store, &1).await.unwrap(), row); // hit
    Account::delete(&f.store, &1).await.unwrap(); // invalidation

    // A Redis that stops: the read falls back to PostgreSQL, no error.
    let mut redis = PrivateRedis::start();
    let cache = Cache::connect(CacheConfig::new(redis.url(), prefix()))
        .await
        .unwrap();
    let down = Store::new(f.db.pool.clone(), cache);
    Account::insert(&down, &account(2, 20)).await.unwrap();
    redis.kill();
    assert_eq!(Account::get(&down, &2).await.unwrap().balance, 20);
    assert_eq!(Account::get(&down, &2).await.unwrap().balance, 20);

    let text = prometheus.render();
    assert_eq!(value(&text, "strata_cache_hits_total"), 2.0, "{text}");
    assert!(value(&text, "strata_cache_misses_total") >= 1.0);
    assert!(value(&text, "strata_cache_loads_total") >= 1.0);
    assert_eq!(value(&text, "strata_cache_fills_total"), 1.0, "{text}");
    // The insert and the delete on the shared Redis, the insert on the
    // private one (before it stopped).
    assert_eq!(
        value(&text, "strata_cache_invalidations_total"),
        3.0,
        "{text}"
    );
    assert!(value(&text, "strata_cache_errors_total") >= 1.0, "{text}");
    assert!(value(&text, "strata_cache_bypassed_total") >= 1.0, "{text}");
}
