//! Storing the items of one fetch in PostgreSQL: the same steps as sled's
//! `record_fetch` (de-duplication, moves, new ids, take-overs, tombstones), over the
//! same keys and values, in one transaction with the source's state.
//!
//! Isolation: READ COMMITTED, with transaction-scoped advisory locks taken first, in
//! one order, on the source and on every canonical link of the document, so a write
//! that could see another's half-done (the same source during a hand-over, one story
//! reached through two sources) waits for it and then reads what it committed.
//! SERIALIZABLE gave the same outcome but aborted most concurrent writes of a cold
//! start on false conflicts (index pages shared by unrelated keys).

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use super::kv::{Kv, Table};

use super::super::codec::{decode_item, encode_item};
use super::super::keys::{identity_key, is_tombstone, item_key, key_micros};
use super::super::upsert::{Keyed, keyed_items, stored_record};
use super::super::{StoreError, UpsertReport, timestamp_for};
use super::{Postgres, put_state_in};
use crate::item::{Item, Origin, SourceState, StoredItem};

/// Where a new item goes (see sled's `Located`).
struct Located {
    old_key: Option<Vec<u8>>,
    previous_identity: Option<Vec<u8>>,
}

enum ByLink {
    Free,
    Reidentified(Vec<u8>),
    Duplicate,
}

struct Upsert<'a, 't, 'c> {
    origin: &'a Origin,
    now: DateTime<Utc>,
    source_prefix: &'a [u8],
    kv: Kv<'t, 'c>,
}

