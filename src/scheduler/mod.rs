//! When each source is polled, how many at once, and what a poll's outcome means.
//!
//! One loop keeps the due-list in memory and decides *when* (with the pure policy in
//! [`plan`]); a global semaphore and one per host decide *how many*; `fetch` +
//! `normalize` decide *what*. A source is never polled again while its previous poll
//! runs. Each outcome is written to the store as the source's [`SourceState`](crate::item::SourceState), so a
//! failing source is visible and a restart picks up where the last run left off.
//!
//! Sources are tracked by id, so a reload (a new [`Plan`]) touches only what changed:
//! added sources start, removed ones stop, changed ones restart, and the others keep
//! their timers.
//!
//! The loop is in `run`; one poll of one source in `poll` (fetch, judge, save) and
//! `record` (store the items); the limits every poll shares in `shared`; outage
//! detection in `outage`; the pure decisions in `decide` and [`plan`]. [`document`]
//! turns a fetched body into a document (a page followed to its feed, a feed
//! normalized, a page scraped), for the polls and for the commands alike.

pub mod document;
pub mod plan;

mod admission;
mod decide;
mod known;
mod outage;
mod poll;
mod push;
mod record;
mod run;
mod shared;
mod tally;

use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{PollConfig, SharedSources};
use crate::fetch::Fetcher;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::store::Store;
use crate::websub::Adverts;
use outage::Connectivity;
use shared::Shared;

/// ±10% random spread on every wait, so sources drift apart instead of firing in
/// lock-step.
const JITTER: f64 = 0.1;
/// A 301/308 must be seen on this many polls in a row before the source's address
/// changes: one maintenance-page redirect must not move a source.
pub const PERMANENT_REDIRECT_POLLS: u32 = 3;

/// Everything polls need, shared by all of them.
pub struct Scheduler {
    pub store: Store,
    pub fetcher: Fetcher,
    pub sources: SharedSources,
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
    /// Shared with the other parts of the daemon: a plan is sent without a copy.
    pub sources: SharedSources,
    pub poll: PollConfig,
}

impl Scheduler {
    /// Polls every source once, now, whatever its remembered next-poll time (sources
    /// marked gone excepted), within the same concurrency limits; for `tributary poll`.
    pub async fn poll_once(self) -> RoundSummary {
        let sources = self.sources.clone();
        let shared = self.into_shared(None);
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let admission = Arc::new(admission::Admission::new(&shared.poll));
        for source in sources.iter() {
            let source = source.clone();
            let shared = shared.clone();
            let admission = admission.clone();
            let done_tx = done_tx.clone();
            let token = token.clone();
            tracker.spawn(async move {
                let _admitted = admission.enter(&source).await;
                let (_, result) = Box::pin(shared.poll(&source, &token)).await;
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

    fn into_shared(self, websub: Option<Adverts>) -> Arc<Shared> {
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
        self.into_shared_with(last_success, websub)
    }

    /// [`Scheduler::into_shared`] without reading every source's state for the last
    /// success: the poll loop reads each state as it tracks the source, and takes
    /// the last success from there (`Shared::first_poll_and_known`).
    fn into_shared_with(
        self,
        last_success: Option<std::time::Instant>,
        websub: Option<Adverts>,
    ) -> Arc<Shared> {
        let tally = tally::Tally::new(self.poll.min_interval);
        Arc::new(Shared {
            source_urls: Mutex::new(self.sources.clone()),
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
            known: known::KnownEntries::default(),
            tally,
            websub,
        })
    }
}

fn jittered(interval: Duration) -> Duration {
    let factor = 1.0 + JITTER * (fastrand::f64() * 2.0 - 1.0);
    interval.mul_f64(factor)
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
