//! Keyset pagination: `list` pages in key order; `list_by_<field>` pages in
//! the order of a sort field (`#[strata(sort(field, ...))]`), with the key
//! as the tie-breaker. The cursor is the last row's (sort value, key), so
//! every page is an index range scan, never an OFFSET.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::plan::Plan;

pub fn emit(p: &Plan) -> TokenStream {
    let mut out = method(p, None);
    for &i in &p.def.sorts {
        out.extend(method(p, Some(i)));
    }
    out
}

fn method(p: &Plan, sort: Option<usize>) -> TokenStream {
    let (table, cols) = (&p.table, &p.cols);
    let key_ty = p.key_ty();
    let db = quote!(::sqlx::Acquire<'c, Database = ::sqlx::Postgres>);
    let mut order_fields: Vec<usize> = sort.into_iter().collect();
    order_fields.extend(&p.key);
    let n = order_fields.len();
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    let row = format!("({})", p.list(&order_fields, |c| c));
    let order = |dir: &str| p.list(&order_fields, |c| format!("{c} {dir}"));
    let sql = |cmp: Option<&str>, dir: &str| match cmp {
        None => format!(
            "SELECT {cols} FROM {table} ORDER BY {} LIMIT $1",
            order(dir)
        ),
        Some(cmp) => format!(
            "SELECT {cols} FROM {table} WHERE {row} {cmp} ({}) ORDER BY {} LIMIT ${}",
            params.join(", "),
            order(dir),
            n + 1
        ),
    };
    let (asc, desc) = (sql(None, "ASC"), sql(None, "DESC"));
    let (asc_after, desc_after) = (sql(Some(">"), "ASC"), sql(Some("<"), "DESC"));
    let (name, cursor_ty, bind_cursor, cursor_of, doc) = match sort {
        None => (
            format_ident!("list"),
            key_ty.clone(),
            p.bind_key(quote!(after)),
            quote!(Self::key),
            "One page of rows in key order after the request's cursor (keyset pagination, never OFFSET).".to_string(),
        ),
        Some(i) => {
            let (f, t) = (p.ident(i), p.ty(i));
            let field = f.to_string();
            // By reference: a lone String key cannot be moved out of `after`.
            let key = match p.key.len() {
                1 => quote!(&after.1),
                _ => quote!(after.1),
            };
            let bind_key = p.bind_key(key);
            (
                format_ident!("list_by_{}", field.trim_start_matches("r#")),
                quote!((#t, #key_ty)),
                quote!(.bind(&after.0) #bind_key),
                quote!(|r: &Self| (::std::clone::Clone::clone(&r.#f), r.key())),
                format!("One page of rows ordered by `{field}` then the key, after the request's cursor `({field}, key)` (keyset pagination)."),
            )
        }
    };
    let bind_cursor = if sort.is_some() || p.key.len() > 1 {
        bind_cursor
    } else {
        quote!(.bind(after))
    };
    quote! {
        #[doc = #doc]
        pub async fn #name<'c, A: #db>(db: A, page: &::strata_sdk::postgres::PageRequest<#cursor_ty>) -> ::strata_sdk::Result<::strata_sdk::postgres::Page<Self, #cursor_ty>> {
            let mut conn = db.acquire().await?;
            let limit = ::strata_sdk::postgres::limit(page.limit);
            let desc = page.order == ::strata_sdk::postgres::Order::Desc;
            let rows = match &page.after {
                ::std::option::Option::None => {
                    ::sqlx::query_as::<_, Self>(if desc { #desc } else { #asc }).bind(limit).fetch_all(&mut *conn).await?
                }
                ::std::option::Option::Some(after) => {
                    ::sqlx::query_as::<_, Self>(if desc { #desc_after } else { #asc_after }) #bind_cursor .bind(limit).fetch_all(&mut *conn).await?
                }
            };
            Ok(::strata_sdk::postgres::Page::new(rows, page.limit, #cursor_of))
        }
    }
}
