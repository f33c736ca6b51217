//! Pools from a store's settings: the URL is a template (`${VAR}`,
//! `${VAR:default}`) expanded at run time, never at build time, so the
//! generated crate holds no credentials.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Error, Result};

/// A postgres store's connection settings, as the schema gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// The URL template, e.g. `${DATABASE_URL:postgres://127.0.0.1/app}`.
    pub url: String,
    pub max: Option<u32>,
    pub min: Option<u32>,
    pub acquire_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
}

impl PoolConfig {
    pub fn new(url: impl Into<String>) -> Self {
        PoolConfig {
            url: url.into(),
            ..Default::default()
        }
    }
    /// The URL with every `${VAR}` expanded from the environment.
    pub fn resolved_url(&self) -> Result<String> {
        expand_env(&self.url, |v| std::env::var(v).ok())
    }
    pub fn options(&self) -> PgPoolOptions {
        let mut o = PgPoolOptions::new();
        if let Some(n) = self.max {
            o = o.max_connections(n);
        }
        if let Some(n) = self.min {
            o = o.min_connections(n);
        }
        if let Some(ms) = self.acquire_timeout_ms {
            o = o.acquire_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = self.idle_timeout_ms {
            o = o.idle_timeout(Duration::from_millis(ms));
        }
        o
    }
    /// Connects a pool to the expanded URL. A failure is
    /// `Error::Connection` naming the host, port, database and user (never
    /// the password).
    pub async fn connect(&self) -> Result<PgPool> {
        let url = self.resolved_url()?;
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::Config(format!("the postgres URL does not parse: {e}")))?;
        let at = server(&options);
        self.options()
            .connect_with(options)
            .await
            .map_err(|e| Error::Connection {
                message: format!("cannot connect to PostgreSQL at {at}: {e}"),
            })
    }
}

/// `host:port (database d, user u)` of connection options.
fn server(o: &PgConnectOptions) -> String {
    format!(
        "{}:{} (database {}, user {})",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("(default)"),
        o.get_username()
    )
}

/// Expands `${VAR}` and `${VAR:default}`; a variable with neither a value
/// nor a default is an error naming it (never its would-be value).
pub fn expand_env(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Error::Config(format!("unclosed `${{` in `{template}`")));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match lookup(name).or_else(|| default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(Error::Config(format!(
                    "environment variable `{name}` is not set and has no default"
                )))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand_env;

    #[tokio::test]
    async fn a_connection_failure_names_the_server_never_the_password() {
        let config = super::PoolConfig {
            acquire_timeout_ms: Some(2_000),
            ..super::PoolConfig::new("postgres://ada:s3cret-pw@127.0.0.1:9/ledger")
        };
        let e = config.connect().await.unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:9 (database ledger, user ada)"), "{e}");
        assert!(!e.contains("s3cret-pw"), "{e}");
    }

    #[test]
    fn expands_defaults_and_values() {
        let env = |v: &str| (v == "SET").then(|| "x".to_string());
        assert_eq!(expand_env("a${SET}b", env).unwrap(), "axb");
        assert_eq!(expand_env("${NOPE:p://h:1/d}", env).unwrap(), "p://h:1/d");
        assert_eq!(expand_env("${NOPE:}", env).unwrap(), "");
        assert!(expand_env("${NOPE}", env).is_err());
        assert!(expand_env("${NOPE", env).is_err());
    }
}
