//! The modern ClickHouse DDL runs on a modern engine (chdb, ClickHouse 26.x
//! in process, driven by `tests/python/chdb_run.py`), and the current-rows
//! view returns exactly the latest version of each key and hides deleted keys.

use strata_codegen::clickhouse::{self, DdlOptions, MODERN};
use strata_tests::support::{chdb, model};

/// Every modern DDL statement of a schema, with the databases renamed so the
/// run is self-contained. chdb has no cluster, so cluster stores are rendered
/// for a single node here (their cluster DDL is pinned by the snapshots).
fn modern_ddl(m: &strata_codegen::Model) -> Vec<String> {
    let mut out = Vec::new();
    for (id, e) in clickhouse::tables(m) {
        let store = &m[id];
        let opts = DdlOptions::default()
            .with_target(MODERN)
            .with_database(format!("t_{}", store.name))
            .single_node();
        out.extend(clickhouse::statements(store, e, &opts));
    }
    out
}

#[test]
fn every_modern_ddl_runs_on_chdb() {
    let mut statements = modern_ddl(&model("../schema"));
    statements.extend(modern_ddl(&model("fixtures/valid/analytics.yaml")));
    assert!(statements.len() >= 12);
    let r = chdb(
        &statements,
        &["SELECT name FROM system.tables WHERE database LIKE 't_%' ORDER BY name"],
    );
    let names: Vec<&str> = r[0].iter().filter_map(|row| row["name"].as_str()).collect();
    for t in [
        "live_order",
        "live_order_current",
        "positions_current",
        "invoices_current",
        "page_view_current",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
}

#[test]
fn current_view_returns_latest_version_and_hides_deleted() {
    let m = model("../schema");
    let order = m.entity("Order").expect("Order");
    let opts = DdlOptions::default()
        .with_target(MODERN)
        .with_database("t_view");
    let mut st = clickhouse::statements(m.store("analytics").unwrap(), order, &opts);
    let insert = |id: &str, coid: &str, ver: u64, del: u8| {
        format!(
            "INSERT INTO `t_view`.`live_order` (`id`, `client_order_id`, `symbol`, `quantity`, `created_at`, `_version`, `_deleted`) \
             VALUES ('{id}', '{coid}', 'BTCUSDT', 1.5, '2026-01-0{ver} 10:00:00.123456', {ver}, {del})"
        )
    };
    let a = "00000000-0000-0000-0000-00000000000a";
    let b = "00000000-0000-0000-0000-00000000000b";
    let c = "00000000-0000-0000-0000-00000000000c";
    // One INSERT per version: each is its own part, so the view must
    // collapse across parts, not rely on a merge having happened.
    st.push(insert(a, "a1", 1, 0));
    st.push(insert(b, "b1", 1, 0));
    st.push(insert(a, "a3", 3, 0));
    st.push(insert(c, "c5", 5, 0));
    st.push(insert(a, "a2", 2, 0));
    st.push(insert(b, "b2", 2, 0));
    st.push(insert(b, "b2", 3, 1)); // tombstone
    st.push(insert(c, "c5", 5, 0)); // replay of the same version
    st.push(insert(c, "c4", 4, 0)); // an older version arriving late
    let r = chdb(
        &st,
        &[
            "SELECT toString(id) AS id, client_order_id, version FROM `t_view`.`live_order_current` ORDER BY id",
        ],
    );
    let rows: Vec<(String, String)> = r[0]
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["client_order_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (a.to_string(), "a3".to_string()),
            (c.to_string(), "c5".to_string())
        ]
    );
}

/// chdb cannot run cluster DDL (no cluster, no Keeper), but its parser can
/// read it: `formatQuery` parses a statement without running it and fails
/// on a syntax error. Every statement of every cluster store, for a modern
/// server and for 18.16, must parse, and keep its cluster parts.
#[test]
fn cluster_ddl_parses_on_a_modern_engine() {
    use strata_codegen::clickhouse::Target;
    let old = Target {
        major: 18,
        minor: 16,
    };
    let mut statements = Vec::new();
    for fixture in [
        "fixtures/valid/analytics.yaml",
        "fixtures/valid/library_multi_store.yaml",
    ] {
        let m = model(fixture);
        for (id, e) in clickhouse::tables(&m) {
            let store = &m[id];
            let clustered = matches!(
                &store.kind,
                strata_codegen::model::StoreKind::ClickHouse {
                    cluster: Some(_),
                    ..
                }
            );
            if !clustered {
                continue;
            }
            for target in [MODERN, old] {
                let opts = DdlOptions::default().with_target(target);
                statements.extend(clickhouse::statements(store, e, &opts));
            }
        }
    }
    assert!(statements.len() >= 8, "{statements:#?}");
    // A ClickHouse string literal: backslash and quote escaped.
    let literal = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let queries: Vec<String> = statements
        .iter()
        .map(|s| format!("SELECT formatQuery({}) AS q", literal(s)))
        .collect();
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    let r = chdb(&[], &refs);
    let parsed: Vec<&str> = r
        .iter()
        .map(|rows| rows[0]["q"].as_str().expect("formatted statement"))
        .collect();
    for (st, p) in statements.iter().zip(&parsed) {
        assert!(p.contains("ON CLUSTER"), "lost ON CLUSTER:\n{st}\n{p}");
    }
    let all = parsed.join("\n");
    for part in ["ReplicatedReplacingMergeTree", "Distributed("] {
        assert!(all.contains(part), "no {part} in:\n{all}");
    }
}
