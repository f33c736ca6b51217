//! Generates the Rust SDK of every schema in `fixtures/valid/*.yaml` into
//! `OUT_DIR/fixtures/<name>/`, so that `strata_tests::fixtures::<name>`
//! compiles it: a fixture whose generated code does not build fails here.

use std::path::{Path, PathBuf};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/valid");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    paths.sort();
    let mut index = String::new();
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let sources = strata_codegen::load(&path).expect("fixture readable");
        let model = match strata_codegen::compile(&sources) {
            Ok(m) => m,
            Err(d) => panic!(
                "fixture {} does not compile:\n{}",
                path.display(),
                d.render_plain()
            ),
        };
        let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
        let mut rust = strata_codegen::Files::default();
        let mut mods = String::new();
        for (p, text) in &files.files {
            let Some(m) = p.strip_prefix("rust/").and_then(|p| p.strip_suffix(".rs")) else {
                continue;
            };
            rust.insert(format!("fixtures/{name}/{m}.rs"), text.clone());
            mods.push_str(&format!(
                "    pub mod {m} {{ include!(concat!(env!(\"OUT_DIR\"), \"/fixtures/{name}/{m}.rs\")); }}\n"
            ));
        }
        strata_codegen::persist(&rust, &out).expect("write OUT_DIR");
        index.push_str(&format!("pub mod {name} {{\n{mods}}}\n"));
    }
    std::fs::write(out.join("fixtures.rs"), index).expect("write OUT_DIR");
}
