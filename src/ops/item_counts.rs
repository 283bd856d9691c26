//! How many items each source holds, as last counted: application state, kept here
//! rather than read back out of the metrics registry.
//!
//! Counted from the store's index once at start-up and after each retention pass;
//! a poll that stored new items adds them to its source's count (a recount only when
//! the source was not counted yet or a story moved between sources), never per
//! request: `/sources`
//! and the `systemctl status` line read these counts, and `metrics` exports them as
//! `tributary_source_items`.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::item::SourceId;

/// The last counted number of items of each source. Shared by the scheduler and
/// retention (which count) and `http` and the daemon (which read).
#[derive(Debug, Default)]
pub struct ItemCounts {
    counts: RwLock<HashMap<SourceId, u64>>,
}

impl ItemCounts {
    /// `source` now holds `count` items in the store.
    pub fn set(&self, source: &SourceId, count: u64) {
        self.write().insert(source.clone(), count);
    }

    /// `source` gained `added` items: its new count, or `None` when it was not
    /// counted yet (then nothing changes and the caller counts it).
    pub fn add(&self, source: &SourceId, added: u64) -> Option<u64> {
        let mut counts = self.write();
        let count = counts.get_mut(source)?;
        *count += added;
        Some(*count)
    }

    /// Sets every source's count from a count of the whole store (sources absent
    /// from `counts` hold none); with `replace` false, only those not counted yet.
    pub fn set_all(&self, sources: &[SourceId], counts: &HashMap<SourceId, u64>, replace: bool) {
        let mut current = self.write();
        for source in sources {
            if replace || !current.contains_key(source) {
                current.insert(source.clone(), counts.get(source).copied().unwrap_or(0));
            }
        }
    }

    /// The last counted number of items of `source`; `None` before it was counted.
    pub fn get(&self, source: &SourceId) -> Option<u64> {
        self.read().get(source).copied()
    }

    /// The sum of every source's count.
    pub fn total(&self) -> u64 {
        self.read().values().sum()
    }

    /// `source` left the config: its count goes.
    pub fn forget(&self, source: &SourceId) {
        self.write().remove(source);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SourceId, u64>> {
        self.counts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SourceId, u64>> {
        self.counts.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_up_count_keeps_a_fresher_one_unless_told_to_replace_it() {
        let counts = ItemCounts::default();
        let (a, b) = (SourceId("a".into()), SourceId("b".into()));
        assert_eq!(counts.get(&a), None);
        counts.set(&a, 3);
        let whole = HashMap::from([(a.clone(), 1)]);
        counts.set_all(&[a.clone(), b.clone()], &whole, false);
        assert_eq!((counts.get(&a), counts.get(&b)), (Some(3), Some(0)));
        counts.set_all(&[a.clone(), b.clone()], &whole, true);
        assert_eq!(counts.get(&a), Some(1));
        counts.forget(&a);
        assert_eq!(counts.get(&a), None);
        assert_eq!(*counts.read(), HashMap::from([(b, 0)]));
    }

    #[test]
    fn new_items_add_to_a_counted_source_only() {
        let counts = ItemCounts::default();
        let (a, b) = (SourceId("a".into()), SourceId("b".into()));
        counts.set(&a, 50);
        assert_eq!(counts.add(&a, 1), Some(51));
        assert_eq!(counts.add(&a, 2), Some(53));
        assert_eq!(counts.add(&b, 1), None);
        assert_eq!((counts.get(&a), counts.get(&b)), (Some(53), None));
    }
}
