//! The narrow interface every store backend implements ([`Backend`]), and [`Store`],
//! the handle the rest of the daemon holds: the embedded sled store ([`Sled`], the
//! default) or PostgreSQL ([`Postgres`](super::postgres::Postgres)), shared by
//! several nodes. Both key items the same way ([`item_key`](super::item_key)), so
//! publish and render read either the same way.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

use super::{Sled, StoreError, Trimmed, UpsertReport};
use crate::item::{Item, Origin, SourceId, SourceState, StoredItem};

/// A future a backend returns where the work is asynchronous (flushing).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a store does for the daemon. Calls block (sled reads its files, PostgreSQL
/// waits for the server); the daemon makes them from blocking tasks where they may
/// take long, as it always has.
pub trait Backend: Send + Sync + 'static {
    /// Up to `n` of the newest items `keep` accepts, newest first, looking at no more
    /// than `max_scan`.
    fn latest_matching(
        &self,
        n: usize,
        max_scan: usize,
        keep: &mut dyn FnMut(&StoredItem) -> bool,
    ) -> Result<Vec<StoredItem>, StoreError>;
    /// Stores one fetch's items and the source's new state together: idempotent,
    /// de-duplicating, and respecting tombstones (see [`Sled::record_fetch`]).
    fn record_fetch(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError>;
    fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError>;
    fn put_source_state(&self, source: &SourceId, state: &SourceState) -> Result<(), StoreError>;
    fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<Trimmed, StoreError>;
    fn trim_source(&self, source: &SourceId, max_items: usize) -> Result<usize, StoreError>;
    fn drop_orphan_keys(&self) -> Result<usize, StoreError>;
    fn last_orphan_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn item_counts(&self) -> Result<HashMap<SourceId, u64>, StoreError>;
    fn count_items(&self, source: &SourceId) -> Result<u64, StoreError>;
    /// A receiver whose value changes whenever stored items change (here or, for a
    /// shared store, on another node), for re-rendering.
    fn subscribe(&self) -> watch::Receiver<u64>;
    /// A number that grows whenever stored items change: nodes that read the same
    /// watermark render the same documents.
    fn watermark(&self) -> Result<u64, StoreError>;
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn size_on_disk(&self) -> Result<u64, StoreError>;
    fn is_healthy(&self) -> bool;
    /// Every record, for `migrate-store`: items, then the identities (live or
    /// tombstones), links, aliases and source states, in key order.
    fn export(
        &self,
        sink: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Writes records as [`Backend::export`] gives them, unchanged (keys included).
    fn import(&self, records: Vec<Record>) -> Result<(), StoreError>;
    /// Every entry of a side table (small records of other rooms, such as the WebSub
    /// subscriptions), in key order.
    fn side_entries(&self, table: SideTable) -> Result<SideEntries, StoreError>;
    /// Stores `value` under `key` in a side table, durably before it returns.
    fn put_side_entry(&self, table: SideTable, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key` from a side table, durably; whether it was there.
    fn remove_side_entry(&self, table: SideTable, key: &[u8]) -> Result<bool, StoreError>;
    /// A count that changes whenever the store forgets an identity (see
    /// [`Sled::forgotten`]): the scheduler passes over known entries only while it
    /// stands still. By default it changes at every call, so nothing is passed over.
    fn forgotten(&self) -> u64 {
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
    /// Of each id, whether `source` holds its item now (see [`Sled::holds`]). By
    /// default none: such entries are read again at every poll, which is always right.
    fn holds(&self, _source: &SourceId, ids: &[&str]) -> Result<Vec<bool>, StoreError> {
        Ok(vec![false; ids.len()])
    }
    /// The version of the config of a store several nodes share, advanced by
    /// [`Backend::bump_config_version`]; `None` for a store of one node.
    fn config_version(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// Tells the other nodes sharing the store that this one reloaded its config;
    /// the new version (`None` for a store of one node).
    fn bump_config_version(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// Which node holds each partition of the sources, and the nodes seen within
    /// `ttl`, for a store several nodes share; `None` for a store of one node.
    fn lease_map(
        &self,
        _ttl: std::time::Duration,
    ) -> Result<Option<super::postgres::LeaseMap>, StoreError> {
        Ok(None)
    }
}

/// The entries of a side table: (key, value) pairs, in key order.
pub type SideEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// The side tables: small records other rooms keep in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideTable {
    /// The built-in WebSub hub's subscriptions (`hub.rs`).
    HubSubscriptions,
    /// The subscriptions to the sources' hubs (`websub.rs`).
    Websub,
}

impl SideTable {
    /// Every side table, for copying a whole store.
    pub const ALL: [SideTable; 2] = [SideTable::HubSubscriptions, SideTable::Websub];

    /// The sled tree's name, and the `tab` column's value in PostgreSQL.
    pub fn name(self) -> &'static str {
        match self {
            SideTable::HubSubscriptions => "hub_subscriptions",
            SideTable::Websub => "websub",
        }
    }
}

/// One record of a store, as `migrate-store` copies it: the same bytes in both
/// backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// `items` key and encoded item.
    Item {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// An identity (source ++ 0 ++ item id) and its item key or tombstone.
    Id {
        identity: Vec<u8>,
        value: Vec<u8>,
    },
    Link {
        link: Vec<u8>,
        owner: Vec<u8>,
    },
    Alias {
        alias: Vec<u8>,
        owner: Vec<u8>,
    },
    Source {
        id: Vec<u8>,
        state: Vec<u8>,
    },
    /// A value of the store's own (the last orphan sweep).
    Meta {
        name: Vec<u8>,
        value: Vec<u8>,
    },
}

/// The store the daemon holds. Cheap to clone; all clones share one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl<B: Backend> From<B> for Store {
    fn from(backend: B) -> Store {
        Store {
            backend: Arc::new(backend),
        }
    }
}

impl Store {
    /// Opens (or creates) the embedded store in directory `path`, default cache.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Sled::open(path)?.into())
    }

    /// Opens (or creates) the embedded store with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        Ok(Sled::open_with_cache(path, cache_bytes)?.into())
    }

    /// An embedded store in memory and a temporary file, for tests and `inspect`.
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Sled::temporary()?.into())
    }

    /// The backend, for what only the interface offers (export, import, watermark).
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Forgets a source's failures (`tributary reset`): its failure streak and last
    /// error, its backoff or Retry-After (the next-poll time) and a 410 Gone mark, so
    /// it is due at once. Validators, title and learned interval stay. Returns the
    /// state it had.
    pub fn reset_source(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        let before = self.source_state(source)?;
        let after = SourceState {
            consecutive_failures: 0,
            last_error: None,
            gone: None,
            next_poll: None,
            ..before.clone()
        };
        self.put_source_state(source, &after)?;
        Ok(before)
    }

    /// See [`Backend::forgotten`].
    pub fn forgotten(&self) -> u64 {
        self.backend.forgotten()
    }

    /// See [`Backend::holds`].
    pub fn holds<'a>(
        &self,
        source: &SourceId,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<bool>, StoreError> {
        let ids: Vec<&str> = ids.into_iter().collect();
        self.backend.holds(source, &ids)
    }

    /// The newest `n` items of all sources, newest first.
    pub fn latest(&self, n: usize) -> Result<Vec<StoredItem>, StoreError> {
        self.backend.latest_matching(n, n, &mut |_| true)
    }

    /// Up to `n` of the newest items for which `keep` is true, newest first, looking at
    /// no more than `max_scan` items.
    pub fn latest_where(
        &self,
        n: usize,
        max_scan: usize,
        mut keep: impl FnMut(&StoredItem) -> bool,
    ) -> Result<Vec<StoredItem>, StoreError> {
        self.backend.latest_matching(n, max_scan, &mut keep)
    }

    pub fn record_fetch(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError> {
        self.backend.record_fetch(origin, items, state, now)
    }

    pub fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        self.backend.source_state(source)
    }

    pub fn put_source_state(
        &self,
        source: &SourceId,
        state: &SourceState,
    ) -> Result<(), StoreError> {
        self.backend.put_source_state(source, state)
    }

    pub fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<Trimmed, StoreError> {
        self.backend.trim(keep_after, max_items)
    }

    pub fn trim_source(&self, source: &SourceId, max_items: usize) -> Result<usize, StoreError> {
        self.backend.trim_source(source, max_items)
    }

    pub fn drop_orphan_keys(&self) -> Result<usize, StoreError> {
        self.backend.drop_orphan_keys()
    }

    pub fn last_orphan_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.backend.last_orphan_sweep()
    }

    pub fn item_counts(&self) -> Result<HashMap<SourceId, u64>, StoreError> {
        self.backend.item_counts()
    }

    pub fn count_items(&self, source: &SourceId) -> Result<u64, StoreError> {
        self.backend.count_items(source)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.backend.subscribe()
    }

    pub fn watermark(&self) -> Result<u64, StoreError> {
        self.backend.watermark()
    }

    pub async fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush().await
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.backend.size_on_disk()
    }

    pub fn is_healthy(&self) -> bool {
        self.backend.is_healthy()
    }
}

impl Backend for Sled {
    fn side_entries(&self, table: SideTable) -> Result<SideEntries, StoreError> {
        Sled::side_entries(self, table.name())
    }
    fn put_side_entry(&self, table: SideTable, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        Sled::put_side_entry(self, table.name(), key, value)
    }
    fn remove_side_entry(&self, table: SideTable, key: &[u8]) -> Result<bool, StoreError> {
        Sled::remove_side_entry(self, table.name(), key)
    }
    fn forgotten(&self) -> u64 {
        Sled::forgotten(self)
    }
    fn holds(&self, source: &SourceId, ids: &[&str]) -> Result<Vec<bool>, StoreError> {
        Sled::holds(self, source, ids.iter().copied())
    }
    fn latest_matching(
        &self,
        n: usize,
        max_scan: usize,
        keep: &mut dyn FnMut(&StoredItem) -> bool,
    ) -> Result<Vec<StoredItem>, StoreError> {
        Sled::latest_where(self, n, max_scan, keep)
    }
    fn record_fetch(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError> {
        Sled::record_fetch(self, origin, items, state, now)
    }
    fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        Sled::source_state(self, source)
    }
    fn put_source_state(&self, source: &SourceId, state: &SourceState) -> Result<(), StoreError> {
        Sled::put_source_state(self, source, state)
    }
    fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<Trimmed, StoreError> {
        Sled::trim(self, keep_after, max_items)
    }
    fn trim_source(&self, source: &SourceId, max_items: usize) -> Result<usize, StoreError> {
        Sled::trim_source(self, source, max_items)
    }
    fn drop_orphan_keys(&self) -> Result<usize, StoreError> {
        Sled::drop_orphan_keys(self)
    }
    fn last_orphan_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Sled::last_orphan_sweep(self)
    }
    fn item_counts(&self) -> Result<HashMap<SourceId, u64>, StoreError> {
        Sled::item_counts(self)
    }
    fn count_items(&self, source: &SourceId) -> Result<u64, StoreError> {
        Sled::count_items(self, source)
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        Sled::subscribe(self)
    }
    fn watermark(&self) -> Result<u64, StoreError> {
        Ok(*Sled::subscribe(self).borrow())
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(Sled::flush(self))
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Sled::size_on_disk(self)
    }
    fn is_healthy(&self) -> bool {
        Sled::is_healthy(self)
    }
    fn export(
        &self,
        sink: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        super::copy::export_sled(self, sink)
    }
    fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        super::copy::import_sled(self, records)
    }
}
