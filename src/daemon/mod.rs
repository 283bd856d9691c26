//! Wiring, read top to bottom: open the store, publish what it holds, start polling
//! and serving, apply reloads until the shutdown signal, stop in order, flush.
//!
//! `main` calls [`run`] with a checked config, a bound listener and a shutdown future;
//! integration tests call it the same way with a oneshot receiver.

pub mod reload;
pub mod shutdown;

use anyhow::Context;
use hyper::header::HeaderValue;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::config::{self, Config, Retention, SourceConfig};
use crate::fetch::Fetcher;
use crate::http::{self, HttpState, SourcesPage};
use crate::item::SourceId;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::ops::systemd;
use crate::ops::watchdog::{self, Heartbeat};
use crate::publish::{Publisher, Site};
use crate::scheduler::{Plan, Scheduler};
use crate::store::Store;

/// 10 seconds for requests and polls in progress to finish after a shutdown signal;
/// systemd's default stop timeout is 90.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// 10 minutes between retention passes: items age by days, not seconds.
pub const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// 6 hours between sweeps of the secondary keys that point nowhere
/// ([`Store::drop_orphan_keys`]): they cost only disk, and a sweep reads two whole
/// trees and looks up every owner (a million items: 1.4-2.8 s of a core, about as
/// much as the rest of a retention pass).
pub const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(6 * 3600);

/// How often `systemctl status` gets a new status line.
pub const STATUS_EVERY: Duration = Duration::from_secs(30);

/// What retention keeps: the store-wide limits and the `max_items` of the sources
/// that set one. Sent anew on every reload.
#[derive(Clone, Debug)]
struct RetentionPlan {
    store: Retention,
    per_source: Arc<Vec<(SourceId, usize)>>,
    /// Every configured source, for the item counts of `/metrics`.
    sources: Arc<Vec<SourceId>>,
}

impl RetentionPlan {
    fn of(config: &Config) -> Self {
        let per_source = config
            .sources
            .iter()
            .filter_map(|s| Some((s.id.clone(), s.max_items?)))
            .collect();
        RetentionPlan {
            store: config.retention,
            per_source: Arc::new(per_source),
            sources: Arc::new(config.sources.iter().map(|s| s.id.clone()).collect()),
        }
    }
}

