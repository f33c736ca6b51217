//! `From<ResolveError> for Problem`: the one place the resolver's codes,
//! messages, labels and help lines are written.

use super::super::list;
use super::*;
use crate::diagnostics::{did_you_mean_help, Problem};
use crate::model::BUILTIN_TYPES;
use crate::names::MAX_SQL_IDENT;

/// The help of a name that is not a safe identifier.
fn bad_name_help(what: &str, name: &str, style: NameStyle) -> String {
    let example = style.example(name);
    let style = style.as_str();
    if name.len() > MAX_SQL_IDENT {
        format!("names are at most {MAX_SQL_IDENT} bytes")
    } else if name == "_" {
        format!("`_` alone cannot name a {what}: Rust has no {what} named `_`; add letters, e.g. `_x` or `value`")
    } else if !example.is_empty() && example != name {
        format!("{what} names are {style} ASCII; try `{example}`")
    } else {
        format!("{what} names are {style} ASCII letters, digits and `_`")
    }
}

/// The help of an unknown type: an entity, the word `enum`, a suggestion.
fn unknown_type_help(name: &str, is_entity: bool, suggestion: Option<String>) -> String {
    if is_entity {
        format!("`{name}` is an entity; a field that points at it is written `{{ type: uuid, references: {name} }}` (the type of its key)")
    } else if name.eq_ignore_ascii_case("enum") {
        "declare the enum under `enums:` (e.g. `Status: [ACTIVE, CLOSED]`) and write its name as the type: `type: Status`".into()
    } else if let Some(s) = suggestion {
        did_you_mean_help(&s)
    } else {
        format!(
            "types are {}, decimal(p,s), string(n), `T[]` arrays and enum names",
            BUILTIN_TYPES.join(", ")
        )
    }
}

/// A suggestion's help, or `otherwise`.
fn suggested(suggestion: Option<String>, otherwise: impl FnOnce() -> String) -> String {
    suggestion.map_or_else(otherwise, |s| did_you_mean_help(&s))
}

