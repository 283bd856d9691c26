//! Leases on partitions of the sources by host, so that several nodes share the
//! polling and one node polls every source of a host (per-host limits, Retry-After
//! and connection reuse then hold across the cluster).
//!
//! A source's partition is a hash of its host's registrable domain modulo
//! [`PARTITIONS`]. Each node renews its row in `nodes` and its leases every quarter
//! of the lease TTL, on a connection of their own so that renewals never queue behind
//! item writes, takes free or expired partitions (`FOR UPDATE SKIP LOCKED`) up to
//! its fair share of the live nodes (⌈partitions / live nodes⌉), and releases all at
//! shutdown. Taking a partition raises its epoch. A node killed without releasing
//! loses its partitions when their TTL runs out; another node then takes them.
//!
//! One host is never polled by two nodes at once:
//! - a node stops polling a partition before its lease can expire: its leases are
//!   sure for the TTL less one renewal period counted from before the renewal
//!   began, and when no renewal succeeds by then it lets go of everything;
//! - a partition over the node's share is dropped at once (its polls cancelled)
//!   but its lease is given back only at the next renewal, when those polls have
//!   ended.
//!
//! Fencing: every write checks, in its own transaction, that this node still holds
//! the source's partition at the epoch it took it with and that the lease has not
//! expired ([`Fence::check`]), holding the partition's advisory lock in shared mode
//! until it commits; a take-over passes over a partition whose lock is held. A node
//! that stalled past its TTL cannot overwrite what the new owner wrote.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::types::ToSql;
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

/// Key class of the advisory locks on partitions: a write holds its partition's in
/// shared mode until it commits, a take-over needs it exclusively (see [`take`]).
const PARTITION_LOCK: i32 = 0x7472_6962;

/// What this node holds: partition -> the epoch it took it at, and until when that
/// is sure on this node's own clock.
pub struct Fence {
    node: String,
    partitions: u32,
    held: RwLock<Held>,
}

#[derive(Default)]
struct Held {
    epochs: HashMap<u32, i64>,
    /// The end of the last renewal's lease less a safety margin, measured from
    /// before that renewal began: until then no other node can have taken any of
    /// `epochs`. Past it this node holds nothing until it renews again.
    until: Option<Instant>,
}

impl Held {
    fn valid(&self) -> bool {
        self.until.is_some_and(|until| Instant::now() < until)
    }
}

