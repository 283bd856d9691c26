//! What the outputs say about the river, from the config: titles, links, the
//! sources and their tags. Replaced on reload.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use url::Url;

use crate::config::{Config, SourceConfig};
use crate::item::SourceId;

/// What the outputs say about the river: from the config, replaced on reload.
#[derive(Clone, Debug)]
pub struct Site {
    pub title: String,
    pub description: String,
    /// `[publish] link`: the human page, when it is not tributary's own `/`.
    pub link: Option<Url>,
    /// `[server] public_url`, ending in `/`.
    pub public_url: Option<Url>,
    /// The Host the eager feeds are built for when there is no `public_url`: the
    /// listen address, as a local client writes it.
    pub default_authority: String,
    /// The Hosts documents may name when there is no `public_url`, lowercase (see
    /// [`Site::accepts`]).
    pub authorities: HashSet<String>,
    pub language: String,
    pub timezone: chrono_tz::Tz,
    pub ttl_minutes: u64,
    pub max_items: usize,
    /// `[publish] max_per_source`: most slots of the river (and of a tag view) one
    /// source may hold.
    pub max_per_source: Option<usize>,
    pub sources: Vec<SiteSource>,
    /// The sources with a `secret_query`, by id (see [`Site::shown_origin`]): every
    /// item rendered looks its source up, and a search of 100 000 sources for each
    /// is tens of milliseconds per document.
    secret_queries: HashMap<SourceId, Arc<SourceConfig>>,
    /// `[publish] hubs`: external WebSub hubs every feed advertises.
    pub hubs: Vec<Url>,
    /// `[publish] hub = "builtin"`: the feeds advertise tributary's own `/hub`.
    pub builtin_hub: bool,
}

/// A configured source as publishing needs it: the entry of the list of sources every
/// part shares (its id, `name`, `tags`, `secret_query`), and what publishing makes of it.
#[derive(Clone, Debug)]
pub struct SiteSource {
    pub config: Arc<SourceConfig>,
    pub slug: String,
    /// Its URL as it may be shown ([`crate::config::SourceConfig::shown_url`]).
    pub url: String,
}

impl SiteSource {
    /// The source as publishing needs it.
    pub fn new(config: Arc<SourceConfig>) -> SiteSource {
        SiteSource {
            slug: config.id.slug(),
            url: config.shown_url(),
            config,
        }
    }

    pub fn id(&self) -> &SourceId {
        &self.config.id
    }

    /// The `name` from `feeds.toml`; the feed's own title fills in when it is `None`.
    pub fn name(&self) -> Option<&str> {
        self.config.name.as_deref()
    }

    pub fn tags(&self) -> &[String] {
        &self.config.tags
    }
}

impl Site {
    /// The site described by `config`, served on `default_authority` (its sources
    /// copied: [`Site::from_shared`] takes them from the shared list).
    pub fn from_config(config: &Config, default_authority: String, ttl_minutes: u64) -> Site {
        let sources: Vec<Arc<SourceConfig>> =
            config.sources.iter().cloned().map(Arc::new).collect();
        Site::from_shared(config, &sources, default_authority, ttl_minutes)
    }

    /// The site described by `config`, whose sources are `sources` (the list every
    /// part shares, taken out of it), served on `default_authority`.
    pub fn from_shared(
        config: &Config,
        sources: &[Arc<SourceConfig>],
        default_authority: String,
        ttl_minutes: u64,
    ) -> Site {
        Site {
            title: config.publish.title.clone(),
            description: config.publish.description.clone(),
            link: config.publish.link.clone(),
            public_url: config.public_url.clone(),
            authorities: authorities(config, &default_authority),
            default_authority,
            language: config.publish.language.clone(),
            timezone: config.publish.timezone,
            ttl_minutes,
            max_items: config.publish.max_items,
            max_per_source: config.publish.max_per_source,
            sources: sources.iter().cloned().map(SiteSource::new).collect(),
            secret_queries: sources
                .iter()
                .filter(|s| !s.secret_query.is_empty())
                .map(|s| (s.id.clone(), s.clone()))
                .collect(),
            hubs: config.publish.push.hubs.clone(),
            builtin_hub: config.publish.push.builtin,
        }
    }

