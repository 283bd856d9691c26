//! `[store] backend = "postgres"`: the shared store of several nodes, and how this
//! node takes part (its id, its lease TTL, how often it looks for other nodes'
//! writes). Checked here so the rest of `[store]` stays as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use super::check::Checker;

/// 15 seconds: a node killed without releasing its partitions loses them this long
/// after its last renewal (it renews every quarter of it).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);
/// The shortest lease TTL taken: renewals come every quarter of it.
pub const SHORTEST_LEASE_TTL: Duration = Duration::from_secs(1);
/// How often a node reads the store's watermark to render other nodes' writes.
pub const DEFAULT_WATCH_EVERY: Duration = Duration::from_secs(1);

/// Where the shared store is and how this node takes part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// A libpq connection string or URL (`url`, or the first line of `url_file`).
    pub url: String,
    /// The first line of `password_file`, when the URL carries none.
    pub password: Option<String>,
    /// This node's name in the leases; default: the host name and the process id.
    pub node_id: String,
    pub lease_ttl: Duration,
    pub watch_every: Duration,
    /// Connections this node keeps to the database.
    pub pool_size: usize,
}

/// The `[store]` keys of the shared store, as read.
pub(super) struct RawCluster<'a> {
    pub(super) backend: Option<&'a Spanned<String>>,
    pub(super) url: Option<&'a Spanned<String>>,
    pub(super) url_file: Option<&'a PathBuf>,
    pub(super) password_file: Option<&'a PathBuf>,
    pub(super) node_id: Option<&'a String>,
    pub(super) lease_ttl: Option<&'a Spanned<String>>,
    pub(super) watch_every: Option<&'a Spanned<String>>,
    pub(super) pool_size: Option<&'a Spanned<usize>>,
}

impl Checker<'_> {
    /// `backend`, `url`/`url_file`, `password_file`, `node_id`, `lease_ttl`,
    /// `watch_every`, `pool_size`; `None` for the embedded store.
    pub(super) fn cluster(&mut self, raw: RawCluster) -> Option<ClusterConfig> {
        match raw.backend.map(|b| b.as_ref().as_str()) {
            None | Some("sled") => return None,
            Some("postgres") => {}
            Some(other) => {
                self.report(
                    raw.backend.map(Spanned::span),
                    format!("`{other}` is not a store backend; write \"sled\" (the default) or \"postgres\""),
                );
                return None;
            }
        }
        let base = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        let url = match (raw.url, raw.url_file) {
            (Some(url), None) => Some(url.as_ref().trim().to_string()),
            (None, Some(file)) => self.first_line(&base.join(file), "url_file"),
            _ => {
                self.report(
                    raw.backend.map(Spanned::span),
                    "backend = \"postgres\" needs either `url` or `url_file` (a file holding it)"
                        .into(),
                );
                None
            }
        }?;
        let password = raw
            .password_file
            .and_then(|file| self.first_line(&base.join(file), "password_file"));
        let pool_size = self.at_least_one(raw.pool_size.cloned(), "pool_size", 8);
        Some(ClusterConfig {
            url,
            password,
            node_id: raw.node_id.cloned().unwrap_or_else(default_node_id),
            lease_ttl: self.lease_ttl(raw.lease_ttl),
            watch_every: self
                .duration(raw.watch_every, "watch_every")
                .unwrap_or(DEFAULT_WATCH_EVERY),
            pool_size,
        })
    }

    /// `lease_ttl`: at least [`SHORTEST_LEASE_TTL`], since leases are renewed every
    /// quarter of it.
    fn lease_ttl(&mut self, raw: Option<&Spanned<String>>) -> Duration {
        match self.duration(raw, "lease_ttl") {
            Some(ttl) if ttl < SHORTEST_LEASE_TTL => {
                self.report(
                    raw.map(Spanned::span),
                    format!(
                        "lease_ttl {} is shorter than {}",
                        humantime::format_duration(ttl),
                        humantime::format_duration(SHORTEST_LEASE_TTL)
                    ),
                );
                DEFAULT_LEASE_TTL
            }
            ttl => ttl.unwrap_or(DEFAULT_LEASE_TTL),
        }
    }

    fn first_line(&mut self, path: &Path, what: &str) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(text.lines().next().unwrap_or("").trim().to_string()),
            Err(err) => {
                self.report(None, format!("[store] {what} {}: {err}", path.display()));
                None
            }
        }
    }
}

/// The host name and the process id: unique among the nodes of a cluster.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}
