//! Opening the database, and reopening it after a failed write.
//!
//! A failed write (disk full, an I/O error) poisons a sled database: every later write
//! fails with the same error, while reads go on working. So the store remembers the
//! failure, and the next write (at most every [`REOPEN_EVERY`]) closes and reopens
//! the database, which writes again once the disk has room; meanwhile readers keep
//! serving what is stored.

use sled::Tree;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::watch;
use tracing::{info, warn};

use super::decoded::DecodedItems;
use super::{DEFAULT_CACHE_BYTES, Sled, StoreError};

/// 5 seconds between attempts to reopen a store whose writes failed: a full disk
/// costs one reopen per attempt, not one per source polled.
pub const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// 5 seconds between sled's own flushes (its default is half a second). What readers
/// are shown is flushed anyway before it is rendered (`publish`), and at shutdown; in
/// between, a poll's items are written before its validators (`append.rs`), so a crash
/// loses at most these seconds of polling, fetched again on the next poll. Flushing
/// every half second cost a tenth of the daemon's CPU in a cycle of 304s: every poll
/// rewrites its source's state, and each flush wrote and fsynced those few bytes.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// 5 seconds for reads in progress to finish before a reopen; they take milliseconds.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the clones of a [`Sled`] share.
pub(super) struct Shared {
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
    pub(super) decoded: DecodedItems,
    changes: watch::Sender<u64>,
    /// Counts the writes that made `ids` forget an identity (a take-over, a new id,
    /// an expired tombstone); see [`Store::forgotten`].
    forgotten: std::sync::atomic::AtomicU64,
    /// Held by each poll's write and by the orphan sweep for each key it drops: a
    /// write without a transaction (`append.rs`) reads, then writes several keys.
    writer: Mutex<()>,
}

/// One open sled database and its trees.
pub(super) struct Handles {
    pub(super) db: sled::Db,
    pub(super) items: Tree,
    pub(super) ids: Tree,
    pub(super) links: Tree,
    pub(super) aliases: Tree,
    pub(super) sources: Tree,
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

impl Sled {
    /// Opens (or creates) the store in directory `path`, with the default cache.
    pub fn open(path: &Path) -> Result<Sled, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store in directory `path` with a page cache of
    /// `cache_bytes` (sled's cache is a target, not a hard bound on memory).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<Sled, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(FLUSH_EVERY.as_millis() as u64));
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
    pub fn temporary() -> Result<Sled, StoreError> {
        Self::from_config(
            sled::Config::new()
                .temporary(true)
                .cache_capacity(DEFAULT_CACHE_BYTES),
            false,
        )
    }

    fn from_config(config: sled::Config, reopenable: bool) -> Result<Sled, StoreError> {
        let handles = Handles::open(&config)?;
        Ok(Sled {
            shared: Arc::new(Shared {
                handles: RwLock::new(Some(Arc::new(handles))),
                config: reopenable.then_some(config),
                broken: AtomicBool::new(false),
                last_reopen: Mutex::new(None),
                decoded: DecodedItems::default(),
                changes: watch::Sender::new(0),
                forgotten: std::sync::atomic::AtomicU64::new(0),
                writer: Mutex::new(()),
            }),
        })
    }

    /// The writer lock (see `append.rs`).
    pub(super) fn writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.shared
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open database, for one operation.
    pub(super) fn handles(&self) -> Result<Arc<Handles>, StoreError> {
        self.shared
            .handles
            .read()
            .expect("the store's handles are never poisoned")
            .clone()
            .ok_or(StoreError::Reopening)
    }

    /// Runs one write: first reopens the database if an earlier write broke it, then
    /// remembers whether this one broke it.
    pub(super) fn write<T>(
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
    pub(super) fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
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
    pub(super) fn signal_change(&self) {
        self.shared
            .changes
            .send_modify(|generation| *generation += 1);
    }

    /// A count that changes whenever `ids` forgot an identity: another source took a
    /// story over, a publisher's new id took a stored story, or a tombstone expired.
    /// The scheduler passes over the entries a source sent before, unread, only
    /// while it has not changed: their items then are where the last poll left them.
    pub fn forgotten(&self) -> u64 {
        self.shared
            .forgotten
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub(super) fn note_forgotten(&self) {
        self.shared
            .forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// A receiver whose value changes whenever stored items change, for re-rendering.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}
