//! The generators' work is bounded by the schema, not only by the 8 MiB file
//! limit: fields per entity, stores per synced entity, and the columns all
//! artifacts hold together (fields × (1 + sync targets)) each have a limit,
//! and a schema past one is refused with a located diagnostic. The issue's
//! input (one entity of 1,000 fields synced to 200 ClickHouse stores, 17 KB)
//! took about 5 s and 1 GB to generate before.

use strata_codegen::{MAX_FIELDS, MAX_GENERATED_COLUMNS, MAX_SYNC_TARGETS};

/// `entities` entities of `fields` i64 fields each, every one synced to
/// `targets` ClickHouse stores.
fn schema(entities: usize, fields: usize, targets: usize) -> String {
    let mut y = String::from("stores:\n  main: { kind: postgres, url: \"${DATABASE_URL}\" }\n");
    for s in 0..targets {
        y.push_str(&format!("  c{s}: {{ kind: clickhouse }}\n"));
    }
    y.push_str("entities:\n");
    let fs: Vec<String> = (0..fields).map(|i| format!("f{i}: i64")).collect();
    for e in 0..entities {
        y.push_str(&format!(
            "  E{e}:\n    key: f0\n    fields: {{ {} }}\n",
            fs.join(", ")
        ));
    }
    if targets > 0 {
        y.push_str("sync:\n");
        let to: Vec<String> = (0..targets).map(|s| format!("c{s}")).collect();
        for e in 0..entities {
            y.push_str(&format!("  - {{ from: E{e}, to: [{}] }}\n", to.join(", ")));
        }
    }
    y
}

/// The `code location: message` lines of a refused schema.
fn refused(text: &str) -> String {
    match strata_codegen::compile_str("limits.yaml", text) {
        Ok(_) => panic!("a schema past a limit compiled"),
        Err(d) => d.render_short(),
    }
}

#[test]
fn the_issues_input_is_refused_before_generation() {
    let short = refused(&schema(1, 1000, 200));
    assert!(short.contains("limits.yaml:"), "{short}");
    assert!(
        short.contains("error[strata::too_many_targets]: entity `E0` is synced to 200 stores"),
        "{short}"
    );
    assert!(short.contains("error[strata::too_large_output]"), "{short}");
}

#[test]
fn an_entity_with_too_many_fields_is_refused_at_its_name() {
    let short = refused(&schema(1, MAX_FIELDS + 1, 0));
    assert_eq!(
        short,
        format!(
            "limits.yaml:4:3: error[strata::too_many_fields]: entity `E0` has {} fields\n",
            MAX_FIELDS + 1
        )
    );
}

#[test]
fn many_entities_within_each_limit_are_refused_by_the_total() {
    // Each entity is within every per-entity limit; together they are not.
    let per_entity = 500 * (1 + MAX_SYNC_TARGETS);
    let entities = MAX_GENERATED_COLUMNS / per_entity + 1;
    let short = refused(&schema(entities, 500, MAX_SYNC_TARGETS));
    assert_eq!(short.lines().count(), 1, "{short}");
    assert!(short.contains("error[strata::too_large_output]"), "{short}");
    assert!(
        short.contains(&format!(
            "limits.yaml:{}:3:",
            4 + MAX_SYNC_TARGETS + 3 * (entities - 1)
        )),
        "{short}"
    );
}

#[test]
fn a_schema_at_the_limits_compiles_and_generates() {
    // The largest entity synced to the most stores stays within the total.
    let (fields, targets) = (MAX_FIELDS, MAX_SYNC_TARGETS);
    assert!(fields * (1 + targets) <= MAX_GENERATED_COLUMNS);
    let model = strata_codegen::compile_str("limits.yaml", &schema(1, fields, targets))
        .unwrap_or_else(|d| panic!("{}", d.render_short()));
    let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
    let tables = files
        .files
        .keys()
        .filter(|p| p.starts_with("clickhouse/"))
        .count();
    assert_eq!(tables, targets, "one ClickHouse table per target");
}
