//! Snapshots of the generated point structs (trading schema, time-series
//! fixture) and the diagnostics for values line protocol cannot carry.

use std::path::Path;

fn model(path: &str) -> strata_codegen::Model {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let sources = strata_codegen::load(&full).expect("load");
    strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

#[test]
fn points_rust() {
    for (name, path) in [
        ("trading", "../schema"),
        ("timeseries", "fixtures/valid/timeseries.yaml"),
    ] {
        let m = model(path);
        let files = strata_codegen::generate(&m, &Default::default());
        let text = files.get("rust/influx.rs").expect("rust/influx.rs");
        insta::with_settings!({ input_file => path }, {
            insta::assert_snapshot!(format!("{name}__influx_rs"), text);
        });
    }
}

#[test]
fn unsupported_series_values_are_refused() {
    let schema = r#"
version: 1
stores:
  ts: { kind: influxdb, url: "http://x", org: o, bucket: b }
entities:
  Sample:
    store: ts
    time: at
    tags: [site]
    fields:
      at:    timestamptz
      site:  string(10)
      blob:  bytes
      list:  "i64[]"
"#;
    let err = strata_codegen::compile_str("sample.yaml", schema).expect_err("refused");
    insta::assert_snapshot!(err.render_short());
}
