//! The `strata` command line: a thin front end over the `strata_codegen` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "strata/health.rs"]
mod health;
#[path = "strata/migrate.rs"]
mod migrate;
#[path = "strata/out.rs"]
mod out;
#[path = "strata/sync.rs"]
mod sync;
#[path = "strata/target.rs"]
mod target;

/// Exit code when the schema has errors.
const EXIT_INVALID: u8 = 1;
/// Exit code for usage and I/O errors.
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Compile a Strata schema into a typed multi-store data layer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a JSON Schema of the schema language, for YAML editors.
    SchemaJson,
    /// Check a schema file or folder; exit 0 when valid, 1 with diagnostics when not.
    Check {
        /// A schema file or a folder of `*.yaml` files.
        schema: PathBuf,
        /// One `file:line:col: error[code]: message` line per problem.
        #[arg(long)]
        short: bool,
    },
    /// Write every artifact the compiler produces into a folder.
    Generate {
        /// A schema file or a folder of `*.yaml` files.
        schema: PathBuf,
        /// The folder to write into (created if missing). Files are rewritten
        /// only when they change; files an earlier run wrote and this one no
        /// longer produces are removed (listed in `<OUT>/.strata-generated`);
        /// other files are never touched.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check every store of a schema (PostgreSQL primary and replicas with
    /// replay lag, Redis, ClickHouse, Elasticsearch, InfluxDB), each with a
    /// timeout; exit 1 when a required store is down.
    Health(health::HealthArgs),
    /// PostgreSQL migrations: diff the schema, apply, show status.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
    },
    /// Change capture: copy the `sync:` rules' entities to their targets.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::SchemaJson => {
            out::out!("{}", strata_codegen::json_schema::schema_json());
            ExitCode::SUCCESS
        }
        Command::Check { schema, short } => match load_and_compile(&schema, short) {
            Ok(model) => {
                let count = |n: usize, one: &str, many: &str| {
                    format!("{n} {}", if n == 1 { one } else { many })
                };
                out::errln!(
                    "ok: {}, {}, {}",
                    count(model.entities.len(), "entity", "entities"),
                    count(model.enums.len(), "enum", "enums"),
                    count(model.stores.len(), "store", "stores")
                );
                for line in strata_codegen::ranges::kept(&model) {
                    out::errln!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Migrate { command } => migrate::run(command),
        Command::Health(args) => health::run(args),
        Command::Sync { command } => sync::run(command),
        Command::Generate { schema, out } => {
            let model = match load_and_compile(&schema, false) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
            match strata_codegen::persist_owned(&files, &out) {
                Ok(done) => {
                    for f in &done.removed {
                        out::errln!("removed {} (no longer generated)", out.join(f).display());
                    }
                    for f in &done.kept {
                        out::errln!(
                            "warning: kept {}: no longer generated, but edited since it was written",
                            out.join(f).display()
                        );
                    }
                    out::errln!(
                        "wrote {} of {} files to {}",
                        done.written,
                        files.files.len(),
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    out::errln!("error: cannot write to {}: {e}", out.display());
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}

pub(crate) fn load_and_compile(
    path: &std::path::Path,
    short: bool,
) -> Result<strata_codegen::Model, ExitCode> {
    let sources = strata_codegen::load(path).map_err(|e| {
        // One line: the OS error is part of the message already.
        out::errln!("error: {e}");
        if let Some(help) = miette::Diagnostic::help(&e) {
            out::errln!("help: {help}");
        }
        ExitCode::from(EXIT_USAGE)
    })?;
    let compiled = strata_codegen::compile(&sources);
    if let Ok(model) = &compiled {
        let warnings = strata_codegen::lint(&sources, model);
        if !warnings.items.is_empty() {
            match short {
                true => out::err!("{}", warnings.render_short()),
                false => out::err!("{}", warnings.render_plain()),
            }
            out::errln!("{warnings}");
        }
    }
    compiled.map_err(|d| {
        if short {
            out::err!("{}", d.render_short());
        } else {
            out::err!("{}", d.render_plain());
        }
        out::errln!("{d}");
        ExitCode::from(EXIT_INVALID)
    })
}
