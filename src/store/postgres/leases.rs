//! Leases on partitions of the sources by host, so that several nodes share the
//! polling and one node polls every source of a host (per-host limits, Retry-After
//! and connection reuse then hold across the cluster).
//!
//! A source's partition is a hash of its host's registrable domain modulo
//! [`PARTITIONS`]. Each node renews its row in `nodes` and its leases every third of
//! the lease TTL, takes free or expired partitions (`FOR UPDATE SKIP LOCKED`) up to
//! its fair share of the live nodes (⌈partitions / live nodes⌉), gives back what is
//! over it, and releases all at shutdown. Taking a partition raises its epoch. A node
//! killed without releasing loses its partitions when their TTL runs out; another
//! node then takes them.
//!
//! Fencing: every write checks, in its own transaction, that this node still holds
//! the source's partition at the epoch it took it with and that the lease has not
//! expired ([`Fence::check`]); a node that stalled past its TTL cannot overwrite
//! what the new owner wrote.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

use super::super::StoreError;
use super::Postgres;
pub use super::schema::PARTITIONS;
use crate::item::SourceId;

/// The partition of a source, from its URL: a hash of its host's registrable domain
/// (approximated without the public suffix list as the last two labels, or three
/// when the second-level one is short and the top one a country code, as in
/// `bbc.co.uk`); an IP address is its own domain.
pub fn partition_of(url: &str, partitions: u32) -> u32 {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let domain = registrable_domain(&host);
    (xxhash_rust::xxh3::xxh3_64(domain.as_bytes()) % u64::from(partitions.max(1))) as u32
}

fn registrable_domain(host: &str) -> &str {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return host;
    }
    let host = host.trim_end_matches('.');
    let labels: Vec<&str> = host.rsplit('.').collect();
    let keep = match labels.as_slice() {
        [top, second, _, ..] if top.len() == 2 && second.len() <= 3 => 3,
        _ => 2,
    };
    if labels.len() <= keep {
        return host;
    }
    let cut: usize = labels[..keep].iter().map(|l| l.len() + 1).sum::<usize>() - 1;
    &host[host.len() - cut..]
}

/// What this node holds: partition -> the epoch it took it at.
pub struct Fence {
    node: String,
    partitions: u32,
    held: RwLock<HashMap<u32, i64>>,
}

impl Fence {
    pub fn new(node: impl Into<String>) -> Fence {
        Fence {
            node: node.into(),
            partitions: PARTITIONS,
            held: RwLock::new(HashMap::new()),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The partitions held now.
    pub fn held(&self) -> BTreeSet<u32> {
        self.held
            .read()
            .expect("never poisoned")
            .keys()
            .copied()
            .collect()
    }

    /// The epoch this node holds `part` at, if it does.
    pub fn epoch(&self, part: u32) -> Option<i64> {
        self.held
            .read()
            .expect("never poisoned")
            .get(&part)
            .copied()
    }

    pub fn partition(&self, source: &SourceId) -> u32 {
        partition_of(&source.0, self.partitions)
    }

    /// Refuses the write in `tx` unless this node holds the partition of `source` at
    /// its epoch, unexpired; holds the lease row until the write commits.
    pub async fn check(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        source: &SourceId,
    ) -> Result<(), StoreError> {
        let part = self.partition(source);
        let Some(epoch) = self.epoch(part) else {
            return Err(StoreError::Fenced { part });
        };
        let statement = tx
            .prepare_cached(
                "SELECT 1 FROM leases WHERE part = $1 AND owner = $2 AND epoch = $3
                 AND expires_at > now() FOR SHARE",
            )
            .await?;
        let held = tx
            .query_opt(&statement, &[&(part as i32), &self.node, &epoch])
            .await?;
        match held {
            Some(_) => Ok(()),
            None => Err(StoreError::Fenced { part }),
        }
    }

    fn replace(&self, held: HashMap<u32, i64>) {
        *self.held.write().expect("never poisoned") = held;
    }
}

/// This node's leases, renewed in the background (see the module's documentation).
#[derive(Clone)]
pub struct Leases {
    store: Postgres,
    fence: Arc<Fence>,
    ttl: Duration,
    owned: watch::Sender<BTreeSet<u32>>,
    /// Live nodes seen at the last renewal, this one included.
    live: Arc<std::sync::atomic::AtomicUsize>,
}

/// What one renewal found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renewal {
    pub held: BTreeSet<u32>,
    pub taken: Vec<u32>,
    pub released: Vec<u32>,
    pub live_nodes: usize,
}

impl Leases {
    /// Fences the store's writes with this node's leases; nothing is held until the
    /// first [`Leases::renew`].
    pub fn new(store: &Postgres, node: &str, ttl: Duration) -> Leases {
        let fence = Arc::new(Fence::new(node));
        store.set_fence(fence.clone());
        Leases {
            store: store.clone(),
            fence,
            ttl,
            owned: watch::Sender::new(BTreeSet::new()),
            live: Arc::new(std::sync::atomic::AtomicUsize::new(1)),
        }
    }

