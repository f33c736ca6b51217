//! A column's type changes under objects that depend on it: indexes (on the
//! column, or whose SQL-text predicate names it), foreign keys (on it or to
//! it) and defaults are dropped and built again around the change, so the
//! migration applies on a table with rows, and the database ends as the
//! schema says.

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

    /// Diffs `text` (allowing destructive steps) and applies it; the live
    /// catalog must then equal the schema's.
    async fn migrate_to(&self, name: &str, text: &str) {
        let path = self.schemas.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let (code, _, err) = strata(&[
            "migrate",
            "diff",
            &path,
            "--dir",
            self.dir.str(),
            "--name",
            name,
            "--allow-destructive",
        ]);
        assert_eq!(code, 0, "diff {name}: {err}");
        let (code, _, err) = strata(&[
            "migrate",
            "apply",
            "--dir",
            self.dir.str(),
            "--database-url",
            &self.db.url,
        ]);
        assert_eq!(code, 0, "apply {name}: {err}");
        let mut conn = self.db.connect().await;
        let cat = catalog(std::path::Path::new(&path));
        assert_eq!(
            live::columns_by_name(live::read(&mut conn, cat.schema.as_deref()).await),
            live::columns_by_name(live::expected(&mut conn, &cat).await),
            "live catalog after {name}"
        );
    }

    async fn sql(&self, sql: &str) {
        let mut conn = self.db.connect().await;
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    }
}

/// issue 12.7: `string(20)` with a partial index `where: "state = 'OPEN'"`
/// becomes an enum: PostgreSQL re-parsed the old predicate
/// (`(state)::text = 'OPEN'::text`) against the enum and refused it
/// ("functions in index predicate must be marked IMMUTABLE").
#[tokio::test]
async fn text_to_enum_under_partial_indexes_and_a_default() {
    let s = Steps::new("retype_enum").await;
    let v1 = "stores:\n  db: { kind: postgres }\nentities:\n  Ticket:\n    fields:\n      id: i64\n      state: { type: string(20), default: OPEN }\n      owner: text\n    indexes:\n      - { fields: [state], where: \"state = 'OPEN'\" }\n      - { fields: [owner], where: \"state <> 'CLOSED'\", name: ticket_owner_live }\n      - { fields: [state, owner] }\n";
    s.migrate_to("v1", v1).await;
    s.sql("INSERT INTO ticket VALUES (1, 'OPEN', 'ann'), (2, 'CLOSED', 'bob')")
        .await;
    let v2 = v1
        .replace("stores:", "enums:\n  State: [OPEN, CLOSED]\nstores:")
        .replace("type: string(20)", "type: State");
    s.migrate_to("v2", &v2).await;
    let mut conn = s.db.connect().await;
    let open: Vec<i64> = sqlx::query_scalar("SELECT id FROM ticket WHERE state = 'OPEN'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(open, [1]);
    let id: i64 =
        sqlx::query_scalar("INSERT INTO ticket (id, owner) VALUES (3, 'cy') RETURNING id")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(id, 3, "the default holds after the change");
    // ... and back to text, under the same indexes.
    s.migrate_to("v3", v1).await;
}

/// A key referenced by a foreign key changes type together with the column
/// that references it: PostgreSQL re-checked the foreign key between the
/// half-changed pair and refused it.
#[tokio::test]
async fn a_referenced_key_and_its_reference_change_type_together() {
    let s = Steps::new("retype_fk").await;
    let v1 = "stores:\n  db: { kind: postgres }\nentities:\n  Region:\n    key: [code]\n    fields:\n      code: string(4)\n      label: text\n  Shop:\n    fields:\n      id: i64\n      region: { type: string(4), references: Region }\n    indexes:\n      - { fields: [region] }\n";
    s.migrate_to("v1", v1).await;
    s.sql("INSERT INTO region VALUES ('EU', 'Europe'), ('US', 'America'); INSERT INTO shop VALUES (1, 'EU')")
        .await;
    let v2 = v1
        .replace("stores:", "enums:\n  Code: [EU, US]\nstores:")
        .replace("code: string(4)", "code: Code")
        .replace("type: string(4)", "type: Code");
    s.migrate_to("v2", &v2).await;
    let mut conn = s.db.connect().await;
    let bad = sqlx::raw_sql("DELETE FROM region WHERE code = 'EU'")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("foreign key"), "{bad}");
}
