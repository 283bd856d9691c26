//! The shapes serde reads `feeds.toml` into, before any checking: every value keeps
//! its place in the file ([`Spanned`]) so the checker can point at it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

/// The whole file, as serde reads it: every key optional, nothing checked yet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) config: RawConfigSection,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) poll: RawPoll,
    #[serde(default)]
    pub(super) publish: RawPublish,
    /// `None` when the file has no `source` key at all (`pieces` needs to know).
    pub(super) source: Option<Vec<RawSource>>,
}

/// The whole file, as serde reads it: every key optional, nothing checked yet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfigSection {
    pub(super) watch: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) public_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) hostnames: Vec<Spanned<String>>,
    pub(super) send_timeout: Option<Spanned<String>>,
    pub(super) admin_listen: Option<Spanned<String>>,
    pub(super) metrics: Option<bool>,
    pub(super) per_source_metrics: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) path: Option<PathBuf>,
    pub(super) max_age: Option<Spanned<String>>,
    pub(super) max_items: Option<Spanned<usize>>,
    pub(super) cache_mb: Option<Spanned<usize>>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) url_file: Option<PathBuf>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) node_id: Option<String>,
    pub(super) lease_ttl: Option<Spanned<String>>,
    pub(super) watch_every: Option<Spanned<String>>,
    pub(super) pool_size: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoll {
    pub(super) interval: Option<Spanned<String>>,
    pub(super) min_interval: Option<Spanned<String>>,
    pub(super) max_interval: Option<Spanned<String>>,
    pub(super) concurrency: Option<Spanned<usize>>,
    pub(super) per_host: Option<Spanned<usize>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) connect_timeout: Option<Spanned<String>>,
    pub(super) max_body_bytes: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub(super) title: Option<String>,
    pub(super) description: Option<String>,
    pub(super) link: Option<Spanned<String>>,
    pub(super) max_items: Option<Spanned<usize>>,
    pub(super) max_per_source: Option<Spanned<usize>>,
    pub(super) language: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    /// WebSub: hubs to advertise and notify, and the built-in hub (`push.rs`).
    #[serde(default)]
    pub(super) hubs: Vec<Spanned<String>>,
    pub(super) hub: Option<Spanned<String>>,
    pub(super) hub_max_subscriptions: Option<Spanned<usize>>,
    pub(super) hub_allow_private: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) url: Spanned<String>,
    /// `false`: kept in the file, not polled.
    pub(super) enabled: Option<bool>,
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) interval: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, Spanned<RawSecret>>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) user_agent: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) kind: Option<Spanned<String>>,
    pub(super) selectors: Option<Spanned<RawSelectors>>,
    #[serde(default)]
    pub(super) include: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<String>>,
    pub(super) filter_on: Option<Spanned<String>>,
    pub(super) max_items: Option<Spanned<usize>>,
    pub(super) allow_private: Option<bool>,
    pub(super) websub: Option<bool>,
    #[serde(default)]
    pub(super) secret_query: Vec<Spanned<String>>,
}

/// A header's value: the text, or `{ file = "name" }`, a file holding it (`secrets`).
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, or { file = \"path\" } naming a file that holds it"
)]
pub(super) enum RawSecret {
    Text(String),
    File(RawSecretFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecretFile {
    pub(super) file: String,
}

/// `[source.selectors]` of a `kind = "html"` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelectors {
    pub(super) item: Option<Spanned<String>>,
    pub(super) title: Option<Spanned<String>>,
    pub(super) link: Option<Spanned<String>>,
    pub(super) link_attribute: Option<Spanned<String>>,
    pub(super) date: Option<Spanned<String>>,
    pub(super) date_attribute: Option<Spanned<String>>,
    pub(super) date_format: Option<Spanned<String>>,
    pub(super) summary: Option<Spanned<String>>,
}
