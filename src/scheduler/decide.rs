//! Pure: what a poll's outcome does to a source's remembered state, when a source is
//! first due after start-up, and how a reload compares sources. No clock, no I/O, no
//! randomness (the caller adds the jitter and the time), so each decision is tested
//! on its own; [`plan`] holds the intervals these build on.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{debug, warn};
use url::Url;

use super::PERMANENT_REDIRECT_POLLS;
use super::plan::{self, Bounds};
use super::poll::PollError;
use crate::config::{PollConfig, SourceConfig};
use crate::fetch::Response;
use crate::item::SourceState;

/// Whether the server answered 410 Gone under the source's current config: then it
/// is not polled until its entry changes.
pub(super) fn is_gone(source: &SourceConfig, state: &SourceState) -> bool {
    state.gone == Some(source.fingerprint())
}

/// The address a poll fetches: after a permanent redirect its target; else the feed
/// discovered behind the configured page; else the configured URL.
pub(super) fn poll_url(source: &SourceConfig, state: &SourceState) -> Url {
    state
        .effective_url
        .as_deref()
        .or(state.discovered_feed.as_deref())
        .and_then(|u| Url::parse(u).ok())
        .unwrap_or_else(|| source.url.clone())
}

/// How long after start-up a source is first due: until its remembered next-poll time
/// when that is still ahead (a restart does not re-poll everything, nor ignore a
/// backoff or a Retry-After), else now. A healthy source waits at most its base
/// interval, which may have been shortened in the config since; a failing one at most
/// the longest backoff.
pub(super) fn first_wait(
    source: &SourceConfig,
    state: &SourceState,
    bounds: Bounds,
    now: DateTime<Utc>,
) -> Duration {
    let cap = if state.consecutive_failures > 0 {
        plan::BACKOFF_MAX
    } else {
        plan::base_interval(source.interval, state.learned_interval, bounds)
    };
    state
        .next_poll
        .and_then(|at| (at - now).to_std().ok())
        .map_or(Duration::ZERO, |wait| wait.min(cap))
}

/// A poll that succeeded (a 304 included): the failure streak and error end.
pub(super) fn succeeded(state: &mut SourceState, now: DateTime<Utc>) {
    state.last_success = Some(now);
    state.consecutive_failures = 0;
    state.last_error = None;
}

/// Moves the source to where it permanently redirects once that was seen on
/// [`PERMANENT_REDIRECT_POLLS`] polls in a row; a temporary redirect, or none,
/// breaks the streak.
pub(super) fn follow_redirects(
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

/// A feed found behind the configured page: polled from now on. The page's validators
/// and redirects say nothing about the feed.
pub(super) fn adopt_discovered_feed(state: &mut SourceState, feed: String) {
    state.discovered_feed = Some(feed);
    state.effective_url = None;
    state.redirect_candidate = None;
    state.redirect_streak = 0;
    state.etag = None;
    state.last_modified = None;
    state.body_hash = None;
}

/// The discovered feed went away (404/410): the page is searched again next time.
pub(super) fn forget_discovered_feed(state: &mut SourceState) {
    state.discovered_feed = None;
    state.effective_url = None;
    state.redirect_candidate = None;
    state.redirect_streak = 0;
}

/// 410 Gone: the source rests until its config changes (its fingerprint is kept).
pub(super) fn mark_gone(source: &SourceConfig, state: &mut SourceState, error: String) {
    state.gone = Some(source.fingerprint());
    state.last_error = Some(error);
}

/// Records a failure and returns the wait before the next try, before jitter.
/// `network_down` is asked, for a connection failure only, whether the whole network
/// seems down: then the source's backoff does not grow. A store failure is not the
/// source's fault: it is polled again at its interval.
pub(super) fn after_failure(
    source: &SourceConfig,
    state: &mut SourceState,
    err: &PollError,
    base: Duration,
    network_down: impl FnOnce(&str) -> bool,
) -> Duration {
    let message = err.to_string();
    let network = matches!(err, PollError::Fetch(e) if e.is_network());
    if network && network_down(&message) {
        debug!(source = %source.id, error = %message, "poll failed during a network outage");
        state.last_error = Some(message);
        return base.min(plan::BACKOFF_START);
    }
    if matches!(err, PollError::Store(_)) {
        // The source answered; the store could not keep it. Backing the source off
        // would delay it long after the store recovers: it is polled again at its
        // interval, and the store says (once) what is wrong.
        if state.last_error.as_deref() != Some(message.as_str()) {
            warn!(source = %source.id, error = %message, "poll not stored");
        }
        state.last_error = Some(message);
        return base;
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
    plan::after_failure(state.consecutive_failures, base, retry_after)
}

/// Whether a reload's `[poll]` settings differ from the running ones: then every
/// source restarts with them.
pub(super) fn poll_settings_changed(running: &PollConfig, new: &PollConfig) -> bool {
    format!("{new:?}") != format!("{running:?}")
}

/// How a source of a new plan compares with the one tracked under its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// Unchanged: it keeps its timer.
    Kept,
    /// Its settings changed (or every source restarts): it restarts with the new ones.
    Changed,
    /// Not tracked before: it starts.
    Added,
}

/// How `new` compares with `tracked`, the source of the same id polled until now.
pub(super) fn change(
    tracked: Option<&SourceConfig>,
    new: &SourceConfig,
    restart_all: bool,
) -> Change {
    match tracked {
        Some(current) if !restart_all && current.fingerprint() == new.fingerprint() => Change::Kept,
        Some(_) => Change::Changed,
        None => Change::Added,
    }
}
