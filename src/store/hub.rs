//! The built-in WebSub hub's subscriptions, in their own side table (sled's
//! `hub_subscriptions` tree) so
//! they survive restarts: key = topic ++ 0 ++ callback (a subscription is the pair,
//! W3C WebSub §5.1), value = a [`HubSubscription`] in MessagePack. Written by the
//! `hub` room when a subscriber's intent is verified, removed on unsubscription,
//! lease expiry or a callback's 410.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SideTable, Store, StoreError};

/// One verified subscription to one of tributary's feeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubSubscription {
    /// The feed's URL, as the subscriber gave it.
    pub topic: String,
    /// Where its new versions are delivered.
    pub callback: String,
    /// `hub.secret`: the key of each delivery's `X-Hub-Signature`.
    pub secret: Option<String>,
    /// When the lease ends; the subscription is dropped then unless renewed.
    pub expires: DateTime<Utc>,
}

impl HubSubscription {
    fn key(topic: &str, callback: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(topic.len() + 1 + callback.len());
        key.extend_from_slice(topic.as_bytes());
        key.push(0);
        key.extend_from_slice(callback.as_bytes());
        key
    }
}

impl Store {
    /// Every stored subscription, in key order (by topic, then callback).
    pub fn hub_subscriptions(&self) -> Result<Vec<HubSubscription>, StoreError> {
        let entries = self.backend().side_entries(SideTable::HubSubscriptions)?;
        entries
            .iter()
            .map(|(_, value)| Ok(rmp_serde::from_slice(value)?))
            .collect()
    }

    /// Stores (or renews) `subscription`, durably: a subscriber told it is
    /// subscribed must stay so across a crash.
    pub fn put_hub_subscription(&self, subscription: &HubSubscription) -> Result<(), StoreError> {
        let value = rmp_serde::to_vec_named(subscription)?;
        let key = HubSubscription::key(&subscription.topic, &subscription.callback);
        self.backend()
            .put_side_entry(SideTable::HubSubscriptions, &key, &value)
    }

    /// Removes the subscription of `callback` to `topic`; whether there was one.
    pub fn remove_hub_subscription(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        let key = HubSubscription::key(topic, callback);
        self.backend()
            .remove_side_entry(SideTable::HubSubscriptions, &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_kept_renewed_and_removed_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let at = |secs| DateTime::from_timestamp(secs, 0).unwrap();
        let subscription = |topic: &str, callback: &str, expires| HubSubscription {
            topic: topic.into(),
            callback: callback.into(),
            secret: Some("s".into()),
            expires: at(expires),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(store.hub_subscriptions().unwrap().is_empty());
            store
                .put_hub_subscription(&subscription("t1", "c1", 10))
                .unwrap();
            store
                .put_hub_subscription(&subscription("t1", "c2", 10))
                .unwrap();
            store
                .put_hub_subscription(&subscription("t2", "c1", 10))
                .unwrap();
            // A renewal replaces the lease of the same pair.
            store
                .put_hub_subscription(&subscription("t1", "c1", 20))
                .unwrap();
            assert!(store.remove_hub_subscription("t1", "c2").unwrap());
            assert!(!store.remove_hub_subscription("t1", "c2").unwrap());
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.hub_subscriptions().unwrap(),
            vec![subscription("t1", "c1", 20), subscription("t2", "c1", 10)]
        );
    }
}
