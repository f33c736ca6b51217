//! Migration bugs found by trying schemas as a user would.

mod pg_common;

use pg_common::{catalog, live, strata, TempDir, TestDb};

struct Steps {
    db: TestDb,
    dir: TempDir,
    schemas: TempDir,
}

impl Steps {
    async fn new(tag: &str) -> Steps {
        Steps {
            db: TestDb::new().await,
            dir: TempDir::new(tag),
            schemas: TempDir::new(&format!("{tag}_schema")),
        }
    }

    /// Writes `text` as the schema, diffs it (with `flags`) and applies it.
    async fn migrate_to(&self, name: &str, text: &str, flags: &[&str]) {
        let path = self.schemas.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let mut diff = vec![
            "migrate",
            "diff",
            &path,
            "--dir",
            self.dir.str(),
            "--name",
            name,
        ];
        diff.extend(flags);
        let apply = [
            "migrate",
            "apply",
            "--dir",
            self.dir.str(),
            "--database-url",
            &self.db.url,
        ];
        for step in [&diff[..], &apply[..]] {
            let (code, _, err) = strata(step);
            assert_eq!(code, 0, "{step:?}: {err}");
        }
        let mut conn = self.db.connect().await;
        let cat = catalog(std::path::Path::new(&path));
        assert_eq!(
            live::columns_by_name(live::read(&mut conn, cat.schema.as_deref()).await),
            live::columns_by_name(live::expected(&mut conn, &cat).await),
            "live catalog after {name}"
        );
    }
}

/// PostgreSQL has no cast from one enum type to another: a changed
/// `sql_name` (or a field moved to another enum) failed with "cannot cast
/// type color to colour". Text to enum and enum arrays go the same way.
#[tokio::test]
async fn a_column_moves_to_another_enum_type_through_text() {
    let s = Steps::new("enum_cast").await;
    let v1 = "stores:\n  db: { kind: postgres }\nenums:\n  Color: { values: [RED, BLUE], sql_name: color }\nentities:\n  Paint:\n    fields:\n      id: i64\n      color: { type: Color, default: RED }\n      status: text\n      mix: \"Color[]\"\n";
    s.migrate_to("v1", v1, &[]).await;
    let mut conn = s.db.connect().await;
    sqlx::raw_sql(
        "INSERT INTO paint VALUES (1, 'BLUE', 'OPEN', '{RED,BLUE}'), (2, 'RED', 'DONE', '{}')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let v2 = "stores:\n  db: { kind: postgres }\nenums:\n  Color: { values: [RED, BLUE], sql_name: colour }\n  Status: [OPEN, DONE]\nentities:\n  Paint:\n    fields:\n      id: i64\n      color: { type: Color, default: BLUE }\n      status: Status\n      mix: \"Color[]\"\n";
    s.migrate_to("v2", v2, &["--allow-destructive"]).await;
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, color::text, status::text, mix::text FROM paint ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "BLUE".into(), "OPEN".into(), "{RED,BLUE}".into()),
            (2, "RED".into(), "DONE".into(), "{}".into()),
        ]
    );
    let ty: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'paint'::regclass AND attname = 'color'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(ty, "colour");
}

/// `default: generated` added to a column that already holds rows: the new
/// identity sequence started at 1, so the next insert collided with row 1.
#[tokio::test]
async fn an_identity_added_to_a_filled_column_continues_after_its_rows() {
    let s = Steps::new("identity").await;
    let v1 = "stores:\n  db: { kind: postgres, schema: shop }\nentities:\n  Item:\n    fields:\n      id: i32\n      label: text\n";
    s.migrate_to("v1", v1, &[]).await;
    let mut conn = s.db.connect().await;
    sqlx::raw_sql("INSERT INTO shop.item VALUES (1, 'a'), (2, 'b'), (7, 'c')")
        .execute(&mut conn)
        .await
        .unwrap();
    let v2 = "stores:\n  db: { kind: postgres, schema: shop }\nentities:\n  Item:\n    fields:\n      id: { type: i64, default: generated }\n      label: text\n";
    s.migrate_to("v2", v2, &[]).await;
    let id: i64 = sqlx::query_scalar("INSERT INTO shop.item (label) VALUES ('d') RETURNING id")
        .fetch_one(&mut conn)
        .await
        .expect("the identity continues after the existing rows");
    assert_eq!(id, 8);
}

