//! Dead letters (`RunOptions::with_dead_letters`, `strata sync run
//! --dead-letter`): a change whose value the target cannot hold (NaN in a
//! decimal column, an `infinity` timestamp), in the snapshot or in the
//! stream, is recorded in `strata_sync.dead_letters` and the pipeline goes
//! on; the copy keeps the row as it was before the refused change, and a
//! later correction at the source is copied as usual. Without the option
//! the pipeline stops (tests/tests/sync_failure.rs).

mod pg_common;
mod sync_common;

use std::time::Duration;

use strata_sdk::sync::verify::DiffKind;
use strata_sdk::sync::{dead_letter, RunOptions};
use sync_common::Fixture;

const SCHEMA: &str = r#"
version: 1
stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
  analytics: { kind: clickhouse, url: "${CLICKHOUSE_URL:http://127.0.0.1:8123}", database: sync_test, server_version: "18.16" }
entities:
  Loan:
    table: loan
    store: main
    key: id
    fields:
      id: { type: i64 }
      fine: { type: "decimal(8,2)", nullable: true }
      due: { type: timestamptz, nullable: true }
      tags: { type: "string[]", default: empty }
sync:
  - { from: Loan, to: analytics }
"#;

/// `id<TAB>fine (as a float)<TAB>due` of every current row in the copy, by id.
async fn copy(f: &Fixture) -> String {
    f.ch_query(&format!(
        "SELECT id, toFloat64(fine), due FROM `{}`.loan FINAL WHERE _deleted = 0 ORDER BY id",
        f.ch.name
    ))
    .await
}

#[tokio::test]
async fn refused_values_become_dead_letters_and_the_pipeline_goes_on() {
    let f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    sqlx::raw_sql(
        "INSERT INTO loan VALUES (1, 1.50, '2026-01-01 00:00:00+00'), (2, 'NaN', NULL), (3, 2.00, NULL)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let (stop, run) = f.start(RunOptions::default().with_dead_letters(true));
    f.caught_up(Duration::from_secs(60)).await;
    // The snapshot set row 2 aside.
    let copied = copy(&f).await;
    assert!(
        copied.starts_with("1\t1.5\t") && copied.contains("\n3\t2\t") && !copied.contains("\n2\t"),
        "{copied}"
    );

    // Streamed: a new row refused beside a good one in one transaction, an
    // update refused in each of two columns.
    sqlx::raw_sql(
        "BEGIN; INSERT INTO loan VALUES (4, 'NaN', NULL), (5, 3.00, NULL); COMMIT;
         UPDATE loan SET fine = 'NaN' WHERE id = 1;
         UPDATE loan SET due = 'infinity' WHERE id = 3;
         INSERT INTO loan VALUES (6, 1.00, NULL, '{a,NULL}');",
    )
    .execute(&mut c)
    .await
    .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    let copied = copy(&f).await;
    let ids: Vec<&str> = copied
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["1", "3", "5"], "{copied}");
    // Rows 1 and 3 keep what they held before the refused change.
    assert!(copied.starts_with("1\t1.5\t"), "{copied}");

    let (letters, total) = dead_letter::list(&mut c, &f.pipeline.name, 100)
        .await
        .unwrap();
    assert_eq!(total, 5, "{letters:?}");
    let seen: Vec<(String, &str)> = letters
        .iter()
        .map(|l| (l.key[0].clone().unwrap(), l.column.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("2".into(), "fine"),
            ("4".into(), "fine"),
            ("1".into(), "fine"),
            ("3".into(), "due"),
            ("6".into(), "tags")
        ],
        "{letters:?}"
    );
    assert!(letters
        .iter()
        .all(|l| l.table == "loan" && !l.reason.is_empty()));
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    assert_eq!(status.dead_letters, 5);
    let shown = status.to_string();
    assert!(
        shown.contains("dead letters: 5") && shown.contains("loan key (3)"),
        "{shown}"
    );

    // The copies differ until the rows are corrected; the corrections are
    // later changes, copied as usual.
    let report = strata_sdk::sync::verify(&f.pipeline, None).await.unwrap();
    let mut refused: Vec<(&str, &DiffKind)> = (report.differences.iter())
        .map(|d| (d.key.as_str(), &d.kind))
        .collect();
    refused.sort_by_key(|d| d.0);
    assert_eq!(
        refused,
        [
            ("1", &DiffKind::Refused),
            ("2", &DiffKind::Refused),
            ("3", &DiffKind::Refused),
            ("4", &DiffKind::Refused),
            // An array with a NULL element: the target's row encoder
            // refuses it, so verify does too (it said `Missing`).
            ("6", &DiffKind::Refused)
        ]
    );
    sqlx::raw_sql(
        "UPDATE loan SET fine = 9.99 WHERE fine = 'NaN'; UPDATE loan SET due = NULL WHERE due = 'infinity';
         UPDATE loan SET tags = '{a}' WHERE id = 6",
    )
    .execute(&mut c)
    .await
    .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    stop.send(true).unwrap();
    run.await.unwrap().expect("the run stopped cleanly");
}
