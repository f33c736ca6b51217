//! Compiling a schema from a crate's `build.rs`.
//!
//! [`Build`] is the whole build script: it prints `cargo:rerun-if-changed`
//! for the schema folder and each schema file (and the migrations folder),
//! compiles the schema, writes the generated Rust into `OUT_DIR` and a
//! `modules.rs` that declares one module per generated file, plus `ddl`
//! (the `CREATE` statements of each postgres store) and, with
//! [`Build::with_migrations`], a `migrations()` function that embeds the
//! migration files. A schema error fails the build with the same rendered
//! diagnostics as `strata check` (`file:line:col`, the source line, a label
//! and a hint), not a panic.
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! strata-sdk = { git = "<strata repository>" }
//! strata-derive = { git = "<strata repository>" }
//! serde = { version = "1", features = ["derive"] }
//! serde_json = "1"
//! sqlx = { version = "0.8", default-features = false, features = ["runtime-tokio", "postgres", "uuid", "chrono", "rust_decimal", "json", "derive"] }
//! uuid = { version = "1", features = ["v4", "serde"] }
//! chrono = { version = "0.4", default-features = false, features = ["clock", "std", "serde"] }
//! rust_decimal = { version = "1", features = ["serde-with-str"] }
//!
//! [build-dependencies]
//! strata-codegen = { git = "<strata repository>", default-features = false, features = ["yaml"] }
//! ```
//!
//! (the crates the generated code names; see `docs/sdk.md`).
//!
//! `build.rs` (paths are relative to the crate's folder):
//!
//! ```no_run
//! fn main() -> Result<(), strata_codegen::build::BuildError> {
//!     strata_codegen::build::Build::new("schema")
//!         .with_migrations("migrations")
//!         .run()
//! }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```ignore
//! include!(concat!(env!("OUT_DIR"), "/modules.rs"));
//! pub use entities::*;
//! ```
//!
//! A failed `run` returns a [`BuildError`] whose `Debug` holds the rendered
//! diagnostics, so `fn main() -> Result<(), BuildError>` prints them and exits
//! with status 1, which fails the build without a panic's backtrace.

use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::files::Artifact;
use crate::{Files, Settings};

/// Compiles one schema into `OUT_DIR`. Built with `with_*` methods; see the
/// [module documentation](self) for a whole build script.
#[derive(Debug, Clone)]
pub struct Build {
    schema: PathBuf,
    migrations: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    subdir: Option<String>,
    settings: Settings,
    rerun: bool,
}

/// Why a [`Build`] failed. `Display` is the rendered diagnostics; `Debug`
/// adds a first line, so a build script's `main` can return it readably.
#[derive(thiserror::Error)]
pub enum BuildError {
    /// The schema's diagnostics, rendered as `strata check` prints them.
    #[error("{0}")]
    Schema(String),
    /// A migration file name that the runner would refuse.
    #[error("{0}")]
    Migrations(String),
    /// Reading the inputs or writing `OUT_DIR`.
    #[error("{0}")]
    Io(String),
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // After the `Error: ` that a failed `main` prints.
        match self {
            BuildError::Schema(text) => write!(f, "the schema does not compile\n\n{text}"),
            other => fmt::Display::fmt(other, f),
        }
    }
}

/// What a successful [`Build::run`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The folder the files went to (`OUT_DIR`, or the subfolder of it).
    pub dir: PathBuf,
    /// The generated Rust module names, in order (`entities`, `clickhouse`, …).
    pub modules: Vec<String>,
}

impl Build {
    /// A schema file, or a folder of `*.yaml`/`*.yml` files. A relative path
    /// is relative to the crate's folder (cargo runs build scripts there).
    pub fn new(schema: impl AsRef<Path>) -> Self {
        Build {
            schema: schema.as_ref().to_path_buf(),
            migrations: None,
            out_dir: None,
            subdir: None,
            settings: Settings::default(),
            rerun: true,
        }
    }

