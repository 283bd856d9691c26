//! The periodic retention task: trims the store to the limits of the latest config,
//! keeps the per-source item counts up to date after each pass, and now and then
//! sweeps the secondary keys that point nowhere.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{Retention, SharedSources};
use crate::item::SourceId;
use crate::ops::metrics::Metrics;
use crate::store::{Store, StoreError, Trimmed};

/// 10 minutes between retention passes: items age by days, not seconds.
pub const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// 6 hours between sweeps of the secondary keys that point nowhere
/// ([`Store::drop_orphan_keys`]): they cost only disk, and a sweep reads two whole
/// trees and looks up every owner (a million items: 1.4-2.8 s of a core, about as
/// much as the rest of a retention pass).
pub const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(6 * 3600);

/// What retention keeps: the store-wide limits and the `max_items` of the sources
/// that set one. Sent anew on every reload.
#[derive(Clone, Debug)]
pub(super) struct RetentionPlan {
    store: Retention,
    per_source: Arc<Vec<(SourceId, usize)>>,
    /// Every configured source, for the item counts of `/metrics`: the list every
    /// part shares.
    sources: SharedSources,
}

impl RetentionPlan {
    /// The plan of the store-wide limits `store` and the sources `sources`.
    pub(super) fn of(store: Retention, sources: &SharedSources) -> Self {
        let per_source = sources
            .iter()
            .filter_map(|s| Some((s.id.clone(), s.max_items?)))
            .collect();
        RetentionPlan {
            store,
            per_source: Arc::new(per_source),
            sources: sources.clone(),
        }
    }
}

/// Trims the store to its retention limits now and every [`RETENTION_EVERY`], with
/// the limits of the latest config; counts every source's items for /metrics at
/// start-up, and recounts the sources a pass removed items from. After a pass, sweeps
/// the orphaned secondary keys when the store's last sweep is
/// [`ORPHAN_SWEEP_EVERY`] old.
pub(super) async fn retain(
    store: Store,
    plan: watch::Receiver<RetentionPlan>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) {
    // The first pass also counts every source's items for /metrics, in the
    // background: a large store must not hold up the start.
    let mut first = true;
    loop {
        let plan = plan.borrow().clone();
        let counted = match pass(&store, &plan).await {
            Some((trimmed, recounted)) => {
                // At start-up, every source's count from the pass's own scan; a
                // source a poll has counted meanwhile keeps that fresher count.
                if first {
                    metrics.set_all_source_items(&ids(&plan.sources), &trimmed.counts, false);
                }
                for (source, count) in recounted {
                    metrics.set_source_items(&source, count);
                }
                true
            }
            None => false,
        };
        if first && !counted {
            // Reads still work when writes fail (a full disk): count without the pass.
            count_items(&store, &plan.sources, &metrics).await;
        }
        first = false;
        if orphan_sweep_due(&store).await {
            drop_orphan_keys(&store).await;
        }
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}

/// One retention pass, off the async threads: the store-wide limits, then each
/// source's `max_items`; returns what it did and the fresh counts of the configured
/// sources that lost items; `None` when it failed (logged).
async fn pass(store: &Store, plan: &RetentionPlan) -> Option<(Trimmed, Vec<(SourceId, u64)>)> {
    let RetentionPlan {
        store: retention,
        per_source: caps,
        sources,
    } = plan.clone();
    let keep_after = chrono::Utc::now()
        - chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
    let trimming = store.clone();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let configured: HashSet<&SourceId> = sources.iter().map(|s| &s.id).collect();
        let mut trimmed = trimming.trim(keep_after, retention.max_items)?;
        for (source, max_items) in caps.iter() {
            let removed = trimming.trim_source(source, *max_items)?;
            // Its count is not adjusted here: it is recounted below.
            if removed > 0 {
                trimmed.removed += removed;
                trimmed.touched.insert(source.clone());
            }
        }
        // Polls went on during the pass: the sources that lost items are counted
        // again now, each by a scan of its own part of the index.
        let recounted = trimmed
            .touched
            .iter()
            .filter(|source| configured.contains(*source))
            .map(|source| Ok((source.clone(), trimming.count_items(source)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok::<_, StoreError>((trimmed, recounted))
    })
    .await;
    match result {
        Ok(Ok((trimmed, recounted))) => {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            if trimmed.removed > 0 {
                info!(
                    removed = trimmed.removed,
                    elapsed_ms, "retention trimmed old items"
                );
            } else {
                debug!(elapsed_ms, "retention pass: nothing to trim");
            }
            Some((trimmed, recounted))
        }
        Ok(Err(err)) => {
            warn!(error = %err, "retention pass failed");
            None
        }
        Err(err) => {
            warn!(error = %err, "retention pass crashed");
            None
        }
    }
}

/// The ids of `sources`, for the item counts of `/metrics` at start-up.
fn ids(sources: &SharedSources) -> Vec<SourceId> {
    sources.iter().map(|s| s.id.clone()).collect()
}

/// Counts every source's stored items into `metrics` (one scan of the index), for a
/// start-up whose retention pass failed; a source a poll has counted meanwhile keeps
/// that fresher count.
async fn count_items(store: &Store, sources: &SharedSources, metrics: &Metrics) {
    let counting = store.clone();
    match tokio::task::spawn_blocking(move || counting.item_counts()).await {
        Ok(Ok(counts)) => metrics.set_all_source_items(&ids(sources), &counts, false),
        Ok(Err(err)) => warn!(error = %err, "cannot count the stored items"),
        Err(err) => warn!(error = %err, "counting the stored items crashed"),
    }
}

/// Whether [`ORPHAN_SWEEP_EVERY`] has passed since the store's last sweep (read from
/// the store, so a daemon restarted more often than that still sweeps).
async fn orphan_sweep_due(store: &Store) -> bool {
    let reading = store.clone();
    match tokio::task::spawn_blocking(move || reading.last_orphan_sweep()).await {
        // A last sweep in the future (the clock was set back) is no reason to wait.
        Ok(Ok(Some(last))) => (chrono::Utc::now() - last)
            .to_std()
            .map_or(true, |since| since >= ORPHAN_SWEEP_EVERY),
        Ok(Ok(None)) => true,
        _ => false,
    }
}

/// Drops the secondary keys that point nowhere, off the async threads.
async fn drop_orphan_keys(store: &Store) {
    let sweeping = store.clone();
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(move || sweeping.drop_orphan_keys()).await {
        Ok(Ok(dropped)) => info!(
            dropped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "swept the secondary keys of removed items"
        ),
        Ok(Err(err)) => warn!(error = %err, "sweeping the secondary keys failed"),
        Err(err) => warn!(error = %err, "sweeping the secondary keys crashed"),
    }
}
