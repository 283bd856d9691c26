//! The common write of a poll without a sled transaction: every item of the
//! document is either stored unchanged (or trimmed) or new with none of its keys
//! taken, so nothing is moved, re-identified, de-duplicated against another source or
//! taken over, and the write only adds keys.
//!
//! A sled transaction over several trees pins the log: it writes out the log buffer
//! before it and the one holding its batch marker, each a write and a
//! `sync_file_range` on sled's I/O pool, whatever the transaction's size. perf of a
//! daemon whose every poll added one item put that at a tenth of its CPU. Plain
//! inserts stay in the current log buffer until it fills or sled's periodic flush.
//!
//! What the transaction guaranteed still holds:
//! - the state (validators, body hash) is written last. sled recovers a prefix of its
//!   log, so a state that survives a crash comes with every key written before it;
//!   without it, the next poll fetches and reads the document again;
//! - the keys are written so that any prefix of them is read right: `aliases` and
//!   `links` first (a key whose owner `ids` does not know is ignored), then `ids` (an
//!   identity whose item is missing is stored again, in a transaction), then `items`;
//! - other writers see no half-done write that matters: `record_fetch` holds the
//!   store's writer lock from the reads that classify the items to the last write,
//!   and the orphan sweep takes it for each key it drops.

use chrono::{DateTime, Utc};
use sled::IVec;

use super::StoreError;
use super::codec::{decode_item, encode_item};
use super::keys::{is_tombstone, item_key};
use super::open::Handles;
use super::upsert::{Keyed, UpsertReport, stored_record};
use crate::item::Origin;

/// An item's part in a write without a transaction: unchanged, or new with these
/// `items` key and value.
enum Part {
    Unchanged,
    New([u8; 16], Vec<u8>),
}

