//! What the daemon counts, served at `GET /metrics` in the Prometheus text format
//! (OpenMetrics flavour, which Prometheus scrapes natively), with `prometheus-client`.
//!
//! The scheduler records every poll (result, fetch time, bytes, items added, the
//! source's item count and last success); `http` records every request by route
//! pattern and status, so a scanner probing random paths adds one `unknown` series,
//! not one per path. Per-source series are labelled with the source's URL as written
//! in `feeds.toml` and shown everywhere (`SourceConfig::shown_url`: no secrets, as in
//! the logs), so their number is the number of sources.
//!
//! Per-source series are kept only while `[server] per_source_metrics` says so (by
//! default up to 1000 sources): beyond that a scrape would run to tens of megabytes,
//! and the sums stand in for them. The sums are always exported: polls by result
//! (`tributary_poll_results_total`), the sources (`tributary_sources`), those whose
//! last poll failed (`tributary_sources_failing`) and the items they hold
//! (`tributary_items`).
//!
//! The per-source item counts are application state, kept in an [`ItemCounts`] that
//! `/sources` and the status line read; each count set there is also set on the
//! `tributary_source_items` gauge, which is only exported, never read back.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use super::item_counts::ItemCounts;
use super::process_metrics::ProcessCollector;
use crate::config::{PerSourceMetrics, SourceConfig};
use crate::item::SourceId;

/// The `Content-Type` of the text `encode` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Fetch time buckets, in seconds: from a fast local server (50 ms) to the default
/// 30-second timeout.
const FETCH_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

/// What a poll came to, as the `result` label says it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PollOutcome {
    /// New content fetched and stored.
    ok,
    /// 304, or a body identical to the last one.
    not_modified,
    failed,
    gone,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    source: String,
    result: PollOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: PollOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: u16,
}

/// The labels of `tributary_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    /// The CPU architecture built for (`x86_64`, `aarch64`, ...).
    arch: &'static str,
    /// `release`, or `debug` for a build with debug assertions.
    profile: &'static str,
}

impl Default for BuildLabels {
    fn default() -> Self {
        BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            arch: std::env::consts::ARCH,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: u16,
}

/// Every metric the daemon exports. Shared (`Arc`) by the scheduler and `http`;
/// recording is a few atomic operations.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    polls: Family<PollLabels, Counter>,
    fetch_duration: Histogram,
    fetched_bytes: Counter,
    items_stored: Counter,
    /// Mirrors `item_counts`, for export.
    source_items: Family<SourceLabels, Gauge>,
    item_counts: ItemCounts,
    store_size: Gauge,
    last_success: Family<SourceLabels, Gauge>,
    http_requests: Family<HttpLabels, Counter>,
    http_connections: Family<WorkerLabels, Gauge>,
    /// A node of a cluster: the partitions it holds, and the live nodes.
    cluster: (Gauge, Gauge),
    /// The `source` label of each configured source: its shown URL.
    labels: RwLock<HashMap<SourceId, String>>,
    sums: Sums,
    /// The sources whose last poll failed (or, before their first poll of this run,
    /// whose remembered state says so).
    failing: RwLock<HashSet<SourceId>>,
    /// `[server] per_source_metrics`, as [`PerSourceMetrics`] `as u8`.
    mode: AtomicU8,
    /// Whether per-source series are kept now (the mode applied to the count).
    per_source: AtomicBool,
}

/// The sums over every source, exported whether or not sources have series of
/// their own.
#[derive(Debug)]
struct Sums {
    /// Polls of every source by result.
    poll_results: Family<ResultLabels, Counter>,
    sources: Gauge,
    sources_failing: Gauge,
    items: Gauge,
}

