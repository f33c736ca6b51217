//! Every schema `strata check` accepts generates Rust that compiles: random
//! valid schemas, drawn from names chosen to meet the generated code's own
//! (Rust keywords, `_`, repository method names, the generated code's
//! variables, prelude types, names that derive `New<E>`/`<E>Patch`/`<E>Key`
//! of one another) and docs with control characters, are compiled in
//! batches, each batch one crate built once with cargo.
//!
//! The crate reuses this workspace's target folder and declares the same
//! dependencies as `strata-tests`, so cargo finds every dependency already
//! built and compiles only the generated code. A schema that `generate`
//! panics on, or whose code does not compile, fails the test and is printed.
//! `STRATA_COMPILE_SEED=<n>` replays one run; `STRATA_COMPILE_BATCHES` sets
//! how many batches of [`BATCH`] schemas run (default 1).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Schemas compiled by one cargo run.
const BATCH: usize = 20;

/// Entity and enum names: ordinary ones, and ones whose derived types
/// (`New<E>`, `<E>Patch`, `<E>Key`) or generated companions (`<E>Row`,
/// `<E>Doc`, `<E>Point`) meet other names.
const TYPE_NAMES: &[&str] = &[
    "Order",
    "NewOrder",
    "OrderPatch",
    "OrderKey",
    "Page",
    "Error",
    "Uuid",
    "Value",
    "Secret",
    "Decimal",
    "A",
    "E",
    "Row",
    "Doc",
    "Key",
    "Patch",
    "New",
    "Client",
    "OrderRow",
    "Side",
    "Status",
    "Kind",
    "Pool",
    "Acquire",
    "Postgres",
    "PgPool",
    "Utc",
    "DateTime",
];

/// Field names: Rust keywords (raw or renamed), `self`/`self_` (one Rust
/// spelling), the generated code's parameters and variables, crate names.
const FIELD_NAMES: &[&str] = &[
    "symbol",
    "type",
    "match",
    "self",
    "self_",
    "super",
    "crate",
    "fn",
    "async",
    "await",
    "dyn",
    "try",
    "gen",
    "union",
    "static",
    "yield",
    "ref",
    "mod",
    "db",
    "conn",
    "row",
    "rows",
    "key",
    "patch",
    "page",
    "after",
    "limit",
    "counts",
    "chunk",
    "sql",
    "w",
    "c0",
    "c1",
    "n",
    "i",
    "e",
    "done",
    "copy",
    "expected_version",
    "strata_db",
    "std",
    "core",
    "sqlx",
    "serde",
    "__",
    "_x",
    "value",
    "entity",
    "name",
    "keys",
    "desc",
    "id_",
    "a",
    "price",
    "note",
];

/// Finder names: repository methods (emitted as `find_<name>`), listing
/// methods, keywords, the generated code's helpers.
const QUERY_NAMES: &[&str] = &[
    "by_symbol",
    "list_by_symbol",
    "list_by_id",
    "insert",
    "get",
    "find_get",
    "list",
    "key",
    "type",
    "self",
    "self_",
    "strata_missing",
    "count",
    "by_type",
    "latest",
    "find",
    "get_many",
    "delete_many",
    "list_by_created_at",
    "for_note",
    "by_price",
    "clone",
    "eq",
    "fmt",
    "from_row",
    "serialize",
    "deserialize",
    "to_string",
    "into",
    "default",
    "new",
    "acquire",
];

/// Store names: keywords, names of the generated modules and functions.
const STORE_NAMES: &[&str] = &[
    "main",
    "self",
    "self_",
    "type",
    "std",
    "entities",
    "analytics",
    "super",
    "crate",
    "connect_x",
    "x_pool_config",
    "x",
    "client",
    "config",
    "series",
    "core",
    "clickhouse",
];

const ENUM_VALUES: &[&str] = &[
    "A", "b", "SELF", "Type", "ALL", "None", "Some", "x_1", "Err",
];

const SCALARS: &[&str] = &[
    "uuid",
    "string(20)",
    "text",
    "i16",
    "i32",
    "i64",
    "f64",
    "decimal(20,8)",
    "timestamptz",
    "date",
    "json",
    "bool",
    "bytes",
    "secret",
    "i32[]",
    "text[]",
];

