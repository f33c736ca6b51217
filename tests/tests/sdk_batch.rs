//! Batch writes against a real PostgreSQL, on the `sdk_composite` fixture's
//! generated SDK: counts, conflicts, empty input, 100,000 rows, and a batch
//! that fails half-way leaving nothing behind.

mod sdk_support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sdk_support::TestDb;
use strata_sdk::{BatchCounts, Error};
use strata_tests::fixtures::sdk_composite::entities::*;

async fn db() -> TestDb {
    let model = strata_codegen::compile(
        &strata_codegen::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/valid/sdk_composite.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    TestDb::for_model(&model, "main").await
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

/// `n` candles for one symbol, one a minute, priced from `base`.
fn candles(symbol: &str, n: usize, base: f64) -> impl Iterator<Item = NewCandleBar> + '_ {
    (0..n).map(move |i| NewCandleBar {
        symbol: symbol.to_string(),
        timeframe: "1m".into(),
        ts: t0() + Duration::minutes(i as i64),
        open: base + i as f64,
        high: base + i as f64 + 1.0,
        low: base + i as f64 - 1.0,
        close: base + i as f64 + 0.5,
        volume: 10.0,
    })
}

#[tokio::test]
async fn insert_many_skips_existing_keys_and_upsert_many_counts() {
    let db = db().await;
    let pool = &db.pool;
    let c = CandleBar::insert_many(pool, candles("BTC", 10, 100.0))
        .await
        .unwrap();
    assert_eq!(
        c,
        BatchCounts {
            inserted: 10,
            ..Default::default()
        }
    );
    // 5 existing + 5 new: the existing keys are skipped, unchanged.
    let c = CandleBar::insert_many(pool, candles("BTC", 15, 999.0).skip(5))
        .await
        .unwrap();
    assert_eq!(c.inserted, 5);
    let first = CandleBar::get(pool, &("BTC".into(), "1m".into(), t0()))
        .await
        .unwrap();
    assert_eq!(first.open, 100.0);
    let c = CandleBar::upsert_many(pool, candles("BTC", 20, 500.0))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (5, 15));
    assert_eq!(CandleBar::count(pool).await.unwrap(), 20);
    let series = CandleBar::series(pool, "BTC", "1m").await.unwrap();
    assert_eq!(series.len(), 20);
    assert!(series.iter().all(|s| s.open >= 500.0));
    assert!(series.windows(2).all(|w| w[0].ts < w[1].ts));

    // update_many by key; delete_many by key.
    let mut rows = series.clone();
    for r in &mut rows {
        r.volume = 42.0;
    }
    let c = CandleBar::update_many(pool, rows.clone()).await.unwrap();
    assert_eq!(c.updated, 20);
    assert!(CandleBar::series(pool, "BTC", "1m")
        .await
        .unwrap()
        .iter()
        .all(|r| r.volume == 42.0));
    let keys: Vec<_> = rows.iter().take(7).map(|r| r.key()).collect();
    assert_eq!(CandleBar::get_many(pool, &keys).await.unwrap().len(), 7);
    let c = CandleBar::delete_many(pool, keys).await.unwrap();
    assert_eq!(c.deleted, 7);
    assert_eq!(CandleBar::count(pool).await.unwrap(), 13);
}

