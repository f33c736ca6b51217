//! A postgres store with its own PostgreSQL schema (`schema: billing`, the
//! namespace fixture): the fixture SDK's repositories and batch writers work
//! on the schema-qualified tables and enum type.

mod sdk_support;

use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_tests::fixtures::namespace::entities::*;

async fn ledger() -> TestDb {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/valid/namespace.yaml");
    let model = strata_codegen::compile(&strata_codegen::load(path).unwrap()).unwrap();
    TestDb::for_model(&model, "ledger").await
}

fn entry(invoice: uuid::Uuid, side: EntrySide, cents: i64) -> NewEntry {
    NewEntry {
        invoice_id: invoice,
        side,
        amount: Decimal::new(cents, 2),
    }
}

#[tokio::test]
async fn insert_get_and_upsert_many_in_a_schema() {
    let db = ledger().await;
    let pool = &db.pool;
    // Nothing lives in `public`: the enum and tables are `billing.*`.
    let (public,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typname = 'entry_side' AND n.nspname = 'public'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(public, 0);

    let inv = Invoice::insert(
        pool,
        &NewInvoice {
            id: None,
            number: "INV-1".into(),
            total: Decimal::new(12_345, 2),
        },
    )
    .await
    .unwrap();
    assert_eq!(Invoice::get(pool, &inv.id).await.unwrap(), inv);

    let e = Entry::insert(pool, &entry(inv.id, EntrySide::Credit, 500))
        .await
        .unwrap();
    assert_eq!(e.side, EntrySide::Credit);
    assert_eq!(Entry::get(pool, &e.id).await.unwrap(), e);

    // Upserts by key in the schema: one update, one insert.
    let c = Invoice::upsert_many(
        pool,
        vec![
            NewInvoice {
                id: Some(inv.id),
                number: "INV-1".into(),
                total: Decimal::new(1, 2),
            },
            NewInvoice {
                id: None,
                number: "INV-2".into(),
                total: Decimal::new(2, 2),
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!((c.inserted, c.updated), (1, 1));
    assert_eq!(
        Invoice::get(pool, &inv.id).await.unwrap().total,
        Decimal::new(1, 2)
    );

    // A small batch (UNNEST of an enum array) and a large one (COPY into a
    // staging table) of rows with the schema's enum.
    let c = Entry::upsert_many(
        pool,
        vec![
            entry(inv.id, EntrySide::Debit, 700),
            entry(inv.id, EntrySide::Credit, 1),
        ],
    )
    .await
    .unwrap();
    assert_eq!(c.inserted, 2);
    let n = strata_sdk::postgres::BATCH_CHUNK as i64 + 5;
    let big = (0..n).map(|i| {
        let side = if i % 2 == 0 {
            EntrySide::Debit
        } else {
            EntrySide::Credit
        };
        entry(inv.id, side, i)
    });
    let c = Entry::upsert_many(pool, big).await.unwrap();
    assert_eq!(c.inserted, n as u64);
    assert_eq!(Entry::count(pool).await.unwrap(), n + 3);
    let (debits,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM billing.entries WHERE side = 'DEBIT'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(debits, 1 + (n + 1) / 2);
    let mut all = Vec::new();
    for id in [e.id, e.id + 1, e.id + 2] {
        all.push(Entry::get(pool, &id).await.unwrap().side);
    }
    assert_eq!(
        all,
        [EntrySide::Credit, EntrySide::Debit, EntrySide::Credit]
    );
}
