//! `${VAR}` and `${VAR:default}` in store settings, expanded at run time.

/// A `${VAR}` without a default whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{0}` is not set and has no default")]
pub struct MissingVar(pub String);

/// Expands `${VAR}` and `${VAR:default}` from the environment.
///
/// ```
/// assert_eq!(strata_sdk::influx::expand("${STRATA_UNSET_X:http://h:1}/a").unwrap(), "http://h:1/a");
/// ```
pub fn expand(raw: &str) -> Result<String, MissingVar> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match std::env::var(name).ok().or(default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => return Err(MissingVar(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
