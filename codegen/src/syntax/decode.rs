//! Reads the spanned YAML tree into the schema AST. Every shape mistake is
//! collected as a [`Problem`]; unknown keys are errors with a "did you mean".

use super::ast::*;
use super::yaml::{Node, NodeKind};
use crate::diagnostics::{Problem, Problems};
use crate::source::{Span, Spanned};

const TOP_KEYS: &[&str] = &["version", "stores", "enums", "entities", "sync"];
const STORE_KEYS: &[&str] = &[
    "kind",
    "url",
    "pool",
    "database",
    "cluster",
    "server_version",
    "index_prefix",
    "org",
    "bucket",
    "token",
    "precision",
    "key_prefix",
    "schema",
];
const ENUM_KEYS: &[&str] = &["values", "sql_name", "doc"];
const ENTITY_KEYS: &[&str] = &[
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
    "search",
    "partition_by",
    "time",
    "tags",
    "measurement",
];
const FIELD_KEYS: &[&str] = &[
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
const INDEX_KEYS: &[&str] = &["fields", "unique", "name", "method", "where"];
const QUERY_KEYS: &[&str] = &["where", "order", "limit", "one"];
const CACHE_KEYS: &[&str] = &["store", "ttl"];
const SEARCH_KEYS: &[&str] = &["store", "text"];
const SYNC_KEYS: &[&str] = &["from", "to"];
const POOL_KEYS: &[&str] = &["max", "min", "acquire_timeout", "idle_timeout"];

/// The settings each store kind takes besides `kind` and `url`.
pub const STORE_KIND_SETTINGS: &[(&str, &[&str])] = &[
    ("postgres", &["pool", "schema"]),
    ("redis", &["key_prefix"]),
    ("clickhouse", &["database", "cluster", "server_version"]),
    ("elasticsearch", &["index_prefix"]),
    ("influxdb", &["org", "bucket", "token", "precision"]),
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
    ("search", SEARCH_KEYS),
    ("sync", SYNC_KEYS),
    ("pool", POOL_KEYS),
];

/// Decodes one file's tree. `None` (an empty file) gives an empty schema.
pub fn decode(root: Option<&Node>, probs: &mut Problems) -> SchemaFile {
    let mut out = SchemaFile::default();
    let Some(root) = root else { return out };
    let Some(mut top) = MapReader::new(root, "the schema file", TOP_KEYS, probs) else {
        return out;
    };
    if let Some(v) = top.get("version") {
        if v.as_str() != Some("1") {
            probs.push(
                Problem::new(
                    "strata::version",
                    v.span,
                    "unsupported schema language version",
                )
                .label("expected 1")
                .help("this compiler reads version 1 of the schema language"),
            );
        }
    }
    if let Some(n) = top.get("stores") {
        for (k, v) in entries(n, "`stores`", probs) {
            if let Some(s) = store(k, v, probs) {
                out.stores.push(s);
            }
        }
    }
    if let Some(n) = top.get("enums") {
        for (k, v) in entries(n, "`enums`", probs) {
            match enum_decl(k, v, probs) {
                Some(e) => out.enums.push(e),
                None => out.broken.push(key_name(k).value),
            }
        }
    }
    if let Some(n) = top.get("entities") {
        for (k, v) in entries(n, "`entities`", probs) {
            match entity(k, v, probs) {
                Some(e) => out.entities.push(e),
                None => out.broken.push(key_name(k).value),
            }
        }
    }
    if let Some(n) = top.get("sync") {
        for item in seq(n, "`sync`", probs) {
            if let Some(s) = sync(item, probs) {
                out.sync.push(s);
            }
        }
    }
    out
}

/// A mapping whose keys are checked against a known list.
struct MapReader<'a> {
    entries: &'a [(Node, Node)],
    span: Span,
}

