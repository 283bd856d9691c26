//! How many items each source holds, counted from the `ids` index (no item is read).

use std::collections::HashMap;

use super::keys::is_tombstone;
use super::{Sled, StoreError};
use crate::item::SourceId;

impl Sled {
    /// How many items each source holds: one pass over the `ids` index, whose keys
    /// start with the source and come sorted, so no item is read or decoded and no key
    /// is copied. Sources with no items are absent.
    pub fn item_counts(&self) -> Result<HashMap<SourceId, u64>, StoreError> {
        let mut counting = SourceCounts::default();
        for entry in self.handles()?.ids.iter() {
            let (identity, value) = entry?;
            if !is_tombstone(&value) {
                counting.add(&identity);
            }
        }
        Ok(counting.finish())
    }

    /// How many items `source` holds: a prefix scan of its part of the `ids` index.
    pub fn count_items(&self, source: &SourceId) -> Result<u64, StoreError> {
        let mut prefix = Vec::with_capacity(source.0.len() + 1);
        prefix.extend_from_slice(source.0.as_bytes());
        prefix.push(0);
        let mut count = 0;
        for entry in self.handles()?.ids.scan_prefix(prefix) {
            let (_, value) = entry?;
            if !is_tombstone(&value) {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// Counts `ids` keys per source during a scan in key order, where each source's keys
/// are contiguous: one map entry per source, not a lookup per key.
#[derive(Default)]
pub(super) struct SourceCounts {
    counts: HashMap<SourceId, u64>,
    current: Option<(sled::IVec, u64)>,
}

impl SourceCounts {
    pub(super) fn add(&mut self, identity: &[u8]) {
        let source = identity.split(|&b| b == 0).next().unwrap_or_default();
        match &mut self.current {
            Some((name, count)) if name.as_ref() == source => *count += 1,
            _ => {
                if let Some((name, count)) = self.current.take() {
                    self.counts.insert(source_id(&name), count);
                }
                self.current = Some((sled::IVec::from(source), 1));
            }
        }
    }

    pub(super) fn finish(mut self) -> HashMap<SourceId, u64> {
        if let Some((name, count)) = self.current.take() {
            self.counts.insert(source_id(&name), count);
        }
        self.counts
    }
}

fn source_id(bytes: &[u8]) -> SourceId {
    SourceId(String::from_utf8_lossy(bytes).into_owned())
}
