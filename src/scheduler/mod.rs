//! When each source is polled, how many at once, and what a poll's outcome means.
//!
//! One loop keeps the due-list in memory and decides *when* (with the pure policy in
//! [`plan`]); a global semaphore and one per host decide *how many*; `fetch` +
//! `normalize` decide *what*. A source is never polled again while its previous poll
//! runs. Each outcome is written to the store as the source's [`SourceState`], so a
//! failing source is visible and a restart picks up where the last run left off.
//!
//! Sources are tracked by id, so a reload (a new [`Plan`]) touches only what changed:
//! added sources start, removed ones stop, changed ones restart, and the others keep
//! their timers.

pub mod plan;

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use url::Url;

use crate::config::{PollConfig, SourceConfig, SourceKind};
use crate::fetch::discover::{self, DiscoverError, is_html};
use crate::fetch::{FetchError, FetchOutcome, Fetched, Fetcher, Response, Validators};
use crate::ingest::normalize::normalize_document;
use crate::ingest::parse::decode_html;
use crate::ingest::scrape::scrape;
use crate::item::{Origin, SourceId, SourceState};
use crate::ops::health::Health;
use crate::ops::metrics::{Metrics, PollOutcome};
use crate::ops::watchdog::{HEARTBEAT_EVERY, Heartbeat};
use crate::store::{Store, StoreError};
use plan::Bounds;

/// ±10% random spread on every wait, so sources drift apart instead of firing in
/// lock-step.
const JITTER: f64 = 0.1;
/// A 301/308 must be seen on this many polls in a row before the source's address
/// changes: one maintenance-page redirect must not move a source.
pub const PERMANENT_REDIRECT_POLLS: u32 = 3;
/// With no successful poll anywhere for this long, connection failures are taken as
/// this machine's outage, not the sources' fault.
const OUTAGE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Everything polls need, shared by all of them.
pub struct Scheduler {
    pub store: Store,
    pub fetcher: Fetcher,
    pub sources: Vec<SourceConfig>,
    pub poll: PollConfig,
    /// Where every poll is counted.
    pub metrics: Arc<Metrics>,
    /// Told when every source has been polled once, for `/readyz`.
    pub health: Arc<Health>,
}

/// What one poll came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollResult {
    Ok,
    Failed,
    /// 410 Gone, now or before: not polled until its config changes.
    Gone,
    /// Stopped by shutdown.
    Cancelled,
}

/// Counts of one pass over every source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundSummary {
    pub ok: usize,
    pub failed: usize,
    pub gone: usize,
}

impl RoundSummary {
    fn record(&mut self, result: PollResult) {
        match result {
            PollResult::Ok => self.ok += 1,
            PollResult::Failed | PollResult::Cancelled => self.failed += 1,
            PollResult::Gone => self.gone += 1,
        }
    }
}

/// The sources and poll settings a reload hands to a running scheduler.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sources: Vec<SourceConfig>,
    pub poll: PollConfig,
}

