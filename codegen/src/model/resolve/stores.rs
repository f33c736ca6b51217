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
                self.bad_name("store", &decl.name, NameStyle::SnakeCase);
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
                let kinds = StoreKindTag::ALL.iter().map(|(n, _)| *n);
                let suggestion = self.suggest(&d.kind, kinds);
                self.err(ResolveError::UnknownStoreKind {
                    at: d.kind.span,
                    got: d.kind.value.clone(),
                    suggestion,
                });
                return None;
            }
        };
        let url = d.url.as_ref().and_then(|u| self.template(u));
        let allowed: &'static [&'static str] = (crate::syntax::STORE_KIND_SETTINGS.iter())
            .find(|(kind, _)| *kind == tag.as_str())
            .map_or(&[], |(_, keys)| keys);
        let mut scalars: HashMap<&str, &Spanned<String>> = HashMap::new();
        let mut pool = PoolSettings::default();
        let mut replicas = Vec::new();
        for (key, setting) in &d.settings {
            if !allowed.contains(&key.as_str()) {
                self.err(ResolveError::SettingNotForKind {
                    at: key.span,
                    key: key.value.clone(),
                    kind: tag,
                    allowed,
                });
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
                self.err(ResolveError::PoolMinAboveMax { at, min, max });
            }
        }
        let ident = |r: &mut Self, key: &'static str| -> Option<String> {
            let v = scalars.get(key)?;
            if !is_snake_ident(v) {
                r.bad_name(key, v, NameStyle::SnakeCase);
            }
            Some(v.value.clone())
        };
        let kind = match tag {
            StoreKindTag::Postgres => {
                if let Some(v) = scalars.get("schema") {
                    // PostgreSQL refuses `pg_*` schema names and owns these.
                    if v.starts_with("pg_") || v.value == "information_schema" {
                        self.err(ResolveError::ReservedSchema {
                            at: v.span,
                            name: v.value.clone(),
                        });
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
                    let parsed = v
                        .split_once('.')
                        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                    if parsed.is_none() {
                        self.err(ResolveError::BadServerVersion { at: v.span });
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
                        self.err(ResolveError::BadPrecision { at: v.span });
                        Precision::Ns
                    }
                };
                let victoriametrics = match scalars.get("server").map(|v| v.as_str()) {
                    None | Some("influxdb") => false,
                    Some("victoriametrics") => true,
                    Some(_) => {
                        let v = scalars["server"];
                        self.err(ResolveError::BadServer { at: v.span });
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
        let limit = match (k.as_str(), ms) {
            ("acquire_timeout", 0) => PoolLimit::ZeroAcquireTimeout,
            ("idle_timeout" | "max_lifetime", 0) => PoolLimit::ZeroLifetime,
            ("statement_timeout", ms) if ms > PG_MAX_MS => PoolLimit::StatementTimeoutTooLong,
            _ => return true,
        };
        self.pool_range(k, v, limit);
        false
    }

    fn pool_range(&mut self, k: &ast::Name, v: &Spanned<String>, limit: PoolLimit) {
        self.err(ResolveError::PoolOutOfRange {
            at: v.span,
            key: k.value.clone(),
            found: v.value.clone(),
            limit,
        });
    }

    /// The keys of `pool: { … }`.
    fn pool(&mut self, entries: &[(ast::Name, Spanned<String>)], pool: &mut PoolSettings) {
        for (k, v) in entries {
            match k.as_str() {
                "max" | "min" => match v.parse::<u32>() {
                    Ok(0) if k.as_str() == "max" => {
                        self.pool_range(k, v, PoolLimit::ZeroConnections)
                    }
                    Ok(n) if k.as_str() == "max" => pool.max = Some(n),
                    Ok(n) => pool.min = Some(n),
                    Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                        self.err(ResolveError::PoolNumberTooLarge {
                            at: v.span,
                            key: k.value.clone(),
                            min: u32::from(k.as_str() == "max"),
                        })
                    }
                    Err(_) => self.err(ResolveError::PoolExpectedNumber {
                        at: v.span,
                        key: k.value.clone(),
                    }),
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
                        None if crate::syntax::duration_overflows(v) => {
                            self.err(ResolveError::PoolDurationTooLarge {
                                at: v.span,
                                key: k.value.clone(),
                            })
                        }
                        None => self.err(ResolveError::PoolExpectedDuration {
                            at: v.span,
                            key: k.value.clone(),
                        }),
                    }
                }
                "application_name" => {
                    // PostgreSQL truncates it at 63 bytes and shows only
                    // printable ASCII; refuse what it would change.
                    let ok = v.len() <= 63 && v.bytes().all(|b| (0x20..0x7f).contains(&b));
                    if ok {
                        pool.application_name = Some(v.value.clone());
                    } else {
                        self.err(ResolveError::BadApplicationName { at: v.span });
                    }
                }
                other => {
                    let known = crate::syntax::POOL_KEYS;
                    let suggestion = self.suggest(other, known.iter().copied());
                    self.err(ResolveError::UnknownPoolKey {
                        at: k.span,
                        key: other.to_string(),
                        suggestion,
                        known,
                    })
                }
            }
        }
    }

    /// A store setting whose value has the wrong shape (`pool: 10`,
    /// `replicas: "${URL}"`, `schema: [a]`).
    fn bad_shape(&mut self, key: &ast::Name) {
        self.err(ResolveError::BadSettingShape {
            at: key.span,
            key: key.value.clone(),
        });
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
                self.err(ResolveError::UnclosedTemplate { at: s.span });
                return None;
            };
            let inner = &after[..close];
            if inner.contains("${") {
                self.err(ResolveError::NestedTemplate { at: s.span });
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
                self.err(ResolveError::BadTemplateVar {
                    at: s.span,
                    name: name.to_string(),
                });
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
