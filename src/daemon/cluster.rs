//! A node of a cluster (`[store] backend = "postgres"`): the shared store, this
//! node's partition leases, and the plan its scheduler polls, which holds only the
//! sources of the partitions this node holds. With the embedded store there is no
//! cluster: the node is the one lease owner of every partition and polls every
//! source, as it always has.

use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::ClusterConfig;
use crate::ops::metrics::Metrics;
use crate::scheduler::Plan;
use crate::store::Store;
use crate::store::postgres::{Leases, PARTITIONS, PgOptions, Postgres, partition_of};

/// This node's part in a cluster.
pub(super) struct Node {
    pub(super) leases: Leases,
    stop: CancellationToken,
    renewing: Option<JoinHandle<()>>,
}

/// Connects to the shared store (migrating its schema) and takes this node's first
/// leases; blocking.
pub(super) fn join(cluster: &ClusterConfig) -> anyhow::Result<(Store, Leases)> {
    let options = PgOptions {
        url: cluster.url.clone(),
        password: cluster.password.clone(),
        pool_size: cluster.pool_size,
        watch_every: cluster.watch_every,
    };
    let store = Postgres::connect(&options)?;
    let leases = Leases::new(&store, &cluster.node_id, cluster.lease_ttl);
    // Nodes started together see each other before any takes its share, so no
    // partition changes hands (and no poll is cut short) right after a start.
    leases.announce()?;
    std::thread::sleep(leases.renew_every());
    let renewal = leases.renew()?;
    info!(node = %cluster.node_id, partitions = renewal.held.len(), live_nodes = renewal.live_nodes, "joined the cluster");
    Ok((store.into(), leases))
}

impl Node {
    /// Renews the leases in the background until [`Node::leave`], and keeps the
    /// partition gauges.
    pub(super) fn start(leases: Leases, metrics: Arc<Metrics>) -> Node {
        let stop = CancellationToken::new();
        let mut owned = leases.owned();
        let gauges = leases.clone();
        tokio::spawn(async move {
            loop {
                let held = owned.borrow_and_update().len();
                metrics.set_cluster(held as i64, gauges.live_nodes() as i64);
                if owned.changed().await.is_err() {
                    break;
                }
            }
        });
        let renewing = Some(tokio::spawn(leases.clone().run(stop.clone())));
        Node {
            leases,
            stop,
            renewing,
        }
    }

    /// Releases every partition (after the polls have finished).
    pub(super) async fn leave(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.renewing.take() {
            let _ = task.await;
        }
    }
}

/// The sources of `plan` in the partitions `owned`.
pub(super) fn owned_plan(plan: &Plan, owned: &BTreeSet<u32>) -> Plan {
    Plan {
        sources: plan
            .sources
            .iter()
            .filter(|s| owned.contains(&partition_of(&s.id.0, PARTITIONS)))
            .cloned()
            .collect(),
        poll: plan.poll.clone(),
    }
}

/// The plans the scheduler polls: every reload's, less the sources of partitions
/// this node does not hold, again whenever the leases change.
pub(super) fn node_plans(
    mut plans: watch::Receiver<Plan>,
    node: Option<&Node>,
) -> (crate::config::SharedSources, watch::Receiver<Plan>) {
    let Some(node) = node else {
        let sources = plans.borrow().sources.clone();
        return (sources, plans);
    };
    let mut owned = node.leases.owned();
    let first = owned_plan(&plans.borrow_and_update(), &owned.borrow_and_update());
    let sources = first.sources.clone();
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = plans.changed() => if changed.is_err() { break },
                changed = owned.changed() => if changed.is_err() { break },
                _ = tx.closed() => break,
            }
            let plan = owned_plan(&plans.borrow_and_update(), &owned.borrow_and_update());
            tx.send_replace(plan);
        }
    });
    (sources, rx)
}
