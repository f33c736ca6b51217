//! Resolution and validation: the schema AST of every file → one checked [`Model`].
//!
//! The passes run in order (stores, enums, entity shells, fields, keys and
//! constraints, queries, sync) and each collects every problem it finds.

use std::collections::{BTreeMap, HashMap};

use heck::{ToSnakeCase, ToUpperCamelCase};

use super::types::{parse_type, TypeError, BUILTIN_TYPES};
use super::*;
use crate::diagnostics::{Problem, Problems};
use crate::names::{is_enum_value, is_snake_ident, is_type_ident, MAX_SQL_IDENT};
use crate::source::{Sources, Spanned};
use crate::syntax::ast::{self, DefaultLit, Filter};

/// Builds the model from every file's AST. Returns `None` when any problem was found.
pub fn resolve(
    sources: &Sources,
    files: &[ast::SchemaFile],
    probs: &mut Problems,
) -> Option<Model> {
    let before = probs.list.len();
    let mut r = Resolver { sources, probs };
    let stores = r.stores(files);
    let enums = r.enums(files);
    let enum_names: HashMap<&str, &Enum> =
        enums.iter().map(|e| (e.name.schema.as_str(), e)).collect();
    let decls = r.unique_entities(files);
    let mut entities: Vec<Entity> = decls
        .iter()
        .map(|d| r.entity(d, &stores, &enum_names))
        .collect();
    r.references(&decls, &mut entities);
    r.table_names(&entities);
    let sync = r.sync(files, &stores, &entities);
    (probs_len(r.probs) == before).then_some(Model {
        stores,
        enums,
        entities,
        sync,
    })
}

fn probs_len(p: &Problems) -> usize {
    p.list.len()
}

struct Resolver<'a> {
    sources: &'a Sources,
    probs: &'a mut Problems,
}

