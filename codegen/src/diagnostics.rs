//! Diagnostics shared by every stage: a problem has a code, a message, a
//! labelled span in a schema file and, wherever we can give one, a help line.
//!
//! Each stage reports typed errors, one enum in its own `error` module
//! ([`crate::syntax::error::SyntaxError`],
//! [`crate::model::resolve::error::ResolveError`], and one per back end);
//! each enum's `From<…> for Problem` is the one place its messages are
//! written, and its `code()` gives a problem's [`Code`] without rendering.
//! A [`Problem`] is the rendered, store-neutral record.
//!
//! Every stage collects problems instead of stopping at the first one; the
//! pipeline reports them all at once as a [`Diagnostics`] error, which renders
//! through miette (`file:line:col`, the source line and an underline).

use std::fmt;

use miette::{Diagnostic, LabeledSpan, SourceCode};

mod code;
mod excerpt;

pub use code::Code;
use excerpt::{shorten, IndexedFile};

use crate::source::{Sources, Span};

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    /// The schema is refused.
    #[default]
    Error,
    /// The schema compiles, but something in it is likely to fail at run
    /// time; reported by `strata check`, `strata generate` and build.rs.
    Warning,
}

/// One problem found in a schema.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Stable machine-readable code, e.g. `strata::unknown_key`.
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    pub severity: Severity,
    /// Other places the problem involves, each with its own label (the first
    /// declaration of a name declared twice). Places in another file than
    /// [`Problem::span`] are named in the help instead, as miette shows one
    /// file per diagnostic.
    pub also: Vec<(Span, String)>,
    /// A place the help names by `file:line:col`, written [`Problem::AT`] in
    /// the help and filled in by [`Diagnostics::new`]: stages without the
    /// source text (a back end's check) can still say where the other one is.
    pub help_at: Option<Span>,
    /// The stage's typed error this problem was rendered from: what a tool
    /// or test matches on instead of the message text. `None` only for a
    /// problem built with [`Problem::new`] outside a stage.
    pub error: Option<Box<StageError>>,
}

