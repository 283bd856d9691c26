//! The entries a source sent before, passed over unread.
//!
//! A feed that changed usually changed by one entry: reading the whole document again
//! would parse, normalize and sanitize every other entry for nothing, and the store
//! would decode each stored item only to find it unchanged. So the scheduler remembers,
//! per source, the fingerprint of every entry it stored from the last document (its
//! bytes in their context, see `ingest::known`) with the little the next poll needs of
//! it: its date (for the learned interval) and hashes of its keys (id, canonical link,
//! id without host). The entries of a new document whose fingerprints are known are
//! cut out before parsing; the store sees only the new and changed ones. A document in
//! another charset than UTF-8 (windows-1251, KOI8-R, UTF-16...) is scanned and cut as
//! the UTF-8 text it decodes to, read under a Content-Type that says UTF-8
//! ([`read_feed`]): that reads exactly as its own bytes do.
//!
//! Skipping must not change what is stored. An entry is passed over only when what the
//! store would do with it is nothing: the same bytes in the same context normalize to
//! the same item, stored with the same origin, and its identity is still where the
//! last poll left it. So everything is read whole when:
//! - the source's state is not the one the entries were remembered with (a reset),
//! - the store forgot an identity since ([`Store::forgotten`](crate::store::Store::forgotten):
//!   a take-over, a new id, an expired tombstone),
//! - the feed's title or link, or the origin the items are stored with, changed,
//! - a new entry shares a key with a passed-over one (de-duplication within a
//!   document depends on the order of entries that share keys),
//! - the shortened document does not read, or reads another number of entries,
//! - the document holds more entries than are kept (the newest are picked among all).
//!
//! Only entries that reached the store are remembered, and not those that share a key
//! with another entry of their document, nor those whose date was too far in the
//! future to keep (the clock decides those again on every poll). The memory is the
//! daemon's, lost on restart: the first poll after it reads everything.
//!
//! With 100 000 sources of 50 entries each, this is five million entries, so an entry
//! is 24 bytes (its fingerprint, its date in nanoseconds and its three keys in 21 bits
//! each), and the sources are found by a hash of their id. The keys only ever make
//! the reading more careful: two keys that hash alike count as one shared key, which
//! reads the document whole (or leaves the entries unremembered), never less.
//!
//! With the entries, the document's [`Layout`] is kept (8 bytes more an entry, and
//! about a hundred a source): where its entries lay, so the next scan steps over the
//! run of them the new document repeats instead of tokenizing it again.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::ingest::charset::{DECODED, to_utf8};
use crate::ingest::known::{Layout, scan};
use crate::ingest::normalize::{Document, MAX_ENTRIES};
use crate::item::{Item, SourceId};

/// Bits of each of an entry's key hashes.
const KEY_BITS: u32 = 21;
/// [`Remembered::date`] of an entry without a date.
const NO_DATE: i64 = i64::MIN;
/// [`Remembered::date`] of an entry whose date is not a whole number of nanoseconds
/// since 1970 within an `i64` (before 1677 or after 2262): not remembered.
const FAR_DATE: i64 = i64::MIN + 1;

/// What one entry left for the next poll: 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Remembered {
    /// Its claimed date (published, else updated) in nanoseconds since 1970;
    /// [`NO_DATE`] or [`FAR_DATE`].
    date: i64,
    /// Hashes of its id, canonical link and id without host, [`KEY_BITS`] each
    /// from the lowest (0: none).
    keys: u64,
}

impl Remembered {
    pub(super) fn of(item: &Item) -> Remembered {
        let hash = |key: Option<&str>| {
            key.map_or(0, |key| {
                xxhash_rust::xxh3::xxh3_64(key.as_bytes()) & ((1 << KEY_BITS) - 1) | 1
            })
        };
        // The two sentinels are the first two nanoseconds an i64 holds (in 1677):
        // a date there is not remembered either.
        let date = item.claimed_date().map_or(NO_DATE, |date| {
            date.timestamp_nanos_opt()
                .filter(|nanos| *nanos > FAR_DATE)
                .unwrap_or(FAR_DATE)
        });
        Remembered {
            date,
            keys: hash(Some(&item.id.0))
                | hash(item.canonical_link().as_deref()) << KEY_BITS
                | hash(item.id_without_host().as_deref()) << (2 * KEY_BITS),
        }
    }

