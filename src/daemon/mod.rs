//! Wiring, read top to bottom: open the store, publish what it holds, start polling
//! and serving, apply reloads until the shutdown signal, stop in order, flush.
//!
//! `tributary run` (`cli::run`) calls [`run`] with a checked config, a bound
//! listener and a shutdown future; integration tests call it the same way with a
//! oneshot receiver. Retention, the
//! periodic trim of the store, is in `retention.rs`; applying a reload in `reload.rs`;
//! the WebSub subscriber's wiring in `websub.rs`.

mod cluster;
mod config_sync;
pub mod reload;
mod retention;
pub mod shutdown;
mod websub;

use anyhow::Context;
use hyper::header::HeaderValue;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{Config, SharedSources};
use crate::fetch::Fetcher;
use crate::http::{self, HttpState, SourcesPage};
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::ops::systemd;
use crate::ops::watchdog::{self, Heartbeat};
use crate::publish::{Publisher, Site, Snapshot};
use crate::scheduler::{Plan, Scheduler};
use crate::store::Store;
use retention::RetentionPlan;
pub use retention::{ORPHAN_SWEEP_EVERY, RETENTION_EVERY};

/// 10 seconds for requests and polls in progress to finish after a shutdown signal;
/// systemd's default stop timeout is 90.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// How often `systemctl status` gets a new status line.
pub const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Runs the daemon until `shutdown` completes, reloading the config on SIGHUP (and on
/// edits of the file when `[config] watch` is set).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // What only a restart changes is compared with the config the process started with.
    let (started, mut config) = reload::restart_view(config);
    let (store, leases) = open_store(&config).await?;
    let health = Arc::new(Health::default());
    health.set_store_open();
    let metrics = Arc::new(Metrics::new());
    metrics.set_per_source(config.per_source_metrics);
    metrics.set_cluster(i64::from(crate::store::postgres::PARTITIONS), 1);
    let view = cluster_view(&config, &store, leases.as_ref());
    let node = leases.map(|leases| cluster::Node::start(leases, metrics.clone()));
    metrics.name_sources(&config.sources);
    let fetcher = Fetcher::new(&config.poll).context("setting up the HTTP client")?;
    let local = listener.local_addr()?;
    let admin = bind_admin(&config).await?;
    let mut triggers = reload::Triggers::new(&config).context("listening for SIGHUP")?;
    let sync_stop = CancellationToken::new();
    let _stop_sync = sync_stop.clone().drop_guard();
    let sync = follow_cluster(&config, &store, &mut triggers, sync_stop).await;
    // From here on the sources are in `settings`, one list every part shares.
    let (mut settings, receivers) = Settings::channels(&mut config, local);
    // What the store already holds is served at once, before the first poll ends.
    let site = receivers.site.borrow().clone();
    let (publisher, first) = publish_stored(&store, site).await?;
    let websub = websub::wire(&config, &store, &mut settings)?;
    let parts = Parts {
        store,
        health,
        metrics,
        node: tokio::sync::Mutex::new(node),
        view,
        sync,
    };
    // `started` has every setting of `config` and the source polled most often
    // (for `Cache-Control`): `config`'s sources are in `settings` now.
    let mut tasks = Tasks::start(
        &started,
        &parts,
        publisher,
        first,
        fetcher,
        receivers,
        (listener, admin),
        websub,
    );
    info!(listen = %local, sources = settings.lists.enabled.len(), store = %config.store_path.display(), "tributary is up");
    systemd::ready();
    let stopped_server = until_shutdown(
        (started, config),
        shutdown,
        &mut tasks.server,
        &mut triggers,
        &mut settings,
        &parts,
    )
    .await?;
    tasks.stop(stopped_server, &parts).await
}

/// The `[server] admin_listen` listener, when the config names one.
async fn bind_admin(config: &Config) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = config.admin_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!(
            "listening on {addr} (change [server] admin_listen in {})",
            config.path.display()
        )
    })?;
    info!(admin_listen = %listener.local_addr()?, "serving /metrics, /sources, /healthz and /readyz here only");
    Ok(Some(listener))
}

