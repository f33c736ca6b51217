//! The `impl strata_sdk::events::Events` of an entity with `events:`: its
//! settings as a constant and the row type its changes carry. An entity
//! with secret fields gets a view without them, `<Entity>Public`, so no
//! event can be decoded into (and written back as) the entity with its
//! secrets blanked.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::plan::Plan;

pub fn emit(p: &Plan) -> TokenStream {
    let e = &p.def.entity;
    let Some(ev) = &e.events else {
        return TokenStream::new();
    };
    let ident = &p.def.ident;
    let name = &e.name.schema;
    let (parts, max_len, pubsub) = (ev.partitions, ev.max_len, ev.pubsub);
    let secrets = e.fields.iter().any(|f| f.is_secret());
    let (view, row) = match secrets {
        false => (TokenStream::new(), quote!(#ident)),
        true => {
            let vis = &p.def.vis;
            let view = format_ident!("{}Public", ident);
            let fields = (0..e.fields.len())
                .filter(|&i| !e.fields[i].is_secret())
                .map(|i| {
                    let (f, t) = (&p.def.idents[i], &p.def.types[i]);
                    let optional = super::types::option_inner(t).is_some();
                    let float = super::types::float_serde(&e.fields[i].ty, optional);
                    quote!(#float pub #f: #t)
                });
            let doc = format!("`{ident}` without its secret fields: the row of its change events.");
            (
                quote! {
                    #[doc = #doc]
                    #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
                    #vis struct #view { #(#fields,)* }
                },
                quote!(#view),
            )
        }
    };
    quote! {
        #view
        impl ::strata_sdk::events::Events for #ident {
            const EVENTS: ::strata_sdk::events::EventsDef = ::strata_sdk::events::EventsDef {
                entity: #name,
                partitions: #parts,
                max_len: #max_len,
                pubsub: #pubsub,
            };
            type Row = #row;
        }
        impl #ident {
            #[doc = "Every committed change after `from` (exclusive), in commit order; see `strata_sdk::events::Client::subscribe`."]
            pub fn subscribe(
                client: &::strata_sdk::events::Client,
                from: ::strata_sdk::events::Position,
            ) -> impl ::strata_sdk::events::Stream<
                Item = ::strata_sdk::Result<::strata_sdk::events::Change<#row>>,
            > + ::std::marker::Send + ::std::marker::Unpin + 'static {
                client.subscribe::<Self>(from)
            }
        }
    }
}