macro_rules! stage_errors {
    ($($(#[doc = $doc:literal])* $variant:ident($ty:path),)*) => {
        /// A problem as its stage typed it, one variant per stage (clorinde's
        /// `validation.rs` `mod error` is the model): the enum of each stage's
        /// `error.rs`.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum StageError {
            $($(#[doc = $doc])* $variant($ty),)*
        }

        impl StageError {
            /// The code of the typed error.
            pub fn code(&self) -> Code {
                match self {
                    $(StageError::$variant(e) => e.code(),)*
                }
            }
        }

        $(impl From<$ty> for StageError {
            fn from(e: $ty) -> Self {
                StageError::$variant(e)
            }
        })*
    };
}

stage_errors! {
    /// Files, YAML and shapes (`syntax/error.rs`).
    Syntax(crate::syntax::error::SyntaxError),
    /// The resolver (`model/resolve/error.rs`).
    Resolve(crate::model::resolve::error::ResolveError),
    /// The PostgreSQL back end (`postgres/error.rs`).
    Postgres(crate::postgres::error::PostgresError),
    /// The ClickHouse back end (`clickhouse/error.rs`).
    ClickHouse(crate::clickhouse::error::ClickhouseError),
    /// The Elasticsearch back end (`elasticsearch/error.rs`).
    Elasticsearch(crate::elasticsearch::error::ElasticsearchError),
    /// The InfluxDB back end (`influx/error.rs`).
    Influx(crate::influx::error::InfluxError),
    /// The Rust back end (`rust/error.rs`).
    Rust(crate::rust::error::RustError),
}

impl Problem {
    /// The rendered form of a stage's typed error, keeping it in
    /// [`Problem::error`]; each stage's `From<…> for Problem` calls this.
    pub fn typed(error: impl Into<StageError>, span: Span, message: impl Into<String>) -> Self {
        let error = error.into();
        let mut p = Problem::new(error.code(), span, message);
        p.error = Some(Box::new(error));
        p
    }

    /// A rendered problem without a typed error (see [`Problem::typed`]).
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Problem {
            error: None,
            code,
            also: Vec::new(),
            help_at: None,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
            severity: Severity::Error,
        }
    }
    /// Points at another place the problem involves, with its own label.
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.also.push((span, label.into()));
        self
    }
    /// Makes the problem a warning: reported, but the schema compiles.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Sets a help line naming where `place` is: [`Problem::AT`] in `help`
    /// becomes its `file:line:col` when rendered.
    pub fn help_at(mut self, place: Span, help: impl Into<String>) -> Self {
        self.help_at = Some(place);
        self.help(help)
    }
    /// The mark [`Problem::help_at`] replaces with a location.
    pub const AT: &'static str = "{at}";
}

/// The closest candidate, if it is close enough: within a few edits
/// (transpositions count as one, so `NWE` finds `NEW`) or very similar by
/// Jaro-Winkler (which favours a shared prefix, so `created` finds `created_at`).
pub fn did_you_mean<'a>(
    got: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Names are at most 63 bytes: nothing is close to a longer text, and
    // comparing one costs its length times each candidate's.
    if got.len() > 2 * crate::names::MAX_SQL_IDENT {
        return None;
    }
    let lower = got.to_ascii_lowercase();
    let max_edits = match lower.chars().count() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != got)
        .filter_map(|c| {
            let other = c.to_ascii_lowercase();
            let edits = strsim::osa_distance(&lower, &other);
            let similar = strsim::jaro_winkler(&lower, &other);
            (edits <= max_edits || similar >= 0.85).then_some((edits, similar, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

/// After this many problems, no more "did you mean" suggestions are computed:
/// each costs a scan of the candidates, and a schema with thousands of errors
/// must still be reported quickly.
pub const SUGGESTION_BUDGET: usize = 200;

/// At most this many problems are rendered in full; the rest are counted.
pub const MAX_RENDERED: usize = 200;

/// Most candidate comparisons all suggestions of one run may cost together.
pub const SUGGESTION_WORK: usize = 50_000;

/// A collector of problems, passed through a stage.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
    /// Candidate comparisons spent on suggestions so far.
    spent: std::cell::Cell<usize>,
}

impl Problems {
    /// Collects a problem: a stage's typed error, rendered by its
    /// `From<…> for Problem`, or a [`Problem`] already rendered.
    pub fn push(&mut self, p: impl Into<Problem>) {
        self.list.push(p.into());
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Whether suggestions are still worth computing (see [`SUGGESTION_BUDGET`]).
    pub fn wants_suggestions(&self) -> bool {
        self.list.len() < SUGGESTION_BUDGET && self.spent.get() < SUGGESTION_WORK
    }
}

impl Problems {
    /// The "did you mean" candidate for `got`, while there is suggestion
    /// budget left ([`Problems::wants_suggestions`]), charging it for the
    /// comparisons. A typed error carries the answer as its `suggestion`.
    pub fn suggestion<'a>(
        &self,
        got: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        if !self.wants_suggestions() {
            return None;
        }
        let mut compared = 0;
        let counted = candidates.into_iter().inspect(|_| compared += 1);
        let found = did_you_mean(got, counted).map(str::to_string);
        self.spent.set(self.spent.get() + compared);
        found
    }
}

/// The help line of a did-you-mean suggestion.
pub(crate) fn did_you_mean_help(suggestion: &str) -> String {
    format!("did you mean `{suggestion}`?")
}

/// Gives a stage's error enum `code()` and `CODES` from one table of
/// `Variant => Code`: the `match` is exhaustive, so every variant has its
/// code, and `CODES` lists exactly the codes the variants can have (the
/// registry test checks that every [`Code`] is some variant's).
macro_rules! stage_codes {
    ($ty:ident { $($variant:ident => $code:ident,)* }) => {
        impl $ty {
            /// Every code a variant of this enum can have.
            pub const CODES: &'static [$crate::diagnostics::Code] =
                &[$($crate::diagnostics::Code::$code),*];

            /// The code of this problem, without rendering it.
            pub fn code(&self) -> $crate::diagnostics::Code {
                match self {
                    $(Self::$variant { .. } => $crate::diagnostics::Code::$code,)*
                }
            }
        }
    };
}
pub(crate) use stage_codes;

/// A single problem bound to its source file, renderable by miette.
#[derive(Debug)]
pub struct SchemaDiagnostic {
    problem: Problem,
    location: String,
    source: IndexedFile,
    /// The problem's span, clamped for rendering.
    at: (usize, usize),
    /// The other places in the same file, clamped, with their labels.
    also: Vec<((usize, usize), String)>,
}

impl SchemaDiagnostic {
    pub fn code(&self) -> &'static str {
        self.problem.code.as_str()
    }
    /// `file:line:col` of the problem.
    pub fn location(&self) -> &str {
        &self.location
    }
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
    fn severity_word(&self) -> &'static str {
        match self.problem.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for SchemaDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problem.message)
    }
}

impl std::error::Error for SchemaDiagnostic {}

impl Diagnostic for SchemaDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code.as_str()))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (start, end) = self.at;
        let label = (!self.problem.label.is_empty()).then(|| self.problem.label.clone());
        let primary = LabeledSpan::new_primary_with_span(label, (start, end - start));
        let others =
            (self.also.iter()).map(|((s, e), l)| LabeledSpan::new(Some(l.clone()), *s, e - s));
        Some(Box::new(std::iter::once(primary).chain(others)))
    }
}

/// Every problem of a failed compilation. Renders each one in turn.
#[derive(Debug)]
pub struct Diagnostics {
    pub items: Vec<SchemaDiagnostic>,
}