/// A failed migration said only "error returned from database: column
/// \"battery\" contains null values": which of its statements failed is now
/// named by line, and the transaction still rolls back as a whole.
#[tokio::test]
async fn a_failed_migration_names_the_line_of_its_statement() {
    let db = TestDb::new().await;
    let dir = TempDir::new("failed_line");
    std::fs::write(
        dir.path().join("0001_init.sql"),
        "-- strata migration 0001_init\nCREATE TABLE device (id bigint PRIMARY KEY, battery numeric);\nINSERT INTO device VALUES (1, NULL);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("0002_battery.sql"),
        "-- strata migration 0002_battery\n\nALTER TABLE device ADD COLUMN note text;\n\n-- note: fails if the column holds NULLs\nALTER TABLE device ALTER COLUMN battery SET NOT NULL;\n",
    )
    .unwrap();
    let (code, _, err) = strata(&[
        "migrate",
        "apply",
        "--dir",
        dir.str(),
        "--database-url",
        &db.url,
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(
            "migration 2 `battery` failed at line 6: ALTER TABLE device ALTER COLUMN battery SET NOT NULL;"
        ),
        "{err}"
    );
    // All or nothing: the column added before the failure is gone.
    let mut conn = db.connect().await;
    let note: Option<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'device'::regclass AND attname = 'note'",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    assert_eq!(note, None);
}

/// Whatever `strata check` accepts must be created by PostgreSQL: every
/// field type, alone and as an array, under every index method, unique or
/// not, ascending or descending, nullable or not. Before, gist on any type,
/// brin on booleans, unique gin/brin and `desc` on non-btree indexes passed
/// the check and failed at migration.
#[tokio::test]
async fn every_index_the_checker_accepts_is_created_by_postgres() {
    let types = [
        "uuid",
        "string(10)",
        "text",
        "bool",
        "i16",
        "i32",
        "i64",
        "f64",
        "\"decimal(10,2)\"",
        "timestamptz",
        "date",
        "json",
        "bytes",
        "E",
        "\"text[]\"",
        "\"i32[]\"",
        "\"E[]\"",
        "\"uuid[]\"",
    ];
    let methods = ["btree", "hash", "gin", "gist", "brin"];
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let (mut accepted, mut refused) = (0, 0);
    for (t, ty) in types.iter().enumerate() {
        for method in methods {
            for unique in [false, true] {
                for desc in ["", " desc"] {
                    for nullable in ["", "?"] {
                        let ns = format!("c{}", accepted + refused);
                        let ty = match nullable {
                            "?" if ty.starts_with('"') => {
                                format!("{}?\"", ty.trim_end_matches('"'))
                            }
                            _ => format!("{ty}{nullable}"),
                        };
                        let text = format!(
                            "stores:\n  db: {{ kind: postgres, schema: {ns} }}\nenums:\n  E: [A, B]\nentities:\n  T{t}:\n    fields:\n      id: uuid\n      x: {ty}\n    indexes:\n      - {{ fields: [\"x{desc}\"], method: {method}, unique: {unique} }}\n"
                        );
                        let model = match strata_codegen::compile_str("case.yaml", &text) {
                            Ok(m) => m,
                            Err(_) => {
                                refused += 1;
                                continue;
                            }
                        };
                        accepted += 1;
                        let stores = strata_codegen::postgres::catalog::postgres_stores(&model);
                        let cat = strata_codegen::postgres::catalog::catalog(&model, stores[0]);
                        let ddl = strata_codegen::postgres::ddl::create_all(&cat);
                        if let Err(e) = sqlx::raw_sql(&ddl).execute(&mut conn).await {
                            panic!("accepted by check, refused by PostgreSQL: {e}\n{text}\n{ddl}");
                        }
                    }
                }
            }
        }
    }
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

/// The same for defaults, keys and unique constraints: each accepted
/// combination is created, and a row of defaults is inserted.
#[tokio::test]
async fn every_default_and_key_the_checker_accepts_works_in_postgres() {
    let types = [
        "uuid",
        "string(3)",
        "text",
        "bool",
        "i16",
        "i32",
        "i64",
        "f64",
        "\"decimal(4,2)\"",
        "timestamptz",
        "date",
        "json",
        "bytes",
        "secret",
        "E",
        "\"text[]\"",
        "\"E[]\"",
    ];
    let defaults = [
        "0",
        "-1",
        "1.5",
        "99.99",
        "true",
        "'x'",
        "''",
        "now",
        "generated",
        "A",
        "'{}'",
        "'[]'",
        "empty",
        "'2024-01-01'",
        "\"it's\"",
    ];
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let (mut accepted, mut refused) = (0, 0);
    let mut case = 0;
    for ty in types {
        for default in defaults {
            for shape in ["plain", "key", "unique"] {
                case += 1;
                let ns = format!("d{case}");
                let (key, unique) = match shape {
                    "key" => ("    key: [x]\n", ""),
                    "unique" => ("    key: [id]\n", "    unique: [[id, x]]\n"),
                    _ => ("    key: [id]\n", ""),
                };
                let text = format!(
                    "stores:\n  db: {{ kind: postgres, schema: {ns} }}\nenums:\n  E: [A, B]\nentities:\n  T:\n{key}{unique}    fields:\n      id: {{ type: uuid, default: generated }}\n      x: {{ type: {ty}, default: {default} }}\n"
                );
                let Ok(model) = strata_codegen::compile_str("case.yaml", &text) else {
                    refused += 1;
                    continue;
                };
                accepted += 1;
                let stores = strata_codegen::postgres::catalog::postgres_stores(&model);
                let cat = strata_codegen::postgres::catalog::catalog(&model, stores[0]);
                let ddl = strata_codegen::postgres::ddl::create_all(&cat);
                let insert = format!("INSERT INTO \"{ns}\".\"t\" DEFAULT VALUES");
                for sql in [&ddl, &insert] {
                    if let Err(e) = sqlx::raw_sql(sql).execute(&mut conn).await {
                        panic!("accepted by check, refused by PostgreSQL: {e}\n{text}\n{sql}");
                    }
                }
            }
        }
    }
    assert!(
        accepted > 50 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

/// And for references: every key type referenced from every field type, with
/// every `on_delete`, nullable or not.
#[tokio::test]
async fn every_reference_the_checker_accepts_works_in_postgres() {
    let types = [
        "uuid",
        "string(3)",
        "text",
        "i16",
        "i32",
        "i64",
        "\"decimal(4,2)\"",
        "date",
        "timestamptz",
        "E",
        "bool",
    ];
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let (mut accepted, mut refused) = (0, 0);
    let mut case = 0;
    for key in types {
        for from in types {
            for on_delete in [
                "no_action",
                "restrict",
                "cascade",
                "set_null",
                "set_default",
            ] {
                for nullable in [false, true] {
                    case += 1;
                    let ns = format!("r{case}");
                    let default = if on_delete == "set_default" {
                        ", default: A"
                    } else {
                        ""
                    };
                    let text = format!(
                        "stores:\n  db: {{ kind: postgres, schema: {ns} }}\nenums:\n  E: [A, B]\nentities:\n  P:\n    key: [k]\n    fields:\n      k: {key}\n  C:\n    fields:\n      id: uuid\n      p: {{ type: {from}, nullable: {nullable}, references: P, on_delete: {on_delete}{default} }}\n"
                    );
                    let Ok(model) = strata_codegen::compile_str("case.yaml", &text) else {
                        refused += 1;
                        continue;
                    };
                    accepted += 1;
                    let stores = strata_codegen::postgres::catalog::postgres_stores(&model);
                    let cat = strata_codegen::postgres::catalog::catalog(&model, stores[0]);
                    let ddl = strata_codegen::postgres::ddl::create_all(&cat);
                    if let Err(e) = sqlx::raw_sql(&ddl).execute(&mut conn).await {
                        panic!("accepted by check, refused by PostgreSQL: {e}\n{text}\n{ddl}");
                    }
                }
            }
        }
    }
    assert!(
        accepted > 30 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

/// A type change PostgreSQL has no cast for (`bool` to `date`, `uuid` to
/// `i64`, `bytes` to `i32`…) wrote `USING x::date`, which fails even on an
/// empty column: the migration could never run. Every pair of types now
/// converts, through text where needed, on a row of NULLs.
#[tokio::test]
async fn every_type_change_applies_to_null_values() {
    let types = [
        "uuid",
        "string(3)",
        "text",
        "bool",
        "i16",
        "i32",
        "i64",
        "f64",
        "\"decimal(4,2)\"",
        "timestamptz",
        "date",
        "json",
        "bytes",
        "E",
        "\"text[]\"",
        "\"E[]\"",
        "\"i32[]\"",
    ];
    let schema = |to: bool| {
        let mut fields = String::new();
        for (i, a) in types.iter().enumerate() {
            for (j, b) in types.iter().enumerate() {
                if i != j {
                    let ty = if to { b } else { a };
                    fields.push_str(&format!(
                        "      c_{i}_{j}: {{ type: {ty}, nullable: true }}\n"
                    ));
                }
            }
        }
        format!("stores:\n  db: {{ kind: postgres }}\nenums:\n  E: [A, B]\nentities:\n  T:\n    fields:\n      id: i64\n{fields}")
    };
    let s = Steps::new("casts").await;
    s.migrate_to("v1", &schema(false), &[]).await;
    let mut conn = s.db.connect().await;
    sqlx::raw_sql("INSERT INTO t (id) VALUES (1)")
        .execute(&mut conn)
        .await
        .unwrap();
    s.migrate_to("v2", &schema(true), &["--allow-destructive"])
        .await;
}

/// A changed default of the same type is one `SET DEFAULT`, not a
/// `DROP DEFAULT` followed by `SET DEFAULT`.
#[tokio::test]
async fn a_changed_default_is_set_once() {
    let s = Steps::new("default").await;
    let v = |d: &str| {
        format!("stores:\n  db: {{ kind: postgres }}\nentities:\n  Gauge:\n    fields:\n      id: i64\n      gain: {{ type: f64, default: {d} }}\n")
    };
    s.migrate_to("v1", &v("1.5"), &[]).await;
    s.migrate_to("v2", &v("2.0"), &[]).await;
    let sql = std::fs::read_to_string(s.dir.path().join("0002_v2.sql")).unwrap();
    assert!(
        sql.contains("ALTER COLUMN \"gain\" SET DEFAULT 2.0;"),
        "{sql}"
    );
    assert!(!sql.contains("DROP DEFAULT"), "{sql}");
}