/// Shared by every poll: the settings, the concurrency limits and the outage detector.
/// Replaced whole when `[poll]` changes; polls in progress finish with the old one.
struct Shared {
    store: Store,
    fetcher: Fetcher,
    poll: PollConfig,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    connectivity: Mutex<Connectivity>,
    /// Every configured source's URL, so discovery passes over a feed that another
    /// source already polls; replaced on reload.
    source_urls: Mutex<Vec<(SourceId, Url)>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// A source the scheduler polls. Its `generation` changes whenever its settings do,
/// so a timer or a poll result of its former settings is recognised and dropped.
struct Tracked {
    source: Arc<SourceConfig>,
    generation: u64,
    /// Cancels the source's poll in progress when it is removed or changed.
    token: CancellationToken,
    /// The generation of the poll in progress, if any.
    polling: Option<u64>,
    /// A changed source whose former poll is still finishing: its first poll under the
    /// new settings is scheduled once that one ends, so two never run at once.
    waiting: bool,
}

/// A finished poll: the source, the generation it ran under, when it is due again.
type Done = (SourceId, u64, Instant, PollResult);

/// The poll loop's own state: which sources it polls and when each is due.
struct Sources {
    tracked: HashMap<SourceId, Tracked>,
    due: BinaryHeap<Reverse<(Instant, u64, SourceId)>>,
    next_generation: u64,
}

impl Sources {
    fn track(&mut self, shared: &Shared, source: SourceConfig, token: &CancellationToken) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let at = shared.first_poll(&source, Utc::now());
        let id = source.id.clone();
        let previous = self.tracked.remove(&id);
        let polling = previous.as_ref().and_then(|p| p.polling);
        if let Some(previous) = previous {
            previous.token.cancel();
        }
        let waiting = polling.is_some();
        if let (Some(at), false) = (at, waiting) {
            self.due.push(Reverse((at, generation, id.clone())));
        }
        self.tracked.insert(
            id,
            Tracked {
                source: Arc::new(source),
                generation,
                token: token.child_token(),
                polling,
                waiting,
            },
        );
    }

    /// Applies a new plan: starts added sources, stops removed ones, restarts changed
    /// ones; untouched ones keep their timers. With `restart_all` (the poll settings
    /// changed) every source restarts.
    fn apply(
        &mut self,
        shared: &Shared,
        sources: Vec<SourceConfig>,
        restart_all: bool,
        token: &CancellationToken,
    ) -> (usize, usize, usize) {
        let wanted: HashSet<SourceId> = sources.iter().map(|s| s.id.clone()).collect();
        let removed: Vec<SourceId> = self
            .tracked
            .keys()
            .filter(|id| !wanted.contains(*id))
            .cloned()
            .collect();
        for id in &removed {
            if let Some(gone) = self.tracked.remove(id) {
                gone.token.cancel();
                shared.metrics.forget_source(id);
                info!(source = %id, "source removed: no longer polled; its items age out by retention");
            }
        }
        let (mut added, mut changed) = (0, 0);
        for source in sources {
            match self.tracked.get(&source.id) {
                Some(current)
                    if !restart_all && current.source.fingerprint() == source.fingerprint() => {}
                Some(_) => {
                    changed += 1;
                    info!(source = %source.id, "source changed: restarting it with its new settings");
                    self.track(shared, source, token);
                }
                None => {
                    added += 1;
                    info!(source = %source.id, "source added");
                    self.track(shared, source, token);
                }
            }
        }
        (added, removed.len(), changed)
    }
}