impl Resolver<'_> {
    fn err(&mut self, p: Problem) {
        self.probs.push(p);
    }

    fn duplicate(&mut self, what: &str, name: &Spanned<String>, first: Span) {
        let at = self.sources.location(first);
        self.err(
            Problem::new(
                "strata::duplicate_name",
                name.span,
                format!("{what} `{}` is declared twice", name.value),
            )
            .label("declared again here")
            .help(format!(
                "the first declaration is at {at}; rename or remove one of them"
            )),
        );
    }

    // ---- stores -------------------------------------------------------------------------

    fn stores(&mut self, files: &[ast::SchemaFile]) -> BTreeMap<String, Store> {
        let mut out: BTreeMap<String, Store> = BTreeMap::new();
        for decl in files.iter().flat_map(|f| &f.stores) {
            if let Some(prev) = out.get(&decl.name.value) {
                let first = prev.span;
                self.duplicate("store", &decl.name, first);
                continue;
            }
            if !is_snake_ident(&decl.name) {
                self.bad_name("store", &decl.name, "snake_case");
            }
            if let Some(s) = self.store(decl) {
                out.insert(decl.name.value.clone(), s);
            }
        }
        out
    }

    fn store(&mut self, d: &ast::StoreDecl) -> Option<Store> {
        let tag = match StoreKindTag::ALL.iter().find(|(n, _)| *n == d.kind.value) {
            Some((_, t)) => *t,
            None => {
                self.err(
                    Problem::new(
                        "strata::unknown_store_kind",
                        d.kind.span,
                        format!("unknown store kind `{}`", d.kind.value),
                    )
                    .label("not a store kind")
                    .suggest(&d.kind, StoreKindTag::ALL.iter().map(|(n, _)| *n))
                    .help_or(
                        "store kinds are postgres, redis, clickhouse, elasticsearch and influxdb",
                    ),
                );
                return None;
            }
        };
        let url = d.url.as_ref().and_then(|u| self.template(u));
        let allowed: &[&str] = match tag {
            StoreKindTag::Postgres => &["pool", "schema"],
            StoreKindTag::Redis => &["key_prefix"],
            StoreKindTag::ClickHouse => &["database", "cluster", "server_version"],
            StoreKindTag::Elasticsearch => &["index_prefix"],
            StoreKindTag::InfluxDb => &["org", "bucket", "token", "precision"],
        };
        let mut scalars: HashMap<&str, &Spanned<String>> = HashMap::new();
        let mut pool = PoolSettings::default();
        for (key, setting) in &d.settings {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    Problem::new(
                        "strata::setting_not_for_kind",
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
                ("pool", ast::Setting::Map(entries)) => {
                    for (k, v) in entries {
                        match k.as_str() {
                            "max" | "min" => match v.parse::<u32>() {
                                Ok(n) if k.as_str() == "max" => pool.max = Some(n),
                                Ok(n) => pool.min = Some(n),
                                Err(_) => self.err(
                                    Problem::new("strata::expected_number", v.span, format!("`{}` must be a whole number", k.value))
                                        .label("not a number")
                                        .help("write a number such as `10`"),
                                ),
                            },
                            "acquire_timeout" | "idle_timeout" => match crate::syntax::parse_duration(v) {
                                Some(ms) if k.as_str() == "acquire_timeout" => pool.acquire_timeout = Some(ms),
                                Some(ms) => pool.idle_timeout = Some(ms),
                                None => self.err(
                                    Problem::new("strata::expected_duration", v.span, format!("`{}` must be a duration", k.value))
                                        .label("not a duration")
                                        .help("write a number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`"),
                                ),
                            },
                            other => self.err(
                                Problem::new("strata::unknown_key", k.span, format!("unknown key `{other}` in `pool`"))
                                    .label("unknown key")
                                    .suggest(other, ["max", "min", "acquire_timeout", "idle_timeout"])
                                    .help_or("known keys: max, min, acquire_timeout, idle_timeout"),
                            ),
                        }
                    }
                }
                (_, ast::Setting::Scalar(v)) if key.as_str() != "pool" => {
                    scalars.insert(key.as_str(), v);
                }
                (k, _) => self.err(
                    Problem::new(
                        "strata::bad_setting",
                        key.span,
                        format!("`{k}` has the wrong shape"),
                    )
                    .label("unexpected value")
                    .help(if k == "pool" {
                        "write `pool: { max: 10, acquire_timeout: 30s }`"
                    } else {
                        "write a single value"
                    }),
                ),
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
            StoreKindTag::Postgres => StoreKind::Postgres {
                pool,
                schema: ident(self, "schema"),
            },
            StoreKindTag::Redis => StoreKind::Redis {
                key_prefix: scalars.get("key_prefix").map(|v| v.value.clone()),
            },
            StoreKindTag::ClickHouse => {
                let server_version = scalars.get("server_version").and_then(|v| {
                    let parsed = v.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                    if parsed.is_none() {
                        self.err(
                            Problem::new("strata::bad_setting", v.span, "`server_version` must be MAJOR.MINOR")
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
                                "strata::bad_setting",
                                v.span,
                                "`precision` must be ns, us, ms or s",
                            )
                            .label("unknown precision")
                            .help("the InfluxDB write API accepts ns, us, ms and s"),
                        );
                        Precision::Ns
                    }
                };
                StoreKind::InfluxDb {
                    org: t(self, "org"),
                    bucket: t(self, "bucket"),
                    token: t(self, "token"),
                    precision,
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

    /// Parses `${VAR}` and `${VAR:default}` references.
    fn template(&mut self, s: &Spanned<String>) -> Option<Template> {
        let mut parts = Vec::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find("${") {
            if i > 0 {
                parts.push(TemplatePart::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let Some(close) = after.find('}') else {
                self.err(
                    Problem::new("strata::bad_template", s.span, "unclosed `${` in a setting")
                        .label("no closing `}`")
                        .help("write `${VAR}` or `${VAR:default}`"),
                );
                return None;
            };
            let inner = &after[..close];
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
                        "strata::bad_template",
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

    fn bad_name(&mut self, what: &str, name: &Spanned<String>, style: &str) {
        let example = match style {
            "UpperCamelCase" => name.value.to_upper_camel_case(),
            _ => name.value.to_snake_case(),
        };
        let hint = if name.len() > MAX_SQL_IDENT {
            format!("names are at most {MAX_SQL_IDENT} bytes")
        } else if !example.is_empty() && example != name.value {
            format!("{what} names are {style} ASCII; try `{example}`")
        } else {
            format!("{what} names are {style} ASCII letters, digits and `_`")
        };
        self.err(
            Problem::new(
                "strata::bad_identifier",
                name.span,
                format!("`{}` is not a valid {what} name", name.value),
            )
            .label("not a safe identifier")
            .help(hint),
        );
    }

    // ---- enums --------------------------------------------------------------------------

    fn enums(&mut self, files: &[ast::SchemaFile]) -> Vec<Enum> {
        let mut out: Vec<Enum> = Vec::new();
        for d in files.iter().flat_map(|f| &f.enums) {
            if let Some(prev) = out.iter().find(|e| e.name.schema == d.name.value) {
                let first = prev.span;
                self.duplicate("enum", &d.name, first);
                continue;
            }
            if BUILTIN_TYPES.contains(&d.name.as_str()) || !is_type_ident(&d.name) {
                self.bad_name("enum", &d.name, "UpperCamelCase");
            }
            let sql = match &d.sql_name {
                Some(n) => {
                    if !is_snake_ident(n) {
                        self.bad_name("SQL type", n, "snake_case");
                    }
                    n.value.clone()
                }
                None => d.name.value.to_snake_case(),
            };
            if d.values.is_empty() {
                self.err(
                    Problem::new(
                        "strata::empty_enum",
                        d.name.span,
                        format!("enum `{}` has no values", d.name.value),
                    )
                    .label("no values")
                    .help("list its values: `Side: [BUY, SELL]`"),
                );
            }
            let mut variants: Vec<EnumVariant> = Vec::new();
            for v in &d.values {
                if !is_enum_value(v) {
                    self.bad_name("enum value", v, "letter-first ASCII");
                    continue;
                }
                let rust = v.value.to_lowercase().to_upper_camel_case();
                if let Some(prev) = variants
                    .iter()
                    .find(|p| p.name.schema == v.value || p.name.rust == rust)
                {
                    let first = prev.span;
                    self.duplicate("enum value", v, first);
                    continue;
                }
                variants.push(EnumVariant {
                    name: Ident {
                        schema: v.value.clone(),
                        sql: v.value.clone(),
                        rust,
                    },
                    span: v.span,
                });
            }
            out.push(Enum {
                name: Ident {
                    schema: d.name.value.clone(),
                    sql,
                    rust: d.name.value.clone(),
                },
                variants,
                doc: d.doc.clone(),
                span: d.span,
            });
        }
        out
    }

    // ---- entities -----------------------------------------------------------------------

    fn unique_entities<'f>(&mut self, files: &'f [ast::SchemaFile]) -> Vec<&'f ast::EntityDecl> {
        let mut out: Vec<&ast::EntityDecl> = Vec::new();
        for d in files.iter().flat_map(|f| &f.entities) {
            if let Some(prev) = out.iter().find(|e| e.name.value == d.name.value) {
                let first = prev.name.span;
                self.duplicate("entity", &d.name, first);
                continue;
            }
            out.push(d);
        }
        out
    }

    fn entity(
        &mut self,
        d: &ast::EntityDecl,
        stores: &BTreeMap<String, Store>,
        enums: &HashMap<&str, &Enum>,
    ) -> Entity {
        if !is_type_ident(&d.name) {
            self.bad_name("entity", &d.name, "UpperCamelCase");
        }
        let store = self.entity_store(d, stores);
        let store_kind = stores.get(&store).map(|s| s.kind.tag());
        let table = match &d.table {
            Some(t) => {
                if !is_snake_ident(t) {
                    self.bad_name("table", t, "snake_case");
                }
                t.value.clone()
            }
            None => d.name.value.to_snake_case(),
        };
        let mut e = Entity {
            name: Ident {
                schema: d.name.value.clone(),
                sql: table,
                rust: d.name.value.clone(),
            },
            doc: d.doc.clone(),
            store,
            kind: EntityKind::Record,
            fields: Vec::new(),
            key: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
            queries: Vec::new(),
            cache: None,
            search: None,
            partition_by: None,
            version: None,
            renamed_from: None,
            span: d.span,
        };
        if let Some(r) = &d.renamed_from {
            if !is_snake_ident(r) {
                self.bad_name("table", r, "snake_case");
            }
            e.renamed_from = Some(r.value.clone());
        }
        for f in &d.fields {
            if let Some(prev) = e.fields.iter().find(|p| p.name.schema == f.name.value) {
                let first = prev.span;
                self.duplicate("field", &f.name, first);
                continue;
            }
            if let Some(field) = self.field(f, enums) {
                e.fields.push(field);
            }
        }
        let series = store_kind == Some(StoreKindTag::InfluxDb);
        if d.timestamps.as_ref().is_some_and(|t| t.value) {
            let span = d.timestamps.as_ref().map(|t| t.span).unwrap_or(d.span);
            for (name, role) in [
                ("created_at", FieldRole::CreatedAt),
                ("updated_at", FieldRole::UpdatedAt),
            ] {
                self.builtin_field(
                    &mut e,
                    name,
                    Type::Scalar(ScalarType::Timestamptz),
                    Some(Default::Now),
                    role,
                    span,
                );
            }
        }
        if d.version.as_ref().is_some_and(|t| t.value) {
            let span = d.version.as_ref().map(|t| t.span).unwrap_or(d.span);
            let ty = Type::Scalar(ScalarType::I64);
            if self.builtin_field(
                &mut e,
                "version",
                ty,
                Some(Default::Int("1".into())),
                FieldRole::Version,
                span,
            ) {
                e.version = Some(e.fields.len() - 1);
            }
        }
        if series {
            self.series(d, &mut e);
        } else {
            for (what, n) in [("time", &d.time), ("measurement", &d.measurement)] {
                if let Some(n) = n {
                    self.not_series(what, n.span);
                }
            }
            if let Some(t) = d.tags.first() {
                self.not_series("tags", t.span);
            }
            self.key(d, &mut e);
        }
        self.uniques(d, &mut e);
        self.indexes(d, &mut e, enums);
        self.queries(d, &mut e, enums);
        self.cache_search(d, &mut e, stores);
        if let Some(p) = &d.partition_by {
            if let Some(i) = self.field_ref(&e, p) {
                if !matches!(
                    e.fields[i].ty,
                    Type::Scalar(ScalarType::Timestamptz | ScalarType::Date)
                ) {
                    self.err(
                        Problem::new(
                            "strata::bad_partition",
                            p.span,
                            format!("`{}` is not a time field", p.value),
                        )
                        .label(format!("is {}", e.fields[i].ty))
                        .help("partition by a `timestamptz` or `date` field, such as `created_at`"),
                    );
                }
                e.partition_by = Some(i);
            }
        }
        e
    }

    fn not_series(&mut self, what: &str, span: Span) {
        self.err(
            Problem::new("strata::series_only", span, format!("`{what}` is only for time-series entities"))
                .label("not a series entity")
                .help("`time`, `tags` and `measurement` apply to entities whose store is an influxdb store"),
        );
    }

    fn entity_store(&mut self, d: &ast::EntityDecl, stores: &BTreeMap<String, Store>) -> String {
        match &d.store {
            Some(s) if stores.contains_key(&s.value) => s.value.clone(),
            Some(s) => {
                self.err(
                    Problem::new(
                        "strata::unknown_store",
                        s.span,
                        format!("no store named `{}`", s.value),
                    )
                    .label("unknown store")
                    .suggest(s, stores.keys().map(String::as_str))
                    .help_or(format!("declared stores: {}", list(stores.keys()))),
                );
                s.value.clone()
            }
            None => {
                let mut pg = stores
                    .values()
                    .filter(|s| s.kind.tag() == StoreKindTag::Postgres);
                match (pg.next(), pg.next()) {
                    (Some(only), None) => only.name.clone(),
                    _ => {
                        self.err(
                            Problem::new("strata::missing_key", d.name.span, format!("entity `{}` has no `store`", d.name.value))
                                .label("needs `store:`")
                                .help("name the store it lives in; it may be left out only when there is exactly one postgres store"),
                        );
                        String::new()
                    }
                }
            }
        }
    }

    /// Adds `created_at`/`updated_at`/`version`; false when the name is taken.
    fn builtin_field(
        &mut self,
        e: &mut Entity,
        name: &str,
        ty: Type,
        default: Option<Default>,
        role: FieldRole,
        span: Span,
    ) -> bool {
        if let Some(f) = e.fields.iter().find(|f| f.name.schema == name) {
            self.err(
                Problem::new("strata::reserved_field", f.span, format!("field `{name}` clashes with a maintained column"))
                    .label("declared by hand")
                    .help(match role {
                        FieldRole::Version => "`version: true` adds this column; remove the field or the setting",
                        _ => "`timestamps: true` adds created_at and updated_at; remove the field or the setting",
                    }),
            );
            return false;
        }
        e.fields.push(Field {
            name: Ident {
                schema: name.into(),
                sql: name.into(),
                rust: name.into(),
            },
            ty,
            nullable: false,
            default,
            role,
            references: None,
            renamed_from: None,
            doc: None,
            span,
        });
        true
    }

    fn field(&mut self, f: &ast::FieldDecl, enums: &HashMap<&str, &Enum>) -> Option<Field> {
        if !is_snake_ident(&f.name) {
            self.bad_name("field", &f.name, "snake_case");
        }
        let mut ty = match parse_type(&f.ty, |n| enums.contains_key(n)) {
            Ok(t) => t,
            Err(TypeError::Unknown(name)) => {
                let candidates: Vec<&str> = BUILTIN_TYPES
                    .iter()
                    .copied()
                    .chain(enums.keys().copied())
                    .collect();
                self.err(
                    Problem::new(
                        "strata::unknown_type",
                        f.ty.span,
                        format!("unknown type `{name}`"),
                    )
                    .label("not a type")
                    .suggest(&name, candidates.iter().copied())
                    .help_or(format!(
                        "types are {}, decimal(p,s), string(n), `T[]` arrays and enum names",
                        BUILTIN_TYPES.join(", ")
                    )),
                );
                return None;
            }
            Err(TypeError::Malformed(why)) => {
                self.err(
                    Problem::new(
                        "strata::bad_type",
                        f.ty.span,
                        format!("invalid type `{}`", f.ty.value),
                    )
                    .label("malformed type")
                    .help(why),
                );
                return None;
            }
        };
        if let Some(max) = &f.max {
            match &mut ty {
                Type::Scalar(ScalarType::String { max: m @ None }) | Type::Array(ScalarType::String { max: m @ None })
                    if max.value >= 1 =>
                {
                    *m = Some(max.value)
                }
                _ => self.err(
                    Problem::new("strata::bad_max", max.span, "`max` applies to a `string` field without a length")
                        .label("not applicable")
                        .help("write `type: string, max: 20` or `string(20)`, not both; other types take no `max`"),
                ),
            }
        }
        let nullable = f.nullable.as_ref().is_some_and(|n| n.value);
        let default = f.default.as_ref().and_then(|d| self.default(d, &ty, enums));
        let mut renamed_from = None;
        if let Some(r) = &f.renamed_from {
            if !is_snake_ident(r) {
                self.bad_name("field", r, "snake_case");
            }
            renamed_from = Some(r.value.clone());
        }
        if f.on_delete.is_some() && f.references.is_none() {
            let s = f.on_delete.as_ref().map(|o| o.span).unwrap_or(f.span);
            self.err(
                Problem::new(
                    "strata::on_delete_without_reference",
                    s,
                    "`on_delete` needs `references`",
                )
                .label("no reference")
                .help("add `references: Entity` to this field, or remove `on_delete`"),
            );
        }
        Some(Field {
            name: Ident {
                schema: f.name.value.clone(),
                sql: f.name.value.clone(),
                rust: f.name.value.clone(),
            },
            ty,
            nullable,
            default,
            role: FieldRole::Data,
            references: None, // filled by `references` once every entity is known
            renamed_from,
            doc: f.doc.clone(),
            span: f.span,
        })
    }

    /// Checks a literal against a type.
    fn default(
        &mut self,
        d: &Spanned<DefaultLit>,
        ty: &Type,
        enums: &HashMap<&str, &Enum>,
    ) -> Option<Default> {
        let (text, quoted) = match &d.value {
            DefaultLit::Plain(s) => (s.as_str(), false),
            DefaultLit::Quoted(s) => (s.as_str(), true),
        };
        let bad = |r: &mut Self, help: String| {
            r.err(
                Problem::new(
                    "strata::bad_default",
                    d.span,
                    format!("`{text}` is not a valid value for a `{ty}` field"),
                )
                .label("wrong value")
                .help(help),
            );
            None
        };
        if ty.is_array() {
            return if text == "empty" && !quoted {
                Some(Default::EmptyArray)
            } else {
                bad(self, "an array field's only default is `empty`".into())
            };
        }
        match ty.scalar() {
            ScalarType::Timestamptz | ScalarType::Date if text == "now" && !quoted => {
                Some(Default::Now)
            }
            ScalarType::Timestamptz | ScalarType::Date => {
                bad(self, "time fields take `now` as a default".into())
            }
            ScalarType::Uuid if text == "generated" && !quoted => Some(Default::GeneratedUuid),
            ScalarType::Uuid => bad(
                self,
                "uuid fields take `generated` (a random v4 UUID) as a default".into(),
            ),
            ScalarType::Bool => match (text, quoted) {
                ("true", false) => Some(Default::Bool(true)),
                ("false", false) => Some(Default::Bool(false)),
                _ => bad(self, "write `true` or `false` without quotes".into()),
            },
            ScalarType::I32 | ScalarType::I64 if text == "generated" && !quoted => {
                Some(Default::Identity)
            }
            ScalarType::I16 | ScalarType::I32 | ScalarType::I64 => {
                let (lo, hi) = match ty.scalar() {
                    ScalarType::I16 => (i16::MIN as i64, i16::MAX as i64),
                    ScalarType::I32 => (i32::MIN as i64, i32::MAX as i64),
                    _ => (i64::MIN, i64::MAX),
                };
                match text.parse::<i64>() {
                    Ok(n) if !quoted && n >= lo && n <= hi => Some(Default::Int(n.to_string())),
                    _ => bad(self, format!("write a whole number from {lo} to {hi}, or `generated` for an identity column")),
                }
            }
            ScalarType::F64 => match text.parse::<f64>() {
                Ok(v) if !quoted && v.is_finite() => Some(Default::Number(text.to_string())),
                _ => bad(self, "write a finite number such as `0.5`".into()),
            },
            ScalarType::Decimal { precision, scale } => {
                let (p, s) = (*precision as usize, *scale as usize);
                if quoted || !is_decimal_literal(text, p, s) {
                    return bad(
                        self,
                        format!(
                            "write a number with at most {} digits before and {s} after the point",
                            p - s
                        ),
                    );
                }
                Some(Default::Number(text.to_string()))
            }
            ScalarType::String { max } => {
                if let Some(m) = max {
                    if text.chars().count() > *m as usize {
                        return bad(
                            self,
                            format!("the default is longer than the field's {m} characters"),
                        );
                    }
                }
                Some(Default::String(text.to_string()))
            }
            ScalarType::Text => Some(Default::String(text.to_string())),
            ScalarType::Json => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(_) => Some(Default::String(text.to_string())),
                Err(_) => bad(
                    self,
                    "write the JSON as a quoted string, e.g. `default: '{}'`".into(),
                ),
            },
            ScalarType::Enum(name) => {
                let e = enums.get(name.as_str())?;
                if e.variants.iter().any(|v| v.name.schema == text) {
                    Some(Default::EnumMember(text.to_string()))
                } else {
                    self.err(
                        Problem::new(
                            "strata::unknown_enum_value",
                            d.span,
                            format!("`{text}` is not a value of enum `{name}`"),
                        )
                        .label("not a member")
                        .suggest(text, e.variants.iter().map(|v| v.name.schema.as_str()))
                        .help_or(format!(
                            "values: {}",
                            list(e.variants.iter().map(|v| &v.name.schema))
                        )),
                    );
                    None
                }
            }
            ScalarType::Bytes | ScalarType::Secret => {
                bad(self, format!("`{ty}` fields take no default"))
            }
        }
    }

    /// Looks a field up by schema name, reporting a miss with a suggestion.
    fn field_ref(&mut self, e: &Entity, name: &Spanned<String>) -> Option<usize> {
        if let Some(i) = e.fields.iter().position(|f| f.name.schema == name.value) {
            return Some(i);
        }
        self.err(
            Problem::new(
                "strata::unknown_field",
                name.span,
                format!("entity `{}` has no field `{}`", e.name.schema, name.value),
            )
            .label("unknown field")
            .suggest(name, e.fields.iter().map(|f| f.name.schema.as_str()))
            .help_or(format!(
                "fields: {}",
                list(e.fields.iter().map(|f| &f.name.schema))
            )),
        );
        None
    }

    fn key(&mut self, d: &ast::EntityDecl, e: &mut Entity) {
        let names: Vec<Spanned<String>> = if d.key.is_empty() {
            if e.field("id").is_some() {
                vec![Spanned::new("id".to_string(), d.name.span)]
            } else {
                self.err(
                    Problem::new("strata::missing_key", d.name.span, format!("entity `{}` has no primary key", d.name.value))
                        .label("needs `key:`")
                        .help("add `key: id` (or `key: [a, b]` for a composite key); an `id` field is the key by default"),
                );
                return;
            }
        } else {
            d.key.clone()
        };
        for n in &names {
            let Some(i) = self.field_ref(e, n) else {
                continue;
            };
            if e.key.contains(&i) {
                self.err(
                    Problem::new(
                        "strata::duplicate_name",
                        n.span,
                        format!("`{}` is in the key twice", n.value),
                    )
                    .label("repeated"),
                );
                continue;
            }
            let f = &e.fields[i];
            let bad = if f.nullable {
                Some("a key field cannot be nullable")
            } else if matches!(
                f.ty.scalar(),
                ScalarType::Json | ScalarType::Secret | ScalarType::F64
            ) || f.ty.is_array()
            {
                Some("a key field cannot be json, secret, f64 or an array")
            } else {
                None
            };
            if let Some(why) = bad {
                self.err(
                    Problem::new("strata::bad_key", n.span, format!("`{}` cannot be part of the primary key", n.value))
                        .label(why)
                        .help("key on uuid, string, integer, decimal, enum or time fields that are not nullable"),
                );
            }
            e.key.push(i);
        }
    }

    fn series(&mut self, d: &ast::EntityDecl, e: &mut Entity) {
        if let Some(k) = d.key.first() {
            self.err(
                Problem::new(
                    "strata::series_key",
                    k.span,
                    "a time-series entity has no `key`",
                )
                .label("not used")
                .help("a point is identified by its `time` and `tags`; remove `key`"),
            );
        }
        let Some(time_name) = &d.time else {
            self.err(
                Problem::new(
                    "strata::missing_key",
                    d.name.span,
                    format!("time-series entity `{}` has no `time`", d.name.value),
                )
                .label("needs `time:`")
                .help("name its timestamptz field: `time: ts`"),
            );
            return;
        };
        let Some(time) = self.field_ref(e, time_name) else {
            return;
        };
        if e.fields[time].ty != Type::Scalar(ScalarType::Timestamptz) || e.fields[time].nullable {
            self.err(
                Problem::new(
                    "strata::bad_series",
                    time_name.span,
                    "the time field must be a non-null `timestamptz`",
                )
                .label(format!("is {}", e.fields[time].ty))
                .help("declare it as `ts: timestamptz`"),
            );
        }
        let mut tags = Vec::new();
        for t in &d.tags {
            let Some(i) = self.field_ref(e, t) else {
                continue;
            };
            let f = &e.fields[i];
            let ok = matches!(
                f.ty,
                Type::Scalar(ScalarType::String { .. } | ScalarType::Text | ScalarType::Enum(_))
            );
            if !ok || i == time {
                self.err(
                    Problem::new(
                        "strata::bad_series",
                        t.span,
                        format!("tag `{}` must be a string or enum field", t.value),
                    )
                    .label(format!("is {}", f.ty))
                    .help("tags are indexed text; numbers belong in fields"),
                );
            }
            tags.push(i);
        }
        for f in &e.fields {
            if f.is_secret() {
                self.err(
                    Problem::new(
                        "strata::secret_in_series",
                        f.span,
                        "a time-series entity cannot hold a secret",
                    )
                    .label("secret field")
                    .help("secrets live in PostgreSQL only"),
                );
            }
        }
        let measurement = match &d.measurement {
            Some(m) => {
                if !is_snake_ident(m) {
                    self.bad_name("measurement", m, "snake_case");
                }
                m.value.clone()
            }
            None => e.name.sql.clone(),
        };
        e.kind = EntityKind::Series {
            time,
            tags,
            measurement,
        };
    }

    fn uniques(&mut self, d: &ast::EntityDecl, e: &mut Entity) {
        let mut sets: Vec<(Vec<usize>, Span)> = Vec::new();
        for f in &d.fields {
            if f.unique.as_ref().is_some_and(|u| u.value) {
                if let Some(i) = e.fields.iter().position(|x| x.name.schema == f.name.value) {
                    sets.push((vec![i], f.span));
                }
            }
        }
        for u in &d.unique {
            let idx: Vec<usize> = u
                .value
                .iter()
                .filter_map(|n| self.field_ref(e, n))
                .collect();
            if idx.len() == u.value.len() && !idx.is_empty() {
                sets.push((idx, u.span));
            }
        }
        for (fields, span) in sets {
            let cols: Vec<&str> = fields
                .iter()
                .map(|&i| e.fields[i].name.sql.as_str())
                .collect();
            let name = constraint_name(&e.name.sql, &cols, "key");
            if e.uniques.iter().any(|u| u.fields == fields) {
                continue;
            }
            e.uniques.push(Unique { name, fields, span });
        }
    }

    fn indexes(&mut self, d: &ast::EntityDecl, e: &mut Entity, enums: &HashMap<&str, &Enum>) {
        for i in &d.indexes {
            let mut columns = Vec::new();
            for (n, desc) in &i.columns {
                if let Some(f) = self.field_ref(e, n) {
                    columns.push(IndexColumn {
                        field: f,
                        desc: *desc,
                    });
                }
            }
            if columns.len() != i.columns.len() {
                continue;
            }
            if columns.is_empty() {
                self.err(
                    Problem::new(
                        "strata::empty_index",
                        i.span,
                        "an index needs at least one field",
                    )
                    .label("empty"),
                );
                continue;
            }
            let method = match i.method.as_ref().map(|m| m.as_str()) {
                None | Some("btree") => IndexMethod::BTree,
                Some("hash") => IndexMethod::Hash,
                Some("gin") => IndexMethod::Gin,
                Some("gist") => IndexMethod::Gist,
                Some("brin") => IndexMethod::Brin,
                Some(other) => {
                    let m = i.method.as_ref().map(|m| m.span).unwrap_or(i.span);
                    self.err(
                        Problem::new(
                            "strata::bad_index",
                            m,
                            format!("unknown index method `{other}`"),
                        )
                        .label("not a method")
                        .suggest(other, ["btree", "hash", "gin", "gist", "brin"])
                        .help_or("methods are btree, hash, gin, gist and brin"),
                    );
                    IndexMethod::BTree
                }
            };
            let predicate = match &i.filter {
                None => None,
                Some(Filter::Equals(pairs)) => {
                    let mut out = Vec::new();
                    for (n, lit) in pairs {
                        let Some(f) = self.field_ref(e, n) else {
                            continue;
                        };
                        let ty = e.fields[f].ty.clone();
                        if let Some(v) = self.default(lit, &ty, enums) {
                            out.push((f, v));
                        }
                    }
                    Some(Predicate::Equals(out))
                }
                Some(Filter::Sql(sql)) => {
                    if sql.contains(';') || sql.contains("--") || sql.contains("/*") {
                        self.err(
                            Problem::new("strata::bad_predicate", sql.span, "an index predicate may not contain `;` or comments")
                                .label("unsafe SQL")
                                .help("write a single boolean expression, or use `where: { field: value }`"),
                        );
                    }
                    Some(Predicate::Sql(sql.value.clone()))
                }
            };
            let cols: Vec<&str> = columns
                .iter()
                .map(|c| e.fields[c.field].name.sql.as_str())
                .collect();
            let name = match &i.name {
                Some(n) => {
                    if !is_snake_ident(n) {
                        self.bad_name("index", n, "snake_case");
                    }
                    n.value.clone()
                }
                None => constraint_name(&e.name.sql, &cols, "idx"),
            };
            if let Some(prev) = e.indexes.iter().find(|x| x.name == name) {
                let first = prev.span;
                self.duplicate("index", &Spanned::new(name.clone(), i.span), first);
                continue;
            }
            e.indexes.push(Index {
                name,
                columns,
                unique: i.unique,
                method,
                predicate,
                span: i.span,
            });
        }
    }

    fn queries(&mut self, d: &ast::EntityDecl, e: &mut Entity, enums: &HashMap<&str, &Enum>) {
        for q in &d.queries {
            if !is_snake_ident(&q.name) {
                self.bad_name("query", &q.name, "snake_case");
            }
            if let Some(prev) = e.queries.iter().find(|p| p.name.schema == q.name.value) {
                let first = prev.span;
                self.duplicate("query", &q.name, first);
                continue;
            }
            let params: Vec<usize> = q
                .params
                .iter()
                .filter_map(|n| self.field_ref(e, n))
                .collect();
            for (n, &i) in q.params.iter().zip(&params) {
                if e.fields[i].is_secret() {
                    self.err(
                        Problem::new("strata::secret_query", n.span, "a finder cannot look up by a secret")
                            .label("secret field")
                            .help("fetch the row by another field and compare the secret in constant time"),
                    );
                }
            }
            let mut fixed = Vec::new();
            for (n, lit) in &q.fixed {
                let Some(f) = self.field_ref(e, n) else {
                    continue;
                };
                let ty = e.fields[f].ty.clone();
                if let Some(v) = self.default(lit, &ty, enums) {
                    fixed.push((f, v));
                }
            }
            let order = q
                .order
                .iter()
                .filter_map(|(n, desc)| {
                    Some(IndexColumn {
                        field: self.field_ref(e, n)?,
                        desc: *desc,
                    })
                })
                .collect();
            if q.params.is_empty() && q.fixed.is_empty() && q.limit.is_none() {
                self.err(
                    Problem::new("strata::unbounded_query", q.name.span, format!("query `{}` has no `where` and no `limit`", q.name.value))
                        .label("reads the whole table")
                        .help("add `where:` or `limit:`; use the repository's paginated `list` to read everything"),
                );
            }
            e.queries.push(Query {
                name: Ident {
                    schema: q.name.value.clone(),
                    sql: q.name.value.clone(),
                    rust: q.name.value.clone(),
                },
                params,
                fixed,
                order,
                limit: q.limit.as_ref().map(|l| l.value),
                one: q.one,
                span: q.span,
            });
        }
    }

    fn cache_search(
        &mut self,
        d: &ast::EntityDecl,
        e: &mut Entity,
        stores: &BTreeMap<String, Store>,
    ) {
        if let Some(c) = &d.cache {
            if self.store_of_kind(&c.store, stores, StoreKindTag::Redis, "cache") {
                e.cache = Some(Cache {
                    store: c.store.value.clone(),
                    ttl_ms: c.ttl.as_ref().map(|t| t.value),
                });
            }
        }
        if let Some(s) = &d.search {
            let ok = self.store_of_kind(&s.store, stores, StoreKindTag::Elasticsearch, "search");
            let mut text = Vec::new();
            for n in &s.text {
                let Some(i) = self.field_ref(e, n) else {
                    continue;
                };
                let f = &e.fields[i];
                if f.is_secret() {
                    self.err(
                        Problem::new(
                            "strata::secret_in_search",
                            n.span,
                            "a secret field cannot be searchable",
                        )
                        .label("secret field")
                        .help("secrets are never copied to caches, search or analytics"),
                    );
                } else if !matches!(
                    f.ty.scalar(),
                    ScalarType::String { .. } | ScalarType::Text | ScalarType::Json
                ) {
                    self.err(
                        Problem::new("strata::bad_search_field", n.span, format!("`{}` is not text", n.value))
                            .label(format!("is {}", f.ty))
                            .help("full-text fields are string, text or json; other fields are indexed by value anyway"),
                    );
                }
                text.push(i);
            }
            if ok {
                e.search = Some(Search {
                    store: s.store.value.clone(),
                    text,
                });
            }
        }
    }

    fn store_of_kind(
        &mut self,
        name: &Spanned<String>,
        stores: &BTreeMap<String, Store>,
        kind: StoreKindTag,
        what: &str,
    ) -> bool {
        match stores.get(&name.value) {
            Some(s) if s.kind.tag() == kind => true,
            Some(s) => {
                self.err(
                    Problem::new(
                        "strata::wrong_store_kind",
                        name.span,
                        format!("`{what}` needs a {} store", kind.as_str()),
                    )
                    .label(format!(
                        "`{}` is a {} store",
                        name.value,
                        s.kind.tag().as_str()
                    ))
                    .help(format!(
                        "declare a store with `kind: {}` and name it here",
                        kind.as_str()
                    )),
                );
                false
            }
            None => {
                self.err(
                    Problem::new(
                        "strata::unknown_store",
                        name.span,
                        format!("no store named `{}`", name.value),
                    )
                    .label("unknown store")
                    .suggest(name, stores.keys().map(String::as_str))
                    .help_or(format!("declared stores: {}", list(stores.keys()))),
                );
                false
            }
        }
    }

    /// Second pass: references, once every entity's fields are known.
    fn references(&mut self, decls: &[&ast::EntityDecl], entities: &mut [Entity]) {
        for (di, d) in decls.iter().enumerate() {
            for fd in &d.fields {
                let Some(target) = &fd.references else {
                    continue;
                };
                let Some(fi) = entities[di]
                    .fields
                    .iter()
                    .position(|f| f.name.schema == fd.name.value)
                else {
                    continue;
                };
                let (ent_name, field_name) = match target.split_once('.') {
                    Some((a, b)) => (a, Some(b)),
                    None => (target.as_str(), None),
                };
                let Some(te) = entities.iter().find(|e| e.name.schema == ent_name) else {
                    self.err(
                        Problem::new("strata::unknown_entity", target.span, format!("no entity named `{ent_name}`"))
                            .label("unknown entity")
                            .suggest(ent_name, entities.iter().map(|e| e.name.schema.as_str()))
                            .help_or("`references` names an entity, optionally with a field: `Strategy` or `Strategy.id`"),
                    );
                    continue;
                };
                let tf = match field_name {
                    Some(f) => te.field(f),
                    None if te.key.len() == 1 => Some(&te.fields[te.key[0]]),
                    None => None,
                };
                let Some(tf) = tf else {
                    let help = match field_name {
                        Some(_) => {
                            format!("fields: {}", list(te.fields.iter().map(|f| &f.name.schema)))
                        }
                        None => format!(
                            "`{ent_name}` has no single-field key; write `{ent_name}.field`"
                        ),
                    };
                    let msg = match field_name {
                        Some(f) => format!("entity `{ent_name}` has no field `{f}`"),
                        None => format!("cannot tell which field of `{ent_name}` is referenced"),
                    };
                    self.err(
                        Problem::new("strata::unknown_field", target.span, msg)
                            .label("bad reference")
                            .help(help),
                    );
                    continue;
                };
                let src = &entities[di].fields[fi];
                let unique_target = (te.key.len() == 1 && te.fields[te.key[0]].name == tf.name)
                    || te
                        .uniques
                        .iter()
                        .any(|u| u.fields.len() == 1 && te.fields[u.fields[0]].name == tf.name);
                let problem = if src.ty.scalar() != tf.ty.scalar()
                    && !same_family(src.ty.scalar(), tf.ty.scalar())
                {
                    Some(format!(
                        "`{}` is {} but `{}.{}` is {}",
                        src.name.schema, src.ty, ent_name, tf.name.schema, tf.ty
                    ))
                } else if !unique_target {
                    Some(format!(
                        "`{}.{}` is neither the key nor unique",
                        ent_name, tf.name.schema
                    ))
                } else if te.store != entities[di].store {
                    Some(format!(
                        "`{ent_name}` lives in store `{}`, not `{}`",
                        te.store, entities[di].store
                    ))
                } else {
                    None
                };
                if let Some(msg) = problem {
                    self.err(
                        Problem::new("strata::bad_reference", target.span, msg)
                            .label("cannot reference this")
                            .help("a reference points at a key or unique field of the same type in the same store"),
                    );
                    continue;
                }
                let on_delete = match fd.on_delete.as_ref().map(|o| (o.as_str(), o.span)) {
                    None | Some(("no_action", _)) => OnDelete::NoAction,
                    Some(("restrict", _)) => OnDelete::Restrict,
                    Some(("cascade", _)) => OnDelete::Cascade,
                    Some(("set_null", s)) => {
                        if !src.nullable {
                            self.err(
                                Problem::new(
                                    "strata::bad_reference",
                                    s,
                                    "`on_delete: set_null` needs a nullable field",
                                )
                                .label("field is not nullable")
                                .help("add `nullable: true` or pick `cascade` / `restrict`"),
                            );
                        }
                        OnDelete::SetNull
                    }
                    Some(("set_default", _)) => OnDelete::SetDefault,
                    Some((other, s)) => {
                        let opts = [
                            "no_action",
                            "restrict",
                            "cascade",
                            "set_null",
                            "set_default",
                        ];
                        self.err(
                            Problem::new("strata::bad_reference", s, format!("unknown `on_delete` action `{other}`"))
                                .label("not an action")
                                .suggest(other, opts)
                                .help_or("actions are no_action, restrict, cascade, set_null and set_default"),
                        );
                        OnDelete::NoAction
                    }
                };
                let reference = Reference {
                    entity: te.name.schema.clone(),
                    field: tf.name.schema.clone(),
                    on_delete,
                };
                entities[di].fields[fi].references = Some(reference);
            }
        }
    }

    /// Two entities of one store may not share a table (or measurement).
    fn table_names(&mut self, entities: &[Entity]) {
        let mut seen: HashMap<(&str, &str), Span> = HashMap::new();
        for e in entities {
            let table = match &e.kind {
                EntityKind::Series { measurement, .. } => measurement.as_str(),
                EntityKind::Record => e.name.sql.as_str(),
            };
            if let Some(first) = seen.insert((e.store.as_str(), table), e.span) {
                let at = self.sources.location(first);
                self.err(
                    Problem::new(
                        "strata::duplicate_table",
                        e.span,
                        format!("table `{table}` is used by two entities"),
                    )
                    .label("same table as another entity")
                    .help(format!(
                        "the other entity is at {at}; set a different `table:`"
                    )),
                );
            }
        }
    }

    fn sync(
        &mut self,
        files: &[ast::SchemaFile],
        stores: &BTreeMap<String, Store>,
        entities: &[Entity],
    ) -> Vec<SyncRule> {
        let mut out: Vec<SyncRule> = Vec::new();
        for s in files.iter().flat_map(|f| &f.sync) {
            let Some(e) = entities.iter().find(|e| e.name.schema == s.from.value) else {
                self.err(
                    Problem::new(
                        "strata::unknown_entity",
                        s.from.span,
                        format!("no entity named `{}`", s.from.value),
                    )
                    .label("unknown entity")
                    .suggest(&s.from, entities.iter().map(|e| e.name.schema.as_str()))
                    .help_or("`from` names an entity declared under `entities:`"),
                );
                continue;
            };
            for to in &s.to {
                let Some(store) = stores.get(&to.value) else {
                    self.err(
                        Problem::new(
                            "strata::unknown_store",
                            to.span,
                            format!("no store named `{}`", to.value),
                        )
                        .label("unknown store")
                        .suggest(to, stores.keys().map(String::as_str))
                        .help_or(format!("declared stores: {}", list(stores.keys()))),
                    );
                    continue;
                };
                let why = if to.value == e.store {
                    Some("an entity cannot be synced to its own store".to_string())
                } else if !matches!(
                    store.kind.tag(),
                    StoreKindTag::ClickHouse | StoreKindTag::Elasticsearch
                ) {
                    Some(format!(
                        "sync targets are clickhouse or elasticsearch stores; `{}` is {}",
                        to.value,
                        store.kind.tag().as_str()
                    ))
                } else if store.kind.tag() == StoreKindTag::Elasticsearch
                    && e.search.as_ref().map(|x| &x.store) != Some(&to.value)
                {
                    Some(format!(
                        "`{}` has no `search: {{ store: {} }}` section",
                        e.name.schema, to.value
                    ))
                } else if e.is_series() {
                    Some("time-series entities are not synced".to_string())
                } else {
                    None
                };
                if let Some(msg) = why {
                    self.err(
                        Problem::new("strata::bad_sync", to.span, msg)
                            .label("cannot sync here")
                            .help("sync copies a record entity from its home store to an analytics (clickhouse) or search (elasticsearch) store"),
                    );
                    continue;
                }
                if out
                    .iter()
                    .any(|r| r.from == e.name.schema && r.to == to.value)
                {
                    self.err(
                        Problem::new(
                            "strata::duplicate_name",
                            to.span,
                            "this sync rule is given twice",
                        )
                        .label("repeated"),
                    );
                    continue;
                }
                out.push(SyncRule {
                    from: e.name.schema.clone(),
                    to: to.value.clone(),
                    span: s.span,
                });
            }
        }
        out
    }
}

fn same_family(a: &ScalarType, b: &ScalarType) -> bool {
    matches!(
        (a, b),
        (
            ScalarType::String { .. } | ScalarType::Text,
            ScalarType::String { .. } | ScalarType::Text
        )
    )
}

fn is_decimal_literal(text: &str, precision: usize, scale: usize) -> bool {
    let t = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
        && int.trim_start_matches('0').len() <= precision - scale
        && frac.len() <= scale
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// PostgreSQL-style constraint names, `{table}_{cols}_{suffix}`, kept within
/// 63 bytes by a stable hash so that long names stay unique.
pub fn constraint_name(table: &str, cols: &[&str], suffix: &str) -> String {
    let full = format!("{table}_{}_{suffix}", cols.join("_"));
    if full.len() <= MAX_SQL_IDENT {
        return full;
    }
    use sha2::{Digest, Sha256};
    let hash = hex::encode(&Sha256::digest(full.as_bytes())[..4]);
    let keep = MAX_SQL_IDENT - hash.len() - suffix.len() - 2;
    format!("{}_{hash}_{suffix}", &full[..keep])
}
