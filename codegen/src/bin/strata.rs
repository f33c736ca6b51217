//! The `strata` command line: a thin front end over the `strata_codegen` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "strata/migrate.rs"]
mod migrate;

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
        schema: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// PostgreSQL migrations: diff the schema, apply, show status.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
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
            print!("{}", strata_codegen::json_schema::schema_json());
            ExitCode::SUCCESS
        }
        Command::Check { schema, short } => match load_and_compile(&schema, short) {
            Ok(model) => {
                let count = |n: usize, one: &str, many: &str| {
                    format!("{n} {}", if n == 1 { one } else { many })
                };
                eprintln!(
                    "ok: {}, {}, {}",
                    count(model.entities.len(), "entity", "entities"),
                    count(model.enums.len(), "enum", "enums"),
                    count(model.stores.len(), "store", "stores")
                );
                for line in strata_codegen::ranges::kept(&model) {
                    eprintln!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Migrate { command } => migrate::run(command),
        Command::Generate { schema, out } => {
            let model = match load_and_compile(&schema, false) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
            match strata_codegen::persist(&files, &out) {
                Ok(n) => {
                    eprintln!(
                        "wrote {n} of {} files to {}",
                        files.files.len(),
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot write to {}: {e}", out.display());
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
        eprintln!("{:?}", miette::Report::new(e));
        ExitCode::from(EXIT_USAGE)
    })?;
    strata_codegen::compile(&sources).map_err(|d| {
        if short {
            eprint!("{}", d.render_short());
        } else {
            eprint!("{}", d.render_plain());
        }
        eprintln!("{d}");
        ExitCode::from(EXIT_INVALID)
    })
}