/// Docs: line ends of every kind, and text a doc comment could misread.
const DOCS: &[&str] = &[
    "plain",
    "two\r\nlines",
    "carriage\rreturn",
    "tab\there",
    "/ slash first",
    "* star",
    "*/ closes",
    "/* opens",
    "ends with \\",
    "quote \" and '",
    "multi\nline\n",
    "",
    "!inner",
    "```\nnot rust\n```",
    "[link]",
    "#[attr]",
];

struct Gen {
    rng: TestRng,
}

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u32() as usize) % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    /// A name from `xs` not yet in `taken` (then taken).
    fn fresh(&mut self, xs: &[&str], taken: &mut Vec<String>) -> String {
        for _ in 0..20 {
            let n = self.pick(xs);
            if !taken.iter().any(|t| t == n) {
                taken.push(n.to_string());
                return n.to_string();
            }
        }
        let n = format!("{}{}", self.pick(xs), taken.len());
        taken.push(n.clone());
        n
    }
    fn chance(&mut self, in_n: usize) -> bool {
        self.below(in_n) == 0
    }
    fn doc(&mut self) -> String {
        let d = self.pick(DOCS);
        format!(", doc: {}", serde_json::to_string(d).expect("a string"))
    }

    /// One schema as YAML (flow style, every string JSON-quoted).
    fn schema(&mut self) -> String {
        let mut y = String::new();
        let mut stores = Vec::new();
        let pg = self.fresh(STORE_NAMES, &mut stores);
        let ch = self.fresh(STORE_NAMES, &mut stores);
        let series = self.fresh(STORE_NAMES, &mut stores);
        let es = self.fresh(STORE_NAMES, &mut stores);
        let _ = writeln!(y, "stores:");
        let _ = writeln!(
            y,
            "  {pg:?}: {{ kind: postgres, url: \"${{DATABASE_URL}}\" }}"
        );
        let _ = writeln!(y, "  {ch:?}: {{ kind: clickhouse }}");
        let _ = writeln!(y, "  {series:?}: {{ kind: influxdb }}");
        let _ = writeln!(y, "  {es:?}: {{ kind: elasticsearch }}");
        let mut types = Vec::new();
        let mut enums = Vec::new();
        if self.chance(2) {
            let _ = writeln!(y, "enums:");
            for _ in 0..1 + self.below(2) {
                let name = self.fresh(TYPE_NAMES, &mut types);
                let mut seen = Vec::new();
                let values: Vec<String> = (0..1 + self.below(3))
                    .map(|_| format!("{:?}", self.fresh(ENUM_VALUES, &mut seen)))
                    .collect();
                let _ = writeln!(
                    y,
                    "  {name:?}: {{ values: [{}], sql_name: \"{}_enum\" }}",
                    values.join(", "),
                    name.to_lowercase()
                );
                enums.push(name);
            }
        }
        let _ = writeln!(y, "entities:");
        // Record entities of the postgres store, and whether each is searchable.
        let mut synced = Vec::new();
        for _ in 0..1 + self.below(3) {
            let name = self.fresh(TYPE_NAMES, &mut types);
            let home = if self.chance(4) { &ch } else { &pg };
            let search = (home == &pg && self.chance(3)).then_some(es.as_str());
            self.record(&mut y, &name, home, search, &enums);
            if home == &pg {
                synced.push((name, search.is_some()));
            }
        }
        if self.chance(3) {
            let name = self.fresh(TYPE_NAMES, &mut types);
            let mut fields = vec!["ts".to_string()];
            let tag = self.fresh(FIELD_NAMES, &mut fields);
            let value = self.fresh(FIELD_NAMES, &mut fields);
            let _ = writeln!(
                y,
                "  {name:?}: {{ store: {series:?}, time: ts, tags: [{tag:?}], fields: {{ ts: timestamptz, {tag:?}: string(10), {value:?}: f64 }} }}"
            );
        }
        let rules: Vec<String> = (synced.iter())
            .filter(|(_, searchable)| *searchable || self.chance(2))
            .map(|(from, searchable)| match searchable {
                true => format!("  - {{ from: {from:?}, to: [{ch:?}, {es:?}] }}"),
                false => format!("  - {{ from: {from:?}, to: {ch:?} }}"),
            })
            .collect();
        if !rules.is_empty() {
            let _ = writeln!(y, "sync:\n{}", rules.join("\n"));
        }
        y
    }

    fn record(
        &mut self,
        y: &mut String,
        name: &str,
        store: &str,
        search: Option<&str>,
        enums: &[String],
    ) {
        let doc = if self.chance(2) {
            self.doc()
        } else {
            String::new()
        };
        let flags = match self.below(4) {
            0 => ", timestamps: true",
            1 => ", version: true",
            2 => ", timestamps: true, version: true",
            _ => "",
        };
        let _ = writeln!(y, "  {name:?}:");
        let search = search.map_or(String::new(), |s| format!(", search: {{ store: {s:?} }}"));
        let _ = writeln!(y, "    {{ store: {store:?}{flags}{doc}{search}, key: id,");
        let mut fields = vec!["id".to_string()];
        // Fields a finder may compare and an index may cover.
        let mut plain = vec!["id".to_string()];
        let key_ty = ["uuid", "i64", "string(20)"][self.below(3)];
        let mut body = format!("id: {{ type: {key_ty:?} }}");
        for _ in 0..self.below(6) {
            let f = self.fresh(FIELD_NAMES, &mut fields);
            let ty = match enums.is_empty() || self.chance(3) {
                true => self.pick(SCALARS).to_string(),
                false => enums[self.below(enums.len())].clone(),
            };
            if !matches!(ty.as_str(), "secret" | "json" | "bytes" | "f64") && !ty.ends_with("[]") {
                plain.push(f.clone());
            }
            let nullable = self.chance(3);
            let doc = if self.chance(3) {
                self.doc()
            } else {
                String::new()
            };
            let _ = write!(
                body,
                ", {f:?}: {{ type: {ty:?}, nullable: {nullable}{doc} }}"
            );
        }
        let _ = writeln!(y, "      fields: {{ {body} }},");
        let mut indexed = Vec::new();
        for _ in 0..self.below(3) {
            self.fresh(
                &plain.iter().map(String::as_str).collect::<Vec<_>>(),
                &mut indexed,
            );
        }
        indexed.retain(|f| plain.contains(f));
        let indexes: Vec<String> = indexed.iter().map(|f| format!("[{f:?}]")).collect();
        let _ = writeln!(y, "      indexes: [{}],", indexes.join(", "));
        let mut queries = Vec::new();
        let mut names = Vec::new();
        for _ in 0..self.below(3) {
            let q = self.fresh(QUERY_NAMES, &mut names);
            let f = &plain[self.below(plain.len())];
            let one = if self.chance(2) { ", one: true" } else { "" };
            queries.push(format!("{q:?}: {{ where: [{f:?}]{one} }}"));
        }
        let _ = writeln!(y, "      queries: {{ {} }} }}", queries.join(", "));
    }
}

