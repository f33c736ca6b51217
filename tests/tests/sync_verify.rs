//! `verify` finds every kind of difference, whether it reads a table in
//! one piece or in buckets of the key's hash (the same keys fall in the
//! same bucket on both servers), and counts every row once.

mod sync_common;

use std::time::Duration;

use strata_sdk::sync::{self, verify::DiffKind, RunOptions};
use sync_common::{insert_accounts, Fixture, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_missing_extra_and_different_rows_in_any_bucketing() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 300).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    for rows in [1_000_000, 50, 7] {
        let r = sync::verify_in_buckets(&f.pipeline, None, rows)
            .await
            .unwrap();
        assert!(r.equal(), "{rows}: {:?}", r.differences);
        assert_eq!(
            (r.tables[0].source_rows, r.tables[0].target_rows),
            (300, 300)
        );
    }
    // Break the copy behind the sync's back: a row lost, a row changed
    // at the source, a row the source deleted, a row it never had.
    let db = &f.ch.name;
    f.ch_query(&format!("ALTER TABLE `{db}`.account DELETE WHERE id = 5"))
        .await;
    let cols: Vec<String> = (f.pipeline.tables[0].columns.iter())
        .map(|c| format!("`{}`", c.name))
        .chain(["_version".to_string(), "_deleted".to_string()])
        .collect();
    let select: Vec<String> = cols
        .iter()
        .map(|c| match c.as_str() {
            "`id`" => "toInt64(9999)".to_string(),
            other => other.to_string(),
        })
        .collect();
    f.ch_query(&format!(
        "INSERT INTO `{db}`.account ({}) SELECT {} FROM `{db}`.account WHERE id = 6",
        cols.join(", "),
        select.join(", ")
    ))
    .await;
    sqlx::query("UPDATE account SET name = 'changed' WHERE id = 7")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("DELETE FROM account WHERE id = 8")
        .execute(&mut c)
        .await
        .unwrap();
    // The mutation is asynchronous.
    for _ in 0..100 {
        let n = f
            .ch_query(&format!(
                "SELECT count() FROM `{db}`.account WHERE id = 5 FORMAT TSV"
            ))
            .await;
        if n.trim() == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for rows in [1_000_000, 50, 7] {
        let r = sync::verify_in_buckets(&f.pipeline, None, rows)
            .await
            .unwrap();
        let mut got: Vec<(String, DiffKind)> = r
            .differences
            .iter()
            .map(|d| (d.key.clone(), d.kind.clone()))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("5".to_string(), DiffKind::Missing),
                ("7".to_string(), DiffKind::Differs),
                ("8".to_string(), DiffKind::Extra),
                ("9999".to_string(), DiffKind::Extra),
            ],
            "buckets of {rows}"
        );
        assert_eq!(
            (r.tables[0].source_rows, r.tables[0].target_rows),
            (299, 300)
        );
    }
}
