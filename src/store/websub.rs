//! WebSub subscriptions to the sources' hubs, in the `websub` side table: callback token ->
//! [`Subscription`] in MessagePack. A handful of records (one or two per subscribed
//! source), read whole at start-up by `websub`, written on every change of state so
//! that subscriptions, secrets and leases survive a restart.

use serde::{Deserialize, Serialize};

use super::{SideTable, Store, StoreError};
use crate::item::SourceId;

/// Where a subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionStatus {
    /// Asked for; the hub has not verified it yet.
    Pending,
    /// Verified by the hub, until `expires_at`.
    Active,
    /// Given up (source removed, topic changed); waiting for the hub's verification.
    Unsubscribing,
    /// Refused, denied, unverified or lapsed: retried at `retry_at`, polling in charge.
    Failed,
}

/// One subscription to a hub, under its callback token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub source: SourceId,
    /// The topic (the feed's `rel="self"`).
    pub topic: String,
    pub hub: String,
    /// The callback's last path segment: 32 hex digits, random.
    pub token: String,
    /// `hub.secret`: the key of the HMAC over every pushed body. Random, never shown.
    pub secret: String,
    pub status: SubscriptionStatus,
    /// Unix seconds: when the last request went to the hub.
    pub requested_at: i64,
    /// Unix seconds: when the lease the hub granted ends.
    pub expires_at: Option<i64>,
    /// The lease the hub granted, in seconds.
    pub lease_seconds: Option<u64>,
    /// Failures in a row (refused, unverified, lapsed): the retry backs off with them.
    pub failures: u32,
    /// Unix seconds: the next subscription request is not sent before.
    pub retry_at: Option<i64>,
    pub last_error: Option<String>,
}

impl Store {
    /// Every stored subscription.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let entries = self.backend().side_entries(SideTable::Websub)?;
        entries
            .iter()
            .map(|(_, value)| Ok(rmp_serde::from_slice(value)?))
            .collect()
    }

    /// Saves a subscription under its token, durably.
    pub fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let value = rmp_serde::to_vec_named(subscription)?;
        self.backend()
            .put_side_entry(SideTable::Websub, subscription.token.as_bytes(), &value)
    }

    /// Forgets the subscription under `token`.
    pub fn remove_subscription(&self, token: &str) -> Result<(), StoreError> {
        self.backend()
            .remove_side_entry(SideTable::Websub, token.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(token: &str) -> Subscription {
        Subscription {
            source: SourceId("https://a.example/feed".into()),
            topic: "https://a.example/feed".into(),
            hub: "https://hub.example/".into(),
            token: token.into(),
            secret: "s".repeat(64),
            status: SubscriptionStatus::Pending,
            requested_at: 1,
            expires_at: None,
            lease_seconds: None,
            failures: 0,
            retry_at: None,
            last_error: None,
        }
    }

    #[test]
    fn subscriptions_are_saved_listed_and_removed_by_token() {
        let store = Store::temporary().unwrap();
        let mut one = subscription("a");
        store.put_subscription(&one).unwrap();
        store.put_subscription(&subscription("b")).unwrap();
        one.status = SubscriptionStatus::Active;
        one.expires_at = Some(99);
        store.put_subscription(&one).unwrap();
        let all = store.subscriptions().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], one);
        store.remove_subscription("b").unwrap();
        assert_eq!(store.subscriptions().unwrap(), vec![one]);
    }
}
