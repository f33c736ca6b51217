//! Diagnostics shared by every stage: a problem has a code, a message, a
//! labelled span in a schema file and, wherever we can give one, a help line.
//!
//! Every stage collects problems instead of stopping at the first one; the
//! pipeline reports them all at once as a [`Diagnostics`] error, which renders
//! through miette (`file:line:col`, the source line and an underline).

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::source::{Sources, Span};

/// One problem found in a schema.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Stable machine-readable code, e.g. `strata::unknown_key`.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Sets the help line unless one (such as a suggestion) is already there.
    pub fn help_or(self, help: impl Into<String>) -> Self {
        if self.help.is_none() {
            self.help(help)
        } else {
            self
        }
    }
    /// Adds a "did you mean" help when one of `candidates` is close to `got`.
    pub fn suggest<'a>(self, got: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(got, candidates) {
            Some(s) => self.help(format!("did you mean `{s}`?")),
            None => self,
        }
    }
}

/// The closest candidate by Jaro-Winkler similarity, if it is close enough.
pub fn did_you_mean<'a>(
    got: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = got.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A collector of problems, passed through a stage.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.list.push(p);
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// A single problem bound to its source file, renderable by miette.
#[derive(Debug)]
pub struct SchemaDiagnostic {
    problem: Problem,
    location: String,
    source: NamedSource<Arc<str>>,
}

impl SchemaDiagnostic {
    pub fn code(&self) -> &'static str {
        self.problem.code
    }
    /// `file:line:col` of the problem.
    pub fn location(&self) -> &str {
        &self.location
    }
    pub fn problem(&self) -> &Problem {
        &self.problem
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
        Some(Box::new(self.problem.code))
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
        let s = self.problem.span;
        let label = (!self.problem.label.is_empty()).then(|| self.problem.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new(
            label,
            s.start,
            s.len(),
        ))))
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
        let items = problems
            .into_iter()
            .map(|problem| {
                let file = sources.get(problem.span.file);
                SchemaDiagnostic {
                    location: sources.location(problem.span),
                    source: NamedSource::new(file.name.clone(), file.text.clone()),
                    problem,
                }
            })
            .collect();
        Diagnostics { items }
    }

    /// Renders every diagnostic without colour, the way the CLI prints them
    /// when stderr is not a terminal (and the way snapshot tests pin them).
    pub fn render_plain(&self) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&format!("error: {}: {}\n", d.location, d.problem.message));
            let _ = handler.render_report(&mut out, d);
        }
        out
    }

    /// `file:line:col: [code] message` lines, one per problem: for editors and grep.
    pub fn render_short(&self) -> String {
        self.items
            .iter()
            .map(|d| {
                format!(
                    "{}: error[{}]: {}\n",
                    d.location, d.problem.code, d.problem.message
                )
            })
            .collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.items.len();
        write!(
            f,
            "the schema has {n} error{}",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostic for Diagnostics {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.items.iter().map(|d| d as &dyn Diagnostic)))
    }
}
