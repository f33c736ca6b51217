//! Every value is bound: hostile strings round-trip unchanged through every
//! write path, or fail with a typed error and write nothing.

mod sdk_support;

use sdk_support::TestDb;
use strata_sdk::Error;
use strata_tests::fixtures::sdk_composite::entities::*;

async fn db() -> TestDb {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/valid/sdk_composite.yaml"
    );
    let model = strata_codegen::compile(&strata_codegen::load(path).unwrap()).unwrap();
    TestDb::for_model(&model, "main").await
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
        payload: Some(serde_json::json!({ "text": body })),
        raw: None,
        token: Some(strata_sdk::Secret::new(body)),
        flag: None,
    }
}

fn hostile() -> Vec<String> {
    vec![
        "'".into(),
        "''; --".into(),
        "'); DROP TABLE notes; --".into(),
        "\"notes\"; DELETE FROM \"notes\"".into(),
        "$1 $2 \\x00 \\' %s {}".into(),
        "emoji 🦀📈 ñ 日本語 \u{202e}rtl".into(),
        "x".repeat(1 << 20),
    ]
}

#[tokio::test]
async fn hostile_strings_round_trip_through_every_path() {
    let db = db().await;
    let pool = &db.pool;
    for (i, s) in hostile().iter().enumerate() {
        let n = Note::insert(pool, &note(&format!("t{i}"), s))
            .await
            .unwrap();
        let back = Note::get(pool, &n.id).await.unwrap();
        assert_eq!(&back.body, s);
        assert_eq!(
            back.payload.as_ref().unwrap()["text"].as_str(),
            Some(s.as_str())
        );
        assert_eq!(back.token.as_ref().unwrap().expose(), s);
        // The finder's parameter is bound too.
        let title = &s[..s.len().min(200)];
        Note::patch(
            pool,
            &n.id,
            &NotePatch {
                title: Some(title.into()),
                any_version: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            Note::by_title(pool, title).await.unwrap().map(|n| n.id),
            Some(n.id)
        );
    }
    // Batch paths.
    let rows: Vec<NewNote> = hostile()
        .iter()
        .enumerate()
        .map(|(i, s)| note(&format!("b{i}"), s))
        .collect();
    assert_eq!(Note::upsert_many(pool, rows).await.unwrap().inserted, 7);
    let bars = hostile().into_iter().map(|s| NewCandleBar {
        symbol: s.chars().take(20).collect(),
        timeframe: "1m".into(),
        ts: chrono::Utc::now(),
        open: 1.0,
        high: 1.0,
        low: 1.0,
        close: 1.0,
        volume: 1.0,
    });
    assert_eq!(
        CandleBar::insert_many(pool, bars).await.unwrap().inserted,
        7
    );
    assert_eq!(Note::count(pool).await.unwrap(), 14);
    assert_eq!(CandleBar::count(pool).await.unwrap(), 7);
    let sym: String = "'); DROP TABLE notes; --".chars().take(20).collect();
    assert_eq!(CandleBar::series(pool, &sym, "1m").await.unwrap().len(), 1);
}

#[tokio::test]
async fn nul_bytes_are_a_typed_error_and_write_nothing() {
    let db = db().await;
    let pool = &db.pool;
    let err = Note::insert(pool, &note("nul", "a\0b")).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidValue { ref code, .. } if code == "22021"),
        "{err:?}"
    );
    let rows = vec![note("ok", "fine"), note("nul", "a\0b")];
    let err = Note::insert_many(pool, rows).await.unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert_eq!(Note::count(pool).await.unwrap(), 0);
}

#[tokio::test]
async fn nul_byte_in_a_large_copy_batch_writes_nothing() {
    let db = db().await;
    let pool = &db.pool;
    let n = strata_sdk::postgres::BATCH_CHUNK + 10;
    let rows = (0..n).map(|i| note(&format!("t{i}"), if i == n - 5 { "a\0b" } else { "ok" }));
    let err = Note::insert_many(pool, rows).await.unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert_eq!(Note::count(pool).await.unwrap(), 0);
    // The pool's connections are still usable afterwards.
    assert_eq!(
        Note::insert_many(pool, vec![note("after", "ok")])
            .await
            .unwrap()
            .inserted,
        1
    );
}
