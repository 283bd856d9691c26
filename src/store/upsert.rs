//! Storing the items of one fetch: [`Sled::record_fetch`] and the transaction over
//! `items`, `ids`, `links`, `aliases` and `sources` that de-duplicates, moves,
//! re-identifies and takes over stories.

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::collections::{HashMap, HashSet};

use super::codec::{abort, decode_item, encode_item};
use super::keys::{identity_key, is_tombstone, item_key, key_micros};
use super::open::Handles;
use super::{Sled, StoreError, append, timestamp_for};
use crate::item::{Item, Origin, SourceId, SourceState, StoredItem};

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
pub(super) struct Keyed<'a> {
    pub(super) item: &'a Item,
    /// `ids` key.
    pub(super) identity: Vec<u8>,
    /// `links` key: the canonical link.
    pub(super) link: Option<String>,
    /// `aliases` key: source ++ 0 ++ the id without scheme and host.
    pub(super) alias: Option<Vec<u8>>,
}

/// Any key of a story, for finding it twice in one document.
#[derive(Hash, PartialEq, Eq)]
enum Key {
    Id(Vec<u8>),
    Link(String),
    Alias(Vec<u8>),
}

/// The result of one step inside the transaction.
type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Sled {
    /// Stores the items of one successful fetch and the source's new state in one
    /// transaction: either both are stored or neither is, so the validators that make
    /// the next poll a 304 are never saved for items that were lost. A fetch whose
    /// items are all unchanged or new with their keys free is written without one,
    /// its state last (`append.rs`).
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
        let (items, in_document) = keyed_items(&origin.source, items);
        let source = origin.source.0.as_bytes();
        let report = self.write(|h| {
            // Taken once the store is open (a reopen waits for readers, and the
            // orphan sweep reads before it takes this lock).
            let _writer = self.writer();
            let plain = append::without_transaction(h, origin, &items, &state_bytes, source, now)?;
            let report = match plain {
                Some(report) => report,
                None => transact(h, origin, &items, &source_prefix, &state_bytes, now)?,
            };
            Ok(UpsertReport {
                duplicates: report.duplicates + in_document,
                ..report
            })
        })?;
        if report.added + report.updated + report.taken_over > 0 {
            self.signal_change();
        }
        if report.taken_over + report.reidentified > 0 {
            self.note_forgotten();
        }
        Ok(report)
    }
}

/// Stores the items of one fetch and the source's state in one transaction over
/// `items`, `ids`, `links`, `aliases` and `sources` (see [`Sled::record_fetch`]).
pub(super) fn transact(
    h: &Handles,
    origin: &Origin,
    items: &[Keyed],
    source_prefix: &[u8],
    state: &[u8],
    now: DateTime<Utc>,
) -> Result<UpsertReport, StoreError> {
    let trees = (&h.items, &h.ids, &h.links, &h.aliases, &h.sources);
    Ok(trees.transaction(
        |(items_tree, ids_tree, links_tree, aliases_tree, sources)| {
            let upsert = Upsert {
                origin,
                now,
                source_prefix,
                items: items_tree,
                ids: ids_tree,
                links: links_tree,
                aliases: aliases_tree,
            };
            let mut report = UpsertReport::default();
            for keyed in items {
                upsert.item(keyed, &mut report)?;
            }
            sources.insert(origin.source.0.as_bytes(), state)?;
            Ok(report)
        },
    )?)
}

impl Sled {
    /// Of each id, whether `source` holds its item now (live or trimmed by retention):
    /// not when the story was stored from another source instead.
    pub fn holds<'a>(
        &self,
        source: &SourceId,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<bool>, StoreError> {
        let h = self.handles()?;
        ids.into_iter()
            .map(|id| Ok(h.ids.contains_key(identity_key(source, id))?))
            .collect()
    }
}

/// What `item` of `origin` is stored as: first seen when its stored record `old`
/// was (else `now`), and dated by [`timestamp_for`] from that, so a rewrite never
/// moves it. Both backends write exactly this.
pub(super) fn stored_record(
    origin: &Origin,
    item: &Item,
    old: Option<&StoredItem>,
    now: DateTime<Utc>,
) -> StoredItem {
    let first_seen = old.map_or(now, |r| r.first_seen);
    StoredItem {
        origin: origin.clone(),
        item: item.clone(),
        first_seen,
        timestamp: timestamp_for(item, first_seen),
    }
}

