//! The side tables ([`SideTable`]) in PostgreSQL: one table, `side`, keyed by the
//! table's name and the key, holding the same bytes as sled's side trees.

use super::Postgres;
use crate::store::{SideEntries, SideTable, StoreError};

impl Postgres {
    pub(super) async fn side_entries_of(
        &self,
        table: SideTable,
    ) -> Result<SideEntries, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                "SELECT key, value FROM side WHERE tab = $1 ORDER BY key",
                &[&table.name()],
            )
            .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    pub(super) async fn put_side(
        &self,
        table: SideTable,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO side (tab, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (tab, key) DO UPDATE SET value = EXCLUDED.value",
            &[&table.name(), &key, &value],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn remove_side(
        &self,
        table: SideTable,
        key: &[u8],
    ) -> Result<bool, StoreError> {
        let conn = self.conn().await?;
        let removed = conn
            .execute(
                "DELETE FROM side WHERE tab = $1 AND key = $2",
                &[&table.name(), &key],
            )
            .await?;
        Ok(removed > 0)
    }
}