impl Scheduler {
    /// Polls every source until `token` is cancelled, taking each new [`Plan`] sent on
    /// `plans` (a reload). Polls in progress are spawned on `tracker`; a cancelled poll
    /// stops fetching but finishes any store write it began. `heartbeat` is touched
    /// every [`HEARTBEAT_EVERY`] while the loop turns, for the watchdog.
    pub async fn run(
        self,
        mut plans: watch::Receiver<Plan>,
        heartbeat: Heartbeat,
        token: CancellationToken,
        tracker: TaskTracker,
    ) {
        plans.mark_unchanged();
        let initial = self.sources.clone();
        let mut shared = self.into_shared();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut sources = Sources {
            tracked: HashMap::new(),
            due: BinaryHeap::new(),
            next_generation: 0,
        };
        let count = initial.len();
        let mut first_pending: HashSet<SourceId> = initial.iter().map(|s| s.id.clone()).collect();
        for source in initial {
            sources.track(&shared, source, &token);
        }
        // Sources marked gone are not due and do not hold up readiness.
        let due_ids: HashSet<&SourceId> =
            sources.due.iter().map(|Reverse((_, _, id))| id).collect();
        first_pending.retain(|id| due_ids.contains(id));
        if first_pending.is_empty() {
            shared.health.set_polled_once();
        }
        info!(
            sources = count,
            due = sources.due.len(),
            "scheduler started"
        );
        let started = Instant::now();
        let mut summary = RoundSummary::default();
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut plans_open = true;

        loop {
            let next = sources.due.peek().map(|Reverse((at, _, _))| *at);
            tokio::select! {
                _ = token.cancelled() => break,
                _ = beat.tick() => heartbeat.beat(),
                changed = plans.changed(), if plans_open => {
                    if changed.is_err() {
                        // The sender is gone: no more plans; keep polling these.
                        plans_open = false;
                        continue;
                    }
                    let plan = plans.borrow_and_update().clone();
                    let restart_all = format!("{:?}", plan.poll) != format!("{:?}", shared.poll);
                    if restart_all {
                        match Fetcher::new(&plan.poll) {
                            Ok(fetcher) => {
                                info!("[poll] settings changed: every source restarts with them");
                                shared = Scheduler {
                                    store: shared.store.clone(),
                                    fetcher,
                                    sources: plan.sources.clone(),
                                    poll: plan.poll.clone(),
                                    metrics: shared.metrics.clone(),
                                    health: shared.health.clone(),
                                }
                                .into_shared();
                            }
                            Err(err) => warn!(error = %err, "cannot apply the new [poll] settings; keeping the former ones"),
                        }
                    }
                    *shared.source_urls.lock().expect("the source list is never poisoned") = source_urls(&plan.sources);
                    let (added, removed, changed) = sources.apply(&shared, plan.sources, restart_all, &token);
                    first_pending.retain(|id| sources.tracked.contains_key(id));
                    if first_pending.is_empty() {
                        shared.health.set_polled_once();
                    }
                    info!(added, removed, changed, sources = sources.tracked.len(), "sources reloaded");
                }
                Some((id, generation, at, result)) = done_rx.recv() => {
                    if let Some(tracked) = sources.tracked.get_mut(&id) {
                        if tracked.polling == Some(generation) {
                            tracked.polling = None;
                        }
                        if tracked.generation == generation {
                            if result != PollResult::Gone {
                                sources.due.push(Reverse((at, generation, id.clone())));
                            }
                        } else if std::mem::take(&mut tracked.waiting) {
                            // The former settings' poll has ended; the new ones start.
                            if let Some(at) = shared.first_poll(&tracked.source, Utc::now()) {
                                sources.due.push(Reverse((at, tracked.generation, id.clone())));
                            }
                        }
                    }
                    if first_pending.remove(&id) {
                        summary.record(result);
                        if first_pending.is_empty() {
                            shared.health.set_polled_once();
                            info!(sources = count, ok = summary.ok, failed = summary.failed, gone = summary.gone,
                                elapsed_ms = started.elapsed().as_millis() as u64, "every source polled once");
                        }
                    }
                }
                _ = sleep_until(next) => {
                    let Some(Reverse((_, generation, id))) = sources.due.pop() else { continue };
                    let Some(tracked) = sources.tracked.get_mut(&id) else { continue };
                    if tracked.generation != generation {
                        continue;
                    }
                    tracked.polling = Some(generation);
                    let source = tracked.source.clone();
                    let poll_token = tracked.token.clone();
                    let shared = shared.clone();
                    let done_tx = done_tx.clone();
                    tracker.spawn(async move {
                        let (wait, result) = shared.poll(&source, &poll_token).await;
                        let _ = done_tx.send((id, generation, Instant::now() + wait, result));
                    });
                }
            }
        }
        debug!("scheduler stopped");
    }

