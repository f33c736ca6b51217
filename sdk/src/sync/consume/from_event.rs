//! A change event's JSON back into the engine's cells: the inverse of the
//! Redis target's `event_json` (json columns as JSON, bytes as arrays of
//! numbers, decimals as text, timestamps RFC 3339, dates `YYYY-MM-DD`).

use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use super::super::cell::{self, Cell};
use super::super::spec::{ColumnSpec, ColumnType};

/// The cell of `col` from its JSON value; an error names what is wrong.
pub fn cell_of(col: &ColumnSpec, v: &Value) -> Result<Cell, String> {
    if v.is_null() {
        return Ok(Cell::Null);
    }
    if col.array && col.ty != ColumnType::Json {
        let items = v.as_array().ok_or("not an array")?;
        let scalar = ColumnSpec {
            array: false,
            ..col.clone()
        };
        return items
            .iter()
            .map(|i| cell_of(&scalar, i))
            .collect::<Result<_, _>>()
            .map(Cell::Array);
    }
    let text = || v.as_str().ok_or_else(|| format!("{v} is not text"));
    Ok(match col.ty {
        ColumnType::Json => Cell::Text(v.to_string()),
        ColumnType::Text => Cell::Text(text()?.to_string()),
        ColumnType::Uuid => Cell::Uuid(text()?.parse().map_err(|_| "not a UUID")?),
        ColumnType::Bool => Cell::Bool(v.as_bool().ok_or("not a boolean")?),
        ColumnType::I16 | ColumnType::I32 | ColumnType::I64 => {
            Cell::Int(v.as_i64().ok_or("not an integer")?)
        }
        ColumnType::F64 => Cell::Float(match v {
            // NaN and ±infinity travel as strings (`strata_sdk::float`).
            Value::String(s) => crate::float::FloatVisitor::parse(s).ok_or("not a number")?,
            _ => v.as_f64().ok_or("not a number")?,
        }),
        ColumnType::Decimal { .. } => {
            let t = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let d: rust_decimal::Decimal =
                t.parse().map_err(|_| format!("`{t}` is not a decimal"))?;
            Cell::Decimal(d.normalize())
        }
        ColumnType::Bytes => {
            let bytes: Option<Vec<u8>> = (v.as_array().ok_or("not an array of bytes")?)
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Cell::Bytes(bytes.ok_or("not an array of bytes")?)
        }
        ColumnType::Timestamptz => Cell::Micros(
            DateTime::parse_from_rfc3339(text()?)
                .map_err(|_| "not an RFC 3339 timestamp")?
                .timestamp_micros(),
        ),
        ColumnType::Date => {
            let d = NaiveDate::parse_from_str(text()?, "%Y-%m-%d").map_err(|_| "not a date")?;
            Cell::Days((d - EPOCH).num_days() as i32)
        }
    })
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => unreachable!(),
};

/// The key columns' values of a key object as text, in key order (a
/// dead letter's key): strings as they are, other values as JSON, `None`
/// for a value the key object lacks.
pub fn key_text(cols: &[ColumnSpec], fields: &[String], key: &Value) -> Vec<Option<String>> {
    (cols.iter().zip(fields))
        .filter(|(c, _)| c.key)
        .map(|(_, f)| match key.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
        })
        .collect()
}

/// The cells of a tombstone from a key object: key columns from the JSON,
/// zeros elsewhere.
pub fn key_cells(cols: &[ColumnSpec], fields: &[String], key: &Value) -> Result<Vec<Cell>, String> {
    (cols.iter().zip(fields))
        .map(|(c, f)| match c.key {
            true => cell_of(c, key.get(f).unwrap_or(&Value::Null)),
            false => Ok(cell::zero(c)),
        })
        .collect()
}

/// The cells of a row object, in column order.
pub fn row_cells(cols: &[ColumnSpec], fields: &[String], row: &Value) -> Result<Vec<Cell>, String> {
    (cols.iter().zip(fields))
        .map(|(c, f)| {
            cell_of(c, row.get(f).unwrap_or(&Value::Null)).map_err(|e| format!("`{}`: {e}", c.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            ty,
            nullable: true,
            array: false,
            key: false,
        }
    }

    #[test]
    fn event_values_read_back_as_cells() {
        assert_eq!(
            cell_of(&col(ColumnType::I64), &serde_json::json!(7)).unwrap(),
            Cell::Int(7)
        );
        assert_eq!(
            cell_of(&col(ColumnType::Date), &serde_json::json!("1970-01-03")).unwrap(),
            Cell::Days(2)
        );
        assert_eq!(
            cell_of(
                &col(ColumnType::Timestamptz),
                &serde_json::json!("1970-01-01T00:00:01.000002Z")
            )
            .unwrap(),
            Cell::Micros(1_000_002)
        );
        assert_eq!(
            cell_of(&col(ColumnType::Json), &serde_json::json!({"a": [1]})).unwrap(),
            Cell::Text(r#"{"a":[1]}"#.into())
        );
        assert_eq!(
            cell_of(&col(ColumnType::Bytes), &serde_json::json!([0, 255])).unwrap(),
            Cell::Bytes(vec![0, 255])
        );
        let d = cell_of(
            &col(ColumnType::Decimal {
                precision: 20,
                scale: 8,
            }),
            &serde_json::json!("1.50"),
        )
        .unwrap();
        assert_eq!(d, Cell::Decimal("1.5".parse().unwrap()));
        assert_eq!(
            cell_of(&col(ColumnType::Text), &serde_json::json!(null)).unwrap(),
            Cell::Null
        );
        assert!(cell_of(&col(ColumnType::Uuid), &serde_json::json!("x")).is_err());
    }
}
