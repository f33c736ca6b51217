//! A type change either keeps every value or fails whole. `string(100)` to
//! `string(50)` wrote `USING "rider_name"::varchar(50)`, an explicit cast
//! that truncates: a 59-character name became 50 characters and `apply`
//! exited 0. So did every conversion whose cast changes a value instead of
//! failing (decimals rounded to a smaller scale, doubles rounded to decimals
//! or integers, timestamps losing their time, ...). Now the migration
//! refuses such rows with an error naming the table, the column and the way
//! out, changes nothing, and applies once the rows are fixed.

mod pg_common;

use pg_common::{strata, TempDir, TestDb};

struct Case {
    from: &'static str,
    to: &'static str,
    /// A value the conversion would change (SQL literal).
    lossy: &'static str,
    /// A value it keeps, and that value's text after the change.
    kept: &'static str,
    kept_after: &'static str,
    /// In the error: what about the values would change.
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        from: "string(100)",
        to: "string(50)",
        lossy: "repeat('x', 59)",
        kept: "'Ann'",
        kept_after: "Ann",
        says: "values longer than 50 characters",
    },
    Case {
        from: "text",
        to: "string(3)",
        lossy: "'abcd'",
        kept: "'abc'",
        kept_after: "abc",
        says: "values longer than 3 characters",
    },
    Case {
        from: "E",
        to: "string(2)",
        lossy: "'AAA'",
        kept: "'B'",
        kept_after: "B",
        says: "values longer than 2 characters",
    },
    Case {
        from: "\"text[]\"",
        to: "\"string(3)[]\"",
        lossy: "'{ab,abcd}'",
        kept: "'{ab,c}'",
        kept_after: "{ab,c}",
        says: "elements longer than 3 characters",
    },
    Case {
        from: "\"decimal(12,4)\"",
        to: "\"decimal(12,2)\"",
        lossy: "12.3456",
        kept: "12.3400",
        kept_after: "12.34",
        says: "values with more than 2 decimal places",
    },
    Case {
        from: "f64",
        to: "\"decimal(12,2)\"",
        lossy: "0.125",
        kept: "0.1",
        kept_after: "0.10",
        says: "values with more than 2 decimal places",
    },
    Case {
        from: "f64",
        to: "\"decimal(12,2)\"",
        lossy: "'NaN'",
        kept: "0.5",
        kept_after: "0.50",
        says: "or NaN (a decimal field cannot hold it)",
    },
    Case {
        from: "text",
        to: "\"decimal(12,2)\"",
        lossy: "'NaN'",
        kept: "'1.5'",
        kept_after: "1.50",
        says: "or NaN (a decimal field cannot hold it)",
    },
    Case {
        from: "json",
        to: "\"decimal(5,2)\"",
        lossy: "'1.234'",
        kept: "'1.5'",
        kept_after: "1.50",
        says: "values with more than 2 decimal places",
    },
    Case {
        from: "f64",
        to: "i32",
        lossy: "2.5",
        kept: "3",
        kept_after: "3",
        says: "values with a fractional part",
    },
    Case {
        from: "\"decimal(10,2)\"",
        to: "i64",
        lossy: "1.50",
        kept: "2.00",
        kept_after: "2",
        says: "values with a fractional part",
    },
    Case {
        from: "\"f64[]\"",
        to: "\"i32[]\"",
        lossy: "'{1,1.5}'",
        kept: "'{1,2}'",
        kept_after: "{1,2}",
        says: "elements with a fractional part",
    },
    Case {
        from: "timestamptz",
        to: "date",
        lossy: "'2024-05-01 10:30:00+00'",
        kept: "'2024-05-01 00:00:00+00'",
        kept_after: "2024-05-01",
        says: "values with a time of day",
    },
    Case {
        from: "text",
        to: "date",
        lossy: "'2024-05-01 10:30'",
        kept: "'2024-05-01'",
        kept_after: "2024-05-01",
        says: "values with a time of day",
    },
    Case {
        from: "i64",
        to: "f64",
        lossy: "9007199254740993",
        kept: "4503599627370497",
        kept_after: "4.503599627370497e+15",
        says: "values with more digits than double precision holds",
    },
    Case {
        from: "\"decimal(28,8)\"",
        to: "f64",
        lossy: "12345678901234567890.12345678",
        kept: "0.5",
        kept_after: "0.5",
        says: "values with more digits than double precision holds",
    },
    Case {
        from: "i32",
        to: "bool",
        lossy: "2",
        kept: "1",
        kept_after: "true",
        says: "values other than 0 and 1",
    },
    Case {
        from: "text",
        to: "json",
        lossy: "'{\"a\": [{\"k\": 1, \"k\": 2}]}'",
        kept: "'{\"a\": [{\"k\": 1}], \"b\": {\"k\": 2}}'",
        kept_after: "{\"a\": [{\"k\": 1}], \"b\": {\"k\": 2}}",
        says: "values with a JSON object holding a key twice",
    },
];