/// Trims the store to its retention limits now and every [`RETENTION_EVERY`], with
/// the limits of the latest config; counts every source's items for /metrics at
/// start-up, and recounts the sources a pass removed items from. After a pass, sweeps
/// the orphaned secondary keys when the store's last sweep is
/// [`ORPHAN_SWEEP_EVERY`] old.
async fn retain(
    store: Store,
    plan: watch::Receiver<RetentionPlan>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) {
    // The first pass also counts every source's items for /metrics, in the
    // background: a large store must not hold up the start.
    let mut first = true;
    loop {
        let RetentionPlan {
            store: retention,
            per_source: caps,
            sources,
        } = plan.borrow().clone();
        let keep_after = chrono::Utc::now()
            - chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
        let trimming = store.clone();
        let configured: HashSet<SourceId> = sources.iter().cloned().collect();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
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
                .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
            Ok::<_, crate::store::StoreError>((trimmed, recounted))
        })
        .await;
        let counted = match result {
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
                // At start-up, every source's count from the pass's own scan; a
                // source a poll has counted meanwhile keeps that fresher count.
                if first {
                    metrics.set_all_source_items(&sources, &trimmed.counts, false);
                }
                for (source, count) in recounted {
                    metrics.set_source_items(&source, count);
                }
                true
            }
            Ok(Err(err)) => {
                warn!(error = %err, "retention pass failed");
                false
            }
            Err(err) => {
                warn!(error = %err, "retention pass crashed");
                false
            }
        };
        if first && !counted {
            // Reads still work when writes fail (a full disk): count without the pass.
            count_items(&store, &sources, &metrics).await;
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

/// Counts every source's stored items into `metrics` (one scan of the index), for a
/// start-up whose retention pass failed; a source a poll has counted meanwhile keeps
/// that fresher count.
async fn count_items(store: &Store, sources: &[SourceId], metrics: &Metrics) {
    let counting = store.clone();
    match tokio::task::spawn_blocking(move || counting.item_counts()).await {
        Ok(Ok(counts)) => metrics.set_all_source_items(sources, &counts, false),
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

/// How long readers and proxies may reuse an output (`Cache-Control: max-age`, and
/// RSS `<ttl>` rounded up to minutes): the shortest poll interval. No source is read
/// more often than that, so a reader that asks more often mostly gets the same river;
/// one that asks less often misses nothing, since every output keeps `max_items`.
pub fn max_age(config: &Config) -> Duration {
    config.shortest_interval()
}

/// Runs the daemon until `shutdown` completes, reloading the config on SIGHUP (and on
/// edits of the file when `[config] watch` is set).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store_path = config.store_path.clone();
    let cache_bytes = config.store_cache_bytes;
    let store =
        tokio::task::spawn_blocking(move || Store::open_with_cache(&store_path, cache_bytes))
            .await?
            .with_context(|| format!("opening the store at {}", config.store_path.display()))?;
    // Large documents are sent from files, best kept on the store's disk.
    crate::http::zerocopy::keep_documents_in(&config.store_path);
    let health = Arc::new(Health::default());
    health.set_store_open();
    let metrics = Arc::new(Metrics::new());
    let fetcher = Fetcher::new(&config.poll).context("setting up the HTTP client")?;
    let local = listener.local_addr()?;
    let mut triggers = reload::Triggers::new(&config).context("listening for SIGHUP")?;

    // What the store already holds is served at once, before the first poll ends.
    let max_age = max_age(&config);
    let publisher = Arc::new(Publisher::new(store.clone(), site(&config, local)));
    let first = {
        let publisher = publisher.clone();
        tokio::task::spawn_blocking(move || publisher.render())
            .await?
            .context("rendering the stored items")?
    };
    let publisher = Arc::into_inner(publisher).expect("the first render has finished");
    info!(items = first.items, "serving the stored river");
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(first));

    // A reload sends the new settings to each part that applies them.
    let (site_tx, site_rx) = watch::channel(site(&config, local));
    let (plan_tx, plan_rx) = watch::channel(Plan {
        sources: config.sources.clone(),
        poll: config.poll.clone(),
    });
    let (retention_tx, retention_rx) = watch::channel(RetentionPlan::of(&config));
    let (sources_tx, sources_rx) = watch::channel(sources_page(&config));

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let poll_heartbeat = Heartbeat::default();
    let http_heartbeat = Heartbeat::default();
    tracker.spawn(publisher.run(snapshot_tx, site_rx, token.child_token()));
    let scheduler = Scheduler {
        store: store.clone(),
        fetcher,
        sources: config.sources.clone(),
        poll: config.poll.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
    };
    tracker.spawn(scheduler.run(
        plan_rx,
        poll_heartbeat.clone(),
        token.child_token(),
        tracker.clone(),
    ));
    tracker.spawn(retain(
        store.clone(),
        retention_rx,
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
        metrics: metrics.clone(),
        sources: sources_rx,
        send_timeout: config.send_timeout,
    };
    let mut server = tokio::spawn(http::serve(
        listener,
        http_state,
        http_heartbeat.clone(),
        token.child_token(),
    ));

    // The watchdog outlives the other tasks: it pings on through the drain.
    let watchdog_stop = CancellationToken::new();
    let watchdog = watchdog::period().map(|period| {
        tokio::spawn(watchdog::run(
            period,
            watchdog::tolerance(period),
            vec![
                ("poll loop", poll_heartbeat),
                ("HTTP accept loop", http_heartbeat),
            ],
            token.clone(),
            watchdog_stop.clone(),
            systemd::watchdog,
        ))
    });

    info!(listen = %local, sources = config.sources.len(), store = %config.store_path.display(), "tributary is up");
    systemd::ready();
    // What only a restart changes is compared with the config the process started with.
    let started = config.clone();
    let mut running = config;
    let mut status_every = tokio::time::interval(STATUS_EVERY);
    tokio::pin!(shutdown);
    let server_result = loop {
        tokio::select! {
            _ = &mut shutdown => break None,
            result = &mut server => break Some(result),
            trigger = triggers.next() => {
                systemd::reloading();
                info!(file = %running.path.display(), reason = trigger.as_str(), "reloading the config");
                let path = running.path.clone();
                match tokio::task::spawn_blocking(move || config::load(&path)).await? {
                    Ok(new) => {
                        for change in reload::needs_restart(&started, &new) {
                            warn!(change, "this change takes effect only when tributary restarts");
                        }
                        triggers.watch(new.watch);
                        site_tx.send_replace(site(&new, local));
                        plan_tx.send_replace(Plan { sources: new.sources.clone(), poll: new.poll.clone() });
                        retention_tx.send_replace(RetentionPlan::of(&new));
                        sources_tx.send_replace(sources_page(&new));
                        info!(sources = new.sources.len(), "config reloaded");
                        systemd::ready_with_status(&format!(
                            "reloaded {}: {} sources",
                            new.path.display(),
                            new.sources.len()
                        ));
                        running = new;
                    }
                    Err(err) => {
                        for line in err.to_string().lines() {
                            error!("{line}");
                        }
                        error!(file = %running.path.display(), "the config was not reloaded: the running one stays in force");
                        systemd::ready_with_status(&format!(
                            "reload failed, running the former config: {}",
                            err.to_string().lines().next().unwrap_or_default()
                        ));
                    }
                }
            }
            _ = status_every.tick() => {
                let (store, metrics, sources) = (store.clone(), metrics.clone(), running.sources.clone());
                if let Ok(line) = tokio::task::spawn_blocking(move || status_line(&store, &metrics, &sources)).await {
                    systemd::status(&line);
                }
            }
        }
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
    watchdog_stop.cancel();
    if let Some(watchdog) = watchdog {
        let _ = watchdog.await;
    }
    info!("stopped");
    server_result
        .context("the HTTP server task failed")?
        .context("the HTTP server failed")
}

/// What `/sources` lists under `config`.
fn sources_page(config: &Config) -> Arc<SourcesPage> {
    Arc::new(SourcesPage {
        title: config.publish.title.clone(),
        sources: config.sources.clone(),
    })
}

/// What the outputs say, from `config`, served on `local`.
fn site(config: &Config, local: std::net::SocketAddr) -> Site {
    Site::from_config(
        config,
        local.to_string(),
        max_age(config).as_secs().div_ceil(60).max(1),
    )
}

/// The status line of `systemctl status`: "polling 42 sources, 3 failing, 1234 items".
/// Blocking: it reads every source's state. The items are the sources' counts kept
/// in `metrics`, since counting the store itself would read every stored item.
pub fn status_line(store: &Store, metrics: &Metrics, sources: &[SourceConfig]) -> String {
    let failing = sources
        .iter()
        .filter(|s| {
            store
                .source_state(&s.id)
                .is_ok_and(|state| state.consecutive_failures > 0)
        })
        .count();
    let items: u64 = sources
        .iter()
        .filter_map(|s| metrics.source_items(&s.id))
        .sum();
    format!(
        "polling {} sources, {failing} failing, {items} items",
        sources.len()
    )
}
