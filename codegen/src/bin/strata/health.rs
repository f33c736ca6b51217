//! `strata health <schema>`: the schema's stores as `strata_sdk::health`
//! checks (URLs expanded from the environment), printed as a table or
//! JSON; exit 1 when a required store is down.

use crate::out::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use strata_codegen::model::StoreKind;
use strata_sdk::health::{Check, Report, Status};

use super::{load_and_compile, EXIT_USAGE};

/// Exit code when a required store is down.
pub const EXIT_DOWN: u8 = 1;

/// The arguments of `strata health`.
#[derive(clap::Args)]
pub struct HealthArgs {
    /// A schema file or a folder of `*.yaml` files.
    pub schema: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The longest one server's check may take, in milliseconds (at
    /// least 1: a server cannot answer in no time).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// The database of the postgres stores, instead of their `url:`.
    /// DATABASE_URL is not read: `health` checks what the application's
    /// `connect_*()` reach, and those read the store's `url:` only (write
    /// `url: "${DATABASE_URL}"` to follow the variable).
    #[arg(long)]
    pub database_url: Option<String>,
    /// A store whose being down does not fail the check (repeatable).
    #[arg(long = "optional", value_name = "STORE")]
    pub optional: Vec<String>,
}

/// The checks of every store of `model`; `postgres_url`, when given
/// (`strata sync run --database-url`), replaces the postgres stores' URL.
pub(super) fn checks(
    model: &strata_codegen::Model,
    optional: &[String],
    postgres_url: Option<&str>,
) -> Vec<Check> {
    model
        .stores
        .iter()
        .map(|s| {
            let url = s.url.as_ref().map(|u| u.raw.clone()).unwrap_or_default();
            // Exhaustive: a new store kind must say how it is checked.
            let check = match &s.kind {
                StoreKind::Postgres { replicas, .. } => {
                    let url = postgres_url.map_or(url, str::to_string);
                    let config = strata_sdk::postgres::PoolConfig {
                        store: s.name.clone(),
                        replicas: replicas.iter().map(|r| r.raw.clone()).collect(),
                        ..strata_sdk::postgres::PoolConfig::new(url)
                    };
                    Check::postgres(&s.name, &config)
                }
                StoreKind::Redis { .. } => Check::redis(&s.name, &url),
                StoreKind::ClickHouse { .. } => Check::clickhouse(&s.name, &url),
                StoreKind::Elasticsearch { .. } => Check::elasticsearch(&s.name, &url),
                StoreKind::InfluxDb { .. } => Check::influxdb(&s.name, &url),
            };
            check.with_required(!optional.contains(&s.name))
        })
        .collect()
}

pub fn run(args: HealthArgs) -> ExitCode {
    let model = match load_and_compile(&args.schema, false) {
        Ok(m) => m,
        Err(code) => return code,
    };
    for o in &args.optional {
        if model.store(o).is_none() {
            errln!("error: `--optional {o}`: the schema has no store `{o}`");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let over = (args.database_url.clone()).map(|u| (u, super::target::UrlSource::Flag));
    // The health check would take `mysql://h/db` for a PostgreSQL server
    // at `h` (sqlx reads any scheme): refuse it as `migrate` and `sync` do.
    let urls = match &over {
        Some((u, _)) => super::target::check_url(u),
        None => Ok(()),
    }
    .and_then(|()| super::target::check_store_urls(&model, over.is_some()));
    if let Err(e) = urls {
        errln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    say_sources(&model, over.as_ref());
    let checks = checks(
        &model,
        &args.optional,
        over.as_ref().map(|(u, _)| u.as_str()),
    );
    let timeout = Duration::from_millis(args.timeout_ms);
    let report = rt.block_on(strata_sdk::health::run(&checks, timeout));
    match args.json {
        true => outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        false => out!("{}", table(&report)),
    }
    match report.ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(EXIT_DOWN),
    }
}

/// Says on stderr, per postgres store, which database it checks and why.
pub(super) fn say_sources(
    model: &strata_codegen::Model,
    over: Option<&(String, super::target::UrlSource)>,
) {
    use super::target::{say_database, UrlSource};
    for s in model.stores.iter() {
        if !matches!(s.kind, StoreKind::Postgres { .. }) {
            continue;
        }
        match (over, &s.url) {
            (Some((url, from)), _) => say_database("health", url, from),
            (None, Some(t)) => match t.expand(|v| std::env::var(v).ok()) {
                Ok(url) => say_database("health", &url, &UrlSource::Store(s.name.clone())),
                Err(var) => errln!("strata health: store `{}`: its `url:` needs {var}", s.name),
            },
            (None, None) => {}
        }
    }
}

/// One line per server, the store's name and status on its first.
fn table(r: &Report) -> String {
    let mut rows = vec![[
        "STORE".to_string(),
        "KIND".into(),
        "STATUS".into(),
        "SERVER".into(),
        "ROLE".into(),
        "LATENCY".into(),
        "REPLAY LAG".into(),
        "PROBLEM".into(),
    ]];
    for s in &r.stores {
        for (i, v) in s.servers.iter().enumerate() {
            let status = match s.status {
                Status::Up => "up",
                Status::Degraded => "DEGRADED",
                Status::Down if s.required => "DOWN",
                Status::Down => "down (optional)",
            };
            let lag = match (v.replay_lag_seconds, v.replay_lag_bytes) {
                (Some(t), Some(b)) => format!("{t:.3} s, {b} B"),
                (Some(t), None) => format!("{t:.3} s"),
                _ => String::new(),
            };
            let first = i == 0;
            rows.push([
                if first {
                    s.store.clone()
                } else {
                    String::new()
                },
                if first {
                    s.kind.to_string()
                } else {
                    String::new()
                },
                if first {
                    status.to_string()
                } else {
                    String::new()
                },
                v.name.clone(),
                v.role.to_string(),
                format!("{:.1} ms", v.latency_ms),
                lag,
                v.error.clone().unwrap_or_default(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(match r.ok {
        true => "every required store is up\n",
        false => "a required store is DOWN\n",
    });
    out
}
