//! `strata sync run|status|verify|drop|recopy|consume`: thin calls into `strata_sdk::sync`
//! over the pipelines `strata_codegen::sync_pipeline` builds from a schema.

use crate::out::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use strata_codegen::model::StoreKind;
use strata_codegen::sync_pipeline::{pipelines, PipelineOptions};
use strata_sdk::serve::{PipelineState, Pipelines};
use strata_sdk::sync::{self, Pipeline, RunOptions};

use super::{load_and_compile, target::usage};

/// Exit code of `verify` when a copy differs, and of `run` when it fails.
const EXIT_DIFFERENT: u8 = 1;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Copy the synced entities (snapshot, then the change stream) until stopped
    /// (SIGINT/SIGTERM stop after the in-flight batch).
    Run(RunArgs),
    /// Per pipeline: snapshot progress, acknowledged position, lag.
    Status(Args),
    /// Compare each target with the source by key and content; exit 0 when
    /// equal, 1 with the differing keys.
    Verify(Args),
    /// Remove the pipelines' replication slots and publications.
    Drop(Args),
    /// Copy entities again into a new table version, after a field's type
    /// changed or a field was dropped or renamed (the run refuses to write
    /// into the old shape): moves their ClickHouse tables aside (renamed
    /// `<table>__replaced_<unix time>`); the next `strata sync run` creates
    /// them from the schema and copies their rows again while the other
    /// tables stream. Stop the run first.
    Recopy(RecopyArgs),
    /// Copy to ClickHouse/Elasticsearch from the entities' change events
    /// (Redis Streams) instead of the replication slot: run one or more of
    /// these processes per group; they split the partitions.
    Consume(ConsumeArgs),
}

/// Arguments of `strata sync recopy`.
#[derive(clap::Args)]
pub struct RecopyArgs {
    #[command(flatten)]
    pub common: Args,
    /// An entity to copy again (repeatable).
    #[arg(long = "entity", required = true, value_name = "ENTITY")]
    pub entities: Vec<String>,
}

/// Arguments of `strata sync consume`.
#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: Args,
    /// The consumer group: one per copy (consumers of a group split the
    /// partitions; each group gets every change).
    #[arg(long)]
    pub group: String,
    /// This consumer's name in the group (default: host name and process id).
    #[arg(long)]
    pub consumer: Option<String>,
    /// How long a dead consumer's partitions stay leased before another
    /// consumer takes them over, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub lease_ms: u64,
    /// Set aside a change whose value a target cannot hold (or whose event
    /// the copy cannot read) in the table `strata_sync.dead_letters` of
    /// the source database and go on, instead of stopping.
    #[arg(long)]
    pub dead_letter: bool,
}

/// Arguments shared by the sync commands.
#[derive(clap::Args)]
pub struct Args {
    /// A schema file or a folder of `*.yaml` files.
    pub schema: PathBuf,
    /// Only the rules to this target store (repeatable).
    #[arg(long = "to")]
    pub to: Vec<String>,
    /// The source database (default: DATABASE_URL, then the store's `url:`).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Put the ClickHouse tables in this database instead of the store's.
    #[arg(long)]
    pub clickhouse_database: Option<String>,
}

/// Arguments of `strata sync run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Args,
    /// Rows per snapshot chunk.
    #[arg(long, default_value_t = 50_000)]
    pub chunk_rows: i64,
    /// Connections copying the snapshot in parallel.
    #[arg(long, default_value_t = 2)]
    pub snapshot_workers: usize,
    /// Serve `/metrics` (Prometheus text) and `/health` (the schema's
    /// stores, as `strata health` checks them) over HTTP on this address,
    /// `host:port` or `ip:port`, e.g. `localhost:9464` or `127.0.0.1:9464`
    /// (port 0 picks a free one; the address is printed on stderr).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Set aside a change whose value a target cannot hold (NaN in a
    /// decimal, an `infinity` timestamp, a date out of the target's range)
    /// in the table `strata_sync.dead_letters` of the source database and
    /// go on, instead of stopping the pipeline (see docs/sync.md, "Dead
    /// letters").
    #[arg(long)]
    pub dead_letter: bool,
}

