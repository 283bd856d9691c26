//! WebSub, publishing side (W3C WebSub Recommendation): tributary's feeds reach
//! readers the moment the river changes instead of at their next poll.
//!
//! Two parts, both driven by the snapshots `publish` renders after each change:
//! - `notify`: the external hubs of `[publish] hubs` are told (`hub.mode=publish`)
//!   which of the river's feeds changed, debounced, so they fetch and fan out.
//! - The built-in hub (`[publish] hub = "builtin"`, at `/hub`): subscribers POST
//!   `hub.mode=subscribe` or `unsubscribe` for one of our feeds (`topics`); the request
//!   is checked (`request`) and answered 202, and its intent verified with a GET to
//!   the callback that must echo a challenge (`verify`). Verified subscriptions are
//!   kept in the store, so they survive restarts, until their lease ends. Each new
//!   version of a subscribed feed is delivered (`deliver`): the feed's body, its
//!   Content-Type and Link headers, signed with `X-Hub-Signature: sha256=…` when the
//!   subscriber gave a secret, retried with backoff, at most
//!   [`MAX_DELIVERIES_IN_FLIGHT`] at once.
//!
//! Every outbound request goes through `fetch` (its clients, timeouts and address
//! guard): callbacks may reach public addresses only, unless `[publish]
//! hub_allow_private` says otherwise; hubs configured by the operator follow the
//! rule of sources (an IP-literal URL may reach its own class).
//!
//! `daemon` starts [`Hub::start`]; `http` hands `/hub` requests to [`Hub::answer`].

mod deliver;
mod notify;
pub mod request;
pub mod topics;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::push::PushConfig;
use crate::fetch::{AddressPolicy, Fetcher};
use crate::publish::Snapshot;
use crate::store::{HubSubscription, Store};

/// The built-in hub's path (`[publish] hub = "builtin"`).
pub const PATH: &str = "/hub";
/// 10 days: the lease a subscriber gets when it asks for none (WebSub §5.1 leaves
/// it to the hub; 10 days is the common choice).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10 * 86_400);
/// 30 days: the longest lease granted; a subscriber renews before it ends.
pub const MAX_LEASE: Duration = Duration::from_secs(30 * 86_400);
/// 200 bytes: a `hub.secret` must be shorter (WebSub §5.1).
pub const MAX_SECRET_BYTES: usize = 200;
/// 2 KiB of callback URL: as long as any URL tributary serves.
pub const MAX_CALLBACK_BYTES: usize = 2048;
/// 8 KiB of request body: a topic, a callback, a secret and a lease fit with room.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// 32 verifications waiting or running: past that, new requests get 503, so a
/// flood of subscriptions cannot make tributary a flood of requests.
pub const MAX_PENDING_VERIFICATIONS: usize = 32;
/// 32 deliveries in flight: enough for thousands of subscribers on loopback or a
/// LAN in well under a second; slow callbacks wait their turn.
pub const MAX_DELIVERIES_IN_FLIGHT: usize = 32;
/// 8 attempts per delivery, 1 s after the first failure and doubling (with jitter):
/// about 2 minutes in all, then that version is given up; the next change is
/// delivered afresh.
pub const DELIVERY_ATTEMPTS: u32 = 8;
/// The first retry's delay.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// 5 seconds between sweeps of expired leases; a delivery checks the lease itself.
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(5);
/// 1 second: external hubs are told of changes at most this often.
pub const NOTIFY_DEBOUNCE: Duration = Duration::from_secs(1);

/// The built-in hub: its subscriptions, and what it needs to verify and deliver.
/// Cheap to share (`Arc`); its tasks run until the daemon's token is cancelled.
pub struct Hub {
    store: Store,
    fetcher: Fetcher,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    max_subscriptions: usize,
    /// `hub_allow_private`: callbacks may reach any address.
    allow_private: bool,
    /// The live subscriptions, by (topic, callback).
    subscriptions: Mutex<BTreeMap<(String, String), Live>>,
    /// The content hash last distributed per topic: a new snapshot is delivered
    /// only for the topics whose bytes changed.
    distributed: Mutex<HashMap<String, String>>,
    verifications: Arc<Semaphore>,
    deliveries: Arc<Semaphore>,
    tracker: TaskTracker,
    token: CancellationToken,
}

