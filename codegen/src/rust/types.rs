//! The Rust type of each schema type, named by full path.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::{Field, Model, ScalarType, Type};

/// The Rust type of a scalar.
pub fn scalar(model: &Model, s: &ScalarType) -> TokenStream {
    match s {
        ScalarType::Uuid => quote!(::uuid::Uuid),
        ScalarType::String { .. } | ScalarType::Text => quote!(::std::string::String),
        ScalarType::Bool => quote!(bool),
        ScalarType::I16 => quote!(i16),
        ScalarType::I32 => quote!(i32),
        ScalarType::I64 => quote!(i64),
        ScalarType::F64 => quote!(f64),
        ScalarType::Decimal { .. } => quote!(::rust_decimal::Decimal),
        ScalarType::Timestamptz => quote!(::chrono::DateTime<::chrono::Utc>),
        ScalarType::Date => quote!(::chrono::NaiveDate),
        ScalarType::Json => quote!(::serde_json::Value),
        ScalarType::Bytes => quote!(::std::vec::Vec<u8>),
        ScalarType::Secret => quote!(::strata_sdk::Secret),
        ScalarType::Enum(name) => {
            let rust = model
                .enum_named(name)
                .map(|e| e.name.rust.clone())
                .unwrap_or_else(|| name.clone());
            let id = format_ident!("{}", rust);
            quote!(#id)
        }
    }
}

/// The Rust type of a type (arrays as `Vec`).
pub fn of_type(model: &Model, t: &Type) -> TokenStream {
    let s = scalar(model, t.scalar());
    match t {
        Type::Scalar(_) => s,
        Type::Array(_) => quote!(::std::vec::Vec<#s>),
    }
}

/// The Rust type of a field of the row struct (`Option` when nullable).
pub fn of_field(model: &Model, f: &Field) -> TokenStream {
    let t = of_type(model, &f.ty);
    if f.nullable {
        quote!(::std::option::Option<#t>)
    } else {
        t
    }
}

/// The inner type of `Option<T>` (by its last path segment), if `ty` is one.
pub fn option_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(t)) if args.args.len() == 1 => Some(t),
        _ => None,
    }
}

/// `#[serde(with = "::strata_sdk::float")]` on an `f64` field (with
/// `default` when its Rust type is an `Option`, which serde otherwise
/// defaults by itself), so NaN and ±infinity round-trip through JSON
/// (change events, an application's own JSON); nothing for other types.
pub fn float_serde(ty: &Type, optional: bool) -> TokenStream {
    match (ty.scalar(), optional) {
        (ScalarType::F64, false) => quote!(#[serde(with = "::strata_sdk::float")]),
        (ScalarType::F64, true) => quote!(#[serde(default, with = "::strata_sdk::float")]),
        _ => TokenStream::new(),
    }
}

/// `r#type` for a Rust keyword, the plain name otherwise.
pub fn ident(s: &str) -> syn::Ident {
    let text = crate::names::rust_ident(s);
    match text.strip_prefix("r#") {
        Some(raw) => syn::Ident::new_raw(raw, proc_macro2::Span::call_site()),
        None => syn::Ident::new(&text, proc_macro2::Span::call_site()),
    }
}
