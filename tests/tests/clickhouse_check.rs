//! Types a ClickHouse store cannot carry without loss are compile errors
//! that point at the field and say what the targeted release lacks.

const SCHEMA: &str = r#"
version: 1
stores:
  db: { kind: postgres, url: "postgres://x" }
  old: { kind: clickhouse, database: old, server_version: "18.16" }
  new: { kind: clickhouse, database: new }
entities:
  Ledger:
    table: ledger
    store: db
    fields:
      id:        uuid
      huge:      decimal(40,2)
      wide:      decimal(30,2)
      fine:      decimal(20,8)
      stamps:    "bytes[]"
      maybe:     { type: "i64[]", nullable: true }
      closed_at: timestamptz?
    partition_by: closed_at
sync:
  - { from: Ledger, to: [old, new] }
"#;

#[test]
fn lossy_types_are_refused_with_a_hint() {
    let err = strata_codegen::compile_str("ledger.yaml", SCHEMA).expect_err("refused");
    insta::assert_snapshot!(err.render_plain());
    let short = err.render_short();
    // 18.16 lacks Decimal256; every version refuses what the rows cannot hold.
    assert!(short.contains("`Ledger.huge` cannot be stored in ClickHouse store `old`"));
    assert!(short.contains("`Ledger.wide` cannot be stored in ClickHouse store `new`"));
    assert!(!short.contains("Ledger.fine"));
    let plain = err.render_plain();
    assert!(plain.contains("ClickHouse 18.16 has no Decimal256"));
    assert!(plain.contains("no Nullable(Array)"));
    assert!(plain.contains("is nullable"));
}

#[test]
fn the_trading_schema_and_fixtures_pass() {
    for p in ["../schema", "fixtures/valid/analytics.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
        let s = strata_codegen::load(&path).unwrap();
        if let Err(d) = strata_codegen::compile(&s) {
            panic!("{p}: {}", d.render_plain());
        }
    }
}
