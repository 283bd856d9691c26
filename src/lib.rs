//! tributary: a feed aggregator daemon.
//!
//! ```text
//! feeds.toml ─► config ─► scheduler ─► fetch ─► parse ─► normalize ─► store (sled)
//!                          (when, how      (HTTP,    (charset,  (ids, text,     │ items ordered
//!                           many at once)   limits)   feed-rs)   dates, HTML)    ▼ by time
//! reader ◄── http ◄── publish (render once per change: RSS, Atom, JSON Feed, ◄────┘
//!   (hyper)              HTML, OPML; gzip + brotli; views cached per change)
//! ```
//!
//! `app` wires the stages together; `main` is the command line.

pub mod app;
pub mod config;
pub mod dates;
pub mod fetch;
pub mod health;
pub mod http;
pub mod import;
pub mod item;
pub mod metrics;
pub mod normalize;
pub mod parse;
pub mod publish;
pub mod render;
pub mod scheduler;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod systemd;
