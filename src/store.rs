//! The only module that knows sled: its trees, key bytes and value encoding.
//!
//! Trees:
//! - `items`: key = 8-byte big-endian timestamp ++ 8-byte hash of (source, item id);
//!   value = a [`StoredItem`] in MessagePack, zstd-compressed (item HTML shrinks about
//!   3x, and sled keeps freshly written pages in memory, so this is RSS as well as
//!   disk). Byte order is time order, so the newest N items are a reverse scan of N
//!   keys however many are stored.
//! - `ids`: source ++ 0 ++ item id -> its key in `items` (16 bytes), for
//!   de-duplication and moves; or, once retention trimmed the item, a tombstone
//!   (`TOMBSTONE` ++ 8-byte trim time), so an old item still in its source's document
//!   does not come back as new.
//! - `sources`: source id -> [`SourceState`].
//!
//! Writers: the scheduler (`record_fetch`, `put_source_state`). Readers: `publish`
//! (`latest`, `latest_where`, `source_state`, `subscribe`) and `app` (`flush`).

use chrono::{DateTime, Duration, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tokio::sync::watch;

use crate::item::{Item, Origin, SourceId, SourceState, StoredItem};

/// 10 minutes: a date further in the future than this is a publisher's mistake (or a
/// trick to stay on top) and is replaced by the time the item was first seen.
pub const FUTURE_SKEW: Duration = Duration::minutes(10);
/// 64 MiB of sled page cache: sled's 1 GiB default costs ~700 MB of RSS.
const CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

/// A store operation that failed. The cause is the error's source, so `{:#}` prints
/// it once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another process (is tributary already running?)")]
    Locked { path: std::path::PathBuf },
    #[error("store I/O failed")]
    Sled(#[from] sled::Error),
    #[error("cannot encode a store record")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("a store record is unreadable")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("a store record cannot be (de)compressed")]
    Compression(#[from] std::io::Error),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(err: TransactionError<StoreError>) -> Self {
        match err {
            TransactionError::Abort(err) => err,
            TransactionError::Storage(err) => StoreError::Sled(err),
        }
    }
}

/// What one `record_fetch` changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// The embedded item store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    items: Tree,
    ids: Tree,
    sources: Tree,
    changes: watch::Sender<u64>,
}

