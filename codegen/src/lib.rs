//! # strata-codegen
//!
//! The Strata schema compiler. The pipeline, stage by stage:
//!
//! ```text
//! load (files) → parse (spanned YAML → AST) → resolve (checked Model) → generate (Files) → persist
//! ```
//!
//! ```no_run
//! let schema = strata_codegen::load("schema").unwrap();
//! let model = strata_codegen::compile(&schema).unwrap();
//! let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
//! strata_codegen::persist(&files, "out".as_ref()).unwrap();
//! ```

pub mod backend;
#[cfg(feature = "yaml")]
pub mod build;
pub mod clickhouse;
pub mod diagnostics;
pub mod elasticsearch;
pub mod files;
pub mod grafana;
pub mod influx;
pub mod json_schema;
pub mod model;
pub mod names;
pub mod postgres;
pub mod ranges;
pub mod rust;
pub mod source;
#[cfg(feature = "cli")]
pub mod sync_pipeline;
pub mod syntax;

use std::path::Path;

pub use backend::Backend;
pub use diagnostics::{Code, Diagnostics, Problem};
pub use files::{persist, persist_owned, Artifact, Files};
pub use model::Model;
pub use source::Sources;
use syntax::error::SyntaxError;

/// Hard limit on one schema file, so that no input can make the compiler
/// spend unbounded time or memory.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Most fields one entity may have (PostgreSQL allows 1,600 columns).
pub const MAX_FIELDS: usize = 1_000;

/// Most stores one entity may be synced to.
pub const MAX_SYNC_TARGETS: usize = 32;

/// Most columns all artifacts of a schema may hold together: each entity's
/// fields × (1 + its sync targets). Generation time and memory grow with
/// this number; the bound keeps any schema to a second or two.
pub const MAX_GENERATED_COLUMNS: usize = 40_000;

/// Errors before any schema text is read: missing files, unreadable folders.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    #[diagnostic(code(strata::io), help("check that the path exists and is readable"))]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` holds no schema files")]
    #[diagnostic(
        code(strata::no_schema),
        help("a schema folder holds `*.yaml` or `*.yml` files")
    )]
    Empty { path: String },
}

diagnostics::stage_codes!(LoadError {
    Io => Io,
    Empty => NoSchema,
});

/// Stage 1: reads a schema file, or every `*.yaml`/`*.yml` file of a folder
/// (recursively, in path order, so output is deterministic).
pub fn load(path: impl AsRef<Path>) -> Result<Sources, LoadError> {
    let path = path.as_ref();
    let io = |e| LoadError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let mut files = Vec::new();
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        collect_yaml(path, &mut files)?;
        if files.is_empty() {
            return Err(LoadError::Empty {
                path: path.display().to_string(),
            });
        }
    } else {
        files.push(path.to_path_buf());
    }
    files.sort();
    let mut sources = Sources::default();
    for f in files {
        let name = f.display().to_string();
        let bytes = std::fs::read(&f).map_err(|e| LoadError::Io {
            path: name.clone(),
            source: e,
        })?;
        // A file that is too large or not UTF-8 is a broken schema, reported
        // as a located diagnostic (exit 1) like any other mistake.
        if bytes.len() > MAX_FILE_BYTES {
            let id = sources.add(name, "");
            sources.problems.push(Problem::from(SyntaxError::TooLarge {
                at: source::Span::new(id, 0, 0),
                max: MAX_FILE_BYTES,
            }));
            continue;
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                sources.add(name, text);
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let id = sources.add(name, text);
                sources.problems.push(Problem::from(SyntaxError::NotUtf8 {
                    at: source::Span::new(id, at, at + '\u{FFFD}'.len_utf8()),
                }));
            }
        }
    }
    Ok(sources)
}

