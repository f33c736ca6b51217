//! The schema's named queries and the sort fields' keyset listings
//! (`list_by_<field>`) as typed methods: parameters by reference, each
//! method one call into `strata_sdk::postgres::repo` with the query's index
//! in the table's `TableDef` (the SDK builds the statement).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use super::plan::Plan;

/// The connection is `strata_db` so that a parameter named after a field
/// (`db`) cannot shadow it.
pub fn emit(p: &Plan) -> TokenStream {
    let queries = p.def.entity.queries.iter().enumerate().map(|(n, q)| {
        // `find_<name>` for a name the repository already uses: the one
        // rule the resolver's name checks also apply.
        let method = super::check::names::finder_method(&q.name.rust);
        let name = match method.strip_prefix("r#") {
            Some(raw) => syn::Ident::new_raw(raw, proc_macro2::Span::call_site()),
            None => syn::Ident::new(&method, proc_macro2::Span::call_site()),
        };
        let args = q.params.iter().map(|&i| {
            let (f, t) = (p.ident(i), param_ty(p.ty(i)));
            quote_spanned!(p.def.spans[i]=> #f: &'a #t)
        });
        let params = q.params.iter().map(|&i| p.ident(i));
        let doc = format!("The schema's query `{}`.", q.name.schema);
        let idx = proc_macro2::Literal::usize_unsuffixed(n);
        let params: Vec<_> = params.collect();
        let (out, body) = match (q.one, p.def.entity.cache.is_some()) {
            (true, true) => {
                let same = q.params.iter().map(|&i| same_value(p, i));
                let body = quote! {
                    ::strata_sdk::cache::finder::query_one(
                        strata_db, #idx, ::strata_sdk::params!(#(#params),*),
                        ::strata_sdk::finder_key!(#(#params),*),
                        move |r: &Self| true #(&& #same)*,
                    )
                };
                (quote!(::std::option::Option<Self>), body)
            }
            (true, false) => (
                quote!(::std::option::Option<Self>),
                quote!(__pg::repo::query_one(strata_db, #idx, ::strata_sdk::params!(#(#params),*))),
            ),
            (false, _) => (
                quote!(::std::vec::Vec<Self>),
                quote!(__pg::repo::query(strata_db, #idx, ::strata_sdk::params!(#(#params),*))),
            ),
        };
        quote! {
            #[doc = #doc]
            #[allow(clippy::too_many_arguments)]
            pub fn #name<'a, A: __pg::Db<'a>>(strata_db: A, #(#args),*) -> __pg::Fut<'a, #out> {
                #body
            }
        }
    });
    let lists = p
        .def
        .sorts
        .iter()
        .enumerate()
        .map(|(n, &i)| list_by(p, n, i));
    quote!(#(#queries)* #(#lists)*)
}

/// `list_by_<field>`: pages ordered by the field then the key; the cursor
/// is the last row's `(field, key)`.
fn list_by(p: &Plan, n: usize, i: usize) -> TokenStream {
    let (f, t, key) = (p.ident(i), p.ty(i), p.key_ident());
    let field = f.to_string();
    let name = format_ident!("list_by_{}", field.trim_start_matches("r#"));
    let doc = format!(
        "One page of rows ordered by `{field}` then the key, after the cursor `({field}, key)`."
    );
    let cursor = quote!((#t, #key));
    let idx = proc_macro2::Literal::usize_unsuffixed(n);
    quote! {
        #[doc = #doc]
        pub fn #name<'a, A: __pg::Db<'a>>(db: A, page: &'a __pg::PageRequest<#cursor>) -> __pg::Fut<'a, __pg::Page<Self, #cursor>> {
            __pg::repo::list_by(db, #idx, page, |r| &r.#f)
        }
    }
}

/// Whether row `r`'s field `i` equals the finder's parameter of the same
/// name (a `&'a` reference to the field's type without `Option`, `str`
/// for `String`): what a cached finder checks before serving a row.
fn same_value(p: &Plan, i: usize) -> TokenStream {
    let (f, ty) = (p.ident(i), p.ty(i));
    match super::types::option_inner(ty) {
        Some(inner) if is_string(inner) => {
            quote!(r.#f.as_deref() == ::std::option::Option::Some(#f))
        }
        Some(_) => quote!(r.#f.as_ref() == ::std::option::Option::Some(#f)),
        None if is_string(ty) => quote!(r.#f.as_str() == #f),
        None => quote!(&r.#f == #f),
    }
}

/// A parameter's type: the field's, without `Option` (a finder compares
/// with `=`, which never matches NULL), and `str` for `String`.
fn param_ty(ty: &syn::Type) -> TokenStream {
    let inner = super::types::option_inner(ty).unwrap_or(ty);
    match is_string(inner) {
        true => quote!(str),
        false => quote!(#inner),
    }
}

/// Whether a type is `String` (by its last path segment).
fn is_string(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "String"))
}
