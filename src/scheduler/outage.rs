//! Tells a network outage of this machine from broken sources, so an outage does not
//! push every source into backoff.

use std::time::Duration;
use tracing::{info, warn};

/// With no successful poll anywhere for this long, connection failures are taken as
/// this machine's outage, not the sources' fault.
const OUTAGE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Tells a network outage of this machine from broken sources: when no poll has
/// succeeded for [`OUTAGE_WINDOW`] (or none ever did), connection failures are the
/// network's. Reported once when it starts and once when it ends.
#[derive(Default)]
pub(super) struct Connectivity {
    pub(super) last_success: Option<std::time::Instant>,
    pub(super) outage_since: Option<std::time::Instant>,
}

impl Connectivity {
    pub(super) fn succeeded(&mut self) {
        let now = std::time::Instant::now();
        if let Some(since) = self.outage_since.take() {
            info!(
                after_s = since.elapsed().as_secs(),
                "the network is back: polls succeed again"
            );
        }
        self.last_success = Some(now);
    }

    pub(super) fn network_down(&mut self, error: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn with_no_success_ever_a_connection_failure_is_an_outage() {
        let mut connectivity = Connectivity::default();
        assert!(connectivity.network_down("cannot reach the server"));
        assert!(connectivity.outage_since.is_some());
        connectivity.succeeded();
        assert!(connectivity.outage_since.is_none());
        assert!(!connectivity.network_down("cannot reach the server"));
    }

    #[test]
    fn a_success_within_the_window_makes_it_the_source_s_fault() {
        let mut connectivity = Connectivity {
            last_success: Instant::now().checked_sub(OUTAGE_WINDOW / 2),
            outage_since: None,
        };
        assert!(!connectivity.network_down("cannot reach the server"));
        assert!(connectivity.outage_since.is_none());
        let Some(long_ago) = Instant::now().checked_sub(OUTAGE_WINDOW * 2) else {
            return; // the machine booted less than that ago
        };
        connectivity.last_success = Some(long_ago);
        assert!(connectivity.network_down("cannot reach the server"));
        assert!(connectivity.outage_since.is_some());
    }
}
