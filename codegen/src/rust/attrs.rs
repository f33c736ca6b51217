//! `#[strata(...)]` attributes → the model. `strata-derive` (and the tests)
//! read a struct through here, so the repository emitter only ever sees
//! [`crate::model::Entity`], whether the struct was generated from a schema
//! or written by hand.
//!
//! ```text
//! #[strata(table = "config", key(scope, name), store = "main", schema = "app", sort(created_at),
//!          query(in_scope(params(scope), fixed(active = true), order = "name desc", limit = 100, one)),
//!          cache(ttl_ms = 30000))]
//! field: #[strata(column = "sql_name", ty = "decimal(20,8)", default = now | generated | identity | empty | "lit" | true,
//!                 created_at | updated_at | version)]
//! ```

use std::collections::BTreeSet;

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, Lit};

use crate::model::{
    parse_type, type_alias, Default as Value, Entity, EntityKind, Field, FieldRole, Ident,
    IndexColumn, Query, ScalarType, StoreId, Type, TypeError, BUILTIN_TYPES,
};
use crate::names::is_snake_ident;

/// A struct read for the repository emitter.
pub struct EntityDef {
    pub ident: syn::Ident,
    pub vis: syn::Visibility,
    /// The PostgreSQL schema (namespace), if not the search path.
    pub schema: Option<String>,
    /// The store's name (`store = "…"`; empty when not given). The entity
    /// stands alone, without a model: its store ids are `StoreId::NONE`.
    pub store: String,
    pub entity: Entity,
    /// Each field's Rust type as written, in field order.
    pub types: Vec<syn::Type>,
    /// Each field's Rust identifier as written.
    pub idents: Vec<syn::Ident>,
    /// Each field's span, so type errors point at the user's field.
    pub spans: Vec<Span>,
    /// Fields with a `list_by_<field>` keyset listing, in order.
    pub sorts: Vec<usize>,
}

/// Rejects an attribute key given twice.
struct Seen(BTreeSet<String>);

impl Seen {
    fn check(&mut self, meta: &ParseNestedMeta) -> syn::Result<String> {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .ok_or_else(|| meta.error("expected a name"))?;
        if !self.0.insert(key.clone()) {
            return Err(meta.error(format!("duplicate `{key}`")));
        }
        Ok(key)
    }
}

fn sql_name(s: syn::LitStr) -> syn::Result<String> {
    let v = s.value();
    if is_snake_ident(&v) {
        Ok(v)
    } else {
        Err(syn::Error::new(
            s.span(),
            "expected a snake_case SQL name (a-z, 0-9, _; at most 63 bytes)",
        ))
    }
}

fn ident_list(meta: &ParseNestedMeta) -> syn::Result<Vec<syn::Ident>> {
    let mut out = Vec::new();
    meta.parse_nested_meta(|m| {
        out.push(
            m.path
                .get_ident()
                .cloned()
                .ok_or_else(|| m.error("expected a field name"))?,
        );
        Ok(())
    })?;
    Ok(out)
}

/// A typed default or fixed value: `now`, `generated`, `identity`, `empty`,
/// `true`, or a literal (kept as text; PostgreSQL coerces a quoted literal
/// to the column's type).
fn value(e: &Expr) -> syn::Result<Value> {
    Ok(match e {
        Expr::Path(p) if p.path.is_ident("now") => Value::Now,
        Expr::Path(p) if p.path.is_ident("generated") => Value::GeneratedUuid,
        Expr::Path(p) if p.path.is_ident("identity") => Value::Identity,
        Expr::Path(p) if p.path.is_ident("empty") => Value::EmptyArray,
        Expr::Lit(l) => match &l.lit {
            Lit::Bool(b) => Value::Bool(b.value),
            Lit::Str(s) => Value::String(s.value()),
            Lit::Int(i) => Value::Int(i.base10_digits().to_string()),
            Lit::Float(f) => Value::Number(f.base10_digits().to_string()),
            other => return Err(syn::Error::new(other.span(), "unsupported literal")),
        },
        other => {
            return Err(syn::Error::new(
                other.span(),
                "expected `now`, `generated`, `identity`, `empty` or a literal",
            ))
        }
    })
}

