//! Content distribution (W3C WebSub §7): after each new snapshot, every subscribed
//! topic whose bytes changed is POSTed to its subscribers, as readers would fetch
//! it (its Content-Type, and the Link header naming the hub and the topic), signed
//! with `X-Hub-Signature: sha256=<HMAC of the body>` when the subscriber gave a
//! secret (§7.1). A failed delivery is retried with backoff until a newer version
//! replaces it; a 410 ends the subscription. Leases are swept every
//! [`EXPIRY_SWEEP`], and never delivered past.

use chrono::Utc;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LINK};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{DELIVERY_ATTEMPTS, EXPIRY_SWEEP, Hub, Live, RETRY_BASE, topics};
use crate::fetch::push::Push;
use crate::publish::{Representation, Snapshot};
use crate::store::HubSubscription;

impl Hub {
    /// Loads the stored subscriptions, then distributes every snapshot after
    /// `first` and sweeps expired leases until the token is cancelled.
    pub(super) async fn distribute(
        self: Arc<Self>,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
        first: Arc<Snapshot>,
    ) {
        self.load(&first).await;
        let mut sweep = tokio::time::interval(EXPIRY_SWEEP);
        loop {
            tokio::select! {
                _ = self.token.cancelled() => break,
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    self.changed(&snapshot).await;
                }
                _ = sweep.tick() => self.expire().await,
            }
        }
    }

    /// The subscriptions the store kept, their topics' current versions taken as
    /// distributed (what changed while tributary was down was never rendered).
    async fn load(&self, snapshot: &Arc<Snapshot>) {
        let store = self.store.clone();
        let stored = match tokio::task::spawn_blocking(move || store.hub_subscriptions()).await {
            Ok(Ok(stored)) => stored,
            Ok(Err(err)) => {
                return warn!(error = %err, "websub: cannot read the hub's subscriptions");
            }
            Err(err) => {
                return warn!(error = %err, "websub: reading the hub's subscriptions panicked");
            }
        };
        let count = stored.len();
        let topics: BTreeSet<String> = stored.iter().map(|s| s.topic.clone()).collect();
        {
            let mut live = self.lock();
            for subscription in stored {
                let key = (subscription.topic.clone(), subscription.callback.clone());
                live.insert(
                    key,
                    Live {
                        subscription,
                        generation: 0,
                    },
                );
            }
        }
        for topic in &topics {
            self.baseline(snapshot, topic).await;
        }
        if count > 0 {
            info!(
                subscriptions = count,
                "websub: the built-in hub's subscriptions are back"
            );
        }
        self.expire().await;
    }

    /// The current version of `topic`, rendered as readers get it.
    async fn current(&self, snapshot: &Snapshot, topic: &str) -> Option<Arc<Representation>> {
        let url = url::Url::parse(topic).ok()?;
        let topic = topics::resolve(snapshot.site(), &url).ok()?;
        snapshot
            .get(&topic.view, topic.authority.as_deref())
            .await
            .ok()
    }

    /// Takes `topic`'s current version as distributed, unless one is known.
    pub(super) async fn baseline(&self, snapshot: &Snapshot, topic: &str) {
        if let Some(current) = self.current(snapshot, topic).await {
            self.distributed
                .lock()
                .expect("the distributed map is never poisoned")
                .entry(topic.to_string())
                .or_insert_with(|| current.hash.clone());
        }
    }

    /// Delivers the topics whose bytes changed in `snapshot`.
    async fn changed(self: &Arc<Self>, snapshot: &Arc<Snapshot>) {
        if !snapshot.site().builtin_hub {
            return;
        }
        let topics: BTreeSet<String> = self.lock().keys().map(|(t, _)| t.clone()).collect();
        for topic in topics {
            let Some(current) = self.current(snapshot, &topic).await else {
                continue;
            };
            let new = {
                let mut distributed = self
                    .distributed
                    .lock()
                    .expect("the distributed map is never poisoned");
                let old = distributed.insert(topic.clone(), current.hash.clone());
                old.is_some_and(|old| old != current.hash)
            };
            if !new {
                continue;
            }
            let now = Utc::now();
            let due: Vec<(HubSubscription, u64)> = self
                .lock()
                .range((topic.clone(), String::new())..)
                .take_while(|((t, _), _)| *t == topic)
                .filter(|(_, live)| live.subscription.expires > now)
                .map(|(_, live)| (live.subscription.clone(), live.generation + 1))
                .collect();
            debug!(
                topic,
                subscribers = due.len(),
                "websub: distributing a new version"
            );
            for (subscription, generation) in due {
                if let Some(live) = self
                    .lock()
                    .get_mut(&(topic.clone(), subscription.callback.clone()))
                {
                    live.generation = generation;
                }
                self.tracker.spawn(
                    self.clone()
                        .deliver(subscription, current.clone(), generation),
                );
            }
        }
    }

    /// Whether `generation` is still the version `subscription` is due, within its
    /// lease.
    fn is_due(&self, subscription: &HubSubscription, generation: u64) -> bool {
        let key = (subscription.topic.clone(), subscription.callback.clone());
        self.lock().get(&key).is_some_and(|live| {
            live.generation == generation && live.subscription.expires > Utc::now()
        })
    }

    /// POSTs `document` to the subscriber, retrying with backoff while it is the
    /// version due.
    async fn deliver(
        self: Arc<Self>,
        subscription: HubSubscription,
        document: Arc<Representation>,
        generation: u64,
    ) {
        let Ok(callback) = url::Url::parse(&subscription.callback) else {
            return;
        };
        let body = document.identity.body.clone();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, document.content_type.clone());
        if let Some(links) = &document.links {
            headers.insert(LINK, links.clone());
        }
        if let Some(secret) = &subscription.secret {
            headers.insert(
                HeaderName::from_static("x-hub-signature"),
                signature(secret, &body),
            );
        }
        for attempt in 0..DELIVERY_ATTEMPTS {
            if !self.is_due(&subscription, generation) {
                return;
            }
            let answer = {
                let _permit = tokio::select! {
                    _ = self.token.cancelled() => return,
                    permit = self.deliveries.acquire() => permit.expect("the delivery semaphore is never closed"),
                };
                let push = Push {
                    method: Method::POST,
                    url: &callback,
                    headers: headers.clone(),
                    body: body.clone(),
                    policy: self.policy(&callback),
                };
                tokio::select! {
                    _ = self.token.cancelled() => return,
                    answer = self.fetcher.push(push) => answer,
                }
            };
            let why = match answer {
                Ok(answer) if answer.status.is_success() => {
                    return debug!(topic = %subscription.topic, callback = %subscription.callback, "websub: delivered");
                }
                Ok(answer) if answer.status == reqwest::StatusCode::GONE => {
                    info!(topic = %subscription.topic, callback = %subscription.callback, "websub: the callback is gone (410); unsubscribed");
                    if let Err(err) = self
                        .remove(&subscription.topic, &subscription.callback)
                        .await
                    {
                        warn!(error = %err, "websub: cannot remove the subscription");
                    }
                    return;
                }
                Ok(answer) => format!("answered {}", answer.status),
                Err(err) => err.to_string(),
            };
            if attempt + 1 == DELIVERY_ATTEMPTS {
                return warn!(topic = %subscription.topic, callback = %subscription.callback, why, attempts = DELIVERY_ATTEMPTS, "websub: delivery given up");
            }
            debug!(topic = %subscription.topic, callback = %subscription.callback, why, attempt, "websub: delivery failed; retrying");
            let delay = RETRY_BASE.mul_f64(2f64.powi(attempt as i32) * (0.5 + fastrand::f64()));
            tokio::select! {
                _ = self.token.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Drops the subscriptions whose lease has ended, from memory and the store.
    async fn expire(&self) {
        let now = Utc::now();
        let expired: Vec<(String, String)> = self
            .lock()
            .iter()
            .filter(|(_, live)| live.subscription.expires <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for (topic, callback) in expired {
            info!(topic, callback, "websub: lease ended");
            if let Err(err) = self.remove(&topic, &callback).await {
                warn!(error = %err, "websub: cannot remove an expired subscription");
            }
        }
    }
}

/// `X-Hub-Signature`: `sha256=` and the hex HMAC-SHA256 of `body` keyed by `secret`.
pub fn signature(secret: &str, body: &[u8]) -> HeaderValue {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("sha256={hex}")).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