/// The addresses `--metrics-addr` names: `ip:port`, or `host:port`
/// resolved (`localhost:9464` may be two, `::1` and `127.0.0.1`; the
/// server binds the first it can).
async fn listen_addrs(addr: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    let bad = |e: &dyn std::fmt::Display| {
        format!(
            "--metrics-addr {addr}: {e} (expected host:port or ip:port, e.g. \
             localhost:9464 or 127.0.0.1:9464)"
        )
    };
    let found: Vec<_> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| bad(&e))?
        .collect();
    if found.is_empty() {
        return Err(bad(&"the name has no address"));
    }
    Ok(found)
}

/// Starts the `/metrics` and `/health` endpoints when asked.
async fn serve(
    a: &RunArgs,
    states: &Pipelines,
) -> Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>, ExitCode> {
    let Some(addr) = &a.metrics_addr else {
        return Ok(None);
    };
    let at = listen_addrs(addr).await.map_err(usage)?;
    let model = load_and_compile(&a.common.schema, false)?;
    let prometheus = strata_sdk::metrics::install_prometheus().map_err(|e| usage(e.to_string()))?;
    // The same database the pipelines use: --database-url, then DATABASE_URL.
    let over = super::target::override_url(a.common.database_url.clone());
    let endpoints = strata_sdk::serve::Endpoints::new(prometheus)
        .with_checks(super::health::checks(
            &model,
            &[],
            over.as_ref().map(|(u, _)| u.as_str()),
        ))
        .with_pipelines(states.clone());
    // The first address that binds, as `TcpListener::bind("host:port")`.
    let mut failed = Vec::new();
    for at in at {
        match strata_sdk::serve::spawn(at, endpoints.clone()).await {
            Ok((bound, task)) => {
                errln!("strata sync: serving /metrics and /health on http://{bound}");
                return Ok(Some(task));
            }
            Err(e) => failed.push(format!("{at}: {e}")),
        }
    }
    Err(usage(format!(
        "--metrics-addr {addr}: {}",
        failed.join("; ")
    )))
}

/// Runs every pipeline until each has stopped or failed. A failure is
/// printed at once and recorded for `/health`; the other pipelines keep
/// running (see docs/sync.md, "When a pipeline fails"). Exit 1 when one
/// failed, 0 when all stopped on a signal.
async fn run_all(ps: &[Pipeline], a: &RunArgs, states: &Pipelines) -> ExitCode {
    use futures_util::StreamExt;
    let opts = RunOptions::default()
        .with_chunk_rows(a.chunk_rows)
        .with_snapshot_workers(a.snapshot_workers)
        .with_dead_letters(a.dead_letter);
    let stop = sync::stop_on_signals();
    let mut runs: futures_util::stream::FuturesUnordered<_> = ps
        .iter()
        .map(|p| {
            let (opts, stop) = (opts.clone(), stop.clone());
            async move {
                (
                    p.name.as_str(),
                    run_reloading(p, &a.common, opts, stop).await,
                )
            }
        })
        .collect();
    let mut code = ExitCode::SUCCESS;
    while let Some((name, r)) = runs.next().await {
        match r {
            Ok(()) => states.set(name, PipelineState::Stopped),
            Err(e) => {
                let left = states
                    .snapshot()
                    .values()
                    .filter(|s| **s == PipelineState::Running)
                    .count()
                    .saturating_sub(1);
                // The state first: whoever reads the line and then asks
                // `/health` sees the failure (a test did, and raced).
                states.set(
                    name,
                    PipelineState::Failed {
                        error: e.to_string(),
                    },
                );
                errln!(
                    "error: pipeline `{name}` failed: {e}; it stays stopped until restarted \
                     ({left} other pipeline(s) still running)"
                );
                code = ExitCode::from(EXIT_DIFFERENT);
            }
        }
    }
    code
}

