//! The keys of every section of the language: one list, read by the decoder,
//! the JSON Schema and the tests.

pub(crate) const TOP_KEYS: &[&str] = &["version", "stores", "enums", "entities", "sync"];
pub(crate) const STORE_KEYS: &[&str] = &[
    "kind",
    "url",
    "pool",
    "replicas",
    "database",
    "cluster",
    "server_version",
    "index_prefix",
    "org",
    "bucket",
    "token",
    "precision",
    "server",
    "key_prefix",
    "schema",
];
pub(crate) const ENUM_KEYS: &[&str] = &["values", "sql_name", "doc"];
pub(crate) const ENTITY_KEYS: &[&str] = &[
    "doc",
    "store",
    "table",
    "renamed_from",
    "key",
    "timestamps",
    "version",
    "fields",
    "unique",
    "indexes",
    "queries",
    "cache",
    "events",
    "search",
    "partition_by",
    "time",
    "tags",
    "measurement",
];
pub(crate) const FIELD_KEYS: &[&str] = &[
    "type",
    "nullable",
    "default",
    "max",
    "unique",
    "references",
    "on_delete",
    "renamed_from",
    "doc",
];
pub(crate) const INDEX_KEYS: &[&str] = &["fields", "unique", "name", "method", "where"];
pub(crate) const QUERY_KEYS: &[&str] = &["where", "order", "limit", "one"];
pub(crate) const CACHE_KEYS: &[&str] = &["store", "ttl"];
pub(crate) const EVENTS_KEYS: &[&str] = &["store", "partitions", "max_len", "pubsub"];
pub(crate) const SEARCH_KEYS: &[&str] = &["store", "text"];
pub(crate) const SYNC_KEYS: &[&str] = &["from", "to"];
pub(crate) const POOL_KEYS: &[&str] = &[
    "max",
    "min",
    "acquire_timeout",
    "idle_timeout",
    "max_lifetime",
    "statement_timeout",
    "application_name",
];

/// The settings each store kind takes besides `kind` and `url`.
pub const STORE_KIND_SETTINGS: &[(&str, &[&str])] = &[
    ("postgres", &["pool", "replicas", "schema"]),
    ("redis", &["key_prefix"]),
    ("clickhouse", &["database", "cluster", "server_version"]),
    ("elasticsearch", &["index_prefix"]),
    (
        "influxdb",
        &["org", "bucket", "token", "precision", "server"],
    ),
];
/// `on_delete` actions of a reference.
pub const ON_DELETE_ACTIONS: &[&str] = &[
    "no_action",
    "restrict",
    "cascade",
    "set_null",
    "set_default",
];
/// Index methods.
pub const INDEX_METHODS: &[&str] = &["btree", "hash", "gin", "gist", "brin"];
/// InfluxDB write precisions.
pub const PRECISIONS: &[&str] = &["ns", "us", "ms", "s"];

/// Keys of every section, for the JSON Schema and for tests.
pub const SECTIONS: &[(&str, &[&str])] = &[
    ("schema", TOP_KEYS),
    ("store", STORE_KEYS),
    ("enum", ENUM_KEYS),
    ("entity", ENTITY_KEYS),
    ("field", FIELD_KEYS),
    ("index", INDEX_KEYS),
    ("query", QUERY_KEYS),
    ("cache", CACHE_KEYS),
    ("events", EVENTS_KEYS),
    ("search", SEARCH_KEYS),
    ("sync", SYNC_KEYS),
    ("pool", POOL_KEYS),
];

/// `30s`, `500ms`, `5m`, `1h`, `1d` as milliseconds.
/// The help of a duration too large to hold.
pub const DURATION_RANGE: &str =
    "a duration holds at most 18446744073709551615 ms (about 584 million years): write a smaller one";

/// Whether `s` is written as a duration (digits and a known unit) whose
/// value does not fit in `u64` milliseconds: out of range, not malformed.
pub fn duration_overflows(s: &str) -> bool {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    !n.is_empty() && ["ms", "s", "m", "h", "d"].contains(&unit) && parse_duration(s).is_none()
}

pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mul = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mul)
}