struct RawQuery {
    name: String,
    params: Vec<syn::Ident>,
    fixed: Vec<(syn::Ident, Value)>,
    order: Vec<(String, bool, Span)>,
    limit: Option<u32>,
    one: bool,
    span: Span,
}

fn query(meta: &ParseNestedMeta) -> syn::Result<RawQuery> {
    let mut q = RawQuery {
        name: String::new(),
        params: vec![],
        fixed: vec![],
        order: vec![],
        limit: None,
        one: false,
        span: meta.path.span(),
    };
    // `query(name(settings...))`: the name is a path of its own, so clippy's
    // duplicated-attribute lint does not mistake two queries' settings for copies.
    meta.parse_nested_meta(|named| {
        if !q.name.is_empty() {
            return Err(named.error("one query per `query(...)`"));
        }
        q.name = named
            .path
            .get_ident()
            .map(|i| i.to_string().trim_start_matches("r#").to_string())
            .filter(|n| is_snake_ident(n))
            .ok_or_else(|| named.error("expected the query's snake_case name"))?;
        query_settings(&named, &mut q)
    })?;
    if q.name.is_empty() {
        return Err(meta.error("write `query(name(params(...), ...))`"));
    }
    Ok(q)
}

fn query_settings(meta: &ParseNestedMeta, q: &mut RawQuery) -> syn::Result<()> {
    let mut seen = Seen(BTreeSet::new());
    meta.parse_nested_meta(|m| {
        match seen.check(&m)?.as_str() {
            "params" => q.params = ident_list(&m)?,
            "fixed" => m.parse_nested_meta(|f| {
                let id = f
                    .path
                    .get_ident()
                    .cloned()
                    .ok_or_else(|| f.error("expected a field"))?;
                q.fixed.push((id, value(&f.value()?.parse()?)?));
                Ok(())
            })?,
            "order" => {
                let s: syn::LitStr = m.value()?.parse()?;
                for part in s
                    .value()
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let mut words = part.split_whitespace();
                    let col = words.next().unwrap_or_default().to_string();
                    let desc = match words.next() {
                        None | Some("asc") => false,
                        Some("desc") => true,
                        Some(_) => {
                            return Err(syn::Error::new(
                                s.span(),
                                "order is `field [asc|desc], ...`",
                            ))
                        }
                    };
                    q.order.push((col, desc, s.span()));
                }
            }
            "limit" => q.limit = Some(m.value()?.parse::<syn::LitInt>()?.base10_parse()?),
            "one" => q.one = true,
            other => return Err(m.error(format!("unknown query setting `{other}`"))),
        }
        Ok(())
    })
}

/// A field's `ty = "…"`: a schema type, or an enum's UpperCamelCase name
/// (its Rust type is the user's). Anything else is an error at the
/// attribute, with the resolver's suggestions (`varchar` → `string(n)`).
fn field_type(s: &syn::LitStr, enum_type: bool) -> syn::Result<Type> {
    // `enum_type` marks an enum named like a built-in type (`Uuid`).
    let is_enum =
        |n: &str| crate::names::is_type_ident(n) && (enum_type || type_alias(n).is_none());
    parse_type(&s.value(), is_enum).map_err(|e| {
        let msg = match e {
            TypeError::Malformed(why) => format!("invalid type `{}`: {}", s.value(), why.reason()),
            TypeError::Unknown(name) => {
                let hint = type_alias(&name)
                    .map(str::to_string)
                    .or_else(|| closest(&name, BUILTIN_TYPES.iter().copied()))
                    .map(|t| format!("; did you mean `{t}`?"))
                    .unwrap_or_default();
                format!("unknown type `{name}`{hint} (a schema type such as `string(20)`, `decimal(20,8)`, `timestamptz`, or an enum's UpperCamelCase name; an enum named like a built-in type also takes `enum_type`)")
            }
        };
        syn::Error::new(s.span(), msg)
    })
}

