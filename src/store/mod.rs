//! The only module that knows sled: its trees, key bytes and value encoding.
//!
//! Trees:
//! - `items`: key = 8-byte big-endian timestamp ++ 8-byte hash of (source, item id);
//!   value = a [`StoredItem`] in MessagePack, LZ4-compressed (see `LZ4_TAG`; item
//!   HTML shrinks about 1.7x, and sled keeps freshly written pages in memory, so this
//!   is RSS as well as disk). Byte order is time order, so the newest N items are a reverse scan of N
//!   keys however many are stored.
//! - `ids`: source ++ 0 ++ item id -> its key in `items` (16 bytes), for
//!   de-duplication and moves; or, once retention trimmed the item, a tombstone
//!   (`TOMBSTONE` ++ 8-byte trim time), so an old item still in its source's document
//!   does not come back as new.
//! - `links`: canonical link -> the `ids` key of the item that holds the story, so a
//!   story reached through two sources is stored once.
//! - `aliases`: source ++ 0 ++ item id without scheme and host -> the `ids` key, so a
//!   publisher moving its ids to https or another host does not repeat its stories.
//! - `sources`: source id -> [`SourceState`].
//!
//! An insert or a move changes `items`, `ids`, `links` and `aliases` in one
//! transaction. `links` and `aliases` entries may outlive their item (a move, a
//! take-over); a lookup checks that `ids` still knows the owner, and
//! [`Store::drop_orphan_keys`] drops the ones that point nowhere.
//!
//! Writers: the scheduler (`record_fetch`, `put_source_state`). Readers: `publish`
//! (`latest`, `latest_where`, `source_state`, `subscribe`) and `app` (`flush`).
//!
//! A failed write (disk full, an I/O error) poisons a sled database: every later write
//! fails with the same error, while reads go on working. So the store remembers the
//! failure, and the next write (at most every [`REOPEN_EVERY`]) closes and reopens
//! the database, which writes again once the disk has room; meanwhile readers keep
//! serving what is stored.

use chrono::{DateTime, Duration, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::item::{Item, Origin, SourceId, SourceState, StoredItem};

mod decoded;
use decoded::DecodedItems;

/// 10 minutes: a date further in the future than this is a publisher's mistake (or a
/// trick to stay on top) and is replaced by the time the item was first seen.
pub const FUTURE_SKEW: Duration = Duration::minutes(10);
/// 2 MiB of sled page cache unless `[store] cache_mb` says otherwise. sled counts a
/// page at its size on disk, while in memory it costs several times that: serving a
/// store of a million items, the daemon settled at 113-120 MB of RSS with 2 MiB and
/// 129-186 MB with 8 MiB (sled's own default, 1 GiB, costs ~700 MB). A 1000-source
/// cold poll takes the same time with 1 or 8 MiB, and the reads that matter (the
/// newest items, about 250 KB for 100) stay hot.
pub const DEFAULT_CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// 5 seconds between attempts to reopen a store whose writes failed: a full disk
/// costs one reopen per attempt, not one per source polled.
pub const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// 5 seconds for reads in progress to finish before a reopen; they take milliseconds.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A store operation that failed. The cause is the error's source, so `{:#}` prints
/// it once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another process (is tributary already running?)")]
    Locked { path: std::path::PathBuf },
    #[error(
        "the store failed a write and is being reopened (next attempt within {REOPEN_EVERY:?})"
    )]
    Reopening,
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
    /// Items not stored because their story is already stored: by another source that
    /// had it first, or earlier in the same document.
    pub duplicates: usize,
    /// Items that took a story over from another source's later copy.
    pub taken_over: usize,
    /// Stored items found again under a new id (the publisher changed its ids).
    pub reidentified: usize,
}

/// An item with the keys it is known by.
struct Keyed<'a> {
    item: &'a Item,
    /// `ids` key.
    identity: Vec<u8>,
    /// `links` key: the canonical link.
    link: Option<String>,
    /// `aliases` key: source ++ 0 ++ the id without scheme and host.
    alias: Option<Vec<u8>>,
}

/// Any key of a story, for finding it twice in one document.
#[derive(Hash, PartialEq, Eq)]
enum Key {
    Id(Vec<u8>),
    Link(String),
    Alias(Vec<u8>),
}

