//! What the diagnostics tests share: every problem of a schema in short.

use miette::Diagnostic;

/// `(line:col code message, help)` of every problem of `schema` (file
/// `s.yaml`), in the order the compiler renders them.
pub fn problems(schema: &str) -> Vec<(String, String)> {
    let d = strata_codegen::compile_str("s.yaml", schema).expect_err("the schema has errors");
    let short = d.render_short();
    short
        .lines()
        .zip(&d.items)
        .map(|(l, item)| {
            let l = l.strip_prefix("s.yaml:").unwrap_or(l).to_string();
            (l, item.help().map(|h| h.to_string()).unwrap_or_default())
        })
        .collect()
}
