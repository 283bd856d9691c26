//! The subscriber task: acts on the scheduler's adverts (a new hub or topic: the old
//! subscription is given up, a new one asked for), on reloads (a source removed, or
//! opted out with `websub = false`: unsubscribed), and on the clock (renew before
//! the lease ends, retry a failure, give up a verification that never came). Every
//! request to a hub is spawned, so one slow hub holds up nothing else, and goes
//! through `fetch` under the source's address policy.

use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};
use url::Url;

use super::signature::encode_hex;
use super::{Advert, CALLBACK_PREFIX, Registry};
use crate::config::{SharedSources, SourceConfig};
use crate::fetch::{Fetcher, RequestOptions};
use crate::item::SourceId;
use crate::store::{Subscription, SubscriptionStatus};

/// The lease asked for: 10 days, the Recommendation's example of a default. The hub
/// decides; the one it grants is recorded at verification.
pub const LEASE_SECONDS: u64 = 10 * 86_400;
/// How often the clock is looked at: renewals, retries and lapses are due to the second.
const TICK: Duration = Duration::from_secs(1);
/// 2 minutes for a hub to verify a request before it counts as failed.
const VERIFY_WAIT: i64 = 120;

/// What the subscriber works with.
pub struct Subscriber {
    pub registry: Arc<Registry>,
    pub fetcher: Fetcher,
    /// `[server] public_url`, ending in `/`: where hubs reach the callbacks.
    pub public_url: Url,
}

/// When a subscription granted `lease` seconds up to `expires_at` is renewed: a
/// tenth of the lease before it ends, but at least a minute, and at most half of it.
pub fn renew_at(expires_at: i64, lease: u64) -> i64 {
    let margin = (lease / 10).max(60).min(lease / 2);
    expires_at.saturating_sub_unsigned(margin)
}