impl Fence {
    pub fn new(node: impl Into<String>) -> Fence {
        Fence {
            node: node.into(),
            partitions: PARTITIONS,
            held: RwLock::new(Held::default()),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().expect("never poisoned")
    }

    /// The partitions held now (none once the leases lapsed unrenewed).
    pub fn held(&self) -> BTreeSet<u32> {
        let held = self.read();
        match held.valid() {
            true => held.epochs.keys().copied().collect(),
            false => BTreeSet::new(),
        }
    }

    /// The epoch this node holds `part` at, if it does and its lease is still sure.
    pub fn epoch(&self, part: u32) -> Option<i64> {
        let held = self.read();
        held.valid()
            .then(|| held.epochs.get(&part).copied())
            .flatten()
    }

    /// When the leases held lapse unless renewed before.
    fn until(&self) -> Option<Instant> {
        let held = self.read();
        (!held.epochs.is_empty()).then_some(held.until).flatten()
    }

    pub fn partition(&self, source: &SourceId) -> u32 {
        partition_of(&source.0, self.partitions)
    }

    /// Refuses the write in `tx` unless this node holds the partition of `source` at
    /// its epoch, unexpired. The partition's advisory lock, held in shared mode until
    /// the write commits, keeps any other node from taking it meanwhile; lease
    /// renewals do not wait for it.
    pub async fn check(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        source: &SourceId,
    ) -> Result<(), StoreError> {
        let part = self.partition(source);
        let Some(epoch) = self.epoch(part) else {
            return Err(StoreError::Fenced { part });
        };
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock_shared($1, $2)")
            .await?;
        tx.execute(&lock, &[&PARTITION_LOCK, &(part as i32)])
            .await?;
        // A statement of its own, after the lock: it sees a take-over committed
        // while the lock was awaited.
        let statement = tx
            .prepare_cached(
                "SELECT 1 FROM leases WHERE part = $1 AND owner = $2 AND epoch = $3
                 AND expires_at > clock_timestamp()",
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

    fn replace(&self, epochs: HashMap<u32, i64>, until: Option<Instant>) {
        *self.held.write().expect("never poisoned") = Held { epochs, until };
    }

    fn forget(&self) {
        self.replace(HashMap::new(), None);
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
    live: Arc<AtomicUsize>,
    /// Partitions over this node's share, no longer polled nor written, whose leases
    /// are given back at the next renewal: the polls cancelled when they left have
    /// ended by then, so no host sees this node and the next owner at once.
    releasing: Arc<Mutex<BTreeSet<u32>>>,
    /// Held while a renewal's result or a let-go is applied to the fence and the
    /// partitions published, so that the two never interleave.
    applying: Arc<Mutex<()>>,
}

/// What one renewal found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renewal {
    /// The partitions this node polls now.
    pub held: BTreeSet<u32>,
    pub taken: Vec<u32>,
    /// Given up at this renewal: dropped now, their leases given back at the next.
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
            live: Arc::new(AtomicUsize::new(1)),
            releasing: Arc::default(),
            applying: Arc::default(),
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
        self.live.load(Ordering::Relaxed)
    }

    /// Notes this node alive without taking anything, so nodes starting together
    /// count each other before they take their shares; blocks.
    pub fn announce(&self) -> Result<(), StoreError> {
        let ttl = pg_interval(self.ttl);
        self.store.block(async {
            let mut conn = self.store.lease_conn().await?;
            let tx = conn.transaction().await?;
            live_nodes(&tx, &self.fence.node, &ttl).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The time between two renewals: a quarter of the TTL.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }

    /// How long after a renewal began its leases are sure on this node: the TTL
    /// less one renewal period, so a node whose clock or scheduling drifts stops
    /// polling well before another node may take over, and one failed or slow
    /// renewal is outlived by the next.
    fn sure_for(&self) -> Duration {
        self.ttl - self.renew_every()
    }

    /// Renews, rebalances and publishes what is held; blocks.
    pub fn renew(&self) -> Result<Renewal, StoreError> {
        self.store.block(self.renew_async())
    }

    async fn renew_async(&self) -> Result<Renewal, StoreError> {
        // Before the transaction: the database's expiry is counted from later.
        let began = Instant::now();
        let ttl = pg_interval(self.ttl);
        let node = self.fence.node.as_str();
        let mut conn = self.store.lease_conn().await?;
        let tx = conn.transaction().await?;
        let leaving = self.releasing.lock().expect("never poisoned").clone();
        // Pipelined, so that a renewal is a few round trips however busy the
        // machine: whichever of the give-back and the extension runs first, the
        // partitions given back end up free.
        let (live, (), mut held) = tokio::try_join!(
            live_nodes(&tx, node, &ttl),
            give_back(&tx, node, &leaving),
            extend(&tx, node, &ttl),
        )?;
        held.retain(|part, _| !leaving.contains(part));
        let share = (self.fence.partitions as usize).div_ceil(live);
        let released = over_share(&mut held, share);
        let mut taken = Vec::new();
        if held.len() < share {
            taken = take(&tx, node, &ttl, share - held.len()).await?;
            held.extend(taken.iter().copied());
        }
        tx.commit().await?;
        *self.releasing.lock().expect("never poisoned") = released.iter().copied().collect();
        self.live.store(live, Ordering::Relaxed);
        // Applied whole, never interleaved with a let-go: the fence and the plan
        // always agree.
        let _applying = self.applying.lock().expect("never poisoned");
        self.fence
            .replace(held.clone(), Some(began + self.sure_for()));
        let held = self.fence.held();
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

    /// Stops polling and writing for every partition: the leases were not renewed
    /// in time, and another node may take them as soon as they expire.
    /// Nothing happens when a renewal was applied since the lapse was seen.
    fn let_go(&self) {
        let _applying = self.applying.lock().expect("never poisoned");
        if self
            .fence
            .until()
            .is_none_or(|until| Instant::now() < until)
        {
            return;
        }
        warn!("the partition leases were not renewed in time: polling stops until they are");
        self.fence.forget();
        self.owned.send_replace(BTreeSet::new());
    }

    /// Gives back every partition and leaves the cluster; for shutdown.
    pub fn release(&self) -> Result<(), StoreError> {
        {
            let _applying = self.applying.lock().expect("never poisoned");
            self.fence.forget();
            self.owned.send_replace(BTreeSet::new());
        }
        let node = self.fence.node.clone();
        self.store.block(async {
            let conn = self.store.lease_conn().await?;
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

    /// Renews every quarter of the TTL until `stop` is cancelled, then releases. When
    /// the leases are not renewed in time (the database is slow or unreachable), this
    /// node lets go of them when they stop being sure, before they expire.
    pub async fn run(self, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(self.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewing: Option<(Instant, tokio::task::JoinHandle<_>)> = None;
        loop {
            let lapse = self.fence.until();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick(), if renewing.is_none() => {
                    let leases = self.clone();
                    renewing = Some((Instant::now(), tokio::task::spawn_blocking(move || leases.renew())));
                }
                outcome = async { (&mut renewing.as_mut().expect("guarded").1).await }, if renewing.is_some() => {
                    let (began, _) = renewing.take().expect("guarded");
                    report(outcome, began.elapsed(), self.renew_every());
                }
                _ = sleep_until(lapse), if lapse.is_some() => self.let_go(),
            }
        }
        if let Some((_, renewal)) = renewing {
            let _ = renewal.await;
        }
        let leases = self.clone();
        match tokio::task::spawn_blocking(move || leases.release()).await {
            Ok(Ok(())) => info!("partition leases released"),
            Ok(Err(err)) => warn!(error = %err, "cannot release the partition leases"),
            Err(err) => warn!(error = %err, "the lease release panicked"),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Logs what a renewal changed or why it failed, and a renewal slower than the
/// time between two.
fn report(
    outcome: Result<Result<Renewal, StoreError>, tokio::task::JoinError>,
    took: Duration,
    every: Duration,
) {
    if took > every {
        warn!(
            took_ms = took.as_millis() as u64,
            "the partition lease renewal was slow"
        );
    }
    match outcome {
        Ok(Ok(renewal)) if !renewal.taken.is_empty() || !renewal.released.is_empty() => {
            info!(
                held = renewal.held.len(),
                taken = renewal.taken.len(),
                released = renewal.released.len(),
                live_nodes = renewal.live_nodes,
                "partition leases changed"
            );
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => warn!(error = %err, "cannot renew the partition leases"),
        Err(err) => warn!(error = %err, "the lease renewal panicked"),
    }
}

/// Takes out of `held` the partitions beyond `share` (the highest) and returns them.
fn over_share(held: &mut HashMap<u32, i64>, share: usize) -> Vec<u32> {
    if held.len() <= share {
        return Vec::new();
    }
    let mut parts: Vec<u32> = held.keys().copied().collect();
    parts.sort_unstable();
    let released = parts.split_off(share);
    held.retain(|part, _| !released.contains(part));
    released
}

/// Gives back the leases of `parts`, which this node stopped polling one renewal ago.
async fn give_back(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    parts: &BTreeSet<u32>,
) -> Result<(), StoreError> {
    if parts.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = parts.iter().map(|&p| p as i32).collect();
    let statement = tx
        .prepare_cached(
            "UPDATE leases SET owner = NULL, expires_at = '-infinity'
             WHERE owner = $1 AND part = ANY($2)",
        )
        .await?;
    tx.execute(&statement, &[&node, &ids]).await?;
    Ok(())
}

/// Notes this node alive and counts the live nodes, this one included.
async fn live_nodes(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    ttl: &str,
) -> Result<usize, StoreError> {
    let seen = tx
        .prepare_cached(
            "INSERT INTO nodes (id, seen_at) VALUES ($1, now())
             ON CONFLICT (id) DO UPDATE SET seen_at = now()",
        )
        .await?;
    let forget = tx
        .prepare_cached("DELETE FROM nodes WHERE seen_at < now() - $1::text::interval * 10")
        .await?;
    let count = tx
        .prepare_cached("SELECT count(*) FROM nodes WHERE seen_at > now() - $1::text::interval")
        .await?;
    // Pipelined: sent together, run in this order, one round trip.
    let (by_node, by_ttl): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) = ([&node], [&ttl]);
    let (_, _, live) = tokio::try_join!(
        tx.execute(&seen, &by_node),
        tx.execute(&forget, &by_ttl),
        tx.query_one(&count, &by_ttl),
    )?;
    Ok(live.get::<_, i64>(0).max(1) as usize)
}

/// Extends every lease this node holds; returns them with their epochs.
async fn extend(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    ttl: &str,
) -> Result<HashMap<u32, i64>, StoreError> {
    let statement = tx
        .prepare_cached(
            "UPDATE leases SET expires_at = now() + $2::text::interval
             WHERE owner = $1 RETURNING part, epoch",
        )
        .await?;
    let rows = tx.query(&statement, &[&node, &ttl]).await?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, i32>(0) as u32, row.get::<_, i64>(1)))
        .collect())
}

/// Takes up to `want` free or expired partitions, raising their epochs; passes over
/// those a write is still being committed for (their advisory lock is held). In
/// three steps, so that the advisory locks are tried on the chosen rows only (in one
/// statement the planner may call the lock function on every free row).
async fn take(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    ttl: &str,
    want: usize,
) -> Result<Vec<(u32, i64)>, StoreError> {
    let free = tx
        .prepare_cached(
            "SELECT part FROM leases WHERE owner IS NULL OR expires_at < now()
             ORDER BY part LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .await?;
    let free: Vec<i32> = tx
        .query(&free, &[&(want as i64)])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if free.is_empty() {
        return Ok(Vec::new());
    }
    let unlocked = tx
        .prepare_cached(
            "SELECT part FROM unnest($1::int4[]) AS part
             WHERE pg_try_advisory_xact_lock($2, part)",
        )
        .await?;
    let unlocked: Vec<i32> = tx
        .query(&unlocked, &[&free, &PARTITION_LOCK])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let statement = tx
        .prepare_cached(
            "UPDATE leases SET owner = $1, epoch = epoch + 1,
                expires_at = now() + $2::text::interval
             WHERE part = ANY($3)
             RETURNING part, epoch",
        )
        .await?;
    let rows = tx.query(&statement, &[&node, &ttl, &unlocked]).await?;
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
