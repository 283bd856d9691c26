//! One poll of one source: fetch it (within the concurrency limits, conditionally,
//! cancellable), follow a web page to its feed, store what is new, decide when it is
//! due again and remember all of it in the source's state.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use url::Url;

use super::shared::Shared;
use super::{PollResult, decide, document, jittered, plan};
use crate::config::SourceConfig;
use crate::fetch::discover::DiscoverError;
use crate::fetch::{FetchError, FetchOutcome, Fetched, Validators};
use crate::item::SourceState;
use crate::ops::metrics::PollOutcome;
use crate::store::StoreError;

/// What a fetch came to, before it is judged: the freshness the server granted and
/// how the poll is counted, or why it failed.
pub(super) type Taken = Result<(Option<Duration>, PollOutcome), PollError>;

impl Shared {
    /// Polls one source and records the outcome. Returns how long until it is due
    /// again, and what came of it.
    pub(super) async fn poll(
        &self,
        source: &Arc<SourceConfig>,
        token: &CancellationToken,
    ) -> (Duration, PollResult) {
        let mut state = self.state(source);
        if decide::is_gone(source, &state) {
            return (Duration::ZERO, PollResult::Gone);
        }
        state.gone = None;
        let url = decide::poll_url(source, &state);
        let validators = Validators {
            etag: state.etag.clone(),
            last_modified: state.last_modified.clone(),
        };
        // The global permit is held until the body is parsed and stored (see `fetch`).
        let Some((outcome, _global_permit, took)) =
            self.fetch(source, &url, &validators, token).await
        else {
            return (Duration::ZERO, PollResult::Cancelled);
        };
        let bytes = match &outcome {
            Ok(FetchOutcome::Fetched(fetched)) => fetched.body.len(),
            _ => 0,
        };
        self.metrics.record_fetch(took, bytes);
        let now = Utc::now();
        state.last_attempt = Some(now);
        let taken = self.take(source, &mut state, outcome, now).await;
        let (wait, result) = self.judge(source, &mut state, taken, now);
        (self.save(source, &mut state, wait, now), result)
    }

    /// Fetches within the source's host permit and a global one; `None` when the
    /// poll is cancelled first. The host's permit covers the request only; the global
    /// one is returned, held until the body is parsed and stored, so bodies cannot
    /// pile up in memory faster than they are processed (the network outruns the
    /// parser on a cold start).
    async fn fetch(
        &self,
        source: &SourceConfig,
        url: &Url,
        validators: &Validators,
        token: &CancellationToken,
    ) -> Option<(
        Result<FetchOutcome, FetchError>,
        OwnedSemaphorePermit,
        Duration,
    )> {
        tokio::select! {
            _ = token.cancelled() => None,
            fetched = async {
                let (_host_permit, global_permit) = self.permits(url).await;
                let started = Instant::now();
                let outcome = self.fetcher.fetch(url, validators, &source.request).await;
                (outcome, global_permit, started.elapsed())
            } => Some(fetched),
        }
    }

    /// Takes what the fetch brought: a 304, a page to find the feed behind, a body to
    /// store, or an error.
    async fn take(
        &self,
        source: &Arc<SourceConfig>,
        state: &mut SourceState,
        outcome: Result<FetchOutcome, FetchError>,
        now: DateTime<Utc>,
    ) -> Taken {
        match outcome {
            Ok(FetchOutcome::NotModified(response)) => {
                debug!(source = %source.shown_url(), "not modified");
                decide::follow_redirects(source, state, &response);
                decide::succeeded(state, now);
                Ok((response.fresh_for, PollOutcome::not_modified))
            }
            Ok(FetchOutcome::Fetched(fetched))
                if document::is_page_for_feed(&source.kind, &fetched) =>
            {
                match self.discover(source, state, fetched).await {
                    Ok(fetched) => self.ingest(source, state, fetched, now).await,
                    Err(err) => Err(err),
                }
            }
            Ok(FetchOutcome::Fetched(fetched)) => {
                decide::follow_redirects(source, state, &fetched.response);
                self.ingest(source, state, fetched, now).await
            }
            Err(err) if state.discovered_feed.is_some() && err.is_missing() => {
                // The discovered feed went away: look at the page again next time.
                info!(source = %source.shown_url(), feed = %source.show(state.discovered_feed.as_deref().unwrap_or("")), error = %source.scrub(&err.to_string()), "the discovered feed is gone; the page will be searched again");
                decide::forget_discovered_feed(state);
                Err(PollError::DiscoveredGone(err))
            }
            Err(err) => Err(PollError::Fetch(err)),
        }
    }

