//! Compiles `../schema` with strata-codegen into `OUT_DIR`: hermetic (reads
//! the schema files, writes only `OUT_DIR`, no database, no network).

use std::path::{Path, PathBuf};

fn main() {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    // `…/schema`, not `…/generated/../schema`, in diagnostics.
    let schema = std::fs::canonicalize(&schema).unwrap_or(schema);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(message) = run(&schema, &out) {
        // Cargo shows a failed build script's stderr: the same diagnostics as `strata check`.
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run(schema: &Path, out: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", schema.display());
    let files = strata_codegen::schema_files(schema).map_err(|e| e.to_string())?;
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let sources = strata_codegen::load(schema).map_err(|e| e.to_string())?;
    let model = strata_codegen::compile(&sources).map_err(|d| d.render_plain())?;
    let generated = strata_codegen::generate(&model, &strata_codegen::Settings::default());
    // Only the Rust files; each `rust/<m>.rs` becomes `pub mod <m>`.
    let mut rust = strata_codegen::Files::default();
    let mut modules = String::new();
    for (path, text) in &generated.files {
        let Some(name) = path
            .strip_prefix("rust/")
            .and_then(|p| p.strip_suffix(".rs"))
        else {
            continue;
        };
        rust.insert(path.clone(), text.clone());
        modules.push_str(&format!(
            "pub mod {name} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/rust/{name}.rs\"));\n}}\n"
        ));
    }
    // The DDL of each postgres store, for a fresh database (until migrations apply it).
    let mut ddl = String::new();
    for (path, text) in &generated.files {
        let Some(store) = path
            .strip_prefix("postgres/")
            .and_then(|p| p.strip_suffix(".sql"))
        else {
            continue;
        };
        if store.contains('/') {
            continue;
        }
        rust.insert(path.clone(), text.clone());
        let konst = store.to_ascii_uppercase();
        ddl.push_str(&format!(
            "    #[doc = \"`CREATE` statements of the postgres store `{store}`, from an empty database.\"]\n    pub const {konst}: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/{path}\"));\n"
        ));
    }
    modules.push_str(&format!(
        "/// The DDL of each postgres store.\npub mod ddl {{\n{ddl}}}\n"
    ));
    rust.insert("modules.rs", modules);
    strata_codegen::persist(&rust, out).map_err(|e| e.to_string())?;
    Ok(())
}