    /// Embeds the `*.sql` files of `dir` (named `<version>_<name>.sql`) as a
    /// generated `pub fn migrations() -> strata_sdk::migrate::Migrations`.
    pub fn with_migrations(mut self, dir: impl AsRef<Path>) -> Self {
        self.migrations = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Writes under `dir` instead of `OUT_DIR` (for tests and tools). The
    /// generated `modules.rs` still names its files through `env!("OUT_DIR")`,
    /// so it is only includable when `dir` is `OUT_DIR`.
    pub fn with_out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Writes into `OUT_DIR/<subdir>/` (e.g. `fixtures/basics`), so that one
    /// build script can compile several schemas; include
    /// `concat!(env!("OUT_DIR"), "/<subdir>/modules.rs")`.
    pub fn with_subdir(mut self, subdir: impl Into<String>) -> Self {
        self.subdir = Some(subdir.into().trim_matches('/').to_string());
        self
    }

    /// The code generation settings.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines (default: yes).
    pub fn with_rerun_if_changed(mut self, rerun: bool) -> Self {
        self.rerun = rerun;
        self
    }

    /// Compiles and writes; see the [module documentation](self).
    pub fn run(self) -> Result<(), BuildError> {
        self.generate().map(|_| ())
    }

    /// [`Build::run`], returning what was written.
    pub fn generate(&self) -> Result<Output, BuildError> {
        // `…/schema`, not `…/crate/../schema`, in diagnostics.
        let schema = std::fs::canonicalize(&self.schema).unwrap_or_else(|_| self.schema.clone());
        let io = |e: &dyn fmt::Display| BuildError::Io(e.to_string());
        // The path as given too: a symlink switched to another folder.
        self.rerun_if_changed(&self.schema);
        self.rerun_if_changed(&schema);
        if schema.is_dir() {
            for f in crate::schema_files(&schema).map_err(|e| io(&e))? {
                self.rerun_if_changed(&f);
            }
        }
        let migrations = match &self.migrations {
            Some(dir) => {
                self.rerun_if_changed(dir);
                let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                self.rerun_if_changed(&dir);
                let files = migration_files(&dir)?;
                for (_, path) in &files {
                    self.rerun_if_changed(path);
                }
                let (catalog, _) = crate::postgres::migration::latest_catalog(&dir)
                    .map_err(|e| BuildError::Migrations(e.to_string()))?;
                if let Some(s) = catalog.schema.as_deref().filter(|s| !valid_schema(s)) {
                    return Err(BuildError::Migrations(format!(
                        "the catalog of `{}` names the schema `{s}`, which is not a PostgreSQL schema name (1 to 63 bytes, no NUL)",
                        dir.display()
                    )));
                }
                Some((files, catalog.schema))
            }
            None => None,
        };
        let sources = crate::load(&schema).map_err(|e| io(&e))?;
        let model = crate::compile(&sources).map_err(|d| BuildError::Schema(d.render_plain()))?;
        if self.rerun {
            for line in crate::lint(&sources, &model).render_short().lines() {
                println!("cargo:warning={line}");
            }
        }
        if let (true, Some(dir), Some((_, recorded))) = (self.rerun, &self.migrations, &migrations)
        {
            if let Some(line) = unmigrated(&model, dir, recorded.as_deref()) {
                println!("cargo:warning={line}");
            }
        }
        let generated = crate::generate(&model, &self.settings);

        let base =
            match &self.out_dir {
                Some(d) => d.clone(),
                None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| {
                    BuildError::Io("OUT_DIR is not set: run from build.rs".into())
                })?),
            };
        let prefix = match &self.subdir {
            Some(s) if !s.is_empty() => format!("/{s}"),
            _ => String::new(),
        };
        let dir = base.join(prefix.trim_start_matches('/'));

