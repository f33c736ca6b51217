//! A schema evolving v1 → v2 → v3 through the `strata` CLI against a real
//! database: rows survive, renames are renames, destructive steps need
//! `--allow-destructive`.

mod pg_common;

use pg_common::{catalog, live, root, strata, TempDir, TestDb};

fn fixture(v: &str) -> String {
    root()
        .join(format!("tests/fixtures/migrate/{v}.yaml"))
        .display()
        .to_string()
}

fn file_count(dir: &TempDir) -> usize {
    std::fs::read_dir(dir.path()).unwrap().count()
}

async fn assert_catalog(db: &TestDb, v: &str) {
    let mut conn = db.connect().await;
    let cat = catalog(std::path::Path::new(&fixture(v)));
    let live = live::read(&mut conn, None).await;
    assert_eq!(
        live,
        live::expected(&mut conn, &cat).await,
        "catalog after {v}"
    );
}

#[tokio::test]
async fn v1_to_v2_keeps_rows_and_v3_needs_allow_destructive() {
    let db = TestDb::new().await;
    let dir = TempDir::new("evolution");
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

    let (code, _, err) = strata(&["migrate", "diff", &fixture("v1"), "--dir", dir.str()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = apply();
    assert_eq!(code, 0, "{err}");
    assert_catalog(&db, "v1").await;

    let mut conn = db.connect().await;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO notes (title, body, status) VALUES
           ('first', 'body one', 'OPEN'), ('second', NULL, 'CLOSED') RETURNING id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();

    let (code, _, err) = strata(&[
        "migrate",
        "diff",
        &fixture("v2"),
        "--dir",
        dir.str(),
        "--name",
        "v2",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = apply();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("applied 0002_v2_enum_values") && err.contains("applied 0003_v2"),
        "{err}"
    );
    assert_catalog(&db, "v2").await;

    // The renamed column kept its data; new columns took their defaults.
    let rows: Vec<(uuid::Uuid, String, Option<String>, String, i32, bool)> = sqlx::query_as(
        "SELECT id, title, content, status::text, priority, pinned FROM memos ORDER BY title",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                ids[0],
                "first".into(),
                Some("body one".into()),
                "OPEN".into(),
                0,
                false
            ),
            (ids[1], "second".into(), None, "CLOSED".into(), 0, false),
        ]
    );
    // The added enum values exist, in schema order, and are usable.
    sqlx::query("INSERT INTO memos (title, status) VALUES ('third', 'PAUSED')")
        .execute(&mut conn)
        .await
        .unwrap();
    let order: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::note_status))::text")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(order, ["OPEN", "PAUSED", "CLOSED", "ARCHIVED"]);
    sqlx::query("INSERT INTO tags (note_id, label) VALUES ($1, 'x')")
        .bind(ids[0])
        .execute(&mut conn)
        .await
        .unwrap();

    // Nothing changed: nothing written.
    let before = file_count(&dir);
    let (code, _, err) = strata(&["migrate", "diff", &fixture("v2"), "--dir", dir.str()]);
    assert_eq!((code, file_count(&dir)), (0, before), "{err}");
    assert!(err.contains("no changes"), "{err}");

    // Destructive: refused, nothing written, exit code 3 and the reasons.
    let (code, _, err) = strata(&["migrate", "diff", &fixture("v3"), "--dir", dir.str()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("refusing destructive changes"), "{err}");
    assert!(err.contains("--allow-destructive"), "{err}");
    assert!(err.contains("drops column \"pinned\""), "{err}");
    assert!(err.contains("drops table \"tags\""), "{err}");
    assert!(err.contains("varchar(200) to varchar(150)"), "{err}");
    assert_eq!(file_count(&dir), before);

    // Allowed: written, each destructive statement marked.
    let (code, _, err) = strata(&[
        "migrate",
        "diff",
        &fixture("v3"),
        "--dir",
        dir.str(),
        "--name",
        "v3",
        "--allow-destructive",
    ]);
    assert_eq!(code, 0, "{err}");
    let sql = std::fs::read_to_string(dir.path().join("0004_v3.sql")).unwrap();
    assert_eq!(sql.matches("-- strata:destructive:").count(), 3, "{sql}");
    let (code, _, err) = apply();
    assert_eq!(code, 0, "{err}");
    assert_catalog(&db, "v3").await;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM memos")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 3);
}

#[test]
fn diff_usage_and_schema_errors_have_their_exit_codes() {
    let dir = TempDir::new("usage");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "version: 1\nstores:\n  db: { kind: postgres, url: x }\nentities:\n  A:\n    store: db\n    fields:\n      id: uuidd\n",
    )
    .unwrap();
    let out = dir.path().join("m");
    let out = out.to_str().unwrap();
    let (code, _, err) = strata(&["migrate", "diff", broken.to_str().unwrap(), "--dir", out]);
    assert_eq!(code, 1, "schema errors: {err}");
    assert!(err.contains("broken.yaml:8:"), "{err}");
    let (code, _, err) = strata(&[
        "migrate",
        "diff",
        &fixture("v1"),
        "--dir",
        out,
        "--name",
        "Bad-Name",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`Bad-Name` is not valid"), "{err}");
    let (code, _, err) = strata(&[
        "migrate",
        "diff",
        &fixture("v1"),
        "--dir",
        out,
        "--store",
        "nope",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`nope` is not a postgres store"), "{err}");
    let (code, _, _) = strata(&["migrate", "diff", &fixture("v1")]);
    assert_eq!(code, 2, "--dir is required");
    assert!(!std::path::Path::new(out).exists(), "nothing written");
    // Two postgres stores: --store chooses.
    let two = dir.path().join("two.yaml");
    std::fs::write(
        &two,
        "version: 1\nstores:\n  a: { kind: postgres, url: x }\n  b: { kind: postgres, url: y }\n\
         entities:\n  A:\n    store: a\n    fields: { id: uuid }\n  B:\n    store: b\n    fields: { id: uuid }\n",
    )
    .unwrap();
    let two = two.to_str().unwrap();
    let (code, _, err) = strata(&["migrate", "diff", two, "--dir", out]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("several postgres stores (a, b)"), "{err}");
    let (code, _, err) = strata(&["migrate", "diff", two, "--dir", out, "--store", "b"]);
    assert_eq!(code, 0, "{err}");
    let sql = std::fs::read_to_string(std::path::Path::new(out).join("0001_init.sql")).unwrap();
    assert!(
        sql.contains("CREATE TABLE \"b\"") && !sql.contains("CREATE TABLE \"a\""),
        "{sql}"
    );

    let (code, out, _) = strata(&["migrate", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("diff") && out.contains("apply") && out.contains("status"));
}
