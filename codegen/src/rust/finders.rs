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
        let (out, call) = match q.one {
            true => (quote!(::std::option::Option<Self>), quote!(query_one)),
            false => (quote!(::std::vec::Vec<Self>), quote!(query)),
        };
        quote! {
            #[doc = #doc]
            #[allow(clippy::too_many_arguments)]
            pub fn #name<'a, A: __pg::Db<'a>>(strata_db: A, #(#args),*) -> __pg::Fut<'a, #out> {
                __pg::repo::#call(strata_db, #idx, ::strata_sdk::params!(#(#params),*))
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

/// A parameter's type: the field's, without `Option` (a finder compares
/// with `=`, which never matches NULL), and `str` for `String`.
fn param_ty(ty: &syn::Type) -> TokenStream {
    let inner = super::types::option_inner(ty).unwrap_or(ty);
    if let syn::Type::Path(p) = inner {
        if p.path.segments.last().is_some_and(|s| s.ident == "String") {
            return quote!(str);
        }
    }
    quote!(#inner)
}