    /// Polls every source once, now, whatever its remembered next-poll time (sources
    /// marked gone excepted), within the same concurrency limits; for `tributary poll`.
    pub async fn poll_once(self) -> RoundSummary {
        let sources = self.sources.clone();
        let shared = self.into_shared();
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        for source in sources {
            let shared = shared.clone();
            let done_tx = done_tx.clone();
            let token = token.clone();
            tracker.spawn(async move {
                let (_, result) = shared.poll(&source, &token).await;
                let _ = done_tx.send(result);
            });
        }
        drop(done_tx);
        let mut summary = RoundSummary::default();
        while let Some(result) = done_rx.recv().await {
            summary.record(result);
        }
        summary
    }

    fn into_shared(self) -> Arc<Shared> {
        // The last success of any source, remembered across restarts, so a restart
        // does not mistake one dead server for an outage.
        let now = Utc::now();
        let last_success = self
            .sources
            .iter()
            .filter_map(|s| self.store.source_state(&s.id).ok()?.last_success)
            .max()
            .and_then(|at| (now - at).to_std().ok())
            .and_then(|ago| std::time::Instant::now().checked_sub(ago));
        Arc::new(Shared {
            source_urls: Mutex::new(source_urls(&self.sources)),
            global: Arc::new(Semaphore::new(self.poll.concurrency)),
            hosts: Mutex::new(HashMap::new()),
            connectivity: Mutex::new(Connectivity {
                last_success,
                outage_since: None,
            }),
            store: self.store,
            fetcher: self.fetcher,
            poll: self.poll,
            metrics: self.metrics,
            health: self.health,
        })
    }
}

fn source_urls(sources: &[SourceConfig]) -> Vec<(SourceId, Url)> {
    sources
        .iter()
        .map(|s| (s.id.clone(), s.url.clone()))
        .collect()
}

impl Shared {
    fn bounds(&self) -> Bounds {
        Bounds {
            min: self.poll.min_interval,
            max: self.poll.max_interval,
        }
    }

    fn state(&self, source: &SourceConfig) -> SourceState {
        self.store.source_state(&source.id).unwrap_or_else(|err| {
            warn!(source = %source.id, error = %err, "cannot read source state");
            SourceState::default()
        })
    }

    /// When a source is first due after start-up: at its remembered next-poll time
    /// when that is still ahead (a restart does not re-poll everything, nor ignore a
    /// backoff or a Retry-After), else now. A healthy source waits at most its base
    /// interval, which may have been shortened in the config since. `None` for a
    /// source that is gone under its current config.
    fn first_poll(&self, source: &SourceConfig, now: DateTime<Utc>) -> Option<Instant> {
        let state = self.state(source);
        if state.gone == Some(source.fingerprint()) {
            info!(source = %source.id, "not polled: the server answered 410 Gone; change its entry in the config to try again");
            return None;
        }
        let cap = if state.consecutive_failures > 0 {
            plan::BACKOFF_MAX
        } else {
            plan::base_interval(source.interval, state.learned_interval, self.bounds())
        };
        let wait = state
            .next_poll
            .and_then(|at| (at - now).to_std().ok())
            .map_or(Duration::ZERO, |wait| wait.min(cap));
        Some(Instant::now() + wait)
    }

