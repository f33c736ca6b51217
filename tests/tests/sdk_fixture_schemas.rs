//! A new user's tour of the generated SDK of the `market_multi_store` and
//! `fleet_multi_store` fixtures against a real PostgreSQL — reserved-word tables,
//! composite keys, self-references, nullable enums, arrays, json, wide
//! decimals, bytes, dates, versioned rows, every finder, keyset pages, and
//! batches (COPY path, failures half-way). Each test has its own database.

mod sdk_support;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sdk_support::TestDb;
use strata_sdk::postgres::PageRequest;
use strata_sdk::{BatchCounts, Error, Secret};
use strata_tests::fixtures::market_multi_store::entities::*;

async fn db(fixture: &str, store: &str) -> TestDb {
    let path = format!(
        "{}/fixtures/valid/{fixture}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let model = strata_codegen::compile(&strata_codegen::load(path).unwrap()).unwrap();
    TestDb::for_model(&model, store).await
}

fn new_user(handle: &str) -> NewUser {
    NewUser {
        id: None,
        handle: handle.into(),
        email: format!("{handle}@example.com"),
        tier: None,
        born_on: None,
        avatar: None,
        password: Secret::new("hunter2"),
        referrer_id: None,
        group: None,
        flags: None,
        badges: None,
        seen: None,
        days: None,
        keys: None,
    }
}

fn new_order(user: uuid::Uuid, note: Option<&str>) -> NewOrder {
    NewOrder {
        user_id: user,
        state: None,
        r#type: None,
        total: Decimal::new(1, 10),
        fee: None,
        qty: 1,
        lines: serde_json::json!([]),
        meta: None,
        labels: None,
        amounts: None,
        placed_on: None,
        note: note.map(Into::into),
        ratio: None,
        active: None,
    }
}

#[tokio::test]
async fn reserved_words_self_references_and_every_single_row_method() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let mut ada = new_user("ada");
    ada.tier = Some(Tier::Gold);
    ada.born_on = Some(NaiveDate::from_ymd_opt(1815, 12, 10).unwrap());
    ada.avatar = Some(vec![0, 255, 1, 254]);
    ada.flags = Some(vec![i16::MIN, 0, i16::MAX]);
    let ada = User::insert(pool, &ada).await.unwrap();
    assert_eq!(ada.group, "general");
    assert_eq!(ada.version, 1);
    assert_eq!(ada.flags, vec![i16::MIN, 0, i16::MAX]);
    assert_eq!(ada.avatar.as_deref(), Some(&[0u8, 255, 1, 254][..]));
    assert_eq!(ada.born_on, NaiveDate::from_ymd_opt(1815, 12, 10));
    assert!(!format!("{ada:?}").contains("hunter2"));
    assert_eq!(User::get(pool, &ada.id).await.unwrap(), ada);

    // Self-reference, set_null on delete.
    let mut bob = new_user("bob");
    bob.referrer_id = Some(ada.id);
    bob.group = Some("vip".into());
    let bob = User::insert(pool, &bob).await.unwrap();
    assert_eq!(
        User::referred_by(pool, &ada.id).await.unwrap(),
        vec![bob.clone()]
    );
    assert!(User::exists(pool, &bob.id).await.unwrap());
    assert_eq!(User::count(pool).await.unwrap(), 2);
    let many = User::get_many(pool, &[ada.id, bob.id, uuid::Uuid::new_v4()])
        .await
        .unwrap();
    assert_eq!(many.len(), 2);

    // Finders: one, fixed values, mixed param + fixed one.
    assert_eq!(
        User::by_handle(pool, "ada").await.unwrap().map(|u| u.id),
        Some(ada.id)
    );
    assert!(User::by_handle(pool, "nobody").await.unwrap().is_none());
    assert_eq!(User::gold(pool).await.unwrap(), vec![ada.clone()]);
    assert_eq!(
        User::in_group(pool, "vip").await.unwrap(),
        vec![bob.clone()]
    );
    assert_eq!(
        User::first_gold_in(pool, "general").await.unwrap(),
        Some(ada.clone())
    );
    assert!(User::first_gold_in(pool, "vip").await.unwrap().is_none());

    // Update: whole row, version bump, stale conflict.
    let mut changed = ada.clone();
    changed.tier = None;
    changed.flags = vec![];
    changed.avatar = Some(vec![]);
    let v2 = User::update(pool, &changed).await.unwrap();
    assert_eq!((v2.version, v2.tier, v2.flags.len()), (2, None, 0));
    assert_eq!(v2.avatar.as_deref(), Some(&[][..]));
    match User::update(pool, &changed).await {
        Err(Error::StaleVersion {
            expected: 1,
            found: 2,
            ..
        }) => {}
        other => panic!("expected StaleVersion, got {other:?}"),
    }

    // Patch: set, set-to-NULL, stale.
    let p = User::patch(
        pool,
        &ada.id,
        &UserPatch {
            tier: Some(Some(Tier::Silver)),
            born_on: Some(None),
            any_version: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (p.tier, p.born_on, p.version),
        (Some(Tier::Silver), None, 3)
    );
    let stale = User::patch(
        pool,
        &ada.id,
        &UserPatch {
            email: Some("x@y".into()),
            expected_version: Some(2),
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(stale, Err(Error::StaleVersion { found: 3, .. })),
        "{stale:?}"
    );

    // Unique conflict names the key.
    match User::insert(pool, &new_user("ada")).await {
        Err(Error::Conflict { constraint }) => {
            assert!(constraint.contains("handle"), "{constraint}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }

    // Composite key with a reserved-word table and columns.
    let g = Group::insert(
        pool,
        &NewGroup {
            owner_id: ada.id,
            name: "order".into(),
            parent_owner_id: None,
            parent_name: None,
            size: None,
            order: Some(-3),
            bits: Some(vec![true, false]),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (g.size, g.order, g.bits.clone()),
        (0, -3, vec![true, false])
    );
    let key = (ada.id, "order".to_string());
    assert_eq!(Group::get(pool, &key).await.unwrap(), g);
    let up = Group::upsert(
        pool,
        &NewGroup {
            owner_id: ada.id,
            name: "order".into(),
            parent_owner_id: Some(ada.id),
            parent_name: Some("order".into()),
            size: Some(i32::MAX),
            order: Some(i16::MIN),
            bits: None,
        },
    )
    .await
    .unwrap();
    assert_eq!((up.size, up.order), (i32::MAX, i16::MIN));
    // Upsert overwrites: a `None` for a defaulted field writes the default.
    assert!(up.bits.is_empty());
    assert_eq!(Group::of_owner(pool, &ada.id).await.unwrap(), vec![up]);
    let orphan = Group::insert(
        pool,
        &NewGroup {
            owner_id: uuid::Uuid::new_v4(),
            name: "x".into(),
            parent_owner_id: None,
            parent_name: None,
            size: None,
            order: None,
            bits: None,
        },
    )
    .await;
    assert!(
        matches!(orphan, Err(Error::ForeignKey { .. })),
        "{orphan:?}"
    );

    // Order: identity key, json, arrays, enums, finders.
    let mut o = new_order(ada.id, Some("first"));
    o.r#type = Some(Type::Digital);
    o.labels = Some(vec!["a".into(), "".into(), "ünï".into()]);
    o.amounts = Some(vec![Decimal::new(-12345, 4), Decimal::ZERO]);
    o.meta = Some(serde_json::json!({"k": [1, 2, {"n": null}]}));
    o.total = "999999999999999999.9999999999".parse().unwrap();
    let o = Order::insert(pool, &o).await.unwrap();
    assert_eq!(o.state, OrderState::Draft);
    assert_eq!(o.total.to_string(), "999999999999999999.9999999999");
    assert_eq!(Order::get(pool, &o.id).await.unwrap(), o);
    assert_eq!(
        Order::by_type(pool, &Type::Digital).await.unwrap(),
        vec![o.clone()]
    );
    assert!(Order::latest_paid(pool).await.unwrap().is_none());
    let paid = Order::patch(
        pool,
        &o.id,
        &OrderPatch {
            state: Some(OrderState::Paid),
            note: Some(None),
            any_version: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(paid.note, None);
    assert_eq!(Order::latest_paid(pool).await.unwrap(), Some(paid.clone()));
    assert_eq!(Order::for_user(pool, &ada.id).await.unwrap(), vec![paid]);
    assert!(Order::open_of(pool, &ada.id).await.unwrap().is_empty());
    // restrict: the user with orders cannot go.
    assert!(matches!(
        User::delete(pool, &ada.id).await,
        Err(Error::ForeignKey { .. })
    ));
    assert!(Order::delete(pool, &o.id).await.unwrap());
    assert!(User::delete(pool, &ada.id).await.unwrap());
    // set_null on the self-reference, cascade on the group.
    assert_eq!(User::get(pool, &bob.id).await.unwrap().referrer_id, None);
    assert_eq!(Group::count(pool).await.unwrap(), 0);
    assert!(matches!(
        User::get(pool, &ada.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn keyset_pages_to_the_end_in_both_orders() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("pager")).await.unwrap();
    for i in 0..37 {
        let mut o = new_order(u.id, Some(&format!("n{i}")));
        o.state = Some(if i % 3 == 0 {
            OrderState::Placed
        } else {
            OrderState::Paid
        });
        Order::insert(pool, &o).await.unwrap();
    }
    for desc in [false, true] {
        for size in [1u32, 5, 37, 100] {
            let mut req = PageRequest::first(size);
            if desc {
                req = req.desc();
            }
            let mut seen = Vec::new();
            loop {
                let page = Order::list(pool, &req).await.unwrap();
                seen.extend(page.items.iter().map(|o| o.id));
                match page.next_request(&req) {
                    Some(next) => req = next,
                    None => break,
                }
            }
            let mut want = seen.clone();
            want.sort();
            want.dedup();
            if desc {
                want.reverse();
            }
            assert_eq!(seen.len(), 37, "size {size} desc {desc}");
            assert_eq!(seen, want);
            // By a non-unique sort field: (state, id).
            let mut req = PageRequest::first(size);
            if desc {
                req = req.desc();
            }
            let mut seen = Vec::new();
            loop {
                let page = Order::list_by_state(pool, &req).await.unwrap();
                seen.extend(page.items.iter().map(|o| (o.state, o.id)));
                match page.next_request(&req) {
                    Some(next) => req = next,
                    None => break,
                }
            }
            let mut want = seen.clone();
            // PostgreSQL orders an enum by declaration: DRAFT, PLACED, PAID, ...
            want.sort_by_key(|(s, id)| (*s == OrderState::Paid, *id));
            if desc {
                want.reverse();
            }
            assert_eq!(seen.len(), 37);
            assert_eq!(seen, want);
        }
    }
    assert_eq!(Order::open_of(pool, &u.id).await.unwrap().len(), 13);
}

fn item(order_id: i64, line: i16) -> NewItem {
    NewItem {
        order_id,
        line,
        sku: format!("SKU-{line}-ß✓"),
        parent_line: if line % 2 == 0 { None } else { Some(line - 1) },
        price: Decimal::new(line as i64 * 101, 2),
        qty: line as i32 * -7,
        digest: match line % 3 {
            0 => None,
            1 => Some(vec![]),
            _ => Some((0..=255u8).collect()),
        },
    }
}

#[tokio::test]
async fn batches_counts_empty_copy_path_and_atomic_failure() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("batch")).await.unwrap();
    let o = Order::insert(pool, &new_order(u.id, None)).await.unwrap();
    assert_eq!(
        Item::insert_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
    assert_eq!(
        Item::delete_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
    let c = Item::insert_many(pool, (0..10).map(|i| item(o.id, i)))
        .await
        .unwrap();
    assert_eq!(c.inserted, 10);
    let c = Item::upsert_many(pool, (5..15).map(|i| item(o.id, i)))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (5, 5));
    let mut rows = Item::of_order(pool, &o.id).await.unwrap();
    assert_eq!(rows.len(), 15);
    for (i, r) in rows.iter().enumerate() {
        let want = item(o.id, i as i16);
        assert_eq!(
            (&r.sku, r.parent_line, r.price, r.qty, &r.digest),
            (
                &want.sku,
                want.parent_line,
                want.price,
                want.qty,
                &want.digest
            )
        );
    }
    for r in &mut rows {
        r.sku = String::new();
    }
    assert_eq!(
        Item::update_many(pool, rows.clone()).await.unwrap().updated,
        15
    );
    let keys: Vec<_> = rows.iter().take(4).map(|r| (r.order_id, r.line)).collect();
    assert_eq!(Item::delete_many(pool, keys).await.unwrap().deleted, 4);
    assert_eq!(Item::count(pool).await.unwrap(), 11);

    // 20,000 rows through COPY: round trip field by field.
    let o2 = Order::insert(pool, &new_order(u.id, Some("big")))
        .await
        .unwrap();
    let big: Vec<NewItem> = (0..20_000)
        .map(|i| {
            let mut it = item(o2.id, (i % 30_000) as i16);
            it.line = i as i16; // 0..20000 fits i16
            it
        })
        .collect();
    let c = Item::upsert_many(pool, big.clone()).await.unwrap();
    assert_eq!((c.inserted, c.updated), (20_000, 0));
    let back = Item::of_order(pool, &o2.id).await.unwrap();
    assert_eq!(back.len(), 10_000, "the finder's limit is 10000");
    for (r, w) in back.iter().zip(&big) {
        assert_eq!(
            (r.line, &r.sku, r.parent_line, r.price, r.qty, &r.digest),
            (w.line, &w.sku, w.parent_line, w.price, w.qty, &w.digest)
        );
    }
    assert_eq!(Item::count(pool).await.unwrap(), 20_011);

    // A batch failing half-way (FK at row 15,000) leaves nothing.
    let mut bad: Vec<NewItem> = (0..20_000).map(|i| item(o2.id + 1000, i as i16)).collect();
    for b in bad.iter_mut().take(15_000) {
        b.order_id = o2.id;
        b.line = -(b.line) - 1;
    }
    let err = Item::insert_many(pool, bad).await;
    assert!(matches!(err, Err(Error::ForeignKey { .. })), "{err:?}");
    assert_eq!(Item::count(pool).await.unwrap(), 20_011);
}

#[tokio::test]
async fn the_widest_decimals_round_trip_exactly() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let max28: Decimal = "9999999999999999999999999999".parse().unwrap();
    for (wide, huge) in [
        (
            "9999999999.999999999999999999",
            Some("0.9999999999999999999999999999"),
        ),
        (
            "-9999999999.999999999999999999",
            Some("-0.0000000000000000000000000001"),
        ),
        ("0.000000000000000001", None),
    ] {
        let l = Ledger::insert(
            pool,
            &NewLedger {
                wide: wide.parse().unwrap(),
                huge: huge.map(|h| h.parse().unwrap()),
                whole: -max28,
            },
        )
        .await
        .unwrap();
        assert_eq!(l.wide.to_string(), wide);
        assert_eq!(l.huge.map(|h| h.to_string()).as_deref(), huge);
        assert_eq!(l.whole, -max28);
        assert_eq!(Ledger::get(pool, &l.id).await.unwrap(), l);
    }
}

/// Regression: `decimal(38,18)` in PostgreSQL compiled, and a 38-digit value
/// read through the SDK came back rounded to 29 digits
/// (`12345678901234567890.123456789012345678` → `12345678901234567890.123456789`),
/// so an update wrote the rounded value back. Now a compile error.
#[test]
fn decimals_wider_than_the_sdk_are_refused() {
    let path = format!(
        "{}/fixtures/invalid/decimal_wider_than_sdk.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let err = strata_codegen::compile(&strata_codegen::load(path).unwrap()).expect_err("refused");
    let short = err.render_short();
    for f in ["Ledger.wide", "Ledger.huge", "Ledger.list", "Rate.rate"] {
        assert!(
            short.contains(&format!(
                "`{f}` cannot be carried by the Rust SDK without loss"
            )),
            "{short}"
        );
    }
    assert!(!short.contains("Ledger.fine"), "{short}");
    assert!(err.render_plain().contains("p at most 28"));
}

mod fleet {
    use super::*;
    use strata_tests::fixtures::fleet_multi_store::entities::*;

    fn van(plate: &str) -> NewVehicle {
        NewVehicle {
            fleet: "north".into(),
            plate: plate.into(),
            fuel: Some(Fuel::Electric),
            status: None,
            seats: 9,
            odometer: 0,
            bought_on: NaiveDate::from_ymd_opt(2020, 2, 29).unwrap(),
            price: Decimal::new(123456789012, 2),
            tow_fleet: None,
            tow_plate: None,
            specs: Some(serde_json::json!({"big": "x".repeat(100_000)})),
            zones: Some(vec![String::new(), "Zone \u{1F69A}".into()]),
            user: Some(format!("driver-{plate}")),
        }
    }

    /// The enums' sqlx type names are schema-qualified (`"fleet"."fuel"`), so
    /// this works without `search_path = fleet`.
    #[tokio::test]
    async fn a_schema_qualified_store_with_enums_and_a_composite_key() {
        let db = db("fleet_multi_store", "registry").await;
        let pool = &db.pool;
        let v = Vehicle::insert(pool, &van("A-1")).await.unwrap();
        assert_eq!(v.status, Status::Idle);
        assert_eq!(v.zones, vec![String::new(), "Zone \u{1F69A}".to_string()]);
        let key = ("north".to_string(), "A-1".to_string());
        assert_eq!(Vehicle::get(pool, &key).await.unwrap(), v);
        assert_eq!(Vehicle::electric(pool).await.unwrap(), vec![v.clone()]);
        assert_eq!(
            Vehicle::by_user(pool, "driver-A-1").await.unwrap(),
            Some(v.clone())
        );
        let p = Vehicle::patch(
            pool,
            &key,
            &VehiclePatch {
                status: Some(Status::Service),
                fuel: Some(None),
                any_version: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((p.status, p.fuel, p.version), (Status::Service, None, 2));
        let up = Vehicle::upsert(pool, &van("A-1")).await.unwrap();
        assert_eq!((up.version, up.fuel), (3, Some(Fuel::Electric)));
        assert_eq!(Vehicle::in_fleet(pool, "north").await.unwrap().len(), 1);
        assert!(Vehicle::delete(pool, &key).await.unwrap());
    }
}

fn listing(seller: uuid::Uuid, i: u32) -> NewListing {
    let t = |s: i64| chrono::DateTime::<chrono::Utc>::from_timestamp_micros(s).unwrap();
    NewListing {
        id: uuid::Uuid::from_u128(i as u128 + 1),
        seller_id: seller,
        title: match i % 4 {
            0 => String::new(),
            1 => format!("ünï-{i} \u{1F600} \"q\" \\ \t"),
            _ => format!("t{i:05}"),
        },
        body: (i % 2 == 0).then(|| "x".repeat((i % 50) as usize)),
        r#type: match i % 3 {
            0 => None,
            1 => Some(Type::Digital),
            _ => Some(Type::Service),
        },
        tier: (i % 5 != 0).then_some(Tier::Gold),
        price: match i % 3 {
            0 => "999999999999999999.9999999999".parse().unwrap(),
            1 => "-999999999999999999.9999999999".parse().unwrap(),
            _ => Decimal::new(i as i64, 10),
        },
        discount: (i % 2 == 1).then(|| Decimal::new(-9999, 4)),
        stock: if i % 2 == 0 { i32::MIN } else { i32::MAX },
        rank: (i % 3 == 0).then_some(i16::MIN),
        views: (i % 4 == 0).then_some(i64::MAX),
        score: (i % 2 == 0).then_some(f64::MIN_POSITIVE),
        active: i % 2 == 0,
        listed_on: NaiveDate::from_ymd_opt(1, 1, 1).unwrap() + chrono::Days::new(i as u64),
        ends_at: (i % 2 == 1).then(|| t(-62_135_596_800_000_000 + i as i64)),
        attrs: if i == 7 {
            serde_json::json!({ "big": "y".repeat(1 << 20), "n": [1, 2.5, null, true] })
        } else {
            serde_json::json!({ "i": i, "ü": "\u{0}".replace('\u{0}', "") })
        },
        extra: (i % 3 == 0).then(|| serde_json::json!(null)),
        photo: match i % 3 {
            0 => None,
            1 => Some(vec![]),
            _ => Some(vec![0u8; 300]),
        },
        secret: (i % 2 == 0).then(|| Secret::new(format!("s{i}"))),
    }
}

fn same(r: &Listing, w: &NewListing) {
    assert_eq!(r.id, w.id);
    assert_eq!(r.seller_id, w.seller_id);
    assert_eq!(r.title, w.title);
    assert_eq!(r.body, w.body);
    assert_eq!(r.r#type, w.r#type);
    assert_eq!(r.tier, w.tier.unwrap_or(Tier::Bronze));
    assert_eq!(r.price, w.price);
    assert_eq!(r.discount, w.discount);
    assert_eq!(r.stock, w.stock);
    assert_eq!(r.rank, w.rank);
    assert_eq!(r.views, w.views.unwrap_or(0));
    assert_eq!(r.score, w.score);
    assert_eq!(r.active, w.active);
    assert_eq!(r.listed_on, w.listed_on);
    assert_eq!(r.ends_at, w.ends_at);
    assert_eq!(r.attrs, w.attrs);
    assert_eq!(r.extra, w.extra, "extra of {}", r.id);
    assert_eq!(r.photo, w.photo);
    assert_eq!(
        r.secret.as_ref().map(|s| s.expose().to_string()),
        w.secret.as_ref().map(|s| s.expose().to_string())
    );
    assert_eq!(r.version, 1);
}

#[tokio::test]
async fn twenty_thousand_rows_of_every_type_through_copy() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("seller")).await.unwrap();
    let rows: Vec<NewListing> = (0..20_000).map(|i| listing(u.id, i)).collect();
    // Small batch (UNNEST) first, then the COPY paths.
    let c = Listing::insert_many(pool, rows[..10].to_vec())
        .await
        .unwrap();
    assert_eq!(c.inserted, 10);
    let c = Listing::insert_many(pool, rows.clone()).await.unwrap();
    assert_eq!(c.inserted, 19_990);
    let back = Listing::of_seller(pool, &u.id).await.unwrap();
    assert_eq!(back.len(), 20_000);
    let by_id: std::collections::HashMap<_, _> = back.iter().map(|r| (r.id, r)).collect();
    for w in &rows {
        same(by_id[&w.id], w);
    }
    let c = Listing::upsert_many(pool, rows.clone()).await.unwrap();
    assert_eq!((c.inserted, c.updated), (0, 20_000));
    let mut changed = Listing::of_seller(pool, &u.id).await.unwrap();
    assert!(changed.iter().all(|r| r.version == 2));
    for r in &mut changed {
        r.stock = 0;
    }
    let c = Listing::update_many(pool, changed.clone()).await.unwrap();
    assert_eq!(c.updated, 20_000);
    // Stale versions: the whole batch fails, nothing written.
    changed[19_999].stock = 5;
    let err = Listing::update_many(pool, changed.clone()).await;
    assert!(matches!(err, Err(Error::BatchIncomplete { .. })), "{err:?}");
    assert!(Listing::of_seller(pool, &u.id)
        .await
        .unwrap()
        .iter()
        .all(|r| r.stock == 0 && r.version == 3));
    let keys: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    assert_eq!(
        Listing::delete_many(pool, keys).await.unwrap().deleted,
        20_000
    );
}

#[tokio::test]
async fn edge_cases_a_new_user_hits() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let a = User::insert(pool, &{
        let mut u = new_user("a");
        u.tier = Some(Tier::Gold);
        u
    })
    .await
    .unwrap();
    let b = User::insert(pool, &{
        let mut u = new_user("b");
        u.tier = Some(Tier::Gold);
        u
    })
    .await
    .unwrap();
    // `one: true` with two matches: the first in the query's order.
    let first = User::first_gold_in(pool, "general").await;
    assert_eq!(first.unwrap().map(|u| u.id), Some(a.id));
    // An empty patch changes nothing but is not an error.
    let any = UserPatch {
        any_version: true,
        ..Default::default()
    };
    let same = User::patch(pool, &a.id, &any).await.unwrap();
    assert_eq!(same.email, a.email);
    // get_many with a key twice.
    let many = User::get_many(pool, &[a.id, a.id, b.id]).await.unwrap();
    println!("QA2 get_many dup -> {}", many.len());
    assert!(many.len() == 2 || many.len() == 3, "{}", many.len());
    // A page of zero rows does not loop forever.
    let page = User::list(pool, &PageRequest::first(0)).await.unwrap();
    println!(
        "QA2 page0 -> {} next {}",
        page.items.len(),
        page.next_request(&PageRequest::first(0)).is_some()
    );
    assert!(page.items.is_empty() || page.items.len() <= 2);
    if let Some(next) = page.next_request(&PageRequest::first(0)) {
        let again = User::list(pool, &next).await.unwrap();
        assert!(again.items.len() <= 2);
    }
    // Composite unique conflict names its key.
    Order::insert(pool, &new_order(a.id, Some("dup")))
        .await
        .unwrap();
    match Order::insert(pool, &new_order(a.id, Some("dup"))).await {
        Err(Error::Conflict { constraint }) => {
            assert!(
                constraint.contains("user_id") && constraint.contains("note"),
                "{constraint}"
            )
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // A string longer than its max is a typed error naming the field.
    let long = User::insert(pool, &new_user(&"x".repeat(41))).await;
    assert!(
        matches!(
            long,
            Err(Error::Refused {
                field: "handle",
                ..
            })
        ),
        "{long:?}"
    );
    // A patch of a missing key is NotFound.
    let missing = User::patch(
        pool,
        &uuid::Uuid::new_v4(),
        &UserPatch {
            email: Some("z".into()),
            any_version: true,
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

/// Regression: an entity with an array field had no batch methods at all
/// (`Order::insert_many` did not exist), though arrays are ordinary column
/// types; now its batch writes go in multi-row `VALUES` chunks in one transaction.
#[tokio::test]
async fn entities_with_arrays_have_batch_methods() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("arrays")).await.unwrap();
    assert_eq!(
        Order::insert_many(pool, Vec::new()).await.unwrap(),
        BatchCounts::default()
    );
    let rows = (0..50).map(|i| {
        let mut o = new_order(u.id, Some(&format!("n{i}")));
        o.labels = match i % 3 {
            0 => None,
            1 => Some(vec![]),
            _ => Some(vec!["ä,b".into(), "\"{}\"".into(), String::new()]),
        };
        o.amounts = (i % 2 == 0).then(|| {
            vec![
                Decimal::new(-i, 4),
                "9999999999999999.9999".parse().unwrap(),
            ]
        });
        o.r#type = (i % 2 == 1).then_some(Type::Service);
        o
    });
    let want: Vec<NewOrder> = rows.clone().collect();
    let c = Order::insert_many(pool, rows).await.unwrap();
    assert_eq!(c.inserted, 50);
    let back = Order::for_user(pool, &u.id).await.unwrap();
    assert_eq!(back.len(), 50);
    for r in &back {
        let i: usize = r.note.as_deref().unwrap()[1..].parse().unwrap();
        let w = &want[i];
        assert_eq!(r.labels, w.labels.clone().unwrap_or_default());
        assert_eq!(r.amounts, w.amounts.clone().unwrap_or_default());
        assert_eq!(
            (r.r#type, r.state, r.version),
            (w.r#type, OrderState::Draft, 1)
        );
    }
    let mut changed = back.clone();
    for r in &mut changed {
        r.labels.push("more".into());
    }
    assert_eq!(
        Order::update_many(pool, changed.clone())
            .await
            .unwrap()
            .updated,
        50
    );
    assert!(Order::for_user(pool, &u.id).await.unwrap().iter().all(|r| r
        .labels
        .last()
        .map(String::as_str)
        == Some("more")
        && r.version == 2));
    // Stale rows fail the whole call.
    let err = Order::update_many(pool, changed).await;
    assert!(
        matches!(
            err,
            Err(Error::BatchIncomplete {
                expected: 50,
                affected: 0,
                ..
            })
        ),
        "{err:?}"
    );
    // A label longer than varchar(20) fails the whole insert.
    let mut bad: Vec<NewOrder> = (0..3)
        .map(|i| new_order(u.id, Some(&format!("b{i}"))))
        .collect();
    bad[2].labels = Some(vec!["x".repeat(21)]);
    let err = Order::insert_many(pool, bad).await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(Order::count(pool).await.unwrap(), 50);
    let ids: Vec<i64> = back.iter().map(|r| r.id).collect();
    assert_eq!(Order::delete_many(pool, ids).await.unwrap().deleted, 50);
}

/// Rows with array columns batch in multi-row `VALUES` statements of up to
/// 1,000 rows, not one statement per row: a statement-level trigger counts
/// the statements that reach the table.
#[tokio::test]
async fn array_rows_batch_in_multi_row_statements() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    sqlx::raw_sql(
        "CREATE TABLE stmts (op text); \
         CREATE FUNCTION count_stmt() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN INSERT INTO stmts VALUES (TG_OP); RETURN NULL; END $$; \
         CREATE TRIGGER count_stmt AFTER INSERT OR UPDATE ON \"user\" FOR EACH STATEMENT EXECUTE FUNCTION count_stmt();",
    )
    .execute(pool)
    .await
    .unwrap();
    // An `INSERT … ON CONFLICT DO UPDATE` fires both the INSERT and the
    // UPDATE statement triggers; count the statements by their first.
    let statements = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FILTER (WHERE op = 'INSERT') + count(*) FILTER (WHERE op = 'UPDATE' AND NOT EXISTS (SELECT 1 FROM stmts WHERE op = 'INSERT')) FROM stmts")
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query("TRUNCATE stmts").execute(pool).await.unwrap();
        n
    };
    let ids: Vec<uuid::Uuid> = (0..2_500).map(|_| uuid::Uuid::new_v4()).collect();
    let user = |i: usize, tag: &str| NewUser {
        id: Some(ids[i]),
        badges: Some(vec![Tier::Gold, Tier::Bronze][..i % 3].to_vec()),
        keys: Some(vec![ids[i]]),
        group: Some(tag.into()),
        ..new_user(&format!("u{i}"))
    };
    let c = User::insert_many(pool, (0..1_200).map(|i| user(i, "v1")))
        .await
        .unwrap();
    assert_eq!(c.inserted, 1_200);
    assert_eq!(statements().await, 2, "1,200 rows: chunks of 1,000 and 200");
    let c = User::upsert_many(pool, (0..2_500).map(|i| user(i, "v2")))
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated), (1_300, 1_200));
    assert_eq!(statements().await, 3);
    let back = User::get(pool, &ids[1_100]).await.unwrap();
    assert_eq!(
        (
            back.group.as_str(),
            back.version,
            back.badges.as_slice(),
            back.keys.as_slice()
        ),
        (
            "v2",
            2,
            &[Tier::Gold, Tier::Bronze][..1_100 % 3],
            &[ids[1_100]][..]
        )
    );
    let mut all = User::in_group(pool, "v2").await.unwrap();
    assert_eq!(all.len(), 500, "the finder's limit");
    for u in &mut all {
        u.flags.push(7);
    }
    let c = User::update_many(pool, all).await.unwrap();
    assert_eq!(c.updated, 500);
    assert_eq!(statements().await, 1);
    assert_eq!(User::count(pool).await.unwrap(), 2_500);
}

#[tokio::test]
async fn arrays_of_enums_dates_timestamps_uuids_and_bools_round_trip() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(-1).unwrap();
    let mut u = new_user("arr");
    u.badges = Some(vec![Tier::Gold, Tier::Bronze, Tier::Gold]);
    u.seen = Some(vec![t, t + chrono::Duration::days(40_000)]);
    u.days = Some(vec![NaiveDate::from_ymd_opt(-4000, 1, 1).unwrap()]);
    u.keys = Some(vec![uuid::Uuid::nil(), uuid::Uuid::max()]);
    let row = User::insert(pool, &u).await.unwrap();
    assert_eq!(row.badges, u.badges.clone().unwrap());
    assert_eq!(row.seen, u.seen.clone().unwrap());
    assert_eq!(row.days, u.days.clone().unwrap());
    assert_eq!(row.keys, u.keys.clone().unwrap());
    assert_eq!(User::get(pool, &row.id).await.unwrap(), row);
    let mut v = new_user("arr2");
    v.badges = Some(vec![Tier::Silver]);
    let c = User::upsert_many(pool, vec![u.clone(), v]).await;
    // `u` has no id (generated), so both rows are new; handle is unique though.
    assert!(matches!(c, Err(Error::Conflict { .. })), "{c:?}");
    let mut w = new_user("arr3");
    w.badges = Some(vec![Tier::Silver]);
    assert_eq!(User::insert_many(pool, vec![w]).await.unwrap().inserted, 1);
    let got = User::by_handle(pool, "arr3").await.unwrap().unwrap();
    assert_eq!(got.badges, vec![Tier::Silver]);
    let mut changed = got.clone();
    changed.badges = vec![];
    let up = User::update_many(pool, vec![changed]).await.unwrap();
    assert_eq!(up.updated, 1);
    assert!(User::by_handle(pool, "arr3")
        .await
        .unwrap()
        .unwrap()
        .badges
        .is_empty());
}

/// Regression: `sort(field)` on an `Option` field of a hand-written struct
/// compiled, and `list_by_<field>` skipped every row whose field is NULL
/// (8 of 23 orders by a nullable `type`: `(type, id) > ($1, $2)` is never
/// true for them). Now the derive refuses it; generated structs never sort
/// by a nullable field.
#[test]
fn sorting_by_a_nullable_field_is_refused() {
    let input: syn::DeriveInput = syn::parse_str(
        r##"#[strata(table = "order", key(id), sort(r#type))]
        struct OrderByType {
            #[strata(ty = "i64", default = identity)]
            id: i64,
            #[strata(ty = "Type")]
            r#type: Option<Type>,
        }"##,
    )
    .unwrap();
    let err = strata_codegen::rust::repository::expand(&input).expect_err("refused");
    assert!(err.to_string().contains("nullable"), "{err}");
}

/// Keyset pages by every sort field the generator emits, with NULLs in
/// other columns: no gaps, no repeats, both orders, many page sizes.
#[tokio::test]
async fn keyset_pages_by_each_sort_field_with_nulls_elsewhere() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("nulls")).await.unwrap();
    for i in 0..23 {
        let mut o = new_order(u.id, Some(&format!("n{i}")));
        o.r#type = (i % 3 != 0).then_some(Type::Service);
        o.state = Some(if i % 2 == 0 {
            OrderState::Paid
        } else {
            OrderState::Draft
        });
        Order::insert(pool, &o).await.unwrap();
    }
    macro_rules! all_ids {
        ($method:ident, $size:expr, $desc:expr) => {{
            let mut req = PageRequest::first($size);
            if $desc {
                req = req.desc();
            }
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                pages += 1;
                assert!(pages < 100, "paging does not end");
                let page = Order::$method(pool, &req).await.unwrap();
                seen.extend(page.items.iter().map(|o| o.id));
                match page.next_request(&req) {
                    Some(n) => req = n,
                    None => break,
                }
            }
            seen
        }};
    }
    for desc in [false, true] {
        for size in [1u32, 4, 23, 50] {
            for seen in [
                all_ids!(list_by_state, size, desc),
                all_ids!(list_by_user_id, size, desc),
                all_ids!(list_by_created_at, size, desc),
                all_ids!(list, size, desc),
            ] {
                let mut ids = seen.clone();
                ids.sort();
                ids.dedup();
                assert_eq!((seen.len(), ids.len()), (23, 23), "size {size} desc {desc}");
            }
        }
    }
}

/// PostgreSQL text cannot hold U+0000: a typed error from the single-row and
/// the COPY paths alike, and the batch leaves nothing.
#[tokio::test]
async fn a_nul_character_is_a_typed_error_on_every_path() {
    let db = db("market_multi_store", "pg").await;
    let pool = &db.pool;
    let u = User::insert(pool, &new_user("nul")).await.unwrap();
    let mut bad = new_user("x");
    bad.email = "a\u{0}b".into();
    let err = User::insert(pool, &bad).await;
    assert!(matches!(err, Err(Error::InvalidValue { .. })), "{err:?}");
    // 12,000 rows: more than a chunk (10,000), so the COPY path.
    let mut rows: Vec<NewListing> = (0..12_000).map(|i| listing(u.id, i)).collect();
    rows[11_000].title = "\u{0}".into();
    let err = Listing::insert_many(pool, rows.clone()).await;
    assert!(matches!(err, Err(Error::InvalidValue { .. })), "{err:?}");
    let err = Listing::upsert_many(pool, rows[10_500..].to_vec()).await;
    assert!(matches!(err, Err(Error::InvalidValue { .. })), "{err:?}");
    assert_eq!(Listing::count(pool).await.unwrap(), 0);
}

mod library {
    use super::*;
    use strata_tests::fixtures::library_multi_store::entities::*;

    fn book(author: i32, edition: i16) -> NewBook {
        NewBook {
            isbn: "978-3-16-148410-0".into(),
            edition,
            author_id: author,
            title: format!("Edition {edition}"),
            summary: (edition % 2 == 0).then(|| "sum".into()),
            pages: None,
            price: Decimal::new(999_999, 2),
            tags: (edition % 3 == 0).then(|| vec!["a".into()]),
            published: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
                + chrono::Days::new(edition as u64),
        }
    }

    /// Tables in their own PostgreSQL schema (`lib`), without enums: every
    /// repository method works schema-qualified.
    #[tokio::test]
    async fn a_schema_qualified_store_without_enums() {
        let db = db("library_multi_store", "db").await;
        let pool = &db.pool;
        let a = Author::insert(
            pool,
            &NewAuthor {
                name: "Le Guin".into(),
                born: NaiveDate::from_ymd_opt(1929, 10, 21),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            Author::named(pool, "Le Guin").await.unwrap(),
            Some(a.clone())
        );
        let c = Book::insert_many(pool, (1..=30).map(|e| book(a.id, e)))
            .await
            .unwrap();
        assert_eq!(c.inserted, 30);
        let key = ("978-3-16-148410-0".to_string(), 3i16);
        let b = Book::get(pool, &key).await.unwrap();
        assert_eq!((b.tags.clone(), b.version), (vec!["a".to_string()], 1));
        let mine = Book::by_author(pool, &a.id).await.unwrap();
        assert_eq!(mine.len(), 30);
        assert_eq!(mine[0].edition, 30);
        let mut req = PageRequest::first(7).desc();
        let mut seen = Vec::new();
        loop {
            let page = Book::list(pool, &req).await.unwrap();
            seen.extend(page.items.iter().map(|b| b.edition));
            match page.next_request(&req) {
                Some(n) => req = n,
                None => break,
            }
        }
        assert_eq!(seen, (1..=30).rev().collect::<Vec<i16>>());
        let p = Book::patch(
            pool,
            &key,
            &BookPatch {
                summary: Some(None),
                pages: Some(Some(i32::MAX)),
                expected_version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((p.summary, p.pages, p.version), (None, Some(i32::MAX), 2));
        let c = Book::upsert_many(pool, (25..=35).map(|e| book(a.id, e)))
            .await
            .unwrap();
        assert_eq!((c.inserted, c.updated), (5, 6));
        assert!(Author::delete(pool, &a.id).await.unwrap());
        assert_eq!(Book::count(pool).await.unwrap(), 0, "cascade");
    }
}
