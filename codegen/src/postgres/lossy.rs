//! Type changes whose cast changes values instead of failing, and the guard
//! a migration runs before them.
//!
//! `ALTER … TYPE new USING col::new` is an *explicit* cast, and several
//! explicit casts succeed by changing the value: `varchar(n)` truncates,
//! `numeric(p,s)` rounds to its scale, integers round fractions away,
//! `date` drops the time of day, `double precision` rounds digits it cannot
//! hold, `integer` to `boolean` makes every non-zero value `true`. Before such
//! a change the migration locks the table and refuses, with an error naming
//! the table, the column and the way out, when any row holds a value the
//! conversion would change; the change then keeps every value or the whole
//! migration rolls back. Values a cast rejects (out of range, text that does
//! not parse) make PostgreSQL fail the statement as before.

use crate::names::{quote_ident, quote_literal};

/// The rows a conversion would change: a SQL condition on the table's row,
/// and what about them changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loss {
    /// True for a row whose value changes (NULL is never changed).
    pub condition: String,
    /// `longer than 50 characters`.
    pub what: String,
    /// Whether the condition reads `double precision` as text, which needs
    /// the shortest exact output (`extra_float_digits` above 0).
    pub float_text: bool,
}

/// A column type, as far as its conversions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Varchar(u32),
    Text,
    /// smallint, integer, bigint: their size in bytes.
    Int(u8),
    /// `numeric(p,s)`; plain `numeric` (no scale) is never written by the
    /// generator and rounds nothing.
    Numeric {
        scale: Option<u32>,
    },
    Double,
    Bool,
    Date,
    Timestamptz,
    Jsonb,
    Enum,
    /// uuid, bytea: their conversions keep values or fail.
    Other,
}

fn kind(sql_type: &str) -> Kind {
    let arg = |prefix: &str| {
        sql_type
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_string)
    };
    if let Some(n) = arg("varchar(").and_then(|n| n.trim().parse().ok()) {
        return Kind::Varchar(n);
    }
    if let Some(ps) = arg("numeric(") {
        let scale = match ps.split_once(',') {
            Some((_, s)) => s.trim().parse().ok(),
            None => Some(0),
        };
        return Kind::Numeric { scale };
    }
    match sql_type {
        "text" => Kind::Text,
        "smallint" => Kind::Int(2),
        "integer" => Kind::Int(4),
        "bigint" => Kind::Int(8),
        "numeric" => Kind::Numeric { scale: None },
        "double precision" => Kind::Double,
        "boolean" => Kind::Bool,
        "date" => Kind::Date,
        "timestamptz" => Kind::Timestamptz,
        "jsonb" => Kind::Jsonb,
        t if t.starts_with('"') => Kind::Enum,
        _ => Kind::Other,
    }
}

/// The rows of column `col` (quoted) that the conversion from `old` to
/// `new` (SQL types as the catalog writes them) would change; `None` when
/// it keeps every value or fails on those it cannot keep.
pub(super) fn loss(old: &str, new: &str, col: &str) -> Option<Loss> {
    let (old_elem, old_array) = split_array(old);
    let (new_elem, new_array) = split_array(new);
    // How each value reaches the element rule: itself, its elements, or
    // (scalar text to array, array to scalar text) through text.
    let (ok, x, over) = match (old_array, new_array) {
        (false, false) => (kind(old_elem), format!("({col})"), None),
        (true, true) => (
            kind(old_elem),
            "strata_e.v".to_string(),
            Some(format!("unnest({col})")),
        ),
        (false, true) => (
            Kind::Text,
            "strata_e.v".to_string(),
            Some(format!("unnest(({col})::text::text[])")),
        ),
        (true, false) => (Kind::Text, format!("(({col})::text)"), None),
    };
    let (cond, what) = element(ok, kind(new_elem), &x)?;
    let float_text = cond.contains("::double precision::text");
    let (condition, what) = match over {
        None => (cond, format!("values {what}")),
        Some(set) => (
            format!("EXISTS (SELECT 1 FROM {set} AS strata_e(v) WHERE {cond})"),
            format!("elements {what}"),
        ),
    };
    Some(Loss {
        condition,
        what,
        float_text,
    })
}

fn split_array(t: &str) -> (&str, bool) {
    match t.strip_suffix("[]") {
        Some(e) => (e, true),
        None => (t, false),
    }
}

