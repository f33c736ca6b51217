//! The front end: schema files → spanned YAML trees → the schema AST.

//!
//! The YAML reader (`yaml`, `reader`, `entity`, `decode`) is behind the
//! `yaml` feature: `#[derive(Entity)]` resolves attributes without it, so
//! the proc-macro compiles no YAML parser.

pub mod ast;
#[cfg(feature = "yaml")]
mod decode;
#[cfg(feature = "yaml")]
mod entity;
pub mod error;
mod keys;
#[cfg(feature = "yaml")]
mod reader;
#[cfg(feature = "yaml")]
pub mod yaml;

#[cfg(feature = "yaml")]
pub use decode::decode;
pub(crate) use keys::POOL_KEYS;
pub use keys::{
    duration_overflows, parse_duration, DURATION_RANGE, INDEX_METHODS, ON_DELETE_ACTIONS,
    PRECISIONS, SECTIONS, STORE_KIND_SETTINGS,
};

#[cfg(feature = "yaml")]
/// Parses one schema file into its AST, collecting every problem. A file that
/// is not valid YAML gives an empty AST marked `incomplete`.
pub fn parse(
    file: crate::source::FileId,
    text: &str,
    probs: &mut crate::diagnostics::Problems,
) -> ast::SchemaFile {
    let before = probs.list.len();
    let root = yaml::load(file, text, probs);
    let yaml_failed = root.is_none() && probs.list.len() > before;
    let mut ast = decode(root.as_ref(), probs);
    ast.incomplete = yaml_failed;
    ast
}
