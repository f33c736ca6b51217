//! `strata generate --out` owns the files it writes: a later run removes
//! those it no longer produces (an entity, store or sync rule removed), and
//! never touches files it did not write.

mod pg_common;

use pg_common::{strata, TempDir};

const BOTH: &str = "stores:\n  db: { kind: postgres }\n  ch: { kind: clickhouse }\nentities:\n  Trade:\n    fields:\n      id: i64\n      px: f64\nsync:\n  - { from: Trade, to: ch }\n";
const PG_ONLY: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Trade:\n    fields:\n      id: i64\n      px: f64\n";

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_removed_store_takes_its_generated_files_with_it() {
    let tmp = TempDir::new("gen_out");
    let schema = tmp.path().join("s.yaml");
    let out = tmp.path().join("out");
    let run = |text: &str| {
        std::fs::write(&schema, text).unwrap();
        strata(&[
            "generate",
            schema.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (code, _, err) = run(BOTH);
    assert_eq!(code, 0, "{err}");
    let before = listing(&out);
    assert!(
        before.iter().any(|f| f.starts_with("clickhouse/")),
        "{before:?}"
    );
    std::fs::write(out.join("README.txt"), "mine").unwrap();
    std::fs::create_dir_all(out.join("clickhouse")).unwrap();
    std::fs::write(out.join("clickhouse/notes.sql"), "-- mine").unwrap();

    let (code, _, err) = run(PG_ONLY);
    assert_eq!(code, 0, "{err}");
    let after = listing(&out);
    let stale: Vec<&String> = before.iter().filter(|f| !after.contains(f)).collect();
    assert!(!stale.is_empty(), "{before:?} -> {after:?}");
    for f in &stale {
        assert!(
            err.contains(&format!("removed {}", out.join(f).display())),
            "{err}"
        );
    }
    // Exactly what a fresh run into an empty folder writes, plus the user's files.
    let fresh = tmp.path().join("fresh");
    let (code, _, _) = strata(&[
        "generate",
        schema.to_str().unwrap(),
        "--out",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let mut expected = listing(&fresh);
    expected.extend(["README.txt".to_string(), "clickhouse/notes.sql".to_string()]);
    expected.sort();
    assert_eq!(after, expected);
}
