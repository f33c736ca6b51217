//! Copying tables again for a consumer group whose ClickHouse copy gained
//! columns (a field added to the schema): the changes committed between
//! the migration and the restart of `strata sync run` were published
//! under the old column list, so their events carry no value for the new
//! column, and applying them leaves it empty. `strata sync run` copies such
//! tables again ([`super::super::recopy`]); this is the same for `consume`.
//!
//! Crash-safe and once per group: the tables to copy are recorded in Redis
//! (`<pipeline>:recopy`) *before* the columns are added, so a consumer
//! that dies after adding them still finds the work on its next start;
//! one consumer copies (a lock), the others wait for the record to go.
//!
//! Consistency: the rows are read in a snapshot exported by a temporary
//! replication slot and written at its consistent point `c` as version.
//! Every event carries its commit LSN: a change committed before `c` is in
//! the snapshot and loses to the copy; one after `c` wins over it (the
//! argument of [`super::super::recopy`]).

use std::time::Duration;

use tokio::sync::watch;

use super::super::apply::Target;
use super::super::error::SyncError;
use super::super::wire::{ConnInfo, ReplConn};
use super::{redis_err, Consumer};

impl Consumer<'_> {
    fn recopy_key(&self) -> String {
        format!("{}:recopy", self.p.name)
    }

    /// Records the tables whose ClickHouse copy lacks a column, once the
    /// group's first copy is done (before it, that copy covers them). Call
    /// before the targets add the columns.
    pub(super) async fn plan_recopy(&self) -> Result<(), SyncError> {
        let first = format!("{}:snapshot", self.p.name);
        if self.leases.get(&first).await.map_err(redis_err)?.is_none() {
            return Ok(());
        }
        let mut need: Vec<String> = Vec::new();
        for t in &self.targets.list {
            if let Target::ClickHouse(c) = t {
                for i in c.missing_columns(&self.p.tables).await? {
                    need.push(self.p.tables[i].source_table.clone());
                }
            }
        }
        if need.is_empty() {
            return Ok(());
        }
        if let Some(old) = self
            .leases
            .get(&self.recopy_key())
            .await
            .map_err(redis_err)?
        {
            need.extend(old.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        }
        need.sort();
        need.dedup();
        eprintln!(
            "strata sync consume: `{}`: {} gained columns; copying again",
            self.p.name,
            need.join(", ")
        );
        let key = self.recopy_key();
        self.leases
            .set(&key, &need.join(","))
            .await
            .map_err(redis_err)
    }

    /// Copies the recorded tables (one consumer of the group; the others
    /// wait until it is done), then forgets the record.
    pub(super) async fn recopy_pending(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), SyncError> {
        let lock = format!("{}:recopy:lock", self.p.name);
        loop {
            let Some(list) = self
                .leases
                .get(&self.recopy_key())
                .await
                .map_err(redis_err)?
            else {
                return Ok(());
            };
            if *stop.borrow() {
                return Ok(());
            }
            let ttl = Duration::from_secs(600);
            if self.leases.set_nx(&lock, ttl).await.map_err(redis_err)? {
                let tables: Vec<usize> = (self.src.tables.iter())
                    .map(|t| t.table)
                    .filter(|&i| list.split(',').any(|n| n == self.p.tables[i].source_table))
                    .collect();
                let copy = self.copy_at_consistent_point(&tables);
                let copied = self.holding(&lock, ttl, copy).await;
                if copied.is_ok() {
                    self.leases
                        .del(&self.recopy_key())
                        .await
                        .map_err(redis_err)?;
                }
                self.leases.del(&lock).await.map_err(redis_err)?;
                return copied;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn copy_at_consistent_point(&self, tables: &[usize]) -> Result<(), SyncError> {
        let info = ConnInfo::parse(&self.p.source_url)?;
        let mut slot_conn = ReplConn::connect(&info, "strata-consume-recopy").await?;
        let slot = format!("strata_recopy_{:016x}", rand::random::<u64>());
        let (cp, snap) = slot_conn.create_slot(&slot, true).await?;
        self.copy_tables(tables, Some(&snap), cp.0).await?;
        // Closing the exporting connection drops the temporary slot.
        drop(slot_conn);
        Ok(())
    }
}