/// Runs pipeline `p`; when a migration added a field to a table it copies
/// and listed it in the publication ([`sync::SyncError::SchemaReload`]:
/// the stream stopped before the first change carrying it), re-reads the
/// schema files, rebuilds the pipeline and goes on in this process, from
/// the acknowledged position (the run adds the target column in place).
/// A schema that still lacks the field stops the pipeline with an error
/// naming the table and the column.
async fn run_reloading(
    p: &Pipeline,
    args: &Args,
    opts: RunOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), sync::SyncError> {
    let mut p = p.clone();
    loop {
        let (table, column) = match sync::run(&p, opts.clone(), stop.clone()).await {
            Err(sync::SyncError::SchemaReload { table, column }) => (table, column),
            r => return r,
        };
        errln!(
            "strata sync: pipeline `{}`: `{table}` gained column `{column}` at the source; re-reading the schema from {}",
            p.name,
            args.schema.display()
        );
        let reloaded = build_quiet(args).map_err(|why| {
            sync::SyncError::Config(format!(
                "`{table}` gained column `{column}` at the source, and the schema could not be read again: {why}"
            ))
        })?;
        let Some(next) = reloaded.into_iter().find(|n| n.name == p.name) else {
            return Err(sync::SyncError::Config(format!(
                "`{table}` gained column `{column}` at the source, and the schema read again has no pipeline `{}` any more; restart `strata sync run`",
                p.name
            )));
        };
        let knows = (next.tables.iter())
            .filter(|t| t.source_table == table)
            .any(|t| t.columns.iter().any(|c| c.name == column));
        if !knows {
            return Err(sync::SyncError::Config(format!(
                "`{table}` gained column `{column}` at the source (a migration added it to the sync's publication), but the schema in {} has no such field of the entity: add the field to the schema (or deploy the schema the migration came from); the sync stopped before the first change carrying it and resumes there when restarted",
                args.schema.display()
            )));
        }
        p = next;
    }
}

/// The pipelines of a schema read again while running: what [`build`]
/// does, the reasons as text (diagnostics are printed on stderr).
fn build_quiet(args: &Args) -> Result<Vec<Pipeline>, String> {
    build_with_model(args)
        .map(|(ps, _, _)| ps)
        .map_err(|_| "the schema did not compile (see above)".to_string())
}

fn build(args: &Args) -> Result<Vec<Pipeline>, ExitCode> {
    build_with_model(args).map(|(ps, _, _)| ps)
}

/// [`build`] for the commands that reach only the source (`status`,
/// `drop`): a target URL that does not parse is not theirs to refuse.
fn build_source_only(args: &Args) -> Result<Vec<Pipeline>, ExitCode> {
    build_checked(args, false).map(|(ps, _, _)| ps)
}

type Urls = Box<dyn Fn(&str) -> Result<String, String>>;

fn build_with_model(args: &Args) -> Result<(Vec<Pipeline>, strata_codegen::Model, Urls), ExitCode> {
    build_checked(args, true)
}

/// The pipelines, the model and the store URLs; with `check_targets`, a
/// target URL that does not parse is refused naming its `url:` template.
fn build_checked(
    args: &Args,
    check_targets: bool,
) -> Result<(Vec<Pipeline>, strata_codegen::Model, Urls), ExitCode> {
    let model = load_and_compile(&args.schema, false)?;
    for t in &args.to {
        if model.store(t).is_none() {
            return Err(usage(format!("--to {t}: the schema has no store `{t}`")));
        }
    }
    let over = super::target::override_url(args.database_url.clone());
    if let Some((u, _)) = &over {
        super::target::check_url(u).map_err(usage)?;
    }
    // The stores' own URLs too: the pipelines' source, and /health's
    // replicas with --metrics-addr.
    super::target::check_store_urls(&model, over.is_some()).map_err(usage)?;
    let db_url = over.as_ref().map(|(u, _)| u.clone());
    let m = model.clone();
    let urls = move |store: &str| -> Result<String, String> {
        let model = &m;
        let s = model
            .store(store)
            .ok_or_else(|| format!("no store `{store}`"))?;
        if matches!(s.kind, StoreKind::Postgres { .. }) {
            if let Some(u) = &db_url {
                return Ok(u.clone());
            }
        }
        let t = s
            .url
            .as_ref()
            .ok_or_else(|| format!("store `{store}` has no `url:`"))?;
        t.expand(|v| std::env::var(v).ok()).map_err(|var| {
            format!(
                "the url of store `{store}` (`{}`) needs the environment variable {var}",
                t.raw
            )
        })
    };
    let mut opts = PipelineOptions::default().with_targets(args.to.clone());
    if let Some(db) = &args.clickhouse_database {
        opts = opts.with_clickhouse_database(db.clone());
    }
    let ps = pipelines(&model, &urls, &opts).map_err(usage)?;
    if ps.is_empty() {
        return Err(usage("the schema has no sync rule (to the chosen targets)"));
    }
    for t in ps.iter().flat_map(|p| &p.targets).filter(|_| check_targets) {
        if let Err(why) = t.check_url() {
            return Err(usage(bad_target_url(&model, t.store(), &why)));
        }
    }
    for p in &ps {
        let from = match &over {
            Some((_, from)) => from.clone(),
            None => {
                let store = model.stores.iter().find(|s| {
                    matches!(s.kind, StoreKind::Postgres { .. })
                        && urls(&s.name).is_ok_and(|u| u == p.source_url)
                });
                super::target::UrlSource::Store(store.map_or("?".into(), |s| s.name.clone()))
            }
        };
        let what = format!("sync: pipeline `{}`: source", p.name);
        super::target::say_database(&what, &p.source_url, &from);
    }
    Ok((ps, model, Box::new(urls)))
}