/// Opens the store named in `config`, off the async threads; for a node of a
/// cluster, with its first leases.
async fn open_store(
    config: &Config,
) -> anyhow::Result<(Store, Option<crate::store::postgres::Leases>)> {
    if let Some(cluster) = config.cluster.clone() {
        let (store, leases) = tokio::task::spawn_blocking(move || cluster::join(&cluster))
            .await?
            .context("opening the PostgreSQL store")?;
        return Ok((store, Some(leases)));
    }
    let store_path = config.store_path.clone();
    let cache_bytes = config.store_cache_bytes;
    let store =
        tokio::task::spawn_blocking(move || Store::open_with_cache(&store_path, cache_bytes))
            .await?
            .with_context(|| format!("opening the store at {}", config.store_path.display()))?;
    // Large documents are sent from files, best kept on the store's disk.
    crate::publish::body::keep_documents_in(&config.store_path);
    Ok((store, None))
}

/// Renders what the store holds, for serving before the first poll ends; returns the
/// publisher, which renders again on every change, and its first snapshot.
async fn publish_stored(store: &Store, site: Arc<Site>) -> anyhow::Result<(Publisher, Snapshot)> {
    let publisher = Arc::new(Publisher::new(store.clone(), site));
    let first = {
        let publisher = publisher.clone();
        tokio::task::spawn_blocking(move || publisher.render())
            .await?
            .context("rendering the stored items")?
    };
    let publisher = Arc::into_inner(publisher).expect("the first render has finished");
    info!(items = first.items, "serving the stored river");
    Ok((publisher, first))
}

/// What the running parts share: the store, the readiness flags and the metrics.
struct Parts {
    store: Store,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// This node's part in a cluster, when the store is shared.
    node: tokio::sync::Mutex<Option<cluster::Node>>,
    /// What the operator's endpoints show of the cluster.
    view: Option<Arc<crate::ops::cluster::ClusterView>>,
    /// How this node's reloads reach the other nodes of its cluster.
    sync: Option<config_sync::ConfigSync>,
}

/// For a node of a cluster: reloads when another node does, and is ready to tell the
/// others of its own reloads.
async fn follow_cluster(
    config: &Config,
    store: &Store,
    triggers: &mut reload::Triggers,
    stop: CancellationToken,
) -> Option<config_sync::ConfigSync> {
    let every = config.cluster.as_ref()?.watch_every;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let sync = config_sync::ConfigSync::start(store, every, tx, stop).await?;
    triggers.follow_cluster(rx);
    Some(sync)
}

/// The operator's view of the cluster, for a node of one.
fn cluster_view(
    config: &Config,
    store: &Store,
    leases: Option<&crate::store::postgres::Leases>,
) -> Option<Arc<crate::ops::cluster::ClusterView>> {
    let (cluster, leases) = (config.cluster.as_ref()?, leases?);
    Some(Arc::new(crate::ops::cluster::ClusterView::new(
        leases.clone(),
        store.clone(),
        cluster.lease_ttl,
    )))
}

/// The sources of a config, taken out of it and shared by every part.
#[derive(Clone, Default)]
struct Lists {
    /// The sources polled.
    enabled: SharedSources,
    /// Those with `enabled = false`, listed by `/sources` only.
    disabled: SharedSources,
    /// What they were read from, for a reload to take over the unchanged ones.
    texts: Option<Arc<crate::config::SourceTexts>>,
}

impl Lists {
    /// Takes `config`'s sources out of it (moved, not copied).
    fn take(config: &mut Config) -> Lists {
        Lists {
            enabled: crate::config::share(std::mem::take(&mut config.sources)),
            disabled: crate::config::share(std::mem::take(&mut config.disabled)),
            texts: config.texts.take(),
        }
    }
}