fn schema(ns: &str, ty: &str) -> String {
    format!(
        "stores:\n  db: {{ kind: postgres, schema: {ns} }}\nenums:\n  E: [AAA, B]\nentities:\n  Ride:\n    fields:\n      id: i64\n      x: {{ type: {ty}, nullable: true }}\n"
    )
}

#[tokio::test]
async fn a_conversion_that_would_change_a_value_fails_whole_and_names_the_column() {
    let db = TestDb::new().await;
    let schemas = TempDir::new("lossy_schema");
    let mut conn = db.connect().await;
    for (i, case) in CASES.iter().enumerate() {
        let ns = format!("lossy{i}");
        let dir = TempDir::new(&format!("lossy{i}"));
        let label = format!("{} -> {}", case.from, case.to);
        let diff = |v: &str, ty: &str, flags: &[&str]| {
            let path = schemas.path().join(format!("{ns}_{v}.yaml"));
            std::fs::write(&path, schema(&ns, ty)).unwrap();
            let path = path.display().to_string();
            let mut args = vec!["migrate", "diff", &path, "--dir", dir.str(), "--name", v];
            args.extend(flags);
            let (code, _, err) = strata(&args);
            assert_eq!(code, 0, "{label}: diff {v}: {err}");
        };
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
        diff("v1", case.from, &[]);
        assert_eq!(apply().0, 0, "{label}");
        let table = format!("\"{ns}\".\"ride\"");
        sqlx::raw_sql(&format!(
            "INSERT INTO {table} VALUES (1, {}), (2, {})",
            case.lossy, case.kept
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        let text = |id: i64| format!("SELECT x::text FROM {table} WHERE id = {id}");
        let type_sql = format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = 'x'"
        );
        let before: String = sqlx::query_scalar(&text(1))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let type_before: String = sqlx::query_scalar(&type_sql)
            .fetch_one(&mut conn)
            .await
            .unwrap();

        diff("v2", case.to, &["--allow-destructive"]);
        let (code, _, err) = apply();
        assert_eq!(
            code, 3,
            "{label}: the lossy row must stop the migration\n{err}"
        );
        for says in [
            &format!("column \"x\" of {table}"),
            case.says,
            "the migration stops and changes nothing",
            "HINT: Change or delete those rows and apply again",
        ] {
            assert!(err.contains(says), "{label}: no `{says}` in\n{err}");
        }
        // Nothing changed: the value and the column's type.
        let after: String = sqlx::query_scalar(&text(1))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(after, before, "{label}");
        let type_after: String = sqlx::query_scalar(&type_sql)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(type_after, type_before, "{label}");

        // The way out: fix the rows and apply again.
        sqlx::raw_sql(&format!("DELETE FROM {table} WHERE id = 1"))
            .execute(&mut conn)
            .await
            .unwrap();
        let (code, _, err) = apply();
        assert_eq!(code, 0, "{label}: {err}");
        let kept: String = sqlx::query_scalar(&text(2))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(kept, case.kept_after, "{label}");
    }
}
