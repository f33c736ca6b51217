//! `strata migrate diff|apply|status`: thin calls into
//! `strata_codegen::postgres::migration` and `strata_sdk::migrate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use strata_codegen::postgres::{catalog, diff::DiffOptions, migration};
use strata_sdk::migrate::{self, MigrationState, Migrations, Migrator};

use super::{load_and_compile, EXIT_USAGE};

/// Exit code when a migration is refused (destructive, edited, missing) or fails.
pub const EXIT_REFUSED: u8 = 3;

#[derive(Subcommand)]
pub enum MigrateCommand {
    /// Write the next migration: the difference between the schema and the
    /// catalog recorded by the latest migration in the folder.
    Diff {
        /// A schema file or a folder of `*.yaml` files.
        schema: PathBuf,
        /// The migrations folder (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// The migration's name (lower-case letters, digits, `_`); default
        /// `init` for the first migration, `migration` after.
        #[arg(long)]
        name: Option<String>,
        /// Write destructive steps (drop table or column, narrowing a type,
        /// removing enum values) instead of refusing them.
        #[arg(long)]
        allow_destructive: bool,
        /// Build indexes on existing tables with CREATE INDEX CONCURRENTLY,
        /// in their own migration run outside a transaction.
        #[arg(long)]
        concurrently: bool,
        /// The postgres store to diff, when the schema has several.
        #[arg(long)]
        store: Option<String>,
    },
    /// Apply pending migrations in order, under an advisory lock.
    Apply {
        #[arg(long)]
        dir: PathBuf,
        /// Default: the DATABASE_URL environment variable.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// List applied and pending migrations.
    Status {
        #[arg(long)]
        dir: PathBuf,
        /// Default: the DATABASE_URL environment variable.
        #[arg(long)]
        database_url: Option<String>,
    },
}

pub fn run(cmd: MigrateCommand) -> ExitCode {
    match cmd {
        MigrateCommand::Diff {
            schema,
            dir,
            name,
            allow_destructive,
            concurrently,
            store,
        } => diff(
            &schema,
            &dir,
            name.as_deref(),
            allow_destructive,
            concurrently,
            store,
        ),
        MigrateCommand::Apply { dir, database_url } => with_db(&dir, database_url, apply),
        MigrateCommand::Status { dir, database_url } => with_db(&dir, database_url, status),
    }
}

fn diff(
    schema: &Path,
    dir: &Path,
    name: Option<&str>,
    allow_destructive: bool,
    concurrently: bool,
    store: Option<String>,
) -> ExitCode {
    let model = match load_and_compile(schema, false) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let stores = catalog::postgres_stores(&model);
    let store = match (store, stores.as_slice()) {
        (Some(s), _) if stores.contains(&s.as_str()) => s,
        (Some(s), _) => {
            eprintln!(
                "error: `{s}` is not a postgres store of the schema (postgres stores: {})",
                stores.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
        (None, [one]) => one.to_string(),
        (None, []) => {
            eprintln!("error: the schema has no postgres store");
            return ExitCode::from(EXIT_USAGE);
        }
        (None, _) => {
            eprintln!(
                "error: the schema has several postgres stores ({}); choose one with --store",
                stores.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let cat = catalog::catalog(&model, &store);
    let opts = DiffOptions::default().with_concurrently(concurrently);
    let result = migration::next(&cat, dir, name, &opts, allow_destructive)
        .and_then(|files| Ok((migration::write(dir, &files)?, files)));
    match result {
        Ok((_, files)) if files.is_empty() => {
            eprintln!(
                "no changes: the migrations in {} match the schema",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok((paths, files)) => {
            for p in paths {
                eprintln!("wrote {}", p.display());
            }
            let destructive = files
                .iter()
                .flat_map(|f| f.sql.lines())
                .filter(|l| l.starts_with(migration::DESTRUCTIVE))
                .count();
            if destructive > 0 {
                eprintln!(
                    "warning: {destructive} destructive step(s), marked `{}` in the SQL",
                    migration::DESTRUCTIVE
                );
            }
            ExitCode::SUCCESS
        }
        Err(e @ migration::MigrationError::Destructive(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e @ migration::MigrationError::Diff(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

type DbCommand = fn(
    Migrator,
    sqlx::PgConnection,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ExitCode, migrate::MigrateError>>>,
>;

fn with_db(dir: &Path, url: Option<String>, f: DbCommand) -> ExitCode {
    let Some(url) = url.or_else(|| std::env::var("DATABASE_URL").ok()) else {
        eprintln!("error: no database: pass --database-url or set DATABASE_URL");
        return ExitCode::from(EXIT_USAGE);
    };
    let migrations = match Migrations::from_dir(dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = rt.block_on(async {
        let conn = migrate::connect(&url).await?;
        f(Migrator::new(migrations), conn).await
    });
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_REFUSED)
    })
}

fn apply(
    m: Migrator,
    mut conn: sqlx::PgConnection,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ExitCode, migrate::MigrateError>>>> {
    Box::pin(async move {
        let report = m.apply(&mut conn).await?;
        for (v, name) in &report.applied {
            eprintln!("applied {v:04}_{name}");
        }
        eprintln!(
            "{} applied now, {} already applied",
            report.applied.len(),
            report.already_applied
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn status(
    m: Migrator,
    mut conn: sqlx::PgConnection,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ExitCode, migrate::MigrateError>>>> {
    Box::pin(async move {
        let mut bad = false;
        for s in m.status(&mut conn).await? {
            let state = match s.state {
                MigrationState::Applied { at } => format!("applied {}", at.to_rfc3339()),
                MigrationState::Pending => "pending".to_string(),
                MigrationState::Changed { at } => {
                    bad = true;
                    format!("CHANGED since applied {}", at.to_rfc3339())
                }
                MigrationState::Missing { at } => {
                    bad = true;
                    format!("MISSING file, applied {}", at.to_rfc3339())
                }
            };
            println!("{:04}_{}\t{state}", s.version, s.name);
        }
        Ok(if bad {
            ExitCode::from(EXIT_REFUSED)
        } else {
            ExitCode::SUCCESS
        })
    })
}
