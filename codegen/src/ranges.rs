//! What values each copy store keeps, as `strata check` says it: the
//! ranges the SDK's writers enforce (`strata_sdk::value::rules`), so a user
//! knows before writing what a copy will refuse rather than store changed.

use crate::clickhouse::Target;
use crate::model::{Model, StoreKind};

/// One line per ClickHouse, Elasticsearch and InfluxDB store of `model`:
/// the ranges its types keep. PostgreSQL and Redis stores keep what the
/// entities hold and are left out.
pub fn kept(model: &Model) -> Vec<String> {
    let mut stores: Vec<_> = model.stores.iter().collect();
    stores.sort_by(|a, b| a.name.cmp(&b.name));
    stores
        .into_iter()
        .filter_map(|s| {
            let what = match &s.kind {
                StoreKind::ClickHouse { .. } => clickhouse(Target::of(s)),
                StoreKind::Elasticsearch { .. } => "elasticsearch: numbers must be finite (no NaN \
                     or infinity); timestamps (date_nanos) 1970-01-01 to 2262-04-11T23:47:16.854775807Z; \
                     dates years 0000 to 9999; json (flattened) an object, at most 20 deep, each leaf \
                     at most 32,766 bytes with its path"
                    .to_string(),
                StoreKind::InfluxDb {
                    victoriametrics: true,
                    ..
                } => "influxdb (VictoriaMetrics): values as float64 (integers within ±2^53, no -0, \
                     decimals within their declared places and digits and exact in a float64), no string \
                     fields, times in whole milliseconds (finer ones are refused); tag and field names and \
                     tag values without newlines, tabs, NUL, a trailing backslash or a backslash before \
                     `\\`, `,`, `=` or a space; tag values not empty"
                    .to_string(),
                StoreKind::InfluxDb { precision, .. } => format!(
                    "influxdb: floats must be finite; decimals within their declared places and digits, \
                     and as fields exact in a float64 (about 15 significant digits; more are refused); \
                     times 1677-09-21 to 2262-04-11 in whole {} (VictoriaMetrics keeps milliseconds, and \
                     every value as a float64: integers past 2^53 and -0 change there; say \
                     `server: victoriametrics` to have them refused); tag and \
                     field names and tag values without newlines, tabs, NUL, a trailing backslash or a \
                     backslash before `\\`, `,`, `=` or a space; tag values not empty",
                    match precision {
                        crate::model::Precision::Ns => "nanoseconds",
                        crate::model::Precision::Us => "microseconds",
                        crate::model::Precision::Ms => "milliseconds",
                        crate::model::Precision::S => "seconds",
                    }
                ),
                StoreKind::Postgres { .. } | StoreKind::Redis { .. } => return None,
            };
            Some(format!("store `{}` keeps: {what}", s.name))
        })
        .collect()
}

fn clickhouse(t: Target) -> String {
    let dates = if t.has_date32() && t.has_datetime64() {
        "dates (Date32) and timestamps (DateTime64) 1900-01-01 to 2299-12-31"
    } else if t.has_datetime64() {
        "dates as Int32 days (any date); timestamps (DateTime64) 1900-01-01 to 2299-12-31"
    } else {
        "dates as Int32 days and timestamps as Int64 microseconds (any date and time)"
    };
    format!(
        "clickhouse {t}: {dates}; timestamps truncated to the microsecond (as in PostgreSQL); \
         decimals within their declared places and digits"
    )
}