impl Store {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::from_config(sled::Config::new().path(path)).map_err(|err| match err {
            // sled reports a held lock only in the message of an `Other` I/O error.
            StoreError::Sled(sled::Error::Io(io))
                if io.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: path.to_owned(),
                }
            }
            other => other,
        })
    }

    /// A store that lives in memory and a temporary file, for tests and `inspect`.
    pub fn temporary() -> Result<Store, StoreError> {
        Self::from_config(sled::Config::new().temporary(true))
    }

    fn from_config(config: sled::Config) -> Result<Store, StoreError> {
        let db = config.cache_capacity(CACHE_CAPACITY).open()?;
        Ok(Store {
            items: db.open_tree("items")?,
            ids: db.open_tree("ids")?,
            sources: db.open_tree("sources")?,
            db,
            changes: watch::Sender::new(0),
        })
    }

    /// A receiver whose value changes whenever stored items change, for re-rendering.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Stores the items of one successful fetch and the source's new state in one
    /// transaction: either both are stored or neither is, so the validators that make
    /// the next poll a 304 are never saved for items that were lost.
    ///
    /// An item seen before keeps its first-seen time; it is rewritten only when it
    /// changed, and moves when its date changed.
    pub fn record_fetch(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError> {
        let state_bytes = rmp_serde::to_vec_named(state)?;
        let mut seen = HashSet::new();
        let items: Vec<&Item> = items.iter().filter(|i| seen.insert(&i.id)).collect();
        let report = (&self.items, &self.ids, &self.sources).transaction(
            |(items_tree, ids_tree, sources_tree)| {
                let mut report = UpsertReport::default();
                for item in &items {
                    let identity = identity_key(&origin.source, &item.id.0);
                    let old_key = ids_tree.get(&identity)?;
                    if old_key.as_ref().is_some_and(|key| is_tombstone(key)) {
                        report.unchanged += 1;
                        continue;
                    }
                    let old = match &old_key {
                        Some(key) => items_tree.get(key)?,
                        None => None,
                    };
                    let old_record: Option<StoredItem> = match &old {
                        Some(bytes) => Some(decode_item(bytes).map_err(abort)?),
                        None => None,
                    };
                    let first_seen = old_record.as_ref().map_or(now, |r| r.first_seen);
                    let record = StoredItem {
                        origin: origin.clone(),
                        item: (*item).clone(),
                        first_seen,
                        timestamp: timestamp_for(item, first_seen),
                    };
                    if old_record.as_ref() == Some(&record) {
                        report.unchanged += 1;
                        continue;
                    }
                    let key = item_key(record.timestamp, &identity);
                    let bytes = encode_item(&record).map_err(abort)?;
                    if let Some(old_key) = old_key
                        && old_key.as_ref() != key.as_slice()
                    {
                        items_tree.remove(old_key)?;
                    }
                    items_tree.insert(key.as_slice(), bytes)?;
                    ids_tree.insert(identity, key.as_slice())?;
                    if old_record.is_some() {
                        report.updated += 1;
                    } else {
                        report.added += 1;
                    }
                }
                sources_tree.insert(origin.source.0.as_bytes(), state_bytes.as_slice())?;
                Ok(report)
            },
        )?;
        if report.added + report.updated > 0 {
            self.changes.send_modify(|generation| *generation += 1);
        }
        Ok(report)
    }

    /// The newest `n` items of all sources, newest first.
    pub fn latest(&self, n: usize) -> Result<Vec<StoredItem>, StoreError> {
        let mut latest = Vec::with_capacity(n.min(1024));
        for entry in self.items.iter().rev().take(n) {
            let (_, value) = entry?;
            latest.push(decode_item(&value)?);
        }
        Ok(latest)
    }

    /// Up to `n` of the newest items for which `keep` is true, newest first, looking at
    /// no more than `max_scan` items: a view of a quiet source or tag costs a bounded
    /// scan, however many items are stored.
    pub fn latest_where(
        &self,
        n: usize,
        max_scan: usize,
        mut keep: impl FnMut(&StoredItem) -> bool,
    ) -> Result<Vec<StoredItem>, StoreError> {
        let mut latest = Vec::with_capacity(n.min(1024));
        for entry in self.items.iter().rev().take(max_scan) {
            let (_, value) = entry?;
            let item = decode_item(&value)?;
            if keep(&item) {
                latest.push(item);
                if latest.len() == n {
                    break;
                }
            }
        }
        Ok(latest)
    }

    /// The remembered state of a source; the default when it was never polled.
    pub fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        match self.sources.get(source.0.as_bytes())? {
            Some(bytes) => Ok(rmp_serde::from_slice(&bytes)?),
            None => Ok(SourceState::default()),
        }
    }

    /// Saves a source's state after a poll that stored no items (304, error).
    pub fn put_source_state(
        &self,
        source: &SourceId,
        state: &SourceState,
    ) -> Result<(), StoreError> {
        self.sources
            .insert(source.0.as_bytes(), rmp_serde::to_vec_named(state)?)?;
        Ok(())
    }

    /// Writes everything to disk. Called at shutdown; sled also flushes on its own
    /// every half second.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Retention: removes items whose timestamp is before `keep_after`, then the oldest
    /// beyond `max_items`, leaving tombstones of their identities; tombstones older
    /// than `keep_after` are dropped (their items have left their documents by
    /// then). Returns how many items were removed. Runs in batches, so readers and
    /// writers are never held for long.
    pub fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<usize, StoreError> {
        let excess = self.items.len().saturating_sub(max_items);
        let cutoff = item_key(keep_after, b"");
        let mut doomed = Vec::new();
        for (i, entry) in self.items.iter().enumerate() {
            let (key, value) = entry?;
            if i >= excess && key.as_ref() >= &cutoff[..8] {
                break;
            }
            let record = decode_item(&value)?;
            doomed.push((key, identity_key(&record.origin.source, &record.item.id.0)));
        }
        let mut tombstone = Vec::with_capacity(9);
        tombstone.push(TOMBSTONE);
        tombstone.extend_from_slice(&Utc::now().timestamp_micros().to_be_bytes());
        for chunk in doomed.chunks(TRIM_BATCH) {
            (&self.items, &self.ids).transaction(|(items, ids)| {
                for (key, identity) in chunk {
                    items.remove(key)?;
                    ids.insert(identity.as_slice(), tombstone.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
        }
        let cutoff_micros = keep_after.timestamp_micros();
        for entry in self.ids.iter() {
            let (identity, value) = entry?;
            if is_tombstone(&value)
                && value[1..]
                    .try_into()
                    .map(i64::from_be_bytes)
                    .is_ok_and(|trimmed| trimmed < cutoff_micros)
            {
                self.ids.remove(identity)?;
            }
        }
        if !doomed.is_empty() {
            self.changes.send_modify(|generation| *generation += 1);
        }
        Ok(doomed.len())
    }

    /// How many items each source holds: one pass over the `ids` index, whose keys
    /// start with the source and come sorted, so no item is read or decoded and no key
    /// is copied. Sources with no items are absent.
    pub fn item_counts(&self) -> Result<HashMap<SourceId, u64>, StoreError> {
        let mut counts = HashMap::new();
        let mut current: Option<(sled::IVec, u64)> = None;
        for entry in self.ids.iter() {
            let (identity, value) = entry?;
            if is_tombstone(&value) {
                continue;
            }
            let source = identity.split(|&b| b == 0).next().unwrap_or_default();
            match &mut current {
                Some((name, count)) if name.as_ref() == source => *count += 1,
                _ => {
                    if let Some((name, count)) = current.take() {
                        counts.insert(source_id(&name), count);
                    }
                    current = Some((sled::IVec::from(source), 1));
                }
            }
        }
        if let Some((name, count)) = current {
            counts.insert(source_id(&name), count);
        }
        Ok(counts)
    }

    /// How many items `source` holds: a prefix scan of its part of the `ids` index.
    pub fn count_items(&self, source: &SourceId) -> Result<u64, StoreError> {
        let mut prefix = Vec::with_capacity(source.0.len() + 1);
        prefix.extend_from_slice(source.0.as_bytes());
        prefix.push(0);
        let mut count = 0;
        for entry in self.ids.scan_prefix(prefix) {
            let (_, value) = entry?;
            if !is_tombstone(&value) {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The store's size on disk, in bytes (sled sums its files' lengths).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Whether the database still answers reads; for `/healthz`.
    pub fn is_healthy(&self) -> bool {
        self.items.first().is_ok()
    }
}

/// An item's place in time: the date it claims (published, else updated), unless it
/// has none or claims a time more than [`FUTURE_SKEW`] after it was first seen; then
/// the time it was first seen. Decided against `first_seen`, not the clock, so the
/// answer is the same on every later poll and the item never hops.
pub fn timestamp_for(item: &Item, first_seen: DateTime<Utc>) -> DateTime<Utc> {
    match item.claimed_date() {
        Some(date) if date <= first_seen + FUTURE_SKEW => date,
        _ => first_seen,
    }
}

/// First byte of a tombstone in `ids` (a live entry is a 16-byte key, whose first
/// byte is 0x80 or more for any date after 1970, or below for earlier ones; the
/// length tells them apart).
const TOMBSTONE: u8 = b'T';
/// Items removed per transaction by `trim`.
const TRIM_BATCH: usize = 256;

fn source_id(bytes: &[u8]) -> SourceId {
    SourceId(String::from_utf8_lossy(bytes).into_owned())
}

fn is_tombstone(value: &[u8]) -> bool {
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
fn identity_key(source: &SourceId, item: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.0.len() + 1 + item.len());
    key.extend_from_slice(source.0.as_bytes());
    key.push(0);
    key.extend_from_slice(item.as_bytes());
    key
}

/// zstd level 1: most of the ratio of higher levels at several hundred MB/s.
const ZSTD_LEVEL: i32 = 1;

fn encode_item(item: &StoredItem) -> Result<Vec<u8>, StoreError> {
    let packed = rmp_serde::to_vec_named(item)?;
    Ok(zstd::bulk::compress(&packed, ZSTD_LEVEL)?)
}

fn decode_item(bytes: &[u8]) -> Result<StoredItem, StoreError> {
    let packed = zstd::stream::decode_all(bytes)?;
    Ok(rmp_serde::from_slice(&packed)?)
}

fn abort<E: Into<StoreError>>(err: E) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(err.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemId;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn item(id: &str, published: Option<i64>) -> Item {
        Item {
            id: ItemId(id.into()),
            title: Some(format!("title {id}")),
            link: None,
            published: published.map(at),
            updated: None,
            summary: None,
            content: None,
            authors: vec![],
            categories: vec![],
            enclosures: vec![],
        }
    }

    fn origin(name: &str) -> Origin {
        Origin {
            source: SourceId(format!("http://{name}.example/rss")),
            name: name.into(),
            url: format!("http://{name}.example/rss"),
            tags: vec![],
        }
    }

    fn ids(items: &[StoredItem]) -> Vec<&str> {
        items.iter().map(|i| i.item.id.0.as_str()).collect()
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

    #[test]
    fn timestamp_prefers_the_claimed_date_and_clamps_the_future() {
        let first_seen = at(1_000_000);
        assert_eq!(timestamp_for(&item("a", Some(500)), first_seen), at(500));
        assert_eq!(timestamp_for(&item("a", None), first_seen), first_seen);
        let near = 1_000_000 + 60;
        assert_eq!(timestamp_for(&item("a", Some(near)), first_seen), at(near));
        let far = 1_000_000 + 3600;
        assert_eq!(timestamp_for(&item("a", Some(far)), first_seen), first_seen);
    }

    #[test]
    fn upsert_dedups_updates_and_moves() {
        let store = Store::temporary().unwrap();
        let a = origin("a");
        let state = SourceState::default();
        let first = vec![item("1", Some(100)), item("2", Some(300)), item("3", None)];
        let report = store.record_fetch(&a, &first, &state, at(1000)).unwrap();
        assert_eq!(report.added, 3);
        assert_eq!(ids(&store.latest(10).unwrap()), ["3", "2", "1"]);

        // Same items again: nothing changes; the undated one keeps its first-seen time.
        let report = store.record_fetch(&a, &first, &state, at(2000)).unwrap();
        assert_eq!(
            report,
            UpsertReport {
                added: 0,
                updated: 0,
                unchanged: 3
            }
        );
        assert_eq!(store.latest(1).unwrap()[0].timestamp, at(1000));

        // Item 1 changes its date: it moves, and is still stored once.
        let mut moved = item("1", Some(1500));
        moved.title = Some("corrected".into());
        let report = store.record_fetch(&a, &[moved], &state, at(3000)).unwrap();
        assert_eq!(report.updated, 1);
        let latest = store.latest(10).unwrap();
        assert_eq!(ids(&latest), ["1", "3", "2"]);
        assert_eq!(latest[0].item.title.as_deref(), Some("corrected"));

        // The same id in another source is another item.
        store
            .record_fetch(&origin("b"), &[item("1", Some(200))], &state, at(3000))
            .unwrap();
        assert_eq!(store.latest(10).unwrap().len(), 4);
        assert_eq!(store.latest(2).unwrap().len(), 2);
    }

    #[test]
    fn item_counts_per_source_skip_trimmed_items() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let a = origin("a");
        // A source whose URL extends another's must not be counted with it.
        let mut a2 = origin("a");
        a2.source = SourceId(format!("{}2", a.source.0));
        let items: Vec<Item> = (0..4)
            .map(|i| item(&format!("a{i}"), Some(100 + i)))
            .collect();
        store.record_fetch(&a, &items, &state, at(1000)).unwrap();
        store
            .record_fetch(&a2, &[item("x", Some(50))], &state, at(1000))
            .unwrap();
        store
            .record_fetch(&origin("b"), &[item("b", Some(300))], &state, at(1000))
            .unwrap();
        let counts = store.item_counts().unwrap();
        assert_eq!(counts.len(), 3);
        assert_eq!(counts[&a.source], 4);
        assert_eq!(counts[&a2.source], 1);
        assert_eq!(store.count_items(&a.source).unwrap(), 4);
        assert_eq!(store.count_items(&a2.source).unwrap(), 1);
        // Trimmed items leave tombstones, which are not items.
        assert_eq!(store.trim(at(102), 100).unwrap(), 3);
        assert_eq!(store.count_items(&a.source).unwrap(), 2);
        assert_eq!(store.item_counts().unwrap()[&a.source], 2);
        assert!(!store.item_counts().unwrap().contains_key(&a2.source));
        assert!(store.size_on_disk().unwrap() > 0);
    }

    #[test]
    fn retention_trims_by_age_and_count_and_trimmed_items_stay_away() {
        let store = Store::temporary().unwrap();
        let a = origin("a");
        let state = SourceState::default();
        let items: Vec<_> = (1..=10)
            .map(|i| item(&i.to_string(), Some(i * 100)))
            .collect();
        store.record_fetch(&a, &items, &state, at(5000)).unwrap();
        // Older than 350 s: items 1-3 go.
        assert_eq!(store.trim(at(350), 100).unwrap(), 3);
        assert_eq!(
            ids(&store.latest(100).unwrap()),
            ["10", "9", "8", "7", "6", "5", "4"]
        );
        // At most 5 items: the two oldest go.
        assert_eq!(store.trim(at(0), 5).unwrap(), 2);
        assert_eq!(ids(&store.latest(100).unwrap()), ["10", "9", "8", "7", "6"]);
        // The same document again: trimmed items do not come back.
        let report = store.record_fetch(&a, &items, &state, at(6000)).unwrap();
        assert_eq!(report.added, 0);
        assert_eq!(store.latest(100).unwrap().len(), 5);
        // Tombstones older than the cut-off are dropped (by then their items have
        // left their documents); an item seen after that is stored again.
        let future = Utc::now() + Duration::days(1);
        assert_eq!(store.trim(future, 100).unwrap(), 5);
        let report = store
            .record_fetch(&a, &items[..1], &state, at(7000))
            .unwrap();
        assert_eq!(report.added, 1);
    }

    #[test]
    fn state_is_saved_with_the_items() {
        let store = Store::temporary().unwrap();
        let a = origin("a");
        assert_eq!(
            store.source_state(&a.source).unwrap(),
            SourceState::default()
        );
        let state = SourceState {
            etag: Some("\"v1\"".into()),
            ..SourceState::default()
        };
        store
            .record_fetch(&a, &[item("1", Some(1))], &state, at(10))
            .unwrap();
        assert_eq!(store.source_state(&a.source).unwrap(), state);
    }

    #[test]
    fn changes_are_signalled_only_when_items_change() {
        let store = Store::temporary().unwrap();
        let mut changes = store.subscribe();
        let a = origin("a");
        let state = SourceState::default();
        store
            .record_fetch(&a, &[item("1", Some(1))], &state, at(10))
            .unwrap();
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        store
            .record_fetch(&a, &[item("1", Some(1))], &state, at(20))
            .unwrap();
        assert!(!changes.has_changed().unwrap());
    }
}
