//! `strata migrate diff|apply|status`: thin calls into
//! `strata_codegen::postgres::migration` and `strata_sdk::migrate`.

use crate::out::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use strata_codegen::postgres::{catalog, diff::DiffOptions, migration, owner};
use strata_sdk::migrate::{self, MigrationState, Migrations, Migrator};

use super::{load_and_compile, target, EXIT_USAGE};

/// Exit code when a migration is refused (destructive, edited, missing) or fails.
pub const EXIT_REFUSED: u8 = 3;

#[derive(Subcommand)]
pub enum MigrateCommand {
    /// Write the next migration: the difference between the schema and the
    /// catalog recorded by the latest migration in the folder.
    Diff(DiffArgs),
    /// Apply pending migrations in order, under an advisory lock.
    Apply(DbArgs),
    /// List applied and pending migrations.
    Status(DbArgs),
}

/// The arguments of `migrate diff`.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// A schema file or a folder of `*.yaml` files.
    pub schema: PathBuf,
    /// The migrations folder (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// The migration's name (lower-case letters, digits, `_`); default
    /// `init` for the first migration, `migration` after.
    #[arg(long)]
    pub name: Option<String>,
    /// Write destructive steps (drop table or column, narrowing a type,
    /// removing enum values) instead of refusing them.
    #[arg(long)]
    pub allow_destructive: bool,
    /// Build indexes on existing tables with CREATE INDEX CONCURRENTLY,
    /// in their own migration run outside a transaction.
    #[arg(long)]
    pub concurrently: bool,
    /// The postgres store to diff, when the schema has several.
    #[arg(long)]
    pub store: Option<String>,
    /// Check first that every migration of the folder is applied to this
    /// database, and refuse (exit 3) when one is not: the catalog the next
    /// migration builds on is recorded when a migration is written, so a
    /// migration that failed to apply leaves it ahead of the database.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// The arguments of `migrate apply` and `migrate status`.
#[derive(clap::Args)]
pub struct DbArgs {
    /// A schema file or folder of `*.yaml` files (optional). Its postgres
    /// store's `url:` is the database when neither --database-url nor
    /// DATABASE_URL is set, and its `schema:` holds the record table.
    pub schema: Option<PathBuf>,
    /// The migrations folder: `<version>_<name>.sql` files, as written by
    /// `strata migrate diff`.
    #[arg(long)]
    pub dir: PathBuf,
    /// The database (postgres://user@host:port/database). Default: the
    /// DATABASE_URL environment variable, then the store's `url:`.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The postgres store of the schema, when it has several.
    #[arg(long)]
    pub store: Option<String>,
    /// Accept migrations the database has that are newer than every file
    /// of the folder (applied by a newer version, during a rolling deploy
    /// or rollback): `apply` skips them with a warning instead of
    /// refusing.
    #[arg(long)]
    pub allow_newer: bool,
}

pub fn run(cmd: MigrateCommand) -> ExitCode {
    match cmd {
        MigrateCommand::Diff(args) => diff(args),
        MigrateCommand::Apply(args) => with_db(args, Cmd::Apply),
        MigrateCommand::Status(args) => with_db(args, Cmd::Status),
    }
}

