//! The back-end seam: each store kind's compiler is one [`Backend`], and
//! [`crate::BACKENDS`] is the one list the pipeline runs (names beside the
//! resolver, check after it, lint for warnings, generate for artifacts). Adding a store kind
//! adds one entry there; see `docs/architecture.md` for the other places.

use crate::diagnostics::Problem;
use crate::files::Files;
use crate::model::Model;

/// A back end: what its stores cannot carry, and the artifacts it writes.
pub trait Backend: Sync {
    /// A short name, for messages and docs (`postgres`, `rust`, …).
    fn name(&self) -> &'static str;
    /// Errors: names that clash in one of this back end's stores (an index
    /// named like a table). Runs on whatever the resolver could build, also
    /// when it refused the schema, so that these are reported beside its
    /// problems: it must read a partial model.
    fn names(&self, _model: &Model) -> Vec<Problem> {
        Vec::new()
    }
    /// Errors: what the checked model asks that this back end cannot do.
    fn check(&self, _model: &Model) -> Vec<Problem> {
        Vec::new()
    }
    /// Warnings: what compiles but the store will refuse at run time.
    fn lint(&self, _model: &Model) -> Vec<Problem> {
        Vec::new()
    }
    /// Adds this back end's artifacts to `files`.
    fn generate(&self, model: &Model, files: &mut Files);
}

/// PostgreSQL: DDL per store (migrations are diffed by `strata migrate`).
pub struct Postgres;
/// The Rust SDK: entities, enums, pools (`strata-derive` expands repositories).
pub struct Rust;
/// ClickHouse: table DDL and row types.
pub struct ClickHouse;
/// Elasticsearch: index mappings and document types.
pub struct Elasticsearch;
/// InfluxDB: point types and writer configuration.
pub struct Influx;
/// Operations: a Grafana dashboard over the SDK's metrics.
pub struct Grafana;

impl Backend for Grafana {
    fn name(&self) -> &'static str {
        "grafana"
    }
    fn generate(&self, model: &Model, files: &mut Files) {
        crate::grafana::generate(model, files)
    }
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn names(&self, model: &Model) -> Vec<Problem> {
        crate::postgres::check::names(model)
    }
    fn check(&self, model: &Model) -> Vec<Problem> {
        crate::postgres::check::check(model)
    }
    fn lint(&self, model: &Model) -> Vec<Problem> {
        crate::postgres::lint(model)
    }
    fn generate(&self, model: &Model, files: &mut Files) {
        crate::postgres::generate(model, files)
    }
}

impl Backend for Rust {
    fn name(&self) -> &'static str {
        "rust"
    }
    fn check(&self, model: &Model) -> Vec<Problem> {
        crate::rust::check(model)
    }
    fn generate(&self, model: &Model, files: &mut Files) {
        crate::rust::generate(model, files)
    }
}

impl Backend for ClickHouse {
    fn name(&self) -> &'static str {
        "clickhouse"
    }
    fn check(&self, model: &Model) -> Vec<Problem> {
        crate::clickhouse::check(model)
    }
    fn generate(&self, model: &Model, files: &mut Files) {
        crate::clickhouse::generate(model, files)
    }
}

impl Backend for Elasticsearch {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }
    fn check(&self, model: &Model) -> Vec<Problem> {
        crate::elasticsearch::check(model)
    }
    fn generate(&self, model: &Model, files: &mut Files) {
        crate::elasticsearch::generate(model, files)
    }
}

impl Backend for Influx {
    fn name(&self) -> &'static str {
        "influxdb"
    }
    fn check(&self, model: &Model) -> Vec<Problem> {
        crate::influx::check(model)
    }
    fn generate(&self, model: &Model, files: &mut Files) {
        crate::influx::generate(model, files)
    }
}
