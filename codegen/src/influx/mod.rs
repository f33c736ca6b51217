//! InfluxDB back end: for every time-series entity, a typed point struct
//! that encodes itself as line protocol (`rust/influx.rs`, one module per
//! store, with a `config()` built from the store's settings).

pub mod error;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::diagnostics::Problem;
use crate::files::{Artifact, Files};
use crate::model::{
    Entity, EntityKind, Field, Model, Precision, ScalarType, Store, StoreId, StoreKind,
    StoreKindTag,
};
use error::{InfluxError, Loss};

/// Problems of time-series entities: values line protocol cannot carry.
pub fn check(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for e in model.entities_in(StoreKindTag::InfluxDb) {
        let EntityKind::Series { time, tags, .. } = &e.kind else {
            continue;
        };
        for (i, f) in e.fields.iter().enumerate() {
            let bad = if i == *time {
                (f.nullable || f.ty.is_array()).then_some(Loss::NullTime)
            } else if f.ty.is_array() {
                Some(Loss::Array)
            } else if matches!(f.ty.scalar(), ScalarType::Bytes) {
                Some(Loss::Bytes)
            } else if tags.contains(&i)
                && matches!(f.ty.scalar(), ScalarType::F64 | ScalarType::Json)
            {
                Some(Loss::TagType)
            } else if victoriametrics(model, e)
                && i != *time
                && !tags.contains(&i)
                && string_field(f)
            {
                Some(Loss::VictoriaMetricsString)
            } else {
                None
            };
            if let Some(loss) = bad {
                out.push(Problem::from(InfluxError::Lossy {
                    at: f.span,
                    entity: e.name.schema.clone(),
                    field: f.name.schema.clone(),
                    loss,
                }));
            }
        }
    }
    out
}

/// Whether `e`'s store is `server: victoriametrics`.
fn victoriametrics(model: &Model, e: &Entity) -> bool {
    matches!(
        model.store_at(e.store).map(|s| &s.kind),
        Some(StoreKind::InfluxDb {
            victoriametrics: true,
            ..
        })
    )
}

/// A field line protocol carries as a string: text, uuid, date, json, enum.
fn string_field(f: &Field) -> bool {
    !matches!(
        f.ty.scalar(),
        ScalarType::Bool
            | ScalarType::I16
            | ScalarType::I32
            | ScalarType::I64
            | ScalarType::F64
            | ScalarType::Decimal { .. }
            | ScalarType::Timestamptz
    )
}

pub fn generate(model: &Model, files: &mut Files) {
    if model.entities_in(StoreKindTag::InfluxDb).next().is_some() {
        files.add(Artifact::RustModule("influx".into()), rust(model));
    }
}

fn ident(s: &str) -> proc_macro2::Ident {
    let s = crate::names::rust_ident(s);
    match s.strip_prefix("r#") {
        Some(raw) => proc_macro2::Ident::new_raw(raw, proc_macro2::Span::call_site()),
        None => proc_macro2::Ident::new(&s, proc_macro2::Span::call_site()),
    }
}

fn rust_type(f: &Field) -> TokenStream {
    let sdk = quote!(::strata_sdk::influx);
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
        _ => quote!(::std::string::String),
    };
    if f.nullable {
        quote!(::std::option::Option<#t>)
    } else {
        t
    }
}

