//! Compiles the trading schema and the store fixtures with strata-codegen and
//! writes the generated store Rust (`clickhouse.rs`, `influx.rs`,
//! `elasticsearch.rs`) to `OUT_DIR/<name>/`, so the tests compile and use it.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let schema = root.join("../schema");
    let mut inputs: Vec<(&str, PathBuf)> = vec![("trading", schema.clone())];
    for name in ["analytics", "search", "timeseries"] {
        inputs.push((name, root.join(format!("fixtures/valid/{name}.yaml"))));
    }
    for (name, path) in inputs {
        emit(name, &path, &out.join(name));
    }
}

fn emit(name: &str, path: &Path, dir: &Path) {
    let files = if path.is_dir() {
        strata_codegen::schema_files(path).expect("schema folder")
    } else {
        vec![path.to_path_buf()]
    };
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    std::fs::create_dir_all(dir).expect("out dir");
    let mut wanted = vec!["clickhouse.rs", "influx.rs", "elasticsearch.rs"];
    if path.exists() {
        let sources = strata_codegen::load(path).expect("load schema");
        let model = match strata_codegen::compile(&sources) {
            Ok(m) => m,
            Err(d) => panic!("{name} does not compile:\n{}", d.render_plain()),
        };
        let out = strata_codegen::generate(&model, &Default::default());
        for (rel, text) in &out.files {
            if let Some(file) = rel.strip_prefix("rust/") {
                if wanted.contains(&file) {
                    std::fs::write(dir.join(file), text).expect("write");
                    wanted.retain(|w| *w != file);
                }
            }
        }
    }
    // A schema without such a store still gets an (empty) file to include.
    for file in wanted {
        std::fs::write(dir.join(file), "").expect("write");
    }
}
