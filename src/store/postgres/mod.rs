//! The PostgreSQL backend: several tributary nodes share one database.
//!
//! The tables hold sled's trees with the same keys and values (see [`schema`]), so
//! items sort and render the same way in both backends. What is new:
//! - a change watermark (the sequence `changes`, advanced after every commit that
//!   changed items) that every node polls to re-render, so `/feed.xml` is the same
//!   bytes on every node at the same watermark;
//! - leases on partitions of the sources by host ([`leases`]): a node polls only the
//!   sources of the partitions it holds, and a write for a source whose partition
//!   this node no longer holds at the epoch it took it with is refused (fencing).
//!
//! tokio-postgres with deadpool-postgres, without TLS: the database is reached on a
//! Unix socket or loopback (put a TLS-terminating proxy or an SSH tunnel in between
//! otherwise). Calls block the calling thread, as sled's do; the connections run on
//! a small runtime of their own, so a call works from any thread.
//!
//! Writes take advisory locks on what they could race for (see `upsert.rs`) and are
//! retried on deadlocks and key races, so the de-duplication across sources holds
//! when nodes write at once.

pub mod leases;
pub mod schema;

mod bridge;
mod config_version;
mod forgetting;
mod kv;
mod retention;
mod side;
mod upsert;
mod view;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::NoTls;
use tracing::{info, warn};

use super::backend::{Backend, BoxFuture, Record, SideEntries, SideTable};
use super::codec::decode_item;
use super::decoded::{self, DecodedItems};
use super::{StoreError, Trimmed, UpsertReport};
use crate::item::{Item, Origin, SourceId, SourceState, StoredItem};
use bridge::Bridge;
pub use leases::{Fence, Leases, partition_of};
pub use schema::PARTITIONS;
pub use view::LeaseMap;

/// How to reach the database and how this node takes part.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// A libpq connection string or URL (`postgres://user@host/db`,
    /// `host=/run/postgresql dbname=tributary`).
    pub url: String,
    /// The password, when not in the URL (read from `[store] password_file`).
    pub password: Option<String>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How often the watermark is read to notice other nodes' writes.
    pub watch_every: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            password: None,
            pool_size: 8,
            watch_every: Duration::from_secs(1),
        }
    }
}

/// What the clones of a [`Postgres`] store share.
struct Inner {
    bridge: Bridge,
    pool: Pool,
    /// One connection for the partition leases alone: a renewal must not wait for
    /// a connection behind item writes while its leases run out.
    lease_pool: Pool,
    /// The node's leases, when writes are fenced; `None` for a lone writer
    /// (`migrate-store`, tests).
    fence: std::sync::RwLock<Option<Arc<Fence>>>,
    decoded: DecodedItems,
    changes: watch::Sender<u64>,
    /// The count of forgotten identities as last seen in the database, and this
    /// node's own advances of it (see `forgetting`).
    forgotten: std::sync::atomic::AtomicU64,
    forgotten_here: std::sync::atomic::AtomicU64,
}

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

/// A pool of at most `size` connections to `config`'s database.
fn new_pool(config: &tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|err| StoreError::Pool(err.to_string()))
}

/// A pooled connection.
type Conn = deadpool_postgres::Object;

/// Retries of a write that lost a race with another node's.
const WRITE_ATTEMPTS: usize = 8;