/// A live subscription, and which version of its topic it is due.
struct Live {
    subscription: HubSubscription,
    /// Bumped at each new version queued for it: a retry of an older version
    /// stops, since the subscriber wants the newest.
    generation: u64,
}

/// The answer to a `/hub` request: a status and a one-line reason.
#[derive(Debug, PartialEq, Eq)]
pub struct HubAnswer {
    pub status: u16,
    pub text: String,
}

impl Hub {
    /// Starts the hub's tasks on `tracker`: the notifier of `push.hubs` and the
    /// built-in hub's distribution (which loads the stored subscriptions first).
    /// The built-in hub answers on [`PATH`] while the current site says `hub =
    /// "builtin"`; `hub_max_subscriptions` and `hub_allow_private` are read once.
    pub fn start(
        push: &PushConfig,
        store: Store,
        fetcher: Fetcher,
        snapshot: watch::Receiver<Arc<Snapshot>>,
        tracker: TaskTracker,
        token: CancellationToken,
    ) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            store,
            fetcher: fetcher.clone(),
            snapshot: snapshot.clone(),
            max_subscriptions: push.max_subscriptions,
            allow_private: push.allow_private,
            subscriptions: Mutex::default(),
            distributed: Mutex::default(),
            verifications: Arc::new(Semaphore::new(MAX_PENDING_VERIFICATIONS)),
            deliveries: Arc::new(Semaphore::new(MAX_DELIVERIES_IN_FLIGHT)),
            tracker: tracker.clone(),
            token: token.clone(),
        });
        // The snapshot being served now is the first one both tasks know; every
        // later one is a change, however soon they first run.
        let mut notified = snapshot.clone();
        let first = notified.borrow_and_update().clone();
        tracker.spawn(notify::run(fetcher, notified, first.clone(), token));
        let mut distributed = snapshot;
        distributed.mark_unchanged();
        tracker.spawn(hub.clone().distribute(distributed, first));
        hub
    }

    /// The addresses a request to `callback` may reach: public ones only, unless
    /// `hub_allow_private`. A subscriber's callback on 127.0.0.1 gains nothing from
    /// being an IP literal, unlike a source the operator configured.
    fn policy(&self, callback: &url::Url) -> AddressPolicy {
        if self.allow_private {
            AddressPolicy::for_source(callback, true)
        } else {
            AddressPolicy::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Live>> {
        self.subscriptions
            .lock()
            .expect("the subscription map is never poisoned")
    }

    /// Whether the built-in hub answers on [`PATH`]: while the site (reloaded with
    /// the config) says `hub = "builtin"`. Off, the path is served like any other.
    pub fn is_on(&self) -> bool {
        self.snapshot.borrow().site().builtin_hub
    }

    /// Answers a request to [`PATH`] with `body`.
    pub async fn answer(
        self: &Arc<Self>,
        method: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> HubAnswer {
        let answer = |status: u16, text: String| HubAnswer { status, text };
        if method != "POST" {
            return answer(405, "the hub takes POST requests (WebSub)".into());
        }
        let form = content_type
            .and_then(|t| t.split(';').next())
            .is_none_or(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return answer(
                415,
                "send the request as application/x-www-form-urlencoded".into(),
            );
        }
        let request = match request::parse(body) {
            Ok(request) => request,
            Err(reason) => return answer(400, reason),
        };
        match self.accept(request).await {
            Ok(mode) => answer(202, format!("{mode} request accepted; verifying intent")),
            Err((status, reason)) => answer(status, reason),
        }
    }
}
