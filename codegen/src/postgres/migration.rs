//! Migration files: `NNNN_name.sql` (plain SQL, applied in version order) and,
//! next to each file `strata migrate diff` writes, `NNNN_name.catalog.json`
//! (the [`Catalog`] the database has once that migration ran: the base of
//! the next diff). See `docs/migrations.md`.
//!
//! The folder is read with [`strata_migrate_files::read_dir`], the reader the
//! runner (`strata migrate apply`) and build scripts use: every file the
//! runner would apply counts here (hand-written ones too, whatever their
//! name's case), and a name it refuses is refused here with its message.

use std::path::{Path, PathBuf};

use super::catalog::Catalog;
use super::diff::{self, DiffOptions, Plan, Step};

/// A leading comment line that makes `strata migrate apply` run the file
/// statement by statement, outside a transaction.
pub const NO_TRANSACTION: &str = strata_migrate_files::NO_TRANSACTION;
/// The comment line above every destructive statement.
pub const DESTRUCTIVE: &str = "-- strata:destructive:";

/// One migration to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    pub version: i64,
    pub name: String,
    pub sql: String,
    /// The catalog JSON recorded next to it, if any.
    pub catalog: Option<String>,
}

impl MigrationFile {
    /// `0001_init`.
    pub fn stem(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot read migrations in `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid catalog file: {source}")]
    BadCatalog {
        path: String,
        source: serde_json::Error,
    },
    /// The folder holds a file the runner refuses (the runner's message).
    #[error(transparent)]
    Files(#[from] strata_migrate_files::FilesError),
    #[error("the latest migration has version {0}; no version follows it")]
    VersionOverflow(i64),
    #[error("the migration name `{0}` is not valid: use lower-case letters, digits and `_`")]
    BadName(String),
    #[error(transparent)]
    Diff(#[from] diff::DiffError),
    #[error("refusing destructive changes (pass --allow-destructive to write them):\n{}", .0.iter().map(|s| format!("  - {s}")).collect::<Vec<_>>().join("\n"))]
    Destructive(Vec<String>),
    /// The folder's latest catalog is another store's ([`super::owner::check_folder`]).
    #[error("`{dir}` holds the migrations of {found}, not of {wanted} (see its latest catalog, {file}): {advice}")]
    OtherStore {
        dir: String,
        file: String,
        found: String,
        wanted: String,
        advice: String,
    },
}

/// The migrations of a folder, in version order: (version, name, path).
/// A folder that does not exist has none; a `.sql` file the runner would
/// refuse is an error ([`MigrationError::Files`]).
pub fn list(dir: &Path) -> Result<Vec<(i64, String, PathBuf)>, MigrationError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    Ok(strata_migrate_files::read_dir(dir)?
        .into_iter()
        .map(|f| {
            let path = f.path.unwrap_or_else(|| dir.join(&f.file_name));
            (f.version, f.name, path)
        })
        .collect())
}

/// `0003_add_notes` → (3, "add_notes"), by the runner's rule
/// ([`strata_migrate_files::parse_file_name`]); `None` for a name it refuses
/// or a version above `u32::MAX`.
#[deprecated(
    note = "use strata_migrate_files::parse_file_name, which takes versions up to i64::MAX"
)]
pub fn parse_stem(stem: &str) -> Option<(u32, String)> {
    let file = format!("{stem}.sql");
    let (v, name) = strata_migrate_files::parse_file_name(&file).ok()?;
    Some((u32::try_from(v).ok()?, name.to_string()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The `.catalog.json` of the latest migration that has one: the base of
/// the next diff. It describes the database *after* that migration, whether
/// or not it has been applied (see `docs/migrations.md`).
pub fn latest_catalog_path(dir: &Path) -> Result<Option<PathBuf>, MigrationError> {
    Ok(list(dir)?
        .into_iter()
        .rev()
        .map(|(_, _, sql)| sql.with_extension("catalog.json"))
        .find(|json| json.exists()))
}

/// The catalog recorded by the latest migration that has one (empty when the
/// folder has none), and the highest version in the folder.
pub fn latest_catalog(dir: &Path) -> Result<(Catalog, i64), MigrationError> {
    let files = list(dir)?;
    let last = files.last().map_or(0, |f| f.0);
    for (_, _, sql) in files.iter().rev() {
        let json = sql.with_extension("catalog.json");
        if json.exists() {
            return Ok((read_catalog(&json)?, last));
        }
    }
    Ok((Catalog::default(), last))
}

/// One `.catalog.json`.
pub fn read_catalog(json: &Path) -> Result<Catalog, MigrationError> {
    let text = std::fs::read_to_string(json).map_err(|e| MigrationError::Io {
        path: json.display().to_string(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| MigrationError::BadCatalog {
        path: json.display().to_string(),
        source: e,
    })
}

/// Diffs and refuses destructive steps unless `allow_destructive`.
pub fn plan(
    old: &Catalog,
    new: &Catalog,
    opts: &DiffOptions,
    allow_destructive: bool,
) -> Result<Plan, MigrationError> {
    let plan = diff::diff(old, new, opts)?;
    let destructive = plan.destructive();
    if !allow_destructive && !destructive.is_empty() {
        return Err(MigrationError::Destructive(
            destructive.into_iter().map(String::from).collect(),
        ));
    }
    Ok(plan)
}

/// The files of a plan, numbered from `first`: the enum values (no
/// transaction), the main migration, the concurrent indexes (no transaction).
/// Each records the catalog the database has once it ran (the last one
/// `catalog`), so that deleting a file that failed, with its catalog, leaves
/// the catalog of what the files before it did.
pub fn files(
    plan: &Plan,
    first: i64,
    name: &str,
    catalog: &Catalog,
) -> Result<Vec<MigrationFile>, MigrationError> {
    if !valid_name(name) {
        return Err(MigrationError::BadName(name.to_string()));
    }
    let parts: [(&[Step], bool, &str, &str, &Catalog); 3] = [
        (
            &plan.enum_values,
            true,
            "_enum_values",
            "-- A value added to an enum cannot be used in the transaction that adds it,\n\
             -- so values are added here, outside one, before the next migration uses them.\n",
            &plan.after_enum_values,
        ),
        (&plan.main, false, "", "", &plan.after_main),
        (
            &plan.concurrent,
            true,
            "_concurrent_indexes",
            "-- CREATE INDEX CONCURRENTLY cannot run in a transaction; each statement runs on\n\
             -- its own. If one fails, `strata migrate apply` drops the INVALID index the\n\
             -- failed build left; fix the cause (for a unique index: duplicate rows) and\n\
             -- apply again.\n",
            catalog,
        ),
    ];
    let used: Vec<_> = parts.iter().filter(|p| !p.0.is_empty()).collect();
    let mut out = Vec::new();
    for (k, (steps, no_tx, suffix, why, after)) in used.iter().enumerate() {
        let version = first.saturating_add(k as i64);
        let name = if used.len() > 1 && !suffix.is_empty() {
            format!("{name}{suffix}")
        } else {
            name.to_string()
        };
        let mut sql = format!(
            "-- strata migration {version:04}_{name}\n\
             -- Written by `strata migrate diff`; applied by `strata migrate apply`.\n"
        );
        if *no_tx {
            sql.push_str(NO_TRANSACTION);
            sql.push('\n');
            sql.push_str(why);
        }
        for s in steps.iter() {
            sql.push('\n');
            if let Some(d) = &s.destructive {
                sql.push_str(&format!("{DESTRUCTIVE} {d}\n"));
            }
            if let Some(n) = &s.note {
                sql.push_str(&format!("-- note: {n}\n"));
            }
            sql.push_str(&s.sql);
            sql.push('\n');
        }
        let last = k + 1 == used.len();
        out.push(MigrationFile {
            version,
            name,
            sql,
            catalog: Some(catalog_json(if last { catalog } else { after })),
        });
    }
    Ok(out)
}

pub fn catalog_json(catalog: &Catalog) -> String {
    serde_json::to_string_pretty(catalog).unwrap_or_default() + "\n"
}

/// Writes the files into `dir` (created if needed). Returns the paths written.
pub fn write(dir: &Path, files: &[MigrationFile]) -> Result<Vec<PathBuf>, MigrationError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e| MigrationError::Io { path, source: e }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for f in files {
        let sql = dir.join(format!("{}.sql", f.stem()));
        std::fs::write(&sql, &f.sql).map_err(io(&sql))?;
        written.push(sql);
        if let Some(c) = &f.catalog {
            let json = dir.join(format!("{}.catalog.json", f.stem()));
            std::fs::write(&json, c).map_err(io(&json))?;
            written.push(json);
        }
    }
    Ok(written)
}

/// The next migration(s) for `new` in `dir`: empty when nothing changed.
/// `name` defaults to `init` for the first migration and `migration` after.
pub fn next(
    new: &Catalog,
    dir: &Path,
    name: Option<&str>,
    opts: &DiffOptions,
    allow_destructive: bool,
) -> Result<Vec<MigrationFile>, MigrationError> {
    let (old, last) = latest_catalog(dir)?;
    let plan = plan(&old, new, opts, allow_destructive)?;
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let name = name.unwrap_or(if last == 0 { "init" } else { "migration" });
    let first = last
        .checked_add(1)
        .ok_or(MigrationError::VersionOverflow(last))?;
    files(&plan, first, name, new)
}
