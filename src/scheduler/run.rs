//! The poll loop: keeps the due-list in memory, starts each source's poll when it is
//! due (never two of one source at once), takes each finished poll's next due time,
//! and applies a reload's new [`Plan`] by source id.

use chrono::Utc;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::admission::Admission;
use super::decide::{self, Change};
use super::shared::Shared;
use super::{Plan, PollResult, RoundSummary, Scheduler};
use crate::config::SourceConfig;
use crate::fetch::Fetcher;
use crate::item::SourceId;
use crate::ops::watchdog::{HEARTBEAT_EVERY, Heartbeat};
use crate::websub::{Adverts, Link, Pushed};

/// Sources added, removed or changed by one reload that get a log line each; the
/// rest are only counted (a reload of 100 000 sources is not 100 000 lines).
const LOGGED_CHANGES: usize = 20;

/// Polls start in slots of a second: the polls that fall due within one start
/// together at its end, never before they are due, and no later than a tenth of
/// their wait (within the jitter every wait has; see [`due_at`]). Each start woke
/// the runtime's threads on its own, and a poll answered 304 costs little more than
/// those wake-ups. (A cycle of 304s of 1000 sources cost 0.54-0.66 s of CPU with no
/// slots, 0.34-0.38 s with quarter-second ones and 0.25-0.26 s with these.)
const START_SLOT: std::time::Duration = std::time::Duration::from_secs(1);

/// A source the scheduler polls. Its `generation` changes whenever its settings do,
/// so a timer or a poll result of its former settings is recognised and dropped.
struct Tracked {
    /// The entry of the plan's shared list: a reload that keeps the source puts the
    /// new list's entry here, so the former list is freed.
    source: Arc<SourceConfig>,
    /// `source`'s [`SourceConfig::fingerprint`], to tell a kept source from a changed
    /// one on reload without hashing it again.
    fingerprint: u64,
    generation: u64,
    /// Cancels the source's poll in progress when it is removed or changed.
    token: CancellationToken,
    /// The generation of the poll in progress, if any.
    polling: Option<u64>,
    /// A changed source whose former poll is still finishing: its first poll under the
    /// new settings is scheduled once that one ends, so two never run at once.
    waiting: bool,
}

/// What follows when a poll of a tracked source ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterPoll {
    /// The poll ran under the current settings: due again when it said.
    Again,
    /// The poll ran under former settings that a reload replaced while it ran: the
    /// first poll under the new ones is scheduled now.
    Restart,
    /// Nothing: the source is gone (410), or a later poll is already scheduled.
    Rest,
}

impl Tracked {
    /// Takes the end of a poll that ran under `generation`.
    fn finished(&mut self, generation: u64, result: PollResult) -> AfterPoll {
        if self.polling == Some(generation) {
            self.polling = None;
        }
        if self.generation == generation {
            if result != PollResult::Gone {
                return AfterPoll::Again;
            }
            return AfterPoll::Rest;
        }
        if std::mem::take(&mut self.waiting) {
            return AfterPoll::Restart;
        }
        AfterPoll::Rest
    }
}

/// A finished poll: the source, the generation it ran under, when it is due again.
type Done = (SourceId, u64, Instant, PollResult);

/// The poll loop's own state: which sources it polls and when each is due.
#[derive(Default)]
struct Sources {
    tracked: HashMap<SourceId, Tracked>,
    due: BinaryHeap<Reverse<(Instant, u64, SourceId)>>,
    next_generation: u64,
}

