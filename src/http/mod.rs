//! The HTTP face, on hyper directly: the outputs `publish` rendered, and `/healthz`.
//!
//! Routes (GET and HEAD only; anything else is 405 with `Allow`):
//! `/` (HTML), `/feed.xml` (RSS 2.0), `/atom.xml`, `/feed.json`, `/opml`,
//! `/tags/{tag}.xml|.atom|.json`, `/sources/{id}.xml|.atom|.json`, each taking
//! `?limit=N`; `/healthz`, `/readyz`, `/metrics`, `/sources` and `/sources.json` for
//! the operator; `/hub` (POST) for the built-in WebSub hub when it is on. Unknown paths, tags and sources are 404, a bad `limit` or Host is
//! 400, each with a one-line reason. Every answer is counted in `metrics` under its
//! route pattern. `/websub/<token>` is the WebSub callback (GET and POST), answered
//! by [`crate::websub::Registry::answer`] when the daemon subscribes to hubs.
//!
//! Serving is a lookup: the representation (already compressed, with its ETag and
//! Last-Modified as header values) is picked by Accept-Encoding, compared with the
//! request's validators (304), and its bytes are handed to hyper as a `Bytes` clone.
//! Never parses feeds, never renders per request. Request heads are bounded
//! ([`MAX_REQUEST_HEAD_BYTES`], [`MAX_URI_BYTES`], [`MAX_HEADERS`]) and must arrive
//! within [`HEADER_READ_TIMEOUT`]; a response whose reader stopped reading is given
//! up after `[server] send_timeout` ([`crate::http::deadline`]). `daemon` runs [`serve`] and
//! cancels it at shutdown.

//!
//! The files: `server` accepts and runs connections, `routes` turns a request
//! into an answer, `conditional` picks the encoding and answers 304s, `operator`
//! serves the operator's endpoints, `line_ends` refuses bare-LF request heads; the
//! fast paths are [`zerocopy`] (sendfile) and [`deadline`] (the connection deadlines).
//! Every response carries [`SAFE_HEADERS`] and the [`content_security_policy`].

pub mod admin;
mod conditional;
pub mod deadline;
mod line_ends;
mod operator;
mod routes;
mod server;
pub mod zerocopy;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::ops::health::Health;
use crate::ops::listing::SourceList;
use crate::ops::metrics::Metrics;
use crate::publish::Snapshot;
use crate::store::Store;

pub use admin::serve_all;
pub use conditional::{Encoding, negotiate};
pub use routes::{SAFE_HEADERS, content_security_policy, handle, service, style_hash};
pub use server::{connection_builder, serve};

/// 8 KiB of request line and headers (hyper's floor): a feed reader sends a few
/// hundred bytes; more is 431.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// 2 KiB of path and query: every real URL here is far shorter; longer is 414.
pub const MAX_URI_BYTES: usize = 2048;
/// 100 header fields: browsers send about 20; more is 431. This is hyper's own
/// bound, left implicit: configuring any bound makes hyper set up a header array of
/// that size for each request, which cost 2% of a 304.
pub const MAX_HEADERS: usize = 100;
/// 10 seconds to send a request head, after connecting or after the previous
/// response: a slow client cannot hold a connection open with a trickle of header
/// bytes, nor an idle one forever ([`crate::http::deadline`]).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub store: Store,
    /// `Cache-Control` of every output, built once (see `daemon::max_age`).
    pub cache_control: HeaderValue,
    /// Largest `?limit` accepted: `[publish] max_items`.
    pub max_limit: usize,
    /// Readiness, for `/readyz`.
    pub health: Arc<Health>,
    /// What `/metrics` serves; every request is counted in it.
    pub metrics: Arc<Metrics>,
    /// What `/sources` lists; replaced on reload.
    pub sources: watch::Receiver<Arc<SourcesPage>>,
    /// `[server] send_timeout`: how long a response may wait for room in the socket.
    pub send_timeout: Duration,
    /// What of the operator this listener serves (`[server] admin_listen`).
    pub admin: admin::Admin,
    /// The built-in WebSub hub, which answers `/hub` when it is on.
    pub hub: Arc<crate::hub::Hub>,
    /// The WebSub subscriptions, whose hubs call `/websub/<token>`; `None` when the
    /// daemon does not subscribe (no `[server] public_url`).
    pub websub: Option<Arc<crate::websub::Registry>>,
    /// This node's view of its cluster, when the store is shared: `/readyz`,
    /// `/metrics` and `/sources` show the node's partitions and the cluster's.
    pub cluster: Option<Arc<crate::ops::cluster::ClusterView>>,
}

/// What `/sources` lists: the configured sources, under the site's title.
pub struct SourcesPage {
    pub title: String,
    /// The enabled sources, then those with `enabled = false`.
    pub sources: SourceList,
}

/// The body of every response: whole bytes, rendered or compressed beforehand.
pub type Body = Full<Bytes>;