impl Subscriber {
    /// Runs until `token` is cancelled: adverts from the scheduler, the sources of
    /// each reload, and the clock.
    pub async fn run(
        self,
        mut adverts: mpsc::Receiver<Advert>,
        mut sources: watch::Receiver<SharedSources>,
        token: CancellationToken,
    ) {
        let requests = TaskTracker::new();
        let this = Arc::new(self);
        let mut wanted = wanted(&sources.borrow_and_update());
        let mut known: HashMap<SourceId, RequestOptions> = HashMap::new();
        remember(&mut known, &sources.borrow());
        let mut adverts_open = true;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                advert = adverts.recv(), if adverts_open => match advert {
                    Some(advert) => {
                        if let Some(request) = wanted.get(&advert.source) {
                            this.advert(advert, request, &requests);
                        }
                    }
                    // The scheduler has stopped: no more adverts.
                    None => adverts_open = false,
                },
                changed = sources.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let list = sources.borrow_and_update().clone();
                    remember(&mut known, &list);
                    wanted = self::wanted(&list);
                }
                _ = tick.tick() => this.clock(&wanted, &known, &requests),
            }
        }
        requests.close();
        debug!("WebSub subscriber stopped");
    }

    /// A new body's hubs: subscribes when the source has none yet, or a different
    /// hub or topic (giving the former one up); a feed that dropped its hub is
    /// unsubscribed.
    fn advert(self: &Arc<Self>, advert: Advert, request: &RequestOptions, requests: &TaskTracker) {
        let current = self.registry.current(&advert.source);
        let Some(hub) = advert.hubs.hubs.first() else {
            if let Some(current) = current {
                info!(topic = %current.topic, "the feed names no hub any more: unsubscribing");
                self.unsubscribe(current, request.clone(), requests);
            }
            return;
        };
        let topic = advert.hubs.topic.unwrap_or(advert.fetched_from);
        if let Some(current) = current {
            if current.hub == hub.as_str() && current.topic == topic.as_str() {
                return;
            }
            info!(topic = %current.topic, hub = %current.hub, new_topic = %topic, new_hub = %hub, "the feed names another hub or topic: subscribing anew");
            self.unsubscribe(current, request.clone(), requests);
        }
        let subscription = Subscription {
            source: advert.source,
            topic: topic.to_string(),
            hub: hub.to_string(),
            token: random_hex(16),
            secret: random_hex(32),
            status: SubscriptionStatus::Pending,
            requested_at: Utc::now().timestamp(),
            expires_at: None,
            lease_seconds: None,
            failures: 0,
            retry_at: None,
            last_error: None,
        };
        info!(topic = %subscription.topic, hub = %subscription.hub, "subscribing to the feed's hub");
        self.subscribe(subscription, request.clone(), requests);
    }

    /// What the clock says of each subscription ([`due`]).
    fn clock(
        self: &Arc<Self>,
        wanted: &HashMap<SourceId, RequestOptions>,
        known: &HashMap<SourceId, RequestOptions>,
        requests: &TaskTracker,
    ) {
        let now = Utc::now().timestamp();
        for subscription in self.registry.all() {
            let request = wanted.get(&subscription.source);
            match due(&subscription, request.is_some(), now) {
                Due::Nothing => {}
                Due::Forget => self.registry.remove(&subscription.token),
                Due::Unsubscribe => {
                    let request = known.get(&subscription.source).cloned().unwrap_or_default();
                    info!(topic = %subscription.topic, "the source is gone or opted out: unsubscribing");
                    self.unsubscribe(subscription, request, requests);
                }
                Due::Unverified => self.registry.fail(
                    &subscription.token,
                    "the hub did not verify the subscription",
                ),
                Due::Lapsed => self
                    .registry
                    .fail(&subscription.token, "the lease ended before it was renewed"),
                Due::Subscribe => {
                    let request = request.cloned().unwrap_or_default();
                    let mut asked = subscription;
                    if asked.status == SubscriptionStatus::Active {
                        info!(topic = %asked.topic, "renewing the WebSub subscription");
                    } else {
                        asked.status = SubscriptionStatus::Pending;
                    }
                    self.subscribe(asked, request, requests);
                }
            }
        }
    }

    /// Records the request and sends `hub.mode=subscribe` (also a renewal).
    fn subscribe(
        self: &Arc<Self>,
        mut subscription: Subscription,
        request: RequestOptions,
        requests: &TaskTracker,
    ) {
        subscription.requested_at = Utc::now().timestamp();
        subscription.retry_at = None;
        // Saved first: an eager hub verifies before it answers the request.
        self.registry.save(subscription.clone());
        let this = self.clone();
        requests.spawn(async move {
            let lease = LEASE_SECONDS.to_string();
            let callback = this.callback(&subscription.token);
            let form = [
                ("hub.mode", "subscribe"),
                ("hub.topic", subscription.topic.as_str()),
                ("hub.callback", callback.as_str()),
                ("hub.lease_seconds", lease.as_str()),
                ("hub.secret", subscription.secret.as_str()),
            ];
            if let Err(error) = this.send(&subscription.hub, &form, &request).await {
                this.registry.fail(&subscription.token, &error);
            }
        });
    }

    /// Marks the subscription as being given up and sends `hub.mode=unsubscribe`;
    /// a hub that cannot be told lets the lease run out, and the record goes.
    fn unsubscribe(
        self: &Arc<Self>,
        mut subscription: Subscription,
        request: RequestOptions,
        requests: &TaskTracker,
    ) {
        subscription.status = SubscriptionStatus::Unsubscribing;
        subscription.requested_at = Utc::now().timestamp();
        self.registry.save(subscription.clone());
        let this = self.clone();
        requests.spawn(async move {
            let callback = this.callback(&subscription.token);
            let form = [
                ("hub.mode", "unsubscribe"),
                ("hub.topic", subscription.topic.as_str()),
                ("hub.callback", callback.as_str()),
            ];
            if let Err(error) = this.send(&subscription.hub, &form, &request).await {
                info!(topic = %subscription.topic, error, "the hub was not told of the unsubscription; its lease will run out");
                this.registry.remove(&subscription.token);
            }
        });
    }

    /// One request to a hub; `Err` with the reason unless it answered 2xx.
    async fn send(
        &self,
        hub: &str,
        form: &[(&str, &str)],
        request: &RequestOptions,
    ) -> Result<(), String> {
        let hub = Url::parse(hub).map_err(|err| format!("the hub's URL is invalid: {err}"))?;
        match self.fetcher.post_form(&hub, form, request).await {
            Ok((status, _)) if status.is_success() => Ok(()),
            Ok((status, answer)) => Err(format!("the hub answered {status}: {answer}")),
            Err(err) => Err(format!("the hub cannot be reached: {err}")),
        }
    }

    fn callback(&self, token: &str) -> String {
        let path = format!("{}{token}", CALLBACK_PREFIX.trim_start_matches('/'));
        self.public_url
            .join(&path)
            .map(String::from)
            .unwrap_or_else(|_| format!("{}{path}", self.public_url))
    }
}

/// What is due for a subscription at `now`, its source `wanted` or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    /// Given up and never confirmed by the hub: dropped.
    Forget,
    /// Its source is gone or opted out.
    Unsubscribe,
    /// Asked for too long ago without a verification.
    Unverified,
    /// The lease ended.
    Lapsed,
    /// Renew (once per lease, again after a failed renewal's backoff), or retry
    /// after a failure's backoff.
    Subscribe,
}