    /// Every tag used in `feeds.toml`, sorted, with the sources that carry it.
    pub fn tags(&self) -> BTreeMap<String, Vec<SourceId>> {
        let mut tags: BTreeMap<String, Vec<SourceId>> = BTreeMap::new();
        for source in &self.sources {
            for tag in source.tags() {
                tags.entry(tag.clone())
                    .or_default()
                    .push(source.id().clone());
            }
        }
        tags
    }

    /// The feed URL stored with an item of `source` (where the source moved, the
    /// feed behind its page), as it may be shown: secrets of a URL stored before they
    /// were hidden never reach a reader either.
    pub fn shown_origin<'a>(&self, source: &SourceId, url: &'a str) -> Cow<'a, str> {
        let secret_query = self
            .secret_queries
            .get(source)
            .map_or(&[][..], |s| &s.secret_query[..]);
        crate::config::shown_url(url, secret_query)
    }

    /// Whether documents may name `authority`, a reader's Host header (lowercase):
    /// only the names that belong to this server. Another Host is answered with the
    /// documents of [`Site::default_authority`], so a client cannot have self links
    /// name a host of its choosing (which a shared cache would keep for everyone),
    /// nor push the readers' documents out of the view cache with many names.
    pub fn accepts(&self, authority: &str) -> bool {
        self.authorities.contains(authority)
    }

    /// The WebSub hubs a document built on `base` advertises: the external ones,
    /// then the built-in one (`{base}hub`).
    pub fn hub_urls(&self, base: &str) -> Vec<String> {
        let mut hubs: Vec<String> = self.hubs.iter().map(Url::to_string).collect();
        if self.builtin_hub {
            hubs.push(format!("{base}{}", super::urls::HUB));
        }
        hubs
    }

    /// The base URL documents are built on, ending in `/`.
    pub fn base(&self, authority: Option<&str>) -> String {
        match &self.public_url {
            Some(url) => url.to_string(),
            None => format!(
                "http://{}/",
                authority.unwrap_or(self.default_authority.as_str())
            ),
        }
    }
}

/// The Hosts that belong to this server: `localhost`, `127.0.0.1`, `[::1]`, the
/// listen address and `public_url`'s host, bare or with the listen port; each of
/// `[server] hostnames` as written, and when written without a port also with the
/// listen port, 80 and 443 (what a reverse proxy in front may pass on).
fn authorities(config: &Config, listen: &str) -> HashSet<String> {
    let (listen_host, port) = listen.rsplit_once(':').unwrap_or((listen, "80"));
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]", listen_host]
        .into_iter()
        .map(str::to_ascii_lowercase)
        .collect();
    names.extend(
        config
            .public_url
            .as_ref()
            .and_then(Url::host_str)
            .map(str::to_string),
    );
    let mut accepted = HashSet::new();
    for name in names {
        accepted.insert(format!("{name}:{port}"));
        accepted.insert(name);
    }
    for name in &config.hostnames {
        let has_port = name.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
        if !has_port {
            for port in [port, "80", "443"] {
                accepted.insert(format!("{name}:{port}"));
            }
        }
        accepted.insert(name.clone());
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_urls_of_a_source_hide_its_secret_query_too() {
        let text = "[[source]]\nurl = \"https://a.example/rss?edition=x\"\nsecret_query = [\"edition\"]\n[[source]]\nurl = \"https://b.example/rss\"\n";
        let config = crate::config::parse(std::path::Path::new("feeds.toml"), text, None).unwrap();
        let site = Site::from_config(&config, "127.0.0.1:1".into(), 1);
        let (a, b) = (&config.sources[0].id, &config.sources[1].id);
        let moved = "https://a.example/moved?edition=morning&token=t&page=2";
        assert_eq!(
            site.shown_origin(a, moved),
            "https://a.example/moved?edition=***&token=***&page=2"
        );
        // Another source, or one no longer configured: the rule for every URL.
        for source in [b, &SourceId("https://gone.example/".into())] {
            assert_eq!(
                site.shown_origin(source, moved),
                "https://a.example/moved?edition=morning&token=***&page=2"
            );
        }
    }
}