/// The schema type of a field without `ty = "…"`, from its Rust type
/// (`i64`, `Option<f64>`, `Vec<String>`, `chrono::DateTime<Utc>`, …), so
/// that a hand-written struct gets the same checks (timestamps read
/// through the range guard, number fields' `add_` increments, secrets
/// refused as the marker). `Decimal` needs `ty = "decimal(p,s)"`: its
/// precision cannot be read from the Rust type.
fn infer_type(ty: &syn::Type) -> Option<Type> {
    let ty = super::types::option_inner(ty).unwrap_or(ty);
    let syn::Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let scalar = match last.ident.to_string().as_str() {
        "i16" => ScalarType::I16,
        "i32" => ScalarType::I32,
        "i64" => ScalarType::I64,
        "f64" => ScalarType::F64,
        "bool" => ScalarType::Bool,
        "String" => ScalarType::Text,
        "Uuid" => ScalarType::Uuid,
        "DateTime" => ScalarType::Timestamptz,
        "NaiveDate" => ScalarType::Date,
        "Secret" => ScalarType::Secret,
        // `serde_json::Value`: json, as the schema's `json` generates it.
        "Value" => ScalarType::Json,
        "Vec" => {
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let Some(syn::GenericArgument::Type(inner)) = args.args.first() else {
                return None;
            };
            if quote::quote!(#inner).to_string() == "u8" {
                return Some(Type::Scalar(ScalarType::Bytes));
            }
            return match infer_type(inner)? {
                Type::Scalar(s) if s != ScalarType::Secret => Some(Type::Array(s)),
                _ => None,
            };
        }
        _ => return None,
    };
    Some(Type::Scalar(scalar))
}

/// The candidate closest to `name`, when it is close.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

fn field(f: &syn::Field, index: usize) -> syn::Result<Field> {
    let ident = f
        .ident
        .clone()
        .ok_or_else(|| syn::Error::new(f.span(), "#[derive(Entity)] needs named fields"))?;
    let rust = ident.to_string().trim_start_matches("r#").to_string();
    let mut column = None;
    let mut ty_text: Option<syn::LitStr> = None;
    let mut enum_type = false;
    let mut default = None;
    let mut role = FieldRole::Data;
    let mut seen = Seen(BTreeSet::new());
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("strata")) {
        attr.parse_nested_meta(|m| {
            match seen.check(&m)?.as_str() {
                "column" => column = Some(sql_name(m.value()?.parse()?)?),
                "ty" => ty_text = Some(m.value()?.parse::<syn::LitStr>()?),
                "enum_type" => enum_type = true,
                "default" => default = Some(value(&m.value()?.parse()?)?),
                "created_at" => role = FieldRole::CreatedAt,
                "updated_at" => role = FieldRole::UpdatedAt,
                "version" => role = FieldRole::Version,
                other => return Err(m.error(format!("unknown field setting `{other}`"))),
            }
            Ok(())
        })?;
    }
    if seen
        .0
        .iter()
        .filter(|k| matches!(k.as_str(), "created_at" | "updated_at" | "version"))
        .count()
        > 1
    {
        return Err(syn::Error::new(f.span(), "a field has at most one role"));
    }
    let sql = column.unwrap_or_else(|| rust.clone());
    let _ = index;
    let ty = ty_text.map(|t| field_type(&t, enum_type)).transpose()?;
    Ok(Field {
        name: Ident {
            schema: rust.clone(),
            sql,
            rust,
        },
        ty: ty
            .or_else(|| infer_type(&f.ty))
            .unwrap_or(Type::Scalar(ScalarType::Text)),
        nullable: super::types::option_inner(&f.ty).is_some(),
        default,
        role,
        references: None,
        renamed_from: None,
        doc: None,
        span: Default::default(),
    })
}

