//! A snapshot resumed after a crash, on a table rewritten in between
//! (`VACUUM FULL`, `CLUSTER`, a rewriting `ALTER TABLE`: a new file node,
//! so the planned page ranges no longer hold the same rows): the runner
//! sees the file node changed, forgets the table's chunks and copies it
//! again, and the copy ends equal to the source. Without the re-plan, the
//! chunks copied before the crash would name pages that now hold other
//! rows, and rows would be missing or copied twice.

mod pg_common;
mod sync_common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pg_common::{strata_bin, TempDir};
use sync_common::{insert_accounts, mid_snapshot, Fixture, SCHEMA};

fn start(schema: &str, f: &Fixture, log: &std::path::Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(strata_bin())
        .args(["sync", "run", schema, "--database-url", &f.pg.url])
        .args(["--clickhouse-database", &f.ch.name])
        .args(["--chunk-rows", "500", "--snapshot-workers", "1"])
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("start strata sync run")
}

#[tokio::test]
async fn a_table_rewritten_between_a_crash_and_the_resume_is_copied_again() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 30_000).await;
    let dir = TempDir::new("sync_replan");
    let schema = dir.path().join("schema.yaml");
    std::fs::write(&schema, SCHEMA).unwrap();
    let log = dir.path().join("run.log");

    let mut child = start(schema.to_str().unwrap(), &f, &log);
    mid_snapshot(&mut c, &f.pipeline.name).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Rows deleted from the front and the table rewritten: the pages the
    // done chunks named now hold other rows.
    for sql in [
        "DELETE FROM account WHERE id <= 5000",
        "VACUUM FULL account",
    ] {
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }

    let mut child = start(schema.to_str().unwrap(), &f, &log);
    f.caught_up(Duration::from_secs(120)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("was rewritten") && text.contains("copying it again"),
        "{text}"
    );
    f.assert_equal().await;
}
