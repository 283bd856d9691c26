//! The checker: turns the raw file into a [`Config`], collecting every problem with its
//! place instead of stopping at the first. Section by section here; the single values
//! (durations, URLs, zones, rules, headers) are checked in `values`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use url::Url;

use super::raw::{RawConfig, RawPoll, RawPublish, RawSelectors, RawServer, RawSource, RawStore};
use super::*;
use crate::fetch::AddressPolicy;
use crate::ingest::filter::Filter;
use crate::ingest::scrape::{Rules, RulesText};
use crate::item::SourceId;

/// Collects every problem instead of stopping at the first, so one `tributary check`
/// shows all of them.
pub(super) struct Checker<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    pub(super) problems: Vec<Problem>,
    /// Where the piece of `text` being checked starts: a `[[source]]` table read on
    /// its own (`pieces`) has spans from its own start.
    pub(super) base: usize,
}

/// The URLs of the sources checked so far, each with where it is in the file: the
/// second of two with the same URL is reported and left out.
pub(super) type Seen = HashMap<String, usize>;

impl<'a> Checker<'a> {
    /// A checker of `text`, read from `path`, with no problem found yet.
    pub(super) fn new(path: &'a Path, text: &'a str) -> Checker<'a> {
        Checker {
            path,
            text,
            problems: Vec::new(),
            base: 0,
        }
    }

    /// `config`, or the problems found on the way to it.
    pub(super) fn finish(self, config: Config) -> Result<Config, ConfigError> {
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(self.into_error())
        }
    }

    pub(super) fn report(&mut self, span: Option<Range<usize>>, message: String) {
        let (line, column) = span
            .map(|span| line_column(self.text, self.base + span.start))
            .unwrap_or((0, 0));
        self.problems.push(Problem {
            path: self.path.to_owned(),
            line,
            column,
            message,
        });
    }

    pub(super) fn into_error(self) -> ConfigError {
        ConfigError::Invalid {
            problems: self.problems,
        }
    }

    /// The whole file, section by section; `state_dir` is the store's home when the
    /// file names none.
    pub(super) fn check(&mut self, mut raw: RawConfig, state_dir: Option<PathBuf>) -> Config {
        let sources = raw.source.take().unwrap_or_default();
        let mut config = self.head(raw, state_dir);
        let mut seen = Seen::new();
        for raw_source in sources {
            self.add_source(&mut config, &mut seen, raw_source);
        }
        config
    }

    /// Every section but the sources: a [`Config`] without any yet
    /// ([`Checker::add_source`] adds them).
    pub(super) fn head(&mut self, mut raw: RawConfig, state_dir: Option<PathBuf>) -> Config {
        let admin_span = raw.server.admin_listen.as_ref().map(Spanned::span);
        let admin_listen = self.admin_listen(raw.server.admin_listen.as_ref());
        let metrics = raw.server.metrics.unwrap_or(true);
        let per_source_metrics = self.per_source_metrics(raw.server.per_source_metrics.take());
        let (listen, public_url, hostnames, send_timeout) = self.server(raw.server);
        // Port 0 (any free port) is two different ports.
        if admin_listen == Some(listen) && listen.port() != 0 {
            self.report(
                admin_span,
                "admin_listen is the listen address; give it another port (or leave it out to serve both on listen)".to_string(),
            );
        }
        let cluster = self.cluster(super::cluster::RawCluster {
            backend: raw.store.backend.as_ref(),
            url: raw.store.url.as_ref(),
            url_file: raw.store.url_file.as_ref(),
            password_file: raw.store.password_file.as_ref(),
            node_id: raw.store.node_id.as_ref(),
            lease_ttl: raw.store.lease_ttl.as_ref(),
            watch_every: raw.store.watch_every.as_ref(),
            pool_size: raw.store.pool_size.as_ref(),
        });
        let (store_path, store_cache_bytes, retention) = self.store(raw.store, state_dir);
        let poll = self.poll(raw.poll);
        let publish = self.publish(raw.publish);
        Config {
            path: self.path.to_owned(),
            listen,
            public_url,
            hostnames,
            send_timeout,
            admin_listen,
            metrics,
            store_path,
            store_cache_bytes,
            retention,
            poll,
            publish,
            sources: Vec::new(),
            disabled: Vec::new(),
            watch: raw.config.watch.unwrap_or(false),
            per_source_metrics,
            cluster,
            texts: None,
        }
    }

    /// `[server]`: the listen address, `public_url`, `hostnames` and `send_timeout`.
    fn server(&mut self, raw: RawServer) -> (SocketAddr, Option<Url>, Vec<String>, Duration) {
        let listen = match raw.listen {
            Some(listen) => listen.as_ref().parse().unwrap_or_else(|_| {
                self.report(
                    Some(listen.span()),
                    format!(
                        "`{}` is not an address to listen on; write an IP and a port, like \"127.0.0.1:8080\" or \"[::]:8080\"",
                        listen.as_ref()
                    ),
                );
                default_listen()
            }),
            None => default_listen(),
        };
        let public_url = raw.public_url.and_then(|url| self.public_url(&url));
        let hostnames = raw
            .hostnames
            .iter()
            .filter_map(|name| self.hostname(name))
            .collect();
        let send_timeout = self.send_timeout(raw.send_timeout.as_ref());
        (listen, public_url, hostnames, send_timeout)
    }

    /// `[server] admin_listen`: an address to listen on.
    fn admin_listen(&mut self, raw: Option<&Spanned<String>>) -> Option<SocketAddr> {
        let raw = raw?;
        let parsed = raw.as_ref().trim().parse();
        if parsed.is_err() {
            self.report(
                Some(raw.span()),
                format!(
                    "admin_listen `{}` is not an address to listen on; write an IP and a port, like \"127.0.0.1:9091\"",
                    raw.as_ref()
                ),
            );
        }
        parsed.ok()
    }

    /// `[store]`: where it lives, its page cache in bytes, and how long items stay.
    fn store(&mut self, raw: RawStore, state_dir: Option<PathBuf>) -> (PathBuf, u64, Retention) {
        let store_path = raw
            .path
            .or(state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_PATH));
        let store_cache_bytes = match raw.cache_mb {
            None => DEFAULT_STORE_CACHE_BYTES,
            Some(mb) => {
                let mb = self.at_least_one(Some(mb), "cache_mb", 2);
                (mb as u64).saturating_mul(1024 * 1024)
            }
        };
        let retention = Retention {
            max_age: self
                .duration(raw.max_age.as_ref(), "max_age")
                .unwrap_or(DEFAULT_MAX_AGE),
            max_items: self.at_least_one(raw.max_items, "max_items", DEFAULT_STORE_MAX_ITEMS),
        };
        (store_path, store_cache_bytes, retention)
    }

    /// `[poll]`: intervals and their bounds, concurrency, timeouts, the body cap.
    fn poll(&mut self, raw: RawPoll) -> PollConfig {
        let default_interval = self
            .interval(raw.interval.as_ref(), "[poll] interval")
            .unwrap_or(Interval::Auto);
        let min_interval = self
            .duration(raw.min_interval.as_ref(), "min_interval")
            .unwrap_or(DEFAULT_MIN_INTERVAL);
        let max_interval = self
            .duration(raw.max_interval.as_ref(), "max_interval")
            .unwrap_or(DEFAULT_MAX_INTERVAL);
        if max_interval < min_interval {
            self.report(
                raw.max_interval.as_ref().map(Spanned::span),
                format!(
                    "max_interval {} is shorter than min_interval {}",
                    humantime::format_duration(max_interval),
                    humantime::format_duration(min_interval)
                ),
            );
        }
        PollConfig {
            interval: default_interval,
            min_interval,
            max_interval: max_interval.max(min_interval),
            concurrency: self.at_least_one(raw.concurrency, "concurrency", DEFAULT_CONCURRENCY),
            per_host: self.at_least_one(raw.per_host, "per_host", DEFAULT_PER_HOST),
            timeout: self
                .duration(raw.timeout.as_ref(), "timeout")
                .unwrap_or(DEFAULT_TIMEOUT),
            connect_timeout: self
                .duration(raw.connect_timeout.as_ref(), "connect_timeout")
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            max_body_bytes: self.at_least_one(
                raw.max_body_bytes,
                "max_body_bytes",
                DEFAULT_MAX_BODY_BYTES,
            ),
        }
    }

    /// `[publish]`: what the merged feed and the page say about themselves.
    fn publish(&mut self, raw: RawPublish) -> PublishConfig {
        let max_items = match raw.max_items {
            Some(max) if *max.as_ref() == 0 || *max.as_ref() > MAX_MAX_ITEMS => {
                self.report(
                    Some(max.span()),
                    format!("max_items must be between 1 and {MAX_MAX_ITEMS}"),
                );
                DEFAULT_MAX_ITEMS
            }
            Some(max) => max.into_inner(),
            None => DEFAULT_MAX_ITEMS,
        };
        let link = raw
            .link
            .and_then(|link| self.http_url(&link, "[publish] link"));
        let push = self.push(
            raw.hubs,
            raw.hub,
            raw.hub_max_subscriptions,
            raw.hub_allow_private,
        );
        PublishConfig {
            title: raw.title.unwrap_or_else(|| DEFAULT_TITLE.to_string()),
            description: raw
                .description
                .unwrap_or_else(|| "The newest items of every source, newest first".to_string()),
            link,
            max_items,
            max_per_source: raw
                .max_per_source
                .map(|cap| self.at_least_one(Some(cap), "max_per_source", max_items)),
            language: self.language(raw.language),
            timezone: self.timezone(raw.timezone),
            push,
        }
    }

    /// One `[[source]]`, after those before it in the file: added to `config`'s
    /// sources, or to the disabled ones with `enabled = false`; left out (and reported)
    /// when it has a problem, or when a source before it has the same URL (`seen`).
    pub(super) fn add_source(&mut self, config: &mut Config, seen: &mut Seen, raw: RawSource) {
        let Some(url) = self.http_url(&raw.url, "source url") else {
            return;
        };
        let start = self.base + raw.url.span().start;
        if let Some(first) = seen.get(url.as_str()) {
            let (line, _) = line_column(self.text, *first);
            self.report(
                Some(raw.url.span()),
                format!(
                    "duplicate source {}: it is already listed on line {line}; remove one of the two [[source]] tables",
                    super::shown_url(url.as_str(), &[])
                ),
            );
            return;
        }
        seen.insert(url.as_str().to_owned(), start);
        let enabled = raw.enabled.unwrap_or(true);
        if let Some(source) = self.source(raw, url, config.poll.interval) {
            if enabled {
                config.sources.push(source);
            } else {
                config.disabled.push(source);
            }
        }
    }

    /// One `[[source]]` whose URL is already checked.
    fn source(
        &mut self,
        raw: RawSource,
        url: Url,
        default_interval: Interval,
    ) -> Option<SourceConfig> {
        let interval = self
            .interval(raw.interval.as_ref(), "interval")
            .unwrap_or(default_interval);
        let name = raw
            .name
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty());
        let password = self.password(raw.password, raw.password_file, &url);
        let headers = self.header_values(raw.headers, &url);
        let mut request = self.request_options(headers, raw.username, password, raw.user_agent);
        request.addresses = AddressPolicy::for_source(&url, raw.allow_private.unwrap_or(false));
        request.credentials_origin = Some(url.origin());
        let timezone = self.timezone(raw.timezone);
        let kind = self.kind(raw.kind, raw.selectors, &raw.url)?;
        let filter = Filter {
            include: self.rules(&raw.include, "include"),
            exclude: self.rules(&raw.exclude, "exclude"),
            on: self.filter_on(raw.filter_on),
        };
        let max_items = raw
            .max_items
            .map(|max| self.at_least_one(Some(max), "max_items", usize::MAX));
        let secret_query = self.secret_query(raw.secret_query);
        Some(SourceConfig {
            id: SourceId(raw.url.as_ref().trim().to_string()),
            url,
            name,
            tags: raw.tags,
            interval,
            request,
            timezone,
            kind,
            filter,
            max_items,
            secret_query,
            websub: raw.websub.unwrap_or(true),
        })
    }

    /// `kind` and `[source.selectors]`: `None` (with the problems reported) when they
    /// do not make a usable source.
    fn kind(
        &mut self,
        kind: Option<Spanned<String>>,
        selectors: Option<Spanned<RawSelectors>>,
        url: &Spanned<String>,
    ) -> Option<SourceKind> {
        let html = match &kind {
            None => false,
            Some(kind) => match kind.as_ref().trim() {
                "feed" => false,
                "html" => true,
                other => {
                    self.report(
                        Some(kind.span()),
                        format!("kind `{other}` is not a source kind; write \"feed\" (the default) or \"html\""),
                    );
                    return None;
                }
            },
        };
        match (html, selectors) {
            (false, None) => Some(SourceKind::Feed),
            (false, Some(selectors)) => {
                self.report(
                    Some(selectors.span()),
                    "selectors are read only from a web page; add kind = \"html\" to this source, or remove its selectors".to_string(),
                );
                None
            }
            (true, None) => {
                self.report(
                    Some(kind.as_ref().map_or(url.span(), Spanned::span)),
                    "a kind = \"html\" source needs a [source.selectors] table with at least `item`, `title` and `link`".to_string(),
                );
                None
            }
            (true, Some(selectors)) => self.selectors(selectors),
        }
    }

    fn selectors(&mut self, raw: Spanned<RawSelectors>) -> Option<SourceKind> {
        let table = raw.span();
        let raw = raw.into_inner();
        let mut spans = HashMap::new();
        let mut take = |name: &'static str, value: Option<Spanned<String>>| {
            value.map(|v| {
                spans.insert(name, v.span());
                v.into_inner().trim().to_string()
            })
        };
        let item = take("item", raw.item);
        let title = take("title", raw.title);
        let link = take("link", raw.link);
        let text = RulesText {
            item: item.clone().unwrap_or_default(),
            title: title.clone().unwrap_or_default(),
            link: link.clone().unwrap_or_default(),
            link_attribute: take("link_attribute", raw.link_attribute),
            date: take("date", raw.date),
            date_attribute: take("date_attribute", raw.date_attribute),
            date_format: take("date_format", raw.date_format),
            summary: take("summary", raw.summary),
        };
        let mut ok = true;
        for (name, value) in [("item", &item), ("title", &title), ("link", &link)] {
            if value.as_deref().is_none_or(str::is_empty) {
                self.report(
                    Some(spans.get(name).cloned().unwrap_or(table.clone())),
                    format!("[source.selectors] needs `{name}`, a CSS selector"),
                );
                ok = false;
            }
        }
        if text.date.is_none() {
            for (name, value) in [
                ("date_attribute", &text.date_attribute),
                ("date_format", &text.date_format),
            ] {
                if value.is_some() {
                    self.report(
                        spans.get(name).cloned(),
                        format!(
                            "`{name}` is read from the `date` element; add `date`, a CSS selector"
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let Some(format) = &text.date_format
            && chrono::format::StrftimeItems::new(format).parse().is_err()
        {
            self.report(
                spans.get("date_format").cloned(),
                format!("date_format `{format}` is not a chrono strftime format; write it like \"%H:%M %d.%m.%Y\""),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        match Rules::new(text) {
            Ok(rules) => Some(SourceKind::Html(Box::new(rules))),
            Err(err) => {
                self.report(spans.get(err.field).cloned(), err.to_string());
                None
            }
        }
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("the default listen address is valid")
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
