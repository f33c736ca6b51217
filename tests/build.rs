//! Generates Rust from schemas into OUT_DIR so the tests compile it:
//! the SDK of every fixture in `fixtures/valid/` (a fixture whose generated
//! code does not build fails the build here), and the store modules of the
//! trading schema and the store fixtures for the store tests.

use std::path::{Path, PathBuf};

fn main() {
    fixture_sdks();
    store_modules();
}

/// Every fixture in `fixtures/valid/*.yaml` → `OUT_DIR/fixtures/<name>/` (through
/// `strata_codegen::build::Build`, as a user's build.rs does) plus
/// `OUT_DIR/fixtures.rs` (`strata_tests::fixtures::<name>::<module>`): a
/// fixture whose generated code does not build fails here.
fn fixture_sdks() {
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
        let sub = format!("fixtures/{name}");
        if let Err(e) = strata_codegen::build::Build::new(&path)
            .with_subdir(&sub)
            .run()
        {
            eprintln!("fixture {} does not compile:\n{e}", path.display());
            std::process::exit(1);
        }
        index.push_str(&format!(
            "pub mod {name} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{sub}/modules.rs\"));\n}}\n"
        ));
    }
    std::fs::write(out.join("fixtures.rs"), index).expect("write OUT_DIR");
}

/// The influx module of `../schema` and the time-series fixture →
/// `OUT_DIR/<name>/influx.rs`, included alone by the influx tests (the
/// ClickHouse and Elasticsearch tests use `deepalpha_db` and the fixture SDKs,
/// whose rows convert from the sibling `entities` module).
fn store_modules() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let schema = root.join("../schema");
    let mut inputs: Vec<(&str, PathBuf)> = vec![("trading", schema.clone())];
    inputs.push(("timeseries", root.join("fixtures/valid/timeseries.yaml")));
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
    let mut wanted = vec!["influx.rs"];
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