impl From<ResolveError> for Problem {
    fn from(e: ResolveError) -> Problem {
        let typed = e.clone();
        let p = |at: Span, message: String| Problem::typed(typed, at, message);
        use ResolveError as E;
        match e {
            // ---- names ----
            E::DeclaredTwice { at, what, name, first } => p(at, format!("{what} `{name}` is declared twice"))
                .label("declared again here")
                .also(first, "first declared here")
                .help_at(first, format!("the first declaration is at {}; rename or remove one of them", Problem::AT)),
            E::BadName { at, what, name, style } => p(at, format!("`{name}` is not a valid {what} name"))
                .label("not a safe identifier")
                .help(bad_name_help(what, &name, style)),
            E::SelfName { at, what, name } => p(at, format!("`{name}` cannot be used as {what} name"))
                .label("reserved in Rust")
                .help("`Self` is a Rust keyword; pick another name"),
            E::DerivedNameTooLong { at, what, name, sql, key } => p(at, format!("the SQL name `{sql}` of {what} `{name}` is longer than {MAX_SQL_IDENT} bytes"))
                .label("name too long in SQL")
                .help(format!("set a shorter `{key}:`")),
            E::SystemColumn { at, name, columns } => p(at, format!("`{name}` is the name of a PostgreSQL system column"))
                .label("reserved by PostgreSQL")
                .help(format!("every PostgreSQL table has the hidden columns {}: name the field otherwise, e.g. `{name}_value`", columns.join(", "))),
            E::BuiltinSqlType { at, sql, enum_name } => p(at, format!("the SQL type name `{sql}` of enum `{enum_name}` is a PostgreSQL built-in type"))
                .label("built-in type")
                .help(format!("PostgreSQL would resolve `{sql}` to its own type, not the enum: set `sql_name:` to another name, e.g. `{sql}_kind`")),
            E::CaseOnlyDifference { at, other, value, rust } => p(at, format!("enum values `{other}` and `{value}` differ only in case"))
                .label("same Rust variant")
                .help(format!("both become the Rust variant `{rust}`; keep one spelling")),
            E::NameTaken { at, name, first } => {
                let (message, help) = match name {
                    TakenName::EntityIsEnum { entity } => (
                        format!("entity `{entity}` has the name of an enum"),
                        "rename the entity or the enum: both become Rust types of one module",
                    ),
                    TakenName::Table { table } => (format!("table `{table}` is used by two entities"), "set a different `table:`"),
                    TakenName::EnumSqlType { enum_name, sql } => (
                        format!("enum `{enum_name}` has the SQL type name `{sql}` of another enum"),
                        "give one of them another `sql_name:`",
                    ),
                };
                p(at, message)
                    .label("name already taken")
                    .also(first, "taken here")
                    .help_at(first, format!("the other one is at {}; {help}", Problem::AT))
            }
            E::BadTableRename { at, rename } => {
                let help = match rename {
                    BadRename::Itself { .. } => "write the table's previous name, or remove `renamed_from`",
                    BadRename::StillUsed { .. } => "the old name of a renamed table must be free; if this rename was applied already, remove `renamed_from`",
                    BadRename::Twice { .. } => "a table can be renamed to one new name only",
                };
                p(at, rename.message(true)).label("renamed_from").help(help)
            }
            E::BadFieldRename { at, rename } => {
                let help = match rename {
                    BadRename::Itself { .. } => "write the column's previous name, or remove `renamed_from`",
                    BadRename::StillUsed { .. } => "the old name of a renamed field must be free; if this rename was applied already, remove `renamed_from`; to swap two columns, rename through a third name in two migrations",
                    BadRename::Twice { .. } => "a column can be renamed to one new name only",
                };
                p(at, rename.message(false)).label("renamed_from").help(help)
            }
            // ---- stores ----
            E::UnknownStoreKind { at, got, suggestion } => p(at, format!("unknown store kind `{got}`"))
                .label("not a store kind")
                .help(suggested(suggestion, || "store kinds are postgres, redis, clickhouse, elasticsearch and influxdb".into())),
            E::SettingNotForKind { at, key, kind, allowed } => p(at, format!("`{key}` is not a setting of a {} store", kind.as_str()))
                .label("not for this kind")
                .help(format!("a {} store takes: url, {}", kind.as_str(), allowed.join(", "))),
            E::PoolMinAboveMax { at, min, max } => p(at, format!("the pool's `min` ({min}) is above its `max` ({max})"))
                .label("min > max")
                .help("keep `min` at or below `max`"),
            E::ReservedSchema { at, name } => p(at, format!("the schema name `{name}` is reserved by PostgreSQL"))
                .label("reserved by PostgreSQL")
                .help("pick a schema name of your own (not `pg_*` or `information_schema`), or leave `schema` out for `public`"),
            E::BadServerVersion { at } => p(at, "`server_version` must be MAJOR.MINOR".into())
                .label("not a version")
                .help("write the ClickHouse release the DDL must run on, e.g. `\"18.16\"` or `\"24.8\"`"),
            E::BadPrecision { at } => p(at, "`precision` must be ns, us, ms or s".into())
                .label("unknown precision")
                .help("the InfluxDB write API accepts ns, us, ms and s"),
            E::BadServer { at } => p(at, "`server` must be influxdb or victoriametrics".into())
                .label("unknown server")
                .help("the server that reads the line protocol: `influxdb` (1.x or 2.x, the default) or `victoriametrics`"),
            E::PoolOutOfRange { at, key, found, limit } => {
                let (why, help) = limit.why_and_help();
                p(at, format!("`{key}` is out of range: {why}")).label(found).help(help)
            }
            E::PoolNumberTooLarge { at, key, min } => p(at, format!("`{key}` is out of range"))
                .label("too large")
                .help(format!("write a whole number from {min} to {} (a pool holds at most as many connections as the server allows: PostgreSQL's `max_connections`, 100 by default)", u32::MAX)),
            E::PoolExpectedNumber { at, key } => p(at, format!("`{key}` must be a whole number"))
                .label("not a number")
                .help("write a number such as `10`"),
            E::PoolDurationTooLarge { at, key } => p(at, format!("`{key}` is out of range"))
                .label("too large")
                .help(crate::syntax::DURATION_RANGE),
            E::PoolExpectedDuration { at, key } => p(at, format!("`{key}` must be a duration"))
                .label("not a duration")
                .help("write a number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`"),
            E::BadApplicationName { at } => p(at, "`application_name` must be at most 63 printable ASCII characters".into())
                .label("PostgreSQL would change this name")
                .help("write a short name such as `trading-api`"),
            E::UnknownPoolKey { at, key, suggestion, known } => p(at, format!("unknown key `{key}` in `pool`"))
                .label("unknown key")
                .help(suggested(suggestion, || format!("known keys: {}", known.join(", ")))),
            E::BadSettingShape { at, key } => {
                let help = match key.as_str() {
                    "pool" => "write `pool: { max: 10, acquire_timeout: 30s }`",
                    "replicas" => "write a list of URL templates: `replicas: [\"${REPLICA_URL}\"]`",
                    _ => "write a single value",
                };
                p(at, format!("`{key}` has the wrong shape")).label("unexpected value").help(help)
            }
            E::UnclosedTemplate { at } => p(at, "unclosed `${` in a setting".into())
                .label("no closing `}`")
                .help("write `${VAR}` or `${VAR:default}`"),
            E::NestedTemplate { at } => p(at, "a `${` inside `${...}`".into())
                .label("nested or unclosed variable")
                .help("close each variable with `}`; a default cannot hold another variable"),
            E::BadTemplateVar { at, name } => p(at, format!("`{name}` is not an environment variable name"))
                .label("bad variable")
                .help("variable names are letters, digits and `_`, as in `${DATABASE_URL}`"),
            E::UnknownStore { at, name, suggestion, declared } => p(at, format!("no store named `{name}`"))
                .label("unknown store")
                .help(suggested(suggestion, || format!("declared stores: {}", list(&declared)))),
            E::EntityInWrongStore { at, store, kind } => p(at, format!("an entity cannot live in a {} store", kind.as_str()))
                .label(format!("`{store}` is a {} store", kind.as_str()))
                .help("an entity's home is a postgres, clickhouse or influxdb store; use `cache:` for redis and `search:` for elasticsearch"),
            E::WrongStoreKind { at, what, needs, store, is } => p(at, format!("`{what}` needs a {} store", needs.as_str()))
                .label(format!("`{store}` is a {} store", is.as_str()))
                .help(format!("declare a store with `kind: {}` and name it here", needs.as_str())),
            E::NoPostgresStore { at, entity, declared } => {
                let help = match declared.is_empty() {
                    true => "declare the store, e.g. `stores: { main: { kind: postgres, url: \"${DATABASE_URL}\" } }`; an entity may leave out `store:` when there is exactly one postgres store".to_string(),
                    false => format!("write `store: <name>` (declared: {}), or declare a postgres store: with exactly one, `store:` may be left out", list(&declared)),
                };
                p(at, format!("entity `{entity}` has no `store` and the schema has no postgres store"))
                    .label("needs `store:`")
                    .help(help)
            }
            E::SeveralPostgresStores { at, entity, postgres } => p(at, format!("entity `{entity}` has no `store`"))
                .label("needs `store:`")
                .help(format!("the schema has several postgres stores ({}): write `store: {}` or `store: {}`", list(&postgres), postgres[0], postgres[1])),
            // ---- types, fields and defaults ----
            E::UnknownType { at, name, is_entity, suggestion } => p(at, format!("unknown type `{name}`"))
                .label("not a type")
                .help(unknown_type_help(&name, is_entity, suggestion)),
            E::BadType { at, written, why } => p(at, format!("invalid type `{written}`"))
                .label("malformed type")
                .help(why.reason()),
            E::MaxOutOfRange { at, max } => p(at, format!("`max: {max}` is not a string length"))
                .label("out of range")
                .help("a string length is between 1 and 10485760; use `text` for unbounded text"),
            E::MaxNotApplicable { at } => p(at, "`max` applies to a `string` field without a length".into())
                .label("not applicable")
                .help("write `type: string, max: 20` or `string(20)`, not both; other types take no `max`"),
            E::NullableIdentity { at } => p(at, "an identity column cannot be nullable".into())
                .label("identity")
                .help("PostgreSQL keeps identity columns NOT NULL: drop the `?` (or `nullable: true`), or the `default: generated`"),
            E::OnDeleteWithoutReference { at } => p(at, "`on_delete` needs `references`".into())
                .label("no reference")
                .help("add `references: Entity` to this field, or remove `on_delete`"),
            E::BadDefault { at, text, ty, takes, used } => p(at, format!("`{text}` is not a valid value for a field of type `{ty}`"))
                .label("wrong value")
                .help(takes.help_in(used, &ty)),
            E::UnknownEnumValue { at, value, enum_name, suggestion, values } => p(at, format!("`{value}` is not a value of enum `{enum_name}`"))
                .label("not a member")
                .help(suggested(suggestion, || format!("values: {}", list(&values)))),
            E::EmptyEnum { at, name } => p(at, format!("enum `{name}` has no values"))
                .label("no values")
                .help("list its values: `Side: [BUY, SELL]`"),
            E::ReservedField { at, name, version } => p(at, format!("field `{name}` clashes with a maintained column"))
                .label("declared by hand")
                .help(match version {
                    true => "`version: true` adds this column; remove the field or the setting",
                    false => "`timestamps: true` adds created_at and updated_at; remove the field or the setting",
                }),
            // ---- entities, keys and constraints ----
            E::UnknownField { at, entity, field, suggestion, fields } => p(at, format!("entity `{entity}` has no field `{field}`"))
                .label("unknown field")
                .help(suggested(suggestion, || match fields.is_empty() {
                    true => format!("`{entity}` declares no fields yet"),
                    false => format!("fields: {}", list(&fields)),
                })),
            E::NoPrimaryKey { at, entity, no_fields: true } => p(at, format!("entity `{entity}` has no fields"))
                .label("no fields")
                .help("declare its fields, e.g. `fields: { id: i64, name: string(100) }`; an `id` field is the key by default"),
            E::NoPrimaryKey { at, entity, no_fields: false } => p(at, format!("entity `{entity}` has no primary key"))
                .label("needs `key:`")
                .help("add `key: id` (or `key: [a, b]` for a composite key); an `id` field is the key by default"),
            E::KeyFieldTwice { at, field } => p(at, format!("`{field}` is in the key twice"))
                .label("repeated")
                .help("name each key field once"),
            E::BadKeyField { at, field, nullable } => p(at, format!("`{field}` cannot be part of the primary key"))
                .label(match nullable {
                    true => "a key field cannot be nullable",
                    false => "a key field cannot be json, secret, f64 or an array",
                })
                .help("key on uuid, string, integer, decimal, enum or time fields that are not nullable"),
            E::SecretKey { at, field, used_in } => p(at, format!("the secret `{field}` cannot be used in {used_in}"))
                .label("secret field")
                .help("a secret is never a key (an index, a unique constraint or a reference would keep and show its values): key on another field, or store a hash of the secret in a field of its own and index that"),
            E::EmptyUnique { at } => p(at, "this unique constraint lists no fields".into())
                .label("empty")
                .help("list its fields, as in `[account_id, symbol]`, or remove the item"),
            E::FieldListedTwice { at, field } => p(at, format!("`{field}` is listed twice"))
                .label("repeated")
                .help("name each field once"),
            E::NotTimePartition { at, field, ty } => p(at, format!("`{field}` is not a time field"))
                .label(format!("is {ty}"))
                .help("partition by a `timestamptz` or `date` field, such as `created_at`"),
            // ---- indexes and queries ----
            E::EmptyIndex { at } => p(at, "an index needs at least one field".into())
                .label("empty")
                .help("list the fields to index: `[symbol, created_at desc]`"),
            E::UnknownIndexMethod { at, method, suggestion } => p(at, format!("unknown index method `{method}`"))
                .label("not a method")
                .help(suggested(suggestion, || "methods are btree, hash, gin, gist and brin".into())),
            E::HashIndexShape { at } => p(at, "a hash index covers one field and cannot be unique".into())
                .label("hash index")
                .help("use the default btree method for composite or unique indexes"),
            E::UniqueNonBtree { at, method } => p(at, format!("a {method} index cannot be unique"))
                .label(format!("{method} index"))
                .help("only btree (the default) indexes are unique: drop `unique` or the `method`"),
            E::OrderedNonBtree { at } => p(at, "only a btree index can be ordered".into())
                .label("`desc` on a non-btree index")
                .help("drop `desc`, or drop the `method` to use btree"),
            E::UnsafePredicate { at } => p(at, "an index predicate may not contain `;` or comments".into())
                .label("unsafe SQL")
                .help("write a single boolean expression, or use `where: { field: value }`"),
            E::UnbalancedPredicate { at } => p(at, "unbalanced quotes or parentheses in an index predicate".into())
                .label("does not close")
                .help("close every `(` and `'`, and write identifiers without `\"` or `$`"),
            E::DerivedIndexNameTwice { at, name, first } => p(at, format!("two indexes on the same fields get the derived name `{name}`"))
                .label("second index on these fields")
                .help_at(first, format!("the first is at {}; give one of them a `name:`, or remove this one if it is the same index", Problem::AT)),
            E::SecretQuery { at } => p(at, "a finder cannot look up by a secret".into())
                .label("secret field")
                .help("fetch the row by another field and compare the secret in constant time"),
            E::ZeroLimit { at } => p(at, "`limit: 0` returns nothing".into())
                .label("zero")
                .help("give a limit of at least 1, or leave `limit` out"),
            E::UnboundedQuery { at, query } => p(at, format!("query `{query}` has no `where` and no `limit`"))
                .label("reads the whole table")
                .help("add `where:` or `limit:`; use the repository's paginated `list` to read everything"),
            // ---- references ----
            E::EnumNotEntity { at, name } => p(at, format!("`{name}` is an enum, not an entity"))
                .label("not an entity")
                .help(format!("the type `{name}` already limits the field to the enum's values: remove `references`")),
            E::UnknownReferencedEntity { at, name, suggestion, entities } => p(at, format!("no entity named `{name}`"))
                .label("unknown entity")
                .help(suggested(suggestion, || format!("`references` names an entity (`Entity` or `Entity.field`); entities: {}", list(&entities)))),
            E::ReferenceToSeries { at, entity } => p(at, format!("`{entity}` is a time-series entity"))
                .label("cannot reference this")
                .help("a reference points at a record entity's key or unique field"),
            E::UnknownReferencedField { at, entity, field, fields } => p(at, format!("entity `{entity}` has no field `{field}`"))
                .label("bad reference")
                .help(format!("fields: {}", list(&fields))),
            E::AmbiguousReference { at, entity } => p(at, format!("cannot tell which field of `{entity}` is referenced"))
                .label("bad reference")
                .help(format!("`{entity}` has no single-field key; write `{entity}.field`")),
            E::BadReference { at, why } => p(at, why.message())
                .label("cannot reference this")
                .help("a reference points at a key or unique field of the same type in the same store"),
            E::SetNullNotNullable { at } => p(at, "`on_delete: set_null` needs a nullable field".into())
                .label("field is not nullable")
                .help("add `nullable: true` or pick `cascade` / `restrict`"),
            E::SetDefaultWithoutDefault { at } => p(at, "`on_delete: set_default` needs a `default` on the field".into())
                .label("field has no default")
                .help("give the field a `default:` (a key of the referenced entity), or pick `set_null`, `cascade` or `restrict`"),
            E::UnknownOnDelete { at, action, suggestion } => p(at, format!("unknown `on_delete` action `{action}`"))
                .label("not an action")
                .help(suggested(suggestion, || "actions are no_action, restrict, cascade, set_null and set_default".into())),
            // ---- time series ----
            E::SeriesMaintained { at } => p(at, "a time-series entity has no maintained columns".into())
                .label("not for series")
                .help("a point is written once and never updated: remove `timestamps` and `version`"),
            E::OnlyForSeries { at, key } => p(at, format!("`{key}` is only for time-series entities"))
                .label("not a series entity")
                .help("`time`, `tags` and `measurement` apply to entities whose store is an influxdb store"),
            E::SeriesKey { at } => p(at, "a time-series entity has no `key`".into())
                .label("not used")
                .help("a point is identified by its `time` and `tags`; remove `key`"),
            E::SeriesWithoutTime { at, entity } => p(at, format!("time-series entity `{entity}` has no `time`"))
                .label("needs `time:`")
                .help("name its timestamptz field: `time: ts`"),
            E::BadTimeField { at, ty } => p(at, "the time field must be a non-null `timestamptz`".into())
                .label(format!("is {ty}"))
                .help("declare it as `ts: timestamptz`"),
            E::BadTag { at, tag, ty } => p(at, format!("tag `{tag}` must be a string or enum field"))
                .label(format!("is {ty}"))
                .help("tags are indexed text; numbers belong in fields"),
            E::SecretInSeries { at } => p(at, "a time-series entity cannot hold a secret".into())
                .label("secret field")
                .help("secrets live in PostgreSQL only"),
            // ---- copies ----
            E::SecretInCache { at, entity, secret, secret_at } => p(at, format!("`{entity}` has a secret field and cannot be cached"))
                .label("cache declared here")
                .also(secret_at, format!("`{secret}` is a secret"))
                .help("secrets are never copied to a cache: move the secret to an entity of its own (keyed like this one) without `cache:`, or remove `cache:`"),
            E::CacheTtlOutOfRange { at, ttl_ms } => {
                let why = match ttl_ms {
                    0 => "a `ttl` of 0 would keep nothing: every fill is refused and the cache is off",
                    _ => "a `ttl` longer than 365 days",
                };
                p(at, format!("`ttl` is out of range: {why}"))
                    .label(format!("{ttl_ms} ms"))
                    .help("write a ttl from `1ms` to `365d`; to cache without expiry choose a long ttl such as `30d`, to turn caching off remove `cache:`")
            }
            E::SecretInSearch { at } => p(at, "a secret field cannot be searchable".into())
                .label("secret field")
                .help("secrets are never copied to caches, search or analytics"),
            E::NotText { at, field, ty } => p(at, format!("`{field}` is not text"))
                .label(format!("is {ty}"))
                .help("full-text fields are string, text or json; other fields are indexed by value anyway"),
            E::UnknownSyncSource { at, name, suggestion } => p(at, format!("no entity named `{name}`"))
                .label("unknown entity")
                .help(suggested(suggestion, || "`from` names an entity declared under `entities:`".into())),
            E::BadSync { at, why } => p(at, why.message())
                .label("cannot sync here")
                .help("sync copies a record entity from its home store to an analytics (clickhouse) or search (elasticsearch) store"),
            E::SyncTwice { at } => p(at, "this sync rule is given twice".into())
                .label("repeated")
                .help("remove one of the two rules"),
            E::NotCaptured { at, entity } => p(at, format!("`{entity}` is not read by change capture"))
                .label("events declared here")
                .help("change events come from PostgreSQL's change stream: declare `events:` on a record entity of a postgres store"),
            E::BadPartitions { at, found } => p(at, "`partitions` must be 1 to 1024".into())
                .label(format!("found {found}"))
                .help("one partition keeps one order for the whole entity; more spread the load over consumers and Cluster nodes (8 is the default)"),
            E::BadMaxLen { at, found } => p(at, "`max_len` must be at least 1000".into())
                .label(format!("found {found}"))
                .help("Redis trims streams approximately, by whole nodes of about 100 entries: write 1000 or more (100000 is the default)"),
            // ---- Rust names ----
            E::HiddenRustName { at, what, name, type_param } => {
                let (label, whose) = match type_param {
                    false => ("a name of the Rust prelude", "the prelude's"),
                    true => ("a type parameter of the generated methods", "the type parameter"),
                };
                p(at, format!("`{name}` cannot be used as an {what} name"))
                    .label(label)
                    .help(format!("the generated code uses {whose} `{name}`, which a type of this name would hide or be hidden by; pick another name"))
            }
            E::UnusableRustName { at, what, name, item } => p(at, format!("`{name}` cannot be used as a {what} name"))
                .label(format!("cannot name {item}"))
                .help(format!("`_` is not a Rust identifier; give the {what} a name with a letter in it")),
            E::ReservedMember { at, name, member } => p(at, format!("`{name}` is a name the generated Rust uses itself"))
                .label("reserved in the generated code")
                .help(format!("{}; pick another name", member.why())),
            E::RustNameClash { at, what, name, rust, item, other, other_span } => p(at, format!("{what} `{name}` becomes the Rust {item} `{rust}`, which {other} already is"))
                .label("same name in the generated Rust")
                .also(other_span, "the other one")
                .help_at(other_span, format!("{other} is at {}; rename one of them", Problem::AT)),
            // ---- limits ----
            E::TooManyFields { at, entity, fields, max } => p(at, format!("entity `{entity}` has {fields} fields"))
                .label(format!("more than {max}"))
                .help("split it into entities that reference one another"),
            E::TooManyTargets { at, entity, targets, max } => p(at, format!("entity `{entity}` is synced to {targets} stores"))
                .label(format!("more than {max}"))
                .help(format!("sync each entity to at most {max} stores")),
            E::TooLargeOutput { at, max, columns, fields, copies, total } => p(at, format!("the schema's artifacts would hold more than {max} columns"))
                .label(format!("{columns} columns here ({fields} fields × {copies} copies), {total} so far"))
                .help("each field is generated once for its home and once per sync target; sync fewer fields or stores, or split the schema into several crates"),
        }
    }
}
