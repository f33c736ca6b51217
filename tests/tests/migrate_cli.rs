//! The edges of the `strata` command line a first-time user meets: bad
//! database URLs, a missing schema path, `--help`, an empty migrations
//! folder, the store's `url:` when DATABASE_URL is unset, and PostgreSQL's
//! DETAIL/HINT in a failed migration.

mod pg_common;

use pg_common::{strata, strata_bin, TempDir, TestDb};

/// Runs `strata` with DATABASE_URL unset and `env` set.
fn strata_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(strata_bin());
    cmd.args(args).env_remove("DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_database_urls_are_usage_errors_that_do_not_echo_the_password() {
    let dir = TempDir::new("cli_urls");
    for cmd in ["apply", "status"] {
        for (url, says) in [
            (
                "mysql://root:hunter2@127.0.0.1/app",
                "`mysql://` URL: strata works with PostgreSQL only",
            ),
            (
                "postgres://u:hunter2@127.0.0.1:notaport/app",
                "the database URL is not valid",
            ),
            ("hunter2", "the database URL is not a URL"),
        ] {
            let (code, _, err) =
                strata(&["migrate", cmd, "--dir", dir.str(), "--database-url", url]);
            assert_eq!(code, 2, "{cmd} {url}: {err}");
            assert!(
                err.starts_with("error: ") && err.contains(says),
                "{cmd} {url}: {err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}

#[test]
fn an_unreachable_server_is_named_without_the_password() {
    let dir = TempDir::new("cli_unreachable");
    let (code, _, err) = strata(&[
        "migrate",
        "status",
        "--dir",
        dir.str(),
        "--database-url",
        "postgres://someone:hunter2@127.0.0.1:1/appdb",
    ]);
    assert_eq!(code, 3, "{err}");
    // First which database and why, then the error.
    let (first, rest) = err.split_once('\n').unwrap_or_default();
    assert_eq!(
        first,
        "strata migrate status: database 127.0.0.1:1/appdb (user someone) from --database-url"
    );
    assert!(
        rest.starts_with("error: cannot connect to 127.0.0.1:1 (database appdb, user someone): "),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_missing_schema_path_is_one_error_line() {
    let (code, _, err) = strata(&["check", "/no/such/schema.yaml"]);
    assert_eq!(code, 2);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: cannot read `/no/such/schema.yaml`: No such file or directory (os error 2)"],
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn help_describes_every_argument() {
    for (args, names) in [
        (
            &["generate", "--help"][..],
            &["<SCHEMA>", "--out <OUT>"][..],
        ),
        (&["check", "--help"][..], &["<SCHEMA>"][..]),
        (
            &["migrate", "diff", "--help"][..],
            &["<SCHEMA>", "--dir <DIR>", "--database-url"][..],
        ),
        (
            &["migrate", "apply", "--help"][..],
            &["[SCHEMA]", "--dir <DIR>", "--store"][..],
        ),
        (
            &["migrate", "status", "--help"][..],
            &["[SCHEMA]", "--dir <DIR>", "--store"][..],
        ),
    ] {
        let (code, out, _) = strata(args);
        assert_eq!(code, 0);
        for name in names {
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("{args:?}: no {name} in\n{out}"));
            let described = line.trim_start()[name.len()..].trim();
            assert!(
                described.len() > 10,
                "{args:?}: {name} undescribed: {line:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_empty_folder_is_reported_the_same_by_apply_and_status() {
    let db = TestDb::new().await;
    let dir = TempDir::new("cli_empty");
    for cmd in ["apply", "status"] {
        let (code, out, err) = strata(&[
            "migrate",
            cmd,
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ]);
        assert_eq!(code, 0, "{cmd}: {err}");
        assert!(out.is_empty(), "{cmd}: {out}");
        let (first, rest) = err.split_once('\n').unwrap_or_default();
        assert!(first.ends_with("from --database-url"), "{cmd}: {err}");
        assert!(
            rest.starts_with(&format!("no migrations in {}", dir.str())),
            "{cmd}: {err}"
        );
    }
    let mut conn = db.connect().await;
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('strata_migrations')::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(table, None, "apply of nothing creates nothing");
}

#[tokio::test]
async fn apply_uses_the_stores_url_when_database_url_is_unset() {
    let db = TestDb::new().await;
    let dir = TempDir::new("cli_url");
    let schemas = TempDir::new("cli_url_schema");
    let schema = schemas.path().join("s.yaml");
    std::fs::write(
        &schema,
        "stores:\n  db: { kind: postgres, url: \"${STRATA_CLI_TEST_URL}\" }\nentities:\n  Item:\n    fields:\n      id: i64\n",
    )
    .unwrap();
    let schema = schema.display().to_string();
    let (code, _, err) = strata(&["migrate", "diff", &schema, "--dir", dir.str()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = strata_env(&["migrate", "apply", &schema, "--dir", dir.str()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the url of store `db` (`${STRATA_CLI_TEST_URL}`) needs the environment variable STRATA_CLI_TEST_URL"), "{err}");
    let (code, _, err) = strata_env(&["migrate", "apply", "--dir", dir.str()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no database: pass --database-url, set DATABASE_URL, or give the schema"),
        "{err}"
    );
    let env = [("STRATA_CLI_TEST_URL", db.url.as_str())];
    let (code, _, err) = strata_env(&["migrate", "apply", &schema, "--dir", dir.str()], &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 0001_init"), "{err}");
    let (code, out, _) = strata_env(&["migrate", "status", &schema, "--dir", dir.str()], &env);
    assert_eq!(code, 0);
    assert!(out.starts_with("0001_init\tapplied"), "{out}");
}

#[tokio::test]
async fn a_failed_migration_keeps_postgres_detail_and_hint() {
    let db = TestDb::new().await;
    let dir = TempDir::new("cli_hint");
    std::fs::write(
        dir.path().join("0001_call.sql"),
        "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1), (1);\n",
    )
    .unwrap();
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 3);
    assert!(
        err.contains("at line 2: INSERT INTO t VALUES (1), (1);"),
        "{err}"
    );
    assert!(
        err.contains("\nDETAIL: Key (id)=(1) already exists."),
        "{err}"
    );
    std::fs::write(
        dir.path().join("0001_call.sql"),
        "SELECT no_such_function(1);\n",
    )
    .unwrap();
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 3);
    assert!(
        err.contains("\nHINT: No function matches the given name and argument types."),
        "{err}"
    );
}

/// `strata sync` takes the same URLs: a non-PostgreSQL one is a usage error
/// (exit 2) at once, not retried as a PostgreSQL server forever.
#[test]
fn sync_commands_refuse_a_database_url_that_is_not_postgres() {
    let dir = TempDir::new("cli_sync_urls");
    let schema = dir.path().join("s.yaml");
    std::fs::write(
        &schema,
        "stores:\n  main: { kind: postgres }\n  ch: { kind: clickhouse }\nentities:\n  A:\n    fields:\n      id: i64\nsync:\n  - { from: A, to: ch }\n",
    )
    .unwrap();
    let schema = schema.to_str().unwrap();
    for cmd in ["run", "status", "verify"] {
        let url = "mysql://root:hunter2@127.0.0.1/app";
        let (code, _, err) = strata(&["sync", cmd, schema, "--database-url", url]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(
            err.contains("strata works with PostgreSQL only"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}
