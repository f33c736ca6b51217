//! The one repository emitter. `strata-derive` calls [`expand`] for every
//! `#[derive(Entity)]`, on generated and hand-written structs alike, so the
//! SQL logic exists once. Every statement is a constant string; every value
//! is a bound parameter.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::attrs::{self, EntityDef};
use super::plan::{default_sql, Plan, ALIAS};

/// The derive's whole expansion for a struct, or the attribute error.
pub fn expand(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let def = attrs::parse(input)?;
    Ok(emit(&def))
}

/// Types and methods of one entity: `New…`, `…Patch`, `…Key`, the
/// repository methods, the finders and the batch writers.
pub fn emit(def: &EntityDef) -> TokenStream {
    let p = Plan::new(def);
    let types = types(&p);
    let single = single(&p);
    let finders = super::finders::emit(&p);
    let batch = super::batch::emit(&p);
    let ident = &def.ident;
    let methods = super::sendable::rewrite(quote!(#single #finders #batch));
    quote! {
        #types
        impl #ident {
            #methods
        }
    }
}

fn types(p: &Plan) -> TokenStream {
    let vis = &p.def.vis;
    let (ident, new, patch, key) = (&p.def.ident, p.new_ident(), p.patch_ident(), p.key_ident());
    let key_ty = p.key_ty();
    let new_fields = p.new.iter().map(|&i| {
        let (f, t) = (p.ident(i), p.new_ty(i));
        quote!(pub #f: #t)
    });
    let patch_fields = p.upd.iter().map(|&i| {
        let (f, t) = (p.ident(i), p.ty(i));
        quote!(pub #f: ::std::option::Option<#t>)
    });
    let expected = p.version.map(|_| {
        quote! {
            #[doc = "When set, the patch applies only if the row still has this version."]
            pub expected_version: ::std::option::Option<i64>
        }
    });
    let key_doc = format!("The primary key of [`{ident}`].");
    let new_doc = format!("A [`{ident}`] to insert; `None` fields take their schema default.");
    let patch_doc = format!("A partial update of [`{ident}`]: only the fields set are written.");
    quote! {
        #[doc = #key_doc]
        #vis type #key = #key_ty;
        #[doc = #new_doc]
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #vis struct #new { #(#new_fields,)* }
        #[doc = #patch_doc]
        #[derive(Debug, Clone, Default, PartialEq)]
        #vis struct #patch { #(#patch_fields,)* #expected }
    }
}

fn single(p: &Plan) -> TokenStream {
    let (table, cols) = (&p.table, &p.cols);
    let name = p.entity_name();
    let (new, patch, key_ty) = (p.new_ident(), p.patch_ident(), p.key_ty());
    let key_where = p.key_where(1);
    let key_fields = p.key.iter().map(|&i| p.ident(i));
    let key_value = if p.key.len() == 1 {
        quote!(#(::std::clone::Clone::clone(&self.#key_fields))*)
    } else {
        quote!((#(::std::clone::Clone::clone(&self.#key_fields),)*))
    };
    let bind_key = p.bind_key(quote!(key));
    let key_row_cols = p.key_row(|c| c);
    let db = quote!(::sqlx::Acquire<'c, Database = ::sqlx::Postgres>);
    let r = quote!(::strata_sdk::Result);

    // insert / upsert
    let placeholders: Vec<String> = p
        .new
        .iter()
        .enumerate()
        .map(|(n, &i)| p.insert_expr(i, &format!("${}", n + 1)))
        .collect();
    let insert_cols = p.list(&p.new, |c| c);
    let insert_sql = if p.new.is_empty() {
        format!("INSERT INTO {table} DEFAULT VALUES RETURNING {cols}")
    } else {
        format!(
            "INSERT INTO {table} ({insert_cols}) VALUES ({}) RETURNING {cols}",
            placeholders.join(", ")
        )
    };
    let mut sets: Vec<String> = p
        .upd
        .iter()
        .map(|&i| format!("{c} = EXCLUDED.{c}", c = p.col(i)))
        .collect();
    sets.extend(p.maintained_sets(ALIAS));
    if sets.is_empty() {
        let c = p.col(p.key[0]);
        sets.push(format!("{c} = EXCLUDED.{c}"));
    }
    // With nothing to insert the key is generated: an upsert is an insert.
    let upsert_sql = if p.new.is_empty() {
        insert_sql.clone()
    } else {
        format!(
            "INSERT INTO {table} AS {ALIAS} ({insert_cols}) VALUES ({}) ON CONFLICT {key_row_cols} DO UPDATE SET {} RETURNING {}",
            placeholders.join(", "),
            sets.join(", "),
            p.list(&(0..p.def.entity.fields.len()).collect::<Vec<_>>(), |c| format!("{ALIAS}.{c}")),
        )
    };
    let bind_new: Vec<TokenStream> = p
        .new
        .iter()
        .map(|&i| {
            let f = p.ident(i);
            quote_spanned!(p.def.spans[i]=> .bind(&row.#f))
        })
        .collect();

    // update: data columns, then the key, then the version.
    let mut sets: Vec<String> = p
        .upd
        .iter()
        .enumerate()
        .map(|(n, &i)| format!("{} = ${}", p.col(i), n + 1))
        .collect();
    sets.extend(p.maintained_sets(&p.table));
    let after = p.upd.len() + 1;
    let mut where_ = p.key_where(after);
    if let Some(v) = p.version {
        where_ += &format!(" AND {} = ${}", p.col(v), after + p.key.len());
    }
    let update_sql = if sets.is_empty() {
        format!("SELECT {cols} FROM {table} WHERE {where_}")
    } else {
        format!(
            "UPDATE {table} SET {} WHERE {where_} RETURNING {cols}",
            sets.join(", ")
        )
    };
    let bind_upd = p.upd.iter().map(|&i| {
        let f = p.ident(i);
        quote_spanned!(p.def.spans[i]=> .bind(&row.#f))
    });
    let bind_row_key = p.key.iter().map(|&i| {
        let f = p.ident(i);
        quote!(.bind(&row.#f))
    });
    let (bind_version, expected_row) = match p.version {
        Some(v) => {
            let f = p.ident(v);
            (
                quote!(.bind(row.#f)),
                quote!(::std::option::Option::Some(row.#f)),
            )
        }
        None => (quote!(), quote!(::std::option::Option::None)),
    };

    // patch: a flag and a value per data column, then the key, then the expected version.
    let mut sets: Vec<String> = p
        .upd
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            format!(
                "{c} = CASE WHEN ${} THEN ${} ELSE {c} END",
                2 * n + 1,
                2 * n + 2,
                c = p.col(i)
            )
        })
        .collect();
    sets.extend(p.maintained_sets(&p.table));
    let after = 2 * p.upd.len() + 1;
    let mut where_ = p.key_where(after);
    if let Some(v) = p.version {
        let n = after + p.key.len();
        where_ += &format!(" AND (${n}::int8 IS NULL OR {} = ${n})", p.col(v));
    }
    let patch_sql = if sets.is_empty() {
        format!("SELECT {cols} FROM {table} WHERE {where_}")
    } else {
        format!(
            "UPDATE {table} SET {} WHERE {where_} RETURNING {cols}",
            sets.join(", ")
        )
    };
    let bind_patch = p.upd.iter().map(|&i| {
        let f = p.ident(i);
        quote_spanned!(p.def.spans[i]=> .bind(patch.#f.is_some()).bind(&patch.#f))
    });
    let (bind_expected, expected_patch) = match p.version {
        Some(_) => (
            quote!(.bind(patch.expected_version)),
            quote!(patch.expected_version),
        ),
        None => (quote!(), quote!(::std::option::Option::None)),
    };

    let get_sql = format!("SELECT {cols} FROM {table} WHERE {key_where}");
    let exists_sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {key_where})");
    let delete_sql = format!("DELETE FROM {table} WHERE {key_where}");
    let count_sql = format!("SELECT count(*) FROM {table}");
    let get_many = get_many(p);
    let list = super::list::emit(p);
    let missing = missing(p);
    let _ = default_sql;
    quote! {
        #[doc = "The table, quoted."]
        pub const TABLE: &'static str = #table;
        #[doc = "Every column, quoted, in field order."]
        pub const COLUMNS: &'static str = #cols;

        #[doc = "This row's primary key."]
        pub fn key(&self) -> #key_ty { #key_value }

        #[doc = "Inserts a row; columns left `None` take their schema default. A taken key or unique value is `Error::Conflict`."]
        pub async fn insert<'c, A: #db>(db: A, row: &#new) -> #r<Self> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query_as::<_, Self>(#insert_sql) #(#bind_new)* .fetch_one(&mut *conn).await?)
        }

        #[doc = "Inserts a row, or overwrites the row with its key (bumping `updated_at` and `version`)."]
        pub async fn upsert<'c, A: #db>(db: A, row: &#new) -> #r<Self> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query_as::<_, Self>(#upsert_sql) #(#bind_new)* .fetch_one(&mut *conn).await?)
        }

        #[doc = "The row with this key, if any."]
        pub async fn find<'c, A: #db>(db: A, key: &#key_ty) -> #r<::std::option::Option<Self>> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query_as::<_, Self>(#get_sql) #bind_key .fetch_optional(&mut *conn).await?)
        }

        #[doc = "The row with this key; `Error::NotFound` if there is none."]
        pub async fn get<'c, A: #db>(db: A, key: &#key_ty) -> #r<Self> {
            Self::find(db, key).await?.ok_or(::strata_sdk::Error::NotFound { entity: #name })
        }

        #get_many

        #[doc = "Writes every data column of the row by its key. With a `version` column the write happens only if the row still has `row.version` (else `Error::StaleVersion`, nothing changed); the returned row has the new version and `updated_at`."]
        pub async fn update<'c, A: #db>(db: A, row: &Self) -> #r<Self> {
            let mut conn = db.acquire().await?;
            let done = ::sqlx::query_as::<_, Self>(#update_sql) #(#bind_upd)* #(#bind_row_key)* #bind_version
                .fetch_optional(&mut *conn).await?;
            match done {
                ::std::option::Option::Some(r) => Ok(r),
                ::std::option::Option::None => Err(Self::strata_missing(&mut *conn, &row.key(), #expected_row).await),
            }
        }

        #[doc = "Writes only the fields set in the patch."]
        pub async fn patch<'c, A: #db>(db: A, key: &#key_ty, patch: &#patch) -> #r<Self> {
            let mut conn = db.acquire().await?;
            let done = ::sqlx::query_as::<_, Self>(#patch_sql) #(#bind_patch)* #bind_key #bind_expected
                .fetch_optional(&mut *conn).await?;
            match done {
                ::std::option::Option::Some(r) => Ok(r),
                ::std::option::Option::None => Err(Self::strata_missing(&mut *conn, key, #expected_patch).await),
            }
        }

        #missing

        #[doc = "Deletes the row with this key; `false` if there was none."]
        pub async fn delete<'c, A: #db>(db: A, key: &#key_ty) -> #r<bool> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query(#delete_sql) #bind_key .execute(&mut *conn).await?.rows_affected() > 0)
        }

        #[doc = "Whether a row has this key."]
        pub async fn exists<'c, A: #db>(db: A, key: &#key_ty) -> #r<bool> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query_scalar::<_, bool>(#exists_sql) #bind_key .fetch_one(&mut *conn).await?)
        }

        #[doc = "How many rows the table holds."]
        pub async fn count<'c, A: #db>(db: A) -> #r<i64> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query_scalar::<_, i64>(#count_sql).fetch_one(&mut *conn).await?)
        }

        #list
    }
}

/// Why an update matched no row: a stale version or a missing key.
fn missing(p: &Plan) -> TokenStream {
    let name = p.entity_name();
    let key_ty = p.key_ty();
    let bind_key = p.bind_key(quote!(key));
    let body = match p.version {
        Some(v) => {
            let sql = format!(
                "SELECT {} FROM {} WHERE {}",
                p.col(v),
                p.table,
                p.key_where(1)
            );
            quote! {
                let found = ::sqlx::query_scalar::<_, i64>(#sql) #bind_key .fetch_optional(conn).await;
                match (found, expected) {
                    (Ok(Some(found)), Some(expected)) => ::strata_sdk::Error::StaleVersion { entity: #name, expected, found },
                    (Ok(_), _) => ::strata_sdk::Error::NotFound { entity: #name },
                    (Err(e), _) => e.into(),
                }
            }
        }
        None => quote! {
            let _ = (conn, key, expected);
            ::strata_sdk::Error::NotFound { entity: #name }
        },
    };
    quote! {
        #[doc(hidden)]
        async fn strata_missing(conn: &mut ::sqlx::PgConnection, key: &#key_ty, expected: ::std::option::Option<i64>) -> ::strata_sdk::Error {
            #body
        }
    }
}

fn get_many(p: &Plan) -> TokenStream {
    let (table, cols) = (&p.table, &p.cols);
    let key_ty = p.key_ty();
    let db = quote!(::sqlx::Acquire<'c, Database = ::sqlx::Postgres>);
    let (sql, binds) = if p.key.len() == 1 {
        (
            format!(
                "SELECT {cols} FROM {table} WHERE {} = ANY($1)",
                p.col(p.key[0])
            ),
            quote!(.bind(keys)),
        )
    } else {
        let params: Vec<String> = (1..=p.key.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {cols} FROM {table} WHERE {} IN (SELECT * FROM UNNEST({}))",
            p.key_row(|c| c),
            params.join(", ")
        );
        let parts = (0..p.key.len()).map(|n| {
            let idx = syn::Index::from(n);
            quote!(.bind(keys.iter().map(|k| ::std::clone::Clone::clone(&k.#idx)).collect::<::std::vec::Vec<_>>()))
        });
        (sql, quote!(#(#parts)*))
    };
    quote! {
        #[doc = "The rows with these keys, in one round trip (missing keys are skipped; order is the table's)."]
        pub async fn get_many<'c, A: #db>(db: A, keys: &[#key_ty]) -> ::strata_sdk::Result<::std::vec::Vec<Self>> {
            let mut conn = db.acquire().await?;
            Ok(::sqlx::query_as::<_, Self>(#sql) #binds .fetch_all(&mut *conn).await?)
        }
    }
}
