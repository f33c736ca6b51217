//! Rust back end: the generated structs and enums of the SDK crate, and the
//! one repository emitter that `strata-derive` expands for them.

pub mod attrs;
pub mod check;
pub mod convert;
mod entities;
pub mod error;
mod events_impl;
mod finders;
mod format;
mod plan;
pub mod repository;
pub(crate) mod table_impl;
pub mod types;

pub use check::check;
pub use format::format_file;

use crate::files::{Artifact, Files};
use crate::model::Model;

/// `rust/entities.rs`: enums, row structs and pool constructors.
pub fn generate(model: &Model, files: &mut Files) {
    files.add(
        Artifact::RustModule("entities".into()),
        format_file(entities::emit(model)),
    );
}