/// Reads a struct and its `#[strata(...)]` attributes into the model.
pub fn parse(input: &syn::DeriveInput) -> syn::Result<EntityDef> {
    let syn::Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(Entity)] takes a struct",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(Entity)] takes no generics",
        ));
    }
    let mut fields = Vec::new();
    let (mut types, mut idents, mut spans) = (vec![], vec![], vec![]);
    for (i, f) in data.fields.iter().enumerate() {
        fields.push(field(f, i)?);
        types.push(f.ty.clone());
        idents.push(f.ident.clone().expect("checked by field()"));
        spans.push(f.span());
    }
    let find = |id: &syn::Ident| -> syn::Result<usize> {
        let name = id.to_string();
        fields
            .iter()
            .position(|f| f.name.rust == name.trim_start_matches("r#"))
            .ok_or_else(|| syn::Error::new(id.span(), format!("no field `{name}`")))
    };
    let mut table = None;
    let mut schema = None;
    let mut store = None;
    let mut key_idents = None;
    let mut sort_idents = Vec::new();
    let mut raw_queries = Vec::new();
    let mut cache: Option<(Option<u64>, Span)> = None;
    let mut events: Option<crate::model::Events> = None;
    let mut seen = Seen(BTreeSet::new());
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("strata")) {
        attr.parse_nested_meta(|m| {
            if m.path.is_ident("query") {
                raw_queries.push(query(&m)?);
                return Ok(());
            }
            match seen.check(&m)?.as_str() {
                "table" => table = Some(sql_name(m.value()?.parse()?)?),
                "schema" => schema = Some(sql_name(m.value()?.parse()?)?),
                "store" => store = Some(sql_name(m.value()?.parse()?)?),
                "key" => key_idents = Some(ident_list(&m)?),
                "sort" => sort_idents = ident_list(&m)?,
                "cache" => {
                    let mut ttl = None;
                    if m.input.peek(syn::token::Paren) {
                        m.parse_nested_meta(|c| {
                            if c.path.is_ident("ttl_ms") {
                                ttl = Some(c.value()?.parse::<syn::LitInt>()?.base10_parse()?);
                                Ok(())
                            } else {
                                Err(c.error("the cache setting is `ttl_ms = <milliseconds>`"))
                            }
                        })?;
                    }
                    cache = Some((ttl, m.path.span()));
                }
                "events" => events = Some(events_setting(&m)?),
                other => return Err(m.error(format!("unknown setting `{other}`"))),
            }
            Ok(())
        })?;
    }
    let key = match key_idents {
        Some(ids) if !ids.is_empty() => ids.iter().map(find).collect::<syn::Result<Vec<_>>>()?,
        _ => vec![fields
            .iter()
            .position(|f| f.name.rust == "id")
            .ok_or_else(|| {
                syn::Error::new(
                    input.ident.span(),
                    "no key: add `#[strata(key(field, ...))]`",
                )
            })?],
    };
    let sorts = sort_idents
        .iter()
        .map(find)
        .collect::<syn::Result<Vec<_>>>()?;
    // Keyset pages compare `(field, key) > (cursor)`: a NULL compares to
    // nothing, so the rows whose field is NULL would never be listed.
    for (id, &i) in sort_idents.iter().zip(&sorts) {
        if fields[i].nullable {
            return Err(syn::Error::new(
                id.span(),
                format!(
                    "`sort({id})`: the field is nullable, and keyset pages would skip its NULL rows; sort by a non-null field"
                ),
            ));
        }
    }
    // Secrets never reach a cache: refuse rather than drop the field.
    if let Some((_, span)) = &cache {
        if let Some(f) = fields.iter().find(|f| f.is_secret()) {
            return Err(syn::Error::new(
                *span,
                format!(
                    "`cache`: the field `{}` is a secret, and secrets are never copied to a cache; move it to an entity without `cache`",
                    f.name.rust
                ),
            ));
        }
    }
    let mut queries = Vec::new();
    let mut names = BTreeSet::new();
    for q in raw_queries {
        if !names.insert(q.name.clone()) {
            return Err(syn::Error::new(
                q.span,
                format!("duplicate query `{}`", q.name),
            ));
        }
        let order = q
            .order
            .iter()
            .map(|(c, desc, span)| {
                let field = fields
                    .iter()
                    .position(|f| &f.name.rust == c)
                    .ok_or_else(|| syn::Error::new(*span, format!("no field `{c}` to order by")))?;
                Ok(IndexColumn { field, desc: *desc })
            })
            .collect::<syn::Result<Vec<_>>>()?;
        queries.push(Query {
            name: Ident {
                schema: q.name.clone(),
                sql: q.name.clone(),
                rust: q.name,
            },
            params: q.params.iter().map(find).collect::<syn::Result<_>>()?,
            fixed: q
                .fixed
                .iter()
                .map(|(id, v)| Ok((find(id)?, v.clone())))
                .collect::<syn::Result<_>>()?,
            order,
            limit: q.limit,
            one: q.one,
            span: Default::default(),
        });
    }
    let name = input.ident.to_string();
    let sql = match table {
        Some(t) => t,
        None => heck::AsSnakeCase(&name).to_string(),
    };
    let version = fields.iter().position(|f| f.role == FieldRole::Version);
    let entity = Entity {
        name: Ident {
            schema: name.clone(),
            sql,
            rust: name,
        },
        doc: None,
        store: StoreId::NONE,
        kind: EntityKind::Record,
        fields,
        key,
        uniques: vec![],
        indexes: vec![],
        queries,
        cache: cache.map(|(ttl_ms, _)| crate::model::Cache {
            store: StoreId::NONE,
            ttl_ms,
        }),
        events,
        search: None,
        partition_by: None,
        version,
        renamed_from: None,
        copy: Vec::new(),
        table_span: Default::default(),
        span: Default::default(),
    };
    Ok(EntityDef {
        ident: input.ident.clone(),
        vis: input.vis.clone(),
        schema,
        store: store.unwrap_or_default(),
        entity,
        types,
        idents,
        spans,
        sorts,
    })
}

