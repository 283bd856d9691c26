//! The key-value tables that mirror sled's trees, as one write transaction sees them:
//! reads are answered from what the transaction already read or wrote, and fetched
//! in batches ([`Kv::prefetch`], one statement per table for a whole document);
//! writes are kept and sent together at the end ([`Kv::flush`]: one multi-row
//! statement per table and kind, pipelined), so a poll costs a handful of round
//! trips instead of several per item.
//!
//! The steps of the upsert read and write through [`Kv`] exactly as they did row by
//! row: within the transaction the overlay is what the tables would hold, and the
//! rows it writes at the end are that overlay's changes, each key once.

use deadpool_postgres::Transaction;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::super::StoreError;

/// The key-value tables that mirror sled's trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Table {
    Items,
    Ids,
    Links,
    Aliases,
}

impl Table {
    fn get_many(self) -> &'static str {
        match self {
            Table::Items => "SELECT key, body FROM items WHERE key = ANY($1)",
            Table::Ids => "SELECT identity, value FROM ids WHERE identity = ANY($1)",
            Table::Links => "SELECT link, owner FROM links WHERE link = ANY($1)",
            Table::Aliases => "SELECT alias, owner FROM aliases WHERE alias = ANY($1)",
        }
    }

    fn remove_many(self) -> &'static str {
        match self {
            Table::Items => "DELETE FROM items WHERE key = ANY($1)",
            Table::Ids => "DELETE FROM ids WHERE identity = ANY($1)",
            Table::Links => "DELETE FROM links WHERE link = ANY($1)",
            Table::Aliases => "DELETE FROM aliases WHERE alias = ANY($1)",
        }
    }

    /// The multi-row upsert; `items` and `ids` also take each row's source.
    fn put_many(self) -> &'static str {
        match self {
            Table::Items => {
                "INSERT INTO items (key, source, body)
                 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[])
                 ON CONFLICT (key) DO UPDATE SET source = excluded.source, body = excluded.body"
            }
            Table::Ids => {
                "INSERT INTO ids (identity, source, value)
                 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[])
                 ON CONFLICT (identity) DO UPDATE SET value = excluded.value"
            }
            Table::Links => {
                "INSERT INTO links (link, owner) SELECT * FROM unnest($1::bytea[], $2::bytea[])
                 ON CONFLICT (link) DO UPDATE SET owner = excluded.owner"
            }
            Table::Aliases => {
                "INSERT INTO aliases (alias, owner) SELECT * FROM unnest($1::bytea[], $2::bytea[])
                 ON CONFLICT (alias) DO UPDATE SET owner = excluded.owner"
            }
        }
    }
}

/// A row written by the transaction: its value and, for `items` and `ids`, its
/// source; `None` when removed.
type Written = Option<(Vec<u8>, String)>;

/// Rows to write to one table: key, value and source.
type Rows = Vec<(Vec<u8>, Vec<u8>, String)>;

#[derive(Default)]
struct Overlay {
    /// What the tables hold for the keys read or written so far (`None`: no row).
    rows: HashMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    /// The rows to write at the end, in key order.
    written: BTreeMap<(Table, Vec<u8>), Written>,
}

/// One write transaction, read and written as sled's trees are.
pub(super) struct Kv<'t, 'c> {
    tx: &'t Transaction<'c>,
    overlay: Mutex<Overlay>,
}

impl<'t, 'c> Kv<'t, 'c> {
    pub(super) fn new(tx: &'t Transaction<'c>) -> Kv<'t, 'c> {
        Kv {
            tx,
            overlay: Mutex::new(Overlay::default()),
        }
    }