    /// The permits for one fetch: the host's first, then a global one, so sources
    /// waiting on a busy host never hold up other hosts.
    async fn permits(&self, url: &Url) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let host_semaphore = self
            .hosts
            .lock()
            .expect("the host map is never poisoned")
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.poll.per_host)))
            .clone();
        let host_permit = host_semaphore
            .acquire_owned()
            .await
            .expect("host semaphores are never closed");
        let global_permit = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the global semaphore is never closed");
        (host_permit, global_permit)
    }

    /// Polls one source and records the outcome. Returns how long until it is due
    /// again, and what came of it.
    async fn poll(
        &self,
        source: &SourceConfig,
        token: &CancellationToken,
    ) -> (Duration, PollResult) {
        let mut state = self.state(source);
        if state.gone == Some(source.fingerprint()) {
            return (Duration::ZERO, PollResult::Gone);
        }
        state.gone = None;
        // After a permanent redirect its target; else the feed discovered behind the
        // configured page; else the configured URL.
        let url = state
            .effective_url
            .as_deref()
            .or(state.discovered_feed.as_deref())
            .and_then(|u| Url::parse(u).ok())
            .unwrap_or_else(|| source.url.clone());
        let validators = Validators {
            etag: state.etag.clone(),
            last_modified: state.last_modified.clone(),
        };
        // The host's permit covers the request only; the global one is held until the
        // body is parsed and stored, so bodies cannot pile up in memory faster than
        // they are processed (the network outruns the parser on a cold start).
        let (outcome, _global_permit, took) = tokio::select! {
            _ = token.cancelled() => return (Duration::ZERO, PollResult::Cancelled),
            fetched = async {
                let (_host_permit, global_permit) = self.permits(&url).await;
                let started = Instant::now();
                let outcome = self.fetcher.fetch(&url, &validators, &source.request).await;
                (outcome, global_permit, started.elapsed())
            } => fetched,
        };
        let bytes = match &outcome {
            Ok(FetchOutcome::Fetched(fetched)) => fetched.body.len(),
            _ => 0,
        };
        self.metrics.record_fetch(took, bytes);
        let now = Utc::now();
        state.last_attempt = Some(now);
        let result = match outcome {
            Ok(FetchOutcome::NotModified(response)) => {
                debug!(source = %source.id, "not modified");
                self.follow_redirects(source, &mut state, &response);
                succeeded(&mut state, now);
                Ok((response.fresh_for, PollOutcome::not_modified))
            }
            Ok(FetchOutcome::Fetched(fetched))
                if matches!(source.kind, SourceKind::Feed)
                    && is_html(&fetched.body, fetched.content_type.as_deref()) =>
            {
                match self.discover(source, &mut state, fetched).await {
                    Ok(fetched) => self.ingest(source, &mut state, fetched, now).await,
                    Err(err) => Err(err),
                }
            }
            Ok(FetchOutcome::Fetched(fetched)) => {
                self.follow_redirects(source, &mut state, &fetched.response);
                self.ingest(source, &mut state, fetched, now).await
            }
            Err(err) if state.discovered_feed.is_some() && err.is_missing() => {
                // The discovered feed went away: look at the page again next time.
                info!(source = %source.id, feed = state.discovered_feed.as_deref().unwrap_or(""), error = %err, "the discovered feed is gone; the page will be searched again");
                state.discovered_feed = None;
                state.effective_url = None;
                state.redirect_candidate = None;
                state.redirect_streak = 0;
                Err(PollError::DiscoveredGone(err))
            }
            Err(err) => Err(PollError::Fetch(err)),
        };
        // After ingest, which may have learned a new interval.
        let base = plan::base_interval(source.interval, state.learned_interval, self.bounds());
        let metrics = &self.metrics;
        let (wait, poll_result) = match result {
            Ok((fresh_for, outcome)) => {
                metrics.record_poll(&source.id, outcome, Some(now.timestamp()));
                self.connectivity().succeeded();
                let wait = plan::after_success(base, &[fresh_for, state.feed_hint], self.bounds());
                (jittered(wait), PollResult::Ok)
            }
            Err(PollError::Fetch(err)) if err.is_gone() => {
                warn!(source = %source.id, "the server answered 410 Gone: no longer polled; remove the source from the config, or change its entry to try again");
                state.gone = Some(source.fingerprint());
                state.last_error = Some(PollError::Fetch(err).to_string());
                metrics.record_poll(&source.id, PollOutcome::gone, None);
                (Duration::ZERO, PollResult::Gone)
            }
            Err(err) => {
                metrics.record_poll(&source.id, PollOutcome::failed, None);
                (
                    self.failed(source, &mut state, &err, base),
                    PollResult::Failed,
                )
            }
        };
        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
        state.next_poll = Some(plan::skip(next, &state.skip_hours, &state.skip_days));
        if let Err(err) = self.store.put_source_state(&source.id, &state) {
            warn!(source = %source.id, error = %err, "cannot save source state");
        }
        let wait = state
            .next_poll
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .unwrap_or(wait);
        (wait, poll_result)
    }

    /// Parses a fetched body and stores its items together with the new validators.
    /// Returns the freshness the server granted, and whether the body was new.
    async fn ingest(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        fetched: Fetched,
        now: DateTime<Utc>,
    ) -> Result<(Option<Duration>, PollOutcome), PollError> {
        let Fetched {
            body,
            content_type,
            validators,
            response,
        } = fetched;
        let bytes = body.len();
        // A server without validators costs no parsing when nothing changed.
        let body_hash = xxhash_rust::xxh3::xxh3_64(&body);
        if state.body_hash == Some(body_hash) {
            debug!(source = %source.id, bytes, "body unchanged");
            state.etag = validators.etag;
            state.last_modified = validators.last_modified;
            succeeded(state, now);
            return Ok((response.fresh_for, PollOutcome::not_modified));
        }
        // Parsing is CPU work, kept off the async workers; a panic in the parser comes
        // back as a JoinError and costs this one poll.
        let final_url = response.final_url.clone();
        let zone = source.timezone;
        let kind = source.kind.clone();
        let document = tokio::task::spawn_blocking(move || match kind {
            SourceKind::Feed => {
                normalize_document(&body, content_type.as_deref(), Some(&final_url), zone)
                    .map_err(|err| PollError::Parse(err.to_string()))
            }
            SourceKind::Html(rules) => {
                scrape(&body, content_type.as_deref(), &final_url, &rules, zone)
                    .map_err(|err| PollError::Scrape(err.to_string()))
            }
        })
        .await
        .map_err(|err| PollError::Parse(format!("parser crashed: {err}")))??;

        // The new validators are kept only once the items are stored: saved without
        // them, the next poll would be a 304 and the items lost for good.
        let mut next_state = state.clone();
        next_state.title = document.feed.title.clone();
        next_state.etag = validators.etag;
        next_state.last_modified = validators.last_modified;
        next_state.body_hash = Some(body_hash);
        next_state.feed_hint = document.poll_hints.interval;
        next_state.skip_hours = document.poll_hints.skip_hours.clone();
        next_state.skip_days = document.poll_hints.skip_days.clone();
        let dates: Vec<_> = document
            .items
            .iter()
            .filter_map(|i| i.claimed_date())
            .collect();
        next_state.learned_interval = Some(plan::learn_interval(&dates, now, self.bounds()));
        succeeded(&mut next_state, now);
        let origin = Origin {
            source: source.id.clone(),
            name: source.display_name(next_state.title.as_deref()),
            // The feed readers can subscribe to: for a web page, the one it led to.
            url: next_state
                .effective_url
                .clone()
                .or_else(|| next_state.discovered_feed.clone())
                .unwrap_or_else(|| source.url.to_string()),
            tags: source.tags.clone(),
        };
        if document.left_out > 0 {
            warn!(source = %source.id, left_out = document.left_out, kept = crate::ingest::normalize::MAX_ENTRIES, "the feed has more entries than are kept; only the newest are stored");
        }
        let store = self.store.clone();
        let mut items = document.items;
        // An update "in 2099" is no date: the outputs would carry it as the entry's
        // `updated`, and readers that sort by it would pin the item at the top.
        let horizon = now + crate::store::FUTURE_SKEW;
        for item in &mut items {
            if item.updated.is_some_and(|updated| updated > horizon) {
                item.updated = None;
            }
        }
        let count = items.len();
        items.retain(|item| source.filter.keeps(item));
        if items.len() < count {
            debug!(source = %source.id, filtered = count - items.len(), "items left out by the source's include/exclude rules");
        }
        let (report, next_state, held) = tokio::task::spawn_blocking(move || {
            let report = store.record_fetch(&origin, &items, &next_state, now);
            // Recounted only when items were added: a scan of this source's index.
            let held = match &report {
                Ok(report) if report.added > 0 => store.count_items(&origin.source).ok(),
                _ => None,
            };
            (report, next_state, held)
        })
        .await
        .map_err(|err| PollError::Parse(format!("store write crashed: {err}")))?;
        let report = report.map_err(PollError::Store)?;
        *state = next_state;
        self.metrics.record_stored(report.added);
        if let Some(held) = held {
            self.metrics.set_source_items(&source.id, held);
        }
        if report.reidentified > 0 {
            // Once per poll: the publisher changed how it names its items (http→https,
            // a new host, edited slugs); the stored items took the new ids.
            warn!(source = %source.id, items = report.reidentified, "the source changed its item ids; matched them to stored items by link or by id without scheme and host");
        }
        if report.duplicates + report.taken_over > 0 {
            debug!(source = %source.id, duplicates = report.duplicates, taken_over = report.taken_over, "stories also published by other sources");
        }
        if report.added + report.updated > 0 {
            info!(source = %source.id, items = count, added = report.added, updated = report.updated, bytes, "fetched");
        } else {
            debug!(source = %source.id, items = count, bytes, "fetched, nothing new");
        }
        Ok((response.fresh_for, PollOutcome::ok))
    }

    /// A feed source answered with a web page: finds the feed the page advertises (or
    /// one at a common path), remembers it in the source's state and returns its
    /// response, to be ingested as this poll's body.
    async fn discover(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        page: Fetched,
    ) -> Result<Fetched, PollError> {
        let page_url = page.response.final_url.clone();
        let text = decode_html(&page.body, page.content_type.as_deref()).into_owned();
        drop(page);
        let taken: Vec<Url> = self
            .source_urls
            .lock()
            .expect("the source list is never poisoned")
            .iter()
            .filter(|(id, _)| *id != source.id)
            .map(|(_, url)| url.clone())
            .collect();
        let found = discover::discover(&self.fetcher, &page_url, &text, &source.request, &taken)
            .await
            .map_err(PollError::Discover)?;
        let feed = found.feed_url.to_string();
        if state.discovered_feed.as_deref() != Some(feed.as_str()) {
            info!(source = %source.id, page = %page_url, feed = %feed, via = ?found.via, advertised = found.advertised.len(), "the source is a web page; polling the feed it leads to");
        }
        state.discovered_feed = Some(feed);
        // The page's validators and redirects say nothing about the feed.
        state.effective_url = None;
        state.redirect_candidate = None;
        state.redirect_streak = 0;
        state.etag = None;
        state.last_modified = None;
        state.body_hash = None;
        Ok(found.fetched)
    }

    /// Moves the source to where it permanently redirects once that was seen on
    /// [`PERMANENT_REDIRECT_POLLS`] polls in a row; a temporary redirect, or none,
    /// breaks the streak.
    fn follow_redirects(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        response: &Response,
    ) {
        let Some(target) = &response.moved_permanently else {
            state.redirect_candidate = None;
            state.redirect_streak = 0;
            return;
        };
        if state.redirect_candidate.as_deref() == Some(target.as_str()) {
            state.redirect_streak += 1;
        } else {
            state.redirect_candidate = Some(target.to_string());
            state.redirect_streak = 1;
        }
        if state.redirect_streak >= PERMANENT_REDIRECT_POLLS {
            warn!(source = %source.id, moved_to = %target, "the source has moved permanently; now polling its new address; update its url in the config");
            state.effective_url = Some(target.to_string());
            state.redirect_candidate = None;
            state.redirect_streak = 0;
        }
    }

    /// Records a failure and returns the wait before the next try. While the whole
    /// network seems down, connection failures do not grow the source's backoff.
    fn failed(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        err: &PollError,
        base: Duration,
    ) -> Duration {
        let message = err.to_string();
        let network = matches!(err, PollError::Fetch(e) if e.is_network());
        if network && self.connectivity().network_down(&message) {
            debug!(source = %source.id, error = %message, "poll failed during a network outage");
            state.last_error = Some(message);
            return jittered(base.min(plan::BACKOFF_START));
        }
        if matches!(err, PollError::Store(_)) {
            // The source answered; the store could not keep it. Backing the source off
            // would delay it long after the store recovers: it is polled again at its
            // interval, and the store says (once) what is wrong.
            if state.last_error.as_deref() != Some(message.as_str()) {
                warn!(source = %source.id, error = %message, "poll not stored");
            }
            state.last_error = Some(message);
            return jittered(base);
        }
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        // One warning when a source breaks or breaks differently; repeats are detail.
        if state.last_error.as_deref() != Some(message.as_str()) {
            warn!(source = %source.id, error = %message, failures = state.consecutive_failures, "poll failed");
        } else {
            debug!(source = %source.id, error = %message, failures = state.consecutive_failures, "poll failed again");
        }
        state.last_error = Some(message);
        let retry_after = match err {
            PollError::Fetch(e) => e.retry_after(),
            _ => None,
        };
        jittered(plan::after_failure(
            state.consecutive_failures,
            base,
            retry_after,
        ))
    }

    fn connectivity(&self) -> std::sync::MutexGuard<'_, Connectivity> {
        self.connectivity
            .lock()
            .expect("the connectivity tracker is never poisoned")
    }
}

