//! The statements of two tables: `config` (composite key, version,
//! timestamps, a finder, a sort field), whose texts are those the
//! per-entity emitter used to write (so the move into the SDK changed no
//! SQL), and `events` (identity key, defaults, an array column).

use super::*;
use crate::postgres::{Column, QueryDef, Role};

static CONFIG: TableDef = TableDef {
    store: "main",
    entity: "Config",
    schema: None,
    table: "config",
    columns: &[
        Column::data("scope"),
        Column::data("name"),
        Column::data("value"),
        Column::data("description").nullable(),
        Column::data("updated_by").nullable(),
        Column::data("created_at").role(Role::CreatedAt),
        Column::data("updated_at").role(Role::UpdatedAt),
        Column::data("version").role(Role::Version),
    ],
    key: &[0, 1],
    sorts: &[5],
    queries: &[QueryDef::new("in_scope", &[0])
        .order(&[(1, false)])
        .limit(1000)],
};

const COLS: &str = r#""scope", "name", "value", "description", "updated_by", "created_at", "updated_at", "version""#;

#[test]
fn single_row_statements_of_a_versioned_table_with_a_composite_key() {
    let s = Statements::build(&CONFIG);
    assert_eq!(s.columns, COLS);
    assert_eq!(
        s.insert,
        format!(
            r#"INSERT INTO "config" ("scope", "name", "value", "description", "updated_by") VALUES ($1, $2, $3, $4, $5) RETURNING {COLS}"#
        )
    );
    assert_eq!(
        s.upsert,
        r#"INSERT INTO "config" AS "_s" ("scope", "name", "value", "description", "updated_by") VALUES ($1, $2, $3, $4, $5) ON CONFLICT ("scope", "name") DO UPDATE SET "value" = EXCLUDED."value", "description" = EXCLUDED."description", "updated_by" = EXCLUDED."updated_by", "updated_at" = now(), "version" = "_s"."version" + 1 RETURNING "_s"."scope", "_s"."name", "_s"."value", "_s"."description", "_s"."updated_by", "_s"."created_at", "_s"."updated_at", "_s"."version""#
    );
    assert_eq!(
        s.find,
        format!(r#"SELECT {COLS} FROM "config" WHERE "scope" = $1 AND "name" = $2"#)
    );
    assert_eq!(
        s.get_many,
        format!(
            r#"SELECT {COLS} FROM "config" WHERE ("scope", "name") IN (SELECT * FROM UNNEST($1, $2))"#
        )
    );
    assert_eq!(
        s.update,
        format!(
            r#"UPDATE "config" SET "value" = $1, "description" = $2, "updated_by" = $3, "updated_at" = now(), "version" = "config"."version" + 1 WHERE "scope" = $4 AND "name" = $5 AND "version" = $6 RETURNING {COLS}"#
        )
    );
    assert_eq!(
        s.patch,
        format!(
            r#"UPDATE "config" SET "value" = CASE WHEN $1 THEN $2 ELSE "value" END, "description" = CASE WHEN $3 THEN $4 ELSE "description" END, "updated_by" = CASE WHEN $5 THEN $6 ELSE "updated_by" END, "updated_at" = now(), "version" = "config"."version" + 1 WHERE "scope" = $7 AND "name" = $8 AND ($9::int8 IS NULL OR "version" = $9) RETURNING {COLS}"#
        )
    );
    assert_eq!(
        s.version_of.as_deref(),
        Some(r#"SELECT "version" FROM "config" WHERE "scope" = $1 AND "name" = $2"#)
    );
    assert_eq!(
        s.delete,
        r#"DELETE FROM "config" WHERE "scope" = $1 AND "name" = $2"#
    );
    assert_eq!(
        s.list_by[0].desc_after,
        format!(
            r#"SELECT {COLS} FROM "config" WHERE ("created_at", "scope", "name") < ($1, $2, $3) ORDER BY "created_at" DESC, "scope" DESC, "name" DESC LIMIT $4"#
        )
    );
    assert_eq!(
        s.list.asc,
        format!(r#"SELECT {COLS} FROM "config" ORDER BY "scope" ASC, "name" ASC LIMIT $1"#)
    );
    assert_eq!(
        s.queries[0],
        format!(r#"SELECT {COLS} FROM "config" WHERE "scope" = $1 ORDER BY "name" ASC LIMIT 1000"#)
    );
}

#[test]
fn batch_statements_of_a_versioned_table() {
    let s = Statements::build(&CONFIG);
    assert_eq!(
        s.insert_unnest,
        r#"INSERT INTO "config" ("scope", "name", "value", "description", "updated_by") SELECT u."scope", u."name", u."value", u."description", u."updated_by" FROM UNNEST($1, $2, $3, $4, $5) AS u("scope", "name", "value", "description", "updated_by") ON CONFLICT ("scope", "name") DO NOTHING"#
    );
    assert_eq!(
        s.update_unnest.as_deref(),
        Some(
            r#"UPDATE "config" AS "_s" SET "value" = u."value", "description" = u."description", "updated_by" = u."updated_by", "updated_at" = now(), "version" = "_s"."version" + 1 FROM UNNEST($1, $2, $3, $4, $5, $6) AS u("value", "description", "updated_by", "scope", "name", "version") WHERE "_s"."scope" = u."scope" AND "_s"."name" = u."name" AND "_s"."version" = u."version""#
        )
    );
    assert_eq!(
        s.delete_unnest,
        r#"DELETE FROM "config" WHERE ("scope", "name") IN (SELECT * FROM UNNEST($1, $2) AS u("scope", "name"))"#
    );
    assert_eq!(
        s.copy.copy_direct.as_deref(),
        Some(
            r#"COPY "config" ("scope", "name", "value", "description", "updated_by") FROM STDIN (FORMAT binary)"#
        )
    );
    assert_eq!(
        s.copy.upsert_set_based.as_deref(),
        Some(
            r#"WITH "_u" AS (UPDATE "config" AS "_s" SET "value" = u."value", "description" = u."description", "updated_by" = u."updated_by", "updated_at" = now(), "version" = "_s"."version" + 1 FROM "_strata_stage" AS u WHERE "_s"."scope" = u."scope" AND "_s"."name" = u."name" RETURNING "_s"."scope", "_s"."name"), "_i" AS (INSERT INTO "config" ("scope", "name", "value", "description", "updated_by") SELECT u."scope", u."name", u."value", u."description", u."updated_by" FROM "_strata_stage" AS u WHERE NOT EXISTS (SELECT 1 FROM "_u" WHERE "_u"."scope" = u."scope" AND "_u"."name" = u."name") RETURNING 1) SELECT (SELECT count(*) FROM "_i"), (SELECT count(*) FROM "_u")"#
        )
    );
}

static EVENTS: TableDef = TableDef {
    store: "main",
    entity: "Event",
    schema: Some("app"),
    table: "events",
    columns: &[
        Column::data("id").identity(),
        Column::data("kind").default("'INFO'"),
        Column::data("tags").array().default("'{}'"),
        Column::data("note").nullable().default("'x'"),
    ],
    key: &[0],
    sorts: &[],
    queries: &[QueryDef::new("infos", &[]).fixed(&[(1, "it's")]).one()],
};

#[test]
fn identity_keys_defaults_arrays_and_a_schema() {
    let s = Statements::build(&EVENTS);
    assert_eq!(s.table, r#""app"."events""#);
    // `COALESCE` for a default of a column that is not nullable; a
    // nullable one takes what it is given (NULL included).
    assert_eq!(
        s.insert,
        r#"INSERT INTO "app"."events" ("kind", "tags", "note") VALUES (COALESCE($1, 'INFO'), COALESCE($2, '{}'), $3) RETURNING "id", "kind", "tags", "note""#
    );
    assert_eq!(
        s.get_many,
        r#"SELECT "id", "kind", "tags", "note" FROM "app"."events" WHERE "id" = ANY($1)"#
    );
    assert_eq!(s.copy.copy_direct, None, "defaults need the staging table");
    // Fixed finder values are quoted literals; `one` limits to a row.
    assert_eq!(
        s.queries[0],
        r#"SELECT "id", "kind", "tags", "note" FROM "app"."events" WHERE "kind" = 'it''s' LIMIT 1"#
    );
    assert_eq!(
        s.insert_values(2),
        r#"INSERT INTO "app"."events" ("kind", "tags", "note") SELECT COALESCE(u."kind", 'INFO'), COALESCE(u."tags", '{}'), u."note" FROM (VALUES ($1, $2, $3), ($4, $5, $6)) AS u("kind", "tags", "note") ON CONFLICT ("id") DO NOTHING"#
    );
    assert_eq!(s.new_width(), 3);
    assert_eq!(s.row_width(), 4);
    assert!(s
        .update_values(1)
        .unwrap()
        .contains("(VALUES ($1, $2, $3, $4)) AS u(\"kind\", \"tags\", \"note\", \"id\")"));
}

#[test]
fn identifiers_and_literals_are_quoted() {
    assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
    assert_eq!(quote_literal("o'clock"), "'o''clock'");
}

static TIMES: TableDef = TableDef {
    store: "main",
    entity: "Tick",
    schema: None,
    table: "ticks",
    columns: &[
        Column::data("id"),
        Column::data("at").timestamptz(),
        Column::data("days").date().array().nullable(),
    ],
    key: &[0],
    sorts: &[],
    queries: &[],
};

#[test]
fn timestamps_and_dates_are_selected_as_they_are() {
    let s = Statements::build(&TIMES);
    assert_eq!(
        s.find,
        r#"SELECT "id", "at", "days" FROM "ticks" WHERE "id" = $1"#
    );
    assert_eq!(s.columns, r#""id", "at", "days""#);
}