impl<'a> MapReader<'a> {
    fn new(node: &'a Node, what: &str, known: &[&str], probs: &mut Problems) -> Option<Self> {
        let NodeKind::Map(entries) = &node.kind else {
            probs.push(
                Problem::new(
                    "strata::expected_mapping",
                    node.span,
                    format!("{what} must be a mapping"),
                )
                .label(format!("found {}", node.describe()))
                .help(format!(
                    "write `key: value` pairs; known keys: {}",
                    known.join(", ")
                )),
            );
            return None;
        };
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if !known.contains(&key) {
                let mut p = Problem::new(
                    "strata::unknown_key",
                    k.span,
                    format!("unknown key `{key}` in {what}"),
                )
                .label("unknown key");
                if key.ends_with(')')
                    && key
                        .trim_end_matches(')')
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ' ')
                {
                    // `{ type: decimal(20,8) }`: the comma ended the flow entry.
                    p = p.help("inside `{ }` a comma separates entries: quote the type, as in `type: \"decimal(20,8)\"`");
                }
                probs.push(
                    p.suggest_when(probs, key, known.iter().copied())
                        .help_or(format!("known keys: {}", known.join(", "))),
                );
            }
        }
        Some(MapReader {
            entries,
            span: node.span,
        })
    }
    fn get(&mut self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

fn entries<'a>(node: &'a Node, what: &str, probs: &mut Problems) -> Vec<(&'a Node, &'a Node)> {
    match &node.kind {
        NodeKind::Map(e) => e.iter().map(|(k, v)| (k, v)).collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            probs.push(
                Problem::new(
                    "strata::expected_mapping",
                    node.span,
                    format!("{what} must be a mapping of names"),
                )
                .label(format!("found {}", node.describe()))
                .help("write one `Name: ...` entry per line"),
            );
            Vec::new()
        }
    }
}

fn seq<'a>(node: &'a Node, what: &str, probs: &mut Problems) -> Vec<&'a Node> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            probs.push(
                Problem::new(
                    "strata::expected_list",
                    node.span,
                    format!("{what} must be a list"),
                )
                .label(format!("found {}", node.describe()))
                .help("write `[a, b]` or one `- item` per line"),
            );
            Vec::new()
        }
    }
}

/// A scalar or a list of scalars, as a list.
fn names(node: &Node, what: &str, probs: &mut Problems) -> Vec<Name> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().filter_map(|n| name(n, what, probs)).collect(),
        _ => name(node, what, probs).into_iter().collect(),
    }
}

fn name(node: &Node, what: &str, probs: &mut Problems) -> Option<Name> {
    match &node.kind {
        NodeKind::Scalar(s, _) if !node.is_null() => Some(Spanned::new(s.clone(), node.span)),
        _ => {
            probs.push(
                Problem::new(
                    "strata::expected_name",
                    node.span,
                    format!("{what} must be a name"),
                )
                .label(format!("found {}", node.describe()))
                .help("write a plain name such as `symbol`"),
            );
            None
        }
    }
}

