//! Helpers of the operations tests: the shared streaming replica on
//! 127.0.0.1:5433 (pausing its replay, always resumed), and a private
//! primary + streaming replica in a temporary folder that a test may stop.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::Connection;

/// Tests that pause the shared replica's replay hold this, one at a time.
pub static REPLICA_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shared replica's URL (`REPLICA_URL`) with database `db`.
pub fn replica_url(db: &str) -> String {
    let base = std::env::var("REPLICA_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433/postgres".to_string());
    let cut = base.rfind('/').unwrap_or(base.len());
    format!("{}/{db}", &base[..cut])
}

/// Waits (at most 30 s) until `url` answers and has `table`: the replica
/// has replayed the database's creation and its DDL.
pub async fn wait_for_replica(url: &str, table: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = sqlx::PgConnection::connect(url).await {
            let q = "SELECT to_regclass($1) IS NOT NULL";
            if let Ok((true,)) = sqlx::query_as(q).bind(table).fetch_one(&mut c).await {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never showed `{table}`");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn psql(port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-d", "postgres", "-qtAc", sql])
        .output()
        .map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// The shared replica's replay, paused until this is dropped (also when
/// the test panics): `pg_wal_replay_pause()` / `pg_wal_replay_resume()`.
pub struct PausedReplay {
    port: u16,
}

impl PausedReplay {
    pub async fn start() -> PausedReplay {
        Self::on(5433).await
    }
    pub async fn on(port: u16) -> PausedReplay {
        psql(port, "SELECT pg_wal_replay_pause()").expect("pause replay");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Paused once the startup process has seen the request.
        while psql(port, "SELECT pg_get_wal_replay_pause_state()").as_deref() != Ok("paused") {
            assert!(Instant::now() < deadline, "replay did not pause");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        PausedReplay { port }
    }
}

impl Drop for PausedReplay {
    fn drop(&mut self) {
        if let Err(e) = psql(self.port, "SELECT pg_wal_replay_resume()") {
            eprintln!("could not resume replay on :{}: {e}", self.port);
        }
    }
}

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private primary and a streaming replica of it (`pg_basebackup -R`),
/// on two free loopback ports, in a temporary folder; both are stopped and
/// the folder removed when this is dropped.
pub struct PrivatePair {
    dir: PathBuf,
    pub primary_port: u16,
    pub replica_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn as_postgres(cmd: &str) {
    let out = Command::new("su")
        .args(["postgres", "-c", cmd])
        .output()
        .expect("su runs");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePair {
    pub async fn start() -> PrivatePair {
        let dir =
            std::env::temp_dir().join(format!("strata-pair-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        assert!(Command::new("chown")
            .args(["postgres", &d.to_string()])
            .status()
            .unwrap()
            .success());
        let (pp, rp) = (free_port(), free_port());
        let pair = PrivatePair {
            dir: dir.clone(),
            primary_port: pp,
            replica_port: rp,
        };
        as_postgres(&format!(
            "{BIN}/initdb -D {d}/primary -A trust -U postgres >/dev/null"
        ));
        let conf = format!(
            "port = {pp}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\nwal_level = replica\nfsync = off\n"
        );
        std::fs::write(dir.join("primary/postgresql.auto.conf"), conf).unwrap();
        let hba = dir.join("primary/pg_hba.conf");
        let mut h = std::fs::read_to_string(&hba).unwrap();
        h.push_str("host replication all 127.0.0.1/32 trust\n");
        std::fs::write(&hba, h).unwrap();
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {d}/primary -l {d}/primary.log -w start >/dev/null"
        ));
        as_postgres(&format!(
            "{BIN}/pg_basebackup -h 127.0.0.1 -p {pp} -U postgres -D {d}/replica -R -X stream"
        ));
        let auto = dir.join("replica/postgresql.auto.conf");
        let conf = std::fs::read_to_string(&auto)
            .unwrap()
            .replace(&format!("port = {pp}\n"), &format!("port = {rp}\n"));
        std::fs::write(&auto, conf).unwrap();
        pair.start_replica();
        pair
    }
    pub fn primary_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.primary_port
        )
    }
    pub fn replica_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.replica_port
        )
    }
    pub async fn primary_conn(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.primary_url())
            .await
            .unwrap()
    }
    /// Stops the replica (fast shutdown: sessions are ended).
    pub fn stop_replica(&self) {
        let d = self.dir.display();
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {d}/replica -m fast -w stop >/dev/null"
        ));
    }
    pub fn start_replica(&self) {
        let d = self.dir.display();
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {d}/replica -l {d}/replica.log -w start >/dev/null"
        ));
    }
    /// Stops the primary (fast shutdown).
    pub fn stop_primary(&self) {
        let d = self.dir.display();
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {d}/primary -m fast -w stop >/dev/null"
        ));
    }
    pub fn start_primary(&self) {
        let d = self.dir.display();
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {d}/primary -l {d}/primary.log -w start >/dev/null"
        ));
    }
}

impl Drop for PrivatePair {
    fn drop(&mut self) {
        let d = self.dir.display();
        for node in ["replica", "primary"] {
            let _ = Command::new("su")
                .args([
                    "postgres",
                    "-c",
                    &format!("{BIN}/pg_ctl -D {d}/{node} -m immediate -w stop"),
                ])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
