//! What the scheduler's memory of known entries asks of the store (see
//! `scheduler::known`): a count that moves whenever the store forgets an identity (a
//! take-over, a new id, an expired tombstone), and which ids a source holds.
//!
//! The count is the sequence `forgotten`, advanced after the commit of every write
//! that forgot something, on whichever node made it; each node reads it with the
//! watermark, so a node passes over known entries only while no node has forgotten
//! anything since it remembered them (as far as it has seen, `watch_every` ago).

use super::super::StoreError;
use super::super::keys::identity_key;
use super::{Conn, Postgres};
use crate::item::SourceId;
use std::sync::atomic::Ordering;
use tracing::warn;

impl Postgres {
    /// The count as last seen: read with the watermark every `watch_every`, and
    /// advanced at once by this node's own writes. Reading it afresh before every
    /// changed document cost a round trip (and a pooled connection) on the poll's
    /// path; seen up to `watch_every` late, another node's forgetting only makes a
    /// known entry pass unread once more.
    pub(super) fn forgotten_count(&self) -> u64 {
        self.inner.forgotten.load(Ordering::Acquire)
            + self.inner.forgotten_here.load(Ordering::Acquire)
    }

    /// Notes the count read from the database.
    pub(super) fn note_forgotten_count(&self, count: u64) {
        self.inner.forgotten.fetch_max(count, Ordering::AcqRel);
    }

    /// Advances the count, after a commit that forgot identities: this node's own
    /// part at once (it cannot fail, so the node never passes over an entry it
    /// forgot), the database's for the other nodes (a failure there is only logged:
    /// they then read what they remembered once more than they should not).
    pub(super) async fn note_forgotten(&self, conn: &Conn) {
        self.inner.forgotten_here.fetch_add(1, Ordering::AcqRel);
        match conn.query_one("SELECT nextval('forgotten')", &[]).await {
            Ok(row) => self.note_forgotten_count(row.get::<_, i64>(0) as u64),
            Err(err) => warn!(error = %err, "cannot advance the count of forgotten identities"),
        }
    }

    /// Of each id, whether `source` holds its item (live or trimmed).
    pub(super) fn holds_ids(
        &self,
        source: &SourceId,
        ids: &[&str],
    ) -> Result<Vec<bool>, StoreError> {
        let identities: Vec<Vec<u8>> = ids.iter().map(|id| identity_key(source, id)).collect();
        let held: std::collections::HashSet<Vec<u8>> = self.block(async {
            let conn = self.conn().await?;
            let rows = conn
                .query(
                    "SELECT identity FROM ids WHERE identity = ANY($1)",
                    &[&identities],
                )
                .await?;
            Ok::<_, StoreError>(rows.iter().map(|row| row.get(0)).collect())
        })?;
        Ok(identities.iter().map(|i| held.contains(i)).collect())
    }
}