impl Diagnostics {
    pub fn new(sources: &Sources, mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.message.cmp(&b.message)));
        problems.dedup_by(|a, b| a.span == b.span && a.message == b.message);
        let mut files: Vec<Option<IndexedFile>> = vec![None; sources.files.len()];
        let items = problems
            .into_iter()
            .filter(|p| p.span.file < sources.files.len())
            .map(|mut problem| {
                if let (Some(place), Some(h)) = (problem.help_at, &mut problem.help) {
                    if place.file < sources.files.len() {
                        let f = files[place.file].get_or_insert_with(|| {
                            let f = sources.get(place.file);
                            IndexedFile::new(&f.name, &f.text)
                        });
                        *h = h.replace(Problem::AT, &f.location(f.clamp(place).0));
                    }
                }
                shorten(&mut problem.message);
                shorten(&mut problem.label);
                if let Some(h) = &mut problem.help {
                    shorten(h);
                }
                let file = files[problem.span.file].get_or_insert_with(|| {
                    let f = sources.get(problem.span.file);
                    IndexedFile::new(&f.name, &f.text)
                });
                let at = file.clamp(problem.span);
                let also = (problem.also.iter())
                    .filter(|(s, _)| s.file == problem.span.file)
                    .map(|(s, l)| (file.clamp(*s), l.clone()))
                    .collect();
                let location = file.location(at.0);
                SchemaDiagnostic {
                    location,
                    source: file.clone(),
                    at,
                    also,
                    problem,
                }
            })
            .collect();
        Diagnostics { items }
    }

    #[cfg(feature = "yaml")]
    /// Renders every diagnostic without colour, the way the CLI prints them
    /// when stderr is not a terminal (and the way snapshot tests pin them).
    /// Past [`MAX_RENDERED`] problems, only their `file:line:col` lines are printed.
    pub fn render_plain(&self) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        for (i, d) in self.items.iter().enumerate() {
            out.push_str(&format!(
                "{}: {}: {}\n",
                d.severity_word(),
                d.location,
                d.problem.message
            ));
            if i < MAX_RENDERED {
                let _ = handler.render_report(&mut out, d);
            }
        }
        out
    }

    /// `file:line:col: [code] message` lines, one per problem: for editors and grep.
    pub fn render_short(&self) -> String {
        self.items
            .iter()
            .map(|d| {
                format!(
                    "{}: {}[{}]: {}\n",
                    d.location,
                    d.severity_word(),
                    d.problem.code,
                    d.problem.message
                )
            })
            .collect()
    }
}

impl Diagnostics {
    /// How many of the problems are errors (the rest are warnings).
    pub fn errors(&self) -> usize {
        self.items.iter().filter(|d| d.problem.is_error()).count()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let (errors, warnings) = (self.errors(), self.items.len() - self.errors());
        match (errors, warnings) {
            (0, w) => write!(f, "the schema has {w} warning{}", plural(w)),
            (e, 0) => write!(f, "the schema has {e} error{}", plural(e)),
            (e, w) => write!(
                f,
                "the schema has {e} error{} and {w} warning{}",
                plural(e),
                plural(w)
            ),
        }
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostic for Diagnostics {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.items.iter().map(|d| d as &dyn Diagnostic)))
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    /// Every code some stage can produce, by the stages' own tables.
    fn produced() -> std::collections::BTreeSet<Code> {
        [
            crate::LoadError::CODES,
            crate::syntax::error::SyntaxError::CODES,
            crate::model::resolve::error::ResolveError::CODES,
            crate::postgres::error::PostgresError::CODES,
            crate::clickhouse::error::ClickhouseError::CODES,
            crate::elasticsearch::error::ElasticsearchError::CODES,
            crate::influx::error::InfluxError::CODES,
            crate::rust::error::RustError::CODES,
        ]
        .concat()
        .into_iter()
        .collect()
    }

    #[test]
    fn every_code_is_produced_by_some_stage() {
        let produced = produced();
        let dead: Vec<&str> = (Code::ALL.iter())
            .filter(|c| !produced.contains(c))
            .map(|c| c.as_str())
            .collect();
        assert!(dead.is_empty(), "codes no stage produces: {dead:?}");
        assert_eq!(produced.len(), Code::ALL.len());
    }

    #[test]
    fn a_typed_error_knows_its_code_without_rendering() {
        use crate::model::resolve::error::ResolveError;
        use crate::source::Span;
        let e = ResolveError::UnknownStoreKind {
            at: Span::new(0, 0, 4),
            got: "postgress".into(),
            suggestion: Some("postgres".into()),
        };
        assert_eq!(e.code(), Code::UnknownStoreKind);
        let p = super::Problem::from(e);
        assert_eq!(p.code, Code::UnknownStoreKind);
        assert_eq!(p.help.as_deref(), Some("did you mean `postgres`?"));
    }
}
