//! Compiles `../schema` with strata-codegen into `OUT_DIR`, embedding the
//! migrations of `migrations/`: hermetic (reads the schema and migration
//! files, writes only `OUT_DIR`, no database, no network).

fn main() -> Result<(), strata_codegen::build::BuildError> {
    strata_codegen::build::Build::new("../schema")
        .with_migrations("migrations")
        .run()
}
