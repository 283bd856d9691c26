//! The bytes of the store's keys: `items` keys (time order), `ids` keys (source and
//! item id) and the tombstones retention leaves in `ids`.

use chrono::{DateTime, Utc};

use crate::item::SourceId;

/// First byte of a tombstone in `ids` (a live entry is a 16-byte key, whose first
/// byte is 0x80 or more for any date after 1970, or below for earlier ones; the
/// length tells them apart).
pub(super) const TOMBSTONE: u8 = b'T';

/// The timestamp (microseconds) an `items` key starts with.
pub(super) fn key_micros(key: &[u8]) -> i64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&key[..8]);
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

pub(super) fn is_tombstone(value: &[u8]) -> bool {
    value.len() == 9 && value[0] == TOMBSTONE
}

/// `items` key: the timestamp in microseconds, sign bit flipped so that dates before
/// 1970 still sort first, big-endian; then a hash of the item's identity so items
/// with the same timestamp never collide.
pub fn item_key(timestamp: DateTime<Utc>, identity: &[u8]) -> [u8; 16] {
    let micros = timestamp.timestamp_micros() as u64 ^ (1 << 63);
    let mut key = [0; 16];
    key[..8].copy_from_slice(&micros.to_be_bytes());
    key[8..].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(identity).to_be_bytes());
    key
}

/// `ids` key: source id, a 0 byte, item id. Neither contains a 0 byte in practice,
/// and a clash would only merge two items of the same source.
pub(super) fn identity_key(source: &SourceId, item: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.0.len() + 1 + item.len());
    key.extend_from_slice(source.0.as_bytes());
    key.push(0);
    key.extend_from_slice(item.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn keys_sort_in_time_order_including_before_1970() {
        let times = [at(-86_400 * 365), at(-1), at(0), at(1), at(1_700_000_000)];
        let keys: Vec<_> = times.iter().map(|t| item_key(*t, b"x")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_ne!(item_key(at(5), b"a"), item_key(at(5), b"b"));
    }
}
