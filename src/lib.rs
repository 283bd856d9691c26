//! tributary: a feed aggregator daemon.
//!
//! ```text
//! feeds.toml ─► config ─► scheduler ─► fetch ─► ingest ─────────► store (sled)
//!                          (when, how      (HTTP,    (charset, feed-rs,   │ items ordered
//!                           many at once)   limits)   ids, dates, HTML)   ▼ by time
//! reader ◄── http ◄── publish (render once per change: RSS, Atom, JSON Feed, ◄───┘
//!   (hyper)              HTML, OPML; gzip + brotli; views cached per change)
//! ```
//!
//! Rooms, in the order data flows (each opens with what it owns):
//! - [`cli`]: the commands (`run`, `check`, `inspect`, `add`, `sources`, ...);
//! - [`daemon`]: the wiring of a running daemon, its reloads and its shutdown;
//! - [`config`]: `feeds.toml` read, checked and edited;
//! - [`scheduler`]: when each source is polled, and one poll of one source;
//! - [`fetch`]: HTTP with limits and an address guard; feeds found behind web pages;
//! - [`ingest`]: pure: bytes of a document to checked [`item::Item`]s;
//! - [`store`]: the only room that knows sled;
//! - [`publish`]: the URL space and the rendered outputs, once per change;
//! - [`render`]: pure: items to RSS, Atom, JSON Feed, HTML, OPML bytes;
//! - [`hub`]: WebSub: telling hubs of each change, and the built-in hub that
//!   delivers new versions of the feeds to their subscribers;
//! - [`http`]: serving those bytes;
//! - [`ops`]: metrics, health, source status, systemd, logging;
//! - [`websub`]: subscribing to the sources' hubs, and their pushes.
//!
//! [`item`] is the vocabulary they share; [`sys`] holds the few system calls that
//! need `unsafe`, behind safe functions.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod fetch;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod item;
pub mod ops;
pub mod publish;
pub mod render;
pub mod scheduler;
pub mod store;
pub mod sys;
pub mod websub;
