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
//! - `sources`: source id -> [`SourceState`](crate::item::SourceState).
//! - `hub_subscriptions`: the built-in WebSub hub's subscriptions (`hub.rs`).
//! - `websub`: callback token -> [`Subscription`] (a subscription to a source's hub).
//!
//! An insert or a move changes `items`, `ids`, `links` and `aliases` in one
//! transaction; a poll whose items are all unchanged or new with their keys free
//! adds its keys and its state without one, in an order any prefix of which reads
//! right (`append.rs`). `links` and `aliases` entries may outlive their item (a move, a
//! take-over); a lookup checks that `ids` still knows the owner, and
//! [`Store::drop_orphan_keys`] drops the ones that point nowhere.
//!
//! Writers: the scheduler (`record_fetch`, `put_source_state`). Readers: `publish`
//! (`latest`, `latest_where`, `source_state`, `subscribe`) and `daemon` (`flush`).
//!
//! A failed write poisons a sled database; `open.rs` reopens it on a later write
//! (at most every [`REOPEN_EVERY`]) while readers keep serving what is stored.
//!
//! Files: `open.rs` (opening, reopening), `upsert.rs` (`record_fetch`), `append.rs`
//! (its write without a transaction),
//! `retention.rs` (trims, tombstones, the orphan sweep), `counts.rs` (items per
//! source), `state.rs` (source state), `keys.rs` (key bytes), `codec.rs` (value
//! encoding), `decoded.rs` (the cache of decoded items).

use chrono::{DateTime, Duration, Utc};
use sled::transaction::TransactionError;
use std::sync::Arc;

use crate::item::{Item, StoredItem};

mod append;
mod backend;
mod codec;
mod copy;
mod counts;
mod decoded;
mod hub;
mod keys;
mod open;
pub mod postgres;
mod retention;
mod side;
mod state;
mod upsert;
mod websub;

pub use backend::{Backend, BoxFuture, Record, SideEntries, SideTable, Store};

use codec::decode_item;
pub use hub::HubSubscription;
pub use keys::item_key;
pub use open::REOPEN_EVERY;
use open::Shared;
pub use retention::Trimmed;
pub use upsert::UpsertReport;
pub use websub::{Subscription, SubscriptionStatus};

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
    #[error("PostgreSQL failed")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot reach PostgreSQL: {0}")]
    Pool(String),
    #[error("write refused: this node's lease on partition {part} is no longer current")]
    Fenced { part: u32 },
    #[error("the PostgreSQL schema is at version {found}, newer than this build knows ({known})")]
    SchemaTooNew { found: i32, known: i32 },
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(err: TransactionError<StoreError>) -> Self {
        match err {
            TransactionError::Abort(err) => err,
            TransactionError::Storage(err) => StoreError::Sled(err),
        }
    }
}

/// The embedded item store (the default backend). Cheap to clone; all clones share
/// one database.
#[derive(Clone)]
pub struct Sled {
    shared: Arc<Shared>,
}

impl Sled {
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

    /// Writes everything to disk. Called before each render and at shutdown; sled
    /// also flushes on its own every [`FLUSH_EVERY`](open::FLUSH_EVERY).
    pub async fn flush(&self) -> Result<(), StoreError> {
        // No reopen here: this runs on an async worker; the next write reopens.
        let h = self.handles()?;
        let result = h.db.flush_async().await.map_err(StoreError::from);
        drop(h);
        self.note(result).map(drop)
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

#[cfg(test)]
mod tests {
    use super::codec::{LZ4_TAG, encode_item};
    use super::*;
    use crate::item::{ItemId, Origin, SourceId, SourceState};
    use std::collections::HashSet;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// An item without a link (also used by `append.rs`'s tests).
    pub(super) fn item(id: &str, published: Option<i64>) -> Item {
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

    /// The origin of a source named `name` (also used by `append.rs`'s tests).
    pub(super) fn origin(name: &str) -> Origin {
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
        // This record as an earlier version stored it: MessagePack in one zstd frame,
        // written by libzstd (level 1).
        let zstd_value = include_bytes!("../../tests/fixtures/store/item-zstd-level1.bin");
        assert_eq!(decode_item(zstd_value).unwrap(), record);
        assert!(decode_item(&zstd_value[..zstd_value.len() - 1]).is_err());
        let current = encode_item(&record).unwrap();
        assert_eq!(current[0], LZ4_TAG);
        assert_eq!(decode_item(&current).unwrap(), record);
        let mut corrupt = current.clone();
        corrupt[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_item(&corrupt).is_err());
        assert!(decode_item(&current[..current.len() - 1]).is_err());
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
        let state = SourceState::default();
        let items = vec![
            linked("x-1", "https://a.example/s", 100),
            linked("x-1", "https://a.example/s", 100),
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
    fn entries_that_share_a_link_or_differ_by_a_fragment_stay_distinct() {
        let store = Sled::temporary().unwrap();
        let state = SourceState::default();
        let (a, b) = (origin("a"), origin("b"));
        // A podcast: every episode links to the show's page. A diary: one page a day,
        // one anchor per entry, the anchored link as guid.
        let show = "https://pod.example/show";
        let episodes: Vec<Item> = (1..=15)
            .map(|n| linked(&format!("ep-{n}"), show, n * 10))
            .collect();
        let diary: Vec<Item> = (1..=15)
            .map(|n| {
                let entry = format!("https://diary.example/2006/01/01.html#p{n:02}");
                linked(&entry, &entry, 1000 + n)
            })
            .collect();
        let report = store.record_fetch(&a, &episodes, &state, at(5000)).unwrap();
        assert_eq!((report.added, report.duplicates), (15, 0), "{report:?}");
        let report = store.record_fetch(&b, &diary, &state, at(5000)).unwrap();
        assert_eq!((report.added, report.duplicates), (15, 0), "{report:?}");
        assert_eq!(store.latest(100).unwrap().len(), 30);
        // The next polls: nothing new, then one new episode, alone in the document,
        // on the same page: a story of its own, not the last one under a new id.
        let report = store.record_fetch(&a, &episodes, &state, at(6000)).unwrap();
        assert_eq!(report.unchanged, 15, "{report:?}");
        let next = linked("ep-16", show, 500);
        let report = store.record_fetch(&a, &[next], &state, at(7000)).unwrap();
        assert_eq!((report.added, report.reidentified), (1, 0), "{report:?}");
        assert_eq!(store.latest(100).unwrap().len(), 31);
        // The same story republished under a new guid still replaces its old copy.
        let renamed = linked("ep-16-renamed", show, 500);
        let report = store
            .record_fetch(&a, &[renamed], &state, at(8000))
            .unwrap();
        assert_eq!((report.added, report.reidentified), (0, 1), "{report:?}");
        assert_eq!(store.latest(100).unwrap().len(), 31);
    }

    #[test]
    fn a_trimmed_story_stays_away_under_a_new_id_or_another_source() {
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
        let store = Sled::temporary().unwrap();
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