fn boolean(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<bool>> {
    match node.kind {
        NodeKind::Scalar(ref s, false) if s == "true" => Some(Spanned::new(true, node.span)),
        NodeKind::Scalar(ref s, false) if s == "false" => Some(Spanned::new(false, node.span)),
        _ => {
            probs.push(
                Problem::new(
                    "strata::expected_bool",
                    node.span,
                    format!("{what} must be true or false"),
                )
                .label(format!("found {}", node.describe_value()))
                .help("write `true` or `false` without quotes"),
            );
            None
        }
    }
}

fn number(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<u32>> {
    match node.as_str().and_then(|s| s.parse::<u32>().ok()) {
        Some(n) => Some(Spanned::new(n, node.span)),
        None => {
            probs.push(
                Problem::new(
                    "strata::expected_number",
                    node.span,
                    format!("{what} must be a whole number"),
                )
                .label(format!("found {}", node.describe_value()))
                .help("write a number such as `100`"),
            );
            None
        }
    }
}

/// `30s`, `500ms`, `5m`, `1h`, `1d` as milliseconds.
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

fn duration(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<u64>> {
    match node.as_str().and_then(parse_duration) {
        Some(ms) => Some(Spanned::new(ms, node.span)),
        None => {
            probs.push(
                Problem::new(
                    "strata::expected_duration",
                    node.span,
                    format!("{what} must be a duration"),
                )
                .label(format!("found {}", node.describe_value()))
                .help("write a number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`"),
            );
            None
        }
    }
}

fn literal(node: &Node, what: &str, probs: &mut Problems) -> Option<Spanned<DefaultLit>> {
    match &node.kind {
        NodeKind::Scalar(s, true) => Some(Spanned::new(DefaultLit::Quoted(s.clone()), node.span)),
        NodeKind::Scalar(s, false) if !node.is_null() => {
            Some(Spanned::new(DefaultLit::Plain(s.clone()), node.span))
        }
        _ => {
            probs.push(
                Problem::new("strata::expected_literal", node.span, format!("{what} must be a single value"))
                    .label(format!("found {}", node.describe()))
                    .help("write a literal such as `0`, `true`, `'text'`, an enum member, `now` or `generated`"),
            );
            None
        }
    }
}

trait DescribeValue {
    fn describe_value(&self) -> String;
}
impl DescribeValue for Node {
    fn describe_value(&self) -> String {
        match &self.kind {
            NodeKind::Scalar(s, _) if !self.is_null() => format!("`{}`", truncate(s)),
            _ => self.describe().to_string(),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

fn key_name(k: &Node) -> Name {
    Spanned::new(k.as_str().unwrap_or_default().to_string(), k.span)
}

fn doc(node: Option<&Node>, probs: &mut Problems) -> Option<String> {
    node.and_then(|n| name(n, "`doc`", probs)).map(|n| n.value)
}

fn store(k: &Node, v: &Node, probs: &mut Problems) -> Option<StoreDecl> {
    let what = format!("store `{}`", k.as_str().unwrap_or_default());
    let mut m = MapReader::new(v, &what, STORE_KEYS, probs)?;
    let kind = match m.get("kind") {
        Some(n) => name(n, "`kind`", probs)?,
        None => {
            probs.push(
                Problem::new(
                    "strata::missing_key",
                    k.span,
                    format!("{what} has no `kind`"),
                )
                .label("needs `kind:`")
                .help("add `kind: postgres` (or redis, clickhouse, elasticsearch, influxdb)"),
            );
            return None;
        }
    };
    let url = m.get("url").and_then(|n| name(n, "`url`", probs));
    let mut settings = Vec::new();
    for (key, val) in m.entries {
        let key_s = key.as_str().unwrap_or_default();
        if matches!(key_s, "kind" | "url") || !STORE_KEYS.contains(&key_s) {
            continue;
        }
        let setting = match &val.kind {
            NodeKind::Map(inner) => Setting::Map(
                inner
                    .iter()
                    .filter_map(|(ik, iv)| Some((key_name(ik), name(iv, "a setting", probs)?)))
                    .collect(),
            ),
            _ => Setting::Scalar(name(val, &format!("`{key_s}`"), probs)?),
        };
        settings.push((key_name(key), setting));
    }
    Some(StoreDecl {
        name: key_name(k),
        kind,
        url,
        settings,
        span: m.span,
    })
}

fn enum_decl(k: &Node, v: &Node, probs: &mut Problems) -> Option<EnumDecl> {
    let what = format!("enum `{}`", k.as_str().unwrap_or_default());
    let (values, sql_name, doc_s) = match &v.kind {
        NodeKind::Seq(_) => (names(v, "an enum value", probs), None, None),
        _ => {
            let mut m = MapReader::new(v, &what, ENUM_KEYS, probs)?;
            let values = match m.get("values") {
                Some(n) => names(n, "an enum value", probs),
                None => Vec::new(),
            };
            let sql_name = m.get("sql_name").and_then(|n| name(n, "`sql_name`", probs));
            (values, sql_name, doc(m.get("doc"), probs))
        }
    };
    Some(EnumDecl {
        name: key_name(k),
        values,
        sql_name,
        doc: doc_s,
        span: v.span,
    })
}

fn entity(k: &Node, v: &Node, probs: &mut Problems) -> Option<EntityDecl> {
    let before = probs.list.len();
    let mut e = entity_parts(k, v, probs)?;
    e.incomplete = probs.list.len() > before;
    Some(e)
}

fn entity_parts(k: &Node, v: &Node, probs: &mut Problems) -> Option<EntityDecl> {
    let what = format!("entity `{}`", k.as_str().unwrap_or_default());
    let mut m = MapReader::new(v, &what, ENTITY_KEYS, probs)?;
    let mut e = EntityDecl {
        name: key_name(k),
        span: v.span,
        ..Default::default()
    };
    e.doc = doc(m.get("doc"), probs);
    e.store = m.get("store").and_then(|n| name(n, "`store`", probs));
    e.table = m.get("table").and_then(|n| name(n, "`table`", probs));
    e.renamed_from = m
        .get("renamed_from")
        .and_then(|n| name(n, "`renamed_from`", probs));
    if let Some(n) = m.get("key") {
        e.key = names(n, "a key field", probs);
        e.key_span = Some(n.span);
    }
    e.timestamps = m
        .get("timestamps")
        .and_then(|n| boolean(n, "`timestamps`", probs));
    e.version = m
        .get("version")
        .and_then(|n| boolean(n, "`version`", probs));
    e.partition_by = m
        .get("partition_by")
        .and_then(|n| name(n, "`partition_by`", probs));
    e.time = m.get("time").and_then(|n| name(n, "`time`", probs));
    e.measurement = m
        .get("measurement")
        .and_then(|n| name(n, "`measurement`", probs));
    if let Some(n) = m.get("tags") {
        e.tags = names(n, "a tag field", probs);
    }
    if let Some(n) = m.get("fields") {
        for (fk, fv) in entries(n, "`fields`", probs) {
            match field(fk, fv, probs) {
                Some(f) => e.fields.push(f),
                None => e.broken_fields.push(key_name(fk).value),
            }
        }
    }
    if let Some(n) = m.get("unique") {
        for item in seq(n, "`unique`", probs) {
            e.unique.push(Spanned::new(
                names(item, "a unique field", probs),
                item.span,
            ));
        }
    }
    if let Some(n) = m.get("indexes") {
        for item in seq(n, "`indexes`", probs) {
            if let Some(i) = index(item, probs) {
                e.indexes.push(i);
            }
        }
    }
    if let Some(n) = m.get("queries") {
        for (qk, qv) in entries(n, "`queries`", probs) {
            if let Some(q) = query(qk, qv, probs) {
                e.queries.push(q);
            }
        }
    }
    if let Some(n) = m.get("cache") {
        if let Some(mut c) = MapReader::new(n, "`cache`", CACHE_KEYS, probs) {
            let store = c.get("store").and_then(|s| name(s, "`store`", probs));
            let ttl = c.get("ttl").and_then(|t| duration(t, "`ttl`", probs));
            match store {
                Some(store) => {
                    e.cache = Some(CacheDecl {
                        store,
                        ttl,
                        span: n.span,
                    })
                }
                None => probs.push(missing(
                    n.span,
                    "`cache`",
                    "store",
                    "add `store: cache` naming a redis store",
                )),
            }
        }
    }
    if let Some(n) = m.get("search") {
        if let Some(mut c) = MapReader::new(n, "`search`", SEARCH_KEYS, probs) {
            let store = c.get("store").and_then(|s| name(s, "`store`", probs));
            let text = c
                .get("text")
                .map(|t| names(t, "a text field", probs))
                .unwrap_or_default();
            match store {
                Some(store) => {
                    e.search = Some(SearchDecl {
                        store,
                        text,
                        span: n.span,
                    })
                }
                None => probs.push(missing(
                    n.span,
                    "`search`",
                    "store",
                    "add `store: search` naming an elasticsearch store",
                )),
            }
        }
    }
    Some(e)
}

fn missing(span: Span, what: &str, key: &str, help: &str) -> Problem {
    Problem::new(
        "strata::missing_key",
        span,
        format!("{what} has no `{key}`"),
    )
    .label(format!("needs `{key}:`"))
    .help(help)
}

fn field(k: &Node, v: &Node, probs: &mut Problems) -> Option<FieldDecl> {
    let mut f = FieldDecl {
        name: key_name(k),
        span: Span::new(k.span.file, k.span.start, v.span.end),
        ..Default::default()
    };
    match &v.kind {
        _ if v.is_null() => {
            probs.push(missing(
                k.span,
                &format!("field `{}`", f.name.value),
                "type",
                "write its type after the colon, as in `symbol: string(20)`",
            ));
            return None;
        }
        NodeKind::Scalar(..) => f.ty = name(v, "a field type", probs)?,
        _ => {
            let what = format!("field `{}`", k.as_str().unwrap_or_default());
            let mut m = MapReader::new(v, &what, FIELD_KEYS, probs)?;
            match m.get("type") {
                Some(t) => f.ty = name(t, "`type`", probs)?,
                None => {
                    probs.push(missing(
                        k.span,
                        &what,
                        "type",
                        "add `type: string` (or another type)",
                    ));
                    return None;
                }
            }
            f.nullable = m
                .get("nullable")
                .and_then(|n| boolean(n, "`nullable`", probs));
            f.default = m
                .get("default")
                .and_then(|n| literal(n, "`default`", probs));
            f.max = m.get("max").and_then(|n| number(n, "`max`", probs));
            f.unique = m.get("unique").and_then(|n| boolean(n, "`unique`", probs));
            f.references = m
                .get("references")
                .and_then(|n| name(n, "`references`", probs));
            f.on_delete = m
                .get("on_delete")
                .and_then(|n| name(n, "`on_delete`", probs));
            f.renamed_from = m
                .get("renamed_from")
                .and_then(|n| name(n, "`renamed_from`", probs));
            f.doc = doc(m.get("doc"), probs);
        }
    }
    // `type?` is shorthand for `nullable: true`.
    if let Some(stripped) = f.ty.value.strip_suffix('?') {
        let s = f.ty.span;
        f.ty = Spanned::new(stripped.trim_end().to_string(), s);
        if let Some(n) = f.nullable.as_ref().filter(|n| !n.value) {
            probs.push(
                Problem::new(
                    "strata::conflict",
                    n.span,
                    "`nullable: false` contradicts the `?` of the type",
                )
                .label("not nullable")
                .help("drop the `?` or the `nullable: false`"),
            );
        }
        f.nullable = Some(Spanned::new(true, s));
    }
    Some(f)
}

/// `"created_at desc"` → (`created_at`, true).
fn ordered(n: Name) -> (Name, bool) {
    let mut parts = n.value.split_whitespace();
    let field = parts.next().unwrap_or_default().to_string();
    let desc = match parts.next() {
        Some(d) if d.eq_ignore_ascii_case("desc") => true,
        Some(a) if a.eq_ignore_ascii_case("asc") => false,
        None => false,
        // Unknown suffix: keep the whole text as the field name so the resolver reports it.
        Some(_) => return (n, false),
    };
    let span = Span::new(n.span.file, n.span.start, n.span.start + field.len());
    (Spanned::new(field, span), desc)
}

fn index(node: &Node, probs: &mut Problems) -> Option<IndexDecl> {
    let mut i = IndexDecl {
        columns: Vec::new(),
        unique: false,
        name: None,
        method: None,
        filter: None,
        span: node.span,
    };
    match &node.kind {
        NodeKind::Seq(_) | NodeKind::Scalar(..) => {
            i.columns = names(node, "an index field", probs)
                .into_iter()
                .map(ordered)
                .collect();
        }
        NodeKind::Map(_) => {
            let mut m = MapReader::new(node, "an index", INDEX_KEYS, probs)?;
            match m.get("fields") {
                Some(f) => {
                    i.columns = names(f, "an index field", probs)
                        .into_iter()
                        .map(ordered)
                        .collect()
                }
                None => {
                    probs.push(missing(
                        node.span,
                        "an index",
                        "fields",
                        "add `fields: [a, b]`",
                    ));
                    return None;
                }
            }
            i.unique = m
                .get("unique")
                .and_then(|n| boolean(n, "`unique`", probs))
                .is_some_and(|b| b.value);
            i.name = m.get("name").and_then(|n| name(n, "`name`", probs));
            i.method = m.get("method").and_then(|n| name(n, "`method`", probs));
            i.filter = m.get("where").and_then(|n| filter(n, probs));
        }
    }
    Some(i)
}

fn filter(node: &Node, probs: &mut Problems) -> Option<Filter> {
    match &node.kind {
        NodeKind::Map(entries) => Some(Filter::Equals(
            entries
                .iter()
                .filter_map(|(k, v)| Some((key_name(k), literal(v, "a filter value", probs)?)))
                .collect(),
        )),
        _ => name(node, "`where`", probs).map(Filter::Sql),
    }
}

fn query(k: &Node, v: &Node, probs: &mut Problems) -> Option<QueryDecl> {
    let what = format!("query `{}`", k.as_str().unwrap_or_default());
    let mut m = MapReader::new(v, &what, QUERY_KEYS, probs)?;
    let mut q = QueryDecl {
        name: key_name(k),
        params: Vec::new(),
        fixed: Vec::new(),
        order: Vec::new(),
        limit: None,
        one: false,
        span: v.span,
    };
    if let Some(w) = m.get("where") {
        match &w.kind {
            NodeKind::Map(entries) => {
                for (fk, fv) in entries {
                    // `{ status: PENDING }` fixes a value; `{ symbol: ? }`... is not a thing: a bare
                    // list names parameters. A mapping value of `~` (null) makes a parameter too.
                    if fv.is_null() {
                        q.params.push(key_name(fk));
                    } else if let Some(l) = literal(fv, "a query value", probs) {
                        q.fixed.push((key_name(fk), l));
                    }
                }
            }
            _ => q.params = names(w, "a query field", probs),
        }
    }
    if let Some(o) = m.get("order") {
        q.order = names(o, "an order field", probs)
            .into_iter()
            .map(ordered)
            .collect();
    }
    q.limit = m.get("limit").and_then(|n| number(n, "`limit`", probs));
    q.one = m
        .get("one")
        .and_then(|n| boolean(n, "`one`", probs))
        .is_some_and(|b| b.value);
    Some(q)
}

fn sync(node: &Node, probs: &mut Problems) -> Option<SyncDecl> {
    let mut m = MapReader::new(node, "a sync rule", SYNC_KEYS, probs)?;
    let from = match m.get("from") {
        Some(n) => name(n, "`from`", probs)?,
        None => {
            probs.push(missing(
                node.span,
                "a sync rule",
                "from",
                "add `from: Entity`",
            ));
            return None;
        }
    };
    let to = match m.get("to") {
        Some(n) => names(n, "a store", probs),
        None => {
            probs.push(missing(
                node.span,
                "a sync rule",
                "to",
                "add `to: store` or `to: [store, store]`",
            ));
            return None;
        }
    };
    Some(SyncDecl {
        from,
        to,
        span: node.span,
    })
}
