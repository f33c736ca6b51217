//! Each named query of the schema as a typed method: parameters by
//! reference, fixed values written into the statement as quoted literals
//! (they come from the schema, never from run time), order and limit.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use super::plan::{default_sql, Plan};

/// Method names the repository already uses; a query with one of these
/// names gets a `find_` prefix.
const TAKEN: &[&str] = &[
    "key",
    "insert",
    "upsert",
    "find",
    "get",
    "get_many",
    "update",
    "patch",
    "delete",
    "exists",
    "count",
    "list",
    "insert_many",
    "upsert_many",
    "update_many",
    "delete_many",
];

/// The connection is `strata_db`/`strata_conn` so that a parameter named
/// after a field (`db`, `conn`) cannot shadow it.
pub fn emit(p: &Plan) -> TokenStream {
    let methods = p.def.entity.queries.iter().map(|q| {
        let mut conds: Vec<String> = q
            .params
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("{} = ${}", p.col(i), n + 1))
            .collect();
        conds.extend(
            q.fixed
                .iter()
                .map(|(i, v)| format!("{} = {}", p.col(*i), default_sql(v))),
        );
        let mut sql = format!("SELECT {} FROM {}", p.cols, p.table);
        if !conds.is_empty() {
            sql += &format!(" WHERE {}", conds.join(" AND "));
        }
        if !q.order.is_empty() {
            let order: Vec<String> = q
                .order
                .iter()
                .map(|o| format!("{} {}", p.col(o.field), if o.desc { "DESC" } else { "ASC" }))
                .collect();
            sql += &format!(" ORDER BY {}", order.join(", "));
        }
        if let Some(l) = q.limit {
            sql += &format!(" LIMIT {l}");
        } else if q.one {
            sql += " LIMIT 1";
        }
        let name = if TAKEN.contains(&q.name.rust.as_str()) {
            format_ident!("find_{}", q.name.rust)
        } else {
            super::types::ident(&q.name.rust)
        };
        let args = q.params.iter().map(|&i| {
            let f = p.ident(i);
            let t = param_ty(p.ty(i));
            quote_spanned!(p.def.spans[i]=> #f: &#t)
        });
        let binds = q.params.iter().map(|&i| {
            let f = p.ident(i);
            quote!(.bind(#f))
        });
        let doc = format!("The schema's query `{}`: `{sql}`.", q.name.schema);
        let db = quote!(::sqlx::Acquire<'c, Database = ::sqlx::Postgres>);
        if q.one {
            quote! {
                #[doc = #doc]
                #[allow(clippy::too_many_arguments)]
                pub async fn #name<'c, A: #db>(strata_db: A, #(#args),*) -> ::strata_sdk::Result<::std::option::Option<Self>> {
                    let mut strata_conn = strata_db.acquire().await?;
                    Ok(::sqlx::query_as::<_, Self>(#sql) #(#binds)* .fetch_optional(&mut *strata_conn).await?)
                }
            }
        } else {
            quote! {
                #[doc = #doc]
                #[allow(clippy::too_many_arguments)]
                pub async fn #name<'c, A: #db>(strata_db: A, #(#args),*) -> ::strata_sdk::Result<::std::vec::Vec<Self>> {
                    let mut strata_conn = strata_db.acquire().await?;
                    Ok(::sqlx::query_as::<_, Self>(#sql) #(#binds)* .fetch_all(&mut *strata_conn).await?)
                }
            }
        }
    });
    quote!(#(#methods)*)
}

/// A parameter's type: the field's, without `Option` (a finder compares
/// with `=`, which never matches NULL), and `str` for `String`.
fn param_ty(ty: &syn::Type) -> TokenStream {
    let inner = super::types::option_inner(ty).unwrap_or(ty);
    if let syn::Type::Path(p) = inner {
        if p.path.segments.last().is_some_and(|s| s.ident == "String") {
            return quote!(str);
        }
    }
    quote!(#inner)
}
