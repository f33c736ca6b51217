//! Enums: names, SQL type names and values.

use super::*;

impl Resolver<'_> {
    pub(super) fn enums(&mut self, files: &[ast::SchemaFile]) -> Vec<Enum> {
        let mut out: Vec<Enum> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for d in files.iter().flat_map(|f| &f.enums) {
            if let Some(&first) = seen.get(d.name.as_str()) {
                self.duplicate("enum", &d.name, first);
                continue;
            }
            seen.insert(&d.name.value, d.name.span);
            if BUILTIN_TYPES.contains(&d.name.as_str()) || !is_type_ident(&d.name) {
                self.bad_name("enum", &d.name, NameStyle::UpperCamelCase);
            } else if d.name.value == "Self" {
                self.reserved_rust_name("enum", &d.name);
            }
            let sql = match &d.sql_name {
                Some(n) => {
                    if !is_snake_ident(n) {
                        self.bad_name("SQL type", n, NameStyle::SnakeCase);
                    }
                    n.value.clone()
                }
                None => {
                    let sql = d.name.value.to_snake_case();
                    if is_type_ident(&d.name) && !is_snake_ident(&sql) {
                        self.derived_too_long("enum", &d.name, &sql, "sql_name");
                    }
                    sql
                }
            };
            if is_pg_builtin_type(&sql) {
                let at = d.sql_name.as_ref().map_or(d.name.span, |n| n.span);
                self.err(ResolveError::BuiltinSqlType {
                    at,
                    sql: sql.clone(),
                    enum_name: d.name.value.clone(),
                });
            }
            if d.values.is_empty() {
                self.err(ResolveError::EmptyEnum {
                    at: d.name.span,
                    name: d.name.value.clone(),
                });
            }
            let variants = self.variants(d);
            out.push(Enum {
                name: Ident {
                    schema: d.name.value.clone(),
                    sql,
                    rust: d.name.value.clone(),
                },
                variants,
                doc: d.doc.clone(),
                stores: Vec::new(),
                pg_schema: None,
                span: d.span,
            });
        }
        out
    }

    fn variants(&mut self, d: &ast::EnumDecl) -> Vec<EnumVariant> {
        let mut variants: Vec<EnumVariant> = Vec::new();
        // Both the stored value and the Rust variant must be unique (`BUY` and
        // `buy` would both become `Buy`).
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut by_variant: HashMap<String, String> = HashMap::new();
        for v in &d.values {
            if !is_enum_value(v) {
                self.bad_name("enum value", v, NameStyle::LetterFirst);
                continue;
            }
            let rust = v.value.to_lowercase().to_upper_camel_case();
            // A value `self` becomes the variant `Self_` (see names::rust_ident).
            if let Some(&first) = seen.get(&v.value) {
                self.duplicate("enum value", v, first);
                continue;
            }
            if let Some(other) = by_variant.get(&rust) {
                self.err(ResolveError::CaseOnlyDifference {
                    at: v.span,
                    other: other.clone(),
                    value: v.value.clone(),
                    rust,
                });
                continue;
            }
            seen.insert(v.value.clone(), v.span);
            by_variant.insert(rust.clone(), v.value.clone());
            variants.push(EnumVariant {
                name: Ident {
                    schema: v.value.clone(),
                    sql: v.value.clone(),
                    rust,
                },
                span: v.span,
            });
        }
        variants
    }

    /// `Self` passes every identifier rule but cannot name a Rust type or variant.
    pub(super) fn reserved_rust_name(&mut self, what: &'static str, name: &Spanned<String>) {
        self.err(ResolveError::SelfName {
            at: name.span,
            what,
            name: name.value.clone(),
        });
    }

    /// A name that is valid as written but whose derived SQL name is too long.
    pub(super) fn derived_too_long(
        &mut self,
        what: &'static str,
        name: &Spanned<String>,
        sql: &str,
        key: &'static str,
    ) {
        self.err(ResolveError::DerivedNameTooLong {
            at: name.span,
            what,
            name: name.value.clone(),
            sql: sql.to_string(),
            key,
        });
    }
}

/// Types of `pg_catalog`, searched before every other schema: an enum type of
/// one of these names would never be found by an unqualified name.
const PG_BUILTIN_TYPES: &[&str] = &[
    "aclitem",
    "any",
    "anyarray",
    "anycompatible",
    "anycompatiblearray",
    "anycompatiblemultirange",
    "anycompatiblenonarray",
    "anycompatiblerange",
    "anyelement",
    "anyenum",
    "anymultirange",
    "anynonarray",
    "anyrange",
    "bit",
    "bool",
    "box",
    "bpchar",
    "bytea",
    "char",
    "cid",
    "cidr",
    "circle",
    "cstring",
    "date",
    "datemultirange",
    "daterange",
    "event_trigger",
    "fdw_handler",
    "float4",
    "float8",
    "gtsvector",
    "index_am_handler",
    "inet",
    "int2",
    "int2vector",
    "int4",
    "int4multirange",
    "int4range",
    "int8",
    "int8multirange",
    "int8range",
    "internal",
    "interval",
    "json",
    "jsonb",
    "jsonpath",
    "language_handler",
    "line",
    "lseg",
    "macaddr",
    "macaddr8",
    "money",
    "name",
    "numeric",
    "nummultirange",
    "numrange",
    "oid",
    "oidvector",
    "path",
    "point",
    "polygon",
    "record",
    "refcursor",
    "regclass",
    "regcollation",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regoper",
    "regoperator",
    "regproc",
    "regprocedure",
    "regrole",
    "regtype",
    "table_am_handler",
    "text",
    "tid",
    "time",
    "timestamp",
    "timestamptz",
    "timetz",
    "trigger",
    "tsm_handler",
    "tsmultirange",
    "tsquery",
    "tsrange",
    "tstzmultirange",
    "tstzrange",
    "tsvector",
    "txid_snapshot",
    "unknown",
    "uuid",
    "varbit",
    "varchar",
    "void",
    "xid",
    "xid8",
    "xml",
];

/// A built-in type name, or one in PostgreSQL's reserved `pg_` prefix (the
/// catalog's own row types, such as `pg_class`).
fn is_pg_builtin_type(sql: &str) -> bool {
    sql.starts_with("pg_") || PG_BUILTIN_TYPES.contains(&sql)
}

/// The pass that fixes where each enum's PostgreSQL type lives
/// ([`Enum::stores`], [`Enum::pg_schema`]): the postgres stores whose
/// record tables use it. The PostgreSQL back end creates the type in each;
/// the Rust back end names the first one's.
pub(super) fn enum_homes(enums: &mut [Enum], entities: &[Entity], stores: &Stores) {
    // One walk over the fields: the postgres stores of each enum's users.
    let mut homes: HashMap<&str, BTreeSet<StoreId>> = HashMap::new();
    for e in entities.iter().filter(|e| e.kind == EntityKind::Record) {
        let pg = stores
            .at(e.store)
            .is_some_and(|s| s.kind.tag() == StoreKindTag::Postgres);
        for f in e.fields.iter().filter(|_| pg) {
            if let ScalarType::Enum(n) = f.ty.scalar() {
                homes.entry(n.as_str()).or_default().insert(e.store);
            }
        }
    }
    for en in enums {
        en.stores = (homes.get(en.name.schema.as_str()))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        en.pg_schema =
            (en.stores.first().and_then(|&id| stores.at(id))).and_then(|s| match &s.kind {
                StoreKind::Postgres { schema, .. } => schema.clone(),
                _ => None,
            });
    }
}
