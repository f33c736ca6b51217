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
            self.err(ResolveError::NotCaptured {
                at: ev.span,
                entity: e.name.schema.clone(),
            });
            ok = false;
        }
        let partitions = match &ev.partitions {
            Some(p) if p.value == 0 || p.value > Events::MAX_PARTITIONS => {
                self.err(ResolveError::BadPartitions {
                    at: p.span,
                    found: p.value,
                });
                ok = false;
                0
            }
            Some(p) => p.value as u16,
            None => Events::DEFAULT_PARTITIONS,
        };
        let max_len = match &ev.max_len {
            Some(m) if m.value < Events::MIN_MAX_LEN => {
                self.err(ResolveError::BadMaxLen {
                    at: m.span,
                    found: m.value,
                });
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
