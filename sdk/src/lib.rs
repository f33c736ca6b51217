//! # strata-sdk
//!
//! The runtime that Strata-generated data layers call: connection pools,
//! repositories' shared machinery, batch writers and store clients. Generated
//! code only wires these up; the behaviour lives and is tested here.
//!
//! One cargo feature per store, so a crate compiles only the clients it
//! uses: `postgres` (repositories, pools, migrations), `clickhouse`,
//! `influxdb` and `elasticsearch` (the batching writers; the last two bring
//! the HTTP client), and `cache` (the Redis read path of entities with
//! `cache:`, [`cache`]). All are on by default, so that a schema with any
//! store compiles; a PostgreSQL-only crate says `default-features = false,
//! features = ["postgres"]` and compiles no HTTP client. Feature `serve` adds `/metrics` and `/health` over HTTP
//! ([`serve`]) and the Prometheus recorder
//! ([`metrics::install_prometheus`]); without it the SDK still records
//! every metric through the `metrics` facade, for any recorder.

#[cfg(feature = "cache")]
pub mod cache;
#[cfg(feature = "clickhouse")]
pub mod clickhouse;
#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
pub mod error;
#[cfg(feature = "cache")]
pub mod events;
pub mod float;
pub mod health;
#[cfg(feature = "influxdb")]
pub mod influx;
pub mod metrics;
#[cfg(feature = "postgres")]
pub mod migrate;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod secret;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "sync")]
pub mod sync;
pub mod template;
pub mod value;
#[cfg(any(
    feature = "clickhouse",
    feature = "influxdb",
    feature = "elasticsearch"
))]
pub mod writer;

pub use error::{BatchCounts, Error, Result};
pub use secret::Secret;
pub use value::ValueError;
