//! The statement seam's metrics go to whichever recorder is current when a
//! statement runs: its keys are built at compile time, but no recorder's
//! handle is kept, so a recorder installed after the first statement (here,
//! `metrics`' local recorders, one after the other) sees every later
//! statement, and only those. A process of its own: no global recorder.

mod sdk_support;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use sdk_support::TestDb;
use std::future::Future;
use tokio::runtime::Runtime;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, strata_derive::Entity)]
#[strata(
    table = "seam_metric_notes",
    key(id),
    store = "notes",
    query(by_body(params(body)))
)]
pub struct SeamNote {
    pub id: i64,
    pub body: String,
}

const DDL: &str =
    r#"CREATE TABLE "seam_metric_notes" ("id" bigint PRIMARY KEY, "body" text NOT NULL);"#;

/// The value of the sample `name{labels…}` in Prometheus text, if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Runs `f` to completion on this thread (`block_on`), with `recorder` as
/// its local recorder, and returns the recorder's text afterwards.
fn recorded<F: Future<Output = ()>>(rt: &Runtime, recorder: &PrometheusRecorder, f: F) -> String {
    metrics::with_local_recorder(recorder, || rt.block_on(f));
    recorder.handle().render()
}

fn calls(text: &str, operation: &str) -> Option<f64> {
    let labels = [
        ("store", "notes"),
        ("entity", "SeamNote"),
        ("operation", operation),
    ];
    sample(text, "strata_statement_duration_seconds_count", &labels)
}

#[test]
fn a_recorder_installed_later_sees_every_later_statement() {
    let rt = Runtime::new().unwrap();
    let db = rt.block_on(TestDb::with_ddl(DDL));
    let pool = db.pool.clone();
    // Statements before any recorder: recorded nowhere.
    rt.block_on(async {
        let note = NewSeamNote {
            id: 1,
            body: "a".into(),
        };
        SeamNote::insert(&pool, &note).await.unwrap();
        SeamNote::get(&pool, &1).await.unwrap();
    });

    let first = PrometheusBuilder::new().build_recorder();
    let text = recorded(&rt, &first, async {
        SeamNote::get(&pool, &1).await.unwrap();
        SeamNote::get(&pool, &1).await.unwrap();
        assert_eq!(SeamNote::by_body(&pool, "a").await.unwrap().len(), 1);
    });
    assert_eq!(calls(&text, "find"), Some(2.0), "{text}");
    assert_eq!(calls(&text, "by_body"), Some(1.0), "a finder: {text}");
    assert_eq!(calls(&text, "insert"), None, "before the recorder: {text}");
    let rows = [
        ("store", "notes"),
        ("entity", "SeamNote"),
        ("operation", "find"),
    ];
    assert_eq!(
        sample(&text, "strata_statement_rows_total", &rows),
        Some(2.0)
    );
    let acquired = sample(
        &text,
        "strata_pool_acquire_duration_seconds_count",
        &[("store", "notes")],
    );
    assert_eq!(acquired, Some(3.0), "{text}");

    // A second recorder sees its own statements only.
    let second = PrometheusBuilder::new().build_recorder();
    let text = recorded(&rt, &second, async {
        SeamNote::get(&pool, &1).await.unwrap();
    });
    assert_eq!(calls(&text, "find"), Some(1.0), "{text}");
    assert_eq!(calls(&text, "by_body"), None, "{text}");
    drop(pool);
    drop(db);
}
