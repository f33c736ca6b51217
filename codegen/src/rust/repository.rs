//! The one repository emitter. `strata-derive` calls [`expand`] for every
//! `#[derive(Entity)]`, on generated and hand-written structs alike. It
//! *declares*: the `New…`, `…Patch` and `…Key` types, an impl of
//! `strata_sdk::postgres::Table` (the table's names and column roles as a
//! `TableDef` constant, binders from fields to parameters, key extraction),
//! and the repository methods users call: the standard ones through one
//! line, `strata_sdk::repository_methods!` (written once in the SDK), the
//! entity's own (finders, sorted lists) here; each is one call into the
//! generic code of `strata_sdk::postgres` that *behaves* (statements,
//! batching, the statement seam). The shape is diesel's `insertable.rs`.

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
    let events = super::events_impl::emit(&p);
    let ident = &def.ident;
    // The impls sit in an anonymous const (as serde's derives do), so the
    // short path `__pg` cannot clash with the user's names.
    quote! {
        #types
        #events
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
        let optional = p.optional_in_new(i) || super::types::option_inner(p.ty(i)).is_some();
        let float = super::types::float_serde(&p.def.entity.fields[i].ty, optional);
        quote!(#float pub #f: #t)
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

fn methods(p: &Plan) -> TokenStream {
    let (table, cols) = (&p.table, &p.cols);
    let (new, patch, key) = (p.new_ident(), p.patch_ident(), p.key_ident());
    let key_fields = p.key.iter().map(|&i| p.ident(i));
    let key_value = match p.key.len() {
        1 => quote!(#(::std::clone::Clone::clone(&self.#key_fields))*),
        _ => quote!((#(::std::clone::Clone::clone(&self.#key_fields),)*)),
    };
    let batch = batch(p);
    // Reads by key of an entity with `cache:` go through the SDK's cache
    // when the executor has one (`&strata_sdk::cache::Store`).
    let reads = match p.def.entity.cache.is_some() {
        true => format_ident!("cache"),
        false => format_ident!("postgres"),
    };
    quote! {
        #[doc = "The table, quoted."]
        pub const TABLE: &'static str = #table;
        #[doc = "Every column, quoted, in field order."]
        pub const COLUMNS: &'static str = #cols;
        #[doc = "This row's primary key."]
        pub fn key(&self) -> #key { #key_value }
        ::strata_sdk::repository_methods!(key = #key, new = #new, patch = #patch, reads = #reads, batch = [#(#batch),*]);
    }
}

/// The batch writers the entity has (see `strata_sdk::repository_methods!`):
/// `insert_many` and `upsert_many` unless every column is generated,
/// `update_many` unless nothing can be updated, and `delete_many`.
fn batch(p: &Plan) -> Vec<proc_macro2::Ident> {
    let mut out = Vec::new();
    if !p.new.is_empty() {
        out.extend(["insert_many", "upsert_many"]);
    }
    if !(p.upd.is_empty() && p.updated_at.is_none() && p.version.is_none()) {
        out.push("update_many");
    }
    out.push("delete_many");
    out.into_iter().map(|n| format_ident!("{n}")).collect()
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