    fn overlay(&self) -> std::sync::MutexGuard<'_, Overlay> {
        self.overlay.lock().expect("never poisoned")
    }

    /// Reads the rows of `keys` not read yet, in one statement.
    pub(super) async fn prefetch(
        &self,
        table: Table,
        keys: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<(), StoreError> {
        let mut missing: Vec<Vec<u8>> = {
            let overlay = self.overlay();
            keys.into_iter()
                .filter(|key| !overlay.rows.contains_key(&(table, key.clone())))
                .collect()
        };
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let statement = self.tx.prepare_cached(table.get_many()).await?;
            let rows = self.tx.query(&statement, &[&missing]).await?;
            let mut overlay = self.overlay();
            for key in &missing {
                overlay.rows.insert((table, key.clone()), None);
            }
            for row in rows {
                overlay
                    .rows
                    .insert((table, row.get::<_, Vec<u8>>(0)), Some(row.get(1)));
            }
        }
        Ok(())
    }

    pub(super) async fn get(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(row) = self.overlay().rows.get(&(table, key.to_vec())) {
            return Ok(row.clone());
        }
        self.prefetch(table, [key.to_vec()]).await?;
        Ok(self
            .overlay()
            .rows
            .get(&(table, key.to_vec()))
            .cloned()
            .flatten())
    }

    /// The values of `keys` that exist, as the transaction sees them.
    pub(super) fn cached(&self, table: Table, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let overlay = self.overlay();
        keys.iter()
            .filter_map(|key| overlay.rows.get(&(table, key.clone())).cloned().flatten())
            .collect()
    }

    pub(super) async fn remove(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let old = self.get(table, key).await?;
        let mut overlay = self.overlay();
        overlay.rows.insert((table, key.to_vec()), None);
        overlay.written.insert((table, key.to_vec()), None);
        Ok(old)
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8], source: &str) {
        let mut overlay = self.overlay();
        overlay
            .rows
            .insert((table, key.to_vec()), Some(value.to_vec()));
        overlay.written.insert(
            (table, key.to_vec()),
            Some((value.to_vec(), source.to_string())),
        );
    }

    /// Inserts or replaces an `items` row.
    pub(super) async fn put_item(
        &self,
        key: &[u8],
        source: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.put(Table::Items, key, body, source);
        Ok(())
    }

    /// Inserts or replaces an `ids` row (an item key or a tombstone).
    pub(super) async fn put_id(
        &self,
        identity: &[u8],
        source: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.put(Table::Ids, identity, value, source);
        Ok(())
    }

    /// Inserts or replaces a `links` or `aliases` row.
    pub(super) async fn put_owner(
        &self,
        table: Table,
        key: &[u8],
        owner: &[u8],
    ) -> Result<(), StoreError> {
        self.put(table, key, owner, "");
        Ok(())
    }

    /// Writes what the transaction changed: per table, one statement for the rows
    /// removed and one for those written, all sent at once.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let written = std::mem::take(&mut self.overlay().written);
        let mut removed: HashMap<Table, Vec<Vec<u8>>> = HashMap::new();
        let mut put: HashMap<Table, Rows> = HashMap::new();
        for ((table, key), row) in written {
            match row {
                None => removed.entry(table).or_default().push(key),
                Some((value, source)) => put.entry(table).or_default().push((key, value, source)),
            }
        }
        let removed = |table| removed.get(&table).map_or(&[][..], Vec::as_slice);
        let put = |table| put.get(&table).map_or(&[][..], Vec::as_slice);
        use Table::*;
        tokio::try_join!(
            self.remove_rows(Items, removed(Items)),
            self.remove_rows(Ids, removed(Ids)),
            self.remove_rows(Links, removed(Links)),
            self.remove_rows(Aliases, removed(Aliases)),
            self.put_rows(Items, put(Items)),
            self.put_rows(Ids, put(Ids)),
            self.put_rows(Links, put(Links)),
            self.put_rows(Aliases, put(Aliases)),
        )?;
        Ok(())
    }

    async fn remove_rows(&self, table: Table, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let statement = self.tx.prepare_cached(table.remove_many()).await?;
        self.tx.execute(&statement, &[&keys]).await?;
        Ok(())
    }

    async fn put_rows(
        &self,
        table: Table,
        rows: &[(Vec<u8>, Vec<u8>, String)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let statement = self.tx.prepare_cached(table.put_many()).await?;
        let keys: Vec<&[u8]> = rows.iter().map(|(key, _, _)| key.as_slice()).collect();
        let values: Vec<&[u8]> = rows.iter().map(|(_, value, _)| value.as_slice()).collect();
        match table {
            Table::Items | Table::Ids => {
                let sources: Vec<&str> =
                    rows.iter().map(|(_, _, source)| source.as_str()).collect();
                self.tx
                    .execute(&statement, &[&keys, &sources, &values])
                    .await?
            }
            Table::Links | Table::Aliases => self.tx.execute(&statement, &[&keys, &values]).await?,
        };
        Ok(())
    }
}
