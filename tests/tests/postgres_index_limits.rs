//! A B-tree entry is at most 2704 bytes: an index, unique constraint or key
//! over unbounded text (or `string(N)` too long to fit) is accepted by
//! PostgreSQL and then refuses the first long row. `strata check` warns at
//! the index, with `file:line:col` and a help, and the warning is right:
//! PostgreSQL refuses such a row, and accepts the longest `string(N)` that
//! the warning calls safe.

mod pg_common;

use pg_common::{strata, TempDir, TestDb};
use strata_codegen::postgres::check::MAX_INDEXED_CHARS;

const SCHEMA: &str = r#"stores:
  main: { kind: postgres, url: "${DATABASE_URL}" }
entities:
  Note:
    key: id
    fields:
      id: uuid
      body: text
      title: string(1000)
      tag: string(673)
      code: string(20)
    indexes:
      - [body]
      - [title]
      - [tag]
      - { fields: [body], method: hash, name: note_body_hash }
      - { fields: [code, id] }
    unique:
      - [title, code]
"#;

#[test]
fn check_warns_at_each_btree_whose_entries_can_outgrow_a_page() {
    let model = strata_codegen::compile_str("notes.yaml", SCHEMA)
        .unwrap_or_else(|d| panic!("{}", d.render_short()));
    let warnings = strata_codegen::lint(&strata_sources(), &model);
    assert_eq!(
        warnings.render_short(),
        "notes.yaml:13:9: warning[strata::unbounded_index]: the B-tree index on `Note.body` refuses rows whose entry exceeds 2704 bytes\n\
         notes.yaml:14:9: warning[strata::unbounded_index]: the B-tree index on `Note.title` refuses rows whose entry exceeds 2704 bytes\n\
         notes.yaml:19:9: warning[strata::unbounded_index]: the unique constraint on `Note.title` refuses rows whose entry exceeds 2704 bytes\n"
    );
    let plain = warnings.render_plain();
    assert!(
        plain.contains("help: bound the field with `string(N)`"),
        "{plain}"
    );
    assert!(plain.contains("`method: hash`"), "{plain}");
    assert!(plain.contains("md5(body)"), "{plain}");
    assert_eq!(warnings.to_string(), "the schema has 3 warnings");
}

fn strata_sources() -> strata_codegen::Sources {
    let mut s = strata_codegen::Sources::default();
    s.add("notes.yaml", SCHEMA);
    s
}

#[test]
fn strata_check_prints_the_warning_and_exits_0() {
    let dir = TempDir::new("index-limits");
    let path = dir.path().join("notes.yaml");
    std::fs::write(&path, SCHEMA).expect("write the schema");
    let (code, _out, err) = strata(&["check", "--short", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.matches("warning[strata::unbounded_index]").count(),
        3,
        "{err}"
    );
    assert!(err.contains("notes.yaml:13:9:"), "{err}");
}

/// `n` random 4-byte characters, drawn from all of U+10000..=U+10FFFF so
/// that neither pglz nor any other compression shrinks them below 4n bytes.
fn widest(n: usize) -> String {
    (0..n)
        .map(|_| {
            let r = uuid::Uuid::new_v4().as_u128() as u32;
            char::from_u32(0x10000 + r % 0x100000).expect("a supplementary-plane code point")
        })
        .collect()
}

#[tokio::test]
async fn postgres_refuses_what_the_warning_says_and_keeps_what_it_calls_safe() {
    let model = strata_codegen::compile_str("notes.yaml", SCHEMA).expect("valid");
    let files = strata_codegen::generate(&model, &strata_codegen::Settings::default());
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    sqlx::raw_sql(&files.files["postgres/main.sql"])
        .execute(&mut conn)
        .await
        .expect("create the tables");
    let insert = "INSERT INTO note (id, body, title, tag, code) VALUES ($1, $2, $3, $4, $5)";
    // The longest `string(N)` the warning calls safe, in the widest characters, fits.
    sqlx::query(insert)
        .bind(uuid::Uuid::new_v4())
        .bind("short")
        .bind("short")
        .bind(widest(MAX_INDEXED_CHARS))
        .bind("c1")
        .execute(&mut conn)
        .await
        .expect("a string(673) of 4-byte characters fits a B-tree entry");
    // Unbounded text past the entry limit is refused by the index.
    let err = sqlx::query(insert)
        .bind(uuid::Uuid::new_v4())
        .bind(widest(750))
        .bind("short")
        .bind("t")
        .bind("c2")
        .execute(&mut conn)
        .await
        .expect_err("a 3000-byte entry exceeds the B-tree maximum");
    assert!(err.to_string().contains("index row size"), "{err}");
}

#[tokio::test]
async fn one_character_more_than_the_safe_length_is_refused() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let n = MAX_INDEXED_CHARS + 1;
    sqlx::raw_sql(&format!(
        "CREATE TABLE t (v varchar({n})); CREATE INDEX t_v_idx ON t (v);"
    ))
    .execute(&mut conn)
    .await
    .expect("create the table");
    let err = sqlx::query("INSERT INTO t (v) VALUES ($1)")
        .bind(widest(n))
        .execute(&mut conn)
        .await
        .expect_err("one 4-byte character more than the safe length overflows the entry");
    assert!(err.to_string().contains("index row size"), "{err}");
}
