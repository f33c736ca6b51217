//! Bounds on the work a schema may ask of the generators. The 8 MiB file
//! limit bounds the input, not the output: one entity of 1,000 fields synced
//! to 200 stores is a 17 KB schema whose artifacts hold 200,000 columns. The
//! generated size grows with fields × (1 + sync targets), so that product is
//! bounded, per entity and over the schema.

use super::*;
use crate::{MAX_FIELDS, MAX_GENERATED_COLUMNS, MAX_SYNC_TARGETS};

impl Resolver<'_> {
    pub(super) fn limits(
        &mut self,
        decls: &[&ast::EntityDecl],
        entities: &[Entity],
        sync: &[SyncTarget],
    ) {
        let mut total = 0usize;
        let mut rules_of: HashMap<EntityId, Vec<&SyncTarget>> = HashMap::new();
        for t in sync {
            rules_of.entry(t.entity).or_default().push(t);
        }
        for (i, (d, e)) in decls.iter().zip(entities).enumerate() {
            if e.fields.len() > MAX_FIELDS {
                self.err(ResolveError::TooManyFields {
                    at: d.name.span,
                    entity: d.name.value.clone(),
                    fields: e.fields.len(),
                    max: MAX_FIELDS,
                });
            }
            let rules = rules_of.remove(&EntityId::new(i)).unwrap_or_default();
            if let Some(r) = rules.get(MAX_SYNC_TARGETS) {
                self.err(ResolveError::TooManyTargets {
                    at: r.span,
                    entity: d.name.value.clone(),
                    targets: rules.len(),
                    max: MAX_SYNC_TARGETS,
                });
            }
            let columns = e.fields.len().saturating_mul(1 + rules.len());
            let before = total;
            total = total.saturating_add(columns);
            if before <= MAX_GENERATED_COLUMNS && total > MAX_GENERATED_COLUMNS {
                self.err(ResolveError::TooLargeOutput {
                    at: d.name.span,
                    max: MAX_GENERATED_COLUMNS,
                    columns,
                    fields: e.fields.len(),
                    copies: 1 + rules.len(),
                    total,
                });
            }
        }
    }
}
