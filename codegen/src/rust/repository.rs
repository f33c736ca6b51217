//! The one repository emitter. `strata-derive` calls [`expand`] for every
//! `#[derive(Entity)]`, on generated and hand-written structs alike. It
//! *declares*: the `New…`, `…Patch` and `…Key` types, an impl of
//! `strata_sdk::postgres::Table` (the table's names and column roles as a
//! `TableDef` constant, binders from fields to parameters, key extraction),
//! and the repository methods users call, each one call into the generic
//! code of `strata_sdk::postgres` that *behaves* (statements, batching,
//! the statement seam). The shape is diesel's `insertable.rs`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::attrs::{self, EntityDef};
use super::plan::Plan;

/// The derive's whole expansion for a struct, or the attribute error.
pub fn expand(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let def = attrs::parse(input)?;
    Ok(emit(&def))
}

/// Types, the `Table` impl and the repository methods of one entity.
pub fn emit(def: &EntityDef) -> TokenStream {
    let p = Plan::new(def);
    let types = types(&p);
    let table = super::table_impl::emit(&p);
    let methods = methods(&p);
    let finders = super::finders::emit(&p);
    let ident = &def.ident;
    // The impls sit in an anonymous const (as serde's derives do), so the
    // short path `__pg` cannot clash with the user's names.
    quote! {
        #types
        const _: () = {
            use ::strata_sdk::postgres as __pg;
            #table
            impl #ident {
                #methods
                #finders
            }
        };
    }
}

