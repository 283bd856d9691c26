//! The cluster as the lease table says it is now, for the operator's pages: which
//! node holds each partition, and the live nodes. Read-only; one query of at most
//! [`PARTITIONS`] rows and one of the nodes, cheap enough for every request.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::StoreError;
use super::{PARTITIONS, Postgres};

/// Who holds what, read at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseMap {
    /// Partitions in all.
    pub partitions: u32,
    /// Partition -> the node holding it, for the partitions whose lease is current
    /// (the others are free or expired, about to be taken).
    pub owners: BTreeMap<u32, String>,
    /// The nodes seen within the lease TTL, by id, with the partitions each holds.
    pub nodes: BTreeMap<String, usize>,
}

impl LeaseMap {
    /// Partitions no node holds now.
    pub fn unowned(&self) -> usize {
        (self.partitions as usize).saturating_sub(self.owners.len())
    }
}

impl Postgres {
    /// The lease table now; `ttl` is how recently a node must have renewed to count
    /// as live.
    pub fn lease_map(&self, ttl: Duration) -> Result<LeaseMap, StoreError> {
        self.block(self.lease_map_async(ttl))
    }

    async fn lease_map_async(&self, ttl: Duration) -> Result<LeaseMap, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT part, owner FROM leases
                 WHERE owner IS NOT NULL AND expires_at > now() ORDER BY part",
                &[],
            )
            .await?;
        let owners: BTreeMap<u32, String> = rows
            .iter()
            .map(|row| (row.get::<_, i32>(0) as u32, row.get::<_, String>(1)))
            .collect();
        let ttl = format!("{} milliseconds", ttl.as_millis());
        let rows = conn
            .query(
                "SELECT id FROM nodes WHERE seen_at > now() - $1::text::interval",
                &[&ttl],
            )
            .await?;
        let mut nodes: BTreeMap<String, usize> = rows
            .iter()
            .map(|row| (row.get::<_, String>(0), 0))
            .collect();
        for owner in owners.values() {
            *nodes.entry(owner.clone()).or_default() += 1;
        }
        Ok(LeaseMap {
            partitions: PARTITIONS,
            owners,
            nodes,
        })
    }
}
