//! The subscriptions, in memory and in the store (every change is written through,
//! so they survive a restart), and what happens to them: a hub's verification, a
//! failure, a lapse. Shared by the callback endpoint (on the HTTP threads) and the
//! subscriber task; also holds each subscription's rate limit and the push queue.

use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{PUSH_QUEUE, Pushed};
use crate::item::SourceId;
use crate::store::{Store, StoreError, Subscription, SubscriptionStatus};

/// 20 requests at once per subscription, then 5 a second: far above what a hub
/// sends for one feed, far below what would cost the daemon anything.
const BURST: f64 = 20.0;
const PER_SECOND: f64 = 5.0;
/// The first retry after a failure; it doubles with each failure in a row.
pub const RETRY_START: Duration = Duration::from_secs(60);
/// The longest wait between retries: a hub that recovers is back within hours.
pub const RETRY_MAX: Duration = Duration::from_secs(6 * 3600);

/// The subscriptions and the queue of pushed documents.
pub struct Registry {
    store: Store,
    inner: Mutex<Inner>,
    pushes: mpsc::Sender<Pushed>,
    poll_now: mpsc::UnboundedSender<SourceId>,
    /// The cap on a pushed body: `[poll] max_body_bytes`, as for a polled one.
    pub max_body_bytes: usize,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, Subscription>,
    /// Each source's subscription that is not being given up.
    current: HashMap<SourceId, String>,
    buckets: HashMap<String, Bucket>,
}

/// A token bucket: `tokens` left at `at`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What a verification request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// 200 with this body (the challenge).
    Echo(String),
    /// 404: no such subscription, or not in that mode or for that topic.
    Unknown,
}

/// The receiving ends a new [`Registry`] hands out: the pushed documents (for the
/// scheduler) and the sources to poll now (a subscription failed or lapsed).
pub type Receivers = (mpsc::Receiver<Pushed>, mpsc::UnboundedReceiver<SourceId>);

impl Registry {
    /// The registry of the subscriptions stored in `store`.
    pub fn open(
        store: Store,
        max_body_bytes: usize,
    ) -> Result<(Arc<Registry>, Receivers), StoreError> {
        let mut inner = Inner::default();
        for subscription in store.subscriptions()? {
            if subscription.status != SubscriptionStatus::Unsubscribing {
                inner
                    .current
                    .insert(subscription.source.clone(), subscription.token.clone());
            }
            inner
                .by_token
                .insert(subscription.token.clone(), subscription);
        }
        let (push_tx, push_rx) = mpsc::channel(PUSH_QUEUE);
        let (poll_tx, poll_rx) = mpsc::unbounded_channel();
        let registry = Registry {
            store,
            inner: Mutex::new(inner),
            pushes: push_tx,
            poll_now: poll_tx,
            max_body_bytes,
        };
        Ok((Arc::new(registry), (push_rx, poll_rx)))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the subscriptions are never poisoned")
    }

    /// Whether `source` has a verified subscription whose lease has not ended.
    pub fn is_active(&self, source: &SourceId) -> bool {
        let now = Utc::now().timestamp();
        let inner = self.inner();
        inner
            .current
            .get(source)
            .and_then(|token| inner.by_token.get(token))
            .is_some_and(|s| {
                s.status == SubscriptionStatus::Active && s.expires_at.is_some_and(|at| at > now)
            })
    }

    /// The subscription under `token`.
    pub fn get(&self, token: &str) -> Option<Subscription> {
        self.inner().by_token.get(token).cloned()
    }

    /// The subscription of `source` that is not being given up.
    pub fn current(&self, source: &SourceId) -> Option<Subscription> {
        let inner = self.inner();
        inner
            .current
            .get(source)
            .and_then(|token| inner.by_token.get(token))
            .cloned()
    }

    /// Every subscription.
    pub fn all(&self) -> Vec<Subscription> {
        self.inner().by_token.values().cloned().collect()
    }

