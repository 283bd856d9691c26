//! systemd's watchdog (`WatchdogSec=`): `WATCHDOG=1` every half period, for as long as
//! the daemon does its work. A process that is alive but stuck must stop pinging, so
//! the poll loop and the HTTP accept loop each touch a [`Heartbeat`] as they turn, and
//! a heartbeat older than the tolerance stops the pings until it is fresh again.
//!
//! Reloads run beside those loops and do not stop them; once shutdown has begun the
//! loops end on purpose, so pings go on unconditionally while the daemon drains.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[cfg(doc)]
use crate::ops::systemd;

/// How often the watched loops touch their heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A heartbeat is stale after this many missed beats at least (and never before half
/// the watchdog period): a busy runtime may delay a tick, a stuck one never comes back.
const MISSED_BEATS: u32 = 3;

/// When a loop last turned, as milliseconds since the first heartbeat of the process.
#[derive(Clone, Debug)]
pub struct Heartbeat(Arc<AtomicU64>);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Default for Heartbeat {
    fn default() -> Self {
        let heartbeat = Heartbeat(Arc::new(AtomicU64::new(0)));
        heartbeat.beat();
        heartbeat
    }
}

impl Heartbeat {
    /// The loop is turning.
    pub fn beat(&self) {
        self.0
            .store(epoch().elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub fn age(&self) -> Duration {
        let now = epoch().elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`, for this process), if any.
pub fn period() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|period| !period.is_zero())
}

/// How old a heartbeat may be before the pings stop.
pub fn tolerance(period: Duration) -> Duration {
    (period / 2).max(HEARTBEAT_EVERY * MISSED_BEATS)
}

/// Calls `ping` (in the daemon: [`systemd::watchdog`]) every half `period` while no
/// heartbeat in `watched` is older than `tolerance`, or unconditionally once
/// `draining` is cancelled; returns when `stop` is cancelled.
pub async fn run(
    period: Duration,
    tolerance: Duration,
    watched: Vec<(&'static str, Heartbeat)>,
    draining: CancellationToken,
    stop: CancellationToken,
    ping: impl Fn(),
) {
    let mut ticks = tokio::time::interval(period / 2);
    let mut stuck: Option<&'static str> = None;
    info!(
        period_ms = period.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let stale = watched
            .iter()
            .find(|(_, heartbeat)| heartbeat.age() > tolerance)
            .filter(|_| !draining.is_cancelled());
        match (stale, stuck) {
            (Some((name, heartbeat)), None) => {
                error!(
                    stuck = name,
                    for_ms = heartbeat.age().as_millis() as u64,
                    "the {name} has stopped turning: no longer pinging the watchdog, so systemd restarts the service"
                );
                stuck = Some(name);
            }
            (None, Some(name)) => {
                info!(
                    loop_name = name,
                    "turning again: pinging the watchdog again"
                );
                stuck = None;
            }
            _ => {}
        }
        if stuck.is_none() {
            ping();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_heartbeat_is_young_and_the_tolerance_is_never_below_three_beats() {
        let heartbeat = Heartbeat::default();
        assert!(heartbeat.age() < Duration::from_millis(500));
        assert_eq!(tolerance(Duration::from_secs(30)), Duration::from_secs(15));
        assert_eq!(tolerance(Duration::from_secs(1)), Duration::from_secs(3));
    }

    /// Runs the watchdog on `heartbeat` (period 100 ms, tolerance 150 ms) and returns
    /// the ping counter, the draining token and the stop token.
    fn start(heartbeat: Heartbeat) -> (Arc<AtomicU64>, CancellationToken, CancellationToken) {
        let pings = Arc::new(AtomicU64::new(0));
        let (draining, stop) = (CancellationToken::new(), CancellationToken::new());
        let counter = pings.clone();
        tokio::spawn(run(
            Duration::from_millis(100),
            Duration::from_millis(150),
            vec![("poll loop", heartbeat)],
            draining.clone(),
            stop.clone(),
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
        ));
        (pings, draining, stop)
    }

    async fn pings_during(pings: &AtomicU64, wait: Duration) -> u64 {
        let before = pings.load(Ordering::SeqCst);
        tokio::time::sleep(wait).await;
        pings.load(Ordering::SeqCst) - before
    }

    #[tokio::test]
    async fn a_stale_heartbeat_stops_the_pings_until_it_beats_again_or_the_daemon_drains() {
        let heartbeat = Heartbeat::default();
        let (pings, draining, stop) = start(heartbeat.clone());
        // Fresh: a ping every 50 ms.
        assert!(pings_during(&pings, Duration::from_millis(120)).await >= 1);
        // Not beaten for longer than the tolerance: silence.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(pings_during(&pings, Duration::from_millis(300)).await, 0);
        // Beating again: pings again.
        heartbeat.beat();
        assert!(pings_during(&pings, Duration::from_millis(120)).await >= 1);
        // Draining: the loops end on purpose, pings go on.
        tokio::time::sleep(Duration::from_millis(300)).await;
        draining.cancel();
        assert!(pings_during(&pings, Duration::from_millis(300)).await >= 3);
        stop.cancel();
    }
}
