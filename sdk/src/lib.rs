//! # strata-sdk
//!
//! The runtime that Strata-generated data layers call: connection pools,
//! repositories' shared machinery, batch writers and store clients. Generated
//! code only wires these up; the behaviour lives and is tested here.

pub mod clickhouse;
pub mod elasticsearch;
pub mod error;
pub mod influx;
pub mod migrate;
pub mod postgres;
pub mod secret;
pub mod template;
pub mod value;

pub use error::{BatchCounts, Error, Result};
pub use secret::Secret;
pub use value::ValueError;
