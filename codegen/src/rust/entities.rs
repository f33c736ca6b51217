//! `rust/entities.rs`: the enums, the row structs of every entity whose
//! home store is a postgres store (with the `#[strata(...)]` attributes
//! `strata-derive` expands into repositories), and a pool constructor per
//! postgres store.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::types;
use crate::model::{
    Default as Value, Entity, EntityKind, FieldRole, Model, ScalarType, StoreKind, StoreKindTag,
};

pub fn emit(model: &Model) -> TokenStream {
    let enums = model.enums.iter().map(enum_);
    let stores = model.stores.iter().filter_map(|s| match &s.kind {
        StoreKind::Postgres { pool, replicas, .. } => {
            let config = format_ident!("{}_pool_config", s.name);
            let connect = format_ident!("connect_{}", s.name);
            let connect_replicated = format_ident!("connect_{}_replicated", s.name);
            let url = s.url.as_ref().map(|u| u.raw.clone()).unwrap_or_default();
            let opt = |v: Option<u64>| match v {
                Some(v) => quote!(::std::option::Option::Some(#v)),
                None => quote!(::std::option::Option::None),
            };
            let (max, min) = (opt(pool.max.map(u64::from)), opt(pool.min.map(u64::from)));
            let (acq, idle) = (opt(pool.acquire_timeout), opt(pool.idle_timeout));
            let (life, stmt) = (opt(pool.max_lifetime), opt(pool.statement_timeout));
            let app = match &pool.application_name {
                Some(a) => quote!(::std::option::Option::Some(::std::string::String::from(#a))),
                None => quote!(::std::option::Option::None),
            };
            let replicas = replicas.iter().map(|r| &r.raw);
            let store = &s.name;
            let doc = format!(
                "Settings of the postgres store `{}`; `${{VAR}}` in the URLs expands at run time.",
                s.name
            );
            let cdoc = format!("A pool on the primary of the postgres store `{}`.", s.name);
            let rdoc = format!(
                "One pool per server of the postgres store `{}` (the primary and each of its `replicas:`), \
                 routing reads to a replica only when asked (`replica()`, `after(&token)`).",
                s.name
            );
            Some(quote! {
                #[doc = #doc]
                pub fn #config() -> ::strata_sdk::postgres::PoolConfig {
                    ::strata_sdk::postgres::PoolConfig {
                        store: ::std::string::String::from(#store),
                        url: ::std::string::String::from(#url),
                        replicas: ::std::vec![#(::std::string::String::from(#replicas)),*],
                        max: #max.map(|v: u64| v as u32),
                        min: #min.map(|v: u64| v as u32),
                        acquire_timeout_ms: #acq,
                        idle_timeout_ms: #idle,
                        max_lifetime_ms: #life,
                        statement_timeout_ms: #stmt,
                        application_name: #app,
                    }
                }
                #[doc = #cdoc]
                pub async fn #connect() -> ::strata_sdk::Result<::sqlx::PgPool> {
                    #config().connect().await
                }
                #[doc = #rdoc]
                pub async fn #connect_replicated(
                    policy: ::strata_sdk::postgres::ReplicaPolicy,
                ) -> ::strata_sdk::Result<::strata_sdk::postgres::Replicated> {
                    ::strata_sdk::postgres::Replicated::connect(&#config(), policy).await
                }
            })
        }
        StoreKind::Redis { key_prefix } => {
            let config = format_ident!("{}_cache_config", s.name);
            let connect = format_ident!("connect_{}", s.name);
            let url = s.url.as_ref().map(|u| u.raw.clone()).unwrap_or_default();
            let prefix = key_prefix.clone().unwrap_or_else(|| s.name.clone());
            let doc = format!(
                "Settings of the redis store `{}` (key prefix `{prefix}`); `${{VAR}}` in the URL expands at run time.",
                s.name
            );
            let cdoc = format!(
                "The cache of the redis store `{}`: wrap a pool with it in a `strata_sdk::cache::Store`.",
                s.name
            );
            let events = format_ident!("connect_{}_events", s.name);
            let edoc = format!(
                "A reader of the change events in the redis store `{}` (`Entity::subscribe(&client, from)`).",
                s.name
            );
            Some(quote! {
                #[doc = #doc]
                pub fn #config() -> ::strata_sdk::cache::CacheConfig {
                    ::strata_sdk::cache::CacheConfig::new(#url, #prefix)
                }
                #[doc = #cdoc]
                pub async fn #connect() -> ::strata_sdk::Result<::strata_sdk::cache::Cache> {
                    #config().connect().await
                }
                #[doc = #edoc]
                pub async fn #events() -> ::strata_sdk::Result<::strata_sdk::events::Client> {
                    ::strata_sdk::events::Client::connect(#url, #prefix).await
                }
            })
        }
        _ => None,
    });
    let entities = model
        .entities_in(StoreKindTag::Postgres)
        .filter(|e| e.kind == EntityKind::Record)
        .map(|e| entity(model, e));
    quote! {
        #(#stores)*
        #(#enums)*
        #(#entities)*
    }
}

fn enum_(e: &crate::model::Enum) -> TokenStream {
    let ident = format_ident!("{}", e.name.rust);
    let type_name = &e.name.sql;
    // What sqlx resolves (`$1::regtype`): schema-qualified and quoted where
    // the store has a schema, so the type is found whatever the search_path.
    let sqlx_type = match &e.pg_schema {
        Some(ns) => format!(
            "{}.{}",
            crate::names::quote_ident(ns),
            crate::names::quote_ident(type_name)
        ),
        None => type_name.clone(),
    };
    let variants: Vec<_> = e
        .variants
        .iter()
        .map(|v| types::ident(&v.name.rust))
        .collect();
    let stored: Vec<_> = e.variants.iter().map(|v| v.name.sql.clone()).collect();
    let doc = e
        .doc
        .as_deref()
        .map_or_else(|| format!("The PostgreSQL enum `{type_name}`."), doc_text);
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize, ::sqlx::Type)]
        #[sqlx(type_name = #sqlx_type)]
        pub enum #ident {
            #(#[serde(rename = #stored)] #[sqlx(rename = #stored)] #variants,)*
        }
        impl #ident {
            #[doc = "Every value, in declaration order."]
            pub const ALL: &'static [Self] = &[#(Self::#variants),*];
            #[doc = "The value as stored."]
            pub fn as_str(&self) -> &'static str {
                match self { #(Self::#variants => #stored,)* }
            }
        }
        impl ::std::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::str::FromStr for #ident {
            type Err = ::std::string::String;
            // Not `Self::Err`: a value `ERR` is the variant `Self::Err`.
            fn from_str(s: &str) -> ::std::result::Result<Self, ::std::string::String> {
                match s {
                    #(#stored => Ok(Self::#variants),)*
                    other => Err(::std::format!("`{}` is not a {}", other, #type_name)),
                }
            }
        }
    }
}

/// An attribute value for a typed default.
fn value(d: &Value) -> TokenStream {
    match d {
        Value::Now => quote!(now),
        Value::GeneratedUuid => quote!(generated),
        Value::Identity => quote!(identity),
        Value::EmptyArray => quote!(empty),
        Value::Bool(b) => quote!(#b),
        Value::Int(s) | Value::Number(s) | Value::String(s) | Value::EnumMember(s) => {
            let l = Literal::string(s);
            quote!(#l)
        }
    }
}

/// Fields worth a keyset listing of their own: the leading column of each
/// index and `created_at`, when not part of the key, not nullable (NULLs
/// break row comparisons) and of an orderable scalar type.
pub fn sort_fields(e: &Entity) -> Vec<usize> {
    let leading = e
        .indexes
        .iter()
        .filter_map(|i| i.columns.first().map(|c| c.field));
    let created = e.fields.iter().position(|f| f.role == FieldRole::CreatedAt);
    let mut out: Vec<usize> = Vec::new();
    for i in leading.chain(created) {
        let f = &e.fields[i];
        let orderable = !f.ty.is_array()
            && !matches!(
                f.ty.scalar(),
                ScalarType::Json | ScalarType::Secret | ScalarType::Bytes
            );
        if orderable && !f.nullable && !e.key.contains(&i) && !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn entity(model: &Model, e: &Entity) -> TokenStream {
    let ident = format_ident!("{}", e.name.rust);
    let table = &e.name.sql;
    let key = e.key_fields().map(|f| types::ident(&f.name.rust));
    let store = &model[e.store].name;
    let schema = match &model[e.store].kind {
        StoreKind::Postgres {
            schema: Some(s), ..
        } => quote!(, store = #store, schema = #s),
        _ => quote!(, store = #store),
    };
    let sorts = sort_fields(e);
    let sort = (!sorts.is_empty()).then(|| {
        let fs = sorts.iter().map(|&i| types::ident(&e.fields[i].name.rust));
        quote!(, sort(#(#fs),*))
    });
    let queries = e.queries.iter().map(|q| {
        let name = types::ident(&q.name.rust);
        let mut parts = vec![];
        if !q.params.is_empty() {
            let ps = q
                .params
                .iter()
                .map(|&i| types::ident(&e.fields[i].name.rust));
            parts.push(quote!(params(#(#ps),*)));
        }
        if !q.fixed.is_empty() {
            let fs = q.fixed.iter().map(|(i, v)| {
                let f = types::ident(&e.fields[*i].name.rust);
                let v = value(v);
                quote!(#f = #v)
            });
            parts.push(quote!(fixed(#(#fs),*)));
        }
        if !q.order.is_empty() {
            let order = q
                .order
                .iter()
                .map(|o| {
                    format!(
                        "{}{}",
                        e.fields[o.field].name.rust,
                        if o.desc { " desc" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(quote!(order = #order));
        }
        if let Some(l) = q.limit {
            let l = Literal::u32_unsuffixed(l);
            parts.push(quote!(limit = #l));
        }
        if q.one {
            parts.push(quote!(one));
        }
        quote!(, query(#name(#(#parts),*)))
    });
    let fields = e.fields.iter().map(|f| {
        let name = types::ident(&f.name.rust);
        let ty = types::of_field(model, f);
        let ty_text = f.ty.to_string();
        let mut settings = vec![quote!(ty = #ty_text)];
        // An enum named like a built-in type (`Uuid`, `Decimal`) says so.
        if let ScalarType::Enum(name) = f.ty.scalar() {
            if crate::model::type_alias(name).is_some() {
                settings.push(quote!(enum_type));
            }
        }
        // The column differs from the field when the schema renames it or
        // the Rust name had to change (`self` → `self_`).
        let differs = name.to_string().trim_start_matches("r#") != f.name.sql;
        if differs {
            let c = &f.name.sql;
            settings.push(quote!(column = #c));
        }
        if let Some(d) = &f.default {
            let v = value(d);
            settings.push(quote!(default = #v));
        }
        match f.role {
            FieldRole::Data => {}
            FieldRole::CreatedAt => settings.push(quote!(created_at)),
            FieldRole::UpdatedAt => settings.push(quote!(updated_at)),
            FieldRole::Version => settings.push(quote!(version)),
        }
        let rename = differs.then(|| {
            let c = &f.name.sql;
            quote!(#[sqlx(rename = #c)])
        });
        let doc = f.doc.as_deref().map(doc_text).map(|d| quote!(#[doc = #d]));
        let float = types::float_serde(&f.ty, f.nullable);
        quote! {
            #doc
            #[strata(#(#settings),*)]
            #rename
            #float
            pub #name: #ty
        }
    });
    let doc = e
        .doc
        .as_deref()
        .map_or_else(|| format!("A row of `{table}`."), doc_text);
    let cache = e.cache.as_ref().map(|c| match c.ttl_ms {
        Some(ms) => {
            let ms = Literal::u64_unsuffixed(ms);
            quote!(, cache(ttl_ms = #ms))
        }
        None => quote!(, cache),
    });
    let events = e.events.as_ref().map(|ev| {
        let n = Literal::u16_unsuffixed(ev.partitions);
        let (m, s) = (Literal::u64_unsuffixed(ev.max_len), ev.pubsub);
        quote!(, events(partitions = #n, max_len = #m, pubsub = #s))
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize, ::sqlx::FromRow, ::strata_derive::Entity)]
        #[strata(table = #table, key(#(#key),*) #schema #sort #(#queries)* #cache #events)]
        pub struct #ident {
            #(#fields,)*
        }
    }
}

/// A schema `doc:` as the text of a Rust doc comment that rustdoc never
/// takes for code: an indented block or a ```/~~~ fence would be a doctest
/// of the generated crate, and `cargo test` of that crate would compile the
/// prose (and fail). Lines lose their leading spaces and a fence opener
/// gets a backslash in front (it then renders as plain backticks); the
/// rest stays Markdown.
fn doc_text(doc: &str) -> String {
    doc.lines()
        .map(|line| {
            let line = line.trim_start();
            match line.starts_with("```") || line.starts_with("~~~") {
                true => format!("\\{line}"),
                false => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod doc_tests {
    use super::doc_text;

    #[test]
    fn schema_docs_hold_no_code_blocks() {
        assert_eq!(
            doc_text("An order.\n\n    price * qty"),
            "An order.\n\nprice * qty"
        );
        assert_eq!(
            doc_text("Example:\n```\nnot rust\n```"),
            "Example:\n\\```\nnot rust\n\\```"
        );
        assert_eq!(doc_text("  ~~~rust\nx"), "\\~~~rust\nx");
        assert_eq!(
            doc_text("Use `a` and ``b``, **bold**."),
            "Use `a` and ``b``, **bold**."
        );
        assert_eq!(doc_text("\ttabbed"), "tabbed");
    }
}
