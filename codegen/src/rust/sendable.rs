//! Repository methods are written as `async fn`s generic over
//! `A: sqlx::Acquire<'c>`; rustc cannot prove such futures `Send` when the
//! caller passes `&mut *tx` inside `tokio::spawn` ("implementation of
//! `Acquire` is not general enough", launchbadge/sqlx#1015). This pass
//! rewrites each of them into the workaround sqlx documents: a plain `fn`
//! returning `impl Future<Output = …> + Send + 'a`, every borrowed argument
//! and type parameter bounded by `'a`, the body an `async move` block.

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit_mut::VisitMut;

/// Rewrites every `async fn` with a type parameter `A` among `items` (the
/// contents of an `impl` block).
pub fn rewrite(items: TokenStream) -> TokenStream {
    let mut block: syn::ItemImpl = match syn::parse2(quote!(impl X { #items })) {
        Ok(b) => b,
        Err(e) => panic!("strata-codegen emitted an impl that does not parse ({e}):\n{items}"),
    };
    for item in &mut block.items {
        if let syn::ImplItem::Fn(f) = item {
            rewrite_fn(f);
        }
    }
    let items = block.items;
    quote!(#(#items)*)
}

/// `&T` → `&'a T` in argument types.
struct Borrows;

impl VisitMut for Borrows {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(syn::parse_quote!('a));
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
}

fn rewrite_fn(f: &mut syn::ImplItemFn) {
    let generic = f.sig.generics.type_params().any(|t| t.ident == "A");
    if f.sig.asyncness.is_none() || !generic {
        return;
    }
    f.sig.asyncness = None;
    f.sig.generics.params.insert(0, syn::parse_quote!('a));
    let mut iterators = Vec::new();
    for t in f.sig.generics.type_params_mut() {
        t.bounds.push(syn::parse_quote!(::std::marker::Send));
        t.bounds.push(syn::parse_quote!('a));
        if t.ident != "A" {
            iterators.push(t.ident.clone());
        }
    }
    let wc = f.sig.generics.make_where_clause();
    for i in iterators {
        wc.predicates.push(syn::parse_quote!(
            <#i as ::std::iter::IntoIterator>::IntoIter: ::std::marker::Send
        ));
    }
    for arg in &mut f.sig.inputs {
        if let syn::FnArg::Typed(pt) = arg {
            Borrows.visit_type_mut(&mut pt.ty);
        }
    }
    let out = match &f.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, t) => quote!(#t),
    };
    f.sig.output = syn::parse_quote!(
        -> impl ::std::future::Future<Output = #out> + ::std::marker::Send + 'a
    );
    let body = &f.block;
    f.block = syn::parse_quote!({ async move #body });
}