    pub fn fence(&self) -> &Arc<Fence> {
        &self.fence
    }

    /// The partitions held, changing with every renewal that takes or gives some.
    pub fn owned(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.owned.subscribe()
    }

    /// Live nodes at the last renewal.
    pub fn live_nodes(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes this node alive without taking anything, so nodes starting together
    /// count each other before they take their shares; blocks.
    pub fn announce(&self) -> Result<(), StoreError> {
        let ttl = pg_interval(self.ttl);
        self.store.block(async {
            let mut conn = self.store.conn().await?;
            let tx = conn.transaction().await?;
            live_nodes(&tx, &self.fence.node, &ttl).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The time between two renewals: a third of the TTL.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Renews, rebalances and publishes what is held; blocks.
    pub fn renew(&self) -> Result<Renewal, StoreError> {
        self.store.block(self.renew_async())
    }

    async fn renew_async(&self) -> Result<Renewal, StoreError> {
        let ttl = pg_interval(self.ttl);
        let node = self.fence.node.as_str();
        let mut conn = self.store.conn().await?;
        let tx = conn.transaction().await?;
        let live = live_nodes(&tx, node, &ttl).await?;
        let share = (self.fence.partitions as usize).div_ceil(live);
        let rows = tx
            .query(
                "UPDATE leases SET expires_at = now() + $2::text::interval
                 WHERE owner = $1 RETURNING part, epoch",
                &[&node, &ttl],
            )
            .await?;
        let mut held: HashMap<u32, i64> = rows
            .iter()
            .map(|row| (row.get::<_, i32>(0) as u32, row.get::<_, i64>(1)))
            .collect();
        let released = self.give_back(&tx, &mut held, share).await?;
        let mut taken = Vec::new();
        if held.len() < share {
            taken = take(&tx, node, &ttl, share - held.len()).await?;
            held.extend(taken.iter().copied());
        }
        tx.commit().await?;
        self.fence.replace(held.clone());
        self.live.store(live, std::sync::atomic::Ordering::Relaxed);
        let held: BTreeSet<u32> = held.into_keys().collect();
        self.owned.send_if_modified(|owned| {
            let changed = *owned != held;
            owned.clone_from(&held);
            changed
        });
        let mut taken: Vec<u32> = taken.into_iter().map(|(part, _)| part).collect();
        taken.sort_unstable();
        Ok(Renewal {
            held,
            taken,
            released,
            live_nodes: live,
        })
    }

    /// Gives back the partitions held beyond `share` (the highest), fencing them
    /// first; returns them.
    async fn give_back(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        held: &mut HashMap<u32, i64>,
        share: usize,
    ) -> Result<Vec<u32>, StoreError> {
        if held.len() <= share {
            return Ok(Vec::new());
        }
        let mut parts: Vec<u32> = held.keys().copied().collect();
        parts.sort_unstable();
        let released = parts.split_off(share);
        held.retain(|part, _| !released.contains(part));
        // No write of this node may pass the check for these from now on.
        self.fence.replace(held.clone());
        let ids: Vec<i32> = released.iter().map(|&p| p as i32).collect();
        tx.execute(
            "UPDATE leases SET owner = NULL, expires_at = '-infinity'
             WHERE owner = $1 AND part = ANY($2)",
            &[&self.fence.node, &ids],
        )
        .await?;
        Ok(released)
    }

    /// Gives back every partition and leaves the cluster; for shutdown.
    pub fn release(&self) -> Result<(), StoreError> {
        self.fence.replace(HashMap::new());
        self.owned.send_replace(BTreeSet::new());
        let node = self.fence.node.clone();
        self.store.block(async {
            let conn = self.store.conn().await?;
            conn.execute(
                "UPDATE leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1",
                &[&node],
            )
            .await?;
            conn.execute("DELETE FROM nodes WHERE id = $1", &[&node])
                .await?;
            Ok(())
        })
    }

    /// Renews every third of the TTL until `stop` is cancelled, then releases. A node
    /// that cannot renew for a whole TTL lets go of what it held (the database has
    /// already given it away).
    pub async fn run(self, stop: tokio_util::sync::CancellationToken) {
        let every = self.renew_every();
        let mut last_ok = std::time::Instant::now();
        loop {
            let leases = self.clone();
            match tokio::task::spawn_blocking(move || leases.renew()).await {
                Ok(Ok(renewal)) => {
                    last_ok = std::time::Instant::now();
                    if !renewal.taken.is_empty() || !renewal.released.is_empty() {
                        info!(
                            held = renewal.held.len(),
                            taken = renewal.taken.len(),
                            released = renewal.released.len(),
                            live_nodes = renewal.live_nodes,
                            "partition leases changed"
                        );
                    }
                }
                Ok(Err(err)) => {
                    warn!(error = %err, "cannot renew the partition leases");
                    if last_ok.elapsed() > self.ttl {
                        self.fence.replace(HashMap::new());
                        self.owned.send_replace(BTreeSet::new());
                    }
                }
                Err(err) => warn!(error = %err, "the lease renewal panicked"),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        let leases = self.clone();
        match tokio::task::spawn_blocking(move || leases.release()).await {
            Ok(Ok(())) => info!("partition leases released"),
            Ok(Err(err)) => warn!(error = %err, "cannot release the partition leases"),
            Err(err) => warn!(error = %err, "the lease release panicked"),
        }
    }
}

/// Notes this node alive and counts the live nodes, this one included.
async fn live_nodes(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    ttl: &str,
) -> Result<usize, StoreError> {
    tx.execute(
        "INSERT INTO nodes (id, seen_at) VALUES ($1, now())
         ON CONFLICT (id) DO UPDATE SET seen_at = now()",
        &[&node],
    )
    .await?;
    tx.execute(
        "DELETE FROM nodes WHERE seen_at < now() - $1::text::interval * 10",
        &[&ttl],
    )
    .await?;
    let live: i64 = tx
        .query_one(
            "SELECT count(*) FROM nodes WHERE seen_at > now() - $1::text::interval",
            &[&ttl],
        )
        .await?
        .get(0);
    Ok(live.max(1) as usize)
}

/// Takes up to `want` free or expired partitions, raising their epochs.
async fn take(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    ttl: &str,
    want: usize,
) -> Result<Vec<(u32, i64)>, StoreError> {
    let rows = tx
        .query(
            "WITH free AS (
                SELECT part FROM leases
                WHERE owner IS NULL OR expires_at < now()
                ORDER BY part LIMIT $3 FOR UPDATE SKIP LOCKED
             )
             UPDATE leases SET owner = $1, epoch = leases.epoch + 1,
                expires_at = now() + $2::text::interval
             FROM free WHERE leases.part = free.part
             RETURNING leases.part, leases.epoch",
            &[&node, &ttl, &(want as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, i32>(0) as u32, row.get::<_, i64>(1)))
        .collect())
}

/// A duration as PostgreSQL reads an interval.
fn pg_interval(duration: Duration) -> String {
    format!("{} milliseconds", duration.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_belongs_to_its_registrable_domain() {
        assert_eq!(registrable_domain("www.example.org"), "example.org");
        assert_eq!(registrable_domain("a.b.example.org"), "example.org");
        assert_eq!(registrable_domain("example.org"), "example.org");
        assert_eq!(registrable_domain("news.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(registrable_domain("127.0.0.9"), "127.0.0.9");
        assert_eq!(registrable_domain("localhost"), "localhost");
        let p = |url: &str| partition_of(url, PARTITIONS);
        assert_eq!(
            p("https://www.example.org/a"),
            p("http://feeds.example.org/b")
        );
        assert!(p("https://example.org/") < PARTITIONS);
        let spread: BTreeSet<u32> = (0..50)
            .map(|n| p(&format!("http://h{n}.example.test:8080/feed")))
            .collect();
        // 50 hosts under one domain share its partition; 50 domains spread out.
        assert_eq!(spread.len(), 1);
        let spread: BTreeSet<u32> = (0..50)
            .map(|n| p(&format!("http://feed.host{n}.test/feed")))
            .collect();
        assert!(spread.len() > 40, "{}", spread.len());
    }
}
