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
//! A source that answers with a web page goes through `discover` (the feed the page
//! advertises) or, with `kind = "html"`, through `scrape` (items read with CSS
//! selectors) instead of `parse`/`normalize`.
//!
//! `app` wires the stages together; `main` is the command line (`add` edits
//! `feeds.toml` for it). Around them: `reload` turns SIGHUP and edits of `feeds.toml`
//! into a new config for the running stages; `systemd` and `watchdog` tell the service
//! manager how the daemon is doing; `logging` writes journal-friendly lines when
//! stderr is the journal.

pub mod add;
mod allocator;
pub mod app;
pub mod config;
pub mod dates;
pub mod deadline;
pub mod discover;
pub mod fetch;
pub mod filter;
pub mod health;
pub mod http;
pub mod import;
pub mod item;
pub mod logging;
pub mod metrics;
pub mod normalize;
pub mod parse;
pub mod publish;
pub mod reload;
pub mod render;
pub mod scheduler;
pub mod scrape;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod systemd;
pub mod watchdog;
pub mod zerocopy;
