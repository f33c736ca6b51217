//! Conversions from a PostgreSQL entity struct (`entities::X`) to its copies
//! in other stores (ClickHouse rows, Elasticsearch documents), shared by
//! those back ends so both read the entity the same way: secrets are never
//! read, enums become their stored names, `json` becomes JSON text where the
//! copy holds text, every other value is copied as is (the copies use the
//! same `uuid`, `rust_decimal` and `chrono` types).

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{Entity, EntityKind, Field, FieldRole, Model, ScalarType, StoreKindTag, Type};

/// Whether `e` has a generated struct in the sibling `entities` module (a
/// record whose home store is PostgreSQL), so a conversion from it can be
/// emitted.
pub fn has_entity_struct(model: &Model, e: &Entity) -> bool {
    e.kind == EntityKind::Record
        && model
            .store_at(e.store)
            .is_some_and(|s| s.kind.tag() == StoreKindTag::Postgres)
}

/// `super::super::entities::X`: from `<back end>::<store>::XRow`.
pub fn entity_path(e: &Entity) -> TokenStream {
    let name = super::types::ident(&e.name.rust);
    quote!(super::super::entities::#name)
}

/// The expression that converts field `f` of `entity` (a `&X`) into the
/// copy's value. `json_text`: the copy holds `json` as its JSON text.
/// Never called for secrets (the copies leave them out).
pub fn field_value(f: &Field, json_text: bool) -> TokenStream {
    let n = super::types::ident(&f.name.rust);
    let access = quote!(entity.#n);
    let s = f.ty.scalar();
    let array = matches!(f.ty, Type::Array(_));
    // The copies hold a nullable array as a plain one (ClickHouse refuses
    // them, a search document indexes NULL and `[]` alike): NULL becomes `[]`.
    if array && f.nullable {
        let each = match s {
            ScalarType::Enum(_) => quote!(.map(|v| ::std::string::String::from(v.as_str()))),
            ScalarType::Json if json_text => quote!(.map(::std::string::ToString::to_string)),
            _ => quote!(.cloned()),
        };
        return quote!(#access.iter().flatten() #each .collect());
    }
    match s {
        ScalarType::Enum(_) => {
            let conv = quote!(|v| ::std::string::String::from(v.as_str()));
            if array {
                quote!(#access.iter().map(#conv).collect())
            } else if f.nullable {
                quote!(#access.as_ref().map(#conv))
            } else {
                quote!(::std::string::String::from(#access.as_str()))
            }
        }
        ScalarType::Json if json_text => {
            let conv = quote!(::std::string::ToString::to_string);
            if array {
                quote!(#access.iter().map(#conv).collect())
            } else if f.nullable {
                quote!(#access.as_ref().map(#conv))
            } else {
                quote!(#conv(&#access))
            }
        }
        ScalarType::Bool
        | ScalarType::I16
        | ScalarType::I32
        | ScalarType::I64
        | ScalarType::F64
        | ScalarType::Decimal { .. }
        | ScalarType::Uuid
        | ScalarType::Timestamptz
        | ScalarType::Date
            if !array =>
        {
            // `Copy`, and so is its `Option`.
            access
        }
        _ => quote!(::std::clone::Clone::clone(&#access)),
    }
}

/// The default version of a copy: the entity's optimistic-lock column where
/// it declares one, else its `updated_at` in microseconds since the epoch;
/// `None` when it has neither. (The rule `Document::version` uses too.)
pub fn default_version(e: &Entity) -> Option<TokenStream> {
    if let Some(v) = e.version.map(|i| &e.fields[i]) {
        let v = super::types::ident(&v.name.rust);
        Some(quote!(u64::try_from(entity.#v).unwrap_or(0)))
    } else {
        e.fields
            .iter()
            .find(|f| f.role == FieldRole::UpdatedAt && !f.nullable)
            .map(|u| {
                let u = super::types::ident(&u.name.rust);
                quote!(u64::try_from(entity.#u.timestamp_micros()).unwrap_or(0))
            })
    }
}