/// A target store's URL that does not parse, said with where it came from:
/// the store's `url:` template and, for each variable in it, whether the
/// environment set it or its default was used (the value itself is not
/// repeated: it may hold a password).
fn bad_target_url(model: &strata_codegen::Model, store: &str, why: &str) -> String {
    use strata_codegen::model::TemplatePart;
    let Some(t) = model.store(store).and_then(|s| s.url.as_ref()) else {
        return format!("the url of store `{store}` is not a valid URL: {why}");
    };
    let from: Vec<String> = (t.parts.iter())
        .filter_map(|p| match p {
            TemplatePart::Var { name, default } => Some(
                match (std::env::var_os(name).is_some(), default.is_some()) {
                    (true, _) => format!("{name} from the environment"),
                    (false, true) => format!("{name} unset: its default"),
                    (false, false) => format!("{name} unset"),
                },
            ),
            TemplatePart::Text(_) => None,
        })
        .collect();
    let from = match from.is_empty() {
        true => String::new(),
        false => format!(", with {}", from.join(", ")),
    };
    format!(
        "the url of store `{store}` (`url: {}` in the schema{from}) is not a valid URL: {why}",
        t.raw
    )
}

/// `strata sync consume`: every ClickHouse/Elasticsearch pipeline of the
/// chosen targets, fed from the event streams.
async fn consume(a: &ConsumeArgs) -> ExitCode {
    let (ps, model, urls) = match build_with_model(&a.common) {
        Ok(b) => b,
        Err(c) => return c,
    };
    let consumer = a.consumer.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let stop = sync::stop_on_signals();
    let is_copy = |p: &&Pipeline| {
        !p.targets
            .iter()
            .any(|t| matches!(t, sync::TargetSpec::Redis { .. }))
    };
    let mut runs = Vec::new();
    for p in ps.iter().filter(is_copy) {
        let src = match strata_codegen::sync_pipeline::stream_source(&model, &urls, p) {
            Ok(s) => s,
            Err(e) => return usage(format!("pipeline `{}`: {e}", p.name)),
        };
        let opts = sync::ConsumeOptions::new(&a.group, &consumer)
            .with_lease(std::time::Duration::from_millis(a.lease_ms))
            .with_dead_letters(a.dead_letter);
        let stop = stop.clone();
        runs.push(async move { (p.name.clone(), sync::consume(p, &src, opts, stop).await) });
    }
    if runs.is_empty() {
        return usage("no ClickHouse or Elasticsearch target among the chosen stores");
    }
    eprintln!(
        "strata sync consume: group `{}`, consumer `{consumer}`",
        a.group
    );
    let mut code = ExitCode::SUCCESS;
    for (name, r) in futures_util::future::join_all(runs).await {
        if let Err(e) = r {
            eprintln!("error: pipeline `{name}`: {e}");
            code = ExitCode::from(EXIT_DIFFERENT);
        }
    }
    code
}