#[tokio::test]
async fn empty_batches_do_nothing() {
    let db = db().await;
    let pool = &db.pool;
    assert_eq!(
        CandleBar::insert_many(pool, std::iter::empty())
            .await
            .unwrap(),
        BatchCounts::default()
    );
    assert_eq!(
        CandleBar::upsert_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
    assert_eq!(
        CandleBar::update_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
    assert_eq!(
        CandleBar::delete_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
    assert_eq!(
        Note::insert_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
}

#[tokio::test]
async fn hundred_thousand_rows_in_one_call() {
    let db = db().await;
    let pool = &db.pool;
    let c = CandleBar::upsert_many(pool, candles("ETH", 100_000, 1.0))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (100_000, 0));
    let c = CandleBar::upsert_many(pool, candles("ETH", 100_000, 2.0))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (0, 100_000));
    assert_eq!(CandleBar::count(pool).await.unwrap(), 100_000);
    let last = CandleBar::get(
        pool,
        &("ETH".into(), "1m".into(), t0() + Duration::minutes(99_999)),
    )
    .await
    .unwrap();
    assert_eq!(last.open, 2.0 + 99_999.0);
}

#[tokio::test]
async fn a_batch_failing_half_way_leaves_nothing() {
    let db = db().await;
    let pool = &db.pool;
    // 25,000 good rows (several chunks), then a row refused: a symbol
    // longer than string(20) (checked before writing; PostgreSQL's 22001
    // would name no field).
    let bad = NewCandleBar {
        symbol: "X".repeat(21),
        ..candles("BAD", 1, 0.0).next().unwrap()
    };
    let rows = candles("SOL", 25_000, 1.0).chain(std::iter::once(bad));
    let err = CandleBar::upsert_many(pool, rows).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                field: "symbol",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(CandleBar::count(pool).await.unwrap(), 0);

    // update_many with a stale version rolls back the rows before it.
    let notes: Vec<NewNote> = (0..3).map(|i| note(&format!("n{i}"), "body")).collect();
    Note::insert_many(pool, notes).await.unwrap();
    let mut rows = Note::flagged(pool).await.unwrap();
    assert!(rows.is_empty());
    rows = Note::list(pool, &strata_sdk::postgres::PageRequest::first(10))
        .await
        .unwrap()
        .items;
    for r in &mut rows {
        r.body = "changed".into();
    }
    rows[2].version = 99;
    let err = Note::update_many(pool, rows).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchIncomplete {
                expected: 3,
                affected: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let after = Note::list(pool, &strata_sdk::postgres::PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert!(after.iter().all(|n| n.body == "body" && n.version == 1));
}

fn note(title: &str, body: &str) -> NewNote {
    NewNote {
        id: None,
        title: title.into(),
        body: body.into(),
        side: None,
        count: None,
        small: None,
        big: None,
        ratio: None,
        amount: None,
        day: None,
        payload: None,
        raw: None,
        token: None,
        flag: None,
    }
}

#[tokio::test]
async fn every_type_round_trips_and_batches_version_rows() {
    let db = db().await;
    let pool = &db.pool;
    let full = NewNote {
        id: Some(uuid::Uuid::new_v4()),
        title: "full".into(),
        body: "b".into(),
        side: Some(Side::Sell),
        count: Some(7),
        small: Some(-3),
        big: Some(i64::MAX),
        ratio: Some(0.5),
        amount: Some("12345678.12345678".parse().unwrap()),
        day: Some(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        payload: Some(serde_json::json!({"a": [1, 2, {"b": null}]})),
        raw: Some(vec![0, 1, 2, 255]),
        token: Some(strata_sdk::Secret::new("s3cret")),
        flag: Some(true),
    };
    let n = Note::insert(pool, &full).await.unwrap();
    assert_eq!(Some(n.id), full.id);
    assert_eq!(
        (n.side, n.count, n.small, n.big),
        (Side::Sell, 7, Some(-3), Some(i64::MAX))
    );
    assert_eq!(n.amount.unwrap().to_string(), "12345678.12345678");
    assert_eq!(n.raw.as_deref(), Some(&[0u8, 1, 2, 255][..]));
    assert_eq!(n.token.as_ref().map(|t| t.expose()), Some("s3cret"));
    assert_eq!(n.day, full.day);
    assert_eq!(n.payload, full.payload);
    let empty = Note::insert(pool, &note("empty", "")).await.unwrap();
    assert_eq!((empty.side, empty.count, empty.flag), (Side::Buy, 0, false));
    assert_eq!(
        (empty.small, empty.amount.is_none(), empty.token.is_none()),
        (None, true, true)
    );
    assert_eq!(Note::flagged(pool).await.unwrap().len(), 1);
    assert_eq!(
        Note::by_title(pool, "empty").await.unwrap().map(|n| n.id),
        Some(empty.id)
    );

    // Batch upsert of the same rows bumps version and updated_at; a unique
    // clash on another column is a typed conflict and rolls back.
    let again = vec![NewNote {
        body: "b2".into(),
        ..full.clone()
    }];
    let c = Note::upsert_many(pool, again).await.unwrap();
    assert_eq!((c.inserted, c.updated), (0, 1));
    let n2 = Note::get(pool, &n.id).await.unwrap();
    assert_eq!((n2.version, n2.body.as_str()), (2, "b2"));
    assert!(n2.updated_at >= n.updated_at);
    let clash = vec![note("fresh", "x"), note("full", "dup title")];
    let err = Note::insert_many(pool, clash).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref constraint } if constraint.contains("title")),
        "{err:?}"
    );
    assert!(Note::by_title(pool, "fresh").await.unwrap().is_none());

    // Identity keys are generated by the database.
    let e = Event::insert(
        pool,
        &NewEvent {
            kind: "boot".into(),
            at: None,
        },
    )
    .await
    .unwrap();
    let c = Event::insert_many(
        pool,
        (0..5).map(|_| NewEvent {
            kind: "tick".into(),
            at: None,
        }),
    )
    .await
    .unwrap();
    assert_eq!(c.inserted, 5);
    assert!(Event::exists(pool, &(e.id + 5)).await.unwrap());
}

fn full_note(i: usize) -> NewNote {
    NewNote {
        id: Some(uuid::Uuid::new_v4()),
        title: format!("note {i}"),
        body: format!("body 'quoted' {i} 🦀"),
        side: Some(if i % 2 == 0 { Side::Buy } else { Side::Sell }),
        count: if i % 3 == 0 { None } else { Some(i as i32) },
        small: Some((i % 100) as i16),
        big: Some(i as i64 * 1_000_000_007),
        ratio: Some(i as f64 / 7.0),
        amount: Some(rust_decimal::Decimal::new(i as i64 * 12345, 8)),
        day: chrono::NaiveDate::from_ymd_opt(2024, 1, 1 + (i % 28) as u32),
        payload: Some(serde_json::json!({ "i": i, "tags": ["a", "b"] })),
        raw: Some(vec![i as u8, 0, 255]),
        token: Some(strata_sdk::Secret::new(format!("tok{i}"))),
        flag: Some(i % 5 == 0),
    }
}

#[tokio::test]
async fn copy_path_carries_every_type_and_nests_in_a_caller_transaction() {
    let db = db().await;
    let pool = &db.pool;
    let n = strata_sdk::postgres::BATCH_CHUNK + 1_000;
    let mut tx = pool.begin().await.unwrap();
    let c = Note::insert_many(&mut *tx, (0..n).map(full_note))
        .await
        .unwrap();
    assert_eq!(c.inserted, n as u64);
    // A second large call in the same transaction (the staging table is per call).
    let c = Note::upsert_many(&mut *tx, (n..2 * n).map(full_note))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (n as u64, 0));
    tx.rollback().await.unwrap();
    assert_eq!(Note::count(pool).await.unwrap(), 0);

    let rows: Vec<NewNote> = (0..n).map(full_note).collect();
    let want = rows[4242].clone();
    Note::insert_many(pool, rows).await.unwrap();
    let got = Note::by_title(pool, "note 4242").await.unwrap().unwrap();
    assert_eq!(Some(got.id), want.id);
    assert_eq!(
        (got.body.as_str(), Some(got.side), got.count),
        (want.body.as_str(), want.side, want.count.unwrap_or(0))
    );
    assert_eq!(
        (got.small, got.big, got.ratio, got.amount),
        (want.small, want.big, want.ratio, want.amount)
    );
    assert_eq!(
        (got.day, &got.payload, &got.raw),
        (want.day, &want.payload, &want.raw)
    );
    assert_eq!(got.token.unwrap().expose(), "tok4242");
    assert_eq!(Note::get(pool, &want.id.unwrap()).await.unwrap().version, 1);
    let defaulted = Note::by_title(pool, "note 3").await.unwrap().unwrap();
    assert_eq!(defaulted.count, 0);
}

#[tokio::test]
async fn large_insert_many_falls_back_when_keys_exist() {
    let db = db().await;
    let pool = &db.pool;
    let n = strata_sdk::postgres::BATCH_CHUNK * 6; // several COPY blocks
    CandleBar::insert_many(pool, candles("ADA", 5, 7.0))
        .await
        .unwrap();
    CandleBar::insert_many(pool, candles("ADA", n, 1.0).skip(n - 3))
        .await
        .unwrap();
    // Fresh blocks go straight in; the blocks holding the 8 known keys fall back.
    let c = CandleBar::insert_many(pool, candles("ADA", n, 1.0))
        .await
        .unwrap();
    assert_eq!(c.inserted, (n - 8) as u64);
    assert_eq!(CandleBar::count(pool).await.unwrap(), n as i64);
    let first = CandleBar::get(pool, &("ADA".into(), "1m".into(), t0()))
        .await
        .unwrap();
    assert_eq!(first.open, 7.0, "existing rows are left alone");
    // Duplicates inside one call are skipped too.
    let dup = candles("XRP", 15_000, 1.0).chain(candles("XRP", 15_000, 2.0));
    assert_eq!(
        CandleBar::insert_many(pool, dup).await.unwrap().inserted,
        15_000
    );
}

#[tokio::test]
async fn generated_only_rows_and_join_tables() {
    let db = db().await;
    let pool = &db.pool;
    let a = Counter::insert(pool, &NewCounter {}).await.unwrap();
    let b = Counter::upsert(pool, &NewCounter {}).await.unwrap();
    assert_eq!(b.id, a.id + 1);
    let c = Counter::update_many(pool, vec![a.clone()]).await.unwrap();
    assert_eq!(c.updated, 1, "update_many bumps updated_at");
    assert_eq!(
        Counter::delete_many(pool, vec![a.id, b.id])
            .await
            .unwrap()
            .deleted,
        2
    );

    let n = Note::insert(pool, &note("tagged", "x")).await.unwrap();
    let tags = ["a", "b", "a"].map(|t| NewNoteTag {
        note_id: n.id,
        tag: t.into(),
    });
    let c = NoteTag::upsert_many(pool, tags.clone()[..2].to_vec())
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (2, 0));
    assert_eq!(NoteTag::insert_many(pool, tags).await.unwrap().inserted, 0);
    let one = NoteTag::upsert(
        pool,
        &NewNoteTag {
            note_id: n.id,
            tag: "a".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(one.tag, "a");
    let key: NoteTagKey = (n.id, "b".into());
    let same = NoteTag::patch(pool, &key, &NoteTagPatch {}).await.unwrap();
    assert_eq!(same.tag, "b");
    assert_eq!(NoteTag::update(pool, &same).await.unwrap(), same);
    assert_eq!(NoteTag::count(pool).await.unwrap(), 2);
    Note::delete(pool, &n.id).await.unwrap();
    assert_eq!(NoteTag::count(pool).await.unwrap(), 0, "cascade");
}

/// More rows than a chunk: the staged path, where `upsert_many` updates the
/// existing keys with `UPDATE … FROM` the staging table and inserts the rest
/// (falling back to `ON CONFLICT` when that cannot account for every row).
fn staged_notes(from: usize, to: usize, ids: &[uuid::Uuid], body: &str) -> Vec<NewNote> {
    (from..to)
        .map(|i| NewNote {
            id: Some(ids[i]),
            body: format!("{body} {i}"),
            ..full_note(i)
        })
        .collect()
}

#[tokio::test]
async fn staged_upsert_updates_existing_keys_and_maintains_columns() {
    let db = db().await;
    let pool = &db.pool;
    let n = strata_sdk::postgres::BATCH_CHUNK + 2_000;
    let ids: Vec<uuid::Uuid> = (0..2 * n).map(|_| uuid::Uuid::new_v4()).collect();
    Note::insert_many(pool, staged_notes(0, n, &ids, "v1"))
        .await
        .unwrap();
    let before = Note::get(pool, &ids[7]).await.unwrap();
    // Rows n..3n/2 are new, rows n/2..n exist (sent in that order);
    // `count: None` takes the default.
    let rows = staged_notes(n, 3 * n / 2, &ids, "v2")
        .into_iter()
        .chain(staged_notes(n / 2, n, &ids, "v2"));
    let c = Note::upsert_many(pool, rows).await.unwrap();
    assert_eq!((c.inserted, c.updated), ((n / 2) as u64, (n / 2) as u64));
    assert_eq!(Note::count(pool).await.unwrap(), (3 * n / 2) as i64);
    let kept = Note::get(pool, &ids[7]).await.unwrap();
    assert_eq!((kept.body.as_str(), kept.version), ("v1 7", 1));
    assert_eq!(kept.updated_at, before.updated_at);
    let i = n / 2 + 3; // existing, count None -> the default 0 on update too
    let updated = Note::get(pool, &ids[i]).await.unwrap();
    assert_eq!(
        (updated.body.as_str(), updated.version, updated.count),
        (format!("v2 {i}").as_str(), 2, 0)
    );
    assert!(updated.updated_at > before.updated_at);
    assert_eq!(updated.token.unwrap().expose(), format!("tok{i}"));
    let fresh = Note::get(pool, &ids[n + 1]).await.unwrap();
    assert_eq!(
        (fresh.body.as_str(), fresh.version),
        (format!("v2 {}", n + 1).as_str(), 1)
    );
    // The set-based statement wrote the updates first, though the new rows
    // came first in the input (`ON CONFLICT` writes in input order): on a
    // table never vacuumed, heap order is write order.
    let (updated_first,): (bool,) = sqlx::query_as(
        "SELECT (SELECT ctid FROM notes WHERE id = $1) < (SELECT ctid FROM notes WHERE id = $2)",
    )
    .bind(ids[i])
    .bind(ids[n + 1])
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(updated_first, "upsert_many took the ON CONFLICT fallback");
}

#[tokio::test]
async fn staged_upsert_with_a_key_twice_fails_whole_like_on_conflict() {
    let db = db().await;
    let pool = &db.pool;
    let n = strata_sdk::postgres::BATCH_CHUNK + 500;
    let ids: Vec<uuid::Uuid> = (0..2 * n).map(|_| uuid::Uuid::new_v4()).collect();
    Note::insert_many(pool, staged_notes(0, n, &ids, "v1"))
        .await
        .unwrap();
    // An existing key twice, then a new key twice: both are refused by the
    // database (a row cannot be affected twice), and nothing changes.
    for dup in [3, n + 3] {
        let mut rows = staged_notes(0, n + 10, &ids, "v2");
        let mut again = rows[dup].clone();
        again.title = "another title".into();
        rows.push(again);
        let err = Note::upsert_many(pool, rows).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidValue { ref code, .. } if code == "21000"),
            "key {dup}: {err:?}"
        );
        assert_eq!(Note::count(pool).await.unwrap(), n as i64);
        assert_eq!(Note::get(pool, &ids[3]).await.unwrap().body, "v1 3");
    }
    // A unique clash on another column (title) is a typed conflict naming it.
    let mut rows = staged_notes(0, n + 10, &ids, "v3");
    rows[n + 5].title = "note 2".into();
    let err = Note::upsert_many(pool, rows).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref constraint } if constraint.contains("title")),
        "{err:?}"
    );
    assert_eq!(Note::count(pool).await.unwrap(), n as i64);
}