/// Where a reload sends the new settings: one channel to each part that applies them.
struct Settings {
    local: SocketAddr,
    /// The sources in force, as sent to the parts.
    lists: Lists,
    site: watch::Sender<Arc<Site>>,
    plan: watch::Sender<Plan>,
    retention: watch::Sender<RetentionPlan>,
    sources: watch::Sender<Arc<SourcesPage>>,
    /// The sources, for the WebSub subscriber when it runs.
    websub: Option<watch::Sender<SharedSources>>,
}

/// The receiving ends of the [`Settings`] channels, one for each part.
struct Receivers {
    site: watch::Receiver<Arc<Site>>,
    plan: watch::Receiver<Plan>,
    retention: watch::Receiver<RetentionPlan>,
    sources: watch::Receiver<Arc<SourcesPage>>,
}

impl Settings {
    /// The channels, holding the settings of `config`, whose sources they take.
    fn channels(config: &mut Config, local: SocketAddr) -> (Settings, Receivers) {
        let max_age = max_age(config);
        let lists = Lists::take(config);
        let (site_tx, site_rx) = watch::channel(site(config, &lists, max_age, local));
        let (plan_tx, plan_rx) = watch::channel(Plan {
            sources: lists.enabled.clone(),
            poll: config.poll.clone(),
        });
        let (retention_tx, retention_rx) =
            watch::channel(RetentionPlan::of(config.retention, &lists.enabled));
        let (sources_tx, sources_rx) = watch::channel(sources_page(config, &lists));
        let settings = Settings {
            local,
            lists,
            site: site_tx,
            plan: plan_tx,
            retention: retention_tx,
            sources: sources_tx,
            websub: None,
        };
        let receivers = Receivers {
            site: site_rx,
            plan: plan_rx,
            retention: retention_rx,
            sources: sources_rx,
        };
        (settings, receivers)
    }

    /// Sends the settings of a reloaded `config` to every part, with its sources
    /// `lists` (`config` holds at most the one polled most often, which it gives up).
    fn send(&mut self, config: &mut Config, lists: Lists) {
        let max_age = max_age(config);
        config.sources.clear();
        self.lists = lists;
        self.site
            .send_replace(site(config, &self.lists, max_age, self.local));
        self.plan.send_replace(Plan {
            sources: self.lists.enabled.clone(),
            poll: config.poll.clone(),
        });
        self.retention
            .send_replace(RetentionPlan::of(config.retention, &self.lists.enabled));
        self.sources.send_replace(sources_page(config, &self.lists));
        if let Some(websub) = &self.websub {
            websub.send_replace(self.lists.enabled.clone());
        }
    }
}

/// The running tasks, and what stops them.
struct Tasks {
    token: CancellationToken,
    tracker: TaskTracker,
    server: JoinHandle<std::io::Result<()>>,
    /// The watchdog outlives the other tasks: it pings on through the drain.
    watchdog: Option<JoinHandle<()>>,
    watchdog_stop: CancellationToken,
}

/// Starts the WebSub subscriber when it is wired: its link to the scheduler, and the
/// registry that answers the hubs' callbacks.
fn start_websub(
    websub: Option<websub::Wired>,
    fetcher: &Fetcher,
    token: &CancellationToken,
    tracker: &TaskTracker,
) -> (
    Option<crate::websub::Link>,
    Option<Arc<crate::websub::Registry>>,
) {
    let Some(wired) = websub else {
        return (None, None);
    };
    let (link, subscriber) = wired.start(fetcher.clone(), token.child_token());
    tracker.spawn(subscriber);
    let registry = link.adverts.registry.clone();
    (Some(link), Some(registry))
}

/// The scheduler of the sources of `config` this node polls (all of them, but for
/// a node of a cluster), writing to `parts`' store, and the plans it takes.
fn scheduler(
    config: &Config,
    parts: &Parts,
    fetcher: Fetcher,
    plan: watch::Receiver<Plan>,
) -> (Scheduler, watch::Receiver<Plan>) {
    let (sources, plans) = {
        let node = parts
            .node
            .try_lock()
            .expect("nothing else holds the node yet");
        cluster::node_plans(plan, node.as_ref())
    };
    let scheduler = Scheduler {
        store: parts.store.clone(),
        fetcher,
        sources,
        poll: config.poll.clone(),
        metrics: parts.metrics.clone(),
        health: parts.health.clone(),
    };
    (scheduler, plans)
}

