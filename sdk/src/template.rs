//! `${VAR}` and `${VAR:default}` in store settings (urls, tokens, names),
//! expanded at run time: the one implementation every store uses.
//!
//! A `${NAME}` is replaced by the environment variable `NAME`, or by the
//! text after the first `:` when it is not set (`${NAME:}` gives the empty
//! text); a `${NAME}` without a default whose variable is not set, and an
//! unclosed `${`, are errors. Nothing else is special: there is no escape,
//! and a value is not expanded again.

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `${VAR}` without a default whose variable is not set.
    #[error("environment variable `{0}` is not set and has no default")]
    Missing(String),
    /// A `${` with no `}` after it (the whole template is given).
    #[error("unclosed `${{` in `{0}`")]
    Unclosed(String),
}

/// The old name of [`TemplateError`], when a missing variable was its only case.
#[deprecated(note = "use `strata_sdk::template::TemplateError`")]
pub type MissingVar = TemplateError;

/// Expands `${VAR}` and `${VAR:default}` from the environment.
///
/// ```
/// use strata_sdk::template::expand;
/// assert_eq!(expand("${STRATA_UNSET_X:http://h:1}/a").unwrap(), "http://h:1/a");
/// ```
pub fn expand(template: &str) -> Result<String, TemplateError> {
    expand_with(template, |v| std::env::var(v).ok())
}

/// Expands `${VAR}` and `${VAR:default}` with `lookup` giving each
/// variable's value.
///
/// ```
/// use strata_sdk::template::{expand_with, TemplateError};
/// let env = |v: &str| (v == "SET").then(|| "x".to_string());
/// assert_eq!(expand_with("a${SET}b${NOPE:}", env).unwrap(), "axb");
/// assert_eq!(expand_with("${NOPE}", env), Err(TemplateError::Missing("NOPE".into())));
/// assert!(matches!(expand_with("${NOPE", env), Err(TemplateError::Unclosed(_))));
/// ```
pub fn expand_with(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(TemplateError::Unclosed(template.to_string()));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match lookup(name).or_else(|| default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => return Err(TemplateError::Missing(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
