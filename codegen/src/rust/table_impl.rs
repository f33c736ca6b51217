//! The `impl strata_sdk::postgres::Table` of an entity: its `TableDef`
//! (SQL names and column roles; no SQL text but the schema's defaults) and
//! its binders, each value pointed at the user's field for type errors.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};

use super::plan::Plan;
use crate::model::{Default as Value, FieldRole, ScalarType};

pub fn emit(p: &Plan) -> TokenStream {
    let (ident, new, patch, key) = (&p.def.ident, p.new_ident(), p.patch_ident(), p.key_ident());
    let pg = quote!(__pg);
    let def = table_def(p);
    let bind_key = match p.key.len() {
        1 => quote!(s.value(k)?;),
        n => {
            let parts = (0..n).map(syn::Index::from);
            quote!(#(s.value(&k.#parts)?;)*)
        }
    };
    let bind_new = binds(p, &p.new, quote!(r), false);
    let mut row_fields = p.upd.clone();
    row_fields.extend(&p.key);
    row_fields.extend(p.version);
    let bind_row = binds(p, &row_fields, quote!(r), false);
    let bind_patch = binds(p, &p.upd, quote!(p), true);
    let new_key = new_key(p);
    let (version, check) = match p.version {
        Some(v) => {
            let f = p.ident(v);
            (
                quote!(::std::option::Option::Some(self.#f)),
                quote!(#pg::VersionCheck::of(p.expected_version, p.any_version)),
            )
        }
        None => (
            quote!(::std::option::Option::None),
            quote!(#pg::VersionCheck::Skip),
        ),
    };
    let cache = p.def.entity.cache.as_ref().map(|c| {
        let ttl = Literal::u64_unsuffixed(c.ttl_ms.unwrap_or(DEFAULT_CACHE_TTL_MS));
        let fp = fingerprint(p);
        quote! {
            const CACHE: ::std::option::Option<&'static #pg::CacheDef> =
                ::std::option::Option::Some(&#pg::CacheDef { ttl_ms: #ttl, fingerprint: #fp });
        }
    });
    // A binder of a table with nothing to bind leaves its arguments unused.
    quote! {
        #[allow(unused_variables)]
        impl #pg::Table for #ident {
            type Key = #key;
            type New = #new;
            type Patch = #patch;
            const DEF: &'static #pg::TableDef = &#def;
            #cache
            fn statements() -> &'static #pg::Statements {
                static S: ::std::sync::OnceLock<#pg::Statements> = ::std::sync::OnceLock::new();
                S.get_or_init(|| #pg::Statements::build(Self::DEF))
            }
            fn key(&self) -> #key { Self::key(self) }
            fn new_key(r: &#new) -> ::std::option::Option<#key> { #new_key }
            fn bind_key<S: #pg::Sink>(k: &#key, s: &mut S) -> #pg::Result<()> { #bind_key Ok(()) }
            fn bind_new<S: #pg::Sink>(r: &#new, s: &mut S) -> #pg::Result<()> { #bind_new Ok(()) }
            fn bind_row<S: #pg::Sink>(r: &Self, s: &mut S) -> #pg::Result<()> { #bind_row Ok(()) }
            fn bind_patch<S: #pg::Sink>(p: &#patch, s: &mut S) -> #pg::Result<()> { #bind_patch Ok(()) }
            fn version(&self) -> ::std::option::Option<i64> { #version }
            fn version_check(p: &#patch) -> #pg::VersionCheck { #check }
        }
    }
}

/// The TTL of an entity whose `cache:` gives none: one minute.
pub const DEFAULT_CACHE_TTL_MS: u64 = 60_000;

/// The fingerprint of an entity's cached shape: the first 8 hex digits of
/// a SHA-256 over the encoding version, the entity's name, each field's
/// Rust and SQL names, schema type, nullability and role, and the key. A
/// change of any of them changes every cache key of the entity, so a
/// deploy never decodes entries of another shape. It reads the model only,
/// so the derive and `strata sync` (whose Redis target invalidates the
/// same keys) compute the same text.
pub fn fingerprint(p: &Plan) -> String {
    fingerprint_of(&p.def.entity)
}

/// [`fingerprint`] of a model entity.
pub fn fingerprint_of(e: &crate::model::Entity) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"strata-cache-1\n");
    h.update(e.name.schema.as_bytes());
    for f in &e.fields {
        let line = format!(
            "\n{}|{}|{}|{}|{:?}",
            f.name.rust, f.name.sql, f.ty, f.nullable, f.role
        );
        h.update(line.as_bytes());
    }
    h.update(format!("\nkey {:?}", e.key).as_bytes());
    hex::encode(&h.finalize()[..4])
}

/// `s.value(&r.field)?;` for each field (`array` for array columns,
/// `patch` for a patch's flag and value).
fn binds(p: &Plan, fields: &[usize], of: TokenStream, patch: bool) -> TokenStream {
    let mut out = quote!();
    for &i in fields {
        let f = p.ident(i);
        let array = p.def.entity.fields[i].ty.is_array();
        let call = match (patch, array) {
            (false, false) => quote!(value),
            (false, true) => quote!(array),
            (true, false) => quote!(patch),
            (true, true) => quote!(patch_array),
        };
        let n = Literal::usize_unsuffixed(i);
        let value = match p.def.entity.fields[i].ty.scalar() {
            ScalarType::Decimal { .. } => quote!(__pg::check::decimal(Self::DEF, #n, &#of.#f)?),
            ScalarType::String { max: Some(_) } => {
                quote!(__pg::check::length(Self::DEF, #n, &#of.#f)?)
            }
            ScalarType::Secret => quote!(__pg::check::secret(Self::DEF, #n, &#of.#f)?),
            ScalarType::Json => quote!(__pg::check::json(Self::DEF, #n, &#of.#f)?),
            ScalarType::Timestamptz => quote!(&__pg::check::micros(&#of.#f)),
            _ => quote!(&#of.#f),
        };
        out.extend(quote_spanned!(p.def.spans[i]=> s.#call(#value)?;));
        if patch && p.numeric(i) {
            let add = p.add_ident(i);
            let value = match p.def.entity.fields[i].ty.scalar() {
                ScalarType::Decimal { .. } => {
                    quote!(__pg::check::decimal(Self::DEF, #n, &#of.#add)?)
                }
                _ => quote!(&#of.#add),
            };
            out.extend(quote_spanned!(p.def.spans[i]=> s.add(#value)?;));
        }
    }
    out
}

/// `Some(key)` when every key field has a value in the `New…` row, else
/// `None`: a key field with a default is an `Option` there, and a row that
/// gives it (an upsert of an existing row) has a key whose cached entry
/// its write must invalidate. A row that leaves it to the default, or a
/// key PostgreSQL generates (identity, not in `New…`), makes a new row,
/// which nothing can have cached (absent rows are never cached).
fn new_key(p: &Plan) -> TokenStream {
    if !p.key.iter().all(|i| p.new.contains(i)) {
        return quote!(::std::option::Option::None);
    }
    let parts = p.key.iter().map(|&i| {
        let f = p.ident(i);
        match p.optional_in_new(i) {
            true => quote!(::std::clone::Clone::clone(r.#f.as_ref()?)),
            false => quote!(::std::clone::Clone::clone(&r.#f)),
        }
    });
    let key = match p.key.len() {
        1 => quote!(#(#parts)*),
        _ => quote!((#(#parts,)*)),
    };
    match p.key.iter().any(|&i| p.optional_in_new(i)) {
        true => quote!((|| ::std::option::Option::Some(#key))()),
        false => quote!(::std::option::Option::Some(#key)),
    }
}

/// The `TableDef` literal.
fn table_def(p: &Plan) -> TokenStream {
    let e = &p.def.entity;
    let pg = quote!(__pg);
    let entity = p.entity_name();
    let table = &e.name.sql;
    let schema = match &p.def.schema {
        Some(s) => quote!(::std::option::Option::Some(#s)),
        None => quote!(::std::option::Option::None),
    };
    let store = &p.def.store;
    let columns = e.fields.iter().enumerate().map(|(i, f)| {
        let numeric = f.role == FieldRole::Data && p.numeric(i);
        let name = &f.name.sql;
        let mut c = match f.role {
            FieldRole::Data => quote!(#pg::Column::data(#name)),
            FieldRole::CreatedAt => quote!(#pg::Column::created_at(#name)),
            FieldRole::UpdatedAt => quote!(#pg::Column::updated_at(#name)),
            FieldRole::Version => quote!(#pg::Column::version(#name)),
        };
        // Only an insert applies a default, and only data columns are inserted.
        let inserted = f.role == FieldRole::Data;
        let default = f.default.as_ref().filter(|_| inserted);
        if let Some(sql) = default.and_then(|d| crate::postgres::default_expr(d, &f.ty, None)) {
            c.extend(quote!(.default(#sql)));
        }
        if f.default == Some(Value::Identity) {
            c.extend(quote!(.identity()));
        }
        if f.nullable {
            c.extend(quote!(.nullable()));
        }
        if f.ty.is_array() {
            c.extend(quote!(.array()));
        }
        match f.ty.scalar() {
            ScalarType::Timestamptz => c.extend(quote!(.timestamptz())),
            ScalarType::Date => c.extend(quote!(.date())),
            ScalarType::Json => c.extend(quote!(.json())),
            _ => {}
        }
        if let ScalarType::Decimal { precision, scale } = f.ty.scalar() {
            let (p, s) = (
                Literal::u8_unsuffixed(*precision),
                Literal::u8_unsuffixed(*scale),
            );
            c.extend(quote!(.decimal(#p, #s)));
        }
        if let ScalarType::String { max: Some(n) } = f.ty.scalar() {
            let n = Literal::u32_unsuffixed(*n);
            c.extend(quote!(.max_chars(#n)));
        }
        if numeric {
            c.extend(quote!(.numeric()));
        }
        c
    });
    let list = |v: &[usize]| {
        let v = v.iter().map(|&i| Literal::usize_unsuffixed(i));
        quote!(&[#(#v),*])
    };
    let (key, sorts) = (list(&e.key), list(&p.def.sorts));
    let queries = e.queries.iter().map(|q| {
        let (name, params) = (&q.name.schema, list(&q.params));
        let mut def = quote!(#pg::QueryDef::new(#name, #params));
        if !q.fixed.is_empty() {
            let fixed = q.fixed.iter().map(|(i, v)| {
                let (i, text) = (Literal::usize_unsuffixed(*i), fixed_text(v));
                quote!((#i, #text))
            });
            def.extend(quote!(.fixed(&[#(#fixed),*])));
        }
        if !q.order.is_empty() {
            let order = q.order.iter().map(|o| {
                let (i, desc) = (Literal::usize_unsuffixed(o.field), o.desc);
                quote!((#i, #desc))
            });
            def.extend(quote!(.order(&[#(#order),*])));
        }
        if let Some(l) = q.limit {
            let l = Literal::u32_unsuffixed(l);
            def.extend(quote!(.limit(#l)));
        }
        if q.one {
            def.extend(quote!(.one()));
        }
        def
    });
    quote! {
        #pg::TableDef {
            entity: #entity,
            store: #store,
            schema: #schema,
            table: #table,
            columns: &[#(#columns),*],
            key: #key,
            sorts: #sorts,
            queries: &[#(#queries),*],
        }
    }
}

/// A fixed finder value as text; the SDK quotes it as a literal, which
/// PostgreSQL coerces to the column's type.
fn fixed_text(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(s) | Value::Number(s) | Value::String(s) | Value::EnumMember(s) => s.clone(),
        Value::EmptyArray => "{}".into(),
        Value::Now | Value::GeneratedUuid | Value::Identity => String::new(),
    }
}