/// Every schema file under `dir`, for `cargo:rerun-if-changed` and loading.
pub fn schema_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, LoadError> {
    let mut out = Vec::new();
    collect_yaml(dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn collect_yaml(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), LoadError> {
    collect_yaml_in(dir, out, &mut std::collections::HashSet::new())
}

/// Each folder is read once, by its canonical path, so that a symbolic link
/// to a parent folder cannot make loading loop forever. Hidden entries
/// (`.git`, editor lock files such as `.#schema.yaml`) are skipped.
fn collect_yaml_in(
    dir: &Path,
    out: &mut Vec<std::path::PathBuf>,
    seen: &mut std::collections::HashSet<std::path::PathBuf>,
) -> Result<(), LoadError> {
    let io = |e| LoadError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    if !seen.insert(std::fs::canonicalize(dir).map_err(io)?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            collect_yaml_in(&p, out, seen)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(feature = "yaml")]
/// Stages 2 and 3: parses every file and resolves them into one checked model.
/// All problems of all files are reported together.
pub fn compile(sources: &Sources) -> Result<Model, Diagnostics> {
    let mut problems = diagnostics::Problems::default();
    for p in &sources.problems {
        problems.push(p.clone());
    }
    let unread = |id: usize| sources.problems.iter().any(|p| p.span.file == id);
    let asts: Vec<_> = (sources.files.iter().enumerate())
        .map(|(id, file)| match unread(id) {
            // Not parsed: what it declares is unknown, so lookups stay quiet.
            true => syntax::ast::SchemaFile {
                incomplete: true,
                ..Default::default()
            },
            false => syntax::parse(id, &file.text, &mut problems),
        })
        .collect();
    // Resolve even after shape errors, so one run reports every problem it can.
    let resolved = model::resolve(&asts, &mut problems);
    // Names clashing in a store's namespace are reported beside the
    // resolver's problems, from whatever it could build.
    for b in BACKENDS {
        problems.list.extend(b.names(&resolved.model));
    }
    let model = resolved.complete.then_some(resolved.model);
    // Back ends report what their stores cannot carry (lossy types, missing features).
    if let Some(m) = &model {
        for b in BACKENDS {
            problems.list.extend(b.check(m));
        }
    }
    match model {
        Some(m) if problems.is_empty() => match nothing_declared(sources, &m) {
            Some(p) => Err(Diagnostics::new(sources, vec![p])),
            None => Ok(m),
        },
        // A refused schema shows its warnings too, so one run says everything.
        Some(m) => {
            problems
                .list
                .extend(BACKENDS.iter().flat_map(|b| b.lint(&m)));
            Err(Diagnostics::new(sources, problems.list))
        }
        None => Err(Diagnostics::new(sources, problems.list)),
    }
}

/// The warnings of a compiled schema: what it accepts that a store will
/// refuse at run time (a B-tree index over unbounded text). `strata check`,
/// `strata generate` and [`build::Build`] print them; they fail nothing.
pub fn lint(sources: &Sources, model: &Model) -> Diagnostics {
    Diagnostics::new(
        sources,
        BACKENDS.iter().flat_map(|b| b.lint(model)).collect(),
    )
}

#[cfg(feature = "yaml")]
/// A schema that declares nothing at all (empty files, only comments) is a
/// mistake, most often the wrong path or a file saved empty.
fn nothing_declared(sources: &Sources, m: &Model) -> Option<Problem> {
    let empty = m.stores.is_empty() && m.enums.is_empty() && m.entities.is_empty();
    (empty && !sources.files.is_empty()).then(|| {
        Problem::from(SyntaxError::EmptySchema {
            at: source::Span::new(0, 0, 0),
        })
    })
}

#[cfg(feature = "yaml")]
/// Compiles schema text held in memory (one file), for tests and tools.
pub fn compile_str(name: &str, text: &str) -> Result<Model, Diagnostics> {
    let mut s = Sources::default();
    s.add(name, text);
    compile(&s)
}

/// What to generate. Built with `with_*` methods.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    _private: (),
}

/// Every back end, in the order they run. The one list a new store kind is
/// added to (with its model variant, its keys and its SDK module; see
/// `docs/architecture.md`).
pub const BACKENDS: &[&dyn Backend] = &[
    &backend::Postgres,
    &backend::Rust,
    &backend::ClickHouse,
    &backend::Elasticsearch,
    &backend::Influx,
    &backend::Grafana,
];

/// Stage 4: every artifact of every back end, keyed by relative path.
pub fn generate(model: &Model, _settings: &Settings) -> Files {
    let mut files = Files::default();
    for b in BACKENDS {
        b.generate(model, &mut files);
    }
    files
}
