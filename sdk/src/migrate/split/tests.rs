use super::statements;

#[test]
fn splits_outside_quotes_and_comments() {
    let sql = "-- head; comment\nCREATE INDEX CONCURRENTLY \"a;b\" ON t (x) WHERE y = 'p;q''r';\n\
               /* c; /* nested; */ */ SELECT $f$ a; b $f$;\nSELECT 1";
    assert_eq!(
        statements(sql),
        vec![
            "-- head; comment\nCREATE INDEX CONCURRENTLY \"a;b\" ON t (x) WHERE y = 'p;q''r';",
            "/* c; /* nested; */ */ SELECT $f$ a; b $f$;",
            "SELECT 1",
        ]
    );
}

#[test]
fn escape_strings() {
    assert_eq!(
        statements("SELECT E'a\\';b'; SELECT 'c\\'; SELECT 2"),
        vec!["SELECT E'a\\';b';", "SELECT 'c\\';", "SELECT 2"]
    );
    // `e` ending a longer word does not start an escape string.
    assert_eq!(
        statements("SELECT some'x\\'; SELECT 3"),
        vec!["SELECT some'x\\';", "SELECT 3"]
    );
}

#[test]
fn comment_only_pieces_are_dropped() {
    assert!(statements("-- only\n/* x */ ;  \n").is_empty());
    assert_eq!(statements("SELECT $1;"), vec!["SELECT $1;"]);
}

#[test]
fn dollar_signs_inside_words_do_not_quote() {
    assert_eq!(
        statements("SELECT a$b$c FROM t; SELECT $1, x$; SELECT 2;"),
        vec!["SELECT a$b$c FROM t;", "SELECT $1, x$;", "SELECT 2;"]
    );
}

#[test]
fn function_bodies_stay_whole() {
    let plpgsql = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$\n\
                   BEGIN\n  NEW.x := 1;\n  RETURN NEW;\nEND\n$body$;";
    let atomic = "CREATE OR REPLACE FUNCTION g(a int) RETURNS int LANGUAGE sql\n\
                  BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n  SELECT a;\nEND;";
    let proc = "create procedure p() begin atomic insert into t values (1); end;";
    let sql = format!("{plpgsql}\n{atomic}\n{proc}\nBEGIN;\nSELECT 1;\nEND;");
    assert_eq!(
        statements(&sql),
        vec![plpgsql, atomic, proc, "BEGIN;", "SELECT 1;", "END;"]
    );
}

#[test]
fn semicolons_inside_parentheses_do_not_split() {
    assert_eq!(
        statements("SELECT (1; 2); SELECT 3;"),
        vec!["SELECT (1; 2);", "SELECT 3;"]
    );
}
