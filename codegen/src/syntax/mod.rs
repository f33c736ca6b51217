//! The front end: schema files → spanned YAML trees → the schema AST.

pub mod ast;
mod decode;
pub mod yaml;

pub use decode::{decode, parse_duration, SECTIONS};
