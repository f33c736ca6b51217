//! A nullable field added to a synced entity (a migration applied, the
//! sync restarted with the new schema): the ClickHouse column is added in
//! place, the publication lists it, the table is copied again (values
//! written to the field before the restart arrive too), the sync carries
//! on, and the copy equals the source. Also: an entity added to the
//! `sync:` rules after the first snapshot gets its existing rows copied.

mod sync_common;

use std::time::Duration;

use strata_sdk::sync::RunOptions;
use sync_common::{insert_accounts, Fixture, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_nullable_field_becomes_a_clickhouse_column_and_the_table_is_copied_again() {
    let mut f = Fixture::new(SCHEMA).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 200).await;
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;

    // The migration runs while the old sync still streams.
    sqlx::query("ALTER TABLE account ADD COLUMN extra text")
        .execute(&mut c)
        .await
        .unwrap();
    insert_accounts(&mut c, 1_000, 10).await;
    // Values written before the sync knows the field: the old publication
    // does not carry them, so the restart copies the table again.
    sqlx::query("UPDATE account SET extra = 'early ' || id WHERE id <= 20")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let v2 = SCHEMA.replace(
        "      doc: { type: json, nullable: true }\n",
        "      doc: { type: json, nullable: true }\n      extra: { type: text, nullable: true }\n",
    );
    assert_ne!(v2, SCHEMA);
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (stop, run) = f.start(RunOptions::default());
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::raw_sql("UPDATE account SET extra = 'set ' || id WHERE id % 2 = 0; INSERT INTO account (id, name, balance, password, extra) VALUES (5000, 'n', 1, 'x', 'new row')")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    let cols = f
        .ch_query(&format!(
            "SELECT name, type FROM system.columns WHERE database = '{}' AND table = 'account' AND name = 'extra' FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(cols, "extra\tNullable(String)\n");
    let rows = f
        .ch_query(&format!(
            "SELECT id, extra FROM `{}`.account_current WHERE id IN (2, 3, 5000) ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(rows, "2\tset 2\n3\tearly 3\n5000\tnew row\n");
    let early = f
        .ch_query(&format!(
            "SELECT extra FROM `{}`.account_current WHERE id IN (1, 20) ORDER BY id FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(early, "early 1\nset 20\n");
    // Two copies: the first snapshot (200 rows at its consistent point)
    // and the second (210 rows at the temporary slot's); every streamed
    // transaction wrote fewer rows.
    let copies = f
        .ch_query(&format!(
            "SELECT count() FROM (SELECT _version, count() AS n FROM `{}`.account GROUP BY _version HAVING n >= 200) FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(copies.trim(), "2");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

const LEDGER: &str = "  Ledger:
    table: ledger
    store: main
    key: id
    fields:
      id: { type: i64 }
      amount: decimal(20,8)
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_added_to_the_sync_rules_gets_its_rows_copied() {
    let v1 = SCHEMA.replace("sync:\n", &format!("{LEDGER}sync:\n"));
    let mut f = Fixture::new(&v1).await;
    let mut c = f.conn().await;
    insert_accounts(&mut c, 1, 50).await;
    sqlx::query("INSERT INTO ledger SELECT g, g * 0.5 FROM generate_series(1, 300) g")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
    sqlx::query("UPDATE ledger SET amount = 7 WHERE id = 1")
        .execute(&mut c)
        .await
        .unwrap();

    let v2 = v1.replace(
        "  - { from: Account, to: analytics }\n",
        "  - { from: Account, to: analytics }\n  - { from: Ledger, to: analytics }\n",
    );
    assert_ne!(v2, v1);
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (stop, run) = f.start(RunOptions::default().with_chunk_rows(64));
    f.caught_up(Duration::from_secs(60)).await;
    sqlx::query("DELETE FROM ledger WHERE id = 2")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    let n = f
        .ch_query(&format!(
            "SELECT count(), sum(toFloat64(amount)) FROM `{}`.ledger_current FORMAT TSV",
            f.ch.name
        ))
        .await;
    // 299 rows: 1..300 without 2; amounts 0.5·(sum 1..300 − 1 − 2) + 7.
    assert_eq!(n, "299\t22580.5\n");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}

const LOANS: &str = r#"
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
      qty: { type: i32 }
      note: { type: text, nullable: true }
sync:
  - { from: Loan, to: analytics }
"#;

/// A field whose type changed (`i32` → `i64`). PostgreSQL refuses to
/// retype a column a publication lists; taken out of it by hand, the column
/// altered, the run refuses to write RowBinary of the new type into the old
/// ClickHouse column, naming the column and `strata sync recopy`; the
/// recopy moves the old table aside (and takes the table out of the
/// publication again), and the next run creates the new shape and copies
/// the rows again, equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retyped_field_stops_the_table_until_it_is_copied_again_into_a_new_table() {
    let mut f = Fixture::new(LOANS).await;
    let mut c = f.conn().await;
    sqlx::raw_sql("INSERT INTO loan SELECT g, g, 'n' || g FROM generate_series(1, 50) g")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();

    let retype = "ALTER TABLE loan ALTER COLUMN qty TYPE bigint";
    let e = sqlx::query(retype).execute(&mut c).await.unwrap_err();
    assert!(e.to_string().contains("publication"), "{e}");
    let publication = f.pipeline.publication();
    sqlx::raw_sql(&format!(
        "ALTER PUBLICATION \"{publication}\" DROP TABLE loan; {retype}; UPDATE loan SET qty = 5000000000 + id WHERE id <= 5"
    ))
    .execute(&mut c)
    .await
    .unwrap();
    let v2 = LOANS.replace("qty: { type: i32 }", "qty: { type: i64 }");
    let model = strata_codegen::compile_str("schema.yaml", &v2).unwrap();
    f.pipeline = Fixture::pipeline_of(&model, &f.pg, &f.ch, &[]);
    let (_stop, run) = f.start(RunOptions::default());
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops on the changed shape")
        .unwrap()
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`qty`") && text.contains("Int32") && text.contains("strata sync recopy"),
        "{text}"
    );
    let before = f
        .ch_query(&format!(
            "SELECT max(qty) FROM `{}`.loan FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(before.trim(), "50", "nothing of the new shape was written");
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    let (error, _) = status
        .last_failure
        .clone()
        .expect("the failure is recorded");
    assert!(error.contains("`qty`"), "{error}");
    assert!(
        status.to_string().contains("last run failed at"),
        "{status}"
    );

    let done = strata_sdk::sync::recopy_entities(&f.pipeline, &["Loan".to_string()])
        .await
        .unwrap();
    assert_eq!(
        done.len(),
        2,
        "moved aside, out of the publication: {done:?}"
    );
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    assert_eq!(status.unpublished, ["loan"], "{status}");
    // Out of the publication, the column can change again.
    sqlx::query("ALTER TABLE loan ALTER COLUMN note TYPE varchar(100)")
        .execute(&mut c)
        .await
        .unwrap();
    let (stop, run) = f.start(RunOptions::default());
    f.caught_up(Duration::from_secs(60)).await;
    sqlx::query("UPDATE loan SET qty = 7000000000 WHERE id = 50")
        .execute(&mut c)
        .await
        .unwrap();
    f.caught_up(Duration::from_secs(60)).await;
    f.assert_equal().await;
    let status = strata_sdk::sync::status(&f.pipeline).await.unwrap();
    assert!(
        status.unpublished.is_empty() && status.last_failure.is_none(),
        "{status}"
    );
    let tables = f
        .ch_query(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND name LIKE 'loan\\_\\_replaced\\_%' FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(tables.lines().count(), 1, "the old table is kept: {tables}");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}
