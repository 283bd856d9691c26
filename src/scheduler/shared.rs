//! What every poll shares: the store, the HTTP client, the poll settings, the
//! concurrency limits (a global semaphore and one per host) and the outage detector.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{info, warn};
use url::Url;

use super::decide;
use super::outage::Connectivity;
use super::plan::Bounds;
use crate::config::{PollConfig, SourceConfig};
use crate::fetch::Fetcher;
use crate::item::SourceState;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::store::Store;
use crate::websub::Adverts;

/// Shared by every poll: the settings, the concurrency limits and the outage detector.
/// Replaced whole when `[poll]` changes; polls in progress finish with the old one.
pub(super) struct Shared {
    pub(super) store: Store,
    pub(super) fetcher: Fetcher,
    pub(super) poll: PollConfig,
    pub(super) global: Arc<Semaphore>,
    pub(super) hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    pub(super) connectivity: Mutex<Connectivity>,
    /// Every configured source (for its URL), so discovery passes over a feed that
    /// another source already polls; replaced on reload.
    pub(super) source_urls: Mutex<crate::config::SharedSources>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    /// The entries each source sent before, passed over unread on its next poll.
    pub(super) known: super::known::KnownEntries,
    /// WebSub, when the daemon subscribes to hubs: where each new body's hubs are
    /// sent, and which sources are subscribed (polled [`crate::websub::POLL_STRETCH`]
    /// times less often).
    pub(super) websub: Option<Adverts>,
    /// What the polls came to, logged once a period.
    pub(super) tally: super::tally::Tally,
}

impl Shared {
    pub(super) fn bounds(&self) -> Bounds {
        Bounds {
            min: self.poll.min_interval,
            max: self.poll.max_interval,
        }
    }

    pub(super) fn state(&self, source: &SourceConfig) -> SourceState {
        self.store.source_state(&source.id).unwrap_or_else(|err| {
            warn!(source = %source.shown_url(), error = %err, "cannot read source state");
            SourceState::default()
        })
    }

    /// When a source is first due after start-up ([`decide::first_wait`]); `None` for
    /// a source that is gone under its current config.
    pub(super) fn first_poll(&self, source: &SourceConfig, now: DateTime<Utc>) -> Option<Instant> {
        self.first_poll_and_known(source, now).0
    }

    /// [`Shared::first_poll`], and whether the store knows the source: it was polled
    /// before (in this run or a former one), so its items are already served.
    pub(super) fn first_poll_and_known(
        &self,
        source: &SourceConfig,
        now: DateTime<Utc>,
    ) -> (Option<Instant>, bool) {
        let state = self.state(source);
        let known = state.last_attempt.is_some() || state.last_success.is_some();
        if state.consecutive_failures > 0 {
            self.metrics.mark_failing(&source.id);
        }
        if let Some(at) = state.last_success {
            self.remember_success(at, now);
        }
        if decide::is_gone(source, &state) {
            info!(source = %source.shown_url(), "not polled: the server answered 410 Gone; change its entry in the config to try again");
            return (None, known);
        }
        let at = Instant::now() + decide::first_wait(source, &state, self.bounds(), now);
        (Some(at), known)
    }

    /// A source's remembered last success at `at`: the outage detector takes the
    /// latest of them (the start-up read of every state does this, so it needs no
    /// pass of its own).
    fn remember_success(&self, at: DateTime<Utc>, now: DateTime<Utc>) {
        let Some(at) = (now - at)
            .to_std()
            .ok()
            .and_then(|ago| std::time::Instant::now().checked_sub(ago))
        else {
            return;
        };
        let mut connectivity = self.connectivity();
        if connectivity.last_success.is_none_or(|known| known < at) {
            connectivity.last_success = Some(at);
        }
    }

    /// The permits for one fetch: the host's first, then a global one, so sources
    /// waiting on a busy host never hold up other hosts.
    pub(super) async fn permits(&self, url: &Url) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let host_semaphore = self
            .hosts
            .lock()
            .expect("the host map is never poisoned")
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.poll.per_host)))
            .clone();
        let host_permit = host_semaphore
            .acquire_owned()
            .await
            .expect("host semaphores are never closed");
        let global_permit = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the global semaphore is never closed");
        (host_permit, global_permit)
    }

    /// `wait` after a successful poll, stretched while the source is subscribed to
    /// its hub: polling is then only the safety net of the pushes.
    pub(super) fn stretched(&self, source: &SourceConfig, wait: Duration) -> Duration {
        match &self.websub {
            Some(websub) if source.websub && websub.registry.is_active(&source.id) => {
                wait.saturating_mul(crate::websub::POLL_STRETCH)
            }
            _ => wait,
        }
    }

    pub(super) fn connectivity(&self) -> std::sync::MutexGuard<'_, Connectivity> {
        self.connectivity
            .lock()
            .expect("the connectivity tracker is never poisoned")
    }
}