    /// Records `subscription` (new or changed) and writes it to the store.
    pub fn save(&self, subscription: Subscription) {
        if let Err(err) = self.store.put_subscription(&subscription) {
            warn!(topic = %subscription.topic, error = %err, "cannot store a WebSub subscription");
        }
        let mut inner = self.inner();
        let source = subscription.source.clone();
        let token = subscription.token.clone();
        if subscription.status == SubscriptionStatus::Unsubscribing {
            if inner.current.get(&source) == Some(&token) {
                inner.current.remove(&source);
            }
        } else if let Some(former) = inner.current.insert(source, token.clone())
            && former != token
            && let Some(old) = inner.by_token.get(&former)
            && old.status != SubscriptionStatus::Unsubscribing
        {
            warn!(topic = %old.topic, "a source had two current subscriptions; the newer one is kept");
        }
        inner.by_token.insert(token, subscription);
    }

    /// Forgets the subscription under `token`, here and in the store.
    pub fn remove(&self, token: &str) {
        if let Err(err) = self.store.remove_subscription(token) {
            warn!(error = %err, "cannot remove a WebSub subscription from the store");
        }
        let mut inner = self.inner();
        if let Some(gone) = inner.by_token.remove(token)
            && inner.current.get(&gone.source).map(String::as_str) == Some(token)
        {
            inner.current.remove(&gone.source);
        }
        inner.buckets.remove(token);
    }

    /// A hub's verification of intent (§5.3): the challenge is echoed for a pending
    /// or active subscription of `topic` in mode `subscribe` (the lease it grants is
    /// recorded), for one being given up in mode `unsubscribe` (it is forgotten), and
    /// a `denied` subscription fails; anything else is unknown.
    pub fn verify(&self, token: &str, query: &VerifyQuery) -> Verified {
        let Some(mut subscription) = self.get(token) else {
            return Verified::Unknown;
        };
        if query.topic != subscription.topic {
            return Verified::Unknown;
        }
        let now = Utc::now().timestamp();
        match (query.mode.as_str(), subscription.status) {
            ("subscribe", SubscriptionStatus::Pending | SubscriptionStatus::Active) => {
                let Some(challenge) = &query.challenge else {
                    return Verified::Unknown;
                };
                let lease = query
                    .lease_seconds
                    .unwrap_or(super::subscriber::LEASE_SECONDS);
                let renewed = subscription.status == SubscriptionStatus::Active;
                subscription.status = SubscriptionStatus::Active;
                subscription.lease_seconds = Some(lease);
                subscription.expires_at = Some(now.saturating_add_unsigned(lease));
                subscription.failures = 0;
                subscription.retry_at = None;
                subscription.last_error = None;
                info!(topic = %subscription.topic, lease, renewed, "WebSub subscription verified by its hub");
                self.save(subscription);
                Verified::Echo(challenge.clone())
            }
            ("unsubscribe", SubscriptionStatus::Unsubscribing) => {
                let Some(challenge) = &query.challenge else {
                    return Verified::Unknown;
                };
                info!(topic = %subscription.topic, "WebSub unsubscription verified by its hub");
                self.remove(token);
                Verified::Echo(challenge.clone())
            }
            ("denied", SubscriptionStatus::Pending | SubscriptionStatus::Active) => {
                let reason = query.reason.clone().unwrap_or_default();
                self.fail(token, &format!("the hub denied the subscription: {reason}"));
                Verified::Echo(String::new())
            }
            _ => Verified::Unknown,
        }
    }

