//! A nullable field added to a synced entity (a migration applied, the
//! sync restarted with the new schema): the ClickHouse column is added in
//! place, the publication lists it, the sync carries on without a new
//! snapshot, and the copy equals the source.

mod sync_common;

use std::time::Duration;

use strata_sdk::sync::RunOptions;
use sync_common::{insert_accounts, Fixture, SCHEMA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_nullable_field_becomes_a_clickhouse_column_without_a_new_snapshot() {
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
    assert_eq!(rows, "2\tset 2\n3\t\\N\n5000\tnew row\n");
    // One snapshot only: the snapshot version is still the smallest, on 210 rows.
    let snap = f
        .ch_query(&format!(
            "SELECT count() FROM `{0}`.account WHERE _version = (SELECT min(_version) FROM `{0}`.account) FORMAT TSV",
            f.ch.name
        ))
        .await;
    assert_eq!(snap.trim(), "200");
    stop.send(true).unwrap();
    run.await.unwrap().unwrap();
}
