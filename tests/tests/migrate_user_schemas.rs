//! Schemas written as a new user would, from the docs alone (a lending
//! library split across files, an IoT fleet in its own PostgreSQL schema, a
//! multi-tenant billing folder with composite keys): each is migrated from an
//! empty database through the `strata` CLI, rows are written, the v2 schema
//! (renames, new tables, widened and narrowed types, enum values added and
//! removed, new constraints) is diffed and applied, and the live catalog must
//! match the schema's, with every row kept.

mod pg_common;

use pg_common::{catalog, live, root, strata, TempDir, TestDb};

fn fixture(p: &str) -> String {
    root()
        .join("tests/fixtures/language")
        .join(p)
        .display()
        .to_string()
}

struct Evolution<'a> {
    v1: &'a str,
    v2: &'a str,
    /// PostgreSQL schema (namespace) of the store, `None` for `public`.
    namespace: Option<&'a str>,
    /// Rows written after v1.
    seed: &'a [&'a str],
    /// Extra `migrate diff` flags for v2.
    flags: &'a [&'a str],
    /// (query returning one i64, expected value) after v2.
    checks: &'a [(&'a str, i64)],
}

async fn assert_catalog(db: &TestDb, schema: &str, namespace: Option<&str>) {
    let mut conn = db.connect().await;
    let cat = catalog(std::path::Path::new(&fixture(schema)));
    let live = live::read(&mut conn, namespace).await;
    assert_eq!(
        live::columns_by_name(live),
        live::columns_by_name(live::expected(&mut conn, &cat).await),
        "live catalog after {schema}"
    );
}