    /// Counts the poll and picks the wait before the next one: after a success the
    /// base interval lengthened by the publisher's hints, after 410 Gone none (the
    /// source rests), after a failure the backoff.
    fn judge(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        taken: Taken,
        now: DateTime<Utc>,
    ) -> (Duration, PollResult) {
        // After ingest, which may have learned a new interval.
        let base = plan::base_interval(source.interval, state.learned_interval, self.bounds());
        let metrics = &self.metrics;
        match taken {
            Ok((fresh_for, outcome)) => {
                metrics.record_poll(&source.id, outcome, Some(now.timestamp()));
                self.tally.polled(outcome);
                self.connectivity().succeeded();
                let wait = plan::after_success(base, &[fresh_for, state.feed_hint], self.bounds());
                (jittered(self.stretched(source, wait)), PollResult::Ok)
            }
            Err(PollError::Fetch(err)) if err.is_gone() => {
                warn!(source = %source.shown_url(), "the server answered 410 Gone: no longer polled; remove the source from the config, or change its entry to try again");
                decide::mark_gone(source, state, PollError::Fetch(err).to_string());
                metrics.record_poll(&source.id, PollOutcome::gone, None);
                self.tally.polled(PollOutcome::gone);
                (Duration::ZERO, PollResult::Gone)
            }
            Err(err) => {
                metrics.record_poll(&source.id, PollOutcome::failed, None);
                self.tally.polled(PollOutcome::failed);
                let wait = decide::after_failure(source, state, &err, base, |message| {
                    self.connectivity().network_down(message)
                });
                (jittered(wait), PollResult::Failed)
            }
        }
    }

    /// Sets the next poll (out of the feed's skip hours and days), saves the state and
    /// returns the wait until then.
    fn save(
        &self,
        source: &SourceConfig,
        state: &mut SourceState,
        wait: Duration,
        now: DateTime<Utc>,
    ) -> Duration {
        let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
        state.next_poll = Some(plan::skip(next, &state.skip_hours, &state.skip_days));
        if let Err(err) = self.store.put_source_state(&source.id, state) {
            warn!(source = %source.shown_url(), error = %err, "cannot save source state");
        }
        state
            .next_poll
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .unwrap_or(wait)
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
        let taken: Vec<Url> = self
            .source_urls
            .lock()
            .expect("the source list is never poisoned")
            .iter()
            .filter(|other| other.id != source.id)
            .map(|other| other.url.clone())
            .collect();
        let found = document::feed_behind_page(&self.fetcher, page, &source.request, &taken)
            .await
            .map_err(PollError::Discover)?;
        let feed = found.feed_url.to_string();
        if state.discovered_feed.as_deref() != Some(feed.as_str()) {
            info!(source = %source.shown_url(), page = %source.show(page_url.as_str()), feed = %source.show(&feed), via = ?found.via, advertised = found.advertised.len(), "the source is a web page; polling the feed it leads to");
        }
        decide::adopt_discovered_feed(state, feed);
        Ok(found.fetched)
    }
}

/// Why a poll failed, as the source's status shows it.
#[derive(Debug, thiserror::Error)]
pub(super) enum PollError {
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