impl Postgres {
    /// Connects, creates or migrates the schema, and starts watching the watermark.
    pub fn connect(options: &PgOptions) -> Result<Postgres, StoreError> {
        let bridge = Bridge::new()?;
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|err: tokio_postgres::Error| StoreError::Pool(err.to_string()))?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        config.application_name("tributary");
        // Fencing (`leases::Fence::check`) needs each statement to see what was
        // committed before it began: read committed, whatever the server's default.
        let given = config.get_options().unwrap_or("").to_string();
        config.options(format!(
            "{given} -c default_transaction_isolation=read\\ committed"
        ));
        let pool = bridge.block(async { new_pool(&config, options.pool_size.max(2)) })?;
        let lease_pool = bridge.block(async { new_pool(&config, 1) })?;
        let applied = bridge.block(async {
            let (mut client, connection) = config.connect(NoTls).await?;
            let task = tokio::spawn(connection);
            let applied = schema::migrate(&mut client).await;
            drop(client);
            let _ = task.await;
            applied
        })?;
        if !applied.is_empty() {
            info!(versions = ?applied, "PostgreSQL schema migrated");
        }
        let store = Postgres {
            inner: Arc::new(Inner {
                bridge,
                pool,
                lease_pool,
                fence: std::sync::RwLock::new(None),
                decoded: DecodedItems::default(),
                changes: watch::Sender::new(0),
                forgotten: std::sync::atomic::AtomicU64::new(0),
                forgotten_here: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        let first = store.watermark()?;
        store.inner.changes.send_replace(first);
        store.watch(options.watch_every);
        Ok(store)
    }

    /// From now on, writes are refused unless this node holds the source's partition
    /// at the epoch `fence` knows.
    pub fn set_fence(&self, fence: Arc<Fence>) {
        *self.inner.fence.write().expect("never poisoned") = Some(fence);
    }

    fn fence(&self) -> Option<Arc<Fence>> {
        self.inner.fence.read().expect("never poisoned").clone()
    }

    /// Runs `fut` to completion on the calling thread.
    pub(crate) fn block<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.inner.bridge.block(fut)
    }

    /// Runs `fut` on the store's own runtime, in the background.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.bridge.spawn(fut);
    }

    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        self.inner.pool.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(err) => StoreError::Postgres(err),
            other => StoreError::Pool(other.to_string()),
        })
    }

    /// The connection of the partition leases (see [`Inner::lease_pool`]).
    pub(crate) async fn lease_conn(&self) -> Result<Conn, StoreError> {
        self.inner.lease_pool.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(err) => StoreError::Postgres(err),
            other => StoreError::Pool(other.to_string()),
        })
    }

    /// Polls the watermark, so writes of other nodes reach this node's subscribers.
    fn watch(&self, every: Duration) {
        let weak = Arc::downgrade(&self.inner);
        self.spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let store = Postgres { inner };
                match store.read_watermark().await {
                    Ok(mark) => store.note_watermark(mark),
                    Err(err) => warn!(error = %err, "cannot read the store's watermark"),
                }
            }
        });
    }

    /// Reads the watermark, and the count of forgotten identities with it.
    async fn read_watermark(&self) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "SELECT c.last_value, c.is_called, f.last_value, f.is_called
                 FROM changes c, forgotten f",
                &[],
            )
            .await?;
        let value = |at: usize| match row.get::<_, bool>(at + 1) {
            true => row.get::<_, i64>(at) as u64,
            false => 0,
        };
        self.note_forgotten_count(value(2));
        Ok(value(0))
    }

    /// Tells the subscribers when the watermark moved.
    fn note_watermark(&self, mark: u64) {
        self.inner.changes.send_if_modified(|current| {
            let moved = mark > *current;
            if moved {
                *current = mark;
            }
            moved
        });
    }

    /// Advances the watermark after a commit that changed items.
    async fn advance(&self, conn: &Conn) -> Result<(), StoreError> {
        let row = conn.query_one("SELECT nextval('changes')", &[]).await?;
        self.note_watermark(row.get::<_, i64>(0) as u64);
        Ok(())
    }

    async fn latest(
        &self,
        n: usize,
        max_scan: usize,
        keep: &mut dyn FnMut(&StoredItem) -> bool,
    ) -> Result<Vec<StoredItem>, StoreError> {
        const PAGE: usize = 256;
        let conn = self.conn().await?;
        let mut latest = Vec::with_capacity(n.min(1024));
        let mut scanned = 0;
        let mut before: Option<Vec<u8>> = None;
        while scanned < max_scan && latest.len() < n {
            let limit = PAGE.min(max_scan - scanned).max(n.min(max_scan - scanned)) as i64;
            let rows = match &before {
                None => {
                    conn.query(
                        "SELECT key, body FROM items ORDER BY key DESC LIMIT $1",
                        &[&limit],
                    )
                    .await?
                }
                Some(key) => {
                    conn.query(
                        "SELECT key, body FROM items WHERE key < $1 ORDER BY key DESC LIMIT $2",
                        &[key, &limit],
                    )
                    .await?
                }
            };
            let exhausted = (rows.len() as i64) < limit;
            for row in rows {
                scanned += 1;
                let key: Vec<u8> = row.get(0);
                let body: &[u8] = row.get(1);
                let (item, cached) = match self.inner.decoded.get(&key, body) {
                    Some(item) => (item, true),
                    None => (decode_item(body)?, false),
                };
                if keep(&item) {
                    if !cached && latest.len() < decoded::CAPACITY {
                        self.inner.decoded.put(&key, body, &item);
                    }
                    latest.push(item);
                    if latest.len() == n {
                        break;
                    }
                }
                before = Some(key);
            }
            if exhausted {
                break;
            }
        }
        Ok(latest)
    }

    async fn state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt("SELECT state FROM sources WHERE id = $1", &[&source.0])
            .await?;
        match row {
            Some(row) => Ok(rmp_serde::from_slice(row.get::<_, &[u8]>(0))?),
            None => Ok(SourceState::default()),
        }
    }

    async fn put_state(&self, source: &SourceId, state: &SourceState) -> Result<(), StoreError> {
        let bytes = rmp_serde::to_vec_named(state)?;
        let fence = self.fence();
        self.retrying(|mut conn| {
            let bytes = &bytes;
            let fence = fence.clone();
            async move {
                let tx = conn.transaction().await?;
                if let Some(fence) = &fence {
                    fence.check(&tx, source).await?;
                }
                put_state_in(&tx, source, bytes).await?;
                tx.commit().await?;
                Ok(())
            }
        })
        .await
    }

    /// Runs a write transaction, again while it fails for a race with another
    /// writer (a serialization failure, a deadlock, a key inserted meanwhile).
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut tries = 0;
        loop {
            let conn = self.conn().await?;
            match attempt(conn).await {
                Err(StoreError::Postgres(err)) if tries + 1 < WRITE_ATTEMPTS && is_race(&err) => {
                    tries += 1;
                    let pause = Duration::from_millis(fastrand::u64(1..=10 * tries as u64));
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }
}

/// Whether a failed write lost a race another attempt may win.
fn is_race(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.code().is_some_and(|code| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
        ]
        .contains(code)
    })
}