async fn evolve(e: Evolution<'_>) {
    let db = TestDb::new().await;
    let dir = TempDir::new("migrate_user_schemas");
    let apply = || {
        strata(&[
            "migrate",
            "apply",
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ])
    };
    let (code, _, err) = strata(&["migrate", "diff", &fixture(e.v1), "--dir", dir.str()]);
    assert_eq!(code, 0, "diff {}: {err}", e.v1);
    let (code, _, err) = apply();
    assert_eq!(code, 0, "apply {}: {err}", e.v1);
    assert_catalog(&db, e.v1, e.namespace).await;

    let mut conn = db.connect().await;
    for sql in e.seed {
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    let mut args = vec!["migrate", "diff", &fixture(e.v2)]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(["--dir", dir.str(), "--name", "v2"].map(String::from));
    args.extend(e.flags.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = strata(&args);
    assert_eq!(code, 0, "diff {}: {err}", e.v2);
    let (code, _, err) = apply();
    assert_eq!(code, 0, "apply {}: {err}", e.v2);
    assert_catalog(&db, e.v2, e.namespace).await;

    // Nothing left to capture.
    let (code, _, err) = strata(&["migrate", "diff", &fixture(e.v2), "--dir", dir.str()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no changes"), "{err}");
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    let (code, _, err) = strata(&["migrate", "diff", &fixture(e.v2), "--dir", dir.str()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), files);

    for (sql, want) in e.checks {
        let got: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
        assert_eq!(got, *want, "{sql}");
    }
}

#[tokio::test]
async fn a_lending_library_split_across_files_evolves_with_its_rows() {
    evolve(Evolution {
        v1: "evolution_library/v1",
        v2: "evolution_library/v2",
        namespace: None,
        seed: &[
            "INSERT INTO author (name, bio) VALUES ('Ann', NULL), ('Bob', 'x')",
            "INSERT INTO book (isbn, title, price, tags) VALUES
               ('9780000000001', 'Dune', 9.99, '{scifi,classic}'), ('9780000000002', 'Emma', 5.50, '{}')",
            "INSERT INTO book_author SELECT '9780000000001', id, 1 FROM author WHERE name = 'Ann'",
            r#"INSERT INTO "user" (email, password) VALUES ('a@x', 'h1'), ('b@x', 'h2')"#,
            r#"INSERT INTO "order" ("select", "group", user_id) SELECT 'yes', 3, min(id) FROM "user""#,
            r#"INSERT INTO loan (user_id, isbn, due) SELECT min(id), '9780000000001', '2026-12-01' FROM "user""#,
        ],
        flags: &[],
        checks: &[
            // Table and column renames kept the rows.
            ("SELECT count(*) FROM books WHERE name IN ('Dune', 'Emma')", 2),
            (r#"SELECT count(*) FROM "user" WHERE mail = 'a@x'"#, 1),
            // New columns took their defaults; enum defaults still apply.
            ("SELECT count(*) FROM loan WHERE renewals = 0 AND note = 'none' AND state = 'ACTIVE'", 1),
            ("SELECT count(*) FROM book_author", 1),
            // The new self-referencing, reserved-word table works.
            (r#"WITH g AS (INSERT INTO "group" (name) VALUES ('staff') RETURNING id)
                SELECT count(*) FROM g"#, 1),
        ],
    })
    .await;
}

#[tokio::test]
async fn an_iot_fleet_in_its_own_namespace_evolves_destructively_when_allowed() {
    evolve(Evolution {
        v1: "evolution_iot/v1.yaml",
        v2: "evolution_iot/v2.yaml",
        namespace: Some("iot"),
        seed: &[
            "INSERT INTO iot.site (code, label, lat) VALUES ('PAR1', 'Paris', 48.8), ('LON1', 'London', NULL)",
            r"INSERT INTO iot.firmware VALUES ('acme', '1.0', '\x00', 'abc', now())",
            "INSERT INTO iot.device (serial, site_id, api_key, health, battery)
               SELECT 'S' || id, id, 'k', 'DOWN', 50.5 FROM iot.site",
        ],
        flags: &["--allow-destructive"],
        checks: &[
            ("SELECT count(*) FROM iot.sites WHERE site_code IN ('PAR1', 'LON1')", 2),
            ("SELECT count(*) FROM iot.firmware WHERE fw_version = '1.0'", 1),
            // The enum lost a value and was rebuilt; rows and the partial index survive.
            ("SELECT count(*) FROM iot.device WHERE health = 'DOWN'", 2),
            ("SELECT count(*) FROM pg_indexes WHERE indexname = 'device_down_idx'", 1),
            ("SELECT count(*) FROM iot.device WHERE readings_per_hour = 60 AND gain = 1.5", 2),
        ],
    })
    .await;
}

#[tokio::test]
async fn a_multi_tenant_billing_folder_with_composite_keys_evolves_with_its_rows() {
    evolve(Evolution {
        v1: "evolution_saas/v1",
        v2: "evolution_saas/v2",
        namespace: None,
        seed: &[
            "INSERT INTO tenant (slug) VALUES ('acme'), ('globex')",
            "INSERT INTO account (tenant_id, id, name) SELECT id, 1, 'main' FROM tenant",
            "INSERT INTO invoice (tenant_id, number, account_id, status, issued_on)
               SELECT id, 1, 1, 'PAID', '2026-01-01' FROM tenant",
            "INSERT INTO line_item (invoice_public_id, position, description, unit_price, tax_rates)
               SELECT public_id, 1, 'seat', 10, '{0.2}' FROM invoice",
        ],
        flags: &[],
        checks: &[
            ("SELECT count(*) FROM invoice WHERE seq = 1 AND currency = 'EUR'", 2),
            ("SELECT count(*) FROM account WHERE display_name = 'main'", 2),
            ("SELECT count(*) FROM line_item WHERE variant = 0", 2),
            ("SELECT count(*) FROM tenant WHERE region = 'eu-west-1' AND plan = 'FREE'", 2),
        ],
    })
    .await;
}

/// `{table}_pkey` cut to 63 bytes is the table's own name when the table
/// name has 63 bytes: PostgreSQL refused the CREATE TABLE.
#[tokio::test]
async fn a_table_name_of_63_bytes_gets_a_primary_key_that_applies() {
    let long = "a_table_name_that_is_exactly_sixty_three_bytes_long_for_testing";
    assert_eq!(long.len(), 63);
    let db = TestDb::new().await;
    let dir = TempDir::new("long_table");
    let schemas = TempDir::new("long_table_schema");
    let write = |text: String| {
        let path = schemas.path().join("s.yaml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let v1 = write(format!(
        "stores:\n  db: {{ kind: postgres }}\nentities:\n  Tile:\n    table: {long}\n    fields:\n      id: i64\n      x_min: f64\n"
    ));
    for step in [
        vec!["migrate", "diff", &v1, "--dir", dir.str()],
        vec![
            "migrate",
            "apply",
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ],
    ] {
        let (code, _, err) = strata(&step);
        assert_eq!(code, 0, "{step:?}: {err}");
    }
    assert_catalog_of(&db, &v1).await;
    // Renamed to a short name: the hashed key name is renamed with the table.
    let v2 = write(format!(
        "stores:\n  db: {{ kind: postgres }}\nentities:\n  Tile:\n    table: tile\n    renamed_from: {long}\n    fields:\n      id: i64\n      x_min: f64\n"
    ));
    for step in [
        vec![
            "migrate",
            "diff",
            &v2,
            "--dir",
            dir.str(),
            "--name",
            "short",
        ],
        vec![
            "migrate",
            "apply",
            "--dir",
            dir.str(),
            "--database-url",
            &db.url,
        ],
    ] {
        let (code, _, err) = strata(&step);
        assert_eq!(code, 0, "{step:?}: {err}");
    }
    assert_catalog_of(&db, &v2).await;
    let mut conn = db.connect().await;
    let pkey: String = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE contype = 'p' AND conrelid = 'tile'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(pkey, "tile_pkey");
}

async fn assert_catalog_of(db: &TestDb, path: &str) {
    let mut conn = db.connect().await;
    let cat = catalog(std::path::Path::new(path));
    let live = live::read(&mut conn, None).await;
    assert_eq!(
        live::columns_by_name(live),
        live::columns_by_name(live::expected(&mut conn, &cat).await),
        "live catalog of {path}"
    );
}