fn seed() -> u64 {
    match std::env::var("STRATA_COMPILE_SEED") {
        Ok(s) => s.parse().expect("STRATA_COMPILE_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// The dependencies of `strata-tests` (normal and dev), so that feature
/// unification gives every dependency the same build as this test's own.
fn manifest(ws: &Path) -> String {
    let p = |c: &str| ws.join(c).display().to_string();
    format!(
        r#"[package]
name = "strata-generated-compiles"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[lib]
path = "lib.rs"

[dependencies]
strata-codegen = {{ path = {codegen:?}, default-features = false, features = ["cli"] }}
strata-sdk = {{ path = {sdk:?} }}
strata-derive = {{ path = {derive:?} }}
deepalpha-db = {{ path = {generated:?} }}
insta = {{ version = "1", features = ["yaml"] }}
proptest = "1"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "time", "sync"] }}
sqlx = {{ version = "0.8", default-features = false, features = ["runtime-tokio", "postgres", "uuid", "chrono", "rust_decimal", "json", "derive"] }}
miette = "7"
serde_json = {{ version = "1", features = ["preserve_order"] }}
uuid = {{ version = "1", features = ["v4", "serde"] }}
chrono = {{ version = "0.4", default-features = false, features = ["clock", "std", "serde"] }}
rust_decimal = {{ version = "1", features = ["serde-with-str"] }}
clickhouse = {{ version = "0.15", default-features = false, features = ["lz4", "uuid", "chrono", "inserter"] }}
reqwest = {{ version = "0.12", default-features = false, features = ["json"] }}
flate2 = "1"
futures-util = "0.3"
serde = {{ version = "1", features = ["derive"] }}
bytes = "1"
syn = {{ version = "2", features = ["full", "extra-traits", "visit-mut"] }}
criterion = {{ version = "0.5", features = ["async_tokio"] }}
tracing = "0.1"
"#,
        codegen = p("codegen"),
        sdk = p("sdk"),
        derive = p("derive"),
        generated = p("generated"),
    )
}