/// The items of one document with their keys, less those naming a story the
/// document named before; and how many those were.
///
/// A link that several entries of the document share (under ids of their own: the
/// episodes of a podcast that all link to its page, the posts of a diary day) names
/// none of them: those entries are kept apart, and their link is no key of theirs,
/// neither to find them again under a new id nor to merge them with another source's
/// story.
pub(super) fn keyed_items<'a>(source: &SourceId, items: &'a [Item]) -> (Vec<Keyed<'a>>, usize) {
    let mut ids_per_link: HashMap<String, HashSet<&str>> = HashMap::new();
    for item in items {
        if let Some(link) = item.canonical_link() {
            ids_per_link.entry(link).or_default().insert(&item.id.0);
        }
    }
    let mut seen = HashSet::new();
    let mut in_document = 0;
    let items = items
        .iter()
        .filter_map(|item| {
            let keyed = Keyed {
                identity: identity_key(source, &item.id.0),
                link: item
                    .canonical_link()
                    .filter(|link| ids_per_link[link].len() == 1),
                alias: item
                    .id_without_host()
                    .map(|alias| identity_key(source, &alias)),
                item,
            };
            // One document naming a story twice (one id twice, an http and an
            // https id) keeps its first occurrence.
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
    (items, in_document)
}

/// Where a new item goes: the `items` key it had (`None` if new), and the identity
/// it had before, when it is a stored story under a new id.
struct Located {
    old_key: Option<sled::IVec>,
    previous_identity: Option<sled::IVec>,
}

/// What the canonical link of a new id says.
enum ByLink {
    /// Nothing stored holds it (or this source just took it over).
    Free,
    /// This source holds it under another id: the publisher changed its ids.
    Reidentified(sled::IVec),
    /// Another source has (or had) the story, from no later: it keeps it.
    Duplicate,
}

/// The trees of one `record_fetch` transaction, and what every item is stored with.
struct Upsert<'t> {
    origin: &'t Origin,
    now: DateTime<Utc>,
    /// `ids` key prefix of the source: source ++ 0.
    source_prefix: &'t [u8],
    items: &'t TransactionalTree,
    ids: &'t TransactionalTree,
    links: &'t TransactionalTree,
    aliases: &'t TransactionalTree,
}

impl Upsert<'_> {
    /// Stores one item of the document, counting what it did in `report`.
    fn item(&self, keyed: &Keyed, report: &mut UpsertReport) -> TxResult<()> {
        let Some(located) = self.locate(keyed, report)? else {
            return Ok(());
        };
        if let Some(tombstone) = &located.old_key
            && is_tombstone(tombstone)
        {
            self.keep_trimmed(keyed, tombstone, located.previous_identity.as_ref())?;
            report.unchanged += 1;
            return Ok(());
        }
        self.write_item(keyed, located, report)
    }

    /// Finds the item's place: its id's, or for a new id the stored story it is
    /// (found by its alias, or its link in the same source). `None` when the story
    /// belongs to another source. A source publishing a story first takes it over.
    fn locate(&self, keyed: &Keyed, report: &mut UpsertReport) -> TxResult<Option<Located>> {
        let identity = keyed.identity.as_slice();
        let mut old_key = self.ids.get(identity)?;
        let mut previous_identity = None;
        if old_key.is_none() {
            // A new id. Is it a story already stored under another id?
            if let Some(alias) = &keyed.alias
                && let Some(owner) = self.aliases.get(alias)?
                && owner.as_ref() != identity
                && self.ids.get(&owner)?.is_some()
            {
                previous_identity = Some(owner);
            }
            if previous_identity.is_none() {
                match self.by_link(keyed, report)? {
                    ByLink::Free => {}
                    ByLink::Reidentified(owner) => previous_identity = Some(owner),
                    ByLink::Duplicate => return Ok(None),
                }
            }
            if let Some(previous) = &previous_identity {
                report.reidentified += 1;
                old_key = self.ids.remove(previous)?;
            }
        }
        Ok(Some(Located {
            old_key,
            previous_identity,
        }))
    }

    /// Who holds the canonical link of a new id, if anyone still does; a copy in
    /// another source that is later than this one is taken over.
    fn by_link(&self, keyed: &Keyed, report: &mut UpsertReport) -> TxResult<ByLink> {
        if let Some(link) = &keyed.link
            && let Some(owner) = self.links.get(link.as_bytes())?
            && owner.as_ref() != keyed.identity.as_slice()
            && let Some(owner_key) = self.ids.get(&owner)?
        {
            if owner.starts_with(self.source_prefix) {
                if is_tombstone(&owner_key) || self.same_story(&owner_key, keyed.item)? {
                    return Ok(ByLink::Reidentified(owner));
                }
                // Another entry of the source that links to the same page.
                return Ok(ByLink::Free);
            } else if is_tombstone(&owner_key)
                || key_micros(&owner_key) <= timestamp_for(keyed.item, self.now).timestamp_micros()
            {
                // Another source has (or had) the story, from no later: it keeps it.
                report.duplicates += 1;
                return Ok(ByLink::Duplicate);
            }
            // This source published it first: it takes the story over.
            self.items.remove(owner_key)?;
            self.ids.remove(owner)?;
            report.taken_over += 1;
        }
        Ok(ByLink::Free)
    }

    /// Whether the live item at `key` is `item`'s story under another id: a story whose
    /// publisher changed its id keeps its date (and, undated, its title); a new entry
    /// that links to the page of an earlier one (the next episode, on the show's page)
    /// does not.
    fn same_story(&self, key: &[u8], item: &Item) -> TxResult<bool> {
        let Some(bytes) = self.items.get(key)? else {
            return Ok(false);
        };
        let stored = decode_item(&bytes).map_err(abort)?.item;
        Ok(match (stored.claimed_date(), item.claimed_date()) {
            (None, None) => stored.title == item.title,
            (stored, new) => stored == new,
        })
    }

    /// An item trimmed by retention stays away, under whichever id: a new id takes
    /// the tombstone and the story's other keys.
    fn keep_trimmed(
        &self,
        keyed: &Keyed,
        tombstone: &sled::IVec,
        previous_identity: Option<&sled::IVec>,
    ) -> TxResult<()> {
        let identity = keyed.identity.as_slice();
        if let Some(previous) = previous_identity {
            self.ids.insert(identity, tombstone)?;
            if let Some(alias) = &keyed.alias {
                self.aliases.insert(alias.as_slice(), identity)?;
            }
            if let Some(link) = &keyed.link
                && self.links.get(link.as_bytes())?.as_ref() == Some(previous)
            {
                self.links.insert(link.as_bytes(), identity)?;
            }
        }
        Ok(())
    }

    /// Writes the item where its timestamp puts it, unless it is unchanged; an item
    /// seen before keeps its first-seen time and moves when its date changed.
    fn write_item(
        &self,
        keyed: &Keyed,
        located: Located,
        report: &mut UpsertReport,
    ) -> TxResult<()> {
        let Located {
            old_key,
            previous_identity,
        } = located;
        let identity = keyed.identity.as_slice();
        let old = match &old_key {
            Some(key) => self.items.get(key)?,
            None => None,
        };
        let old_record: Option<StoredItem> = match &old {
            Some(bytes) => Some(decode_item(bytes).map_err(abort)?),
            None => None,
        };
        let record = stored_record(self.origin, keyed.item, old_record.as_ref(), self.now);
        if old_record.as_ref() == Some(&record) {
            report.unchanged += 1;
            return Ok(());
        }
        let key = item_key(record.timestamp, identity);
        let bytes = encode_item(&record).map_err(abort)?;
        if let Some(old_key) = old_key
            && old_key.as_ref() != key.as_slice()
        {
            self.items.remove(old_key)?;
        }
        self.items.insert(key.as_slice(), bytes)?;
        self.ids.insert(identity, key.as_slice())?;
        if let Some(alias) = &keyed.alias {
            self.aliases.insert(alias.as_slice(), identity)?;
        }
        self.claim_link(keyed, previous_identity.as_ref())?;
        if old_record.is_some() {
            report.updated += 1;
        } else {
            report.added += 1;
        }
        Ok(())
    }

    /// Points the item's canonical link at it, unless another live item holds it.
    fn claim_link(&self, keyed: &Keyed, previous_identity: Option<&sled::IVec>) -> TxResult<()> {
        let identity = keyed.identity.as_slice();
        if let Some(link) = &keyed.link {
            let claimed = match self.links.get(link.as_bytes())? {
                None => false,
                Some(owner) => {
                    owner.as_ref() != identity
                        && previous_identity != Some(&owner)
                        && self.ids.get(&owner)?.is_some()
                }
            };
            if !claimed {
                self.links.insert(link.as_bytes(), identity)?;
            }
        }
        Ok(())
    }
}
