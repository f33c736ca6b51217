//! Snapshots of every ClickHouse DDL file and the generated row structs, for
//! the trading schema and the analytics fixture, for a modern ClickHouse and
//! for the 18.16 server installable here.

use std::path::Path;

use strata_codegen::clickhouse::{self, DdlOptions, Target, MODERN};

const OLD: Target = Target {
    major: 18,
    minor: 16,
};

fn model(path: &str) -> strata_codegen::Model {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let sources = strata_codegen::load(&full).expect("load");
    strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

fn snapshot_ddl(name: &str, path: &str) {
    let m = model(path);
    let tables = clickhouse::tables(&m);
    assert!(!tables.is_empty(), "{name} has ClickHouse tables");
    for (target, label) in [(MODERN, "modern"), (OLD, "18_16")] {
        for &(id, e) in &tables {
            let store = &m[id].name;
            let text = clickhouse::ddl::file(&m[id], e, &DdlOptions::default().with_target(target));
            insta::with_settings!({ input_file => path, snapshot_suffix => label }, {
                insta::assert_snapshot!(format!("{name}__{store}__{}", e.name.sql), text);
            });
        }
    }
}

#[test]
fn trading_ddl() {
    snapshot_ddl("trading", "../schema");
}

#[test]
fn analytics_fixture_ddl() {
    snapshot_ddl("analytics", "fixtures/valid/analytics.yaml");
}

#[test]
fn multi_store_fixtures_ddl() {
    snapshot_ddl(
        "market_multi_store",
        "fixtures/valid/market_multi_store.yaml",
    );
    snapshot_ddl("fleet_multi_store", "fixtures/valid/fleet_multi_store.yaml");
    snapshot_ddl(
        "library_multi_store",
        "fixtures/valid/library_multi_store.yaml",
    );
}

#[test]
fn generated_files_use_the_store_target() {
    // The trading schema targets 18.16 (the server installed here): the
    // files `strata generate` writes carry the 18.16 DDL.
    let m = model("../schema");
    let files = strata_codegen::generate(&m, &Default::default());
    let order = files
        .get("clickhouse/analytics/live_order.sql")
        .expect("order DDL");
    assert!(order.contains("ENGINE = ReplacingMergeTree(`_version`)\n"));
    assert!(!order.contains("DateTime64("));
    assert!(order.contains("-- ClickHouse 18.16: no DateTime64"));
}

#[test]
fn rows_rust() {
    for (name, path) in [
        ("trading", "../schema"),
        ("analytics", "fixtures/valid/analytics.yaml"),
    ] {
        let m = model(path);
        insta::with_settings!({ input_file => path }, {
            insta::assert_snapshot!(format!("{name}__clickhouse_rs"), clickhouse::rust(&m));
        });
    }
}

#[test]
fn secrets_never_reach_clickhouse() {
    let m = model("fixtures/valid/analytics.yaml");
    let files = strata_codegen::generate(&m, &Default::default());
    for (path, text) in &files.files {
        if path.starts_with("clickhouse/") || path == "rust/clickhouse.rs" {
            assert!(!text.contains("signing_key"), "{path} holds the secret");
        }
    }
}

/// The generated rows compile (they are included here) and name the tables.
#[allow(dead_code)]
mod compiled {
    pub mod trading {
        pub use deepalpha_db::clickhouse::*;
    }
    pub mod analytics {
        pub use strata_tests::fixtures::analytics::clickhouse::*;
    }
}

#[test]
fn generated_rows_compile() {
    use strata_sdk::clickhouse::Table;
    assert_eq!(compiled::trading::analytics::OrderRow::TABLE, "live_order");
    assert_eq!(
        compiled::trading::analytics::OrderRow::DATABASE,
        "deepalpha"
    );
    assert_eq!(compiled::analytics::legacy::InvoiceRow::TABLE, "invoices");
    assert_eq!(
        compiled::analytics::lake::PageViewRow::DATABASE,
        "shop_lake"
    );
}
