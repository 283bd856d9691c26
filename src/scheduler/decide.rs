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
use crate::store::StoreError;

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
        warn!(source = %source.shown_url(), moved_to = %source.show(target.as_str()), "the source has moved permanently; now polling its new address; update its url in the config");
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
    state.last_error = Some(source.scrub(&error));
}

/// The wait before a source whose write was fenced off is polled again.
pub(super) const FENCED_RETRY: Duration = Duration::from_secs(15);

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
    let message = source.scrub(&err.to_string());
    let network = matches!(err, PollError::Fetch(e) if e.is_network());
    if network && network_down(&message) {
        debug!(source = %source.shown_url(), error = %message, "poll failed during a network outage");
        state.last_error = Some(message);
        return base.min(plan::BACKOFF_START);
    }
    if matches!(err, PollError::Store(StoreError::Fenced { .. })) {
        // In a cluster, this node's lease on the source's host lapsed or moved while
        // it polled: nothing was kept. If the lease comes back, the items are fetched
        // again soon; if another node took it, the source leaves this node's plan.
        debug!(source = %source.shown_url(), error = %message, "poll not stored: the lease moved");
        return base.min(FENCED_RETRY);
    }
    if matches!(err, PollError::Store(_)) {
        // The source answered; the store could not keep it. Backing the source off
        // would delay it long after the store recovers: it is polled again at its
        // interval, and the store says (once) what is wrong.
        if state.last_error.as_deref() != Some(message.as_str()) {
            warn!(source = %source.shown_url(), error = %message, "poll not stored");
        }
        state.last_error = Some(message);
        return base;
    }
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    // One warning when a source breaks or breaks differently; repeats are detail.
    if state.last_error.as_deref() != Some(message.as_str()) {
        warn!(source = %source.shown_url(), error = %message, failures = state.consecutive_failures, "poll failed");
    } else {
        debug!(source = %source.shown_url(), error = %message, failures = state.consecutive_failures, "poll failed again");
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
    new != running
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

/// How a source of fingerprint `new` compares with the one of the same id polled
/// until now, whose fingerprint was `tracked` ([`SourceConfig::fingerprint`]: taken
/// once per source and config, so a reload of 100 000 sources hashes each once).
pub(super) fn change(tracked: Option<u64>, new: u64, restart_all: bool) -> Change {
    match tracked {
        Some(current) if !restart_all && current == new => Change::Kept,
        Some(_) => Change::Changed,
        None => Change::Added,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Interval;
    use crate::fetch::FetchError;
    use reqwest::StatusCode;

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    const BOUNDS: Bounds = Bounds {
        min: MINUTE,
        max: Duration::from_secs(24 * 3600),
    };

    fn source() -> SourceConfig {
        let text = "[[source]]\nurl = \"https://a.example/rss\"\n";
        let mut config = crate::config::parse(std::path::Path::new("feeds.toml"), text, None)
            .expect("the test config is valid");
        let mut source = config.sources.remove(0);
        source.interval = Interval::Fixed(30 * MINUTE);
        source
    }

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn status(code: u16, retry_after: Option<Duration>) -> PollError {
        PollError::Fetch(FetchError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after,
        })
    }

    fn response(moved_permanently: Option<&str>) -> Response {
        Response {
            final_url: Url::parse("https://a.example/rss").unwrap(),
            moved_permanently: moved_permanently.map(|u| Url::parse(u).unwrap()),
            fresh_for: None,
            content_location: None,
            links: None,
        }
    }

    fn network_never_asked(_: &str) -> bool {
        panic!("only a connection failure asks whether the network is down")
    }

    #[test]
    fn a_gone_source_rests_until_its_config_changes() {
        let mut source = source();
        let mut state = SourceState::default();
        assert!(!is_gone(&source, &state));
        mark_gone(
            &source,
            &mut state,
            "fetch: server answered 410 Gone".into(),
        );
        assert!(is_gone(&source, &state));
        assert_eq!(
            state.last_error.as_deref(),
            Some("fetch: server answered 410 Gone")
        );
        source.tags.push("news".into());
        assert!(!is_gone(&source, &state), "a changed entry is tried again");
    }

    #[test]
    fn the_polled_address_is_the_redirect_target_then_the_discovered_feed() {
        let source = source();
        let mut state = SourceState::default();
        assert_eq!(poll_url(&source, &state), source.url);
        state.discovered_feed = Some("https://a.example/feed.xml".into());
        assert_eq!(
            poll_url(&source, &state).as_str(),
            "https://a.example/feed.xml"
        );
        state.effective_url = Some("https://b.example/rss".into());
        assert_eq!(poll_url(&source, &state).as_str(), "https://b.example/rss");
    }

    #[test]
    fn after_a_restart_a_source_keeps_its_remembered_time_within_its_interval() {
        let source = source();
        let mut state = SourceState::default();
        assert_eq!(first_wait(&source, &state, BOUNDS, now()), Duration::ZERO);
        state.next_poll = Some(now() - chrono::Duration::minutes(5));
        assert_eq!(first_wait(&source, &state, BOUNDS, now()), Duration::ZERO);
        state.next_poll = Some(now() + chrono::Duration::minutes(10));
        assert_eq!(first_wait(&source, &state, BOUNDS, now()), 10 * MINUTE);
        // The interval was shortened in the config since: it caps the wait.
        state.next_poll = Some(now() + chrono::Duration::hours(2));
        assert_eq!(first_wait(&source, &state, BOUNDS, now()), 30 * MINUTE);
    }

    #[test]
    fn after_a_restart_a_failing_source_keeps_its_backoff() {
        let source = source();
        let state = SourceState {
            consecutive_failures: 3,
            next_poll: Some(now() + chrono::Duration::hours(2)),
            ..SourceState::default()
        };
        assert_eq!(first_wait(&source, &state, BOUNDS, now()), 2 * HOUR);
        let state = SourceState {
            next_poll: Some(now() + chrono::Duration::hours(48)),
            ..state
        };
        assert_eq!(
            first_wait(&source, &state, BOUNDS, now()),
            plan::BACKOFF_MAX
        );
    }

    #[test]
    fn a_success_ends_the_failure_streak() {
        let mut state = SourceState {
            consecutive_failures: 4,
            last_error: Some("fetch: server answered 500".into()),
            ..SourceState::default()
        };
        succeeded(&mut state, now());
        assert_eq!(state.consecutive_failures, 0);
        assert_eq!(state.last_error, None);
        assert_eq!(state.last_success, Some(now()));
    }

    #[test]
    fn a_permanent_redirect_moves_the_source_only_once_seen_on_polls_in_a_row() {
        let source = source();
        let mut state = SourceState::default();
        let moved = response(Some("https://b.example/rss"));
        for _ in 1..PERMANENT_REDIRECT_POLLS {
            follow_redirects(&source, &mut state, &moved);
            assert_eq!(state.effective_url, None);
        }
        follow_redirects(&source, &mut state, &moved);
        assert_eq!(
            state.effective_url.as_deref(),
            Some("https://b.example/rss")
        );
        assert_eq!((state.redirect_candidate, state.redirect_streak), (None, 0));
    }

    #[test]
    fn a_poll_without_the_redirect_or_with_another_one_breaks_the_streak() {
        let source = source();
        let mut state = SourceState::default();
        follow_redirects(
            &source,
            &mut state,
            &response(Some("https://b.example/rss")),
        );
        follow_redirects(&source, &mut state, &response(None));
        assert_eq!(
            (state.redirect_candidate.as_deref(), state.redirect_streak),
            (None, 0)
        );
        follow_redirects(
            &source,
            &mut state,
            &response(Some("https://b.example/rss")),
        );
        follow_redirects(
            &source,
            &mut state,
            &response(Some("https://c.example/rss")),
        );
        assert_eq!(
            (state.redirect_candidate.as_deref(), state.redirect_streak),
            (Some("https://c.example/rss"), 1)
        );
        assert_eq!(state.effective_url, None);
    }

    #[test]
    fn a_discovered_feed_starts_afresh_and_is_forgotten_when_it_goes() {
        let mut state = SourceState {
            effective_url: Some("https://a.example/moved".into()),
            redirect_candidate: Some("https://a.example/x".into()),
            redirect_streak: 2,
            etag: Some("\"page\"".into()),
            last_modified: Some("yesterday".into()),
            body_hash: Some(7),
            ..SourceState::default()
        };
        adopt_discovered_feed(&mut state, "https://a.example/feed.xml".into());
        let expected = SourceState {
            discovered_feed: Some("https://a.example/feed.xml".into()),
            ..SourceState::default()
        };
        assert_eq!(state, expected);
        state.effective_url = Some("https://a.example/feed2.xml".into());
        forget_discovered_feed(&mut state);
        assert_eq!(state, SourceState::default());
    }

    #[test]
    fn each_failure_in_a_row_backs_off_further() {
        let source = source();
        let mut state = SourceState::default();
        let err = status(500, None);
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, network_never_asked);
        assert_eq!(wait, plan::after_failure(1, 30 * MINUTE, None));
        assert_eq!(state.consecutive_failures, 1);
        assert_eq!(
            state.last_error.as_deref(),
            Some("fetch: server answered 500 Internal Server Error")
        );
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, network_never_asked);
        assert_eq!(state.consecutive_failures, 2);
        assert_eq!(wait, plan::after_failure(2, 30 * MINUTE, None));
        // 15 minutes doubling: the third failure in a row waits an hour.
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, network_never_asked);
        assert_eq!(wait, HOUR);
    }

    #[test]
    fn a_retry_after_is_honoured() {
        let source = source();
        let mut state = SourceState::default();
        let err = status(503, Some(6 * HOUR));
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, network_never_asked);
        assert_eq!(wait, 6 * HOUR);
        assert_eq!(state.consecutive_failures, 1);
    }

    #[test]
    fn a_network_outage_does_not_grow_the_backoff() {
        let source = source();
        let mut state = SourceState {
            consecutive_failures: 5,
            ..SourceState::default()
        };
        let err = PollError::Fetch(FetchError::Connect("connection refused".into()));
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, |_| true);
        assert_eq!(wait, plan::BACKOFF_START.min(30 * MINUTE));
        assert_eq!(state.consecutive_failures, 5);
        assert_eq!(
            state.last_error.as_deref(),
            Some("fetch: cannot reach the server: connection refused")
        );
        // Others can be reached: the source itself is failing.
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, |_| false);
        assert_eq!(state.consecutive_failures, 6);
        assert_eq!(wait, plan::after_failure(6, 30 * MINUTE, None));
    }

    #[test]
    fn a_store_failure_does_not_back_the_source_off() {
        let source = source();
        let mut state = SourceState::default();
        let err = PollError::Store(crate::store::StoreError::Reopening);
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, network_never_asked);
        assert_eq!(wait, 30 * MINUTE);
        assert_eq!(state.consecutive_failures, 0);
        assert!(state.last_error.as_deref().unwrap().starts_with("store: "));
        // A write fenced off in a cluster: fetched again soon, unless the source has
        // left this node by then.
        let err = PollError::Store(crate::store::StoreError::Fenced { part: 3 });
        let wait = after_failure(&source, &mut state, &err, 30 * MINUTE, network_never_asked);
        assert_eq!(wait, FENCED_RETRY);
        assert_eq!(state.consecutive_failures, 0);
    }

    #[test]
    fn changed_poll_settings_restart_every_source() {
        let running = PollConfig::default();
        assert!(!poll_settings_changed(&running, &PollConfig::default()));
        let new = PollConfig {
            per_host: running.per_host + 1,
            ..PollConfig::default()
        };
        assert!(poll_settings_changed(&running, &new));
    }

    #[test]
    fn a_reload_tells_kept_changed_and_added_sources_apart() {
        let old = source();
        let key = old.fingerprint();
        assert_eq!(change(None, key, false), Change::Added);
        assert_eq!(
            change(Some(key), old.clone().fingerprint(), false),
            Change::Kept
        );
        assert_eq!(
            change(Some(key), old.clone().fingerprint(), true),
            Change::Changed
        );
        let mut new = old.clone();
        new.interval = Interval::Fixed(HOUR);
        assert_eq!(change(Some(key), new.fingerprint(), false), Change::Changed);
    }
}