/// Stores `items` and then the state, without a transaction, when every item is
/// unchanged (or trimmed) or new with its alias and link free; `None` (nothing
/// written) when some item needs the transaction. The caller holds the writer lock.
pub(super) fn without_transaction(
    h: &Handles,
    origin: &Origin,
    items: &[Keyed],
    state: &[u8],
    source: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<UpsertReport>, StoreError> {
    let mut parts = Vec::with_capacity(items.len());
    for keyed in items {
        match part(h, origin, keyed, now)? {
            Some(part) => parts.push(part),
            None => return Ok(None),
        }
    }
    let mut report = UpsertReport::default();
    for (keyed, part) in items.iter().zip(parts) {
        let Part::New(key, value) = part else {
            report.unchanged += 1;
            continue;
        };
        let identity = keyed.identity.as_slice();
        if let Some(alias) = &keyed.alias {
            h.aliases.insert(alias.as_slice(), identity)?;
        }
        if let Some(link) = &keyed.link {
            h.links.insert(link.as_bytes(), identity)?;
        }
        h.ids.insert(identity, &key)?;
        h.items.insert(key, value)?;
        report.added += 1;
    }
    h.sources.insert(source, state)?;
    Ok(Some(report))
}

/// What `keyed` comes to without a transaction; `None` when it needs one (a changed
/// item, a moved or missing one, a new id whose alias or link a stored item holds).
fn part(
    h: &Handles,
    origin: &Origin,
    keyed: &Keyed,
    now: DateTime<Utc>,
) -> Result<Option<Part>, StoreError> {
    let identity = keyed.identity.as_slice();
    if let Some(old_key) = h.ids.get(identity)? {
        if is_tombstone(&old_key) {
            return Ok(Some(Part::Unchanged));
        }
        let Some(bytes) = h.items.get(&old_key)? else {
            return Ok(None);
        };
        let old = decode_item(&bytes)?;
        let record = stored_record(origin, keyed.item, Some(&old), now);
        return Ok((old == record).then_some(Part::Unchanged));
    }
    if let Some(alias) = &keyed.alias
        && held_by_other(h, h.aliases.get(alias)?, identity)?
    {
        return Ok(None);
    }
    if let Some(link) = &keyed.link
        && held_by_other(h, h.links.get(link.as_bytes())?, identity)?
    {
        return Ok(None);
    }
    let record = stored_record(origin, keyed.item, None, now);
    let key = item_key(record.timestamp, identity);
    Ok(Some(Part::New(key, encode_item(&record)?)))
}

/// Whether an `aliases` or `links` entry names a stored item other than `identity`.
fn held_by_other(h: &Handles, owner: Option<IVec>, identity: &[u8]) -> Result<bool, StoreError> {
    Ok(match owner {
        Some(owner) => owner.as_ref() != identity && h.ids.contains_key(&owner)?,
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, SourceState};
    use crate::store::Sled;
    use crate::store::tests::{self, origin};
    use crate::store::upsert::{keyed_items, transact};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn item(id: &str, link: &str, published: i64) -> Item {
        Item {
            link: Some(link.into()),
            ..tests::item(id, Some(published))
        }
    }

    /// Every entry of the trees a poll writes.
    fn contents(store: &Sled) -> Vec<Vec<(IVec, IVec)>> {
        let h = store.handles().unwrap();
        [&h.items, &h.ids, &h.links, &h.aliases, &h.sources]
            .into_iter()
            .map(|tree| tree.iter().map(Result::unwrap).collect())
            .collect()
    }

    /// One fetch written as before there was a way around the transaction.
    fn in_transaction(
        store: &Sled,
        origin: &Origin,
        items: &[Item],
        now: DateTime<Utc>,
    ) -> UpsertReport {
        let state = rmp_serde::to_vec_named(&SourceState::default()).unwrap();
        let prefix = crate::store::keys::identity_key(&origin.source, "");
        let (keyed, in_document) = keyed_items(&origin.source, items);
        let h = store.handles().unwrap();
        let report = transact(&h, origin, &keyed, &prefix, &state, now).unwrap();
        UpsertReport {
            duplicates: report.duplicates + in_document,
            ..report
        }
    }

    /// The fetch written without a transaction, if it can be (nothing written if not).
    fn plain(
        store: &Sled,
        origin: &Origin,
        items: &[Item],
        now: DateTime<Utc>,
    ) -> Option<UpsertReport> {
        let state = rmp_serde::to_vec_named(&SourceState::default()).unwrap();
        let (keyed, in_document) = keyed_items(&origin.source, items);
        let h = store.handles().unwrap();
        let source = origin.source.0.as_bytes();
        let report = without_transaction(&h, origin, &keyed, &state, source, now).unwrap()?;
        Some(UpsertReport {
            duplicates: report.duplicates + in_document,
            ..report
        })
    }

    #[test]
    fn a_write_without_transaction_stores_what_the_transaction_stores() {
        let (a, b) = (origin("a"), origin("b"));
        let first = vec![
            item("http://a.example/1", "http://a.example/p/1", 1_000),
            item("http://a.example/2", "http://a.example/p/2", 2_000),
        ];
        let mut second = first.clone();
        second.push(item("http://a.example/3", "http://a.example/p/3", 3_000));
        // Each fetch goes the way `record_fetch` sends it, in one store, and through
        // the transaction in the other: the same report, the same trees.
        let fetches: Vec<(&Origin, Vec<Item>, bool)> = vec![
            (&a, first.clone(), true),
            // Two stored, one new.
            (&a, second.clone(), true),
            // Nothing new: only the state is written.
            (&a, second.clone(), true),
            // An edited item is an update.
            (
                &a,
                vec![item("http://a.example/3", "http://a.example/p/3", 3_500)],
                false,
            ),
            // The same story under a new id (https): re-identified.
            (
                &a,
                vec![item("https://a.example/1", "http://a.example/p/1", 1_000)],
                false,
            ),
            // Another source's later copy of a story: a duplicate.
            (
                &b,
                vec![item("http://b.example/9", "http://a.example/p/2", 9_000)],
                false,
            ),
            // A new story of that source, with a link of its own.
            (
                &b,
                vec![item("http://b.example/10", "http://b.example/p/10", 10_000)],
                true,
            ),
        ];
        let (fast, slow) = (Sled::temporary().unwrap(), Sled::temporary().unwrap());
        let now = at(20_000);
        for (origin, items, without) in fetches {
            let before = contents(&fast);
            let taken = plain(&fast, origin, &items, now);
            assert_eq!(taken.is_some(), without, "{items:?}");
            let report = match taken {
                Some(report) => report,
                None => {
                    assert_eq!(contents(&fast), before, "nothing written: {items:?}");
                    let state = SourceState::default();
                    fast.record_fetch(origin, &items, &state, now).unwrap()
                }
            };
            let expected = in_transaction(&slow, origin, &items, now);
            assert_eq!(report, expected, "{items:?}");
            assert_eq!(contents(&fast), contents(&slow), "{items:?}");
        }
    }
}