        let mut files = Files::default();
        let mut modules = Vec::new();
        let mut items = Vec::new();
        let mut ddl = Vec::new();
        for (artifact, text) in generated.artifacts() {
            let path = artifact.path();
            let file = Literal::string(&format!("{prefix}/{path}"));
            match &artifact {
                Artifact::RustModule(name) => {
                    let ident = Ident::new(name, Span::call_site());
                    items.push(quote! {
                        pub mod #ident {
                            include!(concat!(env!("OUT_DIR"), #file));
                        }
                    });
                    modules.push(name.clone());
                }
                Artifact::PostgresDdl { store } => {
                    let konst = Ident::new(&store.to_ascii_uppercase(), Span::call_site());
                    let doc = format!(
                        " `CREATE` statements of the postgres store `{store}`, from an empty database."
                    );
                    ddl.push(quote! {
                        #[doc = #doc]
                        pub const #konst: &str = include_str!(concat!(env!("OUT_DIR"), #file));
                    });
                }
                // DDL and mappings for other stores are applied by their tools,
                // not embedded in the crate.
                Artifact::ClickHouseDdl { .. }
                | Artifact::ElasticsearchIndex { .. }
                | Artifact::GrafanaDashboard => continue,
            }
            files.insert(path, text);
        }
        items.push(quote! {
            /// The DDL of each postgres store.
            pub mod ddl {
                #(#ddl)*
            }
        });
        if let Some((list, schema)) = migrations {
            items.push(migrations_fn(&list, schema.as_deref()));
        }
        files.insert(
            "modules.rs",
            crate::rust::format_file(quote! { #(#items)* }),
        );
        crate::persist(&files, &dir).map_err(|e| io(&e))?;
        Ok(Output { dir, modules })
    }

    fn rerun_if_changed(&self, path: &Path) {
        if self.rerun {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// A warning when the schema's postgres store (the one whose schema the
/// folder's catalog records) has changes no migration in `dir` holds yet:
/// the code generated from the schema would then query columns the
/// database does not have, and the error would come at run time.
fn unmigrated(model: &crate::Model, dir: &Path, recorded: Option<&str>) -> Option<String> {
    let stores = crate::postgres::catalog::postgres_stores(model);
    let id = match stores.as_slice() {
        [one] => *one,
        several => *several
            .iter()
            .find(|&&s| model[s].pg_schema() == recorded)?,
    };
    let store = &model[id].name;
    let cat = crate::postgres::catalog::catalog(model, id);
    let opts = crate::postgres::diff::DiffOptions::default();
    let next = crate::postgres::migration::next(&cat, dir, None, &opts, true).ok()?;
    let first = next.first()?;
    Some(format!(
        "the schema of store `{store}` has changes that no migration in {} holds yet (the next would be {}): run `strata migrate diff <schema> --dir {}` and apply it, or the generated code will query columns the database does not have",
        dir.display(),
        first.stem(),
        dir.display()
    ))
}

/// The migrations of `dir` in version order, read by the runner's own
/// reader ([`strata_migrate_files::read_dir`]) so that a name the runner
/// refuses fails the build, with the runner's message, not the program.
fn migration_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, BuildError> {
    let files = strata_migrate_files::read_dir(dir).map_err(|e| match e {
        strata_migrate_files::FilesError::Io { .. } => BuildError::Io(e.to_string()),
        _ => BuildError::Migrations(e.to_string()),
    })?;
    Ok(files
        .into_iter()
        .map(|f| {
            let path = f.path.unwrap_or_else(|| dir.join(&f.file_name));
            (f.file_name, path)
        })
        .collect())
}

/// What `Migrator::with_schema` accepts.
fn valid_schema(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && !s.contains('\0')
}

fn migrations_fn(files: &[(String, PathBuf)], schema: Option<&str>) -> TokenStream {
    let entries = files.iter().map(|(name, path)| {
        let path = Literal::string(&path.display().to_string());
        quote! { (#name, include_str!(#path)) }
    });
    let new = quote! { ::strata_sdk::migrate::Migrator::new(migrations()) };
    let (body, where_) = match schema {
        Some(s) => (
            quote! {
                match #new.with_schema(#s) {
                    ::std::result::Result::Ok(m) => m,
                    // The build checked the schema name (see `Build`).
                    ::std::result::Result::Err(e) => {
                        ::std::unreachable!("migrations schema checked at build time: {e}")
                    }
                }
            },
            format!(" Records them in `{s}.strata_migrations`, the store's own schema."),
        ),
        None => (
            new,
            " Records them in `strata_migrations` on the search path (`public`).".to_string(),
        ),
    };
    let doc = format!(
        " A [`Migrator`](::strata_sdk::migrate::Migrator) of [`migrations`], for the store\n whose catalog the folder records.{where_}"
    );
    quote! {
        /// The migrations of the schema's migrations folder, embedded at build
        /// time in version order; apply them with [`migrator`]`().apply(&mut conn)`.
        pub fn migrations() -> ::strata_sdk::migrate::Migrations {
            match ::strata_sdk::migrate::Migrations::from_files([#(#entries),*]) {
                ::std::result::Result::Ok(m) => m,
                // The build checked the file names and versions.
                ::std::result::Result::Err(e) => {
                    ::std::unreachable!("migrations checked at build time: {e}")
                }
            }
        }

        #[doc = #doc]
        pub fn migrator() -> ::strata_sdk::migrate::Migrator {
            #body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "strata-build-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_broken_schema_fails_with_file_line_col() {
        let dir = temp("broken");
        let schema = dir.join("schema.yaml");
        std::fs::write(
            &schema,
            "version: 1\nstores:\n  main: { kind: postgres }\nentities:\n  User:\n    store: main\n    fields:\n      id: { type: nosuchtype, primary_key: true }\n",
        )
        .unwrap();
        let err = Build::new(&schema)
            .with_out_dir(dir.join("out"))
            .with_rerun_if_changed(false)
            .run()
            .unwrap_err();
        let text = format!("{err:?}");
        assert!(matches!(err, BuildError::Schema(_)), "{text}");
        assert!(
            text.contains("schema.yaml:8:"),
            "no file:line:col in:\n{text}"
        );
        assert!(!dir.join("out/modules.rs").exists());
    }

    #[test]
    fn a_bad_migration_name_fails_the_build() {
        let dir = temp("badmig");
        std::fs::write(dir.join("init.sql"), "SELECT 1;").unwrap();
        let err = migration_files(&dir).unwrap_err();
        assert!(err.to_string().contains("init.sql"), "{err}");
        std::fs::write(dir.join("init.sql"), "").unwrap();
        std::fs::remove_file(dir.join("init.sql")).unwrap();
        std::fs::write(dir.join("0002_b.sql"), "").unwrap();
        std::fs::write(dir.join("0001_a.sql"), "").unwrap();
        std::fs::write(dir.join("0001_a.catalog.json"), "{}").unwrap();
        let names: Vec<_> = migration_files(&dir)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["0001_a.sql", "0002_b.sql"]);
        std::fs::write(dir.join("02_c.sql"), "").unwrap();
        assert!(migration_files(&dir)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }

    #[test]
    fn a_schema_ahead_of_its_migrations_is_named() {
        let dir = temp("unmigrated");
        let v1 = "version: 1\nstores:\n  main: { kind: postgres }\nentities:\n  Book:\n    store: main\n    key: id\n    fields:\n      id: i64\n      title: text\n";
        let model = |src: &str| crate::compile_str("schema.yaml", src).unwrap();
        // No migration yet: the first is due.
        let warn = unmigrated(&model(v1), &dir, None).expect("a warning");
        assert!(
            warn.contains("0001_init") && warn.contains("migrate diff"),
            "{warn}"
        );
        let m = model(v1);
        let cat = crate::postgres::catalog::catalog(&m, m.store_id("main").unwrap());
        let opts = crate::postgres::diff::DiffOptions::default();
        let files = crate::postgres::migration::next(&cat, &dir, None, &opts, false).unwrap();
        crate::postgres::migration::write(&dir, &files).unwrap();
        assert_eq!(unmigrated(&model(v1), &dir, None), None);
        let v2 = v1.replace("title: text\n", "title: text\n      shelf: string(10)?\n");
        let warn = unmigrated(&model(&v2), &dir, None).expect("a warning");
        assert!(
            warn.contains("`main`") && warn.contains("0002_migration"),
            "{warn}"
        );
    }
}
