//! What the polls of the last period came to, logged as one info line per period.
//!
//! A line per fetch at info is a line per source per interval: with a thousand
//! sources, thousands of lines an hour that say "one new item", and formatting and
//! writing them cost more CPU than storing the items. So each poll's line is at debug,
//! and the first poll to end after a period (the `[poll]` interval, at least a
//! minute) logs what the polls since the last line came to.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::info;

use crate::ops::metrics::PollOutcome;

/// 1 minute: the shortest period between two summaries.
pub(super) const MIN_PERIOD: Duration = Duration::from_secs(60);

/// The polls since the last summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Polls that ended (cancelled ones are not counted).
    pub(super) polls: u64,
    /// Answered 304, or with a body unchanged since the last poll.
    pub(super) not_modified: u64,
    /// Failed, or answered 410 Gone.
    pub(super) failed: u64,
    /// Polls that stored new or changed items.
    pub(super) with_news: u64,
    pub(super) added: u64,
    pub(super) updated: u64,
}

/// Counts polls, and says when a period is over.
pub(super) struct Tally {
    period: Duration,
    state: Mutex<(Counts, Instant)>,
}

impl Tally {
    /// A tally that summarizes every `period` (at least [`MIN_PERIOD`]).
    pub(super) fn new(period: Duration) -> Tally {
        Tally {
            period: period.max(MIN_PERIOD),
            state: Mutex::new((Counts::default(), Instant::now())),
        }
    }

    /// A poll stored items: `added` new ones, `updated` changed ones.
    pub(super) fn stored(&self, added: usize, updated: usize) {
        if added + updated > 0 {
            let mut state = self.lock();
            state.0.with_news += 1;
            state.0.added += added as u64;
            state.0.updated += updated as u64;
        }
    }

    /// Counts a poll that ended with `outcome`, and logs the summary when a period
    /// is over.
    pub(super) fn polled(&self, outcome: PollOutcome) {
        if let Some((counts, over)) = self.count(outcome, Instant::now()) {
            info!(
                seconds = over.as_secs(),
                polls = counts.polls,
                not_modified = counts.not_modified,
                failed = counts.failed,
                with_news = counts.with_news,
                added = counts.added,
                updated = counts.updated,
                "polled"
            );
        }
    }

    /// Counts one poll at `now`; the counts and the time they cover when the period
    /// is over (and a new one starts).
    fn count(&self, outcome: PollOutcome, now: Instant) -> Option<(Counts, Duration)> {
        let mut state = self.lock();
        let (counts, since) = &mut *state;
        counts.polls += 1;
        match outcome {
            PollOutcome::ok => {}
            PollOutcome::not_modified => counts.not_modified += 1,
            PollOutcome::failed | PollOutcome::gone => counts.failed += 1,
        }
        let over = now.saturating_duration_since(*since);
        (over >= self.period).then(|| {
            *since = now;
            (std::mem::take(counts), over)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Counts, Instant)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_covers_every_poll_of_its_period_once() {
        let tally = Tally::new(Duration::from_secs(30));
        assert_eq!(tally.period, MIN_PERIOD);
        let start = tally.lock().1;
        let at = |s| start + Duration::from_secs(s);
        tally.stored(1, 0);
        assert_eq!(tally.count(PollOutcome::ok, at(1)), None);
        assert_eq!(tally.count(PollOutcome::not_modified, at(2)), None);
        assert_eq!(tally.count(PollOutcome::failed, at(3)), None);
        tally.stored(0, 0);
        tally.stored(2, 1);
        let (counts, over) = tally.count(PollOutcome::ok, at(61)).unwrap();
        assert_eq!(over, Duration::from_secs(61));
        assert_eq!(
            counts,
            Counts {
                polls: 4,
                not_modified: 1,
                failed: 1,
                with_news: 2,
                added: 3,
                updated: 1,
            }
        );
        // The next period starts empty, from the poll that ended the last one.
        assert_eq!(tally.count(PollOutcome::gone, at(100)), None);
        let (counts, _) = tally.count(PollOutcome::ok, at(121)).unwrap();
        assert_eq!((counts.polls, counts.failed, counts.added), (2, 1, 0));
    }
}