/// The condition on one value `x` of kind `old` that converting it to `new`
/// changes, and what changes.
fn element(old: Kind, new: Kind, x: &str) -> Option<(String, String)> {
    // The exact number a value stands for, where one converts to a number
    // by parsing or by a numeric cast.
    let number = |k: Kind| match k {
        Kind::Numeric { .. } => Some(x.to_string()),
        Kind::Int(_) | Kind::Jsonb => Some(format!("{x}::numeric")),
        Kind::Text | Kind::Varchar(_) | Kind::Enum => Some(format!("{x}::text::numeric")),
        _ => None,
    };
    match new {
        Kind::Varchar(m) => {
            if matches!(old, Kind::Varchar(n) if n <= m) {
                return None;
            }
            Some((
                format!("char_length({x}::text) > {m}"),
                format!("longer than {m} characters"),
            ))
        }
        Kind::Numeric { scale: None } => None,
        Kind::Numeric { scale: Some(scale) } => {
            // NaN converts (a double's, or text `'NaN'`) and equals itself
            // in PostgreSQL, so the rounding test misses it; a decimal
            // field holding it is a value the SDK cannot read.
            let what = format!(
                "with more than {scale} decimal places (they would be rounded), or NaN (a decimal field cannot hold it)"
            );
            match old {
                Kind::Int(_) => None,
                Kind::Numeric { scale: Some(s) } if s <= scale => None,
                // The cast goes through numeric; read back as a double it
                // must be the same double.
                Kind::Double => Some((
                    format!(
                        "({x} <> round({x}::numeric, {scale})::double precision OR {x} = 'NaN'::float8)"
                    ),
                    what,
                )),
                // jsonb holds no NaN.
                Kind::Jsonb => {
                    let n = number(old)?;
                    let what = format!("with more than {scale} decimal places (they would be rounded)");
                    Some((format!("{n} <> round({n}, {scale})"), what))
                }
                k => {
                    let n = number(k)?;
                    Some((format!("({n} <> round({n}, {scale}) OR {n} = 'NaN'::numeric)"), what))
                }
            }
        }
        Kind::Int(_) => {
            let what = "with a fractional part (they would be rounded)".to_string();
            match old {
                Kind::Double => Some((format!("{x} <> trunc({x})"), what)),
                Kind::Numeric { scale: Some(0) } => None,
                Kind::Numeric { .. } | Kind::Jsonb => {
                    let n = number(old)?;
                    Some((format!("{n} <> trunc({n})"), what))
                }
                // Text does not parse as an integer with a fraction.
                _ => None,
            }
        }
        Kind::Double => {
            let n = match old {
                Kind::Int(8) | Kind::Numeric { .. } | Kind::Jsonb => number(old)?,
                Kind::Text | Kind::Varchar(_) | Kind::Enum => number(old)?,
                _ => return None,
            };
            Some((
                format!("{n}::double precision::text::numeric <> {n}"),
                "with more digits than double precision holds (they would be rounded)".to_string(),
            ))
        }
        // jsonb keeps the last of duplicate keys of an object; json text
        // may hold them (at any depth).
        Kind::Jsonb if matches!(old, Kind::Text | Kind::Varchar(_)) => Some((
            duplicate_keys(x),
            "with a JSON object holding a key twice (jsonb keeps only the last)".to_string(),
        )),
        Kind::Bool if old == Kind::Int(4) => Some((
            format!("{x} NOT IN (0, 1)"),
            "other than 0 and 1 (they would all become true)".to_string(),
        )),
        Kind::Date => {
            let what = "with a time of day (it would be dropped)".to_string();
            match old {
                Kind::Timestamptz => Some((format!("{x} <> {x}::date"), what)),
                Kind::Text | Kind::Varchar(_) | Kind::Enum => {
                    Some((format!("{x}::text::timestamp <> {x}::text::date"), what))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// True when the JSON text `x` holds an object with a key twice, at any
/// depth: a recursive walk over `json` (which keeps duplicates, unlike
/// `jsonb`), comparing each object's key count with its distinct keys.
fn duplicate_keys(x: &str) -> String {
    format!(
        "EXISTS (WITH RECURSIVE strata_j(v) AS (SELECT {x}::text::json UNION ALL \
         SELECT strata_c.v FROM strata_j, LATERAL (\
         SELECT value FROM json_each(CASE WHEN json_typeof(strata_j.v) = 'object' THEN strata_j.v END) UNION ALL \
         SELECT value FROM json_array_elements(CASE WHEN json_typeof(strata_j.v) = 'array' THEN strata_j.v END)\
         ) AS strata_c(v)) \
         SELECT 1 FROM strata_j WHERE json_typeof(v) = 'object' AND \
         (SELECT count(*) FROM json_object_keys(v)) <> (SELECT count(DISTINCT k) FROM json_object_keys(v) AS k))"
    )
}

/// The statement run before the type change of `column` of `table` (quoted,
/// qualified) from `old` to `new`: it locks the table (the `ALTER` takes the
/// same lock next, so no write slips in between) and raises an error when
/// a row holds a value the conversion would change.
pub(super) fn guard(table: &str, column: &str, old: &str, new: &str, loss: &Loss) -> String {
    let find = format!("SELECT * FROM {table} WHERE {};", loss.condition);
    let message = format!(
        "column {} of {table} ({old}) holds {}: converting it to {new} would change them, so the migration stops and changes nothing",
        quote_ident(column),
        loss.what,
    );
    let hint = format!(
        "Change or delete those rows and apply again, or keep {old} for this column in the schema (delete this migration with its .catalog.json, edit the schema, diff again)."
    );
    let digits = if loss.float_text {
        // double precision read as text: the shortest exact form.
        "    PERFORM set_config('extra_float_digits', '3', true);\n"
    } else {
        ""
    };
    let body = format!(
        "\nBEGIN\n    LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n{digits}    IF EXISTS (SELECT 1 FROM {table} WHERE {}) THEN\n        RAISE EXCEPTION USING\n            ERRCODE = 'data_exception',\n            MESSAGE = {},\n            DETAIL = {},\n            HINT = {};\n    END IF;\nEND\n",
        loss.condition,
        quote_literal(&message),
        quote_literal(&format!("Find them with: {find}")),
        quote_literal(&hint),
    );
    format!("DO {};", dollar_quote(&body))
}

/// `$strata$…$strata$`, with a tag the body does not hold.
pub(crate) fn dollar_quote(body: &str) -> String {
    let mut tag = "$strata$".to_string();
    let mut n = 0;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$strata{n}$");
    }
    format!("{tag}{body}{tag}")
}

#[cfg(test)]
mod tests {
    use super::{dollar_quote, loss};

    fn cond(old: &str, new: &str) -> Option<String> {
        loss(old, new, "\"c\"").map(|l| l.condition)
    }

    #[test]
    fn conversions_that_change_values_are_found() {
        for (old, new) in [
            ("varchar(100)", "varchar(50)"),
            ("text", "varchar(5)"),
            ("integer", "varchar(3)"),
            ("\"e\"", "varchar(2)"),
            ("text[]", "varchar(3)[]"),
            ("text", "varchar(3)[]"),
            ("text[]", "varchar(3)"),
            ("numeric(12,4)", "numeric(12,2)"),
            ("double precision", "numeric(20,8)"),
            ("text", "numeric(5,2)"),
            ("jsonb", "numeric(5,2)"),
            ("double precision", "integer"),
            ("numeric(10,2)", "bigint"),
            ("jsonb", "smallint"),
            ("double precision[]", "integer[]"),
            ("timestamptz", "date"),
            ("text", "date"),
            ("bigint", "double precision"),
            ("numeric(30,10)", "double precision"),
            ("integer", "boolean"),
        ] {
            assert!(cond(old, new).is_some(), "{old} -> {new}");
        }
    }

    #[test]
    fn conversions_that_keep_values_or_fail_have_no_guard() {
        for (old, new) in [
            ("varchar(50)", "varchar(100)"),
            ("varchar(50)", "text"),
            ("integer", "bigint"),
            ("bigint", "integer"),
            ("integer", "numeric(5,2)"),
            ("numeric(12,2)", "numeric(12,4)"),
            ("numeric(12,2)", "numeric(4,2)"),
            ("numeric(12,0)", "integer"),
            ("text", "integer"),
            ("integer", "double precision"),
            ("date", "timestamptz"),
            ("boolean", "integer"),
            ("text", "uuid"),
            ("uuid", "text"),
            ("text", "\"e\""),
        ] {
            assert_eq!(cond(old, new), None, "{old} -> {new}");
        }
    }

    #[test]
    fn array_elements_are_checked_one_by_one() {
        assert_eq!(
            cond("text[]", "varchar(3)[]").unwrap(),
            "EXISTS (SELECT 1 FROM unnest(\"c\") AS strata_e(v) WHERE char_length(strata_e.v::text) > 3)"
        );
    }

    #[test]
    fn the_dollar_tag_is_not_in_the_body() {
        assert_eq!(dollar_quote(" x "), "$strata$ x $strata$");
        assert_eq!(dollar_quote(" $strata$ "), "$strata1$ $strata$ $strata1$");
    }
}
