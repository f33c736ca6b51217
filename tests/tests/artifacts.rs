//! Every generated file has a typed kind ([`Artifact`]), the one place its
//! path is written and read back, and the back ends run from one list.

use strata_codegen::{Artifact, BACKENDS};

fn trading() -> strata_codegen::Files {
    let sources = strata_codegen::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema"))
        .expect("the trading schema loads");
    let model = strata_codegen::compile(&sources).expect("the trading schema compiles");
    strata_codegen::generate(&model, &strata_codegen::Settings::default())
}

#[test]
fn every_generated_file_is_a_typed_artifact_whose_path_reads_back() {
    let files = trading();
    let artifacts: Vec<(Artifact, &str)> = files.artifacts().collect();
    assert_eq!(artifacts.len(), files.files.len(), "a file without a kind");
    for (a, _) in &artifacts {
        assert_eq!(Artifact::parse(&a.path()).as_ref(), Some(a));
    }
    let rust: Vec<&Artifact> = (artifacts.iter().map(|(a, _)| a))
        .filter(|a| matches!(a, Artifact::RustModule(_)))
        .collect();
    assert_eq!(
        rust,
        ["clickhouse", "elasticsearch", "entities", "influx"]
            .map(|m| Artifact::RustModule(m.into()))
            .iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn paths_that_are_not_artifacts_are_not_taken_for_one() {
    for path in [
        "rust/a/b.rs",
        "postgres/.sql",
        "rust/x.txt",
        "clickhouse/t.sql",
        "notes.md",
        "elasticsearch/a/b.json",
        "grafana/other.json",
    ] {
        assert_eq!(Artifact::parse(path), None, "{path}");
    }
}

#[test]
fn one_list_holds_every_back_end() {
    let names: Vec<&str> = BACKENDS.iter().map(|b| b.name()).collect();
    assert_eq!(
        names,
        [
            "postgres",
            "rust",
            "clickhouse",
            "elasticsearch",
            "influxdb",
            "grafana"
        ]
    );
}
