//! When each source is polled, how many at once, and what a poll's outcome means.
//!
//! One loop keeps the due-list in memory and decides *when*; a semaphore decides *how
//! many*; `fetch` + `normalize` decide *what*. A source is never polled again while its
//! previous poll runs. Each outcome is written to the store as the source's
//! [`SourceState`], so a failing source is visible and a restart picks up where the
//! last run left off.

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::SourceConfig;
use crate::fetch::{FetchError, FetchOutcome, Fetched, Fetcher, Validators};
use crate::item::{Origin, SourceState};
use crate::normalize::normalize_document;
use crate::store::Store;

/// Longest wait after repeated failures: a broken source is still tried daily.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// ±10% random spread on every interval, so sources drift apart instead of firing
/// in lock-step.
const JITTER: f64 = 0.1;

/// Everything a poll needs, shared by all polls.
pub struct Scheduler {
    pub store: Store,
    pub fetcher: Fetcher,
    pub sources: Vec<SourceConfig>,
    /// Fetches in flight at once, over all sources.
    pub concurrency: usize,
}

impl Scheduler {
    /// Polls every source until `token` is cancelled. Polls in progress are spawned on
    /// `tracker`; a cancelled poll stops fetching but finishes any store write it began.
    pub async fn run(self, token: CancellationToken, tracker: TaskTracker) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.concurrency));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Instant, bool)>();
        let mut due = BinaryHeap::new();
        let now = Utc::now();
        for (index, source) in this.sources.iter().enumerate() {
            due.push(Reverse((this.first_poll(source, now), index)));
        }
        info!(sources = this.sources.len(), "scheduler started");
        let mut first_round = FirstRound::new(this.sources.len());

        loop {
            let next = due.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                _ = token.cancelled() => break,
                Some((index, at, ok)) = done_rx.recv() => {
                    first_round.record(index, ok);
                    due.push(Reverse((at, index)));
                }
                _ = sleep_until(next) => {
                    let Some(Reverse((_, index))) = due.pop() else { continue };
                    let permit = tokio::select! {
                        _ = token.cancelled() => break,
                        permit = permits.clone().acquire_owned() => {
                            permit.expect("the semaphore is never closed")
                        }
                    };
                    let this = this.clone();
                    let done_tx = done_tx.clone();
                    let token = token.clone();
                    tracker.spawn(async move {
                        let (wait, ok) = this.poll(index, &token).await;
                        drop(permit);
                        let _ = done_tx.send((index, Instant::now() + wait, ok));
                    });
                }
            }
        }
        debug!("scheduler stopped");
    }

    /// When a source is first due after start-up: at its remembered next-poll time
    /// when that is still ahead (a restart does not re-poll everything, nor ignore a
    /// backoff or a Retry-After), else now. A healthy source waits at most its
    /// interval, which may have been shortened in the config since.
    fn first_poll(&self, source: &SourceConfig, now: DateTime<Utc>) -> Instant {
        let state = self.store.source_state(&source.id).unwrap_or_else(|err| {
            warn!(source = %source.id, error = %err, "cannot read source state");
            SourceState::default()
        });
        let cap = if state.consecutive_failures > 0 {
            MAX_BACKOFF
        } else {
            source.interval
        };
        let wait = state
            .next_poll
            .and_then(|at| (at - now).to_std().ok())
            .map_or(Duration::ZERO, |wait| wait.min(cap));
        Instant::now() + wait
    }

    /// Polls one source and records the outcome. Returns how long until it is due
    /// again, and whether the poll succeeded.
    async fn poll(&self, index: usize, token: &CancellationToken) -> (Duration, bool) {
        let source = &self.sources[index];
        let mut state = match self.store.source_state(&source.id) {
            Ok(state) => state,
            Err(err) => {
                warn!(source = %source.id, error = %err, "cannot read source state");
                SourceState::default()
            }
        };
        let now = Utc::now();
        state.last_attempt = Some(now);
        let validators = Validators {
            etag: state.etag.clone(),
            last_modified: state.last_modified.clone(),
        };
        let outcome = tokio::select! {
            _ = token.cancelled() => return (Duration::ZERO, false),
            outcome = self.fetcher.fetch(&source.url, &validators) => outcome,
        };
        let result = match outcome {
            Ok(FetchOutcome::NotModified) => {
                debug!(source = %source.id, "not modified");
                self.succeeded(&mut state, now);
                Ok(())
            }
            Ok(FetchOutcome::Fetched(fetched)) => {
                self.ingest(source, &mut state, fetched, now).await
            }
            Err(err) => Err(PollError::Fetch(err)),
        };
        let ok = result.is_ok();
        let wait = match result {
            Ok(()) => jittered(source.interval),
            Err(err) => self.failed(source, &mut state, &err),
        };
        state.next_poll = chrono::Duration::from_std(wait).ok().map(|w| now + w);
        if let Err(err) = self.save_state(source, &state) {
            warn!(source = %source.id, error = %err, "cannot save source state");
        }
        (wait, ok)
    }

    /// Parses a fetched body and stores its items together with the new validators.
    async fn ingest(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        fetched: Fetched,
        now: DateTime<Utc>,
    ) -> Result<(), PollError> {
        let Fetched {
            body,
            content_type,
            validators,
            final_url,
        } = fetched;
        let bytes = body.len();
        // Parsing is CPU work, kept off the async workers; a panic in the parser comes
        // back as a JoinError and costs this one poll.
        let document = tokio::task::spawn_blocking(move || {
            normalize_document(&body, content_type.as_deref(), Some(&final_url))
        })
        .await
        .map_err(|err| PollError::Parse(format!("parser crashed: {err}")))?
        .map_err(|err| PollError::Parse(err.to_string()))?;

        // The new validators are kept only once the items are stored: saved without
        // them, the next poll would be a 304 and the items lost for good.
        let mut next_state = state.clone();
        next_state.title = document.feed.title.clone();
        next_state.etag = validators.etag;
        next_state.last_modified = validators.last_modified;
        self.succeeded(&mut next_state, now);
        let origin = Origin {
            source: source.id.clone(),
            name: display_name(source, &next_state),
            url: source.url.to_string(),
            tags: source.tags.clone(),
        };
        let store = self.store.clone();
        let items = document.items;
        let count = items.len();
        let (report, next_state) = tokio::task::spawn_blocking(move || {
            let report = store.record_fetch(&origin, &items, &next_state, now);
            (report, next_state)
        })
        .await
        .map_err(|err| PollError::Parse(format!("store write crashed: {err}")))?;
        let report = report.map_err(PollError::Store)?;
        *state = next_state;
        if report.added + report.updated > 0 {
            info!(source = %source.id, items = count, added = report.added, updated = report.updated, bytes, "fetched");
        } else {
            debug!(source = %source.id, items = count, bytes, "fetched, nothing new");
        }
        Ok(())
    }

    fn succeeded(&self, state: &mut SourceState, now: DateTime<Utc>) {
        state.last_success = Some(now);
        state.consecutive_failures = 0;
        state.last_error = None;
    }

    /// Records a failure and returns the backoff: the interval doubled per consecutive
    /// failure up to [`MAX_BACKOFF`], and never sooner than the server's Retry-After.
    fn failed(&self, source: &SourceConfig, state: &mut SourceState, err: &PollError) -> Duration {
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let message = err.to_string();
        // One warning when a source breaks or breaks differently; repeats are detail.
        if state.last_error.as_deref() != Some(message.as_str()) {
            warn!(source = %source.id, error = %message, failures = state.consecutive_failures, "poll failed");
        } else {
            debug!(source = %source.id, error = %message, failures = state.consecutive_failures, "poll failed again");
        }
        state.last_error = Some(message);
        let doublings = state.consecutive_failures.saturating_sub(1).min(16);
        let backoff = source
            .interval
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF.max(source.interval));
        let retry_after = match err {
            PollError::Fetch(FetchError::Status { retry_after, .. }) => *retry_after,
            _ => None,
        };
        jittered(backoff).max(retry_after.unwrap_or_default().min(MAX_BACKOFF))
    }

    fn save_state(
        &self,
        source: &SourceConfig,
        state: &SourceState,
    ) -> Result<(), crate::store::StoreError> {
        self.store.put_source_state(&source.id, state)
    }
}