#[tokio::test]
async fn staged_upsert_survives_a_key_inserted_concurrently() {
    let db = db().await;
    let pool = &db.pool;
    let n = strata_sdk::postgres::BATCH_CHUNK + 500;
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
    let racer = n - 1;
    // Another transaction inserts one of the batch's new keys and holds it.
    let mut other = pool.begin().await.unwrap();
    Note::insert(
        &mut *other,
        &NewNote {
            id: Some(ids[racer]),
            title: "racer".into(),
            ..note("racer", "theirs")
        },
    )
    .await
    .unwrap();
    let batch = tokio::spawn({
        let pool = pool.clone();
        let rows = staged_notes(0, n, &ids, "ours");
        async move { Note::upsert_many(&pool, rows).await }
    });
    // Commit once the batch waits on that key's index entry.
    // pg_locks is server-wide and transaction locks name no database: count
    // only the waits of this test's database (other tests run alongside).
    let waiting = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                   WHERE NOT l.granted AND l.locktype = 'transactionid' AND a.datname = current_database()";
    for _ in 0..600 {
        let w: i64 = sqlx::query_scalar(waiting).fetch_one(pool).await.unwrap();
        if w > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let w: i64 = sqlx::query_scalar(waiting).fetch_one(pool).await.unwrap();
    assert_eq!(w, 1, "the batch should be waiting on the racing key");
    other.commit().await.unwrap();
    let c = batch.await.unwrap().unwrap();
    assert_eq!((c.inserted, c.updated), ((n - 1) as u64, 1));
    let row = Note::get(pool, &ids[racer]).await.unwrap();
    assert_eq!((row.body, row.version), (format!("ours {racer}"), 2));
    assert_eq!(Note::count(pool).await.unwrap(), n as i64);
}