    /// A subscription failed (refused, denied, never verified, lapsed): it is
    /// retried with a backoff, and its source, if it was subscribed, is polled now
    /// and at its usual interval. A renewal that fails while the lease still runs
    /// keeps the subscription until the lease ends.
    pub fn fail(&self, token: &str, error: &str) {
        let Some(mut subscription) = self.get(token) else {
            return;
        };
        let now = Utc::now().timestamp();
        subscription.failures = subscription.failures.saturating_add(1);
        let wait = retry_wait(subscription.failures);
        subscription.retry_at = Some(now.saturating_add_unsigned(wait.as_secs()));
        subscription.last_error = Some(error.to_string());
        let was_active = subscription.status == SubscriptionStatus::Active;
        let lease_runs = subscription.expires_at.is_some_and(|at| at > now);
        if !(was_active && lease_runs) {
            subscription.status = SubscriptionStatus::Failed;
        }
        warn!(topic = %subscription.topic, hub = %subscription.hub, error, retry_in_s = wait.as_secs(), "WebSub subscription failed; polling is in charge");
        let source = subscription.source.clone();
        let lapsed = was_active && subscription.status == SubscriptionStatus::Failed;
        self.save(subscription);
        if lapsed {
            let _ = self.poll_now.send(source);
        }
    }

    /// Whether one more request to the callback of `token` is within its rate.
    pub fn allow(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.inner();
        let bucket = inner.buckets.entry(token.to_string()).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(BURST);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }

    /// Queues a pushed document for the scheduler; `false` when the queue is full.
    pub fn queue(&self, pushed: Pushed) -> bool {
        self.pushes.try_send(pushed).is_ok()
    }
}

/// The parameters of a hub's verification request.
#[derive(Debug, Default)]
pub struct VerifyQuery {
    pub mode: String,
    pub topic: String,
    pub challenge: Option<String>,
    pub lease_seconds: Option<u64>,
    pub reason: Option<String>,
}

impl VerifyQuery {
    /// Reads `hub.mode`, `hub.topic`, `hub.challenge`, `hub.lease_seconds` and
    /// `hub.reason` from a query string.
    pub fn parse(query: &str) -> VerifyQuery {
        let mut parsed = VerifyQuery::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "hub.mode" => parsed.mode = value.into_owned(),
                "hub.topic" => parsed.topic = value.into_owned(),
                "hub.challenge" => parsed.challenge = Some(value.into_owned()),
                "hub.lease_seconds" => parsed.lease_seconds = value.parse().ok(),
                "hub.reason" => parsed.reason = Some(value.into_owned()),
                _ => {}
            }
        }
        parsed
    }
}

