//! Rust back end: the generated structs and enums of the SDK crate.

mod format;

pub use format::format_file;

use crate::files::Files;
use crate::model::Model;

pub fn generate(_model: &Model, _files: &mut Files) {}
