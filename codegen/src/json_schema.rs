//! A JSON Schema (draft-07, the draft YAML language servers support best) of
//! the schema language, so that an editor completes keys and flags mistakes
//! as you type. `strata schema-json` prints it.
//!
//! The key lists come from the decoder ([`crate::syntax::SECTIONS`]), so the
//! editor and the compiler agree on every key; a test checks it.
//!
//! ```
//! let schema: serde_json::Value =
//!     serde_json::from_str(&strata_codegen::json_schema::schema_json()).unwrap();
//! assert!(schema["properties"]["entities"].is_object());
//! ```

use serde_json::{json, Map, Value};

use crate::model::{StoreKindTag, BUILTIN_TYPES};
use crate::syntax::{INDEX_METHODS, ON_DELETE_ACTIONS, PRECISIONS, SECTIONS, STORE_KIND_SETTINGS};

/// `string(20)`, `decimal(20,8)?`, `i64[]`, `Side`: the text form of a type.
const TYPE_PATTERN: &str = r"^\s*(uuid|string(\(\s*\d+\s*\))?|text|bool|i16|i32|i64|f64|decimal\(\s*\d+\s*,\s*\d+\s*\)|timestamptz|date|json|bytes|secret|[A-Z][A-Za-z0-9]*)\s*(\[\])?\s*\??\s*$";
const DURATION_PATTERN: &str = r"^\s*\d+(ms|s|m|h|d)\s*$";

/// The JSON Schema, pretty-printed.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The JSON Schema as a value.
pub fn schema() -> Value {
    let mut definitions = Map::new();
    for (name, def) in [
        ("store", store()),
        ("pool", pool()),
        ("enum", enum_()),
        ("entity", entity()),
        ("field", field()),
        ("index", index()),
        ("query", query()),
        ("cache", cache()),
        ("events", events()),
        ("search", search()),
        ("sync", sync()),
        ("type", type_()),
        (
            "name",
            json!({ "type": "string", "pattern": "^[a-z_][a-z0-9_]*$", "maxLength": 63 }),
        ),
        (
            "names",
            json!({ "anyOf": [ { "$ref": "#/definitions/name_or_ordered" },
                                      { "type": "array", "items": { "$ref": "#/definitions/name_or_ordered" } } ] }),
        ),
        (
            "name_or_ordered",
            json!({ "type": "string", "pattern": r"^\s*[a-z_][a-z0-9_]*(\s+(asc|desc|ASC|DESC))?\s*$" }),
        ),
        (
            "literal",
            json!({ "type": ["string", "number", "boolean"] }),
        ),
        (
            "duration",
            json!({ "type": "string", "pattern": DURATION_PATTERN, "examples": ["500ms", "30s", "5m", "1h"] }),
        ),
        (
            "template",
            json!({
                "type": "string",
                "description": "Text that may hold `${VAR}` or `${VAR:default}`, expanded from the environment at run time.",
            }),
        ),
        (
            "filter",
            json!({
                "description": "`{ field: value }` equalities, or a SQL boolean expression written as text.",
                "anyOf": [
                    { "type": "string" },
                    { "type": "object", "additionalProperties": { "anyOf": [ { "$ref": "#/definitions/literal" }, { "type": "null" } ] } },
                ],
            }),
        ),
    ] {
        definitions.insert(name.to_string(), def);
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Strata schema",
        "description": "A Strata schema file: stores, enums, entities and sync rules. A schema is one file or a folder of files merged into one model.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "version": { "description": "Version of the schema language.", "enum": [1, "1"] },
            "stores": {
                "description": "Named data stores. Values may use `${VAR}` and `${VAR:default}`.",
                "type": "object",
                "additionalProperties": { "$ref": "#/definitions/store" },
            },
            "enums": {
                "description": "Named enums: `Side: [BUY, SELL]`.",
                "type": "object",
                "additionalProperties": { "$ref": "#/definitions/enum_or_list" },
            },
            "entities": {
                "description": "Entities (tables, documents or time series), by UpperCamelCase name.",
                "type": "object",
                "additionalProperties": { "$ref": "#/definitions/entity" },
            },
            "sync": {
                "description": "Copies of entities kept in other stores (analytics, search).",
                "type": "array",
                "items": { "$ref": "#/definitions/sync" },
            },
        },
        "definitions": with_shorthands(definitions),
    })
}

