//! Where `strata migrate apply|status` works: the database (from
//! `--database-url`, `DATABASE_URL`, or the store's `url:` template) and the
//! table that records the store's migrations (in the store's `schema:`).

use crate::out::errln;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use strata_codegen::model::{StoreId, StoreKind};
use strata_codegen::postgres::{catalog, migration, owner};
use strata_codegen::Model;

use super::EXIT_USAGE;

/// Where a PostgreSQL URL came from. Every command that connects uses the
/// same order: `--database-url`, then `DATABASE_URL`, then the store's `url:`.
#[derive(Debug, Clone, PartialEq)]
pub enum UrlSource {
    Flag,
    Env,
    Store(String),
}

impl std::fmt::Display for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSource::Flag => f.write_str("from --database-url"),
            UrlSource::Env => f.write_str("from DATABASE_URL"),
            UrlSource::Store(s) => write!(f, "from the `url:` of store `{s}`"),
        }
    }
}

/// `--database-url` when given, else `DATABASE_URL` when set: the URL that
/// replaces the postgres stores' `url:`.
pub fn override_url(flag: Option<String>) -> Option<(String, UrlSource)> {
    flag.map(|u| (u, UrlSource::Flag)).or_else(|| {
        std::env::var("DATABASE_URL")
            .ok()
            .map(|u| (u, UrlSource::Env))
    })
}

/// `host:port/database (user u)` of a PostgreSQL URL, never its password.
pub fn describe(url: &str) -> String {
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map(|o| {
            format!(
                "{}:{}/{} (user {})",
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap_or("(default)"),
                o.get_username()
            )
        })
        .unwrap_or_else(|_| "a database whose URL does not parse".into())
}

/// Says on stderr which database `command` uses and where its URL came from.
pub fn say_database(command: &str, url: &str, from: &UrlSource) {
    errln!("strata {command}: database {} {from}", describe(url));
}

/// The database and record location of one run.
pub struct Target {
    pub url: String,
    pub from: UrlSource,
    /// The PostgreSQL schema of the record table; `None`: the search path.
    pub record_schema: Option<String>,
}

/// Prints `error: <message>` and gives the usage exit code.
pub fn usage(message: impl std::fmt::Display) -> ExitCode {
    errln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// The postgres store to work on: `store` (`--store`) if given, else the
/// only one. The command line names a store; from here on it is an id.
pub fn choose_store(model: &Model, store: Option<String>) -> Result<StoreId, ExitCode> {
    let stores = catalog::postgres_stores(model);
    let names: Vec<&str> = stores.iter().map(|&id| model[id].name.as_str()).collect();
    match (store, stores.as_slice()) {
        (Some(s), _) => match model.store_id(&s).filter(|id| stores.contains(id)) {
            Some(id) => Ok(id),
            None => Err(usage(format!(
                "`{s}` is not a postgres store of the schema (postgres stores: {})",
                names.join(", ")
            ))),
        },
        (None, [one]) => Ok(*one),
        (None, []) => Err(usage("the schema has no postgres store")),
        (None, _) => Err(usage(format!(
            "the schema has several postgres stores ({}); choose one with --store",
            names.join(", ")
        ))),
    }
}

/// Resolves the database URL and the record schema. With a schema, its
/// store gives both (`url:` when no URL is given, `schema:`); without one,
/// the schema recorded in the folder's latest `.catalog.json` (written by
/// `strata migrate diff`) places the record.
pub fn resolve(
    model: Option<&Model>,
    store: Option<String>,
    dir: &Path,
    url: Option<String>,
) -> Result<Target, ExitCode> {
    let (record_schema, template) = match model {
        Some(model) => {
            let id = choose_store(model, store)?;
            owner::check_folder(dir, model, id).map_err(usage)?;
            let s = &model[id];
            let schema = s.pg_schema().map(str::to_string);
            (schema, s.url.clone().map(|t| (s.name.clone(), t)))
        }
        None if store.is_some() => {
            return Err(usage(
                "--store needs the schema (strata migrate apply <SCHEMA> --store …)",
            ))
        }
        None => (folder_schema(dir)?, None),
    };
    let (url, from) = match override_url(url) {
        Some(found) => found,
        None => match template {
            Some((store, t)) => (
                t.expand(|v| std::env::var(v).ok()).map_err(|var| {
                    let set = match var.as_str() {
                        "DATABASE_URL" => var.clone(),
                        _ => format!("{var} (or DATABASE_URL)"),
                    };
                    usage(format!(
                        "no database: the url of store `{store}` (`{}`) needs the environment variable {var}: set {set}, or pass --database-url",
                        t.raw
                    ))
                })?,
                UrlSource::Store(store),
            ),
            None => {
                return Err(usage(
                    "no database: pass --database-url, set DATABASE_URL, or give the schema whose postgres store has a `url:`",
                ))
            }
        },
    };
    check_url(&url)
        .map_err(|e| match &from {
            UrlSource::Store(s) => format!("store `{s}`, its `url:`: {e}"),
            _ => e,
        })
        .map_err(usage)?;
    Ok(Target {
        url,
        from,
        record_schema,
    })
}

/// The `schema` of the folder's latest recorded catalog, if any.
fn folder_schema(dir: &Path) -> Result<Option<String>, ExitCode> {
    match migration::latest_catalog(dir) {
        Ok((cat, _)) => Ok(cat.schema),
        Err(e) => Err(usage(e)),
    }
}

/// Refuses URLs that are not PostgreSQL's, or that do not parse, without
/// echoing the URL (it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql") => {}
        Some(other) => {
            return Err(format!(
                "the database URL is a `{other}://` URL: strata works with PostgreSQL only (postgres://user@host:port/database)"
            ))
        }
        None => {
            return Err(
                "the database URL is not a URL: expected postgres://user@host:port/database"
                    .to_string(),
            )
        }
    }
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map(|_| ())
        .map_err(|e| format!("the database URL is not valid: {e}"))
}

