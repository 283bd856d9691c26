//! Pure: when a source is due next. No clock, no I/O, no randomness: every decision
//! is a function of the source's settings, its state and the time passed in, so the
//! policy is tested without sleeping.
//!
//! Called by the scheduler after every poll. The policy, in order:
//! 1. The base interval: the configured one, or for `auto` the learned one
//!    ([`learn_interval`]).
//! 2. After a success, publisher hints (`Cache-Control`/`Expires`, `<ttl>`,
//!    `sy:updatePeriod`) may lengthen it, up to `max_interval` ([`after_success`]).
//! 3. After a failure, exponential backoff from 15 minutes up to 24 hours, never
//!    sooner than the base interval or the server's `Retry-After` ([`after_failure`]).
//! 4. The next poll is moved out of the feed's `skipHours`/`skipDays` ([`skip`]).

use chrono::{DateTime, Datelike, Duration as Span, Timelike, Utc};
use std::time::Duration;

use crate::config::{DEFAULT_INTERVAL, Interval};

/// First step of the backoff after a failure.
pub const BACKOFF_START: Duration = Duration::from_secs(15 * 60);
/// Longest backoff: a broken source is still tried daily, never given up.
pub const BACKOFF_MAX: Duration = Duration::from_secs(24 * 3600);
/// How far back publishing is looked at to learn a source's rate.
pub const LEARNING_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// Items looked at to learn a rate: the newest ones say most about the present.
const LEARNING_ITEMS: usize = 20;

/// The bounds within which adaptive intervals and publisher hints move.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
}

impl Bounds {
    fn clamp(&self, interval: Duration) -> Duration {
        interval.clamp(self.min, self.max)
    }
}

/// The interval before hints and backoff: the configured one, or for `auto` what was
/// learned (the default until the source has been seen publishing).
pub fn base_interval(interval: Interval, learned: Option<Duration>, bounds: Bounds) -> Duration {
    match interval {
        Interval::Fixed(every) => every,
        Interval::Auto => bounds.clamp(learned.unwrap_or(DEFAULT_INTERVAL)),
    }
}

/// Learns a polling interval from the dates of a source's items: half the average gap
/// between its newest items of the last 30 days, so a new item waits on average a
/// quarter of the gap. A source with nothing dated in the window is polled at
/// `bounds.max`; one with no dates at all at the default. Future dates are ignored.
pub fn learn_interval(dates: &[DateTime<Utc>], now: DateTime<Utc>, bounds: Bounds) -> Duration {
    if dates.is_empty() {
        return bounds.clamp(DEFAULT_INTERVAL);
    }
    let window_start = now - Span::from_std(LEARNING_WINDOW).expect("30 days fit");
    let mut recent: Vec<_> = dates
        .iter()
        .copied()
        .filter(|d| *d <= now && *d >= window_start)
        .collect();
    recent.sort_unstable_by(|a, b| b.cmp(a));
    recent.truncate(LEARNING_ITEMS);
    match recent.len() {
        0 => bounds.max,
        // One item in a month: at most one gap known, from it to now.
        1 => bounds.clamp(((now - recent[0]).to_std().unwrap_or_default()) / 2),
        n => {
            let span = (recent[0] - recent[n - 1]).to_std().unwrap_or_default();
            bounds.clamp(span / (n as u32 - 1) / 2)
        }
    }
}

/// The wait after a successful poll: the base interval, lengthened by what the
/// publisher asks (freshness from HTTP, `<ttl>`, `sy:updatePeriod`) up to `bounds.max`.
pub fn after_success(base: Duration, hints: &[Option<Duration>], bounds: Bounds) -> Duration {
    let hinted = hints.iter().flatten().max().copied().unwrap_or_default();
    base.max(hinted.min(bounds.max))
}

/// The wait after the `failures`-th failure in a row: 15 minutes doubling up to 24
/// hours, never shorter than the base interval, and never sooner than `retry_after`.
pub fn after_failure(failures: u32, base: Duration, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let backoff = BACKOFF_START
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX);
    backoff
        .max(base)
        .max(retry_after.unwrap_or_default().min(BACKOFF_MAX))
}