impl Postgres {
    pub(super) async fn upsert(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError> {
        let state_bytes = rmp_serde::to_vec_named(state)?;
        let source_prefix = identity_key(&origin.source, "");
        let (keyed, in_document) = keyed_items(&origin.source, items);
        let fence = self.fence();
        let report = self
            .retrying(|mut conn| {
                let (keyed, state_bytes, source_prefix) = (&keyed, &state_bytes, &source_prefix);
                let fence = fence.clone();
                async move {
                    let tx = conn.transaction().await?;
                    lock_keys(&tx, &origin.source.0, keyed).await?;
                    if let Some(fence) = &fence {
                        fence.check(&tx, &origin.source).await?;
                    }
                    let upsert = Upsert {
                        origin,
                        now,
                        source_prefix,
                        kv: Kv::new(&tx),
                    };
                    let mut report = UpsertReport {
                        duplicates: in_document,
                        ..UpsertReport::default()
                    };
                    upsert.prefetch(keyed).await?;
                    for item in keyed {
                        upsert.item(item, &mut report).await?;
                    }
                    tokio::try_join!(
                        upsert.kv.flush(),
                        put_state_in(&tx, &origin.source, state_bytes)
                    )?;
                    tx.commit().await?;
                    // First: it cannot fail, and a forgotten identity must count.
                    if report.taken_over + report.reidentified > 0 {
                        self.note_forgotten(&conn).await;
                    }
                    if report.added + report.updated + report.taken_over > 0 {
                        self.advance(&conn).await?;
                    }
                    Ok(report)
                }
            })
            .await?;
        Ok(report)
    }
}

/// Takes the advisory locks of a document's write: its source and its links, in
/// ascending order so that two writes never wait for each other in a circle.
async fn lock_keys(
    tx: &Transaction<'_>,
    source: &str,
    keyed: &[Keyed<'_>],
) -> Result<(), StoreError> {
    let hash = |bytes: &[u8]| xxhash_rust::xxh3::xxh3_64(bytes) as i64;
    let mut keys: Vec<i64> = keyed
        .iter()
        .filter_map(|k| k.link.as_deref())
        .map(|link| hash(link.as_bytes()))
        .collect();
    keys.push(hash(source.as_bytes()));
    keys.sort_unstable();
    keys.dedup();
    let statement = tx
        .prepare_cached(
            "SELECT count(pg_advisory_xact_lock(k))
             FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k) AS ordered",
        )
        .await?;
    tx.query_one(&statement, &[&keys]).await?;
    Ok(())
}

impl Upsert<'_, '_, '_> {
    /// Reads at once what the steps of a document's items will read: the rows of
    /// its ids, aliases and links, the ids those point to, and the items of all of
    /// them; three rounds of statements however many items the document has.
    async fn prefetch(&self, keyed: &[Keyed<'_>]) -> Result<(), StoreError> {
        let kv = &self.kv;
        let identities: Vec<Vec<u8>> = keyed.iter().map(|k| k.identity.clone()).collect();
        let aliases: Vec<Vec<u8>> = keyed.iter().filter_map(|k| k.alias.clone()).collect();
        let links: Vec<Vec<u8>> = keyed
            .iter()
            .filter_map(|k| k.link.as_ref().map(|link| link.as_bytes().to_vec()))
            .collect();
        tokio::try_join!(
            kv.prefetch(Table::Ids, identities.iter().cloned()),
            kv.prefetch(Table::Aliases, aliases.iter().cloned()),
            kv.prefetch(Table::Links, links.iter().cloned()),
        )?;
        let mut owners = kv.cached(Table::Aliases, &aliases);
        owners.extend(kv.cached(Table::Links, &links));
        kv.prefetch(Table::Ids, owners.iter().cloned()).await?;
        let mut keys = kv.cached(Table::Ids, &identities);
        keys.extend(kv.cached(Table::Ids, &owners));
        keys.retain(|key| !is_tombstone(key));
        kv.prefetch(Table::Items, keys).await
    }

    async fn item(&self, keyed: &Keyed<'_>, report: &mut UpsertReport) -> Result<(), StoreError> {
        let Some(located) = self.locate(keyed, report).await? else {
            return Ok(());
        };
        if let Some(tombstone) = &located.old_key
            && is_tombstone(tombstone)
        {
            self.keep_trimmed(keyed, tombstone, located.previous_identity.as_deref())
                .await?;
            report.unchanged += 1;
            return Ok(());
        }
        self.write_item(keyed, located, report).await
    }

    async fn locate(
        &self,
        keyed: &Keyed<'_>,
        report: &mut UpsertReport,
    ) -> Result<Option<Located>, StoreError> {
        let identity = keyed.identity.as_slice();
        let mut old_key = self.kv.get(Table::Ids, identity).await?;
        let mut previous_identity = None;
        if old_key.is_none() {
            if let Some(alias) = &keyed.alias
                && let Some(owner) = self.kv.get(Table::Aliases, alias).await?
                && owner.as_slice() != identity
                && self.kv.get(Table::Ids, &owner).await?.is_some()
            {
                previous_identity = Some(owner);
            }
            if previous_identity.is_none() {
                match self.by_link(keyed, report).await? {
                    ByLink::Free => {}
                    ByLink::Reidentified(owner) => previous_identity = Some(owner),
                    ByLink::Duplicate => return Ok(None),
                }
            }
            if let Some(previous) = &previous_identity {
                report.reidentified += 1;
                old_key = self.kv.remove(Table::Ids, previous).await?;
            }
        }
        Ok(Some(Located {
            old_key,
            previous_identity,
        }))
    }

    async fn by_link(
        &self,
        keyed: &Keyed<'_>,
        report: &mut UpsertReport,
    ) -> Result<ByLink, StoreError> {
        if let Some(link) = &keyed.link
            && let Some(owner) = self.kv.get(Table::Links, link.as_bytes()).await?
            && owner.as_slice() != keyed.identity.as_slice()
            && let Some(owner_key) = self.kv.get(Table::Ids, &owner).await?
        {
            if owner.starts_with(self.source_prefix) {
                if is_tombstone(&owner_key) || self.same_story(&owner_key, keyed.item).await? {
                    return Ok(ByLink::Reidentified(owner));
                }
                return Ok(ByLink::Free);
            } else if is_tombstone(&owner_key)
                || key_micros(&owner_key) <= timestamp_for(keyed.item, self.now).timestamp_micros()
            {
                report.duplicates += 1;
                return Ok(ByLink::Duplicate);
            }
            self.kv.remove(Table::Items, &owner_key).await?;
            self.kv.remove(Table::Ids, &owner).await?;
            report.taken_over += 1;
        }
        Ok(ByLink::Free)
    }

    async fn same_story(&self, key: &[u8], item: &Item) -> Result<bool, StoreError> {
        let Some(bytes) = self.kv.get(Table::Items, key).await? else {
            return Ok(false);
        };
        let stored = decode_item(&bytes)?.item;
        Ok(match (stored.claimed_date(), item.claimed_date()) {
            (None, None) => stored.title == item.title,
            (stored, new) => stored == new,
        })
    }

    async fn keep_trimmed(
        &self,
        keyed: &Keyed<'_>,
        tombstone: &[u8],
        previous_identity: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let identity = keyed.identity.as_slice();
        if let Some(previous) = previous_identity {
            self.kv
                .put_id(identity, &self.origin.source.0, tombstone)
                .await?;
            if let Some(alias) = &keyed.alias {
                self.kv.put_owner(Table::Aliases, alias, identity).await?;
            }
            if let Some(link) = &keyed.link
                && self.kv.get(Table::Links, link.as_bytes()).await?.as_deref() == Some(previous)
            {
                self.kv
                    .put_owner(Table::Links, link.as_bytes(), identity)
                    .await?;
            }
        }
        Ok(())
    }

    async fn write_item(
        &self,
        keyed: &Keyed<'_>,
        located: Located,
        report: &mut UpsertReport,
    ) -> Result<(), StoreError> {
        let Located {
            old_key,
            previous_identity,
        } = located;
        let identity = keyed.identity.as_slice();
        let old = match &old_key {
            Some(key) => self.kv.get(Table::Items, key).await?,
            None => None,
        };
        let old_record: Option<StoredItem> = match &old {
            Some(bytes) => Some(decode_item(bytes)?),
            None => None,
        };
        let record = stored_record(self.origin, keyed.item, old_record.as_ref(), self.now);
        if old_record.as_ref() == Some(&record) {
            report.unchanged += 1;
            return Ok(());
        }
        let key = item_key(record.timestamp, identity);
        let bytes = encode_item(&record)?;
        if let Some(old_key) = &old_key
            && old_key.as_slice() != key.as_slice()
        {
            self.kv.remove(Table::Items, old_key).await?;
        }
        let source = self.origin.source.0.as_str();
        self.kv.put_item(&key, source, &bytes).await?;
        self.kv.put_id(identity, source, &key).await?;
        if let Some(alias) = &keyed.alias {
            self.kv.put_owner(Table::Aliases, alias, identity).await?;
        }
        self.claim_link(keyed, previous_identity.as_deref()).await?;
        if old_record.is_some() {
            report.updated += 1;
        } else {
            report.added += 1;
        }
        Ok(())
    }

    async fn claim_link(
        &self,
        keyed: &Keyed<'_>,
        previous_identity: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let identity = keyed.identity.as_slice();
        if let Some(link) = &keyed.link {
            let claimed = match self.kv.get(Table::Links, link.as_bytes()).await? {
                None => false,
                Some(owner) => {
                    owner.as_slice() != identity
                        && previous_identity != Some(owner.as_slice())
                        && self.kv.get(Table::Ids, &owner).await?.is_some()
                }
            };
            if !claimed {
                self.kv
                    .put_owner(Table::Links, link.as_bytes(), identity)
                    .await?;
            }
        }
        Ok(())
    }
}