/// The forms that may also be written short: an enum as a list, a field as
/// its type, an index as a list of fields.
fn with_shorthands(mut defs: Map<String, Value>) -> Value {
    defs.insert(
        "enum_or_list".into(),
        json!({ "anyOf": [
        { "type": "array", "items": { "type": "string" } },
        { "$ref": "#/definitions/enum" },
    ] }),
    );
    defs.insert(
        "field_or_type".into(),
        json!({ "anyOf": [
        { "$ref": "#/definitions/type" },
        { "$ref": "#/definitions/field" },
    ] }),
    );
    defs.insert(
        "index_or_fields".into(),
        json!({ "anyOf": [
        { "$ref": "#/definitions/names" },
        { "$ref": "#/definitions/index" },
    ] }),
    );
    Value::Object(defs)
}

fn keys(section: &str) -> &'static [&'static str] {
    SECTIONS
        .iter()
        .find(|(name, _)| *name == section)
        .map_or(&[], |(_, keys)| keys)
}

/// An object with exactly the decoder's keys for `section`; `props` describes
/// them (a key without a description gets an open schema).
fn object(section: &str, props: Value, required: &[&str]) -> Value {
    let mut properties = Map::new();
    for key in keys(section) {
        let p = props.get(*key).cloned().unwrap_or_else(|| json!({}));
        properties.insert(key.to_string(), p);
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

fn store() -> Value {
    let kinds: Vec<&str> = StoreKindTag::ALL.iter().map(|(n, _)| *n).collect();
    let mut s = object(
        "store",
        json!({
            "kind": { "description": "What kind of store this is.", "enum": kinds },
            "url": { "$ref": "#/definitions/template", "description": "Connection URL, e.g. `${DATABASE_URL}` or `${REDIS_URL:redis://127.0.0.1:6379}`." },
            "pool": { "$ref": "#/definitions/pool" },
            "replicas": { "type": "array", "items": { "$ref": "#/definitions/template" }, "description": "postgres: streaming replicas' URLs; reads go to them only when a caller asks." },
            "database": { "type": "string", "description": "clickhouse: the database." },
            "cluster": { "type": "string", "description": "clickhouse: the cluster for ON CLUSTER DDL." },
            "server_version": { "type": "string", "pattern": r"^\d+\.\d+$", "description": "clickhouse: the release the DDL must run on, e.g. \"24.8\"." },
            "index_prefix": { "type": "string", "description": "elasticsearch: prefix of every index name." },
            "org": { "$ref": "#/definitions/template", "description": "influxdb: the organisation." },
            "bucket": { "$ref": "#/definitions/template", "description": "influxdb: the bucket." },
            "token": { "$ref": "#/definitions/template", "description": "influxdb: the API token; use `${INFLUX_TOKEN}`." },
            "precision": { "enum": PRECISIONS, "description": "influxdb: timestamp precision (default ns)." },
            "server": { "enum": ["influxdb", "victoriametrics"], "description": "influxdb: the server that reads the line protocol (default influxdb); with victoriametrics, points refuse what it would change: integers past 2^53, -0, times finer than a millisecond, string fields." },
            "key_prefix": { "type": "string", "description": "redis: prefix of every key." },
            "schema": { "$ref": "#/definitions/name", "description": "postgres: the schema (namespace) of the tables." },
        }),
        &["kind"],
    );
    // Per kind, only its own settings.
    let all_of: Vec<Value> = STORE_KIND_SETTINGS
        .iter()
        .map(|(kind, settings)| {
            let mut allowed = vec!["kind", "url"];
            allowed.extend(settings.iter());
            json!({
                "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
                "then": { "propertyNames": { "enum": allowed } },
            })
        })
        .collect();
    s["allOf"] = Value::Array(all_of);
    s
}

fn pool() -> Value {
    object(
        "pool",
        json!({
            "max": { "type": "integer", "minimum": 1, "description": "Most connections." },
            "min": { "type": "integer", "minimum": 0, "description": "Fewest idle connections." },
            "acquire_timeout": { "$ref": "#/definitions/duration" },
            "idle_timeout": { "$ref": "#/definitions/duration" },
            "max_lifetime": { "$ref": "#/definitions/duration", "description": "A connection is closed once this old." },
            "statement_timeout": { "$ref": "#/definitions/duration", "description": "The server session's statement_timeout." },
            "application_name": { "type": "string", "maxLength": 63, "description": "The server session's application_name (pg_stat_activity)." },
        }),
        &[],
    )
}

fn enum_() -> Value {
    object(
        "enum",
        json!({
            "values": { "type": "array", "items": { "type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$" } },
            "sql_name": { "$ref": "#/definitions/name", "description": "PostgreSQL type name (default: the snake_case of the enum's name)." },
            "doc": { "type": "string" },
        }),
        &["values"],
    )
}

fn entity() -> Value {
    object(
        "entity",
        json!({
            "doc": { "type": "string", "description": "Documentation, copied to the generated code." },
            "store": { "type": "string", "description": "Home store; may be left out when there is exactly one postgres store." },
            "table": { "$ref": "#/definitions/name", "description": "Table name (default: snake_case of the entity name)." },
            "renamed_from": { "$ref": "#/definitions/name", "description": "Previous table name, so a migration renames instead of dropping." },
            "key": { "$ref": "#/definitions/names", "description": "Primary key: a field or a list of fields (default: `id`)." },
            "timestamps": { "type": "boolean", "description": "Adds created_at and updated_at, maintained for you." },
            "version": { "type": "boolean", "description": "Adds an optimistic-lock `version` column." },
            "fields": {
                "type": "object",
                "description": "Fields by snake_case name: a type (`string(20)?`) or a mapping.",
                "propertyNames": { "pattern": "^[a-z_][a-z0-9_]*$" },
                "additionalProperties": { "$ref": "#/definitions/field_or_type" },
            },
            "unique": { "type": "array", "description": "Unique constraints: each a field or a list of fields.", "items": { "$ref": "#/definitions/names" } },
            "indexes": { "type": "array", "items": { "$ref": "#/definitions/index_or_fields" } },
            "queries": { "type": "object", "description": "Named finder queries.", "additionalProperties": { "$ref": "#/definitions/query" } },
            "cache": { "$ref": "#/definitions/cache" },
            "events": {
                "description": "Change events on Redis Streams: a redis store name (defaults), or a mapping.",
                "anyOf": [ { "type": "string" }, { "$ref": "#/definitions/events" } ],
            },
            "search": { "$ref": "#/definitions/search" },
            "partition_by": { "$ref": "#/definitions/name", "description": "Time field the analytics copy is partitioned by." },
            "time": { "$ref": "#/definitions/name", "description": "Time-series entities: the timestamptz field." },
            "tags": { "$ref": "#/definitions/names", "description": "Time-series entities: the tag fields." },
            "measurement": { "$ref": "#/definitions/name", "description": "Time-series entities: the measurement (default: the table name)." },
        }),
        &[],
    )
}

fn type_() -> Value {
    let mut examples: Vec<String> = BUILTIN_TYPES
        .iter()
        .filter(|t| **t != "decimal")
        .map(|t| t.to_string())
        .collect();
    examples.extend(["decimal(20,8)", "string(20)", "string?", "i64[]"].map(String::from));
    json!({
        "type": "string",
        "description": "A type: uuid, string, string(n), text, bool, i16, i32, i64, f64, decimal(p,s), timestamptz, date, json, bytes, secret, an enum name, `T[]` for an array; `?` after it makes the field nullable.",
        "pattern": TYPE_PATTERN,
        "examples": examples,
    })
}

fn field() -> Value {
    object(
        "field",
        json!({
            "type": { "$ref": "#/definitions/type" },
            "nullable": { "type": "boolean" },
            "default": {
                "$ref": "#/definitions/literal",
                "description": "A literal, `now` (time fields), `generated` (uuid: random v4; i32/i64: identity), an enum member, or `empty` (arrays).",
            },
            "max": { "type": "integer", "minimum": 1, "description": "Maximum length of a `string`." },
            "unique": { "type": "boolean" },
            "references": { "type": "string", "description": "`Entity` (its key) or `Entity.field`." },
            "on_delete": { "enum": ON_DELETE_ACTIONS },
            "renamed_from": { "$ref": "#/definitions/name", "description": "Previous column name, so a migration renames instead of dropping." },
            "doc": { "type": "string" },
        }),
        &["type"],
    )
}

fn index() -> Value {
    object(
        "index",
        json!({
            "fields": { "$ref": "#/definitions/names", "description": "Fields, each optionally followed by `desc`." },
            "unique": { "type": "boolean" },
            "name": { "$ref": "#/definitions/name" },
            "method": { "enum": INDEX_METHODS },
            "where": { "$ref": "#/definitions/filter", "description": "Makes a partial index." },
        }),
        &["fields"],
    )
}

fn query() -> Value {
    object(
        "query",
        json!({
            "where": {
                "description": "Fields compared with parameters (a list), or `{ field: value }` (a fixed value; `~` for a parameter).",
                "anyOf": [ { "$ref": "#/definitions/names" }, { "$ref": "#/definitions/filter" } ],
            },
            "order": { "$ref": "#/definitions/names", "description": "Sort fields, each optionally followed by `desc`." },
            "limit": { "type": "integer", "minimum": 1 },
            "one": { "type": "boolean", "description": "Returns at most one row." },
        }),
        &[],
    )
}

fn cache() -> Value {
    object(
        "cache",
        json!({
            "store": { "type": "string", "description": "A redis store." },
            "ttl": { "$ref": "#/definitions/duration" },
        }),
        &["store"],
    )
}

fn events() -> Value {
    object(
        "events",
        json!({
            "store": { "type": "string", "description": "A redis store." },
            "partitions": { "type": "integer", "minimum": 1, "maximum": 1024, "description": "Streams the changes spread over by key hash (default 8)." },
            "max_len": { "type": "integer", "minimum": 1000, "description": "Each partition is trimmed to about this many entries (default 100000)." },
            "pubsub": { "type": "boolean", "description": "Also PUBLISH each change on a channel (default true)." },
        }),
        &["store"],
    )
}

fn search() -> Value {
    object(
        "search",
        json!({
            "store": { "type": "string", "description": "An elasticsearch store." },
            "text": { "$ref": "#/definitions/names", "description": "Fields indexed as full text (never a secret)." },
        }),
        &["store"],
    )
}

fn sync() -> Value {
    object(
        "sync",
        json!({
            "from": { "type": "string", "description": "An entity." },
            "to": {
                "description": "A store or a list of stores (clickhouse or elasticsearch).",
                "anyOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ],
            },
        }),
        &["from", "to"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the decoder knows is in the JSON Schema, and no other.
    #[test]
    fn every_decoder_key_is_in_the_json_schema() {
        let s = schema();
        for (section, keys) in SECTIONS {
            let props = if *section == "schema" {
                &s["properties"]
            } else {
                &s["definitions"][section]["properties"]
            };
            let mut got: Vec<&str> = props
                .as_object()
                .unwrap_or_else(|| panic!("no definition for `{section}`"))
                .keys()
                .map(String::as_str)
                .collect();
            let mut want = keys.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "keys of `{section}`");
        }
    }

    #[test]
    fn every_store_kind_and_setting_is_in_the_json_schema() {
        let s = schema();
        let kinds = &s["definitions"]["store"]["properties"]["kind"]["enum"];
        for (kind, settings) in STORE_KIND_SETTINGS {
            assert!(kinds.as_array().is_some_and(|k| k.contains(&json!(kind))));
            for setting in *settings {
                assert!(keys("store").contains(setting), "{kind}: {setting}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let text = schema_json();
        let s = schema();
        for part in text.split("\"$ref\": \"#/definitions/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(
                s["definitions"][name].is_object(),
                "dangling $ref to {name}"
            );
        }
    }

    #[test]
    fn the_type_pattern_accepts_the_types_of_the_language() {
        // The pattern is checked by editors, not here; keep it in step with parse_type.
        for t in [
            "uuid",
            "string(20)",
            "decimal(20,8)",
            "i64[]",
            "string?",
            "Side",
            "timestamptz?",
        ] {
            let is_enum = |n: &str| n == "Side";
            assert!(
                crate::model::parse_type(t.trim_end_matches('?'), is_enum).is_ok(),
                "{t}"
            );
        }
        assert!(TYPE_PATTERN.contains("decimal"));
    }
}
