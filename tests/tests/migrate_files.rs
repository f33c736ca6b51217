//! The migrations folder is read one way by `strata migrate diff`,
//! `strata migrate apply|status` and `strata_codegen::build`: the same files
//! are seen, the same names refused with the same message, and checksums do
//! not depend on line endings.

mod pg_common;

use pg_common::{strata, TempDir, TestDb};

const V1: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Task:\n    fields:\n      id: i64\n      title: text\n";
const V2: &str = "stores:\n  db: { kind: postgres }\nentities:\n  Task:\n    fields:\n      id: i64\n      title: text\n      done: { type: bool, default: false }\n";

fn diff(schema: &std::path::Path, dir: &TempDir, name: &str) -> (i32, String, String) {
    strata(&[
        "migrate",
        "diff",
        schema.to_str().unwrap(),
        "--dir",
        dir.str(),
        "--name",
        name,
    ])
}

fn db_cmd(cmd: &str, dir: &TempDir, db: &TestDb) -> (i32, String, String) {
    strata(&[
        "migrate",
        cmd,
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ])
}

fn build_error(dir: &TempDir) -> Result<String, String> {
    let out = TempDir::new("files_build_out");
    let schema = out.path().join("s.yaml");
    std::fs::write(&schema, V1).unwrap();
    strata_codegen::build::Build::new(&schema)
        .with_migrations(dir.path())
        .with_out_dir(out.path().join("gen"))
        .with_rerun_if_changed(false)
        .generate()
        .map(|o| std::fs::read_to_string(o.dir.join("modules.rs")).unwrap())
        .map_err(|e| e.to_string())
}

/// `0003_AddNotes.sql` (a hand-written file with upper-case letters) was
/// embedded and applied but ignored by `diff`, which then wrote a second
/// version 3. Now `diff` numbers after it, and all three see it.
#[tokio::test]
async fn a_hand_written_file_of_any_name_is_seen_by_diff_apply_and_build() {
    let db = TestDb::new().await;
    let dir = TempDir::new("files_odd");
    let schemas = TempDir::new("files_odd_schema");
    let s1 = schemas.path().join("v1.yaml");
    std::fs::write(&s1, V1).unwrap();
    assert_eq!(diff(&s1, &dir, "init").0, 0);
    std::fs::write(
        dir.path().join("0003_AddNotes.sql"),
        "CREATE TABLE notes (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let s2 = schemas.path().join("v2.yaml");
    std::fs::write(&s2, V2).unwrap();
    let (code, _, err) = diff(&s2, &dir, "done");
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("0004_done.sql").exists(), "{err}");
    assert!(!dir.path().join("0003_done.sql").exists());

    let (code, _, err) = db_cmd("apply", &dir, &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 0003_AddNotes"), "{err}");
    let (code, out, _) = db_cmd("status", &dir, &db);
    assert_eq!(code, 0);
    let listed: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(listed, ["0001_init", "0003_AddNotes", "0004_done"]);

    let modules = build_error(&dir).unwrap();
    for f in ["0001_init.sql", "0003_AddNotes.sql", "0004_done.sql"] {
        assert!(modules.contains(f), "{f} not embedded:\n{modules}");
    }
}

/// A `.sql` file whose name the runner refuses was skipped by `diff`; now
/// `diff`, `apply`, `status` and the build refuse it with one message.
#[tokio::test]
async fn a_refused_name_is_refused_everywhere_with_one_message() {
    let db = TestDb::new().await;
    let schemas = TempDir::new("files_bad_schema");
    let s1 = schemas.path().join("v1.yaml");
    std::fs::write(&s1, V1).unwrap();
    for (bad, message) in [
        (
            "init.sql",
            "`init.sql` is not a migration file name: expected `<version>_<name>.sql`, e.g. `0003_add_notes.sql`",
        ),
        (
            "01_again.sql",
            "two migrations have version 1: `0001_init.sql` and `01_again.sql`",
        ),
        (
            "0002_next.SQL",
            "`0002_next.SQL` is not a migration file name: it ends in another case of `.sql`; rename it to end in lowercase `.sql`",
        ),
    ] {
        let dir = TempDir::new("files_bad");
        assert_eq!(diff(&s1, &dir, "init").0, 0);
        std::fs::write(dir.path().join(bad), "SELECT 1;\n").unwrap();
        let expected = format!("error: {message}");
        for (what, (code, _, err)) in [
            ("diff", diff(&s1, &dir, "next")),
            ("apply", db_cmd("apply", &dir, &db)),
            ("status", db_cmd("status", &dir, &db)),
        ] {
            assert_eq!(code, 2, "{what} {bad}: {err}");
            assert_eq!(err.trim(), expected, "{what} {bad}");
        }
        assert_eq!(build_error(&dir).unwrap_err(), message);
        // Nothing was applied.
        let mut conn = db.connect().await;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('task', 'strata_migrations')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, 0, "{bad}");
    }
}

/// A Windows checkout turns an applied file's `\n` into `\r\n`: `status`
/// said CHANGED and `apply` refused. Now the file is the same file; a real
/// edit is still caught, and the no-transaction marker works with `\r\n`.
#[tokio::test]
async fn line_endings_do_not_change_an_applied_migration() {
    let db = TestDb::new().await;
    let dir = TempDir::new("files_crlf");
    let schemas = TempDir::new("files_crlf_schema");
    let s1 = schemas.path().join("v1.yaml");
    std::fs::write(&s1, V1).unwrap();
    assert_eq!(diff(&s1, &dir, "init").0, 0);
    let file = dir.path().join("0001_init.sql");
    let lf = std::fs::read_to_string(&file).unwrap();
    assert_eq!(db_cmd("apply", &dir, &db).0, 0);
    // The recorded checksum of an LF file is the SHA-256 of its bytes, as before.
    let mut conn = db.connect().await;
    let recorded: String =
        sqlx::query_scalar("SELECT checksum FROM strata_migrations WHERE version = 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(recorded, strata_sdk::migrate::files::checksum(&lf));
    let sum = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        recorded,
        String::from_utf8_lossy(&sum.stdout)[..64],
        "sha256sum of the file"
    );

    std::fs::write(&file, lf.replace('\n', "\r\n")).unwrap();
    std::fs::write(
        dir.path().join("0002_concurrent.sql"),
        "-- strata:no-transaction\r\nCREATE INDEX CONCURRENTLY task_title ON task (title);\r\n",
    )
    .unwrap();
    let (code, out, err) = db_cmd("status", &dir, &db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0001_init\tapplied"), "{out}");
    let (code, _, err) = db_cmd("apply", &dir, &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 0002_concurrent"), "{err}");

    std::fs::write(&file, lf.replace("title", "name").replace('\n', "\r\n")).unwrap();
    let (code, out, _) = db_cmd("status", &dir, &db);
    assert_eq!(code, 3);
    assert!(out.contains("0001_init\tCHANGED"), "{out}");
    let (code, _, err) = db_cmd("apply", &dir, &db);
    assert_eq!(code, 3);
    assert!(err.contains("has changed"), "{err}");
}