/// `Cache-Control` of every output: public, for the shortest poll interval.
fn cache_control(config: &Config) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={}", max_age(config).as_secs()))
        .expect("digits are a valid header value")
}

impl Tasks {
    /// Starts publishing, polling, retention, serving, the WebSub subscriber (when
    /// wired) and the watchdog.
    #[allow(clippy::too_many_arguments)]
    fn start(
        config: &Config,
        parts: &Parts,
        publisher: Publisher,
        first: Snapshot,
        fetcher: Fetcher,
        receivers: Receivers,
        (listener, admin): (TcpListener, Option<TcpListener>),
        websub: Option<websub::Wired>,
    ) -> Tasks {
        let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(first));
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let poll_heartbeat = Heartbeat::default();
        let http_heartbeat = Heartbeat::default();
        tracker.spawn(publisher.run(snapshot_tx, receivers.site, token.child_token()));
        let (link, registry) = start_websub(websub, &fetcher, &token, &tracker);
        let (scheduler, plans) = scheduler(config, parts, fetcher.clone(), receivers.plan);
        let (resets, resets_rx) = tokio::sync::mpsc::unbounded_channel();
        tracker.spawn(scheduler.run(
            plans,
            resets_rx,
            poll_heartbeat.clone(),
            token.child_token(),
            tracker.clone(),
            link,
        ));
        tracker.spawn(retention::retain(
            parts.store.clone(),
            receivers.retention,
            parts.metrics.clone(),
            token.child_token(),
        ));
        let hub = crate::hub::Hub::start(
            &config.publish.push,
            parts.store.clone(),
            fetcher.clone(),
            snapshot_rx.clone(),
            tracker.clone(),
            token.child_token(),
        );
        let http_state = HttpState {
            hub,
            snapshot: snapshot_rx,
            store: parts.store.clone(),
            cache_control: cache_control(config),
            max_limit: config.publish.max_items,
            health: parts.health.clone(),
            metrics: parts.metrics.clone(),
            sources: receivers.sources,
            send_timeout: config.send_timeout,
            admin: http::admin::Admin {
                metrics_off: !config.metrics,
                resets: Some(resets),
                ..Default::default()
            },
            websub: registry,
            cluster: parts.view.clone(),
        };
        let server = tokio::spawn(http::serve_all(
            listener,
            admin,
            http_state,
            http_heartbeat.clone(),
            token.child_token(),
        ));
        let watchdog_stop = CancellationToken::new();
        let watchdog = start_watchdog(poll_heartbeat, http_heartbeat, &token, &watchdog_stop);
        Tasks {
            token,
            tracker,
            server,
            watchdog,
            watchdog_stop,
        }
    }

    /// Stops in order: readiness off, tasks told to stop, requests drained (or cut
    /// at [`DRAIN_DEADLINE`]), polls waited for, the store flushed, the watchdog last.
    /// `stopped_server` is the server's result when it stopped on its own.
    async fn stop(
        mut self,
        stopped_server: Option<ServerResult>,
        parts: &Parts,
    ) -> anyhow::Result<()> {
        systemd::stopping();
        parts.health.set_draining();
        self.token.cancel();
        let server_result = match stopped_server {
            Some(result) => result,
            None => match tokio::time::timeout(DRAIN_DEADLINE, &mut self.server).await {
                Ok(result) => result,
                Err(_) => {
                    warn!("HTTP connections still open after the drain deadline; closing them");
                    self.server.abort();
                    Ok(Ok(()))
                }
            },
        };
        self.tracker.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("polls still running after the drain deadline; stopping anyway");
        }
        if let Some(node) = parts.node.lock().await.as_mut() {
            node.leave().await;
        }
        parts.store.flush().await.context("flushing the store")?;
        self.watchdog_stop.cancel();
        if let Some(watchdog) = self.watchdog {
            let _ = watchdog.await;
        }
        info!("stopped");
        server_result
            .context("the HTTP server task failed")?
            .context("the HTTP server failed")
    }
}