/// Moves `next` to the first whole hour that is in neither `skip_hours` (0-23, GMT)
/// nor `skip_days` (0 = Monday). A feed that skips every hour is taken at its word
/// only for a day.
pub fn skip(next: DateTime<Utc>, skip_hours: &[u8], skip_days: &[u8]) -> DateTime<Utc> {
    let skipped = |t: DateTime<Utc>| {
        skip_hours.contains(&(t.hour() as u8))
            || skip_days.contains(&(t.weekday().num_days_from_monday() as u8))
    };
    if !skipped(next) {
        return next;
    }
    let mut hour = next
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(next);
    for _ in 0..7 * 24 {
        hour += Span::hours(1);
        if !skipped(hour) {
            return hour;
        }
    }
    next + Span::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn bounds() -> Bounds {
        Bounds {
            min: 5 * MIN,
            max: 6 * HOUR,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn backoff_grows_caps_and_respects_interval_and_retry_after() {
        let cases = [
            (1, 5 * MIN, None, 15 * MIN),
            (2, 5 * MIN, None, 30 * MIN),
            (3, 5 * MIN, None, HOUR),
            (7, 5 * MIN, None, 16 * HOUR),
            (8, 5 * MIN, None, 24 * HOUR),
            (40, 5 * MIN, None, 24 * HOUR),
            (1, 2 * HOUR, None, 2 * HOUR),
            (1, 5 * MIN, Some(HOUR), HOUR),
            (1, 5 * MIN, Some(100 * HOUR), 24 * HOUR),
            (3, 5 * MIN, Some(2 * MIN), HOUR),
        ];
        for (failures, base, retry_after, expected) in cases {
            assert_eq!(
                after_failure(failures, base, retry_after),
                expected,
                "{failures} failures, base {base:?}, retry-after {retry_after:?}"
            );
        }
    }

    #[test]
    fn hints_lengthen_within_the_ceiling() {
        let b = bounds();
        assert_eq!(after_success(15 * MIN, &[None, None], b), 15 * MIN);
        assert_eq!(
            after_success(15 * MIN, &[Some(HOUR), Some(30 * MIN)], b),
            HOUR
        );
        assert_eq!(after_success(15 * MIN, &[Some(MIN)], b), 15 * MIN);
        assert_eq!(after_success(15 * MIN, &[Some(100 * HOUR)], b), 6 * HOUR);
    }

    #[test]
    fn auto_learns_from_publishing_rate() {
        let now = at("2026-02-06T12:00:00Z");
        let b = bounds();
        // Every hour: poll every 30 minutes.
        let hourly: Vec<_> = (0..10).map(|h| now - Span::hours(h)).collect();
        assert_eq!(learn_interval(&hourly, now, b), 30 * MIN);
        // Every 2 minutes: the floor.
        let busy: Vec<_> = (0..10).map(|m| now - Span::minutes(2 * m)).collect();
        assert_eq!(learn_interval(&busy, now, b), 5 * MIN);
        // Daily: the ceiling.
        let daily: Vec<_> = (0..10).map(|d| now - Span::days(d)).collect();
        assert_eq!(learn_interval(&daily, now, b), 6 * HOUR);
        // Nothing in 30 days: the ceiling; no dates at all: the default.
        assert_eq!(learn_interval(&[now - Span::days(90)], now, b), 6 * HOUR);
        assert_eq!(learn_interval(&[], now, b), DEFAULT_INTERVAL);
        // A future date says nothing.
        let future = [
            now + Span::days(1),
            now - Span::hours(1),
            now - Span::hours(2),
        ];
        assert_eq!(learn_interval(&future, now, b), 30 * MIN);
        assert_eq!(base_interval(Interval::Auto, None, b), DEFAULT_INTERVAL);
        assert_eq!(base_interval(Interval::Auto, Some(MIN), b), 5 * MIN);
        assert_eq!(
            base_interval(Interval::Fixed(2 * MIN), Some(HOUR), b),
            2 * MIN
        );
    }

    #[test]
    fn skip_hours_and_days_move_the_next_poll() {
        let friday_late = at("2026-02-06T22:30:00Z");
        assert_eq!(skip(friday_late, &[], &[]), friday_late);
        assert_eq!(
            skip(friday_late, &[22, 23], &[]),
            at("2026-02-07T00:00:00Z")
        );
        // Saturday and Sunday skipped too: Monday 00:00.
        assert_eq!(
            skip(friday_late, &[22, 23], &[5, 6]),
            at("2026-02-09T00:00:00Z")
        );
        let all_hours: Vec<u8> = (0..24).collect();
        assert_eq!(
            skip(friday_late, &all_hours, &[]),
            friday_late + Span::days(1)
        );
    }
}
