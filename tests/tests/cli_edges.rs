//! The `strata` command line where a newcomer found it wanting: output into
//! a pipe its reader has closed (`strata … | head -2`, also `2>&1 | head`),
//! arguments that cannot work (`health --timeout-ms 0`), options listed
//! where they do not apply, and which database each command uses.

mod pg_common;

use std::process::Stdio;

use pg_common::{strata_bin, TempDir};
use strata_tests::support::{ClickHouseDb, PgDatabase};

/// A schema with one PostgreSQL store at `url` and one sync rule to the
/// ClickHouse database `ch`.
fn schema(dir: &TempDir, url: &str, ch: &str) -> String {
    let path = dir.path().join("schema.yaml");
    std::fs::write(
        &path,
        format!(
            r#"version: 1
stores:
  main: {{ kind: postgres, url: "{url}" }}
  analytics: {{ kind: clickhouse, url: "http://127.0.0.1:8123", database: {ch}, server_version: "18.16" }}
entities:
  Book:
    table: book
    store: main
    key: id
    fields:
      id: {{ type: i64 }}
      title: {{ type: string(40) }}
sync:
  - {{ from: Book, to: analytics }}
"#
        ),
    )
    .expect("write the schema");
    path.to_string_lossy().into_owned()
}

/// Runs `strata args` with DATABASE_URL unset: (exit code, stdout, stderr).
fn strata(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(strata_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `strata args` with stdout a pipe whose reader is already gone, as
/// in `strata … | head -0`: (exit code, stderr). The shell's `true` exits at
/// once; `strata` starts 200 ms later, so every write it makes meets a
/// closed pipe.
fn strata_into_closed_pipe(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"{ sleep 0.2; "$0" "$@"; echo "code=$?" >&2; } | true"#)
        .arg(strata_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .output()
        .expect("run sh");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("code="))
        .and_then(|c| c.parse().ok())
        .unwrap_or(-1);
    (code, err)
}

/// Runs `strata args` with stdout and stderr one pipe whose reader is
/// already gone (`strata … 2>&1 | head -0`): the exit code, which the
/// shell writes to a file.
fn strata_into_closed_pipe_both(dir: &TempDir, args: &[&str]) -> i32 {
    let file = dir.path().join("code");
    let _ = std::fs::remove_file(&file);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"{ sleep 0.2; "$0" "$@"; echo $? > "$CODE_FILE"; } 2>&1 | true"#)
        .arg(strata_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .env("CODE_FILE", &file)
        .status()
        .expect("run sh");
    assert!(status.success());
    let code = std::fs::read_to_string(&file).expect("the code file");
    code.trim().parse().expect("a number")
}

#[test]
fn diagnostics_survive_a_closed_stderr() {
    let dir = TempDir::new("cli_closed_stderr");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nstores:\n  main: { kind: postgres, pool: { max: 99999999999 } }\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    assert_eq!(strata(&["check", bad]).0, 1);
    assert_eq!(strata_into_closed_pipe_both(&dir, &["check", bad]), 1);
    assert_eq!(
        strata_into_closed_pipe_both(&dir, &["check", bad, "--short"]),
        1
    );
    assert_eq!(strata_into_closed_pipe_both(&dir, &["schema-json"]), 0);
}

#[tokio::test]
async fn every_command_that_prints_survives_a_closed_stdout() {
    let db = PgDatabase::new().await;
    let ch = ClickHouseDb::new();
    let dir = TempDir::new("cli_closed_stdout");
    let schema = schema(&dir, &db.url, &ch.name);
    let model =
        strata_codegen::compile_str("schema.yaml", &std::fs::read_to_string(&schema).unwrap())
            .expect("the schema compiles");
    ch.create_tables(&model, "analytics", |_| true).await;
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).expect("mkdir");
    let (code, _, err) = strata(&[
        "migrate",
        "diff",
        &schema,
        "--dir",
        migrations.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let mig = migrations.to_str().unwrap();
    let (code, _, err) = strata(&["migrate", "apply", "--dir", mig, "--database-url", &db.url]);
    assert_eq!(code, 0, "{err}");
    let commands: Vec<Vec<&str>> = vec![
        vec!["schema-json"],
        vec!["--help"],
        vec!["sync", "status", &schema],
        vec!["sync", "verify", &schema],
        vec!["migrate", "status", "--dir", mig, "--database-url", &db.url],
        vec!["health", &schema],
        vec!["health", &schema, "--json"],
    ];
    for args in commands {
        let (usual, out, err) = strata(&args);
        assert!(!out.is_empty(), "{args:?} prints to stdout: {err}");
        let (code, err) = strata_into_closed_pipe(&args);
        assert_eq!(code, usual, "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn health_refuses_a_zero_timeout() {
    let db = PgDatabase::new().await;
    let dir = TempDir::new("cli_health_zero");
    let schema = schema(&dir, &db.url, "cli_edges_unused");
    let (code, out, err) = strata(&["health", &schema, "--timeout-ms", "0"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--timeout-ms") && out.is_empty(), "{err}");
}

#[tokio::test]
async fn health_latency_agrees_with_the_status_at_every_timeout() {
    let db = PgDatabase::new().await;
    let dir = TempDir::new("cli_health_latency");
    let schema = schema(&dir, &db.url, "cli_edges_unused");
    let (mut up, mut late) = (0, 0);
    for ms in [1u64, 2, 3, 5, 8, 20, 2_000] {
        let (_, out, err) = strata(&["health", &schema, "--json", "--timeout-ms", &ms.to_string()]);
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        for store in report["stores"].as_array().expect("stores") {
            for s in store["servers"].as_array().expect("servers") {
                let latency = s["latency_ms"].as_f64().expect("latency");
                if s["up"] == true {
                    up += 1;
                    assert!(latency <= ms as f64, "{ms} ms: up after {latency} ms: {s}");
                } else if s["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("no answer within"))
                {
                    late += 1;
                    assert!(
                        latency >= ms as f64,
                        "{ms} ms: timed out after {latency} ms: {s}"
                    );
                    assert_eq!(s["error"], format!("no answer within {ms} ms"), "{s}");
                }
            }
        }
    }
    assert!(
        up >= 2 && late >= 1,
        "both outcomes seen: {up} up, {late} timed out"
    );
}

#[test]
fn each_sync_command_lists_only_the_options_it_uses() {
    for cmd in ["status", "verify", "drop"] {
        let (code, out, _) = strata(&["sync", cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(
            !out.contains("--chunk-rows") && !out.contains("--snapshot-workers"),
            "{cmd}: {out}"
        );
        assert!(out.contains("--database-url"), "{cmd}: {out}");
    }
    let (_, out, _) = strata(&["sync", "run", "--help"]);
    assert!(
        out.contains("--chunk-rows") && out.contains("--snapshot-workers"),
        "{out}"
    );
}

/// `--metrics-addr` takes `host:port` (`tests/tests/sync_metrics.rs` serves
/// on `localhost:0`); a bad one is a usage error that says what it wants,
/// before anything connects.
#[test]
fn sync_run_says_what_metrics_addr_takes() {
    let dir = TempDir::new("cli_metrics_addr");
    let s = schema(&dir, "postgres://127.0.0.1:1/none", "none");
    for bad in ["localhost", "localhost:notaport", "127.0.0.1"] {
        let (code, _, err) = strata(&["sync", "run", &s, "--metrics-addr", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains(&format!("--metrics-addr {bad}: ")) && err.contains("expected host:port"),
            "{bad}: {err}"
        );
    }
}

/// Runs `strata args` with `DATABASE_URL` set to `env`.
fn strata_with_env(args: &[&str], env: &str) -> (i32, String, String) {
    let out = std::process::Command::new(strata_bin())
        .args(args)
        .env("DATABASE_URL", env)
        .output()
        .expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(user, url with a password, the password)` of a `postgres://user[:pw]@…`
/// URL: its own password when it has one, else `hunter2` added.
fn with_password(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.split_once('@').expect("the test URL has a user");
    match userinfo.split_once(':') {
        Some((user, pw)) => (user.into(), url.into(), pw.into()),
        None => (
            userinfo.into(),
            format!("{scheme}://{userinfo}:hunter2@{host}"),
            "hunter2".into(),
        ),
    }
}

#[tokio::test]
async fn every_command_that_connects_names_its_database_and_where_the_url_came_from() {
    let db = PgDatabase::new().await;
    let ch = ClickHouseDb::new();
    let dir = TempDir::new("cli_which_database");
    // The schema's `url:` names a database that does not exist: a command
    // that used it instead of DATABASE_URL would fail.
    let missing = db.url.replace(&db.name, "strata_no_such_database");
    let schema = schema(&dir, &missing, &ch.name);
    let migrations = dir.path().join("migrations");
    let mig = migrations.to_str().unwrap();
    let (code, _, err) = strata(&["migrate", "diff", &schema, "--dir", mig]);
    assert_eq!(code, 0, "{err}");
    // The same URL with a password, which must never be printed: the
    // server's own when DATABASE_URL carries one, else a made-up one (a
    // `trust` server accepts any).
    let (user, with_pw, password) = with_password(&db.url);
    let place = format!("/{} (user {user})", db.name);
    for args in [
        vec!["migrate", "apply", &schema, "--dir", mig],
        vec!["migrate", "status", &schema, "--dir", mig],
        vec!["sync", "status", &schema, "--clickhouse-database", &ch.name],
    ] {
        let (code, out, err) = strata_with_env(&args, &with_pw);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        let line = err
            .lines()
            .find(|l| l.contains(&place))
            .unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(line.ends_with("from DATABASE_URL"), "{args:?}: {line}");
        assert!(
            !err.contains(&password) && !out.contains(&password),
            "{args:?}: {err}"
        );
        // --database-url comes first.
        let mut flagged = args.clone();
        flagged.extend(["--database-url", &with_pw]);
        let (code, _, err) = strata_with_env(&flagged, &missing);
        assert_eq!(code, 0, "{flagged:?}: {err}");
        assert!(
            err.lines()
                .any(|l| l.contains(&place) && l.ends_with("from --database-url")),
            "{flagged:?}: {err}"
        );
    }
    // `health` checks what the application's connect_*() reach: the
    // store's `url:`, also when DATABASE_URL is set; --database-url first.
    let health = ["health", schema.as_str(), "--optional", "analytics"];
    let (code, _, err) = strata_with_env(&health, &db.url);
    assert_eq!(code, 1, "the schema's database does not exist: {err}");
    assert!(
        err.contains(&format!(
            "/strata_no_such_database (user {user}) from the `url:` of store `main`"
        )),
        "{err}"
    );
    let flagged = [&health[..], &["--database-url", &with_pw]].concat();
    let (code, _, err) = strata_with_env(&flagged, &missing);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(&place) && l.ends_with("from --database-url")),
        "{err}"
    );
    assert!(!err.contains(&password), "{err}");
}

/// Every command that takes a database URL refuses one that is not
/// PostgreSQL's with the same words and exit 2, before connecting, wherever
/// the URL comes from: --database-url, DATABASE_URL, a postgres store's
/// `url:` or one of its `replicas:` (`health` took `mysql://h/db` for a
/// PostgreSQL server at `h` and reported it up, issue 9).
#[test]
fn every_command_refuses_a_database_url_that_is_not_postgres() {
    let dir = TempDir::new("cli_not_postgres");
    let good = schema(&dir, "postgres://postgres@127.0.0.1:1/none", "none");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let m = migrations.to_str().unwrap();
    let refused = |args: &[&str], env: Option<&str>, bad: &str| {
        let (code, _, err) = match env {
            Some(e) => strata_with_env(args, e),
            None => strata(args),
        };
        let scheme = bad.split_once("://").unwrap().0;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "the database URL is a `{scheme}://` URL: strata works with PostgreSQL only"
            )),
            "{args:?}: {err}"
        );
        assert!(!err.contains("secretpw"), "{args:?} echoes the URL: {err}");
        err
    };
    for bad in [
        "mysql://app:secretpw@127.0.0.1:5432/app",
        "http://app:secretpw@127.0.0.1:5432/app",
    ] {
        // --database-url, on every command that takes it.
        let commands: [&[&str]; 10] = [
            &["health", &good],
            &["migrate", "status", &good, "--dir", m],
            &["migrate", "apply", &good, "--dir", m],
            &["migrate", "diff", &good, "--dir", m],
            &["sync", "run", &good],
            &["sync", "status", &good],
            &["sync", "verify", &good],
            &["sync", "drop", &good],
            &["sync", "recopy", &good, "--entity", "Book"],
            &["sync", "consume", &good, "--group", "g"],
        ];
        for args in commands {
            refused(&[args, &["--database-url", bad]].concat(), None, bad);
        }
        // DATABASE_URL (`health` reads only the stores' `url:`).
        refused(&["migrate", "status", &good, "--dir", m], Some(bad), bad);
        refused(&["sync", "status", &good], Some(bad), bad);
        // A store's `url:`.
        let d = TempDir::new("cli_not_postgres_url");
        let s = schema(&d, bad, "none");
        for args in [
            &["health", s.as_str()][..],
            &["migrate", "status", &s, "--dir", m],
            &["sync", "status", &s],
        ] {
            let err = refused(args, None, bad);
            assert!(err.contains("store `main`, its `url:`"), "{err}");
        }
        // A replica, also under --database-url (it replaces only `url:`).
        let d = TempDir::new("cli_not_postgres_replica");
        let s = d.path().join("schema.yaml");
        std::fs::write(
            &s,
            format!(
                r#"version: 1
stores:
  main: {{ kind: postgres, url: "postgres://postgres@127.0.0.1:1/none", replicas: ["{bad}"] }}
entities:
  Book:
    store: main
    key: id
    fields:
      id: {{ type: i64 }}
"#
            ),
        )
        .unwrap();
        let s = s.to_str().unwrap();
        for args in [
            &["health", s][..],
            &[
                "health",
                s,
                "--database-url",
                "postgres://postgres@127.0.0.1:1/x",
            ],
        ] {
            let err = refused(args, None, bad);
            assert!(
                err.contains("store `main`, its replica 1 (`replicas:`)"),
                "{err}"
            );
        }
    }
}
