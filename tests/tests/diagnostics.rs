//! Rendered diagnostics of every broken schema in `tests/fixtures/invalid/`,
//! one insta snapshot each (colour off, input path in the metadata), and the
//! `strata check` exit code for each of them.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_codegen::{Diagnostics, Sources};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every fixture: a `*.yaml` file or a folder of them (a multi-file schema).
fn invalid_fixtures() -> Vec<PathBuf> {
    let dir = root().join("fixtures/invalid");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

/// Loads a fixture with file names relative to the tests crate, so snapshots
/// do not depend on where the repository is checked out.
fn load(path: &Path) -> Sources {
    let mut sources = strata_codegen::load(path).expect("fixture loads");
    for f in &mut sources.files {
        let rel = Path::new(&f.name)
            .strip_prefix(root())
            .expect("fixture under the tests crate")
            .to_string_lossy()
            .replace('\\', "/");
        f.name = rel;
    }
    sources
}

fn diagnostics(path: &Path) -> Diagnostics {
    match strata_codegen::compile(&load(path)) {
        Ok(_) => panic!("{} compiled, but it is a broken schema", path.display()),
        Err(d) => d,
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("fixture name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn there_is_a_fixture_per_kind_of_mistake() {
    assert!(invalid_fixtures().len() >= 25, "at least 25 broken schemas");
}

#[test]
fn every_broken_schema_renders_a_located_diagnostic_with_help() {
    for path in invalid_fixtures() {
        let d = diagnostics(&path);
        assert!(!d.items.is_empty(), "{}: no diagnostic", path.display());
        let sources = load(&path);
        for item in &d.items {
            let problem = item.problem();
            let file = &sources.files[problem.span.file];
            assert!(
                problem.span.start <= file.text.len(),
                "{}: span outside the file",
                item.location()
            );
            let (line, col) = file.line_col(problem.span.start);
            assert_eq!(item.location(), format!("{}:{line}:{col}", file.name));
            assert!(
                problem.help.is_some(),
                "{}: `{}` has no help line",
                item.location(),
                problem.message
            );
        }
        let rendered = d.render_plain();
        for item in &d.items {
            let word = match item.problem().is_error() {
                true => "error",
                false => "warning",
            };
            assert!(
                rendered.contains(&format!("{word}: {}: ", item.location())),
                "{}: rendered without its location",
                item.location()
            );
        }
        insta::with_settings!({
            input_file => &path,
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("diagnostic_{}", stem(&path)), rendered);
        });
    }
}

#[test]
fn one_run_reports_every_error() {
    let d = diagnostics(&root().join("fixtures/invalid/many_errors.yaml"));
    let codes: Vec<&str> = d.items.iter().map(|i| i.code()).collect();
    assert_eq!(
        codes,
        [
            "strata::expected_bool",
            "strata::unknown_enum_value",
            "strata::unknown_key",
            "strata::unknown_entity",
            "strata::unknown_field",
            "strata::expected_duration",
        ]
    );
}

#[test]
fn misspellings_get_a_did_you_mean() {
    let cases = [
        ("unknown_key.yaml", "did you mean `fields`?"),
        ("misspelt_type.yaml", "did you mean `string`?"),
        ("sql_type_name.yaml", "did you mean `timestamptz`?"),
        ("unknown_entity_reference.yaml", "did you mean `Strategy`?"),
        ("unknown_field_in_index.yaml", "did you mean `symbol`?"),
        ("unknown_field_in_query.yaml", "did you mean `symbol`?"),
        ("unknown_field_in_key.yaml", "did you mean `name`?"),
        ("unknown_store.yaml", "did you mean `main`?"),
        ("unknown_store_kind.yaml", "did you mean `postgres`?"),
        ("enum_default_not_member.yaml", "did you mean `CANCELLED`?"),
        ("unknown_enum_value_in_query.yaml", "did you mean `NEW`?"),
    ];
    for (file, help) in cases {
        let d = diagnostics(&root().join("fixtures/invalid").join(file));
        let helps: Vec<&str> = (d.items.iter())
            .filter_map(|i| i.problem().help.as_deref())
            .collect();
        assert!(helps.contains(&help), "{file}: {helps:?}");
    }
}

#[test]
fn sql_reserved_words_are_valid_names_and_quoted() {
    let path = root().join("fixtures/language/reserved_words.yaml");
    let model =
        strata_codegen::compile(&load(&path)).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    let order = model.entity("Order").expect("Order");
    assert_eq!(order.name.sql, "order");
    assert!(order.field("user").is_some() && order.field("group").is_some());
    assert_eq!(model.entity("User").expect("User").name.sql, "user");
    assert_eq!(
        model.entity("GroupRow").expect("GroupRow").name.sql,
        "group"
    );
    let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
    let sql: String = (files.files.iter())
        .filter(|(path, _)| path.ends_with(".sql"))
        .map(|(_, text)| text.as_str())
        .collect();
    for quoted in ["\"order\"", "\"user\"", "\"group\""] {
        assert!(sql.contains(quoted), "DDL quotes {quoted}:\n{sql}");
    }
}

/// The `strata` binary next to this test's executable (`target/<profile>/strata`),
/// built (or found up to date) first: `cargo test` builds the library and the
/// tests, not the binary of another package.
fn strata_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", "strata-codegen", "--bin", "strata"]);
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.current_dir(root()).status().expect("run cargo build");
    assert!(status.success(), "building the strata binary failed");
    dir.join(format!("strata{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn strata_check_exits_1_with_located_diagnostics_for_each_broken_schema() {
    let bin = strata_bin();
    for path in invalid_fixtures() {
        let out = Command::new(&bin)
            .arg("check")
            .arg(&path)
            .output()
            .expect("run strata check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}:\n{stderr}", path.display());
        let located = stderr.lines().any(|l| {
            l.starts_with("error: ")
                && l.split(':')
                    .nth(2)
                    .is_some_and(|n| n.parse::<usize>().is_ok())
        });
        assert!(located, "{}: no file:line:col in\n{stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let ok = Command::new(&bin)
        .arg("check")
        .arg(root().join("../schema"))
        .output()
        .expect("run strata check");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
