//! `events:`: the redis store, the partition count and trimming length,
//! checked; an entity change capture reads (a record of a postgres store).
//! Secret fields are allowed: events carry the copy projection, which
//! never holds one.

use super::*;

impl Resolver<'_> {
    pub(super) fn events(&mut self, d: &ast::EntityDecl, e: &mut Entity, stores: &Stores) {
        let Some(ev) = &d.events else { return };
        let mut ok = self.store_of_kind(&ev.store, stores, StoreKindTag::Redis, "events");
        let home = stores.at(e.store).map(|s| s.kind.tag());
        if home.is_some_and(|k| k != StoreKindTag::Postgres) || e.kind != EntityKind::Record {
            self.err(
                Problem::new(
                    Code::BadEvents,
                    ev.span,
                    format!("`{}` is not read by change capture", e.name.schema),
                )
                .label("events declared here")
                .help("change events come from PostgreSQL's change stream: declare `events:` on a record entity of a postgres store"),
            );
            ok = false;
        }
        let partitions = match &ev.partitions {
            Some(p) if p.value == 0 || p.value > Events::MAX_PARTITIONS => {
                self.err(
                    Problem::new(Code::BadEvents, p.span, "`partitions` must be 1 to 1024")
                        .label(format!("found {}", p.value))
                        .help("one partition keeps one order for the whole entity; more spread the load over consumers and Cluster nodes (8 is the default)"),
                );
                ok = false;
                0
            }
            Some(p) => p.value as u16,
            None => Events::DEFAULT_PARTITIONS,
        };
        let max_len = match &ev.max_len {
            Some(m) if m.value < Events::MIN_MAX_LEN => {
                self.err(
                    Problem::new(Code::BadEvents, m.span, "`max_len` must be at least 1000")
                        .label(format!("found {}", m.value))
                        .help("Redis trims streams approximately, by whole nodes of about 100 entries: write 1000 or more (100000 is the default)"),
                );
                ok = false;
                0
            }
            Some(m) => u64::from(m.value),
            None => Events::DEFAULT_MAX_LEN,
        };
        if ok {
            e.events = Some(Events {
                store: stores.id(&ev.store).unwrap_or(StoreId::NONE),
                partitions,
                max_len,
                pubsub: ev.pubsub.as_ref().is_none_or(|p| p.value),
            });
        }
    }
}
