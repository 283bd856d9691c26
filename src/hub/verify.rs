//! Accepting a subscription request and verifying its intent (W3C WebSub §5.2,
//! §5.3): the topic must be one of our feeds, the callback reachable under the
//! address policy; then a GET to the callback with `hub.mode`, `hub.topic`,
//! `hub.challenge` (and `hub.lease_seconds`) must answer 2xx with the challenge
//! as its whole body. Only then is the subscription stored (or removed).

use chrono::Utc;
use reqwest::Method;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{info, warn};

use super::request::{Mode, SubscriptionRequest};
use super::{Hub, Live, topics};
use crate::fetch::push::Push;
use crate::publish::ViewError;
use crate::store::HubSubscription;

impl Hub {
    /// Checks what can be checked now and starts the verification; the refusal's
    /// status and reason otherwise.
    pub(super) async fn accept(
        self: &Arc<Self>,
        request: SubscriptionRequest,
    ) -> Result<&'static str, (u16, String)> {
        let snapshot = self.snapshot.borrow().clone();
        let topic = topics::resolve(snapshot.site(), &request.topic_url).map_err(|r| (400, r))?;
        match snapshot.get(&topic.view, topic.authority.as_deref()).await {
            Ok(_) => {}
            Err(err @ (ViewError::UnknownTag(_) | ViewError::UnknownSource(_))) => {
                return Err((400, format!("hub.topic `{}`: {err}", request.topic)));
            }
            Err(err) => return Err((503, format!("cannot read the topic now: {err}"))),
        }
        self.policy(&request.callback_url)
            .check_url(&request.callback_url, false)
            .map_err(|refused| (400, format!("hub.callback: {refused}")))?;
        if request.mode == Mode::Subscribe && self.is_full(&request) {
            return Err((
                503,
                format!(
                    "the hub holds its most subscriptions ({})",
                    self.max_subscriptions
                ),
            ));
        }
        let permit = self
            .verifications
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                (
                    503,
                    "too many subscription requests are being verified; try again later"
                        .to_string(),
                )
            })?;
        let mode = request.mode.as_str();
        self.tracker.spawn(self.clone().verify(request, permit));
        Ok(mode)
    }

    /// Whether a new subscription (not a renewal) would pass the limit.
    fn is_full(&self, request: &SubscriptionRequest) -> bool {
        let live = self.lock();
        live.len() >= self.max_subscriptions
            && !live.contains_key(&(request.topic.clone(), request.callback.clone()))
    }

    /// Verifies the subscriber's intent, then applies the request.
    async fn verify(self: Arc<Self>, request: SubscriptionRequest, _permit: OwnedSemaphorePermit) {
        let challenge = challenge();
        let mut url = request.callback_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("hub.mode", request.mode.as_str())
                .append_pair("hub.topic", &request.topic)
                .append_pair("hub.challenge", &challenge);
            if request.mode == Mode::Subscribe {
                query.append_pair("hub.lease_seconds", &request.lease.as_secs().to_string());
            }
        }
        let push = Push {
            method: Method::GET,
            url: &url,
            headers: HeaderMap::new(),
            body: bytes::Bytes::new(),
            policy: self.policy(&request.callback_url),
        };
        // Not cut short at shutdown (the daemon waits for its tasks): a subscriber
        // that confirmed must find itself subscribed after a restart.
        let verified = self.fetcher.push(push).await;
        let confirmed = match &verified {
            Ok(answer) => answer.status.is_success() && answer.body == challenge.as_bytes(),
            Err(_) => false,
        };
        if !confirmed {
            let why = match verified {
                Ok(answer) => format!("answered {} without the challenge", answer.status),
                Err(err) => err.to_string(),
            };
            info!(topic = %request.topic, callback = %request.callback, mode = request.mode.as_str(), why, "websub: intent not verified");
            return;
        }
        let applied = match request.mode {
            Mode::Subscribe => self.subscribe(&request).await,
            Mode::Unsubscribe => self.remove(&request.topic, &request.callback).await,
        };
        match applied {
            Ok(()) => {
                info!(topic = %request.topic, callback = %request.callback, mode = request.mode.as_str(), lease_s = request.lease.as_secs(), "websub: verified")
            }
            Err(err) => {
                warn!(topic = %request.topic, error = %err, "websub: cannot store the subscription");
                if request.mode == Mode::Subscribe {
                    self.deny(&request, &err).await;
                }
            }
        }
    }

    /// Stores a verified subscription (a renewal replaces the lease) and makes its
    /// topic's current version the one already distributed.
    async fn subscribe(&self, request: &SubscriptionRequest) -> Result<(), String> {
        if self.is_full(request) {
            return Err(format!(
                "the hub holds its most subscriptions ({})",
                self.max_subscriptions
            ));
        }
        let subscription = HubSubscription {
            topic: request.topic.clone(),
            callback: request.callback.clone(),
            secret: request.secret.clone(),
            expires: Utc::now()
                + chrono::Duration::from_std(request.lease).expect("a lease of at most 30 days"),
        };
        let store = self.store.clone();
        let stored = subscription.clone();
        tokio::task::spawn_blocking(move || store.put_hub_subscription(&stored))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let snapshot = self.snapshot.borrow().clone();
        self.baseline(&snapshot, &subscription.topic).await;
        let key = (subscription.topic.clone(), subscription.callback.clone());
        let mut live = self.lock();
        let generation = live.get(&key).map_or(0, |l| l.generation);
        live.insert(
            key,
            Live {
                subscription,
                generation,
            },
        );
        Ok(())
    }

    /// Tells the subscriber that its verified subscription could not be kept
    /// (WebSub §5.2: `hub.mode=denied` with `hub.topic` and `hub.reason`); the
    /// answer does not matter.
    async fn deny(&self, request: &SubscriptionRequest, reason: &str) {
        let mut url = request.callback_url.clone();
        url.query_pairs_mut()
            .append_pair("hub.mode", "denied")
            .append_pair("hub.topic", &request.topic)
            .append_pair("hub.reason", reason);
        let push = Push {
            method: Method::GET,
            url: &url,
            headers: HeaderMap::new(),
            body: bytes::Bytes::new(),
            policy: self.policy(&request.callback_url),
        };
        let _ = self.fetcher.push(push).await;
    }

    /// Removes a subscription from memory and from the store. The last one of a
    /// topic takes its distributed version along: a new subscriber starts from
    /// the version current when it subscribes.
    pub(super) async fn remove(&self, topic: &str, callback: &str) -> Result<(), String> {
        {
            let mut live = self.lock();
            live.remove(&(topic.to_string(), callback.to_string()));
            let others = live
                .range((topic.to_string(), String::new())..)
                .next()
                .is_some_and(|((t, _), _)| t == topic);
            if !others {
                self.distributed
                    .lock()
                    .expect("the distributed map is never poisoned")
                    .remove(topic);
            }
        }
        let store = self.store.clone();
        let (topic, callback) = (topic.to_string(), callback.to_string());
        tokio::task::spawn_blocking(move || store.remove_hub_subscription(&topic, &callback))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// 32 random hex digits from the system's secure generator: a callback cannot
/// echo what it cannot guess.
fn challenge() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random generator works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
