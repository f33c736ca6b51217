//! `timestamptz` and `date` values that chrono cannot hold (`infinity`,
//! `-infinity`, years past ±262,142), written by other tools, are a typed
//! error for that row on every read path, never a panic in the decoder, and
//! the connection stays usable.

mod sdk_support;

use chrono::{NaiveDate, TimeZone, Utc};
use sdk_support::TestDb;
use sqlx::{Connection, PgConnection};
use strata_sdk::postgres::PageRequest;
use strata_sdk::Error;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "moments", key(id), sort(at), query(on_day(params(day))))]
pub struct Moment {
    pub id: i64,
    #[strata(ty = "timestamptz")]
    pub at: chrono::DateTime<Utc>,
    #[strata(ty = "date")]
    pub day: NaiveDate,
    #[strata(ty = "timestamptz")]
    pub seen: Option<chrono::DateTime<Utc>>,
    #[strata(ty = "date[]")]
    pub holidays: Vec<NaiveDate>,
}

const DDL: &str = "CREATE TABLE moments (id bigint PRIMARY KEY, at timestamptz NOT NULL,
    day date NOT NULL, seen timestamptz, holidays date[] NOT NULL DEFAULT '{}');";

fn moment(id: i64) -> NewMoment {
    NewMoment {
        id,
        at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
        day: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        seen: None,
        holidays: vec![],
    }
}

fn unreadable(e: &Error, column: &str) -> bool {
    matches!(e, Error::InvalidValue { message, .. } if message.contains(&format!("`Moment.{column}` holds")))
}

#[tokio::test]
async fn unreadable_timestamps_and_dates_are_errors_not_panics() {
    let db = TestDb::with_ddl(DDL).await;
    let mut conn = PgConnection::connect(&db.db.url).await.unwrap();
    Moment::insert_many(&mut conn, (1..=4).map(moment))
        .await
        .unwrap();
    let cases = [
        (1, "at", "UPDATE moments SET at = 'infinity' WHERE id = 1"),
        (
            2,
            "seen",
            "UPDATE moments SET seen = '-infinity' WHERE id = 2",
        ),
        (
            3,
            "day",
            "UPDATE moments SET day = '270000-01-01' WHERE id = 3",
        ),
        (
            4,
            "holidays",
            "UPDATE moments SET holidays = '{2024-01-01,infinity}' WHERE id = 4",
        ),
    ];
    for (id, column, sql) in cases {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        let e = Moment::get(&mut conn, &id).await.unwrap_err();
        assert!(unreadable(&e, column), "{column}: {e:?}");
        let e = Moment::get_many(&mut conn, &[id]).await.unwrap_err();
        assert!(unreadable(&e, column), "{column}: {e:?}");
        // The connection is still usable.
        assert!(Moment::exists(&mut conn, &id).await.unwrap());
        sqlx::query("UPDATE moments SET at = now(), seen = NULL, day = '2024-05-01', holidays = '{}' WHERE id = $1")
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(Moment::get(&mut conn, &id).await.unwrap().id, id);
    }
    sqlx::query("UPDATE moments SET at = 'infinity' WHERE id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let e = Moment::list(&mut conn, &PageRequest::first(10))
        .await
        .unwrap_err();
    assert!(unreadable(&e, "at"), "{e:?}");
    let e = Moment::list_by_at(&mut conn, &PageRequest::first(10))
        .await
        .unwrap_err();
    assert!(unreadable(&e, "at"), "{e:?}");
    let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    let e = Moment::on_day(&mut conn, &day).await.unwrap_err();
    assert!(unreadable(&e, "at"), "{e:?}");
    let e = Moment::patch(&mut conn, &2, &MomentPatch::default())
        .await
        .unwrap_err();
    assert!(unreadable(&e, "at"), "{e:?}");
    // The other rows read as usual.
    assert_eq!(Moment::get(&mut conn, &3).await.unwrap().day, day);
}