/// The checks of a point's values against their declared types (the
/// repositories' rules, so the series refuses what PostgreSQL would):
/// decimal places and digits, `string(n)` lengths, enum names.
fn value_checks(model: &Model, e: &Entity) -> Vec<TokenStream> {
    let rules = quote!(::strata_sdk::influx::rules);
    let checks = e.copy_fields().filter_map(|(_, f)| {
        let rule = match f.ty.scalar() {
            ScalarType::Decimal { precision, scale } => {
                let p = proc_macro2::Literal::u8_unsuffixed(*precision);
                let s = proc_macro2::Literal::u8_unsuffixed(*scale);
                quote!(#rules::declared_decimal(#p, #s))
            }
            ScalarType::String { max: Some(n) } => {
                let n = proc_macro2::Literal::u32_unsuffixed(*n);
                quote!(#rules::max_chars(#n))
            }
            ScalarType::Enum(name) => {
                let names: Vec<&str> = (model.enum_named(name)?.variants.iter())
                    .map(|v| v.name.sql.as_str())
                    .collect();
                quote!(#rules::one_of(&[#(#names),*]))
            }
            _ => return None,
        };
        let (n, key) = (ident(&f.name.rust), &f.name.schema);
        Some(quote!(::strata_sdk::influx::check(#key, &self.#n, #rule)?;))
    });
    checks.collect()
}

fn point(model: &Model, e: &Entity) -> TokenStream {
    let EntityKind::Series {
        time,
        tags,
        measurement,
    } = &e.kind
    else {
        return TokenStream::new();
    };
    let name = format_ident!("{}Point", e.name.rust);
    let fields: Vec<&Field> = e.copy_fields().map(|(_, f)| f).collect();
    let decls = fields.iter().map(|f| {
        let n = ident(&f.name.rust);
        let t = rust_type(f);
        let doc = format!(
            " `{}` ({}{})",
            f.name.schema,
            f.ty,
            if f.nullable { "?" } else { "" }
        );
        quote!(#[doc = #doc] pub #n: #t,)
    });
    let mut tag_fields: Vec<&Field> = tags.iter().map(|&i| &e.fields[i]).collect();
    tag_fields.sort_by(|a, b| a.name.schema.cmp(&b.name.schema));
    let tag_calls = tag_fields.iter().map(|f| {
        let n = ident(&f.name.rust);
        let key = &f.name.schema;
        quote!(line.tag(#key, &self.#n)?;)
    });
    let field_calls = e
        .copy_fields()
        .filter(|(i, _)| *i != *time && !tags.contains(i))
        .map(|(_, f)| {
            let n = ident(&f.name.rust);
            let key = &f.name.schema;
            quote!(line.field(#key, &self.#n)?;)
        });
    let t = ident(&e.fields[*time].name.rust);
    let checks = value_checks(model, e);
    let doc = format!(
        " A point of measurement `{measurement}` (entity `{}`). Tags: {}. Enums are their stored names; \
         `encode` refuses a decimal, string or enum name its field's type does not hold.",
        e.name.schema,
        tag_fields.iter().map(|f| format!("`{}`", f.name.schema)).collect::<Vec<_>>().join(", ")
    );
    quote! {
        #[doc = #doc]
        #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
        pub struct #name {
            #(#decls)*
        }

        impl ::strata_sdk::influx::Point for #name {
            const MEASUREMENT: &'static str = #measurement;
            fn encode(
                &self,
                line: &mut ::strata_sdk::influx::Line<'_>,
            ) -> ::std::result::Result<(), ::strata_sdk::influx::EncodeError> {
                #(#checks)*
                #(#tag_calls)*
                #(#field_calls)*
                line.time(self.#t)
            }
        }
    }
}

/// `config()` of the InfluxDB store `s`: its writer settings.
fn config(s: &Store) -> TokenStream {
    let store = s.name.as_str();
    let StoreKind::InfluxDb {
        org,
        bucket,
        token,
        precision,
        victoriametrics,
    } = &s.kind
    else {
        return TokenStream::new();
    };
    let raw = |t: &Option<crate::model::Template>, d: &str| {
        t.as_ref().map_or(d.to_string(), |t| t.raw.clone())
    };
    let url = raw(&s.url, "http://127.0.0.1:8086");
    let org = raw(org, "");
    let bucket = raw(bucket, store);
    let token = raw(token, "");
    let p = format_ident!(
        "{}",
        match precision {
            Precision::Ns => "Ns",
            Precision::Us => "Us",
            Precision::Ms => "Ms",
            Precision::S => "S",
        }
    );
    let vm = match victoriametrics {
        true => quote!(.with_victoriametrics(true)),
        false => TokenStream::new(),
    };
    let doc = format!(
        " The writer settings of store `{store}`, with `${{VAR}}` and `${{VAR:default}}` \
         taken from the environment: url `{url}`, org `{org}`, bucket `{bucket}`."
    );
    quote! {
        #[doc = #doc]
        pub fn config() -> ::std::result::Result<::strata_sdk::influx::WriterConfig, ::strata_sdk::influx::TemplateError> {
            let expand = ::strata_sdk::influx::expand;
            ::std::result::Result::Ok(
                ::strata_sdk::influx::WriterConfig::new(expand(#url)?, expand(#org)?, expand(#bucket)?)
                    .with_token(expand(#token)?)
                    .with_precision(::strata_sdk::influx::Precision::#p)
                    #vm
                    .with_store(#store),
            )
        }
    }
}

/// The generated Rust: `pub mod <store> { config(), <Entity>Point ... }`.
pub fn rust(model: &Model) -> String {
    // Ids are in name order, as the modules are.
    let mut stores: Vec<StoreId> = model
        .entities_in(StoreKindTag::InfluxDb)
        .map(|e| e.store)
        .collect();
    stores.sort();
    stores.dedup();
    let mods = stores.iter().map(|&id| {
        let store = &model[id].name;
        let m = ident(store);
        let cfg = config(&model[id]);
        let points = model
            .entities
            .iter()
            .filter(|e| e.store == id && e.is_series())
            .map(|e| point(model, e));
        let doc = format!(" Points of the InfluxDB store `{store}`.");
        quote! {
            #[doc = #doc]
            pub mod #m {
                #cfg
                #(#points)*
            }
        }
    });
    crate::rust::format_file(quote!(#(#mods)*))
}
