//! Stores: kinds, per-kind settings and `${VAR}` templates.

use super::*;

impl Resolver<'_> {
    // ---- stores -------------------------------------------------------------------------

    pub(super) fn stores(&mut self, files: &[ast::SchemaFile]) -> BTreeMap<String, Store> {
        let mut out: BTreeMap<String, Store> = BTreeMap::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for decl in files.iter().flat_map(|f| &f.stores) {
            if let Some(&first) = seen.get(decl.name.as_str()) {
                self.duplicate("store", &decl.name, first);
                continue;
            }
            seen.insert(&decl.name.value, decl.name.span);
            if !is_snake_ident(&decl.name) {
                self.bad_name("store", &decl.name, "snake_case");
            }
            match self.store(decl) {
                Some(s) => {
                    out.insert(decl.name.value.clone(), s);
                }
                // Already reported: entities naming this store stay quiet.
                None => {
                    self.broken.insert(decl.name.value.clone());
                    self.stores_broken = true;
                }
            }
        }
        out
    }

    pub(super) fn store(&mut self, d: &ast::StoreDecl) -> Option<Store> {
        let tag = match StoreKindTag::ALL.iter().find(|(n, _)| *n == d.kind.value) {
            Some((_, t)) => *t,
            None => {
                self.err(
                    Problem::new(
                        Code::UnknownStoreKind,
                        d.kind.span,
                        format!("unknown store kind `{}`", d.kind.value),
                    )
                    .label("not a store kind")
                    .suggest_when(
                        self.probs,
                        &d.kind,
                        StoreKindTag::ALL.iter().map(|(n, _)| *n),
                    )
                    .help_or(
                        "store kinds are postgres, redis, clickhouse, elasticsearch and influxdb",
                    ),
                );
                return None;
            }
        };
        let url = d.url.as_ref().and_then(|u| self.template(u));
        let allowed: &[&str] = (crate::syntax::STORE_KIND_SETTINGS.iter())
            .find(|(kind, _)| *kind == tag.as_str())
            .map_or(&[], |(_, keys)| keys);
        let mut scalars: HashMap<&str, &Spanned<String>> = HashMap::new();
        let mut pool = PoolSettings::default();
        let mut replicas = Vec::new();
        for (key, setting) in &d.settings {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    Problem::new(
                        Code::SettingNotForKind,
                        key.span,
                        format!(
                            "`{}` is not a setting of a {} store",
                            key.value,
                            tag.as_str()
                        ),
                    )
                    .label("not for this kind")
                    .help(format!(
                        "a {} store takes: url, {}",
                        tag.as_str(),
                        allowed.join(", ")
                    )),
                );
                continue;
            }
            match (key.as_str(), setting) {
                ("pool", ast::Setting::Map(entries)) => self.pool(entries, &mut pool),
                ("replicas", ast::Setting::List(items)) => {
                    for item in items {
                        if let Some(t) = self.template(item) {
                            replicas.push(t);
                        }
                    }
                }
                (k, _) if k == "pool" || k == "replicas" => self.bad_shape(key),
                (_, ast::Setting::Scalar(v)) => {
                    scalars.insert(key.as_str(), v);
                }
                (_, _) => self.bad_shape(key),
            }
        }
        if let (Some(min), Some(max)) = (pool.min, pool.max) {
            if min > max {
                let at = d
                    .settings
                    .iter()
                    .find(|(k, _)| k.as_str() == "pool")
                    .map_or(d.span, |(k, _)| k.span);
                self.err(
                    Problem::new(
                        Code::BadSetting,
                        at,
                        format!("the pool's `min` ({min}) is above its `max` ({max})"),
                    )
                    .label("min > max")
                    .help("keep `min` at or below `max`"),
                );
            }
        }
        let ident = |r: &mut Self, key: &str| -> Option<String> {
            let v = scalars.get(key)?;
            if !is_snake_ident(v) {
                r.bad_name(key, v, "snake_case");
            }
            Some(v.value.clone())
        };
        let kind = match tag {
            StoreKindTag::Postgres => {
                if let Some(v) = scalars.get("schema") {
                    // PostgreSQL refuses `pg_*` schema names and owns these.
                    if v.starts_with("pg_") || v.value == "information_schema" {
                        self.err(
                            Problem::new(Code::BadSetting, v.span, format!("the schema name `{}` is reserved by PostgreSQL", v.value))
                                .label("reserved by PostgreSQL")
                                .help("pick a schema name of your own (not `pg_*` or `information_schema`), or leave `schema` out for `public`"),
                        );
                    }
                }
                StoreKind::Postgres {
                    pool,
                    schema: ident(self, "schema"),
                    replicas,
                }
            }
            StoreKindTag::Redis => StoreKind::Redis {
                key_prefix: scalars.get("key_prefix").map(|v| v.value.clone()),
            },
            StoreKindTag::ClickHouse => {
                let server_version = scalars.get("server_version").and_then(|v| {
                    let parsed = v.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                    if parsed.is_none() {
                        self.err(
                            Problem::new(Code::BadSetting, v.span, "`server_version` must be MAJOR.MINOR")
                                .label("not a version")
                                .help("write the ClickHouse release the DDL must run on, e.g. `\"18.16\"` or `\"24.8\"`"),
                        );
                    }
                    parsed
                });
                StoreKind::ClickHouse {
                    database: ident(self, "database"),
                    cluster: ident(self, "cluster"),
                    server_version,
                }
            }
            StoreKindTag::Elasticsearch => StoreKind::Elasticsearch {
                index_prefix: ident(self, "index_prefix"),
            },
            StoreKindTag::InfluxDb => {
                let t = |r: &mut Self, k: &str| scalars.get(k).and_then(|v| r.template(v));
                let precision = match scalars.get("precision").map(|p| p.as_str()) {
                    None | Some("ns") => Precision::Ns,
                    Some("us") => Precision::Us,
                    Some("ms") => Precision::Ms,
                    Some("s") => Precision::S,
                    Some(_) => {
                        let v = scalars["precision"];
                        self.err(
                            Problem::new(
                                Code::BadSetting,
                                v.span,
                                "`precision` must be ns, us, ms or s",
                            )
                            .label("unknown precision")
                            .help("the InfluxDB write API accepts ns, us, ms and s"),
                        );
                        Precision::Ns
                    }
                };
                let victoriametrics = match scalars.get("server").map(|v| v.as_str()) {
                    None | Some("influxdb") => false,
                    Some("victoriametrics") => true,
                    Some(_) => {
                        let v = scalars["server"];
                        self.err(
                            Problem::new(Code::BadSetting, v.span, "`server` must be influxdb or victoriametrics")
                                .label("unknown server")
                                .help("the server that reads the line protocol: `influxdb` (1.x or 2.x, the default) or `victoriametrics`"),
                        );
                        false
                    }
                };
                StoreKind::InfluxDb {
                    org: t(self, "org"),
                    bucket: t(self, "bucket"),
                    token: t(self, "token"),
                    precision,
                    victoriametrics,
                }
            }
        };
        Some(Store {
            name: d.name.value.clone(),
            kind,
            url,
            span: d.span,
        })
    }

    /// Whether a pool duration is one the pool and server can use: an
    /// `acquire_timeout`, `idle_timeout` or `max_lifetime` of 0 makes
    /// every wait fail or every connection close at once; PostgreSQL takes
    /// a `statement_timeout` up to 2,147,483,647 ms (0 means none).
    fn pool_duration_fits(&mut self, k: &ast::Name, v: &Spanned<String>, ms: u64) -> bool {
        const PG_MAX_MS: u64 = i32::MAX as u64;
        let (why, help) = match (k.as_str(), ms) {
            ("acquire_timeout", 0) => (
                "an `acquire_timeout` of 0 fails every wait for a connection",
                "write a duration such as `5s`, or remove the key for sqlx's default (30 s)",
            ),
            ("idle_timeout" | "max_lifetime", 0) => (
                "0 would close every connection as soon as it is returned",
                "write a duration such as `10m`, or remove the key for sqlx's default",
            ),
            ("statement_timeout", ms) if ms > PG_MAX_MS => (
                "PostgreSQL takes a `statement_timeout` of at most 2147483647 ms (about 24.8 days)",
                "write at most `24d`, or `0s` for no timeout",
            ),
            _ => return true,
        };
        self.pool_range(k, v, why, help);
        false
    }

    fn pool_range(&mut self, k: &ast::Name, v: &Spanned<String>, why: &str, help: &str) {
        self.err(
            Problem::new(
                Code::OutOfRange,
                v.span,
                format!("`{}` is out of range: {why}", k.value),
            )
            .label(v.value.clone())
            .help(help.to_string()),
        );
    }

    /// The keys of `pool: { … }`.
    fn pool(&mut self, entries: &[(ast::Name, Spanned<String>)], pool: &mut PoolSettings) {
        for (k, v) in entries {
            match k.as_str() {
                "max" | "min" => match v.parse::<u32>() {
                    Ok(0) if k.as_str() == "max" => self.pool_range(k, v, "a pool of 0 connections can never connect", "write `max: 1` or more"),
                    Ok(n) if k.as_str() == "max" => pool.max = Some(n),
                    Ok(n) => pool.min = Some(n),
                    Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => self.err(
                        Problem::new(
                            Code::OutOfRange,
                            v.span,
                            format!("`{}` is out of range", k.value),
                        )
                        .label("too large")
                        .help(format!(
                            "write a whole number from {} to {} (a pool holds at most as many connections as the server allows: PostgreSQL's `max_connections`, 100 by default)",
                            u32::from(k.as_str() == "max"),
                            u32::MAX
                        )),
                    ),
                    Err(_) => self.err(
                        Problem::new(
                            Code::ExpectedNumber,
                            v.span,
                            format!("`{}` must be a whole number", k.value),
                        )
                        .label("not a number")
                        .help("write a number such as `10`"),
                    ),
                },
                "acquire_timeout" | "idle_timeout" | "max_lifetime" | "statement_timeout" => {
                    match crate::syntax::parse_duration(v) {
                        Some(ms) if !self.pool_duration_fits(k, v, ms) => {}
                        Some(ms) => {
                            let slot = match k.as_str() {
                                "acquire_timeout" => &mut pool.acquire_timeout,
                                "idle_timeout" => &mut pool.idle_timeout,
                                "max_lifetime" => &mut pool.max_lifetime,
                                _ => &mut pool.statement_timeout,
                            };
                            *slot = Some(ms);
                        }
                        None if crate::syntax::duration_overflows(v) => self.err(
                            Problem::new(
                                Code::OutOfRange,
                                v.span,
                                format!("`{}` is out of range", k.value),
                            )
                            .label("too large")
                            .help(crate::syntax::DURATION_RANGE),
                        ),
                        None => self.err(
                            Problem::new(
                                Code::ExpectedDuration,
                                v.span,
                                format!("`{}` must be a duration", k.value),
                            )
                            .label("not a duration")
                            .help("write a number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`"),
                        ),
                    }
                }
                "application_name" => {
                    // PostgreSQL truncates it at 63 bytes and shows only
                    // printable ASCII; refuse what it would change.
                    let ok = v.len() <= 63 && v.bytes().all(|b| (0x20..0x7f).contains(&b));
                    if ok {
                        pool.application_name = Some(v.value.clone());
                    } else {
                        self.err(
                            Problem::new(
                                Code::BadSetting,
                                v.span,
                                "`application_name` must be at most 63 printable ASCII characters",
                            )
                            .label("PostgreSQL would change this name")
                            .help("write a short name such as `trading-api`"),
                        );
                    }
                }
                other => self.err(
                    Problem::new(
                        Code::UnknownKey,
                        k.span,
                        format!("unknown key `{other}` in `pool`"),
                    )
                    .label("unknown key")
                    .suggest_when(self.probs, other, crate::syntax::POOL_KEYS.iter().copied())
                    .help_or(format!(
                        "known keys: {}",
                        crate::syntax::POOL_KEYS.join(", ")
                    )),
                ),
            }
        }
    }

    /// A store setting whose value has the wrong shape (`pool: 10`,
    /// `replicas: "${URL}"`, `schema: [a]`).
    fn bad_shape(&mut self, key: &ast::Name) {
        let help = match key.as_str() {
            "pool" => "write `pool: { max: 10, acquire_timeout: 30s }`",
            "replicas" => "write a list of URL templates: `replicas: [\"${REPLICA_URL}\"]`",
            _ => "write a single value",
        };
        self.err(
            Problem::new(
                Code::BadSetting,
                key.span,
                format!("`{}` has the wrong shape", key.value),
            )
            .label("unexpected value")
            .help(help),
        );
    }

    /// Parses `${VAR}` and `${VAR:default}` references.
    pub(super) fn template(&mut self, s: &Spanned<String>) -> Option<Template> {
        let mut parts = Vec::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find("${") {
            if i > 0 {
                parts.push(TemplatePart::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let Some(close) = after.find('}') else {
                self.err(
                    Problem::new(Code::BadTemplate, s.span, "unclosed `${` in a setting")
                        .label("no closing `}`")
                        .help("write `${VAR}` or `${VAR:default}`"),
                );
                return None;
            };
            let inner = &after[..close];
            if inner.contains("${") {
                self.err(
                    Problem::new(Code::BadTemplate, s.span, "a `${` inside `${...}`")
                        .label("nested or unclosed variable")
                        .help(
                            "close each variable with `}`; a default cannot hold another variable",
                        ),
                );
                return None;
            }
            let (name, default) = match inner.split_once(':') {
                Some((n, d)) => (n, Some(d.to_string())),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                self.err(
                    Problem::new(
                        Code::BadTemplate,
                        s.span,
                        format!("`{name}` is not an environment variable name"),
                    )
                    .label("bad variable")
                    .help("variable names are letters, digits and `_`, as in `${DATABASE_URL}`"),
                );
                return None;
            }
            parts.push(TemplatePart::Var {
                name: name.to_string(),
                default,
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        Some(Template {
            raw: s.value.clone(),
            parts,
        })
    }
}