fn types(p: &Plan) -> TokenStream {
    let vis = &p.def.vis;
    let (ident, new, patch, key) = (&p.def.ident, p.new_ident(), p.patch_ident(), p.key_ident());
    let key_ty = p.key_ty();
    let new_fields = p.new.iter().map(|&i| {
        let (f, t) = (p.ident(i), p.new_ty(i));
        quote!(pub #f: #t)
    });
    let patch_fields = p.upd.iter().map(|&i| {
        let (f, t) = (p.ident(i), p.ty(i));
        quote!(pub #f: ::std::option::Option<#t>)
    });
    let adds = p.upd.iter().filter(|&&i| p.numeric(i)).map(|&i| {
        let (f, t) = (p.add_ident(i), p.ty(i));
        let t = super::types::option_inner(t).unwrap_or(t);
        let doc = format!(
            "Added to `{}` atomically (`SET c = c + n`; NULL counts as 0), after any value set.",
            p.ident(i)
        );
        quote!(#[doc = #doc] pub #f: ::std::option::Option<#t>)
    });
    let expected = p.version.map(|_| {
        quote! {
            #[doc = "The patch applies only if the row still has this version."]
            pub expected_version: ::std::option::Option<i64>,
            #[doc = "Apply whatever the row's version (needed when `expected_version` is `None`)."]
            pub any_version: bool
        }
    });
    let key_doc = format!("The primary key of [`{ident}`].");
    let new_doc = format!("A [`{ident}`] to insert; `None` fields take their schema default.");
    let patch_doc = format!("A partial update of [`{ident}`]: only the fields set are written.");
    quote! {
        #[doc = #key_doc]
        #vis type #key = #key_ty;
        #[doc = #new_doc]
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #vis struct #new { #(#new_fields,)* }
        #[doc = #patch_doc]
        #[derive(Debug, Clone, Default, PartialEq)]
        #vis struct #patch { #(#patch_fields,)* #(#adds,)* #expected }
    }
}

/// One repository method: its doc, name, arguments after `db`, result
/// type, and the call into `strata_sdk::postgres`.
struct Method {
    doc: &'static str,
    name: &'static str,
    args: TokenStream,
    out: TokenStream,
    call: TokenStream,
    /// Calls `strata_sdk::cache::repo` instead of `strata_sdk::postgres::repo`.
    via_cache: bool,
}

fn method(m: Method) -> TokenStream {
    let Method {
        doc,
        name,
        args,
        out,
        call,
        via_cache,
    } = m;
    let name = format_ident!("{name}");
    let module = match via_cache {
        true => quote!(::strata_sdk::cache::repo),
        false => quote!(__pg::repo),
    };
    quote! {
        #[doc = #doc]
        pub fn #name<'a, A: __pg::Db<'a>>(db: A, #args) -> __pg::Fut<'a, #out> {
            #module::#call
        }
    }
}

fn methods(p: &Plan) -> TokenStream {
    let (table, cols) = (&p.table, &p.cols);
    let (new, patch, key) = (p.new_ident(), p.patch_ident(), p.key_ident());
    let key_fields = p.key.iter().map(|&i| p.ident(i));
    let key_value = match p.key.len() {
        1 => quote!(#(::std::clone::Clone::clone(&self.#key_fields))*),
        _ => quote!((#(::std::clone::Clone::clone(&self.#key_fields),)*)),
    };
    let opt = quote!(::std::option::Option<Self>);
    let vec = quote!(::std::vec::Vec<Self>);
    let m = |doc, name, args, out, call| Method {
        doc,
        name,
        args,
        out,
        call,
        via_cache: false,
    };
    let single = [
        m("Inserts a row (`None` fields take their default); see [`__pg::repo::insert`].", "insert", quote!(row: &'a #new), quote!(Self), quote!(insert(db, row))),
        m("Inserts or overwrites the row with its key; see [`__pg::repo::upsert`].", "upsert", quote!(row: &'a #new), quote!(Self), quote!(upsert(db, row))),
        m("The row with this key, if any.", "find", quote!(key: &'a #key), opt, quote!(find(db, key))),
        m("The row with this key; `Error::NotFound` if there is none.", "get", quote!(key: &'a #key), quote!(Self), quote!(get(db, key))),
        m("The rows with these keys, in one statement (missing keys are skipped).", "get_many", quote!(keys: &'a [#key]), vec, quote!(get_many(db, keys))),
        m("Writes the row's data columns by key, checking its version; see [`__pg::repo::update`].", "update", quote!(row: &'a Self), quote!(Self), quote!(update(db, row))),
        m("Writes only the fields set in the patch; see [`__pg::repo::patch`].", "patch", quote!(key: &'a #key, patch: &'a #patch), quote!(Self), quote!(patch(db, key, patch))),
        m("Deletes the row with this key; `false` if there was none.", "delete", quote!(key: &'a #key), quote!(bool), quote!(delete::<Self, A>(db, key))),
        m("Whether a row has this key.", "exists", quote!(key: &'a #key), quote!(bool), quote!(exists::<Self, A>(db, key))),
        m("One page of rows in key order after the cursor (keyset pagination).", "list", quote!(page: &'a __pg::PageRequest<#key>), quote!(__pg::Page<Self, #key>), quote!(list(db, page))),
    ];
    // Reads by key of an entity with `cache:` go through the SDK's cache
    // when the executor has one (`&strata_sdk::cache::Store`).
    let cached = p.def.entity.cache.is_some();
    let single = single.into_iter().map(|mut m| {
        if cached && matches!(m.name, "find" | "get" | "get_many") {
            let name = format_ident!("{}", m.name);
            let arg = match m.name {
                "get_many" => quote!(keys),
                _ => quote!(key),
            };
            m.call = quote!(#name::<Self, A>(db, #arg));
            m.via_cache = true;
        }
        method(m)
    });
    let batch = batch(p);
    quote! {
        #[doc = "The table, quoted."]
        pub const TABLE: &'static str = #table;
        #[doc = "Every column, quoted, in field order."]
        pub const COLUMNS: &'static str = #cols;
        #[doc = "This row's primary key."]
        pub fn key(&self) -> #key { #key_value }
        #[doc = "How many rows the table holds."]
        pub fn count<'a, A: __pg::Db<'a>>(db: A) -> __pg::Fut<'a, i64> {
            __pg::repo::count::<Self, A>(db)
        }
        #(#single)*
        #batch
    }
}

/// `insert_many`, `upsert_many`, `update_many` (when there is something to
/// update), `delete_many`: one transaction per call; see `strata_sdk::postgres::insert_many`.
fn batch(p: &Plan) -> TokenStream {
    let (new, key) = (p.new_ident(), p.key_ident());
    let one = |name: &str, doc: &str, item: TokenStream| {
        let f = format_ident!("{name}");
        quote! {
            #[doc = #doc]
            pub fn #f<'a, A: __pg::Db<'a>, I: __pg::Rows<'a, #item>>(db: A, rows: I) -> __pg::Fut<'a, ::strata_sdk::BatchCounts> {
                __pg::#f::<Self, A, I>(db, rows)
            }
        }
    };
    let mut out = quote!();
    // Rows with nothing to insert (every column generated) have no batch insert.
    if !p.new.is_empty() {
        out.extend(one(
            "insert_many",
            "Inserts rows, skipping keys that exist; see [`__pg::insert_many`].",
            quote!(#new),
        ));
        out.extend(one(
            "upsert_many",
            "Inserts rows or overwrites those whose key exists; see [`__pg::upsert_many`].",
            quote!(#new),
        ));
    }
    if !(p.upd.is_empty() && p.updated_at.is_none() && p.version.is_none()) {
        out.extend(one(
            "update_many",
            "Writes each row by key, all or nothing; see [`__pg::update_many`].",
            quote!(Self),
        ));
    }
    out.extend(one(
        "delete_many",
        "Deletes the rows with these keys; see [`__pg::delete_many`].",
        quote!(#key),
    ));
    out
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