/// `events(partitions = 8, max_len = 100000, pubsub = true)`; every setting
/// optional (the schema's defaults).
fn events_setting(m: &ParseNestedMeta) -> syn::Result<crate::model::Events> {
    use crate::model::Events;
    let mut ev = Events {
        store: StoreId::NONE,
        partitions: Events::DEFAULT_PARTITIONS,
        max_len: Events::DEFAULT_MAX_LEN,
        pubsub: true,
    };
    if !m.input.peek(syn::token::Paren) {
        return Ok(ev);
    }
    m.parse_nested_meta(|c| {
        let int = || -> syn::Result<u64> { c.value()?.parse::<syn::LitInt>()?.base10_parse() };
        if c.path.is_ident("partitions") {
            match int()? {
                n @ 1..=1024 => ev.partitions = n as u16,
                _ => return Err(c.error("`partitions` is 1 to 1024")),
            }
        } else if c.path.is_ident("max_len") {
            match int()? {
                n if n >= 1000 => ev.max_len = n,
                _ => return Err(c.error("`max_len` is at least 1000")),
            }
        } else if c.path.is_ident("pubsub") {
            ev.pubsub = c.value()?.parse::<syn::LitBool>()?.value;
        } else {
            return Err(c.error("the events settings are `partitions`, `max_len` and `pubsub`"));
        }
        Ok(())
    })?;
    Ok(ev)
}
