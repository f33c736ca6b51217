//! Names that are Rust keywords (`type`, `match`, `self`), SQL reserved
//! words (table `order`, column `user`) or the repository's own variable
//! names (`db`, `conn`) work end to end.

mod sdk_support;

use sdk_support::TestDb;
use strata_tests::fixtures::sdk_names::entities::*;

#[tokio::test]
async fn keyword_and_reserved_names_round_trip() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/valid/sdk_names.yaml");
    let model = strata_codegen::compile(&strata_codegen::load(path).unwrap()).unwrap();
    let db = TestDb::for_model(&model, "main").await;
    let pool = &db.pool;
    let row = |user: &str, kind: Kind, n: i32| NewOrder {
        user: user.into(),
        r#type: kind,
        self_: Some("me".into()),
        db: n,
        conn: None,
        r#match: None,
    };
    let o = Order::insert(pool, &row("u1", Kind::Select, 1))
        .await
        .unwrap();
    assert_eq!((o.self_.as_deref(), o.conn), (Some("me"), true));
    Order::insert_many(
        pool,
        vec![row("u2", Kind::Select, 1), row("u3", Kind::Self_, 2)],
    )
    .await
    .unwrap();
    let selects = Order::r#type(pool, &Kind::Select).await.unwrap();
    assert_eq!(
        selects.iter().map(|o| o.user.as_str()).collect::<Vec<_>>(),
        ["u2", "u1"]
    );
    assert_eq!(Order::by_db(pool, &1, &true).await.unwrap().len(), 2);
    let got = Order::find_get(pool, "u3", &Kind::Self_)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.r#type.as_str(), "self");
    assert_eq!(
        Order::get(pool, &("u3".into(), Kind::Self_)).await.unwrap(),
        got
    );
    let c = Order::upsert_many(
        pool,
        vec![NewOrder {
            r#match: Some("m".into()),
            ..row("u3", Kind::Self_, 9)
        }],
    )
    .await
    .unwrap();
    assert_eq!(c.updated, 1);
    assert_eq!(Order::count(pool).await.unwrap(), 3);
}
