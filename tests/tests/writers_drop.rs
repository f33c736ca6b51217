//! A writer dropped with data it has not sent loses that data (a destructor
//! cannot await a request); each says so with an ERROR event instead of
//! losing it silently, and says nothing when it holds nothing.

use std::sync::{Arc, Mutex};

use strata_sdk::clickhouse::{Writer, WriterConfig};
use strata_sdk::elasticsearch;
use strata_sdk::influx;

use strata_tests::support::order_row;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

mod trading {
    pub use deepalpha_db::clickhouse::*;
}

/// Collects the message of every ERROR event.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Errors {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        if *e.metadata().level() == Level::ERROR {
            let mut m = String::new();
            e.record(&mut Message(&mut m));
            self.0.lock().unwrap().push(m);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn writers_dropped_with_unsent_data_say_so() {
    let errors = Errors::default();
    let seen = errors.clone();
    tracing::subscriber::with_default(errors, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Nothing is sent before a flush, so no server is needed.
            let client = strata_sdk::clickhouse::client("http://127.0.0.1:9", "nowhere");
            let empty = Writer::<trading::analytics::OrderRow>::new(
                client.clone(),
                WriterConfig::default(),
            );
            drop(empty);
            let mut w =
                Writer::<trading::analytics::OrderRow>::new(client, WriterConfig::default());
            w.write(&order_row(1, 1, 0)).await.unwrap();
            w.write(&order_row(1, 1, 0)).await.unwrap();
            drop(w);

            drop(influx::Writer::new(influx::WriterConfig::new(
                "http://127.0.0.1:9",
                "o",
                "b",
            )));
            drop(elasticsearch::Writer::new(
                elasticsearch::WriterConfig::new("http://127.0.0.1:9"),
            ));
        });
    });
    let got = seen.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("rows=2") && got[0].contains("live_order"),
        "{got:#?}"
    );
}