/// Starts the systemd watchdog when systemd asks for one: it pings while the poll
/// loop and the HTTP accept loop beat, on through the drain until `stop`.
fn start_watchdog(
    poll_heartbeat: Heartbeat,
    http_heartbeat: Heartbeat,
    draining: &CancellationToken,
    stop: &CancellationToken,
) -> Option<JoinHandle<()>> {
    watchdog::period().map(|period| {
        tokio::spawn(watchdog::run(
            period,
            watchdog::tolerance(period),
            vec![
                ("poll loop", poll_heartbeat),
                ("HTTP accept loop", http_heartbeat),
            ],
            draining.clone(),
            stop.clone(),
            systemd::watchdog,
        ))
    })
}

/// How the HTTP server task ended.
type ServerResult = Result<std::io::Result<()>, JoinError>;

/// Applies reloads and updates the status line until `shutdown` completes or the
/// server stops on its own; then the server's result.
async fn until_shutdown(
    (started, mut running): (Config, Config),
    shutdown: impl Future<Output = ()>,
    server: &mut JoinHandle<std::io::Result<()>>,
    triggers: &mut reload::Triggers,
    settings: &mut Settings,
    parts: &Parts,
) -> anyhow::Result<Option<ServerResult>> {
    let mut status_every = tokio::time::interval(STATUS_EVERY);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(None),
            result = &mut *server => return Ok(Some(result)),
            trigger = triggers.next() => {
                running = reload::apply(trigger, &started, running, triggers, settings).await?;
                if let Some(sync) = parts.sync.as_ref().filter(|_| trigger != reload::Trigger::Cluster) {
                    sync.announce().await;
                }
                parts.metrics.set_per_source(running.per_source_metrics);
            }
            _ = status_every.tick() => update_status(parts, settings.lists.enabled.len()).await,
        }
    }
}

/// Sends `systemctl status` a new [`status_line`] (`sources` being polled).
async fn update_status(parts: &Parts, sources: usize) {
    let metrics = &parts.metrics;
    systemd::status(&status_line(
        sources,
        metrics.failing_sources(),
        metrics.item_counts().total(),
    ));
}

/// How long readers and proxies may reuse an output (`Cache-Control: max-age`, and
/// RSS `<ttl>` rounded up to minutes): the shortest poll interval. No source is read
/// more often than that, so a reader that asks more often mostly gets the same river;
/// one that asks less often misses nothing, since every output keeps `max_items`.
pub fn max_age(config: &Config) -> Duration {
    config.shortest_interval()
}

/// What `/sources` lists under `config`, of sources `lists`.
fn sources_page(config: &Config, lists: &Lists) -> Arc<SourcesPage> {
    Arc::new(SourcesPage {
        title: config.publish.title.clone(),
        sources: crate::ops::listing::SourceList::shared(
            lists.enabled.clone(),
            lists.disabled.clone(),
        ),
    })
}

/// What the outputs say, from `config` and its sources `lists` (taken out of it),
/// whose lifetime was `max_age`, served on `local`.
fn site(config: &Config, lists: &Lists, max_age: Duration, local: SocketAddr) -> Arc<Site> {
    Arc::new(Site::from_shared(
        config,
        &lists.enabled,
        local.to_string(),
        max_age.as_secs().div_ceil(60).max(1),
    ))
}

/// The status line of `systemctl status`: "polling 42 sources, 3 failing, 1234 items".
/// The failing sources are those whose last poll failed, and the items the sources'
/// last counts ([`ItemCounts`](crate::ops::item_counts::ItemCounts)), both kept by the metrics: neither the source states
/// nor the items are read for it, which with 100 000 sources would be a scan every
/// [`STATUS_EVERY`].
pub fn status_line(sources: usize, failing: usize, items: u64) -> String {
    format!("polling {sources} sources, {failing} failing, {items} items")
}