impl Sources {
    /// Tracks `source` of fingerprint `fingerprint` (again, with new settings);
    /// whether the store knew it and it is due (it holds up readiness otherwise, see
    /// [`Loop::start`]).
    fn track(
        &mut self,
        shared: &Shared,
        source: Arc<SourceConfig>,
        fingerprint: u64,
        token: &CancellationToken,
    ) -> bool {
        let generation = self.next_generation;
        self.next_generation += 1;
        let (at, known) = shared.first_poll_and_known(&source, Utc::now());
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
                source,
                fingerprint,
                generation,
                token: token.child_token(),
                polling,
                waiting,
            },
        );
        known || at.is_none()
    }

    /// Applies a new plan: starts added sources, stops removed ones, restarts changed
    /// ones; untouched ones keep their timers (and take the plan's entry, for what
    /// does not restart a source: its `secret_query`, `websub`). With `restart_all`
    /// (the poll settings changed) every source restarts.
    fn apply(
        &mut self,
        shared: &Shared,
        sources: &[Arc<SourceConfig>],
        restart_all: bool,
        token: &CancellationToken,
    ) -> (usize, usize, usize) {
        let removed: Vec<SourceId> = {
            let wanted: HashSet<&SourceId> = sources.iter().map(|s| &s.id).collect();
            self.tracked
                .keys()
                .filter(|id| !wanted.contains(id))
                .cloned()
                .collect()
        };
        for (n, id) in removed.iter().enumerate() {
            shared.known.forget(id);
            if let Some(gone) = self.tracked.remove(id) {
                gone.token.cancel();
                shared.metrics.forget_source(id);
                if n < LOGGED_CHANGES {
                    info!(source = %crate::config::shown_url(&id.0, &[]), "source removed: no longer polled; its items age out by retention");
                }
            }
        }
        let (mut added, mut changed) = (0, 0);
        // The sources whose `/metrics` label is new or may have changed.
        let mut named: Vec<&SourceConfig> = Vec::new();
        // The sources to start, with their fingerprints.
        let mut start: Vec<(&Arc<SourceConfig>, u64)> = Vec::new();
        for source in sources {
            let tracked = self.tracked.get_mut(&source.id);
            // An entry a reload took over unread is the one tracked: same fingerprint.
            let fingerprint = match &tracked {
                Some(tracked) if Arc::ptr_eq(&tracked.source, source) => tracked.fingerprint,
                _ => source.fingerprint(),
            };
            let current = tracked.as_ref().map(|t| t.fingerprint);
            match decide::change(current, fingerprint, restart_all) {
                Change::Kept => {
                    let tracked = tracked.expect("a kept source is tracked");
                    if tracked.source.secret_query != source.secret_query {
                        named.push(source);
                    }
                    tracked.source = source.clone();
                }
                Change::Changed => {
                    changed += 1;
                    shared.known.forget(&source.id);
                    if changed <= LOGGED_CHANGES {
                        info!(source = %source.shown_url(), "source changed: restarting it with its new settings");
                    }
                    named.push(source);
                    start.push((source, fingerprint));
                }
                Change::Added => {
                    added += 1;
                    if added <= LOGGED_CHANGES {
                        info!(source = %source.shown_url(), "source added");
                    }
                    named.push(source);
                    start.push((source, fingerprint));
                }
            }
        }
        // Each start reads the source's state; in the store's key order, neighbours
        // are read from the page just read (10 000 sources added to 100 000, read in
        // the config's order: a page read from disk for nearly each).
        start.sort_unstable_by(|(a, _), (b, _)| a.id.cmp(&b.id));
        for (source, fingerprint) in start {
            self.track(shared, source.clone(), fingerprint, token);
        }
        shared.metrics.name_sources(named);
        (added, removed.len(), changed)
    }
}

/// Everything the loop keeps between turns.
struct Loop {
    shared: Arc<Shared>,
    /// How many polls exist at once (see `admission`); replaced with `[poll]`.
    admission: Arc<Admission>,
    sources: Sources,
    /// The sources new to the store at start-up not polled yet (readiness waits for
    /// them).
    first_pending: HashSet<SourceId>,
    /// What the first polls came to.
    summary: RoundSummary,
    count: usize,
    started: Instant,
    token: CancellationToken,
}

