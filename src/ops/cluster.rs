//! What the operator sees of a cluster (several nodes on one PostgreSQL store): this
//! node's id and the partitions it holds (from its leases, without asking the
//! database), and the cluster's (the lease table: which node holds each partition,
//! the live nodes). `/readyz` names the node and its share, `/metrics` adds the
//! cluster's families, `/sources` says of each source which partition it is in, which
//! node polls it and whether this one does. With the embedded store there is no
//! cluster and nothing here is shown.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::Duration;

use super::status::{SourceStatus, Status};
use crate::config::SourceConfig;
use crate::store::postgres::{LeaseMap, Leases, PARTITIONS, partition_of};
use crate::store::{Store, StoreError};

/// A node's view of its cluster. Cheap to share.
pub struct ClusterView {
    leases: Leases,
    store: Store,
    /// How recently a node must have renewed to count as live: the lease TTL.
    ttl: Duration,
}

/// The cluster at one moment, as `/sources.json` serves it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// This node's id.
    pub node: String,
    /// Partitions of the sources in all.
    pub partitions: u32,
    /// The partitions this node holds.
    pub held: Vec<u32>,
    /// Live nodes, this one included, as this node counted them at its last renewal.
    pub live_nodes: usize,
    /// Each live node and the partitions it holds, from the lease table.
    pub nodes: BTreeMap<String, usize>,
    /// Partitions no node holds now (free or expired, about to be taken).
    pub unowned: usize,
}

impl ClusterView {
    pub fn new(leases: Leases, store: Store, ttl: Duration) -> ClusterView {
        ClusterView { leases, store, ttl }
    }

    pub fn node(&self) -> &str {
        self.leases.fence().node()
    }

    /// The partitions this node holds now.
    pub fn held(&self) -> BTreeSet<u32> {
        self.leases.fence().held()
    }

    /// One line on this node's share, without asking the database.
    pub fn describe(&self) -> String {
        format!(
            "node {} holds {} of {PARTITIONS} partitions; {} live nodes",
            self.node(),
            self.held().len(),
            self.leases.live_nodes()
        )
    }

    /// This node's share and the lease table; blocks on the database.
    pub fn read(&self) -> Result<(ClusterSummary, LeaseMap), StoreError> {
        let map = self
            .store
            .backend()
            .lease_map(self.ttl)?
            .unwrap_or_default();
        let summary = ClusterSummary {
            node: self.node().to_string(),
            partitions: PARTITIONS,
            held: self.held().into_iter().collect(),
            live_nodes: self.leases.live_nodes(),
            nodes: map.nodes.clone(),
            unowned: map.unowned(),
        };
        Ok((summary, map))
    }

    /// Marks `statuses` (of `sources`) as [`annotate`] does, from the lease table
    /// now; the cluster's summary. Blocks on the database.
    pub fn mark<'a>(
        &self,
        statuses: &mut [SourceStatus],
        sources: impl IntoIterator<Item = &'a SourceConfig>,
    ) -> Result<ClusterSummary, StoreError> {
        let (summary, map) = self.read()?;
        let held = summary.held.iter().copied().collect();
        annotate(statuses, sources, &map, Some(&held));
        Ok(summary)
    }
}

/// Marks each of `statuses` (of `sources`, in the same order) with its partition,
/// the node that holds it, and, on a node (which holds `held`), whether it polls it.
pub fn annotate<'a>(
    statuses: &mut [SourceStatus],
    sources: impl IntoIterator<Item = &'a SourceConfig>,
    map: &LeaseMap,
    held: Option<&BTreeSet<u32>>,
) {
    for (status, source) in statuses.iter_mut().zip(sources) {
        let part = partition_of(&source.id.0, PARTITIONS);
        status.partition = Some(part);
        status.owner = map.owners.get(&part).cloned();
        status.polled_here =
            held.map(|held| held.contains(&part) && status.status != Status::Disabled);
    }
}

/// The cluster's OpenMetrics families, to go before `# EOF`: this node's id, the
/// partitions each live node holds, and those no node holds.
pub fn metrics_families(summary: &ClusterSummary) -> String {
    let mut out = String::new();
    out.push_str("# HELP tributary_cluster_node This node's id in the cluster.\n");
    out.push_str("# TYPE tributary_cluster_node info\n");
    let _ = writeln!(
        out,
        "tributary_cluster_node_info{{node=\"{}\"}} 1",
        label(&summary.node)
    );
    out.push_str(
        "# HELP tributary_cluster_node_partitions Partitions each live node holds, from the lease table.\n",
    );
    out.push_str("# TYPE tributary_cluster_node_partitions gauge\n");
    for (node, held) in &summary.nodes {
        let _ = writeln!(
            out,
            "tributary_cluster_node_partitions{{node=\"{}\"}} {held}",
            label(node)
        );
    }
    out.push_str(
        "# HELP tributary_cluster_partitions_unowned Partitions no node holds now (free or expired).\n",
    );
    out.push_str("# TYPE tributary_cluster_partitions_unowned gauge\n");
    let _ = writeln!(
        out,
        "tributary_cluster_partitions_unowned {}",
        summary.unowned
    );
    out
}

/// Adds the cluster's families to an encoded registry, before its `# EOF`.
pub fn add_families(encoded: &mut String, summary: &ClusterSummary) {
    let at = encoded.rfind("# EOF").unwrap_or(encoded.len());
    encoded.insert_str(at, &metrics_families(summary));
}

/// A label value, escaped as OpenMetrics asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The line of `/sources` on the cluster.
pub fn html_line(summary: &ClusterSummary) -> String {
    let nodes: Vec<String> = summary
        .nodes
        .iter()
        .map(|(node, held)| format!("{node} ({held})"))
        .collect();
    format!(
        "Node {} polls {} of {} partitions; {} live nodes: {}{}",
        summary.node,
        summary.held.len(),
        summary.partitions,
        summary.nodes.len().max(summary.live_nodes),
        nodes.join(", "),
        if summary.unowned > 0 {
            format!("; {} partitions unowned", summary.unowned)
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_go_before_the_end_and_escape_node_ids() {
        let summary = ClusterSummary {
            node: "a\"b".into(),
            partitions: 256,
            held: vec![1, 2],
            live_nodes: 2,
            nodes: [("a\"b".to_string(), 2), ("c".to_string(), 254)].into(),
            unowned: 0,
        };
        let mut text = "x 1\n# EOF\n".to_string();
        add_families(&mut text, &summary);
        assert!(text.starts_with("x 1\n# HELP tributary_cluster_node "));
        assert!(text.ends_with("tributary_cluster_partitions_unowned 0\n# EOF\n"));
        assert!(text.contains("tributary_cluster_node_info{node=\"a\\\"b\"} 1\n"));
        assert!(text.contains("tributary_cluster_node_partitions{node=\"c\"} 254\n"));
        assert_eq!(
            html_line(&summary),
            "Node a\"b polls 2 of 256 partitions; 2 live nodes: a\"b (2), c (254)"
        );
    }
}