/// Refuses, as [`check_url`] does, a postgres store whose `url:` (unless
/// `overridden` by --database-url or DATABASE_URL) or one of whose
/// `replicas:` expands to a URL that is not PostgreSQL's: sqlx would read
/// `mysql://h/db` as a PostgreSQL server at `h` and connect to it. A
/// template whose variable is unset is left to the caller, which says so.
pub fn check_store_urls(model: &Model, overridden: bool) -> Result<(), String> {
    for s in &model.stores {
        let StoreKind::Postgres { replicas, .. } = &s.kind else {
            continue;
        };
        let primary = (s.url.iter())
            .filter(|_| !overridden)
            .map(|t| ("`url:`".to_string(), t));
        let replicas = (replicas.iter().enumerate())
            .map(|(i, t)| (format!("replica {} (`replicas:`)", i + 1), t));
        for (what, t) in primary.chain(replicas) {
            if let Ok(url) = t.expand(|v| std::env::var(v).ok()) {
                check_url(&url).map_err(|e| format!("store `{}`, its {what}: {e}", s.name))?;
            }
        }
    }
    Ok(())
}

/// Connects for a run. A failure names the server (host, port, database,
/// user; never the password) and exits 3.
pub async fn connect(url: &str) -> Result<sqlx::PgConnection, ExitCode> {
    strata_sdk::migrate::connect(url).await.map_err(|e| {
        let place = sqlx::postgres::PgConnectOptions::from_str(url)
            .map(|o| {
                format!(
                    "{}:{} (database {}, user {})",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("(default)"),
                    o.get_username()
                )
            })
            .unwrap_or_else(|_| "the database".into());
        errln!("error: cannot connect to {place}: {e}");
        ExitCode::from(super::migrate::EXIT_REFUSED)
    })
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_other_than_postgres_are_refused_without_echoing_them() {
        assert!(check_url("postgres://u:pw@127.0.0.1:5432/db").is_ok());
        assert!(check_url("postgresql://127.0.0.1/db").is_ok());
        for bad in [
            "mysql://u:secretpw@h/db",
            "not a url secretpw",
            "postgres://u:secretpw@h:notaport/db",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("secretpw"), "{e}");
        }
    }
}