    pub(super) fn date(&self) -> Option<DateTime<Utc>> {
        (self.date > FAR_DATE).then(|| DateTime::from_timestamp_nanos(self.date))
    }

    /// Whether it can be remembered: its date, if any, is held exactly.
    fn keeps_its_date(&self) -> bool {
        self.date != FAR_DATE
    }

    /// Its keys, each once (an id that is its canonical link is one key).
    fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        let mask = (1 << KEY_BITS) - 1;
        let [id, link, alias] = [0, 1, 2].map(|i| (self.keys >> (i * KEY_BITS) & mask) as u32);
        let link = (link != id).then_some(link);
        let alias = (alias != id && Some(alias) != link).then_some(alias);
        [Some(id), link, alias]
            .into_iter()
            .flatten()
            .filter(|k| *k != 0)
    }
}

/// The entries remembered of one source's last stored document.
pub(super) struct Known {
    /// The body hash of the state they were stored with.
    body_hash: u64,
    /// The store's [`forgotten`](crate::store::Store::forgotten) count then.
    forgotten: u64,
    /// The feed's title and link and the origin they were stored with.
    context: u64,
    /// By fingerprint, sorted.
    entries: Box<[(u64, Remembered)]>,
    /// Where the document had its entries, for the next scan.
    layout: Option<Layout>,
}

impl Known {
    fn find(&self, fingerprint: u64) -> Option<Remembered> {
        let at = self
            .entries
            .binary_search_by_key(&fingerprint, |(f, _)| *f)
            .ok()?;
        Some(self.entries[at].1)
    }
}

/// The remembered entries of every source, by a hash of its id ([`key`]).
#[derive(Default)]
pub(super) struct KnownEntries {
    sources: Mutex<HashMap<u64, Known>>,
}

/// What a source's entries are found by: a hash of its id, not a copy of it. Two ids
/// hashing alike would at worst find each other's entries, which pass over nothing:
/// a fingerprint holds the source's URL ([`read_known`]'s `seed`), and the body
/// hash must match too.
fn key(source: &SourceId) -> u64 {
    xxhash_rust::xxh3::xxh3_64(source.0.as_bytes())
}

impl KnownEntries {
    /// Takes what is remembered of `source`, if it is still true of the source's
    /// state (`body_hash`) and of the store (`forgotten`).
    pub(super) fn take(
        &self,
        source: &SourceId,
        body_hash: Option<u64>,
        forgotten: u64,
    ) -> Option<Known> {
        let known = self.lock().remove(&key(source))?;
        (Some(known.body_hash) == body_hash && known.forgotten == forgotten).then_some(known)
    }

    /// Remembers the entries of the document just stored: those passed over and the
    /// stored items' (`None` for an item not to remember), less any that shares a key
    /// with another; and where the document had them.
    pub(super) fn remember(
        &self,
        source: &SourceId,
        body_hash: u64,
        forgotten: u64,
        (context, layout): (u64, Option<Layout>),
        entries: Vec<(u64, Remembered)>,
    ) {
        let mut uses: HashMap<u32, usize> = HashMap::new();
        for (_, entry) in &entries {
            for key in entry.keys() {
                *uses.entry(key).or_default() += 1;
            }
        }
        let mut entries: Vec<_> = entries
            .into_iter()
            .filter(|(_, entry)| entry.keeps_its_date() && entry.keys().all(|key| uses[&key] == 1))
            .collect();
        entries.sort_unstable_by_key(|(f, _)| *f);
        entries.dedup_by_key(|(f, _)| *f);
        let known = Known {
            body_hash,
            forgotten,
            context,
            entries: entries.into_boxed_slice(),
            layout,
        };
        self.lock().insert(key(source), known);
    }