/// The wait before the `failures`-th retry: [`RETRY_START`] doubling up to [`RETRY_MAX`].
pub fn retry_wait(failures: u32) -> Duration {
    RETRY_START
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(status: SubscriptionStatus) -> Subscription {
        Subscription {
            source: SourceId("https://a.example/feed".into()),
            topic: "https://a.example/feed".into(),
            hub: "https://hub.example/".into(),
            token: "0123456789abcdef0123456789abcdef".into(),
            secret: "s".repeat(64),
            status,
            requested_at: 0,
            expires_at: None,
            lease_seconds: None,
            failures: 0,
            retry_at: None,
            last_error: None,
        }
    }

    fn query(mode: &str, topic: &str) -> VerifyQuery {
        VerifyQuery::parse(&format!(
            "hub.mode={mode}&hub.topic={}&hub.challenge=c%20hallenge&hub.lease_seconds=300",
            url::form_urlencoded::byte_serialize(topic.as_bytes()).collect::<String>()
        ))
    }

    fn registry() -> (Arc<Registry>, Receivers, Store) {
        let store = Store::temporary().unwrap();
        let (registry, receivers) = Registry::open(store.clone(), 1024).unwrap();
        (registry, receivers, store)
    }

    #[test]
    fn a_pending_subscription_is_verified_with_its_lease_and_kept_in_the_store() {
        let (registry, _rx, store) = registry();
        let pending = subscription(SubscriptionStatus::Pending);
        let token = pending.token.clone();
        registry.save(pending.clone());
        assert!(!registry.is_active(&pending.source));
        let echoed = registry.verify(&token, &query("subscribe", &pending.topic));
        assert_eq!(echoed, Verified::Echo("c hallenge".into()));
        assert!(registry.is_active(&pending.source));
        let stored = store.subscriptions().unwrap().remove(0);
        assert_eq!(stored.status, SubscriptionStatus::Active);
        assert_eq!(stored.lease_seconds, Some(300));
        let left = stored.expires_at.unwrap() - Utc::now().timestamp();
        assert!((290..=300).contains(&left), "{left}");
        // A restart reads it back.
        let (reopened, _) = Registry::open(store, 1024).unwrap();
        assert!(reopened.is_active(&pending.source));
    }

    #[test]
    fn a_wrong_topic_mode_or_token_is_unknown() {
        let (registry, _rx, _store) = registry();
        let pending = subscription(SubscriptionStatus::Pending);
        registry.save(pending.clone());
        let unknown = |token: &str, q: VerifyQuery| registry.verify(token, &q);
        assert_eq!(
            unknown(
                &pending.token,
                query("subscribe", "https://a.example/other")
            ),
            Verified::Unknown
        );
        assert_eq!(
            unknown(&pending.token, query("unsubscribe", &pending.topic)),
            Verified::Unknown
        );
        assert_eq!(
            unknown(
                "ffffffffffffffffffffffffffffffff",
                query("subscribe", &pending.topic)
            ),
            Verified::Unknown
        );
        let mut no_challenge = query("subscribe", &pending.topic);
        no_challenge.challenge = None;
        assert_eq!(unknown(&pending.token, no_challenge), Verified::Unknown);
        assert!(!registry.is_active(&pending.source));
    }

    #[test]
    fn an_unsubscription_is_verified_once_and_forgotten() {
        let (registry, _rx, store) = registry();
        let leaving = subscription(SubscriptionStatus::Unsubscribing);
        registry.save(leaving.clone());
        assert_eq!(registry.current(&leaving.source), None);
        assert_eq!(
            registry.verify(&leaving.token, &query("subscribe", &leaving.topic)),
            Verified::Unknown
        );
        assert!(matches!(
            registry.verify(&leaving.token, &query("unsubscribe", &leaving.topic)),
            Verified::Echo(_)
        ));
        assert!(store.subscriptions().unwrap().is_empty());
        assert_eq!(
            registry.verify(&leaving.token, &query("unsubscribe", &leaving.topic)),
            Verified::Unknown
        );
    }

    #[test]
    fn a_lapse_fails_the_subscription_and_polls_its_source_now() {
        let (registry, (_pushes, mut poll_now), _store) = registry();
        let mut active = subscription(SubscriptionStatus::Active);
        active.expires_at = Some(Utc::now().timestamp() - 1);
        registry.save(active.clone());
        assert!(!registry.is_active(&active.source));
        registry.fail(&active.token, "the lease lapsed");
        let failed = registry.get(&active.token).unwrap();
        assert_eq!(failed.status, SubscriptionStatus::Failed);
        assert_eq!(failed.failures, 1);
        assert!(failed.retry_at.unwrap() >= Utc::now().timestamp() + 59);
        assert_eq!(poll_now.try_recv().unwrap(), active.source);
    }

    #[test]
    fn a_failed_renewal_keeps_a_running_lease() {
        let (registry, (_pushes, mut poll_now), _store) = registry();
        let mut active = subscription(SubscriptionStatus::Active);
        active.expires_at = Some(Utc::now().timestamp() + 100);
        registry.save(active.clone());
        registry.fail(&active.token, "hub down");
        assert!(registry.is_active(&active.source));
        assert!(poll_now.try_recv().is_err());
    }

    #[test]
    fn the_rate_is_bounded_per_subscription() {
        let (registry, _rx, _store) = registry();
        let started = Instant::now();
        let allowed = (0..100).filter(|_| registry.allow("a")).count();
        // The burst, and what refilled while the loop ran (on a loaded machine).
        let refilled = (started.elapsed().as_secs_f64() * PER_SECOND).ceil() as usize;
        assert!(
            (BURST as usize..=BURST as usize + refilled).contains(&allowed),
            "{allowed}"
        );
        assert!(registry.allow("b"));
    }

    #[test]
    fn retries_back_off() {
        assert_eq!(retry_wait(1), RETRY_START);
        assert_eq!(retry_wait(2), RETRY_START * 2);
        assert_eq!(retry_wait(40), RETRY_MAX);
    }
}
