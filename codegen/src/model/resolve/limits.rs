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
                self.err(
                    Problem::new(
                        Code::TooManyFields,
                        d.name.span,
                        format!("entity `{}` has {} fields", d.name.value, e.fields.len()),
                    )
                    .label(format!("more than {MAX_FIELDS}"))
                    .help("split it into entities that reference one another"),
                );
            }
            let rules = rules_of.remove(&EntityId::new(i)).unwrap_or_default();
            if let Some(r) = rules.get(MAX_SYNC_TARGETS) {
                self.err(
                    Problem::new(
                        Code::TooManyTargets,
                        r.span,
                        format!(
                            "entity `{}` is synced to {} stores",
                            d.name.value,
                            rules.len()
                        ),
                    )
                    .label(format!("more than {MAX_SYNC_TARGETS}"))
                    .help(format!(
                        "sync each entity to at most {MAX_SYNC_TARGETS} stores"
                    )),
                );
            }
            let columns = e.fields.len().saturating_mul(1 + rules.len());
            let before = total;
            total = total.saturating_add(columns);
            if before <= MAX_GENERATED_COLUMNS && total > MAX_GENERATED_COLUMNS {
                self.err(
                    Problem::new(
                        Code::TooLargeOutput,
                        d.name.span,
                        format!("the schema's artifacts would hold more than {MAX_GENERATED_COLUMNS} columns"),
                    )
                    .label(format!("{columns} columns here ({} fields × {} copies), {total} so far", e.fields.len(), 1 + rules.len()))
                    .help("each field is generated once for its home and once per sync target; sync fewer fields or stores, or split the schema into several crates"),
                );
            }
        }
    }
}