/// Tells a network outage of this machine from broken sources: when no poll has
/// succeeded for [`OUTAGE_WINDOW`] (or none ever did), connection failures are the
/// network's. Reported once when it starts and once when it ends.
#[derive(Default)]
struct Connectivity {
    last_success: Option<std::time::Instant>,
    outage_since: Option<std::time::Instant>,
}

impl Connectivity {
    fn succeeded(&mut self) {
        let now = std::time::Instant::now();
        if let Some(since) = self.outage_since.take() {
            info!(
                after_s = since.elapsed().as_secs(),
                "the network is back: polls succeed again"
            );
        }
        self.last_success = Some(now);
    }

    fn network_down(&mut self, error: &str) -> bool {
        let down = self
            .last_success
            .is_none_or(|at| at.elapsed() >= OUTAGE_WINDOW);
        if down && self.outage_since.is_none() {
            warn!(
                error,
                "no source can be reached: treating it as a network outage; sources keep their backoff until it ends"
            );
            self.outage_since = Some(std::time::Instant::now());
        }
        down
    }
}

fn succeeded(state: &mut SourceState, now: DateTime<Utc>) {
    state.last_success = Some(now);
    state.consecutive_failures = 0;
    state.last_error = None;
}

/// Why a poll failed, as the source's status shows it.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("fetch: {0}")]
    Fetch(FetchError),
    #[error("parse: {0}")]
    Parse(String),
    #[error("{0}")]
    Discover(DiscoverError),
    #[error("page: {0}")]
    Scrape(String),
    /// Not the source's own 404/410: the page is searched again on the next poll.
    #[error("fetch: the discovered feed is gone ({0}); the page will be searched again")]
    DiscoveredGone(FetchError),
    /// The store's fault, not the source's (a full disk): no backoff.
    #[error("store: {}", chain(.0))]
    Store(StoreError),
}

/// An error and its causes on one line, as the log shows them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        line.push_str(": ");
        line.push_str(&err.to_string());
        cause = err.source();
    }
    line
}

fn jittered(interval: Duration) -> Duration {
    let factor = 1.0 + JITTER * (fastrand::f64() * 2.0 - 1.0);
    interval.mul_f64(factor)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(600));
            assert!(
                d >= Duration::from_secs(540) && d <= Duration::from_secs(660),
                "{d:?}"
            );
        }
    }
}
