//! Test support for the Strata workspace.

/// The generated SDK of every fixture in `fixtures/valid/` (compiled by build.rs).
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

#[path = "support.rs"]
pub mod support;
