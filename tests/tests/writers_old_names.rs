//! The writers' old names and methods, kept as deprecated aliases when the
//! three writers took one naming scheme (`Writer`, `WriterConfig`, `Error`,
//! `with_max_rows`, `with_retry`, `write`): code written against them still
//! compiles and configures the same thing.
#![allow(deprecated)]

use std::time::Duration;

use strata_sdk::elasticsearch::{BulkConfig, BulkError, BulkIndexer};
use strata_sdk::influx::{InfluxConfig, InfluxWriter, MissingVar, WriteError};
use strata_sdk::writer::Retry;

#[test]
fn old_influx_names_configure_the_same_writer() {
    let old: InfluxConfig = InfluxConfig::new("http://x", "o", "b")
        .with_batch_points(7)
        .with_batch_bytes(300)
        .with_retries(2, Duration::from_millis(5), Duration::from_millis(20));
    let s = old.settings();
    assert_eq!((s.max_rows(), s.max_bytes()), (7, 300));
    assert_eq!(
        s.retry(),
        Retry::new(2, Duration::from_millis(5), Duration::from_millis(20))
    );
    let w: InfluxWriter = InfluxWriter::new(old);
    assert_eq!(w.pending(), 0);
    let e: WriteError = WriteError::Encode(strata_sdk::influx::EncodeError::NoTime);
    assert!(!e.taken());
    let missing: Result<String, MissingVar> = strata_sdk::influx::expand("${STRATA_UNSET_OLD}");
    assert!(missing.is_err());
}

#[test]
fn old_elasticsearch_names_configure_the_same_writer() {
    let old: BulkConfig = BulkConfig::new("http://x")
        .with_max_bytes(1000)
        .with_retries(1, Duration::from_millis(5));
    assert_eq!(old.settings().max_bytes(), 1000);
    assert_eq!(old.settings().retry().retries(), 1);
    let w: BulkIndexer = BulkIndexer::new(old);
    assert_eq!(w.pending(), 0);
    let e: Option<BulkError> = None;
    assert!(e.is_none());
}

#[test]
fn old_clickhouse_retries_keep_their_meaning() {
    let c =
        strata_sdk::clickhouse::WriterConfig::default().with_retries(3, Duration::from_millis(10));
    assert_eq!(
        c.settings().retry(),
        Retry::new(3, Duration::from_millis(10), Duration::from_millis(10_240))
    );
}