async fn put_state_in(
    tx: &deadpool_postgres::Transaction<'_>,
    source: &SourceId,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO sources (id, state) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state",
        )
        .await?;
    tx.execute(&statement, &[&source.0, &bytes]).await?;
    Ok(())
}

impl Backend for Postgres {
    fn latest_matching(
        &self,
        n: usize,
        max_scan: usize,
        keep: &mut dyn FnMut(&StoredItem) -> bool,
    ) -> Result<Vec<StoredItem>, StoreError> {
        self.block(self.latest(n, max_scan, keep))
    }
    fn record_fetch(
        &self,
        origin: &Origin,
        items: &[Item],
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<UpsertReport, StoreError> {
        self.block(self.upsert(origin, items, state, now))
    }
    fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        self.block(self.state(source))
    }
    fn put_source_state(&self, source: &SourceId, state: &SourceState) -> Result<(), StoreError> {
        self.block(self.put_state(source, state))
    }
    fn trim(&self, keep_after: DateTime<Utc>, max_items: usize) -> Result<Trimmed, StoreError> {
        self.block(self.trim_all(keep_after, max_items))
    }
    fn trim_source(&self, source: &SourceId, max_items: usize) -> Result<usize, StoreError> {
        self.block(self.trim_one(source, max_items))
    }
    fn drop_orphan_keys(&self) -> Result<usize, StoreError> {
        self.block(self.sweep_orphans())
    }
    fn last_orphan_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.block(self.last_sweep())
    }
    fn item_counts(&self) -> Result<HashMap<SourceId, u64>, StoreError> {
        self.block(self.counts())
    }
    fn count_items(&self, source: &SourceId) -> Result<u64, StoreError> {
        self.block(self.count_one(source))
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
    fn watermark(&self) -> Result<u64, StoreError> {
        self.block(self.read_watermark())
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        // Every write is committed before it returns.
        Box::pin(async { Ok(()) })
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.block(async {
            let conn = self.conn().await?;
            let row = conn
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }
    fn is_healthy(&self) -> bool {
        self.block(async {
            match self.conn().await {
                Ok(conn) => conn.query_one("SELECT 1", &[]).await.is_ok(),
                Err(_) => false,
            }
        })
    }
    fn export(
        &self,
        sink: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.block(self.export_all(sink))
    }
    fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.block(self.import_all(records))
    }
    fn side_entries(&self, table: SideTable) -> Result<SideEntries, StoreError> {
        self.block(self.side_entries_of(table))
    }
    fn put_side_entry(&self, table: SideTable, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.block(self.put_side(table, key, value))
    }
    fn remove_side_entry(&self, table: SideTable, key: &[u8]) -> Result<bool, StoreError> {
        self.block(self.remove_side(table, key))
    }
    fn forgotten(&self) -> u64 {
        self.forgotten_count()
    }
    fn config_version(&self) -> Result<Option<u64>, StoreError> {
        self.block(self.read_config_version()).map(Some)
    }
    fn bump_config_version(&self) -> Result<Option<u64>, StoreError> {
        self.block(self.advance_config_version()).map(Some)
    }
    fn holds(&self, source: &SourceId, ids: &[&str]) -> Result<Vec<bool>, StoreError> {
        self.holds_ids(source, ids)
    }
    fn lease_map(&self, ttl: Duration) -> Result<Option<LeaseMap>, StoreError> {
        Postgres::lease_map(self, ttl).map(Some)
    }
}