/// The embedded item store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// What the clones of a [`Store`] share.
struct Shared {
    /// The open database; `None` only after a reopen failed (until the next one).
    handles: RwLock<Option<Arc<Handles>>>,
    /// How to open the database again; `None` for a temporary store, which has
    /// nothing on disk to go back to.
    config: Option<sled::Config>,
    /// A write failed with an I/O error: sled fails every later write until reopened.
    broken: AtomicBool,
    /// When the last reopen was tried.
    last_reopen: Mutex<Option<Instant>>,
    /// The items renders read again and again, decoded.
    decoded: DecodedItems,
    changes: watch::Sender<u64>,
}

/// One open sled database and its trees.
struct Handles {
    db: sled::Db,
    items: Tree,
    ids: Tree,
    links: Tree,
    aliases: Tree,
    sources: Tree,
}

impl Handles {
    fn open(config: &sled::Config) -> Result<Handles, StoreError> {
        let db = config.open()?;
        Ok(Handles {
            items: db.open_tree("items")?,
            ids: db.open_tree("ids")?,
            links: db.open_tree("links")?,
            aliases: db.open_tree("aliases")?,
            sources: db.open_tree("sources")?,
            db,
        })
    }
}

impl Store {
    /// Opens (or creates) the store in directory `path`, with the default cache.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store in directory `path` with a page cache of
    /// `cache_bytes` (sled's cache is a target, not a hard bound on memory).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        Self::from_config(config, true).map_err(|err| match err {
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
        Self::from_config(
            sled::Config::new()
                .temporary(true)
                .cache_capacity(DEFAULT_CACHE_BYTES),
            false,
        )
    }

    fn from_config(config: sled::Config, reopenable: bool) -> Result<Store, StoreError> {
        let handles = Handles::open(&config)?;
        Ok(Store {
            shared: Arc::new(Shared {
                handles: RwLock::new(Some(Arc::new(handles))),
                config: reopenable.then_some(config),
                broken: AtomicBool::new(false),
                last_reopen: Mutex::new(None),
                decoded: DecodedItems::default(),
                changes: watch::Sender::new(0),
            }),
        })
    }

    /// The open database, for one operation.
    fn handles(&self) -> Result<Arc<Handles>, StoreError> {
        self.shared
            .handles
            .read()
            .expect("the store's handles are never poisoned")
            .clone()
            .ok_or(StoreError::Reopening)
    }

    /// Runs one write: first reopens the database if an earlier write broke it, then
    /// remembers whether this one broke it.
    fn write<T>(
        &self,
        op: impl FnOnce(&Handles) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.shared.broken.load(Ordering::Acquire) {
            self.reopen()?;
        }
        let handles = self.handles()?;
        let result = op(&handles);
        drop(handles);
        self.note(result)
    }

    /// Remembers a write that failed with an I/O error: sled fails every later write.
    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Sled(sled::Error::Io(err))) = &result
            && self.shared.config.is_some()
            && !self.shared.broken.swap(true, Ordering::AcqRel)
        {
            warn!(error = %err, "a store write failed; the store is reopened on a later write");
        }
        result
    }

    /// Closes and reopens a database whose writes failed, at most every
    /// [`REOPEN_EVERY`]. Reads wait while it happens; a reopen that fails leaves the
    /// store without a database until the next attempt.
    fn reopen(&self) -> Result<(), StoreError> {
        let Some(config) = &self.shared.config else {
            return Ok(());
        };
        {
            let mut last = self
                .shared
                .last_reopen
                .lock()
                .expect("the reopen time is never poisoned");
            if last.is_some_and(|at| at.elapsed() < REOPEN_EVERY) {
                return Err(StoreError::Reopening);
            }
            *last = Some(Instant::now());
        }
        let mut slot = self
            .shared
            .handles
            .write()
            .expect("the store's handles are never poisoned");
        if !self.shared.broken.load(Ordering::Acquire) {
            // Another writer reopened it meanwhile.
            return Ok(());
        }
        if let Some(old) = slot.take() {
            // sled locks its files: the old database must be closed before the new one
            // opens, so operations still holding it are waited for (briefly).
            let deadline = Instant::now() + REOPEN_WAIT;
            while Arc::strong_count(&old) > 1 {
                if Instant::now() > deadline {
                    *slot = Some(old);
                    return Err(StoreError::Reopening);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(old);
        }
        let handles = Handles::open(config)?;
        *slot = Some(Arc::new(handles));
        self.shared.broken.store(false, Ordering::Release);
        drop(slot);
        info!("reopened the store after a failed write");
        // Writes that had not reached the disk are gone: what is served is re-read.
        self.signal_change();
        Ok(())
    }

    /// Tells the subscribers that what the store holds changed.
    fn signal_change(&self) {
        self.shared
            .changes
            .send_modify(|generation| *generation += 1);
    }

    /// A receiver whose value changes whenever stored items change, for re-rendering.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Stores the items of one successful fetch and the source's new state in one
    /// transaction: either both are stored or neither is, so the validators that make
    /// the next poll a 304 are never saved for items that were lost.
    ///
    /// An item seen before keeps its first-seen time; it is rewritten only when it
    /// changed, and moves when its date changed. A new id is first checked against
    /// the story's other keys, so a story is stored once:
    /// - the same id without scheme and host, or the same canonical link, in the same
    ///   source: the publisher changed its ids (http→https, a slug edit); the stored
    ///   item takes the new id instead of a second copy appearing;
    /// - the same canonical link in another source: the story is kept once, by the
    ///   source whose copy is older (the one that published it first).
    pub fn record_fetch(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError> {
        let state_bytes = rmp_serde::to_vec_named(state)?;
        let source_prefix = identity_key(&origin.source, "");
        let mut seen = HashSet::new();
        let mut in_document = 0;
        let items: Vec<Keyed> = items
            .iter()
            .filter_map(|item| {
                let keyed = Keyed {
                    identity: identity_key(&origin.source, &item.id.0),
                    link: item.canonical_link(),
                    alias: item
                        .id_without_host()
                        .map(|alias| identity_key(&origin.source, &alias)),
                    item,
                };
                // One document naming a story twice (two ids for one link, an http
                // and an https id) keeps its first occurrence.
                let keys = [
                    Some(Key::Id(keyed.identity.clone())),
                    keyed.link.clone().map(Key::Link),
                    keyed.alias.clone().map(Key::Alias),
                ];
                let fresh = keys.iter().flatten().all(|key| !seen.contains(key));
                seen.extend(keys.into_iter().flatten());
                if !fresh {
                    in_document += 1;
                }
                fresh.then_some(keyed)
            })
            .collect();
        let report = self.write(|h| {
            let trees = (&h.items, &h.ids, &h.links, &h.aliases, &h.sources);
            Ok(trees.transaction(
                |(items_tree, ids_tree, links_tree, aliases_tree, sources_tree)| {
                    let mut report = UpsertReport {
                        duplicates: in_document,
                        ..UpsertReport::default()
                    };
                    for keyed in &items {
                        let Keyed {
                            identity,
                            link,
                            alias,
                            item,
                        } = keyed;
                        let mut old_key = ids_tree.get(identity)?;
                        let mut previous_identity = None;
                        if old_key.is_none() {
                            // A new id. Is it a story already stored under another id?
                            if let Some(alias) = alias
                                && let Some(owner) = aliases_tree.get(alias)?
                                && owner.as_ref() != identity.as_slice()
                                && ids_tree.get(&owner)?.is_some()
                            {
                                previous_identity = Some(owner);
                            }
                            if previous_identity.is_none()
                                && let Some(link) = link
                                && let Some(owner) = links_tree.get(link.as_bytes())?
                                && owner.as_ref() != identity.as_slice()
                                && let Some(owner_key) = ids_tree.get(&owner)?
                            {
                                if owner.starts_with(&source_prefix) {
                                    previous_identity = Some(owner);
                                } else if is_tombstone(&owner_key)
                                    || key_micros(&owner_key)
                                        <= timestamp_for(item, now).timestamp_micros()
                                {
                                    // Another source has (or had) the story, from no later:
                                    // it keeps it.
                                    report.duplicates += 1;
                                    continue;
                                } else {
                                    // This source published it first: it takes the story over.
                                    items_tree.remove(owner_key)?;
                                    ids_tree.remove(owner)?;
                                    report.taken_over += 1;
                                }
                            }
                            if let Some(previous) = &previous_identity {
                                report.reidentified += 1;
                                old_key = ids_tree.remove(previous)?;
                            }
                        }
                        if let Some(tombstone) = &old_key
                            && is_tombstone(tombstone)
                        {
                            // Trimmed by retention: it stays away, under whichever id.
                            if let Some(previous) = &previous_identity {
                                ids_tree.insert(identity.as_slice(), tombstone)?;
                                if let Some(alias) = alias {
                                    aliases_tree.insert(alias.as_slice(), identity.as_slice())?;
                                }
                                if let Some(link) = link
                                    && links_tree.get(link.as_bytes())?.as_ref() == Some(previous)
                                {
                                    links_tree.insert(link.as_bytes(), identity.as_slice())?;
                                }
                            }
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
                        let key = item_key(record.timestamp, identity);
                        let bytes = encode_item(&record).map_err(abort)?;
                        if let Some(old_key) = old_key
                            && old_key.as_ref() != key.as_slice()
                        {
                            items_tree.remove(old_key)?;
                        }
                        items_tree.insert(key.as_slice(), bytes)?;
                        ids_tree.insert(identity.as_slice(), key.as_slice())?;
                        if let Some(alias) = alias {
                            aliases_tree.insert(alias.as_slice(), identity.as_slice())?;
                        }
                        if let Some(link) = link {
                            let claimed = match links_tree.get(link.as_bytes())? {
                                None => false,
                                Some(owner) => {
                                    owner.as_ref() != identity.as_slice()
                                        && previous_identity.as_ref() != Some(&owner)
                                        && ids_tree.get(&owner)?.is_some()
                                }
                            };
                            if !claimed {
                                links_tree.insert(link.as_bytes(), identity.as_slice())?;
                            }
                        }
                        if old_record.is_some() {
                            report.updated += 1;
                        } else {
                            report.added += 1;
                        }
                    }
                    sources_tree.insert(origin.source.0.as_bytes(), state_bytes.as_slice())?;
                    Ok(report)
                },
            )?)
        })?;
        if report.added + report.updated + report.taken_over > 0 {
            self.signal_change();
        }
        Ok(report)
    }

    /// The newest `n` items of all sources, newest first. The newest of them come from
    /// the cache of decoded items when they are unchanged.
    pub fn latest(&self, n: usize) -> Result<Vec<StoredItem>, StoreError> {
        self.latest_where(n, n, |_| true)
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
        let h = self.handles()?;
        let mut latest = Vec::with_capacity(n.min(1024));
        for entry in h.items.iter().rev().take(max_scan) {
            let (key, value) = entry?;
            let (item, cached) = match self.shared.decoded.get(&key, &value) {
                Some(item) => (item, true),
                None => (decode_item(&value)?, false),
            };
            if keep(&item) {
                // Only what a view shows is cached, and only its newest items: a scan
                // past a thousand items of other sources, or a river longer than the
                // cache, must not push the newest items out.
                if !cached && latest.len() < decoded::CAPACITY {
                    self.shared.decoded.put(&key, &value, &item);
                }
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
        match self.handles()?.sources.get(source.0.as_bytes())? {
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
        let state = rmp_serde::to_vec_named(state)?;
        self.write(|h| {
            h.sources.insert(source.0.as_bytes(), state)?;
            Ok(())
        })
    }

    /// Writes everything to disk. Called at shutdown; sled also flushes on its own
    /// every half second.
    pub async fn flush(&self) -> Result<(), StoreError> {
        // No reopen here: this runs on an async worker; the next write reopens.
        let h = self.handles()?;
        let result = h.db.flush_async().await.map_err(StoreError::from);
        drop(h);
        self.note(result).map(drop)
    }

    /// Retention: removes items whose timestamp is before `keep_after`, then the oldest
    /// beyond `max_items`, leaving tombstones of their identities; tombstones older
    /// than `keep_after` are dropped (their items have left their documents by
    /// then). Returns how many items were removed, and how many each source holds
    /// after the pass (counted on the way, so /metrics needs no scan of its own).
    /// Runs in batches, so readers and writers are never held for long.
    pub fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<Trimmed, StoreError> {
        let trimmed = self.write(|h| Self::trim_in(h, keep_after, max_items))?;
        if trimmed.removed > 0 {
            self.signal_change();
        }
        Ok(trimmed)
    }

    fn trim_in(
        h: &Handles,
        keep_after: DateTime<Utc>,
        max_items: usize,
    ) -> Result<Trimmed, StoreError> {
        // One pass over the small `ids` values counts the live items of each source
        // and drops expired tombstones; counting `items` itself would read every
        // stored item.
        let cutoff_micros = keep_after.timestamp_micros();
        let mut counting = SourceCounts::default();
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
        Ok(Trimmed {
            removed: doomed.len(),
            touched,
            counts,
        })
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

    /// When [`Store::drop_orphan_keys`] last ran on this store; `None` if never.
    pub fn last_orphan_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let value = self.handles()?.db.get(LAST_ORPHAN_SWEEP)?;
        Ok(value
            .and_then(|v| v.as_ref().try_into().ok())
            .and_then(|micros| DateTime::from_timestamp_micros(i64::from_be_bytes(micros))))
    }

    /// Retention for one source (`max_items` of a `[[source]]`): removes its oldest
    /// items beyond `max_items`, leaving tombstones like [`Store::trim`]. Walks only
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

    /// The store's size on disk, in bytes (sled sums its files' lengths).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.handles()?.db.size_on_disk()?)
    }

    /// Whether the database still answers reads; for `/healthz`.
    pub fn is_healthy(&self) -> bool {
        self.handles().is_ok_and(|h| h.items.first().is_ok())
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
/// Key in sled's default tree: when the orphan sweep last ran (8-byte big-endian
/// microseconds), so daemons restarted more often than it runs still sweep.
const LAST_ORPHAN_SWEEP: &[u8] = b"last_orphan_sweep";
/// Items removed per transaction by `trim`.
const TRIM_BATCH: usize = 256;

/// The timestamp (microseconds) an `items` key starts with.
fn key_micros(key: &[u8]) -> i64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&key[..8]);
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

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

/// Counts `ids` keys per source during a scan in key order, where each source's keys
/// are contiguous: one map entry per source, not a lookup per key.
#[derive(Default)]
struct SourceCounts {
    counts: HashMap<SourceId, u64>,
    current: Option<(sled::IVec, u64)>,
}

impl SourceCounts {
    fn add(&mut self, identity: &[u8]) {
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

    fn finish(mut self) -> HashMap<SourceId, u64> {
        if let Some((name, count)) = self.current.take() {
            self.counts.insert(source_id(&name), count);
        }
        self.counts
    }
}

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

/// First byte of an `items` value in the current encoding: `LZ4_TAG`, the
/// uncompressed length (u32, little-endian), then an LZ4 block of the MessagePack.
/// Values written before start with a zstd frame's magic (0x28) and are still read.
///
/// LZ4 rather than zstd: an item is a few KB, and zstd spends most of the time of such
/// a small frame building its entropy tables, which made decompression three quarters
/// of reading the newest 100 items. LZ4 decodes the same items about 3x faster, for
/// about a third more bytes.
const LZ4_TAG: u8 = b'L';

fn encode_item(item: &StoredItem) -> Result<Vec<u8>, StoreError> {
    let packed = rmp_serde::to_vec_named(item)?;
    let mut value = vec![0; 5 + lz4_flex::block::get_maximum_output_size(packed.len())];
    value[0] = LZ4_TAG;
    value[1..5].copy_from_slice(&(packed.len() as u32).to_le_bytes());
    let written =
        lz4_flex::block::compress_into(&packed, &mut value[5..]).map_err(std::io::Error::other)?;
    value.truncate(5 + written);
    Ok(value)
}

/// Largest decompressed item taken on the value's word: the body cap is 16 MiB, so
/// no stored item comes near it.
const MAX_DECODED_ITEM_BYTES: u64 = 64 * 1024 * 1024;

fn decode_item(bytes: &[u8]) -> Result<StoredItem, StoreError> {
    let packed = match bytes.split_first() {
        Some((&LZ4_TAG, rest)) if rest.len() >= 4 => {
            let size = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if u64::from(size) > MAX_DECODED_ITEM_BYTES {
                return Err(std::io::Error::other("item larger than any stored").into());
            }
            lz4_flex::block::decompress(&rest[4..], size as usize)
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?
        }
        _ => decode_zstd(bytes)?,
    };
    Ok(rmp_serde::from_slice(&packed)?)
}

/// An item as stores written before `LZ4_TAG` hold it: one zstd frame.
fn decode_zstd(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(size)) if size <= MAX_DECODED_ITEM_BYTES => {
            zstd::bulk::decompress(bytes, size as usize)
        }
        _ => zstd::stream::decode_all(bytes),
    }
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
            comments: None,
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
    fn items_written_by_earlier_versions_still_decode() {
        let record = StoredItem {
            origin: origin("a"),
            item: item("old", Some(1_700_000_000)),
            first_seen: at(1_700_000_000),
            timestamp: at(1_700_000_000),
        };
        let packed = rmp_serde::to_vec_named(&record).unwrap();
        let zstd_value = zstd::bulk::compress(&packed, 1).unwrap();
        assert_eq!(decode_item(&zstd_value).unwrap(), record);
        let current = encode_item(&record).unwrap();
        assert_eq!(current[0], LZ4_TAG);
        assert_eq!(decode_item(&current).unwrap(), record);
        let mut corrupt = current.clone();
        corrupt[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_item(&corrupt).is_err());
        assert!(decode_item(&current[..current.len() - 1]).is_err());
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
                unchanged: 3,
                ..UpsertReport::default()
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
    fn reads_see_items_rewritten_in_place_whatever_was_read_before() {
        let store = Store::temporary().unwrap();
        let a = origin("a");
        let state = SourceState::default();
        // A river longer than the cache of decoded items, read twice.
        let count = decoded::CAPACITY as i64 + 50;
        let items: Vec<Item> = (0..count).map(|n| item(&n.to_string(), Some(n))).collect();
        store.record_fetch(&a, &items, &state, at(10_000)).unwrap();
        let first = store.latest(count as usize).unwrap();
        assert_eq!(first.len(), count as usize);
        assert_eq!(store.latest(count as usize).unwrap(), first);
        // The newest item changes its title, keeping its date (so its key), and an old
        // one likewise: both reads show the new titles.
        let mut newest = item(&(count - 1).to_string(), Some(count - 1));
        newest.title = Some("edited".into());
        let mut oldest = item("0", Some(0));
        oldest.title = Some("edited too".into());
        let report = store
            .record_fetch(&a, &[newest, oldest], &state, at(10_000))
            .unwrap();
        assert_eq!(report.updated, 2);
        let again = store.latest(count as usize).unwrap();
        assert_eq!(again[0].item.title.as_deref(), Some("edited"));
        assert_eq!(
            again.last().unwrap().item.title.as_deref(),
            Some("edited too")
        );
        assert_eq!(again[1..again.len() - 1], first[1..first.len() - 1]);
        let view = store.latest_where(1, 10, |_| true).unwrap();
        assert_eq!(view[0].item.title.as_deref(), Some("edited"));
    }

    fn linked(id: &str, link: &str, published: i64) -> Item {
        Item {
            link: Some(link.into()),
            ..item(id, Some(published))
        }
    }

    fn names(items: &[StoredItem]) -> Vec<(&str, &str)> {
        items
            .iter()
            .map(|i| (i.origin.name.as_str(), i.item.id.0.as_str()))
            .collect()
    }

    #[test]
    fn a_story_in_two_sources_is_stored_once_by_the_first_publisher() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let (a, b, c) = (origin("a"), origin("b"), origin("c"));
        let story = "https://news.example/story?id=7";
        store
            .record_fetch(&a, &[linked("a-1", story, 200)], &state, at(1000))
            .unwrap();
        // B has the same story (tracking parameters and fragment do not matter),
        // published later: A keeps it.
        let tracked = "https://NEWS.example:443/story?id=7&utm_source=rss#top";
        let report = store
            .record_fetch(&b, &[linked("b-1", tracked, 300)], &state, at(1000))
            .unwrap();
        assert_eq!((report.added, report.duplicates), (0, 1));
        assert_eq!(names(&store.latest(10).unwrap()), [("a", "a-1")]);
        // C published it earlier than A: C takes it over, and A's next poll does not
        // bring A's copy back.
        let report = store
            .record_fetch(&c, &[linked("c-1", story, 100)], &state, at(2000))
            .unwrap();
        assert_eq!((report.added, report.taken_over), (1, 1));
        assert_eq!(names(&store.latest(10).unwrap()), [("c", "c-1")]);
        let report = store
            .record_fetch(&a, &[linked("a-1", story, 200)], &state, at(3000))
            .unwrap();
        assert_eq!((report.added, report.duplicates), (0, 1));
        assert_eq!(names(&store.latest(10).unwrap()), [("c", "c-1")]);
        // Other stories of A are unaffected.
        store
            .record_fetch(
                &a,
                &[linked("a-2", "https://news.example/other", 400)],
                &state,
                at(3000),
            )
            .unwrap();
        assert_eq!(
            names(&store.latest(10).unwrap()),
            [("a", "a-2"), ("c", "c-1")]
        );
    }

    #[test]
    fn changed_guids_do_not_repeat_a_story() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let a = origin("a");
        let first = vec![
            linked("http://a.example/p?id=1", "http://a.example/one", 100),
            linked("a-guid-2", "http://a.example/two-old-slug", 200),
        ];
        store.record_fetch(&a, &first, &state, at(1000)).unwrap();
        // The publisher moves to https (ids and links), and edits a slug in an id
        // while the link stays.
        let second = vec![
            linked("https://www.a.example/p?id=1", "https://a.example/one", 100),
            linked("a-guid-2-edited", "http://a.example/two-old-slug", 200),
        ];
        let report = store.record_fetch(&a, &second, &state, at(2000)).unwrap();
        assert_eq!((report.added, report.reidentified), (0, 2), "{report:?}");
        assert_eq!(
            ids(&store.latest(10).unwrap()),
            ["a-guid-2-edited", "https://www.a.example/p?id=1"]
        );
        // The new ids are now the stored ones: the next poll changes nothing, and the
        // first-seen time survived the change.
        let report = store.record_fetch(&a, &second, &state, at(3000)).unwrap();
        assert_eq!(report.unchanged, 2, "{report:?}");
        assert!(
            store
                .latest(10)
                .unwrap()
                .iter()
                .all(|i| i.first_seen == at(1000))
        );
    }

    #[test]
    fn one_document_naming_a_story_twice_keeps_the_first() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let items = vec![
            linked("x-1", "https://a.example/s", 100),
            linked("x-2", "https://a.example/s#comments", 90),
            linked("http://a.example/g/5", "https://a.example/five", 80),
            linked("https://a.example/g/5", "https://a.example/five-b", 80),
        ];
        let report = store
            .record_fetch(&origin("a"), &items, &state, at(1000))
            .unwrap();
        assert_eq!((report.added, report.duplicates), (2, 2));
        assert_eq!(
            ids(&store.latest(10).unwrap()),
            ["x-1", "http://a.example/g/5"]
        );
    }

    #[test]
    fn a_trimmed_story_stays_away_under_a_new_id_or_another_source() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let story = "https://a.example/old";
        store
            .record_fetch(&origin("a"), &[linked("1", story, 100)], &state, at(1000))
            .unwrap();
        assert_eq!(store.trim(at(500), 100).unwrap().removed, 1);
        let report = store
            .record_fetch(&origin("a"), &[linked("1b", story, 100)], &state, at(2000))
            .unwrap();
        assert_eq!(report.added, 0, "{report:?}");
        let report = store
            .record_fetch(&origin("b"), &[linked("b1", story, 100)], &state, at(2000))
            .unwrap();
        assert_eq!(report.added, 0, "{report:?}");
        assert!(store.latest(10).unwrap().is_empty());
        // While the tombstones last, their secondary keys are kept.
        assert_eq!(store.last_orphan_sweep().unwrap(), None);
        assert_eq!(store.drop_orphan_keys().unwrap(), 0);
        let swept = store.last_orphan_sweep().unwrap().expect("noted");
        assert!((Utc::now() - swept).num_seconds().abs() < 60);
        // Once the tombstones expire, the secondary keys point nowhere and the
        // sweep drops them.
        let future = Utc::now() + Duration::days(1);
        store.trim(future, 100).unwrap();
        let h = store.handles().unwrap();
        let orphans = h.links.len() + h.aliases.len();
        assert!(orphans > 0);
        assert_eq!(store.drop_orphan_keys().unwrap(), orphans);
        assert_eq!(h.links.len() + h.aliases.len(), 0);
        assert_eq!(store.drop_orphan_keys().unwrap(), 0);
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
        // Trimmed items leave tombstones, which are not items; the pass counts what
        // is left as it goes, and agrees with a count of its own.
        let trimmed = store.trim(at(102), 100).unwrap();
        assert_eq!(trimmed.removed, 3);
        assert_eq!(
            trimmed.touched,
            HashSet::from([a.source.clone(), a2.source.clone()])
        );
        assert_eq!(trimmed.counts, store.item_counts().unwrap());
        assert_eq!(trimmed.counts.len(), 2);
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
        assert_eq!(store.trim(at(350), 100).unwrap().removed, 3);
        assert_eq!(
            ids(&store.latest(100).unwrap()),
            ["10", "9", "8", "7", "6", "5", "4"]
        );
        // At most 5 items: the two oldest go.
        let trimmed = store.trim(at(0), 5).unwrap();
        assert_eq!(trimmed.removed, 2);
        assert_eq!(trimmed.counts[&a.source], 5);
        assert_eq!(ids(&store.latest(100).unwrap()), ["10", "9", "8", "7", "6"]);
        // The same document again: trimmed items do not come back.
        let report = store.record_fetch(&a, &items, &state, at(6000)).unwrap();
        assert_eq!(report.added, 0);
        assert_eq!(store.latest(100).unwrap().len(), 5);
        // Tombstones older than the cut-off are dropped (by then their items have
        // left their documents); an item seen after that is stored again.
        let future = Utc::now() + Duration::days(1);
        assert_eq!(store.trim(future, 100).unwrap().removed, 5);
        let report = store
            .record_fetch(&a, &items[..1], &state, at(7000))
            .unwrap();
        assert_eq!(report.added, 1);
    }

    /// Thousands of items with links and URL-like ids fill many leaves of every tree,
    /// so sled splits them (`vendor/sled` splits leaves of small entries by size) and,
    /// once retention removes most items, merges them. Order, dedup and tombstones
    /// must come through both.
    #[test]
    fn thousands_of_items_keep_order_and_identity_through_leaf_splits_and_merges() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let origins = [origin("a"), origin("b"), origin("c")];
        let per_source = 800_i64;
        let document = |k: i64| -> Vec<Item> {
            (0..per_source)
                .map(|i| {
                    let mut story = item(
                        &format!("https://s{k}.example/story/{i}"),
                        Some(1_000_000 + i * 3 + k),
                    );
                    story.link = Some(format!("https://s{k}.example/story/{i}?utm_source=x"));
                    story
                })
                .collect()
        };
        let documents: Vec<Vec<Item>> = (0..3).map(document).collect();
        for (k, origin) in origins.iter().enumerate() {
            // In pages of 100, the way polls arrive.
            for page in documents[k].chunks(100) {
                store
                    .record_fetch(origin, page, &state, at(2_000_000))
                    .unwrap();
            }
        }
        let total = 3 * per_source as usize;
        let latest = store.latest(total + 10).unwrap();
        assert_eq!(latest.len(), total);
        let expected: Vec<String> = (0..per_source)
            .rev()
            .flat_map(|i| {
                (0..3)
                    .rev()
                    .map(move |k| format!("https://s{k}.example/story/{i}"))
            })
            .collect();
        assert_eq!(ids(&latest), expected);
        // Every document again, and each story under an http:// id: nothing is new.
        for (k, origin) in origins.iter().enumerate() {
            let again = store
                .record_fetch(origin, &documents[k], &state, at(2_000_100))
                .unwrap();
            assert_eq!(again.added, 0);
            let renamed: Vec<Item> = documents[k]
                .iter()
                .map(|story| Item {
                    id: ItemId(story.id.0.replacen("https://", "http://", 1)),
                    ..story.clone()
                })
                .collect();
            let report = store
                .record_fetch(origin, &renamed, &state, at(2_000_200))
                .unwrap();
            assert_eq!(report.added, 0);
        }
        // The stories now carry their newest ids, in the same places.
        let renamed: Vec<String> = expected
            .iter()
            .map(|id| id.replacen("https://", "http://", 1))
            .collect();
        assert_eq!(ids(&store.latest(total + 10).unwrap()), renamed);
        // Retention keeps the newest 30: most leaves empty out and merge.
        let trimmed = store.trim(at(0), 30).unwrap();
        assert_eq!(trimmed.removed, total - 30);
        assert_eq!(ids(&store.latest(100).unwrap()), renamed[..30]);
        // Trimmed stories stay away, and the kept ones are still found.
        for (k, origin) in origins.iter().enumerate() {
            let report = store
                .record_fetch(origin, &documents[k], &state, at(2_000_300))
                .unwrap();
            assert_eq!(report.added, 0);
        }
        assert_eq!(store.item_counts().unwrap().values().sum::<u64>(), 30);
    }

    #[test]
    fn a_source_keeps_at_most_its_max_items() {
        let store = Store::temporary().unwrap();
        let state = SourceState::default();
        let (a, b) = (origin("a"), origin("b"));
        let items: Vec<_> = (1..=6)
            .map(|i| item(&i.to_string(), Some(i * 10)))
            .collect();
        store.record_fetch(&a, &items, &state, at(1000)).unwrap();
        store.record_fetch(&b, &items, &state, at(1000)).unwrap();
        assert_eq!(store.trim_source(&a.source, 4).unwrap(), 2);
        assert_eq!(store.trim_source(&a.source, 4).unwrap(), 0);
        let of = |o: &Origin| {
            let latest = store.latest(100).unwrap();
            let kept: Vec<String> = latest
                .iter()
                .filter(|i| i.origin == *o)
                .map(|i| i.item.id.0.clone())
                .collect();
            kept
        };
        assert_eq!(of(&a), ["6", "5", "4", "3"]);
        assert_eq!(of(&b).len(), 6);
        // The trimmed items are still in the document: they do not come back.
        let report = store.record_fetch(&a, &items, &state, at(2000)).unwrap();
        assert_eq!(report.added, 0);
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
