//! What the scheduler's memory of known entries asks of the store (see
//! `scheduler::known`): a count that moves whenever the store forgets an identity (a
//! take-over, a new id, an expired tombstone), and which ids a source holds.
//!
//! The count is the sequence `forgotten`, advanced after the commit of every write
//! that forgot something, on whichever node made it; each node reads it afresh
//! before it reads a changed document, so a node passes over known entries only
//! while no node has forgotten anything since it remembered them.

use super::super::StoreError;
use super::super::keys::identity_key;
use super::{Conn, Postgres};
use crate::item::SourceId;

impl Postgres {
    /// The count now; a count that never repeats when the database does not answer
    /// (nothing is passed over then).
    pub(super) fn forgotten_count(&self) -> u64 {
        let read = self.block(async {
            let conn = self.conn().await?;
            let row = conn
                .query_one("SELECT last_value, is_called FROM forgotten", &[])
                .await?;
            let (value, called): (i64, bool) = (row.get(0), row.get(1));
            Ok::<_, StoreError>(if called { value as u64 } else { 0 })
        });
        read.unwrap_or_else(|_| {
            static FAILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            u64::MAX - FAILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Advances the count, after a commit that forgot identities.
    pub(super) async fn note_forgotten(&self, conn: &Conn) -> Result<(), StoreError> {
        conn.query_one("SELECT nextval('forgotten')", &[]).await?;
        Ok(())
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
