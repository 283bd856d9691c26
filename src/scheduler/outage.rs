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