impl Loop {
    /// Tracks the initial sources; ready at once when none is due.
    fn start(scheduler: Scheduler, token: CancellationToken, websub: Option<Adverts>) -> Loop {
        let initial = scheduler.sources.clone();
        let shared = scheduler.into_shared_with(None, websub);
        let mut sources = Sources::default();
        let count = initial.len();
        // Readiness waits for the sources the store knows nothing about: the others'
        // stored items are served, and they are polled when they fall due. Sources
        // marked gone are not due and do not hold it up either.
        let mut first_pending: HashSet<SourceId> = HashSet::new();
        for source in initial.iter() {
            let id = source.id.clone();
            let fingerprint = source.fingerprint();
            if !sources.track(&shared, source.clone(), fingerprint, &token) {
                first_pending.insert(id);
            }
        }
        shared.health.set_polling();
        if first_pending.is_empty() {
            shared.health.set_new_sources_polled();
        }
        info!(
            sources = count,
            due = sources.due.len(),
            "scheduler started"
        );
        Loop {
            admission: Arc::new(Admission::new(&shared.poll)),
            shared,
            sources,
            first_pending,
            summary: RoundSummary::default(),
            count,
            started: Instant::now(),
            token,
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.sources.due.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A reload: new poll settings restart every source with a new client; the
    /// sources are then compared by id.
    fn reload(&mut self, plan: &Plan) {
        let began = std::time::Instant::now();
        let restart_all = decide::poll_settings_changed(&self.shared.poll, &plan.poll);
        if restart_all {
            match Fetcher::new(&plan.poll) {
                Ok(fetcher) => {
                    info!("[poll] settings changed: every source restarts with them");
                    self.admission = Arc::new(Admission::new(&plan.poll));
                    self.shared = Scheduler {
                        store: self.shared.store.clone(),
                        fetcher,
                        sources: plan.sources.clone(),
                        poll: plan.poll.clone(),
                        metrics: self.shared.metrics.clone(),
                        health: self.shared.health.clone(),
                    }
                    .into_shared(self.shared.websub.clone());
                }
                Err(err) => {
                    warn!(error = %err, "cannot apply the new [poll] settings; keeping the former ones")
                }
            }
        }
        *self
            .shared
            .source_urls
            .lock()
            .expect("the source list is never poisoned") = plan.sources.clone();
        let (added, removed, changed) =
            self.sources
                .apply(&self.shared, &plan.sources, restart_all, &self.token);
        self.first_pending
            .retain(|id| self.sources.tracked.contains_key(id));
        if self.first_pending.is_empty() {
            self.shared.health.set_new_sources_polled();
        }
        info!(
            added,
            removed,
            changed,
            sources = self.sources.tracked.len(),
            elapsed_ms = began.elapsed().as_millis() as u64,
            "sources reloaded"
        );
    }

    /// `tributary reset` forgot the source's failures in the store: it restarts, and
    /// so is due at once (a poll in progress is cancelled first).
    fn reset(&mut self, id: SourceId) {
        if let Some(tracked) = self.sources.tracked.get(&id) {
            let (source, fingerprint) = (tracked.source.clone(), tracked.fingerprint);
            info!(source = %source.shown_url(), "polling the reset source now");
            self.sources
                .track(&self.shared, source, fingerprint, &self.token);
        }
    }

    /// A poll ended: the source is due again, restarts, or rests; the first round's
    /// summary counts it.
    fn finished(&mut self, (id, generation, at, result): Done) {
        if let Some(tracked) = self.sources.tracked.get_mut(&id) {
            match tracked.finished(generation, result) {
                AfterPoll::Again => self.sources.due.push(Reverse((at, generation, id.clone()))),
                AfterPoll::Restart => {
                    // The former settings' poll has ended; the new ones start.
                    if let Some(at) = self.shared.first_poll(&tracked.source, Utc::now()) {
                        self.sources
                            .due
                            .push(Reverse((at, tracked.generation, id.clone())));
                    }
                }
                AfterPoll::Rest => {}
            }
        }
        if self.first_pending.remove(&id) {
            self.summary.record(result);
            if self.first_pending.is_empty() {
                self.shared.health.set_new_sources_polled();
                let summary = self.summary;
                info!(
                    sources = self.count,
                    ok = summary.ok,
                    failed = summary.failed,
                    gone = summary.gone,
                    elapsed_ms = self.started.elapsed().as_millis() as u64,
                    "every source polled once"
                );
            }
        }
    }

    /// A pushed document: read and stored (see `push`) unless its source is gone.
    fn pushed(&self, tracker: &TaskTracker, pushed: Pushed) {
        let Some(tracked) = self.sources.tracked.get(&pushed.source) else {
            return;
        };
        let source = tracked.source.clone();
        let shared = self.shared.clone();
        tracker.spawn(async move { shared.ingest_pushed(&source, pushed).await });
    }

    /// A source whose subscription failed or lapsed is polled now, unless a poll of
    /// it runs (its result sets the usual interval again); its former timer is dropped.
    fn poll_now(&mut self, id: SourceId) {
        let Some(tracked) = self.sources.tracked.get_mut(&id) else {
            return;
        };
        if tracked.polling.is_some() || tracked.waiting {
            return;
        }
        let generation = self.sources.next_generation;
        self.sources.next_generation += 1;
        tracked.generation = generation;
        self.sources
            .due
            .push(Reverse((Instant::now(), generation, id)));
    }

    /// Starts the polls of the sources due by now.
    fn start_due(&mut self, tracker: &TaskTracker, done_tx: &mpsc::UnboundedSender<Done>) {
        let now = Instant::now();
        while self.next_due().is_some_and(|at| at <= now) {
            self.start_first(tracker, done_tx);
        }
    }

    /// Starts the poll of the source due first, unless its settings changed since.
    fn start_first(&mut self, tracker: &TaskTracker, done_tx: &mpsc::UnboundedSender<Done>) {
        let Some(Reverse((_, generation, id))) = self.sources.due.pop() else {
            return;
        };
        let Some(tracked) = self.sources.tracked.get_mut(&id) else {
            return;
        };
        if tracked.generation != generation {
            return;
        }
        tracked.polling = Some(generation);
        let source = tracked.source.clone();
        let poll_token = tracked.token.clone();
        let shared = self.shared.clone();
        let admission = self.admission.clone();
        let done_tx = done_tx.clone();
        let origin = self.started;
        tracker.spawn(async move {
            let admitted = tokio::select! {
                _ = poll_token.cancelled() => None,
                admitted = admission.enter(&source) => Some(admitted),
            };
            let (wait, result) = match admitted {
                // Boxed: this task stays small while it waits for admission.
                Some(_admitted) => Box::pin(shared.poll(&source, &poll_token)).await,
                None => (std::time::Duration::ZERO, PollResult::Cancelled),
            };
            let _ = done_tx.send((id, generation, due_at(origin, Instant::now(), wait), result));
        });
    }
}

impl Scheduler {
    /// Polls every source until `token` is cancelled, taking each new [`Plan`] sent on
    /// `plans` (a reload) and polling at once each source sent on `resets`. Polls in
    /// progress are spawned on `tracker`; a cancelled poll stops fetching but finishes
    /// any store write it began. `heartbeat` is touched every [`HEARTBEAT_EVERY`]
    /// while the loop turns, for the watchdog. With `websub`, the sources' hubs are
    /// subscribed to: adverts go out, pushed documents are stored, lapsed sources are
    /// polled at once.
    pub async fn run(
        self,
        mut plans: watch::Receiver<Plan>,
        mut resets: mpsc::UnboundedReceiver<SourceId>,
        heartbeat: Heartbeat,
        token: CancellationToken,
        tracker: TaskTracker,
        websub: Option<Link>,
    ) {
        plans.mark_unchanged();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let (adverts, mut pushes, mut poll_now) = match websub {
            Some(link) => (Some(link.adverts), Some(link.pushes), Some(link.poll_now)),
            None => (None, None, None),
        };
        let mut state = Loop::start(self, token.clone(), adverts);
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut plans_open = true;
        loop {
            let next = state.next_due();
            tokio::select! {
                _ = token.cancelled() => break,
                _ = beat.tick() => heartbeat.beat(),
                changed = plans.changed(), if plans_open => {
                    if changed.is_err() {
                        // The sender is gone: no more plans; keep polling these.
                        plans_open = false;
                        continue;
                    }
                    // Applied as it is in the channel: a copy of 100 000 sources
                    // costs more than the whole comparison.
                    let plan = plans.borrow_and_update();
                    state.reload(&plan);
                }
                Some(done) = done_rx.recv() => state.finished(done),
                Some(id) = resets.recv() => state.reset(id),
                pushed = next_message(&mut pushes) => state.pushed(&tracker, pushed),
                id = next_unbounded(&mut poll_now) => state.poll_now(id),
                _ = sleep_until(next) => state.start_due(&tracker, &done_tx),
            }
        }
        debug!("scheduler stopped");
    }
}

/// The next message of an optional channel; never, once it is closed or absent.
async fn next_message<T>(receiver: &mut Option<mpsc::Receiver<T>>) -> T {
    let value = match receiver.as_mut() {
        Some(receiver) => receiver.recv().await,
        None => None,
    };
    match value {
        Some(value) => value,
        None => {
            *receiver = None;
            std::future::pending().await
        }
    }
}

/// [`next_message`] of an unbounded channel.
async fn next_unbounded<T>(receiver: &mut Option<mpsc::UnboundedReceiver<T>>) -> T {
    let value = match receiver.as_mut() {
        Some(receiver) => receiver.recv().await,
        None => None,
    };
    match value {
        Some(value) => value,
        None => {
            *receiver = None;
            std::future::pending().await
        }
    }
}

/// When a source that waits `wait` from `now` is due again: at the end of the
/// [`START_SLOT`] the wait ends in, with every other poll due in that slot, unless
/// that is later than a tenth of the wait (a source polled every few seconds keeps
/// its pace).
fn due_at(origin: Instant, now: Instant, wait: std::time::Duration) -> Instant {
    let due = now + wait;
    let slotted = slot_end(origin, due);
    if slotted - due <= wait / 10 {
        slotted
    } else {
        due
    }
}

/// The end of the [`START_SLOT`] that `at` falls in, counted from `origin` (`at`
/// itself decades ahead).
fn slot_end(origin: Instant, at: Instant) -> Instant {
    let slots = at
        .saturating_duration_since(origin)
        .as_nanos()
        .div_ceil(START_SLOT.as_nanos());
    u32::try_from(slots).map_or(at, |slots| origin + START_SLOT * slots)
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

    fn tracked(generation: u64, polling: Option<u64>, waiting: bool) -> Tracked {
        let text = "[[source]]\nurl = \"https://a.example/rss\"\n";
        let mut config = crate::config::parse(std::path::Path::new("feeds.toml"), text, None)
            .expect("the test config is valid");
        Tracked {
            source: Arc::new(config.sources.remove(0)),
            fingerprint: 0,
            generation,
            token: CancellationToken::new(),
            polling,
            waiting,
        }
    }

    /// The sources of a config of `text`, as the daemon shares them.
    fn plan(text: &str) -> crate::config::SharedSources {
        let config = crate::config::parse(std::path::Path::new("feeds.toml"), text, None)
            .expect("the test config is valid");
        crate::config::share(config.sources)
    }

    #[test]
    fn a_reload_keeps_restarts_adds_and_removes_by_id_and_holds_only_the_new_list() {
        let shared = Scheduler {
            store: crate::store::Store::temporary().unwrap(),
            fetcher: Fetcher::new(&Default::default()).unwrap(),
            sources: plan(""),
            poll: Default::default(),
            metrics: Arc::new(crate::ops::metrics::Metrics::new()),
            health: Default::default(),
        }
        .into_shared_with(None, None);
        let token = CancellationToken::new();
        let mut sources = Sources::default();
        let first = plan(
            "[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\n[[source]]\nurl = \"https://c.example/rss\"\n",
        );
        assert_eq!(sources.apply(&shared, &first, false, &token), (3, 0, 0));
        let due = sources.due.len();
        // a kept (its shown URL alone changes), b changed, c removed, d added.
        let second = plan(
            "[[source]]\nurl = \"https://a.example/rss\"\nsecret_query = [\"x\"]\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"2h\"\n[[source]]\nurl = \"https://d.example/rss\"\n",
        );
        assert_eq!(sources.apply(&shared, &second, false, &token), (1, 1, 1));
        // The kept source keeps its timer; the changed and the added one get one each.
        assert_eq!(sources.due.len(), due + 2);
        let a = &sources.tracked[&first[0].id];
        assert_eq!(a.generation, 0);
        assert!(Arc::ptr_eq(&a.source, &second[0]));
        assert_eq!(a.source.secret_query, ["x"]);
        assert!(Arc::ptr_eq(
            &sources.tracked[&second[1].id].source,
            &second[1]
        ));
        assert!(!sources.tracked.contains_key(&first[2].id));
        // Nothing holds the first list's sources any more.
        assert!(first.iter().all(|source| Arc::strong_count(source) == 1));
        // The same list again changes nothing; new poll settings restart everything.
        assert_eq!(sources.apply(&shared, &second, false, &token), (0, 0, 0));
        assert_eq!(sources.apply(&shared, &second, true, &token), (0, 0, 3));
    }

    #[test]
    fn polls_start_at_the_end_of_their_slot_never_before_they_are_due() {
        let origin = Instant::now();
        let ms = std::time::Duration::from_millis;
        for (due, starts) in [
            (0, 0),
            (1, 1_000),
            (999, 1_000),
            (1_000, 1_000),
            (1_001, 2_000),
            (9_999, 10_000),
        ] {
            assert_eq!(
                slot_end(origin, origin + ms(due)),
                origin + ms(starts),
                "due at {due} ms"
            );
        }
        // Due before the loop began (a backlog): at once.
        assert_eq!(slot_end(origin + ms(10), origin), origin + ms(10));
        // Past the slots a u32 counts (34 years): never before it is due.
        let far = origin + std::time::Duration::from_secs(40 * 365 * 86_400);
        assert_eq!(slot_end(origin, far), far);
    }

    #[test]
    fn a_wait_ends_at_the_end_of_its_slot_unless_that_is_late_by_a_tenth_of_it() {
        let origin = Instant::now();
        let ms = std::time::Duration::from_millis;
        // A minute from 100 ms in: the slot's end, 900 ms later.
        assert_eq!(
            due_at(origin, origin + ms(100), ms(60_000)),
            origin + ms(61_000)
        );
        // 300 ms from 100 ms in: on its own, 600 ms before the slot's end.
        assert_eq!(due_at(origin, origin + ms(100), ms(300)), origin + ms(400));
        // 5 s from 600 ms in: 400 ms late is within the tenth.
        assert_eq!(
            due_at(origin, origin + ms(600), ms(5_000)),
            origin + ms(6_000)
        );
    }

    #[test]
    fn a_finished_poll_is_due_again_unless_the_source_is_gone() {
        let mut source = tracked(3, Some(3), false);
        assert_eq!(source.finished(3, PollResult::Ok), AfterPoll::Again);
        assert_eq!(source.polling, None);
        let mut source = tracked(3, Some(3), false);
        assert_eq!(source.finished(3, PollResult::Failed), AfterPoll::Again);
        let mut source = tracked(3, Some(3), false);
        assert_eq!(source.finished(3, PollResult::Gone), AfterPoll::Rest);
        assert_eq!(source.polling, None);
    }

    #[test]
    fn a_source_changed_while_polled_restarts_once_the_former_poll_ends() {
        // Generation 2 was polling when a reload made it generation 5.
        let mut source = tracked(5, Some(2), true);
        assert_eq!(
            source.finished(2, PollResult::Cancelled),
            AfterPoll::Restart
        );
        assert_eq!((source.polling, source.waiting), (None, false));
        // A late result of a former generation changes nothing more.
        assert_eq!(source.finished(1, PollResult::Ok), AfterPoll::Rest);
    }

    #[test]
    fn a_former_poll_ending_leaves_the_current_one_running() {
        let mut source = tracked(5, Some(5), false);
        assert_eq!(source.finished(4, PollResult::Ok), AfterPoll::Rest);
        assert_eq!(source.polling, Some(5));
    }
}
