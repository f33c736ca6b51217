//! Pools from a store's settings: the URL is a template (`${VAR}`,
//! `${VAR:default}`) expanded at run time, never at build time, so the
//! generated crate holds no credentials.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Error, Result};

/// A postgres store's connection settings, as the schema gives them
/// (`pool:` and `replicas:`). Build it with `..Default::default()`: it
/// gains fields as the schema language does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// The store's name in the schema (`main`): the `store` label of metrics
    /// and health reports.
    pub store: String,
    /// The URL template, e.g. `${DATABASE_URL:postgres://127.0.0.1/app}`.
    pub url: String,
    /// Streaming replicas' URL templates (`replicas:`), expanded like `url`.
    pub replicas: Vec<String>,
    /// Most connections open at once (`pool.max`; sqlx's default 10).
    pub max: Option<u32>,
    /// Connections kept open even when idle (`pool.min`).
    pub min: Option<u32>,
    /// Longest wait for a pooled connection, in ms (`pool.acquire_timeout`),
    /// then [`Error::Timeout`].
    pub acquire_timeout_ms: Option<u64>,
    /// An idle connection is closed after this many ms (`pool.idle_timeout`).
    pub idle_timeout_ms: Option<u64>,
    /// A connection is closed once this old, in ms (`pool.max_lifetime`).
    pub max_lifetime_ms: Option<u64>,
    /// The server session's `statement_timeout`, in ms
    /// (`pool.statement_timeout`), sent in the startup packet of every
    /// connection; a statement that runs longer is [`Error::Timeout`].
    pub statement_timeout_ms: Option<u64>,
    /// The server session's `application_name` (`pool.application_name`),
    /// shown in `pg_stat_activity`.
    pub application_name: Option<String>,
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
        if let Some(ms) = self.max_lifetime_ms {
            o = o.max_lifetime(Duration::from_millis(ms));
        }
        o
    }
    /// Refuses settings no pool can work with ([`Error::Config`]): `max`
    /// 0 (sqlx would panic), `min` above `max`, an `acquire_timeout` of 0,
    /// a `statement_timeout` above PostgreSQL's 2,147,483,647 ms. `strata
    /// check` refuses the same in a schema; this guards a hand-built config.
    pub fn check(&self) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::Config(format!(
                "pool of store `{}`: {why}",
                self.store
            )))
        };
        if self.max == Some(0) {
            return bad("`max` is 0: such a pool can never connect");
        }
        if let (Some(min), Some(max)) = (self.min, self.max) {
            if min > max {
                return bad("`min` is above `max`");
            }
        }
        if self.acquire_timeout_ms == Some(0) {
            return bad("`acquire_timeout` is 0: every wait for a connection would fail");
        }
        if self
            .statement_timeout_ms
            .is_some_and(|ms| ms > i32::MAX as u64)
        {
            return bad("`statement_timeout` is above PostgreSQL's 2147483647 ms");
        }
        Ok(())
    }
    /// The connection options of `url` (expanded) with the session
    /// settings of this config (`statement_timeout`, `application_name`).
    pub fn connect_options(&self, url: &str) -> Result<PgConnectOptions> {
        let mut options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::Config(format!("the postgres URL does not parse: {e}")))?;
        if let Some(ms) = self.statement_timeout_ms {
            // `5000` is milliseconds to PostgreSQL; `SHOW` prints `5s`.
            options = options.options([("statement_timeout", ms.to_string())]);
        }
        if let Some(name) = &self.application_name {
            options = options.application_name(name);
        }
        Ok(options)
    }
    /// Connects a pool to the expanded URL. A failure is
    /// `Error::Connection` naming the host, port, database and user (never
    /// the password).
    pub async fn connect(&self) -> Result<PgPool> {
        self.check()?;
        let url = self.resolved_url()?;
        let options = self.connect_options(&url)?;
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
pub(crate) fn server(o: &PgConnectOptions) -> String {
    format!(
        "{}:{} (database {}, user {})",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("(default)"),
        o.get_username()
    )
}

/// Expands `${VAR}` and `${VAR:default}` with [`crate::template`], the one
/// template module of every store; a variable with neither a value nor a
/// default is an error naming it (never its would-be value).
pub fn expand_env(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    crate::template::expand_with(template, lookup).map_err(|e| Error::Config(e.to_string()))
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
