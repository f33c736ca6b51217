//! The typed document struct of each search index.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::{Entity, Field, FieldRole, Model, ScalarType, Store, StoreId, Type};

use super::mapping::{alias, fields, index_name, is_text};

fn ident(s: &str) -> proc_macro2::Ident {
    let s = crate::names::rust_ident(s);
    match s.strip_prefix("r#") {
        Some(raw) => proc_macro2::Ident::new_raw(raw, proc_macro2::Span::call_site()),
        None => proc_macro2::Ident::new(&s, proc_macro2::Span::call_site()),
    }
}

fn rust_type(e: &Entity, i: usize, f: &Field) -> TokenStream {
    let sdk = quote!(::strata_sdk::elasticsearch);
    let t = match f.ty.scalar() {
        ScalarType::Uuid => quote!(#sdk::Uuid),
        ScalarType::Bool => quote!(bool),
        ScalarType::I16 => quote!(i16),
        ScalarType::I32 => quote!(i32),
        ScalarType::I64 => quote!(i64),
        ScalarType::F64 => quote!(f64),
        ScalarType::Decimal { .. } => quote!(#sdk::Decimal),
        ScalarType::Timestamptz => quote!(#sdk::DateTime<#sdk::Utc>),
        ScalarType::Date => quote!(#sdk::NaiveDate),
        ScalarType::Json if !is_text(e, i) => quote!(#sdk::Json),
        _ => quote!(::std::string::String),
    };
    match (&f.ty, f.nullable) {
        (Type::Array(_), _) => quote!(::std::vec::Vec<#t>),
        (Type::Scalar(_), true) => quote!(::std::option::Option<#t>),
        (Type::Scalar(_), false) => t,
    }
}

fn document(model: &Model, store: &Store, e: &Entity) -> TokenStream {
    let name = format_ident!("{}Doc", e.name.rust);
    let decls = fields(e).map(|(i, f)| {
        let n = ident(&f.name.rust);
        let t = rust_type(e, i, f);
        let doc = format!(
            " `{}` ({}{})",
            f.name.schema,
            f.ty,
            if f.nullable { "?" } else { "" }
        );
        let rename = &f.name.sql;
        quote!(#[doc = #doc] #[serde(rename = #rename)] pub #n: #t,)
    });
    let keys: Vec<_> = e.key_fields().map(|f| ident(&f.name.rust)).collect();
    let id = if keys.len() == 1 {
        let k = &keys[0];
        quote!(::std::string::ToString::to_string(&self.#k))
    } else {
        // A JSON array of the key parts: unambiguous whatever the parts hold.
        quote!(::strata_sdk::elasticsearch::Json::from(::std::vec![#(::strata_sdk::elasticsearch::Json::from(::std::string::ToString::to_string(&self.#keys))),*]).to_string())
    };
    let version = if let Some(v) = e.version.map(|i| &e.fields[i]) {
        let v = ident(&v.name.rust);
        quote!(u64::try_from(self.#v).ok())
    } else if let Some(u) = e.fields.iter().find(|f| f.role == FieldRole::UpdatedAt) {
        let u = ident(&u.name.rust);
        quote!(u64::try_from(self.#u.timestamp_micros()).ok())
    } else {
        quote!(::std::option::Option::None)
    };
    let alias = alias(store, e);
    let index = index_name(store, e);
    let checks = fields(e).filter_map(|(i, f)| {
        let rule = match f.ty.scalar() {
            ScalarType::F64 => quote!(finite),
            ScalarType::Timestamptz => quote!(date_nanos),
            ScalarType::Date => quote!(strict_date),
            ScalarType::Json if !is_text(e, i) => quote!(flattened),
            _ => return None,
        };
        let n = ident(&f.name.rust);
        let name = &f.name.sql;
        Some(quote! {
            ::strata_sdk::elasticsearch::check(#alias, || self.id(), #name, &self.#n, ::strata_sdk::elasticsearch::rules::#rule)?;
        })
    });
    let doc = format!(
        " A document of index `{index}` (alias `{alias}`): entity `{}`. Secrets are left out; \
         declared text `json` is its JSON text.",
        e.name.schema
    );
    let from = from_entity(model, e, &name);
    quote! {
        #[doc = #doc]
        #[derive(
            ::std::fmt::Debug,
            ::std::clone::Clone,
            ::std::cmp::PartialEq,
            ::strata_sdk::elasticsearch::serde::Serialize,
            ::strata_sdk::elasticsearch::serde::Deserialize,
        )]
        #[serde(crate = "::strata_sdk::elasticsearch::serde", deny_unknown_fields)]
        pub struct #name {
            #(#decls)*
        }

        impl ::strata_sdk::elasticsearch::Document for #name {
            const ALIAS: &'static str = #alias;
            const INDEX: &'static str = #index;
            fn id(&self) -> ::std::string::String {
                #id
            }
            fn version(&self) -> ::std::option::Option<u64> {
                #version
            }
            fn check(&self) -> ::std::result::Result<(), ::strata_sdk::elasticsearch::ValueError> {
                #(#checks)*
                ::std::result::Result::Ok(())
            }
        }

        #from
    }
}

/// For an entity whose home store is PostgreSQL: `From<&X>` (its version
/// is the document's, see `Document::version`).
fn from_entity(model: &Model, e: &Entity, name: &proc_macro2::Ident) -> TokenStream {
    use crate::rust::convert;
    if !convert::has_entity_struct(model, e) {
        return TokenStream::new();
    }
    let entity = convert::entity_path(e);
    let fields = fields(e).map(|(i, f)| {
        let n = ident(&f.name.rust);
        let v = convert::field_value(f, is_text(e, i));
        quote!(#n: #v,)
    });
    let doc = format!(
        " The document of a `{}` read from PostgreSQL. Secrets are left out, enums become \
         their stored names, declared text `json` its JSON text.",
        e.name.schema
    );
    let try_doc = format!(
        " The document of a `{}`, or the first field its mapping cannot hold exactly \
         (NaN, a time outside `date_nanos`, a non-object `flattened` value): \
         [`From`] and then [`Document::check`](::strata_sdk::elasticsearch::Document::check).",
        e.name.schema
    );
    quote! {
        impl ::core::convert::From<&#entity> for #name {
            #[doc = #doc]
            fn from(entity: &#entity) -> Self {
                Self {
                    #(#fields)*
                }
            }
        }

        impl #name {
            #[doc = #try_doc]
            pub fn try_from_entity(
                entity: &#entity,
            ) -> ::std::result::Result<Self, ::strata_sdk::elasticsearch::ValueError> {
                let doc = Self::from(entity);
                ::strata_sdk::elasticsearch::Document::check(&doc)?;
                ::std::result::Result::Ok(doc)
            }
        }
    }
}

/// The generated Rust: `pub mod <store> { <Entity>Doc ... }`.
pub fn rust(model: &Model) -> String {
    let idx = super::indexes(model);
    // Ids are in name order, as the modules are.
    let mut stores: Vec<StoreId> = idx.iter().map(|&(s, _)| s).collect();
    stores.sort();
    stores.dedup();
    let mods = stores.iter().map(|&id| {
        let s = &model[id];
        let store = s.name.as_str();
        let m = ident(store);
        let docs = (idx.iter())
            .filter(|&&(t, _)| t == id)
            .map(|(_, e)| document(model, s, e));
        let doc = format!(" Documents of the Elasticsearch store `{store}`.");
        let url =
            (s.url.as_ref()).map_or_else(|| "http://127.0.0.1:9200".to_string(), |t| t.raw.clone());
        let cfg_doc = format!(
            " Bulk settings for store `{store}`, its url `{url}` expanded from the environment."
        );
        quote! {
            #[doc = #doc]
            pub mod #m {
                #[doc = #cfg_doc]
                pub fn bulk_config() -> ::std::result::Result<
                    ::strata_sdk::elasticsearch::WriterConfig,
                    ::strata_sdk::elasticsearch::TemplateError,
                > {
                    ::std::result::Result::Ok(::strata_sdk::elasticsearch::WriterConfig::new(
                        ::strata_sdk::elasticsearch::expand(#url)?,
                    ).with_store(#store))
                }
                #(#docs)*
            }
        }
    });
    crate::rust::format_file(quote!(#(#mods)*))
}
