//! The front end: schema files → spanned YAML trees → the schema AST.

pub mod ast;
mod decode;
mod entity;
mod keys;
mod reader;
pub mod yaml;

pub use decode::decode;
pub(crate) use keys::POOL_KEYS;
pub use keys::{INDEX_METHODS, ON_DELETE_ACTIONS, PRECISIONS, SECTIONS, STORE_KIND_SETTINGS};
pub use reader::parse_duration;

use crate::diagnostics::Problems;
use crate::source::FileId;

/// Parses one schema file into its AST, collecting every problem. A file that
/// is not valid YAML gives an empty AST marked `incomplete`.
pub fn parse(file: FileId, text: &str, probs: &mut Problems) -> ast::SchemaFile {
    let before = probs.list.len();
    let root = yaml::load(file, text, probs);
    let yaml_failed = root.is_none() && probs.list.len() > before;
    let mut ast = decode(root.as_ref(), probs);
    ast.incomplete = yaml_failed;
    ast
}
