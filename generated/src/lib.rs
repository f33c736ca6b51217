//! # deepalpha-db
//!
//! The trading system's data layer, compiled from `../schema` by
//! strata-codegen when this crate builds. Each generated `rust/<m>.rs`
//! is a module here; the PostgreSQL entities are re-exported at the root.
//!
//! ```no_run
//! # async fn demo() -> strata_sdk::Result<()> {
//! use deepalpha_db::{Decision, NewDecision, DecisionType};
//! let pool = deepalpha_db::connect_main().await?;
//! let pending = Decision::pending(&pool).await?;
//! # Ok(()) }
//! ```

include!(concat!(env!("OUT_DIR"), "/modules.rs"));

pub use entities::*;
