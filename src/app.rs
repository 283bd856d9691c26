//! Wiring, read top to bottom: open the store, publish what it holds, start polling
//! and serving, wait for the shutdown signal, stop in order, flush.
//!
//! `main` calls [`run`] with a checked config, a bound listener and a shutdown future;
//! integration tests call it the same way with a oneshot receiver.

use anyhow::Context;
use hyper::header::HeaderValue;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{Config, Retention};
use crate::fetch::Fetcher;
use crate::health::Health;
use crate::http::{self, HttpState};
use crate::item::SourceId;
use crate::metrics::Metrics;
use crate::publish::{Publisher, Site};
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::systemd;

/// 10 seconds for requests and polls in progress to finish after a shutdown signal;
/// systemd's default stop timeout is 90.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// 10 minutes between retention passes: items age by days, not seconds.
pub const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Counts every source's stored items into `metrics` (after start-up and after
/// retention): one pass over the store's index, about 3 s per million items.
/// At start-up (`replace` false) a source a poll has counted meanwhile keeps that
/// fresher count.
async fn count_items(store: &Store, sources: &[SourceId], metrics: &Metrics, replace: bool) {
    let counting = store.clone();
    match tokio::task::spawn_blocking(move || counting.item_counts()).await {
        Ok(Ok(counts)) => metrics.set_all_source_items(sources, &counts, replace),
        Ok(Err(err)) => warn!(error = %err, "cannot count the stored items"),
        Err(err) => warn!(error = %err, "counting the stored items crashed"),
    }
}

/// Trims the store to its retention limits now and every [`RETENTION_EVERY`], and
/// recounts the items of each source after a pass that removed some.
async fn retain(
    store: Store,
    retention: Retention,
    sources: Vec<SourceId>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) {
    loop {
        let keep_after = chrono::Utc::now()
            - chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
        let trimming = store.clone();
        let result =
            tokio::task::spawn_blocking(move || trimming.trim(keep_after, retention.max_items))
                .await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => {
                info!(removed, "retention trimmed old items");
                count_items(&store, &sources, &metrics, true).await;
            }
            Ok(Err(err)) => warn!(error = %err, "retention pass failed"),
            Err(err) => warn!(error = %err, "retention pass crashed"),
        }
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}

/// How long readers and proxies may reuse an output (`Cache-Control: max-age`, and
/// RSS `<ttl>` rounded up to minutes): the shortest poll interval. No source is read
/// more often than that, so a reader that asks more often mostly gets the same river;
/// one that asks less often misses nothing, since every output keeps `max_items`.
pub fn max_age(config: &Config) -> Duration {
    config.shortest_interval()
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store_path = config.store_path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&store_path))
        .await?
        .with_context(|| format!("opening the store at {}", config.store_path.display()))?;
    let health = Arc::new(Health::default());
    health.set_store_open();
    let metrics = Arc::new(Metrics::new());
    let source_ids: Vec<SourceId> = config.sources.iter().map(|s| s.id.clone()).collect();
    let fetcher = Fetcher::new(&config.poll).context("setting up the HTTP client")?;
    let local = listener.local_addr()?;

    // What the store already holds is served at once, before the first poll ends.
    let max_age = max_age(&config);
    let site = Site::from_config(
        &config,
        local.to_string(),
        max_age.as_secs().div_ceil(60).max(1),
    );
    let publisher = Arc::new(Publisher::new(store.clone(), site));
    let first = {
        let publisher = publisher.clone();
        tokio::task::spawn_blocking(move || publisher.render())
            .await?
            .context("rendering the stored items")?
    };
    let publisher = Arc::into_inner(publisher).expect("the first render has finished");
    info!(items = first.items, "serving the stored river");
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(first));

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Counted in the background: a large store must not hold up the start.
    tracker.spawn({
        let (store, sources, metrics) = (store.clone(), source_ids.clone(), metrics.clone());
        async move { count_items(&store, &sources, &metrics, false).await }
    });
    tracker.spawn(publisher.run(snapshot_tx, token.child_token()));
    let scheduler = Scheduler {
        store: store.clone(),
        fetcher,
        sources: config.sources.clone(),
        poll: config.poll.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
    };
    tracker.spawn(scheduler.run(token.child_token(), tracker.clone()));
    tracker.spawn(retain(
        store.clone(),
        config.retention,
        source_ids,
        metrics.clone(),
        token.child_token(),
    ));
    let http_state = HttpState {
        snapshot: snapshot_rx,
        store: store.clone(),
        cache_control: HeaderValue::from_str(&format!("public, max-age={}", max_age.as_secs()))
            .expect("digits are a valid header value"),
        max_limit: config.publish.max_items,
        health: health.clone(),
        metrics,
        sources: Arc::new(config.sources.clone()),
        title: config.publish.title.clone(),
    };
    let mut server = tokio::spawn(http::serve(listener, http_state, token.child_token()));

    info!(listen = %local, sources = config.sources.len(), store = %config.store_path.display(), "tributary is up");
    systemd::ready();
    systemd::status(&format!("polling {} sources", config.sources.len()));

    let server_result = tokio::select! {
        _ = shutdown => None,
        result = &mut server => Some(result),
    };
    systemd::stopping();
    health.set_draining();
    token.cancel();
    let server_result = match server_result {
        Some(result) => result,
        None => match tokio::time::timeout(DRAIN_DEADLINE, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                warn!("HTTP connections still open after the drain deadline; closing them");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        warn!("polls still running after the drain deadline; stopping anyway");
    }
    store.flush().await.context("flushing the store")?;
    info!("stopped");
    server_result
        .context("the HTTP server task failed")?
        .context("the HTTP server failed")
}
