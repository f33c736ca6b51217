//! A PostgreSQL that asks for a password (SCRAM-SHA-256, as Debian's
//! default for TCP does): the CLI and the SDK reach it through a
//! `DATABASE_URL` that carries the password, and a wrong password is a
//! connection error that names the server but never echoes the password.
//!
//! The server is a private one, made by `initdb` in a temporary folder on a
//! free loopback port and stopped when the test ends.

mod pg_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pg_common::TempDir;
use strata_sdk::postgres::PoolConfig;

const PASSWORD: &str = "s3cret-Pw_42";

/// A PostgreSQL server of this test only, with `scram-sha-256` for every
/// connection; stopped (immediate) when dropped.
struct PasswordServer {
    dir: PathBuf,
    port: u16,
}

fn bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL binaries installed");
    let mut dirs: Vec<PathBuf> = versions.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs.last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(name)
}

/// Runs `cmd` as the `postgres` user when the tests run as root (initdb
/// refuses root), as the current user otherwise.
fn as_postgres(cmd: &str) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    let status = if root.unwrap_or(false) {
        Command::new("su").args(["postgres", "-c", cmd]).status()
    } else {
        Command::new("sh").args(["-c", cmd]).status()
    };
    assert!(status.expect("run").success(), "failed: {cmd}");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl PasswordServer {
    fn start(dir: &Path) -> PasswordServer {
        let _ = Command::new("chown")
            .args(["postgres", dir.to_str().unwrap()])
            .status();
        let pw = dir.join("pw");
        std::fs::write(&pw, PASSWORD).expect("write the password file");
        let _ = Command::new("chown")
            .args(["postgres", pw.to_str().unwrap()])
            .status();
        let data = dir.join("data");
        as_postgres(&format!(
            "{} -D {} -U postgres -A scram-sha-256 --pwfile={} >/dev/null",
            bin("initdb").display(),
            data.display(),
            pw.display()
        ));
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n",
            dir.display()
        );
        let mut file = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        file.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), file).expect("write conf");
        as_postgres(&format!(
            "{} -D {} -l {} -w start >/dev/null",
            bin("pg_ctl").display(),
            data.display(),
            dir.join("log").display()
        ));
        PasswordServer {
            dir: dir.to_path_buf(),
            port,
        }
    }

    fn url(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for PasswordServer {
    fn drop(&mut self) {
        as_postgres(&format!(
            "{} -D {} -m immediate stop >/dev/null",
            bin("pg_ctl").display(),
            self.dir.join("data").display()
        ));
    }
}

fn migrations(dir: &TempDir) -> PathBuf {
    let m = dir.0.join("migrations");
    std::fs::create_dir_all(&m).expect("mkdir");
    std::fs::write(
        m.join("0001_init.sql"),
        "CREATE TABLE note (id bigint PRIMARY KEY, body text NOT NULL);\n",
    )
    .expect("write migration");
    m
}

#[tokio::test]
async fn the_cli_and_the_sdk_use_a_password_from_the_url() {
    let tmp = TempDir::new("pg_password");
    let server = PasswordServer::start(&tmp.0);
    let dir = migrations(&tmp);
    let url = server.url(PASSWORD);

    let (code, out, err) = pg_common::strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!format!("{out}{err}").contains(PASSWORD), "{out}{err}");

    // The SDK: a store URL template expanded from the environment at run time.
    std::env::set_var("STRATA_PW_TEST_URL", &url);
    let pool = PoolConfig::new("${STRATA_PW_TEST_URL}")
        .connect()
        .await
        .expect("connect with the password");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM note")
        .fetch_one(&pool)
        .await
        .expect("the migrated table is there");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_wrong_password_is_a_connection_error_without_the_password() {
    let tmp = TempDir::new("pg_password_wrong");
    let server = PasswordServer::start(&tmp.0);
    let dir = migrations(&tmp);
    let wrong = "not-the-Pw_99";

    let (code, _, err) = pg_common::strata(&[
        "migrate",
        "status",
        "--dir",
        dir.to_str().unwrap(),
        "--database-url",
        &server.url(wrong),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{}", server.port)), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains(wrong), "{err}");

    std::env::set_var("STRATA_PW_TEST_WRONG_URL", server.url(wrong));
    let e = PoolConfig::new("${STRATA_PW_TEST_WRONG_URL}")
        .connect()
        .await
        .expect_err("a wrong password must not connect");
    let text = e.to_string();
    assert!(matches!(e, strata_sdk::Error::Connection { .. }), "{e:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port)),
        "{text}"
    );
    assert!(!text.contains(wrong), "{text}");
}

/// Change capture's own replication connection speaks SCRAM-SHA-256 (the
/// default of PostgreSQL 14+ and Debian): it authenticates, checks the
/// server's signature, and runs a replication command; a wrong password is
/// the server's refusal, never echoing it.
#[tokio::test]
async fn the_replication_connection_authenticates_with_scram() {
    use strata_sdk::sync::wire::{ConnInfo, ReplConn};
    let tmp = TempDir::new("pg_password_repl");
    let server = PasswordServer::start(&tmp.0);

    let info = ConnInfo::parse(&server.url(PASSWORD)).expect("url parses");
    let mut c = ReplConn::connect(&info, "strata-test")
        .await
        .expect("SCRAM authentication on a replication connection");
    let rows = c
        .simple_query("IDENTIFY_SYSTEM")
        .await
        .expect("a replication command runs");
    assert_eq!(rows.len(), 1, "IDENTIFY_SYSTEM answers one row");

    let wrong = "not-the-Pw_99";
    let info = ConnInfo::parse(&server.url(wrong)).expect("url parses");
    let e = ReplConn::connect(&info, "strata-test")
        .await
        .err()
        .expect("a wrong password must not connect");
    let text = e.to_string();
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains(wrong), "{text}");
}
