//! WebSub, the subscriber side (W3C WebSub Recommendation): a story is in the river
//! within moments of its publisher's push, instead of at the next poll.
//!
//! ```text
//! scheduler ── Advert (hub, topic of each new body) ──► subscriber ── subscribe ──► hub
//!     ▲                                                    │ renew, unsubscribe,
//!     │ Pushed (bounded queue)                             │ lapse: "poll now"
//! http /websub/<token> ◄── verification GET, signed POST ──┴────────────── hub
//! ```
//!
//! - [`discover`] (pure): a feed's hubs and topic, from its `Link` header or the
//!   document (Atom/RSS `atom:link`, JSON Feed `hubs`).
//! - [`registry`]: the subscriptions (in the store, `websub` tree, and in memory),
//!   what a hub's verification and a lapse do to them, and the push queue.
//! - [`callback`]: the endpoint hubs call, `/websub/<token>`: verification (echo
//!   the challenge for a pending or active subscription of that topic and mode, 404
//!   otherwise) and content distribution (body cap, rate limit, `X-Hub-Signature`),
//!   answered at once, the document queued for the scheduler, which reads and
//!   stores it exactly as a polled one.
//! - [`subscriber`]: the task that subscribes, renews before the lease ends,
//!   unsubscribes when a source goes, changes its topic or opts out, and retries
//!   failures with a backoff; its requests go through `fetch` and its address guard.
//! - [`signature`]: `X-Hub-Signature` checked in constant time.
//!
//! Only with `[server] public_url` (a hub needs a callback it can reach); a source
//! with `websub = false` is only polled. A subscribed source is still polled, at
//! [`POLL_STRETCH`] times its interval, and at its usual one again as soon as its
//! subscription fails or lapses. `daemon` starts it all; `http` serves the callback;
//! `scheduler` sends the adverts, takes the pushes and stretches the intervals.

pub mod callback;
pub mod discover;
pub mod registry;
pub mod signature;
pub mod subscriber;

use std::sync::Arc;
use tokio::sync::mpsc;
use url::Url;

use crate::item::SourceId;
pub use discover::Hubs;
pub use registry::Registry;

/// The path under which hubs reach the callbacks: `/websub/<token>`.
pub const CALLBACK_PREFIX: &str = "/websub/";
/// A subscribed source is polled this many times less often: a safety net for a
/// push that never came, not the way its stories arrive.
pub const POLL_STRETCH: u32 = 6;
/// 1024 pushed documents wait at most for the scheduler; more are answered 503
/// (the hub retries later) rather than held in memory.
pub const PUSH_QUEUE: usize = 1024;
/// 1024 adverts wait for the subscriber; more are dropped (the next poll repeats).
pub const ADVERT_QUEUE: usize = 1024;

/// A pushed document, accepted (signature checked) and waiting to be read.
#[derive(Debug)]
pub struct Pushed {
    pub source: SourceId,
    /// The subscription's topic: the base of the document's relative links.
    pub topic: Url,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

/// What a new body of a source says about its hub, for the subscriber.
#[derive(Clone, Debug)]
pub struct Advert {
    pub source: SourceId,
    pub hubs: Hubs,
    /// Where the body came from: the topic when the feed names no `rel="self"`.
    pub fetched_from: Url,
}

/// What the scheduler holds of WebSub: the subscriptions (to stretch the intervals
/// of the subscribed sources) and where adverts go.
#[derive(Clone)]
pub struct Adverts {
    pub registry: Arc<Registry>,
    pub sender: mpsc::Sender<Advert>,
}

/// The scheduler's end of WebSub: adverts out; pushes and "poll now" in.
pub struct Link {
    pub adverts: Adverts,
    pub pushes: mpsc::Receiver<Pushed>,
    /// Sources whose subscription failed or lapsed: polled now, at their usual
    /// interval from then on.
    pub poll_now: mpsc::UnboundedReceiver<SourceId>,
}