/// Generates each accepted schema into `dir/s<i>/` and `dir/lib.rs`;
/// returns the accepted schemas' text by module name.
fn write_batch(dir: &Path, schemas: &[String]) -> Vec<(String, String)> {
    let mut lib = String::from("#![allow(warnings)]\n");
    let mut accepted = Vec::new();
    for (i, text) in schemas.iter().enumerate() {
        let module = format!("s{i}");
        let path = dir.join(format!("{module}.yaml"));
        std::fs::write(&path, text).expect("write a schema");
        if let Err(e) = strata_codegen::compile_str("schema.yaml", text) {
            if std::env::var_os("STRATA_COMPILE_VERBOSE").is_some() {
                eprintln!("refused:\n{}", e.render_short());
            }
            continue;
        }
        let generated = std::panic::catch_unwind(|| {
            strata_codegen::build::Build::new(&path)
                .with_out_dir(dir)
                .with_subdir(&module)
                .with_rerun_if_changed(false)
                .run()
        });
        match generated {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("generate failed on an accepted schema:\n{text}\n{e:?}"),
            Err(_) => panic!("generate panicked on an accepted schema:\n{text}"),
        }
        let _ = writeln!(
            lib,
            "pub mod {module} {{ include!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{module}/modules.rs\")); }}"
        );
        accepted.push((module, text.clone()));
    }
    std::fs::write(dir.join("lib.rs"), lib).expect("write lib.rs");
    accepted
}

#[test]
fn the_code_of_random_accepted_schemas_compiles() {
    let seed = seed();
    eprintln!("STRATA_COMPILE_SEED={seed}");
    let batches: usize = std::env::var("STRATA_COMPILE_BATCHES")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1);
    let mut gen = Gen {
        rng: TestRng::from_seed(
            RngAlgorithm::ChaCha,
            &[seed.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat(),
        ),
    };
    let ws = workspace();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .to_path_buf();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-compiles");
    let mut compiled = 0;
    for _ in 0..batches {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp folder");
        std::fs::write(dir.join("Cargo.toml"), manifest(&ws)).expect("write Cargo.toml");
        std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
        let schemas: Vec<String> = (0..BATCH).map(|_| gen.schema()).collect();
        let accepted = write_batch(&dir, &schemas);
        eprintln!("{} of {BATCH} schemas accepted", accepted.len());
        compiled += accepted.len();
        let out = Command::new(env!("CARGO"))
            .args(["build", "--offline", "--lib", "--message-format=short"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target)
            .env("OUT_DIR", &dir)
            .output()
            .expect("run cargo");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let failing: Vec<&(String, String)> = accepted
                .iter()
                .filter(|(m, _)| stderr.contains(&format!("{m}/")))
                .collect();
            let shown: String = failing
                .iter()
                .map(|(m, t)| format!("--- {m}.yaml\n{t}"))
                .collect();
            panic!("the generated code does not compile (seed {seed}):\n{shown}\n{stderr}");
        }
    }
    // The generator must mostly produce schemas the compiler accepts, or
    // this test would check nothing.
    assert!(
        compiled * 4 >= batches * BATCH,
        "only {compiled} of {} random schemas were accepted",
        batches * BATCH
    );
}
