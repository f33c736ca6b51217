//! PostgreSQL back end: the catalog a store should have, its DDL, and migrations.

pub mod catalog;
pub mod check;
pub mod ddl;
pub mod diff;
mod diff_column;
mod diff_rename;
mod diff_table;
pub mod error;
mod lossy;
pub mod migration;
pub mod owner;
mod relations;

pub use catalog::default_expr;
pub use check::lint;
pub use diff_table::pkey_name;

use crate::files::{header, Artifact, Files};
use crate::model::Model;

/// `postgres/<store>.sql`: the DDL of each postgres store, from an empty database.
pub fn generate(model: &Model, files: &mut Files) {
    for store in catalog::postgres_stores(model) {
        let cat = catalog::catalog(model, store);
        files.add(
            Artifact::PostgresDdl {
                store: model[store].name.clone(),
            },
            format!("{}\n{}", header("--"), ddl::create_all(&cat)),
        );
    }
}