pub fn run(cmd: SyncCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(async move {
        match cmd {
            SyncCommand::Run(a) => {
                let ps = match build(&a.common) {
                    Ok(p) => p,
                    Err(c) => return c,
                };
                let states = Pipelines::default();
                for p in &ps {
                    states.set(&p.name, PipelineState::Running);
                }
                let server = match serve(&a, &states).await {
                    Ok(s) => s,
                    Err(c) => return c,
                };
                let code = run_all(&ps, &a, &states).await;
                if let Some(s) = server {
                    s.abort();
                }
                code
            }
            SyncCommand::Consume(a) => consume(&a).await,
            SyncCommand::Status(a) => {
                let ps = match build_source_only(&a) {
                    Ok(p) => p,
                    Err(c) => return c,
                };
                for p in &ps {
                    match sync::status(p).await {
                        Ok(s) => out!("{s}"),
                        Err(e) => return usage(format!("pipeline `{}`: {e}", p.name)),
                    }
                }
                ExitCode::SUCCESS
            }
            SyncCommand::Verify(a) => {
                let ps = match build(&a) {
                    Ok(p) => p,
                    Err(c) => return c,
                };
                let mut equal = true;
                for p in &ps {
                    let r = match sync::verify(p, None).await {
                        Ok(r) => r,
                        Err(e) => return usage(format!("pipeline `{}`: {e}", p.name)),
                    };
                    for t in &r.tables {
                        outln!(
                            "{} → {}: {}: source {} rows, target {} rows",
                            p.name,
                            t.target,
                            t.table,
                            t.source_rows,
                            t.target_rows
                        );
                    }
                    for d in r.differences.iter().take(50) {
                        outln!("  {:?} {}.{} key {}", d.kind, d.target, d.table, d.key);
                    }
                    if r.differences.len() > 50 {
                        outln!("  … and {} more", r.differences.len() - 50);
                    }
                    equal &= r.equal();
                }
                if equal {
                    outln!("equal");
                    ExitCode::SUCCESS
                } else {
                    outln!("different");
                    ExitCode::from(EXIT_DIFFERENT)
                }
            }
            SyncCommand::Recopy(a) => {
                let ps = match build(&a.common) {
                    Ok(p) => p,
                    Err(c) => return c,
                };
                // Every pipeline of the entities: the ClickHouse copies are
                // moved aside, and every publication lets the tables go.
                let mut synced: Vec<&str> = (ps.iter())
                    .flat_map(|p| p.tables.iter().map(|t| t.entity.as_str()))
                    .collect();
                synced.sort_unstable();
                synced.dedup();
                if let Some(e) = a.entities.iter().find(|e| !synced.contains(&e.as_str())) {
                    return usage(format!(
                        "no sync rule copies entity `{e}` (they copy: {})",
                        synced.join(", ")
                    ));
                }
                let ps: Vec<&Pipeline> = (ps.iter())
                    .filter(|p| p.tables.iter().any(|t| a.entities.contains(&t.entity)))
                    .collect();
                for p in ps {
                    let mine: Vec<String> = (a.entities.iter())
                        .filter(|e| p.tables.iter().any(|t| &t.entity == *e))
                        .cloned()
                        .collect();
                    match sync::recopy_entities(p, &mine).await {
                        Ok(done) => {
                            for m in done {
                                errln!("pipeline `{}`: {m}", p.name);
                            }
                        }
                        Err(e) => return usage(format!("pipeline `{}`: {e}", p.name)),
                    }
                }
                errln!("now apply the migration that changes the fields, then start `strata sync run` again: it puts the tables back in the publications, creates the ClickHouse tables from the schema and copies their rows while the other tables stream");
                ExitCode::SUCCESS
            }
            SyncCommand::Drop(a) => {
                let ps = match build_source_only(&a) {
                    Ok(p) => p,
                    Err(c) => return c,
                };
                for p in &ps {
                    if let Err(e) = sync::drop_pipeline(p).await {
                        return usage(format!("pipeline `{}`: {e}", p.name));
                    }
                    errln!("dropped pipeline `{}` (slot and publication)", p.name);
                }
                ExitCode::SUCCESS
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::listen_addrs;

    #[tokio::test]
    async fn metrics_addr_takes_a_host_name_or_an_ip() {
        let at = listen_addrs("localhost:9464").await.expect("localhost");
        assert!(
            at.iter().all(|a| a.ip().is_loopback() && a.port() == 9464),
            "{at:?}"
        );
        let at = listen_addrs("127.0.0.1:0").await.expect("an ip");
        assert_eq!(at, ["127.0.0.1:0".parse().unwrap()]);
        assert!(listen_addrs("[::1]:9464").await.is_ok());
        for bad in [
            "localhost",
            "localhost:notaport",
            "localhost:99999",
            ":9464",
        ] {
            let e = listen_addrs(bad).await.unwrap_err();
            assert!(
                e.starts_with(&format!("--metrics-addr {bad}: ")) && e.contains("host:port"),
                "{e}"
            );
        }
    }
}