    /// Forgets a source removed or changed by a reload.
    pub(super) fn forget(&self, source: &SourceId) {
        self.lock().remove(&key(source));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Known>> {
        self.sources
            .lock()
            .expect("the known entries are never poisoned")
    }
}

/// A document read with its known entries passed over.
pub(super) struct Reading {
    pub(super) document: Document,
    /// Of each item of the document: its fingerprint and what to remember of it;
    /// `None` when it cannot be told which entry it came from.
    pub(super) fingerprints: Vec<Option<u64>>,
    /// The entries passed over.
    pub(super) passed: Vec<(u64, Remembered)>,
    /// The feed's title and link under `seed` (see [`Known::context`]).
    pub(super) context: u64,
    /// Where the document had its entries, for the next scan.
    pub(super) layout: Option<Layout>,
}

/// [`read_known`] of a feed in any charset: one that is not UTF-8 is read as the UTF-8
/// text it decodes to ([`to_utf8`]), under a Content-Type that says so, so that its
/// known entries are passed over too; it reads exactly as its bytes would. `read`
/// takes the bytes and the Content-Type to read them under. The text is made once,
/// and a whole read of it only checks that it is UTF-8.
pub(super) fn read_feed<E>(
    body: &[u8],
    content_type: Option<&str>,
    seed: u64,
    known: Option<&Known>,
    read: impl Fn(&[u8], Option<&str>) -> Result<Document, E>,
) -> Result<Reading, E> {
    match to_utf8(body, content_type) {
        Some(text) => read_known(text.as_bytes(), seed, known, |text| {
            read(text, Some(DECODED))
        }),
        None => read_known(body, seed, known, |body| read(body, content_type)),
    }
}

/// Reads `body` with `read`, passing over the entries `known` holds when that is
/// safe (see the module's comment), else whole. `seed` hashes what the caller reads
/// the entries with besides their bytes (the origin, the URL, the time zone); a
/// document that does not scan (not well-formed, not UTF-8) is read whole.
pub(super) fn read_known<E>(
    body: &[u8],
    seed: u64,
    known: Option<&Known>,
    read: impl Fn(&[u8]) -> Result<Document, E>,
) -> Result<Reading, E> {
    let Some(mut scanned) = scan(body, known.and_then(|known| known.layout.as_ref())) else {
        let document = read(body)?;
        return Ok(Reading {
            fingerprints: vec![None; document.items.len()],
            passed: Vec::new(),
            context: context(seed, &document),
            layout: None,
            document,
        });
    };
    let layout = scanned.layout.take();
    let fingerprints: Vec<u64> = (0..scanned.entries.len())
        .map(|i| scanned.fingerprint(body, i, seed))
        .collect();
    // Past MAX_ENTRIES the newest are picked among all entries: none may be left out.
    let known = known.filter(|_| fingerprints.len() <= MAX_ENTRIES);
    if let Some(known) = known {
        let (cut, kept): (Vec<usize>, Vec<usize>) =
            (0..fingerprints.len()).partition(|&i| known.find(fingerprints[i]).is_some());
        let shortened = (!cut.is_empty()).then(|| scanned.cut(body, &cut));
        if let Some(shortened) = shortened
            && same_head(body, &shortened, scanned.entries[cut[0]].start)
            && let Ok(document) = read(&shortened)
        {
            let passed: Vec<(u64, Remembered)> = cut
                .iter()
                .filter_map(|&i| Some((fingerprints[i], known.find(fingerprints[i])?)))
                .collect();
            let context = context(seed, &document);
            if document.entries == kept.len()
                && document.left_out == 0
                && context == known.context
                && !collides(&document.items, &passed)
            {
                let fingerprints = document
                    .entry_of
                    .iter()
                    .map(|&j| Some(fingerprints[kept[j]]))
                    .collect();
                return Ok(Reading {
                    document,
                    fingerprints,
                    passed,
                    context,
                    layout,
                });
            }
        }
    }
    let document = read(body)?;
    let whole = document.entries == fingerprints.len() && document.left_out == 0;
    Ok(Reading {
        fingerprints: document
            .entry_of
            .iter()
            .map(|&j| whole.then(|| fingerprints[j]))
            .collect(),
        passed: Vec::new(),
        context: context(seed, &document),
        layout,
        document,
    })
}

/// Whether `shortened` (`body` without entries, the first cut at `first`) has the head
/// `body` has: the text before the first `<item`, `<entry` or `"items"`, where the
/// poll hints (`<ttl>`, `sy:*`, `skipHours`, `skipDays`) are read from. Cutting the
/// first entry must not bring what follows it (a `<ttl>` after the items, a comment)
/// into the head: only end tags may come between it and the next entry.
fn same_head(body: &[u8], shortened: &[u8], first: usize) -> bool {
    let head = |text: &[u8]| {
        [&b"<item"[..], b"<entry", b"\"items\""]
            .iter()
            .filter_map(|mark| memchr::memmem::find(text, mark))
            .min()
    };
    let Some(whole) = head(body).filter(|at| *at <= first) else {
        return false;
    };
    let left = head(shortened).unwrap_or(shortened.len());
    if left < first {
        return left == whole;
    }
    let between = &shortened[first..left];
    memchr::memchr_iter(b'<', between).all(|at| between.get(at + 1) == Some(&b'/'))
}

/// The feed's title and link under `seed`: what, besides an entry's bytes, its item
/// is read and stored with.
fn context(seed: u64, document: &Document) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::with_seed(seed);
    for part in [&document.feed.title, &document.feed.link] {
        hasher.update(part.as_deref().unwrap_or("\0").as_bytes());
        hasher.update(&[0xff]);
    }
    hasher.digest()
}