/// Counts the first poll of every source since start, to log one summary line when
/// all have been tried: how long a cold start takes, and how many sources work.
struct FirstRound {
    started: Instant,
    polled: Vec<bool>,
    pending: usize,
    failed: usize,
}

impl FirstRound {
    fn new(sources: usize) -> Self {
        FirstRound {
            started: Instant::now(),
            polled: vec![false; sources],
            pending: sources,
            failed: 0,
        }
    }

    fn record(&mut self, index: usize, ok: bool) {
        if std::mem::replace(&mut self.polled[index], true) {
            return;
        }
        self.pending -= 1;
        self.failed += usize::from(!ok);
        if self.pending == 0 {
            info!(
                sources = self.polled.len(),
                failed = self.failed,
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                "every source polled once"
            );
        }
    }
}

/// Why a poll failed, as the source's status shows it.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("fetch: {0}")]
    Fetch(FetchError),
    #[error("parse: {0}")]
    Parse(String),
    #[error("{0}")]
    Store(crate::store::StoreError),
}

/// The name the merged feed shows for a source: its `name` in `feeds.toml`, else the
/// feed's own title, else its host.
pub fn display_name(source: &SourceConfig, state: &SourceState) -> String {
    source
        .name
        .clone()
        .or_else(|| state.title.clone())
        .unwrap_or_else(|| source.url.host_str().unwrap_or("unknown").to_string())
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
