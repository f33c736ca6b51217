//! `strata sync` refuses a server that is not set up for logical decoding,
//! saying what to set: a private PostgreSQL 15 with `wal_level = replica`
//! (started here on a port of its own, stopped at the end; the shared
//! server on 5432 is never touched).

mod sync_common;

use std::process::Command;

use strata_sdk::sync::{self, RunOptions, SyncError};
use sync_common::SCHEMA;

const BIN: &str = "/usr/lib/postgresql/15/bin";

struct PrivatePg {
    dir: std::path::PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> Option<PrivatePg> {
        if !std::path::Path::new(BIN).exists() {
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("strata_sync_pg_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = 20_000 + (std::process::id() % 10_000) as u16;
        let as_pg = |cmd: String| {
            let ok = Command::new("su")
                .args(["postgres", "-c", &cmd])
                .status()
                .unwrap()
                .success();
            assert!(ok, "{cmd}");
        };
        Command::new("chown")
            .args(["postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
        as_pg(format!(
            "{BIN}/initdb -D {}/data -A trust -U postgres >/dev/null",
            dir.display()
        ));
        std::fs::write(
            dir.join("data/postgresql.auto.conf"),
            format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\n",
                dir.display()
            ),
        )
        .unwrap();
        as_pg(format!(
            "{BIN}/pg_ctl -D {0}/data -l {0}/log -w start >/dev/null",
            dir.display()
        ));
        Some(PrivatePg { dir, port })
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args([
                "postgres",
                "-c",
                &format!(
                    "{BIN}/pg_ctl -D {}/data -m immediate -w stop >/dev/null",
                    self.dir.display()
                ),
            ])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_server_without_logical_decoding_is_refused_with_what_to_set() {
    let Some(pg) = PrivatePg::start() else {
        eprintln!("skipped: no PostgreSQL 15 binaries in {BIN}");
        return;
    };
    let model = strata_codegen::compile_str("schema.yaml", SCHEMA).unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let u = url.clone();
    let urls = move |store: &str| -> Result<String, String> {
        Ok(if store == "main" {
            u.clone()
        } else {
            "http://127.0.0.1:8123".into()
        })
    };
    let p = strata_codegen::sync_pipeline::pipelines(&model, &urls, &Default::default())
        .unwrap()
        .remove(0);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = sync::run(&p, RunOptions::default().with_progress(false), rx)
        .await
        .expect_err("refused");
    assert!(matches!(err, SyncError::NotConfigured(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("wal_level is `replica`")
            && msg.contains("ALTER SYSTEM SET wal_level = logical")
            && msg.contains("restart"),
        "{msg}"
    );
    // Nothing was created on the refused server.
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let pubs: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_publication")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(pubs, 0);
}