/// Whether a new item shares a key with a passed-over entry.
fn collides(items: &[Item], passed: &[(u64, Remembered)]) -> bool {
    let keys: std::collections::HashSet<u32> =
        passed.iter().flat_map(|(_, entry)| entry.keys()).collect();
    items
        .iter()
        .any(|item| Remembered::of(item).keys().any(|key| keys.contains(&key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::item::{Origin, SourceState};
    use crate::scheduler::document;
    use crate::store::Store;
    use url::Url;

    const SEED: u64 = 7;

    fn entry(guid: &str, text: &str) -> String {
        format!(
            "<item><guid>{guid}</guid><title>Story {guid}</title><link>/{guid}</link>\
             <pubDate>Mon, 01 Jun 2026 1{guid}:00:00 GMT</pubDate>\
             <description>&lt;p&gt;{text} &amp;amp; more&lt;/p&gt;</description></item>\n"
        )
    }

    fn feed(title: &str, entries: &[String]) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>{title}</title>\
             <link>https://n.example/</link><lastBuildDate>{}</lastBuildDate>\n{}</channel></rss>",
            entries.len(),
            entries.concat()
        )
        .into_bytes()
    }

    fn read(body: &[u8]) -> Result<Document, document::ReadError> {
        let url = Url::parse("https://n.example/rss").unwrap();
        document::read(body, None, &url, &SourceKind::Feed, chrono_tz::UTC)
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|item| item.id.0.as_str()).collect()
    }

    /// Stores a reading as a poll does and remembers its entries; returns them.
    fn store(store: &Store, known: &KnownEntries, reading: Reading, at: i64) {
        let origin = Origin {
            source: SourceId("s".into()),
            name: "N".into(),
            url: "https://n.example/rss".into(),
            tags: vec![],
        };
        let now = DateTime::from_timestamp(1_780_000_000 + at, 0).unwrap();
        let mut remembered = reading.passed;
        for (item, fingerprint) in reading.document.items.iter().zip(&reading.fingerprints) {
            remembered.extend(fingerprint.map(|f| (f, Remembered::of(item))));
        }
        let state = SourceState::default();
        store
            .record_fetch(&origin, &reading.document.items, &state, now)
            .unwrap();
        known.remember(
            &origin.source,
            1,
            store.forgotten(),
            (reading.context, reading.layout),
            remembered,
        );
    }

    fn json_entry(guid: &str, text: &str) -> String {
        format!(
            "{{\"id\": \"{guid}\", \"title\": \"Story {guid}\", \"url\": \"/{guid}\", \
             \"date_published\": \"2026-06-01T1{guid}:00:00Z\", \
             \"content_html\": \"<p>{text} &amp; more</p>\"}}"
        )
    }

    fn json_feed(title: &str, entries: &[String]) -> Vec<u8> {
        format!(
            "{{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"{title}\", \
             \"home_page_url\": \"https://n.example/\", \"items\": [\n{}\n]}}",
            entries.join(",\n")
        )
        .into_bytes()
    }

    #[test]
    fn unchanged_entries_are_passed_over_and_stored_as_a_whole_read_stores_them() {
        passes_over_unchanged_entries(feed, entry);
    }

    #[test]
    fn a_json_feed_s_unchanged_items_are_passed_over_too() {
        passes_over_unchanged_entries(json_feed, json_entry);
    }

    fn passes_over_unchanged_entries(
        feed: fn(&str, &[String]) -> Vec<u8>,
        entry: fn(&str, &str) -> String,
    ) {
        let v1 = feed("N", &[entry("3", "c"), entry("2", "b"), entry("1", "a")]);
        // A new entry on top, one changed, one gone off the end.
        let v2 = feed("N", &[entry("4", "d"), entry("3", "c"), entry("2", "B!")]);
        let (whole, skipping) = (Store::temporary().unwrap(), Store::temporary().unwrap());
        let known = KnownEntries::default();
        let source = SourceId("s".into());
        for (at, body) in [(0, &v1), (60, &v2)] {
            let reading = read_known(body, SEED, None, read).unwrap();
            assert!(reading.passed.is_empty());
            store(&whole, &KnownEntries::default(), reading, at);
        }
        let first = read_known(&v1, SEED, None, read).unwrap();
        assert_eq!(ids(&first.document.items), ["3", "2", "1"]);
        store(&skipping, &known, first, 0);

        let prior = known.take(&source, Some(1), skipping.forgotten());
        let second = read_known(&v2, SEED, prior.as_ref(), read).unwrap();
        // Only the new and the changed entry were read.
        assert_eq!(ids(&second.document.items), ["4", "2"]);
        assert_eq!(second.passed.len(), 1);
        assert!(second.fingerprints.iter().all(Option::is_some));
        store(&skipping, &known, second, 60);

        let stored = |store: &Store| {
            let items = store.latest(10).unwrap();
            serde_json::to_string(&items).unwrap()
        };
        assert_eq!(stored(&skipping), stored(&whole));
        assert!(stored(&skipping).contains("B!"));
        // All three entries of v2 are remembered now: nothing is read again.
        let prior = known.take(&source, Some(1), skipping.forgotten());
        let third = read_known(&v2, SEED, prior.as_ref(), read).unwrap();
        assert!(third.document.items.is_empty());
        assert_eq!(third.passed.len(), 3);
    }

    #[test]
    fn a_feed_in_another_charset_is_passed_over_too() {
        // Fifty Cyrillic entries, the newest first, from `newest` down.
        let text = |declared: &str, newest: usize| {
            let entries: String = (newest - 49..=newest)
                .rev()
                .map(|i| {
                    format!(
                        "<item><guid>{i}</guid><title>Новость {i}</title><link>/{i}</link>\
                         <pubDate>Mon, 01 Jun 2026 10:{i:02}:00 GMT</pubDate>\
                         <description>&lt;p&gt;Текст {i} &amp;amp; ещё&lt;/p&gt;</description></item>\n"
                    )
                })
                .collect();
            format!(
                "<?xml version=\"1.0\"{declared}?>\n<rss version=\"2.0\"><channel>\
                 <title>Новости</title><link>https://n.example/</link>\n{entries}</channel></rss>"
            )
        };
        let in_charset = |encoding: &'static encoding_rs::Encoding, declared: &str, newest| {
            let text = text(declared, newest);
            let (bytes, _, unmappable) = encoding.encode(&text);
            assert!(!unmappable);
            bytes.into_owned()
        };
        let utf16 = |newest| -> Vec<u8> {
            let units = text("", newest).encode_utf16().collect::<Vec<_>>();
            [0xfeff]
                .iter()
                .chain(&units)
                .flat_map(|u| u.to_le_bytes())
                .collect()
        };
        let cp1251 = |newest| {
            in_charset(
                encoding_rs::WINDOWS_1251,
                " encoding=\"windows-1251\"",
                newest,
            )
        };
        let koi8 = |newest| in_charset(encoding_rs::KOI8_R, "", newest);
        for (versions, content_type) in [
            ([cp1251(49), cp1251(50)], None),
            (
                [koi8(49), koi8(50)],
                Some("application/rss+xml; charset=koi8-r"),
            ),
            ([utf16(49), utf16(50)], None),
        ] {
            let read = |body: &[u8], content_type: Option<&str>| {
                let url = Url::parse("https://n.example/rss").unwrap();
                document::read(body, content_type, &url, &SourceKind::Feed, chrono_tz::UTC)
            };
            assert!(std::str::from_utf8(&versions[0]).is_err());
            let (whole, skipping) = (Store::temporary().unwrap(), Store::temporary().unwrap());
            let known = KnownEntries::default();
            for (at, body) in [(0, &versions[0]), (60, &versions[1])] {
                // Read as it always was: its own bytes, which do not scan.
                let reading = read_known(body, SEED, None, |body| read(body, content_type));
                let reading = reading.unwrap();
                assert_eq!(reading.document.items.len(), 50);
                assert!(reading.fingerprints.iter().all(Option::is_none));
                store(&whole, &KnownEntries::default(), reading, at);
            }
            let first = read_feed(&versions[0], content_type, SEED, None, read).unwrap();
            store(&skipping, &known, first, 0);
            let prior = known.take(&SourceId("s".into()), Some(1), skipping.forgotten());
            let second = read_feed(&versions[1], content_type, SEED, prior.as_ref(), read).unwrap();
            // Only the new entry was read; the 49 others were passed over.
            assert_eq!(ids(&second.document.items), ["50"], "{content_type:?}");
            assert_eq!(second.passed.len(), 49);
            store(&skipping, &known, second, 60);
            let stored =
                |store: &Store| serde_json::to_string(&store.latest(100).unwrap()).unwrap();
            assert_eq!(stored(&skipping), stored(&whole));
            assert!(stored(&skipping).contains("Новость 50"));
            assert!(stored(&skipping).contains("Текст 1 &amp; ещё"));
        }
    }

    /// The remembered entries of `v1` after one poll.
    fn known_after(v1: &[u8]) -> Known {
        let known = KnownEntries::default();
        store(
            &Store::temporary().unwrap(),
            &known,
            read_known(v1, SEED, None, read).unwrap(),
            0,
        );
        known.take(&SourceId("s".into()), Some(1), 0).unwrap()
    }

    #[test]
    fn anything_that_could_change_what_is_stored_reads_the_whole_document() {
        let entries = [entry("2", "b"), entry("1", "a")];
        let v1 = feed("N", &entries);
        let known = known_after(&v1);
        let whole = |body: &[u8], seed: u64| {
            let reading = read_known(body, seed, Some(&known), read).unwrap();
            reading.passed.is_empty()
        };
        let same = feed(
            "N",
            &[entry("3", "c"), entries[0].clone(), entries[1].clone()],
        );
        assert!(!whole(&same, SEED));
        // Another seed (origin, URL, zone), another feed title.
        assert!(whole(&same, SEED + 1));
        assert!(whole(&feed("M", &entries), SEED));
        // A new entry repeating a known entry's id, or its link.
        let twice = feed(
            "N",
            &[entry("2", "again"), entries[0].clone(), entries[1].clone()],
        );
        assert!(whole(&twice, SEED));
        let shared_link = entry("3", "c").replace("<link>/3", "<link>/2");
        assert!(whole(&feed("N", &[shared_link, entries[0].clone()]), SEED));
        // A state or a store that changed since.
        let entries_of = KnownEntries::default();
        entries_of
            .lock()
            .insert(key(&SourceId("s".into())), known_after(&v1));
        assert!(entries_of.take(&SourceId("s".into()), Some(2), 0).is_none());
        entries_of
            .lock()
            .insert(key(&SourceId("s".into())), known_after(&v1));
        assert!(entries_of.take(&SourceId("s".into()), Some(1), 1).is_none());
    }

    #[test]
    fn a_story_kept_from_another_source_is_not_the_sources_own() {
        let store = Store::temporary().unwrap();
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let origin = |name: &str| Origin {
            source: SourceId(name.into()),
            name: name.into(),
            url: format!("https://{name}.example/rss"),
            tags: vec![],
        };
        let first = read(&feed("A", &[entry("1", "a")])).unwrap().items;
        let state = SourceState::default();
        store
            .record_fetch(&origin("a"), &first, &state, now)
            .unwrap();
        // The same story (the same link) from a later source, beside one of its own.
        let mut copy = first[0].clone();
        copy.id.0 = "b-1".into();
        let mut own = copy.clone();
        own.id.0 = "b-2".into();
        own.link = Some("https://n.example/b-2".into());
        let items = [copy, own];
        let report = store
            .record_fetch(&origin("b"), &items, &state, now)
            .unwrap();
        assert_eq!(report.duplicates, 1);
        let ids = items.iter().map(|item| item.id.0.as_str());
        assert_eq!(
            store.holds(&SourceId("b".into()), ids).unwrap(),
            [false, true]
        );
    }

    #[test]
    fn entries_without_a_guid_are_passed_over_too() {
        // Their id is their link: one key, not two alike.
        let entries = [entry("2", "b"), entry("1", "a")]
            .map(|e| e.replace("<guid>", "<x>").replace("</guid>", "</x>"));
        let known = known_after(&feed("N", &entries));
        assert_eq!(known.entries.len(), 2);
        let v2 = feed(
            "N",
            &[entry("3", "c"), entries[0].clone(), entries[1].clone()],
        );
        let reading = read_known(&v2, SEED, Some(&known), read).unwrap();
        assert_eq!(ids(&reading.document.items), ["3"]);
        assert_eq!(reading.passed.len(), 2);
    }

    #[test]
    fn a_document_past_the_kept_entries_is_read_whole() {
        let entries: Vec<String> = (0..MAX_ENTRIES)
            .map(|i| entry(&i.to_string(), "x"))
            .collect();
        let known = known_after(&feed("N", &entries));
        // Among the 3000 keys of 1000 entries, a few pairs hash alike in 21 bits:
        // those entries are read on every poll, the others passed over.
        assert!(
            known.entries.len() >= MAX_ENTRIES * 99 / 100,
            "{}",
            known.entries.len()
        );
        let whole = read_known(&feed("N", &entries), SEED, Some(&known), read).unwrap();
        assert_eq!(whole.passed.len(), known.entries.len());
        let one_more = [vec![entry("new", "y")], entries].concat();
        let reading = read_known(&feed("N", &one_more), SEED, Some(&known), read).unwrap();
        assert!(reading.passed.is_empty());
        assert_eq!(reading.document.left_out, 1);
    }

    #[test]
    fn entries_sharing_a_key_are_not_remembered() {
        let twins = [
            entry("2", "b"),
            entry("1", "a").replace("<link>/1", "<link>/2"),
            entry("0", "z"),
        ];
        let known = known_after(&feed("N", &twins));
        assert_eq!(known.entries.len(), 1);
    }

    #[test]
    fn an_entry_is_remembered_in_24_bytes_with_its_exact_date_and_keys() {
        assert_eq!(std::mem::size_of::<(u64, Remembered)>(), 24);
        let body = feed("N", &[entry("1", "a")]);
        let item = read(&body).unwrap().items.remove(0);
        let remembered = Remembered::of(&item);
        assert_eq!(remembered.date(), item.claimed_date());
        assert!(remembered.date().is_some());
        // The guid, and the link (/1) that is not the guid: two keys.
        assert_eq!(remembered.keys().count(), 2);
        let at = |text: &str| Some(text.parse::<DateTime<Utc>>().unwrap());
        let mut dated = item.clone();
        dated.updated = None;
        for date in [
            at("2026-06-01T10:00:00.123456789Z"),
            at("1970-01-01T00:00:00Z"),
            at("1677-09-21T00:12:43.145224194Z"),
            None,
        ] {
            dated.published = date;
            let remembered = Remembered::of(&dated);
            assert!(remembered.keeps_its_date());
            assert_eq!(remembered.date(), date, "{date:?}");
        }
        // A date an i64 of nanoseconds does not hold (nor its first two) is not kept.
        for date in [
            "1500-01-01T00:00:00Z",
            "2300-01-01T00:00:00Z",
            "1677-09-21T00:12:43.145224192Z",
        ] {
            dated.published = at(date);
            assert!(!Remembered::of(&dated).keeps_its_date(), "{date}");
        }
    }

    #[test]
    fn an_entry_of_a_date_that_is_not_kept_is_read_again() {
        let far = entry("2", "b").replace(
            "Mon, 01 Jun 2026 12:00:00 GMT",
            "Sat, 01 Jun 1500 12:00:00 GMT",
        );
        assert_ne!(far, entry("2", "b"));
        let v1 = feed("N", &[far.clone(), entry("1", "a")]);
        let known = known_after(&v1);
        assert_eq!(known.entries.len(), 1);
        let v2 = feed("N", &[entry("3", "c"), far, entry("1", "a")]);
        let reading = read_known(&v2, SEED, Some(&known), read).unwrap();
        assert_eq!(ids(&reading.document.items), ["3", "2"]);
        assert_eq!(reading.passed.len(), 1);
        assert_eq!(
            reading.document.items[1].claimed_date(),
            "1500-06-01T12:00:00Z".parse().ok()
        );
    }

    #[test]
    fn what_follows_the_entries_does_not_become_the_channel_head() {
        // A `<ttl>` after the items is no part of the head the poll hints are read
        // from; cutting every entry must not bring it there.
        let v1 = String::from_utf8(feed("N", &[entry("2", "b"), entry("1", "a")]))
            .unwrap()
            .replace("</channel>", "<ttl>600</ttl></channel>");
        let known = known_after(v1.as_bytes());
        for v2 in [
            v1.replace("<lastBuildDate>2", "<lastBuildDate>3"),
            v1.replacen("</item>\n", "</item><!-- <ttl>5</ttl> -->", 1),
        ] {
            let whole = read(v2.as_bytes()).unwrap();
            let reading = read_known(v2.as_bytes(), SEED, Some(&known), read).unwrap();
            assert_eq!(reading.document.poll_hints, whole.poll_hints, "{v2}");
        }
        // A new entry on top keeps the head as it was: the others are passed over.
        let v2 = v1.replacen("<item>", &format!("{}<item>", entry("3", "c")), 1);
        let reading = read_known(v2.as_bytes(), SEED, Some(&known), read).unwrap();
        assert_eq!(reading.passed.len(), 2);
        assert_eq!(
            reading.document.poll_hints,
            read(v2.as_bytes()).unwrap().poll_hints
        );
    }

    #[test]
    fn entities_share_one_budget_so_an_entry_reads_after_the_ones_before_it() {
        // The parser expands a document's declared entities under one budget: the
        // references of the entries before an entry decide whether its own expand.
        let doctype = format!(
            "<!DOCTYPE rss [<!ENTITY big \"{}\"><!ENTITY e \"expanded\">]>\n<rss ",
            "x".repeat(8000)
        );
        let with_entities = |entries: &[String]| {
            String::from_utf8(feed("N", entries))
                .unwrap()
                .replace("<rss ", &doctype)
        };
        let heavy =
            entry("1", "a").replace("</item>", &format!("<x>{}</x></item>", "&big;".repeat(140)));
        let light = entry("2", "b").replace("<title>Story 2", "<title>Story &e;");
        let v1 = with_entities(std::slice::from_ref(&heavy));
        let known = known_after(v1.as_bytes());
        let v2 = with_entities(&[heavy, light]);
        let whole = read(v2.as_bytes()).unwrap();
        let reading = read_known(v2.as_bytes(), SEED, Some(&known), read).unwrap();
        let title = |items: &[Item], id: &str| {
            let item = items.iter().find(|item| item.id.0 == id).unwrap();
            item.title.clone()
        };
        assert_eq!(
            title(&reading.document.items, "2"),
            title(&whole.items, "2")
        );
    }
}
