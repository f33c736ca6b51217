//! The language tour (`tests/fixtures/language/language_tour.yaml`) compiles to
//! the model the language reference (`the README's language reference`) promises.

use std::path::Path;

use strata_codegen::model::{
    Default, EntityKind, IndexMethod, OnDelete, Predicate, Reference, ScalarType, StoreKind,
    TemplatePart, Type, VersionSource,
};
use strata_codegen::Model;

fn tour() -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/language/language_tour.yaml");
    let sources = strata_codegen::load(path).expect("tour loads");
    strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

#[test]
fn types_nullability_and_defaults() {
    let m = tour();
    let a = m.entity("Account").expect("Account");
    let ty = |f: &str| a.field(f).expect(f).ty.clone();
    assert_eq!(
        ty("email"),
        Type::Scalar(ScalarType::String { max: Some(255) })
    );
    assert_eq!(
        ty("name"),
        Type::Scalar(ScalarType::String { max: Some(100) })
    );
    assert_eq!(
        ty("balance"),
        Type::Scalar(ScalarType::Decimal {
            precision: 28,
            scale: 8
        })
    );
    assert_eq!(
        ty("tags"),
        Type::Array(ScalarType::String { max: Some(20) })
    );
    assert_eq!(ty("level"), Type::Scalar(ScalarType::I16));
    assert!(a.field("api_key").expect("api_key").nullable);
    assert!(a.field("api_key").expect("api_key").is_secret());
    assert!(!a.field("password").expect("password").nullable);
    assert_eq!(
        a.field("id").expect("id").default,
        Some(Default::GeneratedUuid)
    );
    assert_eq!(
        a.field("tags").expect("tags").default,
        Some(Default::EmptyArray)
    );
    assert_eq!(
        a.field("active").expect("active").default,
        Some(Default::Bool(true))
    );
    assert_eq!(
        a.field("settings").expect("settings").default,
        Some(Default::String("{}".into()))
    );
    // timestamps and version add maintained columns.
    for f in ["created_at", "updated_at", "version"] {
        assert!(a.field(f).is_some(), "{f}");
    }
    assert!(a.version.is_some());
    let o = m.entity("Order").expect("Order");
    assert_eq!(o.field("id").expect("id").default, Some(Default::Identity));
    assert_eq!(
        o.field("status").expect("status").default,
        Some(Default::EnumMember("PENDING".into()))
    );
    assert_eq!(
        o.field("placed_at").expect("placed_at").default,
        Some(Default::Now)
    );
    assert_eq!(o.name.sql, "order");
}

#[test]
fn keys_constraints_indexes_and_references() {
    let m = tour();
    let fill = m.entity("Fill").expect("Fill");
    let key: Vec<&str> = fill.key_fields().map(|f| f.name.schema.as_str()).collect();
    assert_eq!(key, ["order_id", "seq"]);
    let o = m.entity("Order").expect("Order");
    assert_eq!(o.uniques.len(), 1);
    assert_eq!(o.uniques[0].fields.len(), 3);
    assert_eq!(o.indexes.len(), 3);
    assert!(o.indexes[0].columns[1].desc);
    assert!(matches!(&o.indexes[1].predicate, Some(Predicate::Equals(v)) if v.len() == 1));
    assert_eq!(o.indexes[2].name, "order_priced_idx");
    assert!(matches!(&o.indexes[2].predicate, Some(Predicate::Sql(s)) if s == "price > 0"));
    assert_eq!(o.indexes[2].method, IndexMethod::BTree);
    let r = o
        .field("account_id")
        .and_then(|f| f.references.clone())
        .expect("reference");
    let named = |r: &Reference| {
        let e = &m[r.entity];
        (e.name.schema.as_str(), e[r.field].name.schema.as_str())
    };
    assert_eq!(
        (named(&r), r.on_delete),
        (("Account", "id"), OnDelete::Cascade)
    );
    let r = o
        .field("owner")
        .and_then(|f| f.references.clone())
        .expect("reference");
    assert_eq!((named(&r).1, r.on_delete), ("email", OnDelete::SetNull));
    let q = o
        .queries
        .iter()
        .find(|q| q.name.schema == "for_symbol")
        .expect("query");
    assert_eq!((q.params.len(), q.fixed.len(), q.limit), (1, 1, Some(50)));
    assert!(q.order[0].desc);
    assert!(m.entity("Account").expect("Account").queries[0].one);
}

