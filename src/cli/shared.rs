//! The store a command reads or writes without a daemon: the embedded store at
//! `[store] path`, or the shared PostgreSQL store of `[store] backend = "postgres"`.
//!
//! A command is not a node of the cluster: it takes no lease, so its writes are not
//! fenced. `tributary poll` therefore writes to a shared store only while no node
//! holds a partition ([`refuse_while_nodes_poll`]): the running nodes poll.

use anyhow::Context;
use std::time::Duration;

use crate::config::{ClusterConfig, Config};
use crate::store::postgres::{LeaseMap, PgOptions, Postgres};
use crate::store::{Store, StoreError};

/// Opens the store `config` names, off any runtime of the caller's.
pub(super) fn open(config: &Config) -> Result<Store, StoreError> {
    match &config.cluster {
        Some(cluster) => Ok(connect(cluster)?.into()),
        None => open_embedded(config),
    }
}

/// Opens the embedded store at `[store] path` with the page cache `[store] cache_mb`
/// gives it, as the daemon does (`tributary poll` is one of the daemon's cycles, and
/// its cost depends on that cache: see docs/PERFORMANCE.md "Store cache").
pub(super) fn open_embedded(config: &Config) -> Result<Store, StoreError> {
    Store::open_with_cache(&config.store_path, config.store_cache_bytes)
}

/// Where the store of `config` is, for messages.
pub(super) fn describe(config: &Config) -> String {
    match &config.cluster {
        Some(_) => "the shared PostgreSQL store".to_string(),
        None => format!("the store at {}", config.store_path.display()),
    }
}

fn connect(cluster: &ClusterConfig) -> Result<Postgres, StoreError> {
    let mut options = PgOptions::new(cluster.url.clone());
    options.password = cluster.password.clone();
    options.pool_size = 2;
    options.watch_every = cluster.watch_every;
    Postgres::connect(&options)
}

/// An error when nodes hold partitions of the shared `store` now: they poll it.
pub(super) fn refuse_while_nodes_poll(config: &Config, store: &Store) -> anyhow::Result<()> {
    let Some(cluster) = &config.cluster else {
        return Ok(());
    };
    let map = lease_map(store, cluster.lease_ttl).context("reading the lease table")?;
    let holders: Vec<String> = map
        .nodes
        .iter()
        .filter(|(_, held)| **held > 0)
        .map(|(node, held)| format!("{node} ({held})"))
        .collect();
    if !holders.is_empty() {
        anyhow::bail!(
            "nodes hold partitions of the shared store and poll it: {}; \
             `tributary poll` writes to a shared store only while no node runs",
            holders.join(", ")
        );
    }
    Ok(())
}

/// The lease table of a shared store (empty for the embedded one).
pub(super) fn lease_map(store: &Store, ttl: Duration) -> Result<LeaseMap, StoreError> {
    Ok(store.backend().lease_map(ttl)?.unwrap_or_default())
}
