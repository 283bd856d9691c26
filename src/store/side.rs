//! The side tables of the embedded store: one sled tree each (see
//! [`SideTable`](super::SideTable)), opened on use, so a store without one reads as
//! empty. Written durably: a subscriber told it is subscribed must stay so across a
//! crash.

use super::{SideEntries, Sled, StoreError};

impl Sled {
    /// Every entry of the tree `name`, in key order.
    pub fn side_entries(&self, name: &str) -> Result<SideEntries, StoreError> {
        let tree = self.handles()?.db.open_tree(name)?;
        tree.iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// Stores `value` under `key` in the tree `name`, flushed before it returns.
    pub fn put_side_entry(&self, name: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.write(|h| {
            let tree = h.db.open_tree(name)?;
            tree.insert(key, value)?;
            tree.flush()?;
            Ok(())
        })
    }

    /// Removes `key` from the tree `name`, flushed; whether it was there.
    pub fn remove_side_entry(&self, name: &str, key: &[u8]) -> Result<bool, StoreError> {
        self.write(|h| {
            let tree = h.db.open_tree(name)?;
            let removed = tree.remove(key)?.is_some();
            tree.flush()?;
            Ok(removed)
        })
    }
}
