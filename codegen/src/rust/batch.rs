//! Batch writers: `insert_many`, `upsert_many`, `update_many`,
//! `delete_many`. The input streams from an iterator; the whole call is one
//! transaction. Chunks are moved column by column into arrays (never held
//! twice) and sent as one statement over `UNNEST($1, $2, …)`; large inserts
//! and upserts stream through `COPY (FORMAT binary)` instead.
//! Entities with array fields write multi-row `VALUES` statements of up to
//! 1,000 rows instead (same transaction, same counts): arrays go through
//! neither `UNNEST` nor `COPY`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use super::plan::{Plan, ALIAS};

/// Arrays for some fields: declarations, pushes from `row`, binds, the
/// `UNNEST(...) AS u(...)` clause.
struct Columns {
    decls: TokenStream,
    pushes: TokenStream,
    binds: TokenStream,
    unnest: String,
}

fn columns(
    p: &Plan,
    fields: &[usize],
    ty: impl Fn(usize) -> TokenStream,
    value: impl Fn(usize) -> TokenStream,
) -> Columns {
    let (mut decls, mut pushes, mut binds) = (quote!(), quote!(), quote!());
    for (n, &i) in fields.iter().enumerate() {
        let c = format_ident!("c{}", n);
        let (t, v) = (ty(i), value(i));
        decls
            .extend(quote!(let mut #c: ::std::vec::Vec<#t> = ::std::vec::Vec::with_capacity(cap);));
        pushes.extend(quote_spanned!(p.def.spans[i]=> #c.push(#v);));
        binds.extend(quote_spanned!(p.def.spans[i]=> .bind(#c)));
    }
    let params: Vec<String> = (1..=fields.len()).map(|n| format!("${n}")).collect();
    let unnest = format!(
        "UNNEST({}) AS u({})",
        params.join(", "),
        p.list(fields, |c| c)
    );
    Columns {
        decls,
        pushes,
        binds,
        unnest,
    }
}

/// The chunk loop around one statement; `exec` runs it on `tx` and adds to `counts`.
fn chunked(item: TokenStream, cols: &Columns, exec: TokenStream) -> TokenStream {
    let Columns { decls, pushes, .. } = cols;
    quote! {
        let chunk = ::strata_sdk::postgres::BATCH_CHUNK;
        let mut tx = ::sqlx::Acquire::begin(db).await?;
        let mut rows = rows.into_iter();
        let mut counts = ::strata_sdk::BatchCounts::default();
        loop {
            let cap = rows.size_hint().0.clamp(1, chunk);
            #decls
            let mut n: usize = 0;
            for #item in rows.by_ref().take(chunk) {
                #pushes
                n += 1;
            }
            if n == 0 {
                break;
            }
            #exec
            if n < chunk {
                break;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }
}

/// Name of the per-call staging table of the COPY path (a temp table,
/// dropped at the end of the call, or with the rollback of a failed one).
const STAGE: &str = "\"_strata_stage\"";

/// `insert_many`/`upsert_many`: fewer rows than a chunk go as one `UNNEST`
/// statement; more stream through `COPY (FORMAT binary)` into a staging
/// table and one `INSERT … SELECT … ON CONFLICT` (the fastest upsert
/// PostgreSQL has, see BENCHMARKS.md). `small` runs the `UNNEST` statement,
/// `staged` the statement reading the staging table; both add to `counts`.
fn small_or_staged(p: &Plan, cols: &Columns, small: TokenStream, large: Large) -> TokenStream {
    let Columns { decls, pushes, .. } = cols;
    let new = p.new_ident();
    let create = format!(
        "CREATE TEMP TABLE {STAGE} AS SELECT {} FROM {} WITH NO DATA",
        p.list(&p.new, |c| c),
        p.table
    );
    let copy = format!(
        "COPY {STAGE} ({}) FROM STDIN (FORMAT binary)",
        p.list(&p.new, |c| c)
    );
    let drop = format!("DROP TABLE {STAGE}");
    let width = p.new.len() as i16;
    let fields: Vec<TokenStream> = p
        .new
        .iter()
        .map(|&i| {
            let f = p.ident(i);
            quote_spanned!(p.def.spans[i]=> w.field(&row.#f)?;)
        })
        .collect();
    let large_body = match large {
        Large::Staged(staged) => quote! {
            ::sqlx::query(#create).execute(&mut *tx).await?;
            let mut copy = tx.copy_in_raw(#copy).await?;
            let mut w = ::strata_sdk::postgres::CopyWriter::new();
            for row in head.into_iter().chain(rows) {
                w.row(#width);
                let encoded = (|| -> ::strata_sdk::Result<()> {
                    #(#fields)*
                    Ok(())
                })();
                if let Err(e) = encoded {
                    return Err(::strata_sdk::postgres::abort_copy(copy, e).await);
                }
                if w.full() {
                    w.flush(&mut copy).await?;
                }
            }
            let staged_rows: u64 = w.finish(copy).await?;
            #staged
            ::sqlx::query(#drop).execute(&mut *tx).await?;
        },
        Large::Direct { insert_from_stage } => {
            let direct = format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                p.table,
                p.list(&p.new, |c| c)
            );
            quote! {
                let sql = ::strata_sdk::postgres::InsertSql {
                    copy_direct: #direct,
                    create_stage: #create,
                    copy_stage: #copy,
                    insert_from_stage: #insert_from_stage,
                    drop_stage: #drop,
                };
                counts.inserted += ::strata_sdk::postgres::insert_rows(
                    &mut tx,
                    &sql,
                    #width,
                    head.into_iter().chain(rows),
                    |w: &mut ::strata_sdk::postgres::CopyWriter, row: #new| -> ::strata_sdk::Result<()> {
                        #(#fields)*
                        Ok(())
                    },
                )
                .await?;
            }
        }
    };
    quote! {
        let chunk = ::strata_sdk::postgres::BATCH_CHUNK;
        let mut tx = ::sqlx::Acquire::begin(db).await?;
        let mut rows = rows.into_iter();
        let head: ::std::vec::Vec<#new> = rows.by_ref().take(chunk).collect();
        let mut counts = ::strata_sdk::BatchCounts::default();
        if head.len() < chunk {
            if !head.is_empty() {
                let cap = head.len();
                #decls
                for row in head {
                    #pushes
                }
                #small
            }
        } else {
            #large_body
        }
        tx.commit().await?;
        Ok(counts)
    }
}

/// How many rows go once there are more than a chunk.
enum Large {
    /// All through the staging table, then this statement.
    Staged(TokenStream),
    /// Blocks copied straight into the table, falling back per block to
    /// the staging table and this `INSERT … SELECT … DO NOTHING` when a key exists.
    Direct { insert_from_stage: String },
}

/// Multi-row `VALUES` chunks, for entities with array fields (an array
/// column cannot travel through `UNNEST`, which would flatten the arrays of
/// arrays, nor through binary `COPY`, whose arrays must carry the element
/// type's OID, known per connection for enums). `sql` holds the `UNNEST`
/// clause `unnest`, replaced at run time by `(VALUES ($1, …), …) AS u(…)`
/// for each chunk; `run` executes `q` (the bound query) on `tx`, for `n`
/// rows, and adds to `counts`. One round trip per chunk, one transaction.
struct ValuesChunks<'a> {
    sql: &'a str,
    unnest: &'a str,
    fields: &'a [usize],
    item: TokenStream,
}

fn values_chunked(p: &Plan, v: ValuesChunks, query: TokenStream, run: TokenStream) -> TokenStream {
    let (before, after) = v
        .sql
        .split_once(v.unnest)
        .expect("the statement holds its UNNEST clause");
    let columns = p.list(v.fields, |c| c);
    let width = v.fields.len();
    let item = v.item;
    let mut binds = quote!();
    for &i in v.fields {
        let f = p.ident(i);
        binds.extend(quote_spanned!(p.def.spans[i]=> .bind(row.#f)));
    }
    quote! {
        let chunk = ::strata_sdk::postgres::values_chunk(#width);
        let mut tx = ::sqlx::Acquire::begin(db).await?;
        let mut rows = rows.into_iter();
        let mut counts = ::strata_sdk::BatchCounts::default();
        loop {
            let batch: ::std::vec::Vec<#item> = rows.by_ref().take(chunk).collect();
            let n = batch.len();
            if n == 0 {
                break;
            }
            let sql = ::strata_sdk::postgres::values_sql(#before, #after, #columns, #width, n);
            let mut q = #query;
            for row in batch {
                q = q #binds;
            }
            #run
            if n < chunk {
                break;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }
}

pub fn emit(p: &Plan) -> TokenStream {
    // Entities with array fields write multi-row `VALUES` chunks (still one
    // transaction per call); their keys are never arrays, so `delete_many`
    // keeps `UNNEST`.
    let values_writes = p.def.entity.fields.iter().any(|f| f.ty.is_array());
    let (table, new) = (&p.table, p.new_ident());
    let key_ty = p.key_ty();
    let name = p.entity_name();
    let db = quote!(::sqlx::Acquire<'c, Database = ::sqlx::Postgres>);
    let r = quote!(::strata_sdk::Result<::strata_sdk::BatchCounts>);
    let moved = |i: usize| {
        let f = p.ident(i);
        quote!(row.#f)
    };

    let ins = columns(p, &p.new, |i| p.new_ty(i), moved);
    let exprs: Vec<String> = p
        .new
        .iter()
        .map(|&i| p.insert_expr(i, &format!("u.{}", p.col(i))))
        .collect();
    let select = format!("SELECT {} FROM {}", exprs.join(", "), ins.unnest);
    let insert_cols = p.list(&p.new, |c| c);
    let key_row = p.key_row(|c| c);
    let insert_sql =
        format!("INSERT INTO {table} ({insert_cols}) {select} ON CONFLICT {key_row} DO NOTHING");
    let staged_select = format!("SELECT {} FROM {STAGE} AS u", exprs.join(", "));
    let insert_staged = format!(
        "INSERT INTO {table} ({insert_cols}) {staged_select} ON CONFLICT {key_row} DO NOTHING"
    );
    let binds = &ins.binds;
    let insert_many = if values_writes {
        values_chunked(
            p,
            ValuesChunks {
                sql: &insert_sql,
                unnest: &ins.unnest,
                fields: &p.new,
                item: quote!(#new),
            },
            quote!(::sqlx::query(&sql)),
            quote! {
                counts.inserted += q.execute(&mut *tx).await?.rows_affected();
            },
        )
    } else {
        small_or_staged(
            p,
            &ins,
            quote! {
                counts.inserted += ::sqlx::query(#insert_sql) #binds .execute(&mut *tx).await?.rows_affected();
            },
            // COPY writes a `None` as NULL, so tables whose inserts apply
            // defaults to `None`s go through the staging table and COALESCE.
            if p.new.iter().any(|&i| p.optional_in_new(i)) {
                Large::Staged(quote! {
                    let _ = staged_rows;
                    counts.inserted += ::sqlx::query(#insert_staged).execute(&mut *tx).await?.rows_affected();
                })
            } else {
                Large::Direct {
                    insert_from_stage: insert_staged,
                }
            },
        )
    };

    let mut sets: Vec<String> = p
        .upd
        .iter()
        .map(|&i| format!("{c} = EXCLUDED.{c}", c = p.col(i)))
        .collect();
    sets.extend(p.maintained_sets(ALIAS));
    let conflict = if sets.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", sets.join(", "))
    };
    let upsert_sql = format!(
        "WITH w AS (INSERT INTO {table} AS {ALIAS} ({insert_cols}) {select} ON CONFLICT {key_row} {conflict} RETURNING (xmax = 0) AS ins) \
         SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w"
    );
    let upsert_staged = upsert_sql.replace(&select, &staged_select);
    let staged_upsert = match set_based_upsert(p, &sets, &staged_select) {
        Some(set_based) => quote! {
            let (i, u) = ::strata_sdk::postgres::upsert_staged(
                &mut tx,
                &::strata_sdk::postgres::UpsertSql { set_based: #set_based, on_conflict: #upsert_staged },
                staged_rows,
            )
            .await?;
            counts.inserted += i;
            counts.updated += u;
        },
        None => quote! {
            let _ = staged_rows;
            let (i, u): (i64, i64) = ::sqlx::query_as(#upsert_staged).fetch_one(&mut *tx).await?;
            counts.inserted += i as u64;
            counts.updated += u as u64;
        },
    };
    let upsert_many = if values_writes {
        values_chunked(
            p,
            ValuesChunks {
                sql: &upsert_sql,
                unnest: &ins.unnest,
                fields: &p.new,
                item: quote!(#new),
            },
            quote!(::sqlx::query_as::<_, (i64, i64)>(&sql)),
            quote! {
                let (i, u) = q.fetch_one(&mut *tx).await?;
                counts.inserted += i as u64;
                counts.updated += u as u64;
            },
        )
    } else {
        small_or_staged(
            p,
            &ins,
            quote! {
                let (i, u): (i64, i64) = ::sqlx::query_as(#upsert_sql) #binds .fetch_one(&mut *tx).await?;
                counts.inserted += i as u64;
                counts.updated += u as u64;
            },
            Large::Staged(staged_upsert),
        )
    };

    let mut fields: Vec<usize> = p.key.clone();
    fields.extend(&p.upd);
    fields.extend(p.version);
    let upd = columns(
        p,
        &fields,
        |i| {
            let t = p.ty(i);
            quote!(#t)
        },
        moved,
    );
    let mut sets: Vec<String> = p
        .upd
        .iter()
        .map(|&i| format!("{c} = u.{c}", c = p.col(i)))
        .collect();
    sets.extend(p.maintained_sets(ALIAS));
    let mut conds: Vec<String> = p
        .key
        .iter()
        .map(|&i| format!("{ALIAS}.{c} = u.{c}", c = p.col(i)))
        .collect();
    conds.extend(
        p.version
            .map(|i| format!("{ALIAS}.{c} = u.{c}", c = p.col(i))),
    );
    let update_sql = format!(
        "UPDATE {table} AS {ALIAS} SET {} FROM {} WHERE {}",
        sets.join(", "),
        upd.unnest,
        conds.join(" AND ")
    );
    let binds = &upd.binds;
    let update_many = if values_writes {
        values_chunked(
            p,
            ValuesChunks {
                sql: &update_sql,
                unnest: &upd.unnest,
                fields: &fields,
                item: quote!(Self),
            },
            quote!(::sqlx::query(&sql)),
            quote! {
                let done = q.execute(&mut *tx).await?.rows_affected();
                if done != n as u64 {
                    return Err(::strata_sdk::Error::BatchIncomplete { entity: #name, expected: n as u64, affected: done });
                }
                counts.updated += done;
            },
        )
    } else {
        chunked(
            quote!(row),
            &upd,
            quote! {
                let done = ::sqlx::query(#update_sql) #binds .execute(&mut *tx).await?.rows_affected();
                if done != n as u64 {
                    return Err(::strata_sdk::Error::BatchIncomplete { entity: #name, expected: n as u64, affected: done });
                }
                counts.updated += done;
            },
        )
    };

    let key_value = |i: usize| match p.key.iter().position(|&k| k == i) {
        Some(_) if p.key.len() == 1 => quote!(row),
        Some(n) => {
            let idx = syn::Index::from(n);
            quote!(row.#idx)
        }
        None => quote!(),
    };
    let del = columns(
        p,
        &p.key,
        |i| {
            let t = p.ty(i);
            quote!(#t)
        },
        key_value,
    );
    let delete_sql = format!(
        "DELETE FROM {table} WHERE {key_row} IN (SELECT * FROM {})",
        del.unnest
    );
    let binds = &del.binds;
    let delete_many = chunked(
        quote!(row),
        &del,
        quote! {
            counts.deleted += ::sqlx::query(#delete_sql) #binds .execute(&mut *tx).await?.rows_affected();
        },
    );
    let update_many = if sets_empty(p) {
        quote!()
    } else {
        quote! {
            #[doc = "Writes every data column of each row by key, in chunks, in one transaction. A missing key or a stale `version` fails the whole call with `Error::BatchIncomplete` and nothing is written."]
            pub async fn update_many<'c, A: #db, I: ::std::iter::IntoIterator<Item = Self>>(db: A, rows: I) -> #r {
                #update_many
            }
        }
    };
    // Rows with nothing to insert (every column generated) have no batch insert.
    let writes = (!p.new.is_empty()).then(|| quote! {
        #[doc = "Inserts rows streamed from an iterator, skipping keys that exist; one statement per chunk, one transaction for the call."]
        pub async fn insert_many<'c, A: #db, I: ::std::iter::IntoIterator<Item = #new>>(db: A, rows: I) -> #r {
            #insert_many
        }
        #[doc = "Inserts rows or overwrites those whose key exists; one statement per chunk, one transaction for the call. Counts inserted and updated rows."]
        pub async fn upsert_many<'c, A: #db, I: ::std::iter::IntoIterator<Item = #new>>(db: A, rows: I) -> #r {
            #upsert_many
        }
    });
    quote! {
        #writes
        #update_many
        #[doc = "Deletes the rows with these keys; one statement per chunk, one transaction for the call."]
        pub async fn delete_many<'c, A: #db, I: ::std::iter::IntoIterator<Item = #key_ty>>(db: A, rows: I) -> #r {
            #delete_many
        }
    }
}

/// The set-based upsert of the staging table (`UPDATE … FROM` the keys that
/// exist, plain `INSERT` of the rest, see `strata_sdk::postgres::upsert_staged`),
/// when every key and updated column travels through the staging table and
/// there is something to update; otherwise `ON CONFLICT` alone.
fn set_based_upsert(p: &Plan, sets: &[String], staged_select: &str) -> Option<String> {
    let staged = |i: &usize| p.new.contains(i);
    if sets.is_empty() || !p.key.iter().all(staged) || !p.upd.iter().all(staged) {
        return None;
    }
    let mut assign: Vec<String> = p
        .upd
        .iter()
        .map(|&i| {
            format!(
                "{c} = {}",
                p.insert_expr(i, &format!("u.{}", p.col(i))),
                c = p.col(i)
            )
        })
        .collect();
    assign.extend(p.maintained_sets(ALIAS));
    let same_key = |left: &str| {
        p.key
            .iter()
            .map(|&i| format!("{left}.{c} = u.{c}", c = p.col(i)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    Some(format!(
        "WITH \"_u\" AS (UPDATE {table} AS {ALIAS} SET {assign} FROM {STAGE} AS u WHERE {join} RETURNING {ret}), \
         \"_i\" AS (INSERT INTO {table} ({cols}) {staged_select} WHERE NOT EXISTS (SELECT 1 FROM \"_u\" WHERE {anti}) RETURNING 1) \
         SELECT (SELECT count(*) FROM \"_i\"), (SELECT count(*) FROM \"_u\")",
        table = p.table,
        assign = assign.join(", "),
        join = same_key(ALIAS),
        ret = p.list(&p.key, |c| format!("{ALIAS}.{c}")),
        cols = p.list(&p.new, |c| c),
        anti = same_key("\"_u\""),
    ))
}

fn sets_empty(p: &Plan) -> bool {
    p.upd.is_empty() && p.updated_at.is_none() && p.version.is_none()
}
