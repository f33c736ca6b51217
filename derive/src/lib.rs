//! # strata-derive
//!
//! `#[derive(Entity)]`: the repository of a struct with `#[strata(...)]`
//! attributes. A thin front end over `strata_codegen::rust::repository`,
//! the one emitter that generated and hand-written structs share.
//!
//! ```ignore
//! #[derive(sqlx::FromRow, strata_derive::Entity)]
//! #[strata(table = "notes", key(id))]
//! pub struct Note {
//!     #[strata(ty = "uuid", default = generated)]
//!     pub id: uuid::Uuid,
//!     #[strata(ty = "text")]
//!     pub body: String,
//! }
//! // Note::insert, Note::get, Note::list, Note::upsert_many, ...
//! ```
//!
//! Struct settings: `table = "…"`, `schema = "…"`, `key(a, b)` (default
//! `id`), `sort(field, …)` (non-null fields; adds `list_by_<field>`), `query(name(params(…),
//! fixed(field = value), order = "f desc", limit = N, one))`. Field settings:
//! `column = "…"`, `ty = "decimal(20,8)"` (schema type; with an array
//! field the batch writes go in multi-row `VALUES` chunks), `default = now | generated | identity | empty | literal`
//! (the field is `Option` in `New…` and the database fills a `None`),
//! `created_at`, `updated_at`, `version`, `enum_type` (the `ty` names an enum even though
//! it is spelt like a built-in type, e.g. an enum called `Uuid`).
//!
//! Field types must be the exact Rust types of their columns (`i32` for
//! `integer`, `i64` for `bigint`, …): large batches travel as binary `COPY`
//! rows, which PostgreSQL does not coerce; a mismatch is a typed
//! `Error::InvalidValue` at run time.

use proc_macro::TokenStream;

#[proc_macro_derive(Entity, attributes(strata))]
pub fn derive_entity(input: TokenStream) -> TokenStream {
    expand(input.into()).into()
}

fn expand(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    syn::parse2::<syn::DeriveInput>(input)
        .and_then(|i| strata_codegen::rust::repository::expand(&i))
        .unwrap_or_else(syn::Error::into_compile_error)
}
