//! The typed row struct of each ClickHouse table (`clickhouse::Row` + serde).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::model::{Entity, Field, ScalarType, Store, Type};

use super::ddl::{database_of, DELETED_COLUMN, VERSION_COLUMN};
use super::types::{columns, Target};

fn ident(s: &str) -> Ident {
    match s.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(s, Span::call_site()),
    }
}

/// The Rust type of a scalar in a row, and the serde attribute it needs.
fn scalar(s: &ScalarType, shape: Shape) -> (TokenStream, TokenStream) {
    let sdk = quote!(::strata_sdk::clickhouse);
    let none = TokenStream::new();
    match s {
        ScalarType::Uuid => {
            let path = match shape {
                Shape::One => "::strata_sdk::clickhouse::client::serde::uuid",
                Shape::Option => "::strata_sdk::clickhouse::client::serde::uuid::option",
                Shape::Vec => "::strata_sdk::clickhouse::client::serde::uuid_vec",
            };
            (quote!(#sdk::Uuid), quote!(#[serde(with = #path)]))
        }
        ScalarType::String { .. } | ScalarType::Text | ScalarType::Json | ScalarType::Enum(_) => {
            (quote!(::std::string::String), none)
        }
        ScalarType::Secret => (quote!(::std::string::String), none),
        ScalarType::Bytes => {
            let path = match shape {
                Shape::Option => "::strata_sdk::clickhouse::columns::bytes_opt",
                _ => "::strata_sdk::clickhouse::columns::bytes",
            };
            (quote!(::std::vec::Vec<u8>), quote!(#[serde(with = #path)]))
        }
        ScalarType::Bool => (quote!(bool), none),
        ScalarType::I16 => (quote!(i16), none),
        ScalarType::I32 => (quote!(i32), none),
        ScalarType::I64 => (quote!(i64), none),
        ScalarType::F64 => (quote!(f64), none),
        ScalarType::Decimal { precision, scale } => {
            let ser = format!(
                "::strata_sdk::clickhouse::columns::decimal_ser::<_, _, {precision}, {scale}>"
            );
            let de = format!(
                "::strata_sdk::clickhouse::columns::decimal_de::<_, _, {precision}, {scale}>"
            );
            (
                quote!(#sdk::Decimal),
                quote!(#[serde(serialize_with = #ser, deserialize_with = #de)]),
            )
        }
        ScalarType::Timestamptz => (
            quote!(#sdk::DateTime<#sdk::Utc>),
            quote!(#[serde(
                serialize_with = "::strata_sdk::clickhouse::columns::micros_ser",
                deserialize_with = "::strata_sdk::clickhouse::columns::micros_de"
            )]),
        ),
        ScalarType::Date => (
            quote!(#sdk::NaiveDate),
            quote!(#[serde(
                serialize_with = "::strata_sdk::clickhouse::columns::days_ser",
                deserialize_with = "::strata_sdk::clickhouse::columns::days_de"
            )]),
        ),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    One,
    Option,
    Vec,
}

/// RowBinary size of one value: fixed, or `None` for length-prefixed bytes.
fn fixed_size(s: &ScalarType) -> Option<usize> {
    match s {
        ScalarType::Uuid => Some(16),
        ScalarType::Bool => Some(1),
        ScalarType::I16 => Some(2),
        ScalarType::I32 | ScalarType::Date => Some(4),
        ScalarType::I64 | ScalarType::F64 | ScalarType::Timestamptz => Some(8),
        ScalarType::Decimal { precision, .. } => Some(match precision {
            0..=9 => 4,
            10..=18 => 8,
            _ => 16,
        }),
        _ => None,
    }
}

fn field(f: &Field) -> (TokenStream, (usize, Option<TokenStream>)) {
    let name = ident(&f.name.rust_ident());
    let shape = match (&f.ty, f.nullable) {
        (Type::Array(_), _) => Shape::Vec,
        (Type::Scalar(_), true) => Shape::Option,
        (Type::Scalar(_), false) => Shape::One,
    };
    let s = f.ty.scalar();
    let (ty, attr) = scalar(s, shape);
    let ty = match shape {
        Shape::One => ty,
        Shape::Option => quote!(::std::option::Option<#ty>),
        Shape::Vec => quote!(::std::vec::Vec<#ty>),
    };
    let doc = format!(
        " `{}` ({}{})",
        f.name.sql,
        f.ty,
        if f.nullable { "?" } else { "" }
    );
    // The column is the SQL name, whatever the Rust spelling (`r#type`).
    let column = &f.name.sql;
    let decl = quote! {
        #[doc = #doc]
        #[serde(rename = #column)]
        #attr
        pub #name: #ty,
    };
    // (bytes known now, expression for the rest)
    let len = match (shape, fixed_size(s)) {
        (Shape::One, Some(n)) => (n, None),
        (Shape::One, None) => (1, Some(quote!(self.#name.len()))),
        // A null is one byte; counting the value too keeps the estimate an upper bound.
        (Shape::Option, Some(n)) => (n + 1, None),
        (Shape::Option, None) => (2, Some(quote!(self.#name.as_ref().map_or(0, |v| v.len())))),
        (Shape::Vec, Some(n)) => (1, Some(quote!(self.#name.len() * #n))),
        (Shape::Vec, None) => (
            1,
            Some(quote!(self.#name.iter().map(|v| v.len() + 1).sum::<usize>())),
        ),
    };
    (decl, len)
}

/// The row struct and its `Table` impl for one entity in the ClickHouse
/// store `s`.
pub fn row(model: &crate::model::Model, s: &Store, e: &Entity) -> TokenStream {
    let store = s.name.as_str();
    let name = format_ident!("{}Row", e.name.rust);
    let db = database_of(s);
    let table = &e.name.sql;
    let (decls, lens): (Vec<_>, Vec<_>) = columns(e).map(field).unzip();
    // `_version` and `_deleted` add 9 bytes.
    let fixed: usize = 9 + lens.iter().map(|(n, _)| n).sum::<usize>();
    let vars = lens.into_iter().filter_map(|(_, v)| v);
    let version = format_ident!("{}", VERSION_COLUMN);
    let deleted = format_ident!("{}", DELETED_COLUMN);
    let from = from_entity(model, e, &name);
    let checks = checks(e, Target::of(s), &format!("{db}.{table}"));
    let doc = format!(
        " A row of `{db}.{table}`: entity `{}` as stored in ClickHouse store `{store}`. \
         Enums are their stored names, `json` is its JSON text, secrets are left out.",
        e.name.schema
    );
    quote! {
        #[doc = #doc]
        #[derive(
            ::std::fmt::Debug,
            ::std::clone::Clone,
            ::std::cmp::PartialEq,
            ::strata_sdk::clickhouse::client::Row,
            ::strata_sdk::clickhouse::serde::Serialize,
            ::strata_sdk::clickhouse::serde::Deserialize,
        )]
        #[clickhouse(crate = "::strata_sdk::clickhouse::client")]
        #[serde(crate = "::strata_sdk::clickhouse::serde")]
        pub struct #name {
            #(#decls)*
            /// Version of this copy: a larger one replaces a smaller one for the same key;
            /// the same version sent twice collapses into one row.
            pub #version: u64,
            /// 1 when this row is the tombstone of a deleted key.
            pub #deleted: u8,
        }

        impl ::strata_sdk::clickhouse::Table for #name {
            const STORE: &'static str = #store;
            const DATABASE: &'static str = #db;
            const TABLE: &'static str = #table;
            fn encoded_len(&self) -> usize {
                #fixed #(+ #vars)*
            }
            fn check(&self) -> ::std::result::Result<(), ::strata_sdk::clickhouse::ValueError> {
                #checks
                ::std::result::Result::Ok(())
            }
        }

        #from
    }
}

/// The body of `Table::check`: one rule per column whose type is narrower
/// than the entity's (`Date32`/`DateTime64` ranges on targets that have
/// them, decimal places and digits). Timestamps finer than a microsecond
/// are truncated by the encoder, the SDK's one rule for every store.
fn checks(e: &Entity, t: Target, target: &str) -> TokenStream {
    let rules: Vec<(&Field, TokenStream)> = columns(e)
        .flat_map(|f| {
            let rules = match *f.ty.scalar() {
                ScalarType::Date if t.has_date32() => vec![quote!(date32)],
                ScalarType::Timestamptz if t.has_datetime64() => vec![quote!(datetime64)],
                ScalarType::Decimal { precision, scale } => {
                    vec![quote!(decimal(#precision, #scale))]
                }
                _ => vec![],
            };
            rules.into_iter().map(move |r| (f, r))
        })
        .collect();
    if rules.is_empty() {
        return TokenStream::new();
    }
    let keys: Vec<Ident> = e
        .key_fields()
        .map(|f| ident(&f.name.rust_ident()))
        .collect();
    let key = if keys.len() == 1 {
        let k = &keys[0];
        quote!(::std::string::ToString::to_string(&self.#k))
    } else {
        // A JSON-like array of the key parts, as Elasticsearch ids are.
        let parts = keys
            .iter()
            .map(|k| quote!(::std::format!("{:?}", ::std::string::ToString::to_string(&self.#k))));
        quote!(::std::format!("[{}]", [#(#parts),*].join(",")))
    };
    let lines = rules.iter().map(|(f, rule)| {
        let n = ident(&f.name.rust_ident());
        let column = &f.name.sql;
        quote! {
            ::strata_sdk::clickhouse::check(#target, key, #column, &self.#n, ::strata_sdk::clickhouse::rules::#rule)?;
        }
    });
    quote! {
        let key = || #key;
        #(#lines)*
    }
}

/// For an entity synced from PostgreSQL: `XRow::from_entity(&x, version)`,
/// and `From<&X>` with the default version where the entity has one.
fn from_entity(model: &crate::model::Model, e: &Entity, name: &Ident) -> TokenStream {
    use crate::rust::convert;
    if !convert::has_entity_struct(model, e) {
        return TokenStream::new();
    }
    let entity = convert::entity_path(e);
    let fields = columns(e).map(|f| {
        let n = ident(&f.name.rust_ident());
        let v = convert::field_value(f, true);
        quote!(#n: #v,)
    });
    let version = format_ident!("{}", VERSION_COLUMN);
    let deleted = format_ident!("{}", DELETED_COLUMN);
    let doc = format!(
        " The row of a `{0}` read from PostgreSQL, as version `version` (not deleted). \
         Secrets are left out, enums become their stored names, `json` its JSON text.",
        e.name.schema
    );
    let try_doc = format!(
        " [`{name}::from_entity`], or the first field its table cannot hold exactly \
         (a date outside the column's range, a decimal with too many places): \
         [`Table::check`](::strata_sdk::clickhouse::Table::check) of the row."
    );
    let tomb_doc = format!(
        " The tombstone of a deleted `{0}`: its last row, marked deleted, as version `version` \
         (larger than the last written one).",
        e.name.schema
    );
    let from = convert::default_version(e).map(|v| {
        let doc = format!(
            " [`{name}::from_entity`] with the entity's own version: {}.",
            if e.version.is_some() {
                "its optimistic-lock column"
            } else {
                "its `updated_at` in microseconds since the epoch"
            }
        );
        quote! {
            impl ::core::convert::From<&#entity> for #name {
                #[doc = #doc]
                fn from(entity: &#entity) -> Self {
                    Self::from_entity(entity, #v)
                }
            }
        }
    });
    quote! {
        impl #name {
            #[doc = #doc]
            pub fn from_entity(entity: &#entity, version: u64) -> Self {
                Self {
                    #(#fields)*
                    #version: version,
                    #deleted: 0,
                }
            }
            #[doc = #try_doc]
            pub fn try_from_entity(
                entity: &#entity,
                version: u64,
            ) -> ::std::result::Result<Self, ::strata_sdk::clickhouse::ValueError> {
                let row = Self::from_entity(entity, version);
                ::strata_sdk::clickhouse::Table::check(&row)?;
                ::std::result::Result::Ok(row)
            }
            #[doc = #tomb_doc]
            pub fn tombstone(entity: &#entity, version: u64) -> Self {
                Self {
                    #deleted: 1,
                    ..Self::from_entity(entity, version)
                }
            }
        }
        #from
    }
}
