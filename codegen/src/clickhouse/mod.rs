//! ClickHouse back end: for every entity that lives in or is synced to a
//! ClickHouse store, the table DDL (`clickhouse/<store>/<table>.sql`) and a
//! typed row struct (`rust/clickhouse.rs`, one module per store).

pub mod ddl;
pub mod error;
mod rows;
pub mod types;

use std::collections::BTreeSet;

use quote::{format_ident, quote};

use crate::diagnostics::Problem;
use crate::files::{Artifact, Files};
use crate::model::{Entity, EntityId, Model, StoreId, StoreKindTag};
use error::ClickhouseError;

pub use ddl::{statements, DdlOptions};
pub use types::{Target, MODERN};

/// Entities stored in a ClickHouse store, with the store: its own record
/// entities and those synced to it, stores in name order, entities in
/// declaration order.
pub fn tables(model: &Model) -> Vec<(StoreId, &Entity)> {
    let is_ch = |s: StoreId| model[s].kind.tag() == StoreKindTag::ClickHouse;
    let homes = (model.entities_by_id())
        .filter(|(_, e)| !e.is_series() && model.store_at(e.store).is_some())
        .map(|(id, e)| (e.store, id));
    let synced = model.sync.iter().map(|t| (t.store, t.entity));
    let pairs: BTreeSet<(StoreId, EntityId)> =
        homes.chain(synced).filter(|&(s, _)| is_ch(s)).collect();
    (pairs.into_iter()).map(|(s, e)| (s, &model[e])).collect()
}

/// Problems a model has for its ClickHouse stores: types that cannot be
/// carried without loss on the targeted release.
pub fn check(model: &Model) -> Vec<Problem> {
    let mut out = Vec::new();
    for (id, e) in tables(model) {
        let store = &model[id].name;
        let t = Target::of(&model[id]);
        for f in types::columns(e) {
            if let Some(loss) = types::unsupported(f, t) {
                out.push(Problem::from(ClickhouseError::Lossy {
                    at: f.span,
                    entity: e.name.schema.clone(),
                    field: f.name.schema.clone(),
                    store: store.to_string(),
                    loss,
                }));
            }
        }
        if let Some(p) = e.partition_by.map(|i| &e.fields[i]) {
            if p.nullable {
                out.push(Problem::from(ClickhouseError::NullablePartition {
                    at: p.span,
                    field: p.name.schema.clone(),
                }));
            }
        }
    }
    out
}

/// Writes the DDL of every table and the row structs.
pub fn generate(model: &Model, files: &mut Files) {
    let tables = tables(model);
    if tables.is_empty() {
        return;
    }
    let opts = DdlOptions::default();
    for &(store, e) in &tables {
        let store = &model[store];
        let table = Artifact::ClickHouseDdl {
            store: store.name.clone(),
            table: e.name.sql.clone(),
        };
        files.add(table, ddl::file(store, e, &opts));
    }
    files.add(Artifact::RustModule("clickhouse".into()), rust(model));
}

/// The generated Rust: `pub mod <store> { <Entity>Row ... }`.
pub fn rust(model: &Model) -> String {
    let tables = tables(model);
    let mut stores: Vec<StoreId> = tables.iter().map(|&(s, _)| s).collect();
    stores.dedup();
    let mods = stores.iter().map(|&id| {
        let s = &model[id];
        let store = &s.name;
        let m = format_ident!("{}", crate::names::rust_ident(store));
        let rows = (tables.iter())
            .filter(|&&(t, _)| t == id)
            .map(|(_, e)| rows::row(model, s, e));
        let doc = format!(" Rows of the ClickHouse store `{store}`.");
        let url = (s.url.as_ref())
            .map_or_else(|| "http://127.0.0.1:8123".to_string(), |t| t.raw.clone());
        let db = ddl::database_of(s);
        let client_doc = format!(
            " A client for store `{store}` (database `{db}`), its url `{url}` expanded from the environment."
        );
        quote! {
            #[doc = #doc]
            pub mod #m {
                #[doc = #client_doc]
                pub fn client() -> ::std::result::Result<
                    ::strata_sdk::clickhouse::client::Client,
                    ::strata_sdk::clickhouse::TemplateError,
                > {
                    ::std::result::Result::Ok(::strata_sdk::clickhouse::client(
                        &::strata_sdk::clickhouse::expand(#url)?,
                        #db,
                    ))
                }
                #(#rows)*
            }
        }
    });
    crate::rust::format_file(quote!(#(#mods)*))
}
