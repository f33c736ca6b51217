use super::*;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "strata-migrate-files-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn names_and_versions() {
    for (name, v, n) in [
        ("0012_add_notes.sql", 12, "add_notes"),
        ("0003_AddNotes.sql", 3, "AddNotes"),
        ("20240101120000_a_b.sql", 20_240_101_120_000, "a_b"),
        ("0_x.sql", 0, "x"),
    ] {
        assert_eq!(parse_file_name(name).unwrap(), (v, n), "{name}");
    }
    for bad in [
        "init.sql",
        "_a.sql",
        "12.sql",
        "12_.sql",
        "x1_a.sql",
        "-1_a.sql",
        "0001_a.txt",
    ] {
        let err = parse_file_name(bad).unwrap_err();
        assert!(
            matches!(
                err,
                FilesError::BadFileName {
                    why: BadName::Shape,
                    ..
                }
            ),
            "{bad}"
        );
        assert_eq!(
            err.to_string(),
            format!("`{bad}` is not a migration file name: expected `<version>_<name>.sql`, e.g. `0003_add_notes.sql`")
        );
    }
    // A version above i64::MAX, and `.sql` in another case, say so.
    for (bad, why, says) in [
        (
            "99999999999999999999_a.sql",
            BadName::VersionTooLarge,
            "above 9223372036854775807",
        ),
        ("0005_a.SQL", BadName::ExtensionCase, "lowercase `.sql`"),
        ("0005_a.Sql", BadName::ExtensionCase, "lowercase `.sql`"),
    ] {
        let err = parse_file_name(bad).unwrap_err();
        assert!(
            matches!(err, FilesError::BadFileName { why: w, .. } if w == why),
            "{bad}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
    assert!(parse_file_name("9223372036854775807_max.sql").is_ok());
}

#[test]
fn a_sql_file_in_another_case_is_refused_not_skipped() {
    let dir = temp("case");
    std::fs::write(dir.join("0001_a.sql"), "SELECT 1;").unwrap();
    std::fs::write(dir.join("0002_b.SQL"), "SELECT 2;").unwrap();
    std::fs::write(dir.join("0003_c.sql.bak"), "SELECT 3;").unwrap();
    let err = read_dir(&dir).unwrap_err();
    assert!(
        matches!(&err, FilesError::BadFileName { file, why: BadName::ExtensionCase } if file == "0002_b.SQL"),
        "{err}"
    );
    std::fs::remove_file(dir.join("0002_b.SQL")).unwrap();
    let files = read_dir(&dir).unwrap();
    assert_eq!(files.len(), 1, "`.sql.bak` is not a migration");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_transaction_marker_with_any_line_ending() {
    for sql in [
        "-- x\n-- strata:no-transaction\nSELECT 1;",
        "-- x\r\n-- strata:no-transaction\r\nSELECT 1;\r\n",
        "\u{feff}-- strata:no-transaction\r\n",
        "\n  -- strata:no-transaction  \n",
    ] {
        assert!(no_transaction(sql), "{sql:?}");
    }
    for sql in [
        "SELECT 1;\n-- strata:no-transaction\n",
        "SELECT 1;\r\n-- strata:no-transaction\r\n",
        "-- strata:no-transactions\n",
    ] {
        assert!(!no_transaction(sql), "{sql:?}");
    }
}

#[test]
fn checksums_ignore_line_endings_but_not_edits() {
    let lf = "-- m\nCREATE TABLE t (id int);\n";
    let crlf = lf.replace('\n', "\r\n");
    // Unchanged for LF files: the SHA-256 of the bytes, as runners always recorded.
    assert_eq!(
        checksum(lf),
        "dcd40773a2ca61726ffc40fb75d57d24eeafa636b409c6d0c997e75c014c9627" // sha256sum
    );
    assert_eq!(checksum(&crlf), checksum(lf));
    // A record made from either checkout matches either checkout.
    assert!(checksum_matches(&sha256_hex(&crlf), lf));
    assert!(checksum_matches(&sha256_hex(lf), &crlf));
    // A real edit, with either ending, does not.
    let edited = lf.replace("int", "bigint");
    assert_ne!(checksum(&edited), checksum(lf));
    assert!(!checksum_matches(&checksum(lf), &edited));
    assert!(!checksum_matches(
        &checksum(lf),
        &edited.replace('\n', "\r\n")
    ));
    // A lone `\r` is content, not a line ending.
    assert_ne!(checksum("a\rb"), checksum("a\nb"));
}

#[test]
fn folders_are_read_in_version_order_and_checked() {
    let dir = temp("order");
    std::fs::write(dir.join("10_b.sql"), "SELECT 10;").unwrap();
    std::fs::write(dir.join("9_a.sql"), "SELECT 9;\r\n").unwrap();
    std::fs::write(dir.join("0011_C.sql"), "").unwrap();
    std::fs::write(dir.join("0011_C.catalog.json"), "{}").unwrap();
    std::fs::write(dir.join("notes.md"), "").unwrap();
    std::fs::create_dir(dir.join("0012_dir.sql")).unwrap();
    let files = read_dir(&dir).unwrap();
    let v: Vec<_> = files.iter().map(|f| (f.version, f.name.as_str())).collect();
    assert_eq!(v, [(9, "a"), (10, "b"), (11, "C")]);
    assert_eq!(
        files[0].path.as_deref(),
        Some(dir.join("9_a.sql").as_path())
    );
    assert_eq!(files[0].checksum, checksum("SELECT 9;\n"));

    std::fs::write(dir.join("init.sql"), "").unwrap();
    let err = read_dir(&dir).unwrap_err();
    assert!(
        matches!(&err, FilesError::BadFileName { file, .. } if file == "init.sql"),
        "{err}"
    );
    std::fs::remove_file(dir.join("init.sql")).unwrap();

    std::fs::write(dir.join("009_again.sql"), "").unwrap();
    let err = read_dir(&dir).unwrap_err();
    assert!(
        matches!(&err, FilesError::DuplicateVersion { version: 9, first, second }
            if first == "009_again.sql" && second == "9_a.sql"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn in_memory_files_follow_the_same_rules() {
    let files = from_files([("2_b.sql", "B"), ("1_a.sql", "A")]).unwrap();
    assert_eq!(files[0].file_name, "1_a.sql");
    assert!(matches!(
        from_files([("1_a.sql", ""), ("001_b.sql", "")]),
        Err(FilesError::DuplicateVersion { version: 1, .. })
    ));
    assert!(matches!(
        from_files([("a.sql", "")]),
        Err(FilesError::BadFileName { .. })
    ));
}

/// A file some Windows editors save with a UTF-8 byte-order mark: the mark
/// is not sent (PostgreSQL refused it as a syntax error at line 1, after
/// every reader had accepted the file), and the file is the same migration
/// as without it: same SQL, checksum and no-transaction marker.
#[test]
fn a_byte_order_mark_is_not_part_of_the_migration() {
    let plain = "-- strata:no-transaction\r\nCREATE INDEX CONCURRENTLY i ON t (a);\r\n";
    let with_bom = format!("\u{feff}{plain}");
    let a = MigrationFile::new("0002_x.sql", plain).unwrap();
    let b = MigrationFile::new("0002_x.sql", with_bom).unwrap();
    assert_eq!(b.sql, plain);
    assert_eq!(b.checksum, a.checksum);
    assert!(b.no_transaction);
    let dir = temp("bom");
    std::fs::write(
        dir.join("0001_init.sql"),
        "\u{feff}CREATE TABLE t (a int);\n",
    )
    .unwrap();
    let files = read_dir(&dir).unwrap();
    assert!(
        files[0].sql.starts_with("CREATE TABLE"),
        "{:?}",
        files[0].sql
    );
}
