//! The names a generated migration shares with the change-capture runner.
//!
//! A migration that adds a copied column to a synced table also re-lists
//! that table in the sync's publication, in the same transaction (see
//! `strata_codegen::postgres::diff` and `docs/sync.md`, "Schema changes"):
//! the compiler writes the publication's name into the SQL, and the runner
//! (`strata_sdk::sync::Pipeline::publication`) creates and reads the
//! publication by name. Both call these functions, so the two cannot drift
//! apart. They live here because this small crate is the one both
//! `strata-codegen` (always, build scripts included) and `strata-sdk`
//! (feature `postgres`, which `sync` needs) depend on.

/// The pipeline of the `sync:` rules (or caches and events) from the
/// postgres store `source` to the store `target`: `<source>_<target>`,
/// lower-cased.
pub fn pipeline(source: &str, target: &str) -> String {
    format!("{source}_{target}").to_lowercase()
}

/// The publication of pipeline `pipeline`: `strata_<pipeline>`.
pub fn publication(pipeline: &str) -> String {
    format!("strata_{pipeline}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_publication_of_a_pipeline_is_prefixed_and_lower_case() {
        assert_eq!(super::pipeline("Main", "analytics"), "main_analytics");
        assert_eq!(
            super::publication(&super::pipeline("main", "cache")),
            "strata_main_cache"
        );
    }
}