fn diff(args: DiffArgs) -> ExitCode {
    let DiffArgs {
        schema,
        dir,
        name,
        allow_destructive,
        concurrently,
        store,
        database_url,
    } = args;
    let (dir, name) = (dir.as_path(), name.as_deref());
    let model = match load_and_compile(&schema, false) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let store = match target::choose_store(&model, store) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(e) = owner::check_folder(dir, &model, store) {
        return target::usage(e);
    }
    let cat = catalog::catalog(&model, store);
    if let Some(url) = database_url {
        target::say_database("migrate diff", &url, &target::UrlSource::Flag);
        if let Err(code) = all_applied(dir, &url, cat.schema.as_deref()) {
            return code;
        }
    }
    let opts = DiffOptions::default().with_concurrently(concurrently);
    let result = migration::next(&cat, dir, name, &opts, allow_destructive)
        .and_then(|files| Ok((migration::write(dir, &files)?, files)));
    match result {
        Ok((_, files)) if files.is_empty() => {
            let base = migration::latest_catalog_path(dir).ok().flatten();
            match base.as_deref().and_then(Path::file_name) {
                Some(base) => errln!(
                    "no changes: the schema matches {} in {} (the database after that migration; `strata migrate status` says whether it is applied)",
                    base.to_string_lossy(),
                    dir.display()
                ),
                None => errln!(
                    "no changes: the migrations in {} match the schema",
                    dir.display()
                ),
            }
            ExitCode::SUCCESS
        }
        Ok((paths, files)) => {
            for p in paths {
                errln!("wrote {}", p.display());
            }
            let destructive = files
                .iter()
                .flat_map(|f| f.sql.lines())
                .filter(|l| l.starts_with(migration::DESTRUCTIVE))
                .count();
            if destructive > 0 {
                errln!(
                    "warning: {destructive} destructive step(s), marked `{}` in the SQL",
                    migration::DESTRUCTIVE
                );
            }
            ExitCode::SUCCESS
        }
        Err(e @ migration::MigrationError::Destructive(_)) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e @ migration::MigrationError::Diff(_)) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

#[derive(Clone, Copy)]
enum Cmd {
    Apply,
    Status,
}

fn with_db(args: DbArgs, cmd: Cmd) -> ExitCode {
    let model = match &args.schema {
        Some(path) => match load_and_compile(path, false) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
    let migrations = match Migrations::from_dir(&args.dir) {
        Ok(m) => m,
        Err(e) => return target::usage(e),
    };
    let t = match target::resolve(model.as_ref(), args.store, &args.dir, args.database_url) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let verb = match cmd {
        Cmd::Apply => "migrate apply",
        Cmd::Status => "migrate status",
    };
    target::say_database(verb, &t.url, &t.from);
    let mut migrator = Migrator::new(migrations).allow_newer(args.allow_newer);
    if let Some(s) = &t.record_schema {
        migrator = match migrator.with_schema(s) {
            Ok(m) => m,
            Err(e) => return target::usage(e),
        };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return target::usage(format!("cannot start the async runtime: {e}")),
    };
    let mut conn = match rt.block_on(target::connect(&t.url)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = rt.block_on(async {
        let table = record_table(&migrator, &mut conn).await?;
        match cmd {
            Cmd::Apply => apply(&migrator, &mut conn, &args.dir, &table).await,
            Cmd::Status => status(&migrator, &mut conn, &args.dir, &table).await,
        }
    });
    result.unwrap_or_else(|e| {
        errln!("error: {e}");
        for hint in failure_hints(&args.dir, migrator.migrations(), &e) {
            errln!("hint: {hint}");
        }
        ExitCode::from(EXIT_REFUSED)
    })
}

/// After a failed migration: whether the rows rather than the SQL are the
/// likely cause, what a no-transaction migration left applied, and which
/// recorded catalog is now ahead of the database (with the files to delete
/// to change the schema instead).
fn failure_hints(dir: &Path, all: &Migrations, e: &migrate::MigrateError) -> Vec<String> {
    let (version, cause, at) = match e {
        migrate::MigrateError::Failed {
            version,
            source,
            at,
            ..
        } => (*version, Some(source), at.as_deref().unwrap_or_default()),
        migrate::MigrateError::InvalidIndex { version, .. } => (*version, None, ""),
        _ => return Vec::new(),
    };
    let mut hints = Vec::new();
    let code = cause
        .and_then(|c| c.as_database_error())
        .and_then(|d| d.code())
        .unwrap_or_default();
    let dropped = if at.to_ascii_uppercase().contains("INDEX CONCURRENTLY") {
        " (the INVALID index the failed build left has been dropped)"
    } else {
        ""
    };
    // Class 23: integrity constraint violations; class 22: data exceptions
    // (including the guard of a type change that would change values).
    if code == "23505" {
        hints.push(format!(
            "the rows are the likely cause, not the SQL: the table holds duplicates of the unique key (DETAIL names one){dropped}; remove or change the duplicates and apply again"
        ));
    } else if code.starts_with("23") || code.starts_with("22") {
        hints.push(format!(
            "the rows are the likely cause, not the SQL (see the error and its DETAIL){dropped}: change or delete those rows and apply again"
        ));
    }
    // 0A000 / 2BP01: PostgreSQL refuses to retype or drop a column that a
    // publication (change capture's) lists.
    let publication = cause.and_then(|c| c.as_database_error()).is_some_and(|d| {
        d.message().contains("publication") || format!("{d:?}").contains("publication")
    });
    if publication && (code == "0A000" || code == "2BP01") {
        hints.push(
            "change capture's publication lists this column: stop `strata sync run`, run `strata sync recopy <schema> --entity <Entity>` (it takes the table out of the publications and moves its ClickHouse copy aside), apply again, then start the sync again (docs/sync.md, Schema changes)".to_string(),
        );
    }
    if all.get(version).is_some_and(|m| m.no_transaction) {
        hints.push(format!(
            "migration {version} runs outside a transaction: the indexes it built before the failing statement were dropped again, other statements before it (an enum value added) stay applied and are re-runnable; it is recorded once all of it has run. An object that \"already exists\" may be left by an earlier run of it that was interrupted (killed, or its connection lost): write its statements to be re-runnable (`IF NOT EXISTS`)"
        ));
    }
    let Ok(files) = migration::list(dir) else {
        return hints;
    };
    let mut delete = Vec::new();
    let mut ahead = None;
    for (_, _, sql) in files.iter().filter(|(v, _, _)| *v >= version) {
        delete.extend(file_name(sql));
        let json = sql.with_extension("catalog.json");
        if json.exists() {
            delete.extend(file_name(&json));
            ahead = file_name(&json);
        }
    }
    if let Some(ahead) = ahead {
        hints.push(format!(
            "{ahead} records the database as if this migration had run, so `strata migrate diff` will not write it again: fix the cause and apply again; or, to change the schema instead, delete {} from {} and diff again",
            delete.join(", "),
            dir.display()
        ));
    }
    hints
}

fn file_name(path: &Path) -> Option<String> {
    Some(path.file_name()?.to_string_lossy().into_owned())
}

/// `app_a.strata_migrations`, or the search path's schema before the bare name.
async fn record_table(
    m: &Migrator,
    conn: &mut sqlx::PgConnection,
) -> Result<String, migrate::MigrateError> {
    let table = m.record_table();
    if table.contains('.') {
        return Ok(table);
    }
    let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await?;
    Ok(format!(
        "{}.{table}",
        schema.unwrap_or_else(|| "public".into())
    ))
}

async fn apply(
    m: &Migrator,
    conn: &mut sqlx::PgConnection,
    dir: &Path,
    table: &str,
) -> Result<ExitCode, migrate::MigrateError> {
    if let Some(pid) = migrate::lock_holder(conn).await? {
        errln!("waiting for the migrations lock, held by server process {pid}: another `strata migrate apply`, or a killed one whose session has not ended (`SELECT pg_terminate_backend({pid})` ends it)");
    }
    let report = m.apply(conn).await?;
    for (v, name) in &report.applied {
        errln!("applied {v:04}_{name}");
    }
    for (v, name) in &report.out_of_order {
        errln!("note: {v:04}_{name} was applied out of order: a later version was applied before it (a merged branch?); check that it does not depend on a later migration");
    }
    if m.migrations().is_empty() && report.already_applied == 0 {
        errln!("no migrations in {}: nothing to apply", dir.display());
    } else {
        errln!(
            "{} applied now, {} already applied (recorded in {table})",
            report.applied.len(),
            report.already_applied
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(
    m: &Migrator,
    conn: &mut sqlx::PgConnection,
    dir: &Path,
    table: &str,
) -> Result<ExitCode, migrate::MigrateError> {
    let list = m.status(conn).await?;
    if list.is_empty() {
        errln!(
            "no migrations in {}, and none recorded in {table}",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let latest_applied = (list.iter())
        .filter(|s| s.state != MigrationState::Pending)
        .map(|s| s.version)
        .max();
    let mut bad = false;
    for s in list {
        let state = match s.state {
            MigrationState::Applied { at } => format!("applied {}", at.to_rfc3339()),
            MigrationState::Pending => match latest_applied {
                Some(v) if v > s.version => {
                    format!("pending, below applied {v:04}: it will apply out of order")
                }
                _ => "pending".to_string(),
            },
            MigrationState::Changed { at } => {
                bad = true;
                format!("CHANGED since applied {}", at.to_rfc3339())
            }
            MigrationState::Missing { at } => {
                bad = true;
                format!("MISSING file, applied {}", at.to_rfc3339())
            }
            MigrationState::Newer { at } => {
                bad |= !m.allows_newer();
                format!(
                    "NEWER than this folder (applied by a newer version), applied {}",
                    at.to_rfc3339()
                )
            }
        };
        outln!("{:04}_{}\t{state}", s.version, s.name);
    }
    errln!("recorded in {table}");
    if m.migrations().is_empty() {
        errln!(
            "hint: {} holds no migrations: is it the right `--dir`?",
            dir.display()
        );
    }
    Ok(if bad {
        ExitCode::from(EXIT_REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}

/// For `diff --database-url`: every migration of `dir` is applied, unchanged.
fn all_applied(dir: &Path, url: &str, schema: Option<&str>) -> Result<(), ExitCode> {
    target::check_url(url).map_err(target::usage)?;
    if !dir.exists() {
        return Ok(());
    }
    let migrations = Migrations::from_dir(dir).map_err(target::usage)?;
    let mut migrator = Migrator::new(migrations);
    if let Some(s) = schema {
        migrator = migrator.with_schema(s).map_err(target::usage)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| target::usage(format!("cannot start the async runtime: {e}")))?;
    let mut conn = rt.block_on(target::connect(url))?;
    let list = rt.block_on(migrator.status(&mut conn)).map_err(|e| {
        errln!("error: {e}");
        ExitCode::from(EXIT_REFUSED)
    })?;
    let behind: Vec<String> = list
        .iter()
        .filter(|s| !matches!(s.state, MigrationState::Applied { .. }))
        .map(|s| format!("{:04}_{}", s.version, s.name))
        .collect();
    if behind.is_empty() {
        return Ok(());
    }
    errln!(
        "error: not applied to the database (or changed since): {}. The catalog the next migration builds on describes the database after them. Apply them first (`strata migrate apply`); if one cannot apply, fix its SQL, or delete it with its .catalog.json and diff again.",
        behind.join(", ")
    );
    Err(ExitCode::from(EXIT_REFUSED))
}
