//! Each statement of a repository call opens one `strata.statement` span
//! (`strata_sdk::postgres::seam`) with the entity, the operation and the
//! rows of its result, and never a value or a key.

mod sdk_support;

use sdk_support::TestDb;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(table = "span_counters", key(name))]
pub struct SpanCounter {
    pub name: String,
    #[strata(default = 0)]
    pub hits: i64,
}

const DDL: &str =
    r#"CREATE TABLE "span_counters" ("name" text PRIMARY KEY, "hits" bigint NOT NULL DEFAULT 0);"#;

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

mod spans {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Every field of every `strata.statement` span, as `name=value`.
    #[derive(Clone, Default)]
    pub struct Spans(pub Arc<Mutex<Vec<Vec<String>>>>);

    struct Fields<'a>(&'a mut Vec<String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            self.0.push(format!("{}={v:?}", f.name()));
        }
    }

    impl Subscriber for Spans {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, a: &Attributes<'_>) -> Id {
            let mut spans = self.0.lock().unwrap();
            let mut fields = vec![format!("span={}", a.metadata().name())];
            a.record(&mut Fields(&mut fields));
            spans.push(fields);
            Id::from_u64(spans.len() as u64)
        }
        fn record(&self, id: &Id, r: &Record<'_>) {
            let mut spans = self.0.lock().unwrap();
            r.record(&mut Fields(&mut spans[id.into_u64() as usize - 1]));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[test]
fn each_statement_opens_one_span_without_values() {
    let spans = spans::Spans::default();
    let seen = spans.clone();
    tracing::subscriber::with_default(spans, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = TestDb::with_ddl(DDL).await;
            let secret_name = "value-that-must-not-appear";
            let new = |name: &str| NewSpanCounter {
                name: name.into(),
                hits: Some(1),
            };
            SpanCounter::insert(&db.pool, &new(secret_name))
                .await
                .unwrap();
            SpanCounter::get_many(&db.pool, &names(&[secret_name, "x"]))
                .await
                .unwrap();
            SpanCounter::insert_many(&db.pool, ["p", "q", "r"].map(new))
                .await
                .unwrap();
        });
    });
    let spans = seen.0.lock().unwrap().clone();
    let ours: Vec<&Vec<String>> = spans
        .iter()
        .filter(|s| s[0] == "span=strata.statement")
        .collect();
    let ops: Vec<(String, String)> = ours
        .iter()
        .map(|s| (s[2].clone(), s.last().unwrap().clone()))
        .collect();
    assert_eq!(
        ops,
        [
            ("operation=\"insert\"".into(), "rows=1".into()),
            ("operation=\"get_many\"".into(), "rows=1".into()),
            // The batch call's span, then its one UNNEST statement's.
            ("operation=\"insert_many\"".into(), "rows=3".into()),
            ("operation=\"insert_many\"".into(), "rows=3".into()),
        ]
    );
    assert!(ours.iter().all(|s| s[1] == "entity=\"SpanCounter\""));
    let text = format!("{spans:?}");
    assert!(!text.contains("must-not-appear"), "{text}");
}
