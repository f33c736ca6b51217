//! # strata-sdk
//!
//! The runtime that Strata-generated data layers call: connection pools,
//! repositories' shared machinery, batch writers and store clients. Generated
//! code only wires these up; the behaviour lives and is tested here.
//!
//! One cargo feature per store, so a crate compiles only the clients it
//! uses: `postgres` (the default: repositories, pools, migrations),
//! `clickhouse`, `influxdb` and `elasticsearch` (the batching writers; the
//! last two bring the HTTP client). A PostgreSQL-only crate compiles no HTTP
//! client.

#[cfg(feature = "clickhouse")]
pub mod clickhouse;
#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
pub mod error;
#[cfg(feature = "influxdb")]
pub mod influx;
#[cfg(feature = "postgres")]
pub mod migrate;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod secret;
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
