//! Files that cannot be read as a schema (not UTF-8, too large) are broken
//! schemas like any other: a located diagnostic and exit code 1, not an I/O
//! error (exit 2) without a place.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata_unreadable_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, bytes).expect("write schema");
    path
}

/// The `strata` binary next to this test's executable, built first (as in
/// `diagnostics.rs`: `cargo test` does not build another package's binary).
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = build.current_dir(root).status().expect("run cargo build");
    assert!(status.success(), "building the strata binary failed");
    dir.join(format!("strata{}", std::env::consts::EXE_SUFFIX))
}

fn strata_check(path: &Path) -> (i32, String) {
    let out = Command::new(strata_bin())
        .args(["check", "--short"])
        .arg(path)
        .output()
        .expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_file_that_is_not_utf8_points_at_the_first_bad_byte() {
    // Latin-1 `é` (0xE9) in a doc string, as an editor set to Latin-1 saves it.
    let text = b"stores:\n  db: { kind: postgres }\nentities:\n  Book:\n    doc: caf\xe9\n    fields:\n      id: uuid\n";
    let path = scratch("latin1", text);
    let sources = strata_codegen::load(&path).expect("loads");
    let d = strata_codegen::compile(&sources).expect_err("not UTF-8");
    assert_eq!(d.items.len(), 1, "{}", d.render_short());
    assert!(
        d.items[0].location().ends_with(":5:13"),
        "{}",
        d.items[0].location()
    );
    let (code, stderr) = strata_check(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("latin1.yaml:5:13: error[strata::not_utf8]"),
        "{stderr}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_a_located_error() {
    let mut text = b"stores:\n  db: { kind: postgres }\n".to_vec();
    text.resize(strata_codegen::MAX_FILE_BYTES + 1, b'#');
    let path = scratch("huge", &text);
    let (code, stderr) = strata_check(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("huge.yaml:1:1: error[strata::too_large]"),
        "{stderr}"
    );
}

#[test]
fn an_empty_schema_is_an_error() {
    let path = scratch("empty", b"# nothing yet\n");
    let (code, stderr) = strata_check(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("empty.yaml:1:1: error[strata::empty_schema]"),
        "{stderr}"
    );
}

/// A symbolic link from a schema folder back to itself (or a parent) made
/// loading recurse forever; hidden files (editor locks, `.git`) were read.
#[cfg(unix)]
#[test]
fn a_folder_with_a_symlink_loop_loads_once() {
    let dir = std::env::temp_dir().join(format!("strata_unreadable_{}_loop", std::process::id()));
    let inner = dir.join("inner");
    std::fs::create_dir_all(&inner).expect("temp dir");
    std::fs::write(
        dir.join("stores.yaml"),
        "stores:\n  db: { kind: postgres }\n",
    )
    .unwrap();
    std::fs::write(
        inner.join("book.yaml"),
        "entities:\n  Book:\n    fields:\n      id: uuid\n",
    )
    .unwrap();
    std::fs::write(dir.join(".#book.yaml"), "not: [yaml").unwrap();
    for (link, to) in [(dir.join("self"), &dir), (inner.join("back"), &dir)] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(to, &link).expect("symlink");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.clone();
    std::thread::spawn(move || {
        let _ = tx.send(strata_codegen::load(&path).map(|s| s.files.len()));
    });
    let loaded = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("loading finishes")
        .expect("loads");
    assert_eq!(loaded, 2, "each file once, hidden files skipped");
    let (code, stderr) = strata_check(&dir);
    assert_eq!(code, 0, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
