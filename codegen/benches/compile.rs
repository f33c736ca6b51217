//! The compiler's own speed (`cargo bench -p strata-codegen --bench compile`):
//! what `cargo build` pays in `build.rs` each time a schema changes.
//!
//! - the trading schema (`schema/`, 7 files): load, compile, generate every
//!   artifact (DDL, Rust formatted by prettyplease, ClickHouse, mappings);
//! - 200 and 2,000 synthetic entities (references, indexes, finders):
//!   compile only, and compile + generate;
//! - 2,000 entities each with a misspelt type: compile until every error is
//!   collected and rendered (the path a user with a broken schema waits on).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn entity_yaml(i: usize) -> String {
    format!(
        "  Entity{i}:\n    timestamps: true\n    fields:\n      id: {{ type: uuid, default: generated }}\n      name: string(64)\n      amount: decimal(20,8)\n      parent_id: {{ type: uuid, nullable: true, references: Entity{}, on_delete: set_null }}\n    indexes:\n      - [name, created_at desc]\n    queries:\n      by_name: {{ where: [name], limit: 10 }}\n",
        i.saturating_sub(1)
    )
}

fn synthetic(n: usize) -> String {
    let mut text = String::from("version: 1\nstores:\n  main: { kind: postgres }\nentities:\n");
    for i in 0..n {
        text.push_str(&entity_yaml(i));
    }
    text
}

fn trading(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema");
    let settings = strata_codegen::Settings::default();
    c.bench_function("trading schema: load + compile + generate", |b| {
        b.iter(|| {
            let sources = strata_codegen::load(dir).unwrap();
            let model = strata_codegen::compile(&sources).unwrap();
            strata_codegen::generate(&model, &settings)
        })
    });
}

fn synthetic_schemas(c: &mut Criterion) {
    let settings = strata_codegen::Settings::default();
    let mut g = c.benchmark_group("synthetic");
    g.sample_size(10);
    for n in [200, 2_000] {
        let text = synthetic(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("compile", n), &text, |b, text| {
            b.iter(|| strata_codegen::compile_str("big.yaml", text).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("compile + generate", n),
            &text,
            |b, text| {
                b.iter(|| {
                    let model = strata_codegen::compile_str("big.yaml", text).unwrap();
                    strata_codegen::generate(&model, &settings)
                })
            },
        );
    }
    let broken = synthetic(2_000).replace("decimal(20,8)", "decimel(20,8)");
    g.throughput(Throughput::Elements(2_000));
    g.bench_function("2,000 errors: compile + render", |b| {
        b.iter(|| {
            let d = strata_codegen::compile_str("big.yaml", &broken).unwrap_err();
            d.render_plain()
        })
    });
    g.finish();
}

criterion_group!(benches, trading, synthetic_schemas);
criterion_main!(benches);