#[test]
fn stores_templates_series_and_sync() {
    let m = tour();
    let main = m.store("main").expect("main");
    assert!(
        matches!(&main.kind, StoreKind::Postgres { pool, .. } if pool.max == Some(10) && pool.acquire_timeout == Some(30_000))
    );
    let StoreKind::Postgres { pool, replicas, .. } = &main.kind else {
        panic!("main is a postgres store");
    };
    assert_eq!(pool.statement_timeout, Some(15_000));
    assert_eq!(pool.application_name.as_deref(), Some("trading"));
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0].raw, "${REPLICA_URL}");
    // Enums know the postgres stores that create their types (a series
    // using `Side` elsewhere does not count), and the schema Rust names.
    for en in &m.enums {
        assert_eq!(
            en.stores,
            [m.store_id("main").unwrap()],
            "{}",
            en.name.schema
        );
        assert_eq!(en.pg_schema, None, "{}", en.name.schema);
    }
    let url = m.store("cache").and_then(|s| s.url.clone()).expect("url");
    assert_eq!(
        url.parts,
        [TemplatePart::Var {
            name: "REDIS_URL".into(),
            default: Some("redis://127.0.0.1:6379".into())
        }]
    );
    assert_eq!(
        url.expand(|_| None).as_deref(),
        Ok("redis://127.0.0.1:6379")
    );
    assert_eq!(
        url.expand(|_| Some("redis://x".into())).as_deref(),
        Ok("redis://x")
    );
    let db = m.store("main").and_then(|s| s.url.clone()).expect("url");
    assert_eq!(db.expand(|_| None), Err("DATABASE_URL".to_string()));
    let tick = m.entity("Tick").expect("Tick");
    assert!(
        matches!(&tick.kind, EntityKind::Series { tags, measurement, .. } if tags.len() == 2 && measurement == "ticks")
    );
    // `decimal(20,8)` unquoted inside `{ }` is read as one type.
    assert_eq!(
        tick.field("price").expect("price").ty,
        Type::Scalar(ScalarType::Decimal {
            precision: 20,
            scale: 8
        })
    );
    let rules: Vec<(&str, &str)> = m
        .sync
        .iter()
        .map(|t| (m[t.entity].name.schema.as_str(), m[t.store].name.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("Order", "analytics"),
            ("Order", "search"),
            ("Account", "analytics")
        ]
    );
    // Each target holds its entity's copy projection, versioned by commit position.
    for t in &m.sync {
        assert_eq!(t.fields, m[t.entity].copy);
        assert_eq!(t.version, VersionSource::CommitLsn);
    }
    let o = m.entity("Order").expect("Order");
    assert_eq!(o.cache.as_ref().and_then(|c| c.ttl_ms), Some(30_000));
    assert!(o.search.is_some() && o.partition_by.is_some());
}

#[test]
fn a_schema_may_be_split_across_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let sources = strata_codegen::load(&dir).expect("schema loads");
    assert!(sources.files.len() > 1);
    let m = strata_codegen::compile(&sources).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    // A reference from one file to an entity of another resolves.
    assert!(m
        .entity("Strategy")
        .and_then(|s| s.field("owner_id"))
        .and_then(|f| f.references.as_ref())
        .is_some());
}

/// `docs/strata.schema.json` is what `strata schema-json` prints, so editors
/// pointed at the checked-in file see the language of this compiler.
#[test]
fn the_checked_in_json_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/strata.schema.json");
    let on_disk = std::fs::read_to_string(&path).expect("docs/strata.schema.json");
    assert!(
        on_disk == strata_codegen::json_schema::schema_json(),
        "docs/strata.schema.json is stale: run `strata schema-json > docs/strata.schema.json`"
    );
}
