//! Retention: trimming items by age and count (store-wide and per source), leaving
//! tombstones in `ids` so trimmed items do not come back, and sweeping the secondary
//! keys (`links`, `aliases`) whose owner is gone.

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use std::collections::{HashMap, HashSet};

use super::codec::decode_item;
use super::counts::SourceCounts;
use super::keys::{TOMBSTONE, identity_key, is_tombstone, item_key};
use super::open::Handles;
use super::{Sled, StoreError};
use crate::item::SourceId;

/// Key in sled's default tree: when the orphan sweep last ran (8-byte big-endian
/// microseconds), so daemons restarted more often than it runs still sweep.
const LAST_ORPHAN_SWEEP: &[u8] = b"last_orphan_sweep";
/// Items removed per transaction by `trim`.
const TRIM_BATCH: usize = 256;

/// What a retention pass did: items removed, the sources they came from, and the
/// items of each source as its scan of `ids` found them, less those it removed
/// (sources with none are absent). Polls go on during a pass, so the counts are
/// for a start-up that has none yet; a source that lost items is best recounted.
#[derive(Debug, Default)]
pub struct Trimmed {
    pub removed: usize,
    pub touched: HashSet<SourceId>,
    pub counts: HashMap<SourceId, u64>,
}

impl Sled {
    /// Retention: removes items whose timestamp is before `keep_after`, then the oldest
    /// beyond `max_items`, leaving tombstones of their identities; tombstones older
    /// than `keep_after` are dropped (their items have left their documents by
    /// then). Returns how many items were removed, and how many each source holds
    /// after the pass (counted on the way, so /metrics needs no scan of its own).
    /// Runs in batches, so readers and writers are never held for long.
    pub fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<Trimmed, StoreError> {
        let (trimmed, expired) = self.write(|h| Self::trim_in(h, keep_after, max_items))?;
        if expired {
            self.note_forgotten();
        }
        if trimmed.removed > 0 {
            self.signal_change();
        }
        Ok(trimmed)
    }

    fn trim_in(
        h: &Handles,
        keep_after: DateTime<Utc>,
        max_items: usize,
    ) -> Result<(Trimmed, bool), StoreError> {
        // One pass over the small `ids` values counts the live items of each source
        // and drops expired tombstones; counting `items` itself would read every
        // stored item.
        let cutoff_micros = keep_after.timestamp_micros();
        let mut counting = SourceCounts::default();
        let mut expired = false;
        for entry in h.ids.iter() {
            let (identity, value) = entry?;
            if !is_tombstone(&value) {
                counting.add(&identity);
            } else if value[1..]
                .try_into()
                .map(i64::from_be_bytes)
                .is_ok_and(|trimmed| trimmed < cutoff_micros)
            {
                h.ids.remove(identity)?;
                expired = true;
            }
        }
        let mut counts = counting.finish();
        let live = counts.values().sum::<u64>() as usize;
        let excess = live.saturating_sub(max_items);
        let cutoff = item_key(keep_after, b"");
        let mut doomed = Vec::new();
        let mut touched = HashSet::new();
        for (i, entry) in h.items.iter().enumerate() {
            let (key, value) = entry?;
            if i >= excess && key.as_ref() >= &cutoff[..8] {
                break;
            }
            let record = decode_item(&value)?;
            if let Some(count) = counts.get_mut(&record.origin.source) {
                *count = count.saturating_sub(1);
            }
            let identity = identity_key(&record.origin.source, &record.item.id.0);
            doomed.push((key, sled::IVec::from(identity)));
            touched.insert(record.origin.source);
        }
        Self::bury(h, &doomed)?;
        counts.retain(|_, count| *count > 0);
        let trimmed = Trimmed {
            removed: doomed.len(),
            touched,
            counts,
        };
        Ok((trimmed, expired))
    }

    /// Drops the `links` and `aliases` entries whose owner `ids` no longer knows (its
    /// tombstone expired, a move, a take-over); returns how many. Lookups already
    /// ignore such entries, so this only reclaims space. It reads both trees whole
    /// and looks up every owner: 1.4-2.8 s per million items, which is why it runs
    /// far less often than retention.
    pub fn drop_orphan_keys(&self) -> Result<usize, StoreError> {
        self.write(|h| {
            // Noted first: a sweep cut short by a stop is not retried at every start.
            h.db.insert(
                LAST_ORPHAN_SWEEP,
                &Utc::now().timestamp_micros().to_be_bytes(),
            )?;
            let mut dropped = 0;
            for tree in [&h.links, &h.aliases] {
                for entry in tree.iter() {
                    let (key, owner) = entry?;
                    // A poll's write adds a key before its owner's `ids` entry.
                    let _writer = self.writer();
                    if !h.ids.contains_key(&owner)?
                        && tree
                            .compare_and_swap(key, Some(owner), None::<&[u8]>)?
                            .is_ok()
                    {
                        dropped += 1;
                    }
                }
            }
            Ok(dropped)
        })
    }

    /// When [`Sled::drop_orphan_keys`] last ran on this store; `None` if never.
    pub fn last_orphan_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let value = self.handles()?.db.get(LAST_ORPHAN_SWEEP)?;
        Ok(value
            .and_then(|v| v.as_ref().try_into().ok())
            .and_then(|micros| DateTime::from_timestamp_micros(i64::from_be_bytes(micros))))
    }

    /// Retention for one source (`max_items` of a `[[source]]`): removes its oldest
    /// items beyond `max_items`, leaving tombstones like [`Sled::trim`]. Walks only
    /// the source's entries in `ids`, whose values are the items' time-ordered keys.
    pub fn trim_source(&self, source: &SourceId, max_items: usize) -> Result<usize, StoreError> {
        let removed = self.write(|h| Self::trim_source_in(h, source, max_items))?;
        if removed > 0 {
            self.signal_change();
        }
        Ok(removed)
    }

    fn trim_source_in(
        h: &Handles,
        source: &SourceId,
        max_items: usize,
    ) -> Result<usize, StoreError> {
        let mut live = Vec::new();
        for entry in h.ids.scan_prefix(identity_key(source, "")) {
            let (identity, key) = entry?;
            if !is_tombstone(&key) {
                live.push((key, identity));
            }
        }
        if live.len() <= max_items {
            return Ok(0);
        }
        live.sort();
        live.truncate(live.len() - max_items);
        Self::bury(h, &live)?;
        Ok(live.len())
    }

    /// Removes items (`items` key, `ids` key) and leaves tombstones of their
    /// identities, in batches, so readers and writers are never held for long.
    fn bury(h: &Handles, doomed: &[(sled::IVec, sled::IVec)]) -> Result<(), StoreError> {
        let mut tombstone = Vec::with_capacity(9);
        tombstone.push(TOMBSTONE);
        tombstone.extend_from_slice(&Utc::now().timestamp_micros().to_be_bytes());
        for chunk in doomed.chunks(TRIM_BATCH) {
            (&h.items, &h.ids).transaction(|(items, ids)| {
                for (key, identity) in chunk {
                    // Only if the identity still points there: a poll may have moved
                    // the item since it was picked.
                    if ids.get(identity)?.as_ref() == Some(key) {
                        items.remove(key)?;
                        ids.insert(identity, tombstone.as_slice())?;
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
        }
        Ok(())
    }
}