impl Sums {
    /// Registers the sums, and the build's info beside them.
    fn register(registry: &mut Registry) -> Sums {
        registry.register(
            "build",
            "The running build: its version, target and profile",
            Info::new(BuildLabels::default()),
        );
        let poll_results = Family::<ResultLabels, Counter>::default();
        registry.register(
            "poll_results",
            "Polls of every source, by result",
            poll_results.clone(),
        );
        let sources = Gauge::default();
        registry.register("sources", "Sources being polled", sources.clone());
        let sources_failing = Gauge::default();
        registry.register(
            "sources_failing",
            "Sources whose last poll failed",
            sources_failing.clone(),
        );
        let items = Gauge::default();
        registry.register(
            "items",
            "Items in the store, over every source (as last counted)",
            items.clone(),
        );
        Sums {
            poll_results,
            sources,
            sources_failing,
            items,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The gauges of a node of a cluster: partitions held, live nodes.
fn cluster_gauges(registry: &mut Registry) -> (Gauge, Gauge) {
    let partitions = Gauge::default();
    registry.register(
        "cluster_partitions",
        "Partitions of the sources this node holds (all of them without a cluster)",
        partitions.clone(),
    );
    let nodes = Gauge::default();
    registry.register(
        "cluster_nodes",
        "Live nodes sharing the store, this one included",
        nodes.clone(),
    );
    (partitions, nodes)
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        // The standard `process_*` metrics have no prefix; tributary's own have one.
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("tributary");
        let sums = Sums::register(registry);
        let polls = Family::<PollLabels, Counter>::default();
        registry.register("polls", "Polls by source and result", polls.clone());
        let fetch_duration = Histogram::new(FETCH_BUCKETS);
        registry.register_with_unit(
            "fetch_duration",
            "Time from sending a request to the whole body received",
            Unit::Seconds,
            fetch_duration.clone(),
        );
        let fetched_bytes = Counter::default();
        registry.register_with_unit(
            "fetched",
            "Feed bytes received (after decompression)",
            Unit::Bytes,
            fetched_bytes.clone(),
        );
        let items_stored = Counter::default();
        registry.register(
            "items_stored",
            "New items written to the store",
            items_stored.clone(),
        );
        let source_items = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "source_items",
            "Items in the store per source",
            source_items.clone(),
        );
        let store_size = Gauge::default();
        registry.register_with_unit(
            "store_size",
            "Size of the store on disk",
            Unit::Bytes,
            store_size.clone(),
        );
        let last_success = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "source_last_success_timestamp_seconds",
            "Unix time of each source's last successful poll",
            last_success.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by route pattern and status",
            http_requests.clone(),
        );
        let http_connections = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "http_connections",
            "Open HTTP connections, by serving thread",
            http_connections.clone(),
        );
        Metrics {
            cluster: cluster_gauges(registry),
            registry: root,
            polls,
            fetch_duration,
            fetched_bytes,
            items_stored,
            source_items,
            item_counts: ItemCounts::default(),
            store_size,
            last_success,
            http_requests,
            http_connections,
            labels: RwLock::default(),
            sums,
            failing: RwLock::default(),
            mode: AtomicU8::new(PerSourceMetrics::Auto as u8),
            per_source: AtomicBool::new(true),
        }
    }

    /// `[server] per_source_metrics`: whether sources get series of their own.
    pub fn set_per_source(&self, mode: PerSourceMetrics) {
        self.mode.store(mode as u8, Ordering::Release);
        self.settle(
            self.labels
                .read()
                .expect("the labels are never poisoned")
                .len(),
        );
    }

    /// Whether sources have series of their own now.
    pub fn per_source(&self) -> bool {
        self.per_source.load(Ordering::Acquire)
    }

    /// Applies the mode to `sources` sources; when per-source series stop, the
    /// ones kept so far go.
    fn settle(&self, sources: usize) {
        let mode = match self.mode.load(Ordering::Acquire) {
            m if m == PerSourceMetrics::On as u8 => PerSourceMetrics::On,
            m if m == PerSourceMetrics::Off as u8 => PerSourceMetrics::Off,
            _ => PerSourceMetrics::Auto,
        };
        let on = mode.applies_to(sources);
        self.sums
            .sources
            .set(i64::try_from(sources).unwrap_or(i64::MAX));
        if self.per_source.swap(on, Ordering::AcqRel) && !on {
            self.polls.clear();
            self.last_success.clear();
            self.source_items.clear();
        }
    }

    /// The sources being polled, for the `source` label of their series: each is
    /// labelled with its shown URL, which hides the secrets of its own
    /// `secret_query` too.
    pub fn name_sources<'a>(&self, sources: impl IntoIterator<Item = &'a SourceConfig>) {
        let mut labels = self.labels.write().expect("the labels are never poisoned");
        for source in sources {
            labels.insert(source.id.clone(), source.shown_url());
        }
        let count = labels.len();
        drop(labels);
        self.settle(count);
    }

    /// How many sources' last poll failed.
    pub fn failing_sources(&self) -> usize {
        self.failing
            .read()
            .expect("the failing set is never poisoned")
            .len()
    }

    /// `source`'s remembered state says its last poll failed (at start-up, before
    /// its first poll of this run).
    pub fn mark_failing(&self, source: &SourceId) {
        self.failing
            .write()
            .expect("the failing set is never poisoned")
            .insert(source.clone());
    }

    /// This node holds `partitions`, and `nodes` share the store.
    pub fn set_cluster(&self, partitions: i64, nodes: i64) {
        self.cluster.0.set(partitions);
        self.cluster.1.set(nodes);
    }

    /// The `source` label of `source`: its shown URL.
    fn label(&self, source: &SourceId) -> String {
        let labels = self.labels.read().expect("the labels are never poisoned");
        match labels.get(source) {
            Some(label) => label.clone(),
            None => crate::config::shown_url(&source.0, &[]).into_owned(),
        }
    }

    /// One poll of `source` ended with `outcome`; `success_at` (Unix seconds) when it
    /// succeeded.
    pub fn record_poll(&self, source: &SourceId, outcome: PollOutcome, success_at: Option<i64>) {
        self.sums
            .poll_results
            .get_or_create(&ResultLabels { result: outcome })
            .inc();
        {
            let mut failing = self
                .failing
                .write()
                .expect("the failing set is never poisoned");
            if outcome == PollOutcome::failed {
                failing.insert(source.clone());
            } else {
                failing.remove(source);
            }
        }
        if !self.per_source() {
            return;
        }
        self.polls
            .get_or_create(&PollLabels {
                source: self.label(source),
                result: outcome,
            })
            .inc();
        if let Some(at) = success_at {
            self.last_success
                .get_or_create(&SourceLabels {
                    source: self.label(source),
                })
                .set(at);
        }
    }

    /// `source` left the config: its series go, so `/metrics` lists only the
    /// sources being polled.
    pub fn forget_source(&self, source: &SourceId) {
        for result in [
            PollOutcome::ok,
            PollOutcome::not_modified,
            PollOutcome::failed,
            PollOutcome::gone,
        ] {
            self.polls.remove(&PollLabels {
                source: self.label(source),
                result,
            });
        }
        let labels = SourceLabels {
            source: self.label(source),
        };
        self.last_success.remove(&labels);
        self.source_items.remove(&labels);
        self.item_counts.forget(source);
        self.failing
            .write()
            .expect("the failing set is never poisoned")
            .remove(source);
        let mut names = self.labels.write().expect("the labels are never poisoned");
        names.remove(source);
        let count = names.len();
        drop(names);
        self.settle(count);
    }

    /// One fetch that received a response, and how many body bytes it brought.
    pub fn record_fetch(&self, took: Duration, bytes: usize) {
        self.fetch_duration.observe(took.as_secs_f64());
        self.fetched_bytes.inc_by(bytes as u64);
    }

    /// `added` new items were stored.
    pub fn record_stored(&self, added: usize) {
        self.items_stored.inc_by(added as u64);
    }

    /// `source` now holds `count` items in the store.
    pub fn set_source_items(&self, source: &SourceId, count: u64) {
        self.item_counts.set(source, count);
        self.export_item_count(source, count);
    }

    /// `source` gained `added` items: its new count, exported; `None` when it was
    /// not counted yet (the caller counts it and calls [`Metrics::set_source_items`]).
    pub fn add_source_items(&self, source: &SourceId, added: u64) -> Option<u64> {
        let count = self.item_counts.add(source, added)?;
        self.export_item_count(source, count);
        Some(count)
    }

    /// Sets every source's item count from a count of the whole store; with
    /// `replace` false, only those not counted yet.
    pub fn set_all_source_items(
        &self,
        sources: &[SourceId],
        counts: &HashMap<SourceId, u64>,
        replace: bool,
    ) {
        self.item_counts.set_all(sources, counts, replace);
        if !self.per_source() {
            return;
        }
        for source in sources {
            if let Some(count) = self.item_counts.get(source) {
                self.export_item_count(source, count);
            }
        }
    }

    /// Sets `source`'s `tributary_source_items` series to `count`.
    fn export_item_count(&self, source: &SourceId, count: u64) {
        if !self.per_source() {
            return;
        }
        self.source_items
            .get_or_create(&SourceLabels {
                source: self.label(source),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The last counted number of items of `source`; `None` before it was counted.
    pub fn source_items(&self, source: &SourceId) -> Option<u64> {
        self.item_counts.get(source)
    }

    /// Every source's last counted number of items.
    pub fn item_counts(&self) -> &ItemCounts {
        &self.item_counts
    }

    /// One HTTP request to `route` (a pattern such as `/tags/{tag}.xml`) answered
    /// with `status`.
    pub fn record_request(&self, route: &'static str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels { route, status })
            .inc();
    }

    /// The count of open HTTP connections of serving thread `worker`, which `http`
    /// keeps (and balances the threads on).
    pub fn http_connections(&self, worker: usize) -> Gauge {
        self.http_connections
            .get_or_create(&WorkerLabels {
                worker: u16::try_from(worker).unwrap_or(u16::MAX),
            })
            .clone()
    }

    /// The text exposition, with the store's current size on disk.
    pub fn encode(&self, store_size: u64) -> String {
        self.store_size
            .set(i64::try_from(store_size).unwrap_or(i64::MAX));
        self.sums
            .sources_failing
            .set(i64::try_from(self.failing_sources()).unwrap_or(i64::MAX));
        self.sums
            .items
            .set(i64::try_from(self.item_counts.total()).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_source_leaves_no_series() {
        let metrics = Metrics::new();
        let kept = SourceId("http://a.example/rss".into());
        let removed = SourceId("http://b.example/rss".into());
        for source in [&kept, &removed] {
            metrics.record_poll(source, PollOutcome::ok, Some(1_770_000_000));
            metrics.record_poll(source, PollOutcome::failed, None);
            metrics.set_source_items(source, 3);
        }
        metrics.forget_source(&removed);
        let text = metrics.encode(0);
        assert!(text.contains("a.example"), "{text}");
        assert!(!text.contains("b.example"), "{text}");
    }

    /// `n` sources on one host, as the config would give them.
    fn sources(n: usize) -> Vec<SourceConfig> {
        let text: String = (0..n)
            .map(|i| format!("[[source]]\nurl = \"http://a.example/{i}.xml\"\n"))
            .collect();
        crate::config::parse(std::path::Path::new("feeds.toml"), &text, None)
            .unwrap()
            .sources
    }

    /// Polls every source once (the first one fails) and counts 3 items for each;
    /// the exposition.
    fn scrape(metrics: &Metrics, sources: &[SourceConfig]) -> String {
        for (i, source) in sources.iter().enumerate() {
            let outcome = if i == 0 {
                PollOutcome::failed
            } else {
                PollOutcome::ok
            };
            metrics.record_poll(&source.id, outcome, Some(1_770_000_000));
            metrics.set_source_items(&source.id, 3);
        }
        metrics.encode(0)
    }

    #[test]
    fn past_the_threshold_sources_are_summed_not_listed() {
        let metrics = Metrics::new();
        let at_limit = sources(crate::config::PER_SOURCE_METRICS_AUTO_LIMIT);
        metrics.name_sources(&at_limit);
        let text = scrape(&metrics, &at_limit);
        assert!(metrics.per_source());
        assert!(text.contains(
            "tributary_polls_total{source=\"http://a.example/999.xml\",result=\"ok\"} 1"
        ));
        assert!(
            text.contains("tributary_poll_results_total{result=\"ok\"} 999"),
            "{text}"
        );

        // One more source: the per-source series go, the sums stay and keep counting.
        let past = sources(crate::config::PER_SOURCE_METRICS_AUTO_LIMIT + 1);
        metrics.name_sources(&past);
        assert!(!metrics.per_source());
        let text = scrape(&metrics, &past);
        assert!(
            !text.contains("source=\""),
            "per-source series left in the text"
        );
        for line in [
            "tributary_poll_results_total{result=\"ok\"} 1999",
            "tributary_poll_results_total{result=\"failed\"} 2",
            "tributary_sources 1001",
            "tributary_sources_failing 1",
            "tributary_items 3003",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(text.len() < 8 * 1024, "{} bytes", text.len());

        // Forced on, every source is listed again once polled; forced off, none.
        metrics.set_per_source(PerSourceMetrics::On);
        let text = scrape(&metrics, &past);
        assert!(text.contains("tributary_source_items{source=\"http://a.example/1000.xml\"} 3"));
        metrics.set_per_source(PerSourceMetrics::Off);
        let few = sources(2);
        for source in &past[2..] {
            metrics.forget_source(&source.id);
        }
        let text = scrape(&metrics, &few);
        assert!(!metrics.per_source());
        assert!(!text.contains("source=\""), "{text}");
        assert!(text.contains("tributary_sources 2\n"), "{text}");
        assert!(text.contains("tributary_items 6\n"), "{text}");
    }

    #[test]
    fn counts_show_in_the_text() {
        let metrics = Metrics::new();
        let source = SourceId("http://a.example/rss".into());
        metrics.record_poll(&source, PollOutcome::ok, Some(1_770_000_000));
        metrics.record_poll(&source, PollOutcome::ok, Some(1_770_000_100));
        metrics.record_fetch(Duration::from_millis(120), 2048);
        metrics.record_stored(3);
        metrics.set_source_items(&source, 3);
        metrics.record_request("/tags/{tag}.xml", 404);
        metrics.http_connections(1).inc();
        let text = metrics.encode(4096);
        for line in [
            "tributary_polls_total{source=\"http://a.example/rss\",result=\"ok\"} 2",
            "tributary_fetch_duration_seconds_count 1",
            "tributary_fetched_bytes_total 2048",
            "tributary_items_stored_total 3",
            "tributary_source_items{source=\"http://a.example/rss\"} 3",
            "tributary_store_size_bytes 4096",
            "tributary_source_last_success_timestamp_seconds{source=\"http://a.example/rss\"} 1770000100",
            "tributary_http_requests_total{route=\"/tags/{tag}.xml\",status=\"404\"} 1",
            "tributary_http_connections{worker=\"1\"} 1",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert_eq!(metrics.source_items(&source), Some(3));
        assert_eq!(metrics.source_items(&SourceId("other".into())), None);
        // A start-up count does not overwrite a poll's fresher one; retention's does.
        let other = SourceId("other".into());
        let counts = HashMap::from([(source.clone(), 1), (other.clone(), 5)]);
        metrics.set_all_source_items(&[source.clone(), other.clone()], &counts, false);
        assert_eq!(metrics.source_items(&source), Some(3));
        assert_eq!(metrics.source_items(&other), Some(5));
        metrics.set_all_source_items(&[source.clone(), other.clone()], &counts, true);
        assert_eq!(metrics.source_items(&source), Some(1));
        assert!(text.ends_with("# EOF\n"));
    }
}