/// Pure: what the clock does with `subscription` at `now`.
fn due(subscription: &Subscription, wanted: bool, now: i64) -> Due {
    let waited_too_long = now - subscription.requested_at > VERIFY_WAIT;
    let retry_due = subscription.retry_at.is_some_and(|at| at <= now);
    match subscription.status {
        SubscriptionStatus::Unsubscribing if waited_too_long => Due::Forget,
        SubscriptionStatus::Unsubscribing => Due::Nothing,
        _ if !wanted => Due::Unsubscribe,
        SubscriptionStatus::Pending if waited_too_long => Due::Unverified,
        SubscriptionStatus::Pending => Due::Nothing,
        SubscriptionStatus::Active => {
            let expires_at = subscription.expires_at.unwrap_or(now);
            let lease = subscription.lease_seconds.unwrap_or(LEASE_SECONDS);
            let renew_point = renew_at(expires_at, lease);
            let unasked = subscription.requested_at < renew_point;
            if expires_at <= now {
                Due::Lapsed
            } else if now >= renew_point && (unasked || retry_due) {
                Due::Subscribe
            } else {
                Due::Nothing
            }
        }
        SubscriptionStatus::Failed if subscription.retry_at.is_none() || retry_due => {
            Due::Subscribe
        }
        SubscriptionStatus::Failed => Due::Nothing,
    }
}

/// The sources that may subscribe, with their request options.
fn wanted(sources: &[Arc<SourceConfig>]) -> HashMap<SourceId, RequestOptions> {
    sources
        .iter()
        .filter(|s| s.websub)
        .map(|s| (s.id.clone(), s.request.clone()))
        .collect()
}

/// Keeps the request options of every source seen, for unsubscribing removed ones.
fn remember(known: &mut HashMap<SourceId, RequestOptions>, sources: &[Arc<SourceConfig>]) {
    for source in sources {
        known.insert(source.id.clone(), source.request.clone());
    }
}

/// `bytes` random bytes as hex, from the system's generator.
fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buffer = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buffer)
        .expect("the system's random generator works");
    encode_hex(&buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_comes_a_tenth_of_the_lease_early_within_bounds() {
        assert_eq!(renew_at(1_000_000, 10 * 86_400), 1_000_000 - 86_400);
        assert_eq!(renew_at(1000, 300), 1000 - 60);
        assert_eq!(renew_at(1000, 4), 998);
    }

    fn at(status: SubscriptionStatus, requested_at: i64) -> Subscription {
        Subscription {
            source: SourceId("https://a.example/feed".into()),
            topic: "https://a.example/feed".into(),
            hub: "https://hub.example/".into(),
            token: random_hex(16),
            secret: random_hex(32),
            status,
            requested_at,
            expires_at: None,
            lease_seconds: None,
            failures: 0,
            retry_at: None,
            last_error: None,
        }
    }

    #[test]
    fn an_active_subscription_is_renewed_once_per_lease_and_after_a_failed_renewal() {
        let mut active = at(SubscriptionStatus::Active, 1000);
        active.expires_at = Some(1000 + 600);
        active.lease_seconds = Some(600);
        // Renewed from 60 s before the end.
        assert_eq!(due(&active, true, 1539), Due::Nothing);
        assert_eq!(due(&active, true, 1540), Due::Subscribe);
        // Asked at 1540: not again...
        active.requested_at = 1540;
        assert_eq!(due(&active, true, 1560), Due::Nothing);
        // ...unless that renewal failed and its backoff is over.
        active.retry_at = Some(1570);
        assert_eq!(due(&active, true, 1569), Due::Nothing);
        assert_eq!(due(&active, true, 1570), Due::Subscribe);
        assert_eq!(due(&active, true, 1600), Due::Lapsed);
        assert_eq!(due(&active, false, 1540), Due::Unsubscribe);
    }

    #[test]
    fn pending_failed_and_leaving_subscriptions_wait_their_turn() {
        let pending = at(SubscriptionStatus::Pending, 1000);
        assert_eq!(due(&pending, true, 1000 + VERIFY_WAIT), Due::Nothing);
        assert_eq!(due(&pending, true, 1001 + VERIFY_WAIT), Due::Unverified);
        let mut failed = at(SubscriptionStatus::Failed, 1000);
        failed.retry_at = Some(1060);
        assert_eq!(due(&failed, true, 1059), Due::Nothing);
        assert_eq!(due(&failed, true, 1060), Due::Subscribe);
        assert_eq!(due(&failed, false, 1059), Due::Unsubscribe);
        let leaving = at(SubscriptionStatus::Unsubscribing, 1000);
        assert_eq!(due(&leaving, false, 1001), Due::Nothing);
        assert_eq!(due(&leaving, true, 1001 + VERIFY_WAIT), Due::Forget);
    }

    #[test]
    fn tokens_and_secrets_are_random_hex() {
        let (a, b) = (random_hex(16), random_hex(16));
        assert_eq!(a.len(), 32);
        assert!(super::super::callback::is_token(&a));
        assert_ne!(a, b);
        assert_eq!(random_hex(32).len(), 64);
    }
}
