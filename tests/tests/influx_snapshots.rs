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

/// `server: victoriametrics`: string fields are refused at `check` (the
/// server drops them without an error), tags may still be text; an unknown
/// server is a setting error.
#[test]
fn victoriametrics_refuses_string_fields_at_check() {
    let schema = r#"
version: 1
stores:
  ts: { kind: influxdb, url: "http://x", org: o, bucket: b, server: victoriametrics }
entities:
  Sample:
    store: ts
    time: at
    tags: [site]
    fields:
      at:    timestamptz
      site:  string(10)
      value: f64
      note:  text?
"#;
    let err = strata_codegen::compile_str("sample.yaml", schema).expect_err("refused");
    let text = err.render_short();
    assert!(
        text.contains("`Sample.note` cannot be written as line protocol"),
        "{text}"
    );
    assert!(!text.contains("Sample.site"), "a text tag is fine: {text}");
    let ok = schema.replace("      note:  text?\n", "");
    strata_codegen::compile_str("sample.yaml", &ok).expect("no string field");
    let bad = schema.replace("server: victoriametrics", "server: graphite");
    let err = strata_codegen::compile_str("sample.yaml", &bad).expect_err("refused");
    assert!(
        err.render_short()
            .contains("`server` must be influxdb or victoriametrics"),
        "{}",
        err.render_short()
    );
}
