//! Recently read items, kept decoded.
//!
//! Every render reads the newest items again after each poll that changed anything,
//! and decoding (decompressing and unpacking MessagePack) is most of what reading an
//! item costs; sled's own cache holds only the encoded bytes. An entry is keyed by
//! the item's `items` key and remembers a hash of the bytes it was decoded from, so
//! an item rewritten under the same key is decoded afresh and the cache never needs
//! to hear of writes, moves or trims.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use crate::item::StoredItem;

/// Items kept: the default river (100) and a page of another view, about 1.5 MB.
pub const CAPACITY: usize = 256;

struct Entry {
    value_hash: u64,
    item: StoredItem,
}

/// The least recently used entry goes first, when a new one would be one too many.
pub struct DecodedItems {
    entries: Mutex<LruCache<[u8; 16], Entry>>,
}

impl Default for DecodedItems {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).expect("the capacity is not zero");
        DecodedItems {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }
}

impl DecodedItems {
    /// The item stored under `key` as `value`, if it was decoded from these bytes.
    pub fn get(&self, key: &[u8], value: &[u8]) -> Option<StoredItem> {
        let key: [u8; 16] = key.try_into().ok()?;
        let hash = xxhash_rust::xxh3::xxh3_64(value);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // An entry decoded from other bytes is stale: it does not count as used.
        let entry = entries.peek(&key)?;
        if entry.value_hash != hash {
            return None;
        }
        let item = entry.item.clone();
        entries.promote(&key);
        Some(item)
    }

    /// Remembers `item`, decoded from `value` stored under `key`.
    pub fn put(&self, key: &[u8], value: &[u8], item: &StoredItem) {
        let Ok(key) = <[u8; 16]>::try_from(key) else {
            return;
        };
        let value_hash = xxhash_rust::xxh3::xxh3_64(value);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.put(
            key,
            Entry {
                value_hash,
                item: item.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str) -> StoredItem {
        crate::render::fixtures::stored(id, None, 1_700_000_000)
    }

    fn key(n: u32) -> [u8; 16] {
        let mut key = [0; 16];
        key[..4].copy_from_slice(&n.to_be_bytes());
        key
    }

    #[test]
    fn an_entry_answers_only_for_the_bytes_it_was_decoded_from() {
        let cache = DecodedItems::default();
        cache.put(&key(1), b"first", &stored("a"));
        assert_eq!(cache.get(&key(1), b"first"), Some(stored("a")));
        assert_eq!(cache.get(&key(1), b"rewritten"), None);
        assert_eq!(cache.get(&key(2), b"first"), None);
        cache.put(&key(1), b"rewritten", &stored("b"));
        assert_eq!(cache.get(&key(1), b"rewritten"), Some(stored("b")));
    }

    #[test]
    fn it_stays_bounded_and_keeps_what_was_used_last() {
        let cache = DecodedItems::default();
        cache.put(&key(0), b"v", &stored("kept"));
        for n in 1..(CAPACITY as u32 * 4) {
            cache.put(&key(n), b"v", &stored("x"));
            // The river: read again between writes.
            assert!(cache.get(&key(0), b"v").is_some(), "evicted after {n}");
            assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
        }
        assert!(cache.get(&key(1), b"v").is_none());
    }
}
