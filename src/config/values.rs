//! The checks of single values of `feeds.toml`: URLs, durations, intervals, zones,
//! language tags, filter rules and request headers. Each reports its problem at the
//! value's place and returns what the config uses instead.

use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;
use url::Url;

use super::check::Checker;
use super::*;
use crate::fetch::{AddressPolicy, RequestOptions};
use crate::ingest::filter::FilterOn;

impl Checker<'_> {
    pub(super) fn http_url(&mut self, raw: &Spanned<String>, what: &str) -> Option<Url> {
        let written = raw.as_ref().trim();
        // Messages are logged on reload: they show the URL as any output would.
        let text = super::shown::shown_url(written, &[]);
        match Url::parse(written) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{text}` has a user name or password in it, which would be published with the URL; write them as `username` and `password` in the [[source]], which are sent to this host only"
                    ),
                );
                None
            }
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            Ok(url) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{text}` uses `{}:`; only http:// and https:// URLs can be polled",
                        url.scheme()
                    ),
                );
                None
            }
            Err(err) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{text}` is not a valid URL ({err}); write it in full, like \"https://example.org/rss.xml\""
                    ),
                );
                None
            }
        }
    }

    /// One of `[server] hostnames`: a host name or IP address, with a port or
    /// without, as a reader's Host header names it; lowercased.
    pub(super) fn hostname(&mut self, raw: &Spanned<String>) -> Option<String> {
        let text = raw.as_ref().trim().to_ascii_lowercase();
        let parsed = Url::parse(&format!("http://{text}/")).ok();
        let plain = parsed.as_ref().is_some_and(|url| {
            url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
        });
        if !plain || text.contains(['/', '@', '?', '#']) {
            self.report(
                Some(raw.span()),
                format!(
                    "`{}` is not a host name; write a name readers use, like \"news.example.org\" or \"news.example.org:8443\"",
                    raw.as_ref()
                ),
            );
            return None;
        }
        Some(text)
    }

    /// `[server] public_url`: an absolute http(s) URL without query or fragment; a
    /// missing final `/` is added, so `https://example.org/news` serves
    /// `https://example.org/news/feed.xml`.
    pub(super) fn public_url(&mut self, raw: &Spanned<String>) -> Option<Url> {
        let mut url = self.http_url(raw, "[server] public_url")?;
        if url.query().is_some() || url.fragment().is_some() {
            self.report(
                Some(raw.span()),
                format!(
                    "[server] public_url `{}` has a query or fragment; give the base URL only, like \"https://news.example.org/\"",
                    raw.as_ref().trim()
                ),
            );
            return None;
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Some(url)
    }

    /// `[publish] language`: a BCP 47-shaped tag (letters, digits and hyphens).
    pub(super) fn language(&mut self, raw: Option<Spanned<String>>) -> String {
        let Some(raw) = raw else {
            return DEFAULT_LANGUAGE.to_string();
        };
        let tag = raw.as_ref().trim();
        let mut parts = tag.split('-');
        let primary_ok = parts.next().is_some_and(|p| {
            (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic())
        });
        if primary_ok
            && parts
                .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return tag.to_string();
        }
        self.report(
            Some(raw.span()),
            format!(
                "language `{tag}` is not a language tag; write it like \"en\", \"ru\" or \"pt-BR\""
            ),
        );
        DEFAULT_LANGUAGE.to_string()
    }

    /// `[publish] timezone` or a source's `timezone`: an IANA zone name.
    pub(super) fn timezone(&mut self, raw: Option<Spanned<String>>) -> chrono_tz::Tz {
        let Some(raw) = raw else {
            return DEFAULT_TIMEZONE;
        };
        match raw.as_ref().trim().parse::<chrono_tz::Tz>() {
            Ok(zone) => zone,
            Err(_) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "timezone `{}` is not an IANA time zone name; write it like \"UTC\", \"Europe/Moscow\" or \"America/New_York\"",
                        raw.as_ref().trim()
                    ),
                );
                DEFAULT_TIMEZONE
            }
        }
    }

    /// `include` / `exclude`: regular expressions (the `regex` crate's syntax), each
    /// checked on its own so an error names the one that is wrong.
    pub(super) fn rules(&mut self, raw: &[Spanned<String>], what: &str) -> Option<regex::RegexSet> {
        let mut ok = true;
        for rule in raw {
            if let Err(err) = regex::Regex::new(rule.as_ref()) {
                ok = false;
                let reason = match &err {
                    regex::Error::Syntax(text) => text.lines().last().unwrap_or(text).trim(),
                    _ => "the pattern is too large",
                };
                self.report(
                    Some(rule.span()),
                    format!(
                        "{what} rule `{}` is not a regular expression: {}",
                        rule.as_ref(),
                        reason.trim_start_matches("error: ")
                    ),
                );
            }
        }
        if !ok || raw.is_empty() {
            return None;
        }
        regex::RegexSet::new(raw.iter().map(|r| r.as_ref())).ok()
    }

    /// `filter_on`: "title", "summary" or "both".
    pub(super) fn filter_on(&mut self, raw: Option<Spanned<String>>) -> FilterOn {
        let Some(raw) = raw else {
            return FilterOn::default();
        };
        match raw.as_ref().trim() {
            "title" => FilterOn::Title,
            "summary" => FilterOn::Summary,
            "both" => FilterOn::Both,
            other => {
                self.report(
                    Some(raw.span()),
                    format!("filter_on `{other}` must be \"title\", \"summary\" or \"both\""),
                );
                FilterOn::default()
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        raw: Option<&Spanned<String>>,
        what: &str,
    ) -> Option<Duration> {
        let raw = raw?;
        match humantime::parse_duration(raw.as_ref().trim()) {
            Ok(duration) if !duration.is_zero() => Some(duration),
            Ok(_) => {
                self.report(Some(raw.span()), format!("{what} must be longer than zero"));
                None
            }
            Err(err) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{}` is not a duration ({err}); write it like \"90s\", \"15m\" or \"2h\"",
                        raw.as_ref()
                    ),
                );
                None
            }
        }
    }

    /// `[server] send_timeout`: at least a second, the period of the HTTP workers'
    /// deadline sweep.
    pub(super) fn send_timeout(&mut self, raw: Option<&Spanned<String>>) -> Duration {
        let timeout = self
            .duration(raw, "[server] send_timeout")
            .unwrap_or(DEFAULT_SEND_TIMEOUT);
        if timeout < Duration::from_secs(1) {
            self.report(
                raw.map(Spanned::span),
                "[server] send_timeout must be at least 1s".into(),
            );
            return DEFAULT_SEND_TIMEOUT;
        }
        timeout
    }

    /// `[server] per_source_metrics`: `"auto"` (the default), `true` or `false`.
    pub(super) fn per_source_metrics(
        &mut self,
        raw: Option<Spanned<toml::Value>>,
    ) -> PerSourceMetrics {
        let Some(raw) = raw else {
            return PerSourceMetrics::Auto;
        };
        match raw.as_ref() {
            toml::Value::Boolean(true) => PerSourceMetrics::On,
            toml::Value::Boolean(false) => PerSourceMetrics::Off,
            toml::Value::String(text) if text.trim().eq_ignore_ascii_case("auto") => {
                PerSourceMetrics::Auto
            }
            _ => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "[server] per_source_metrics must be \"auto\" (per source up to {PER_SOURCE_METRICS_AUTO_LIMIT} sources), true or false"
                    ),
                );
                PerSourceMetrics::Auto
            }
        }
    }

    /// `"auto"`, or a duration of at least [`MIN_INTERVAL`].
    pub(super) fn interval(
        &mut self,
        raw: Option<&Spanned<String>>,
        what: &str,
    ) -> Option<Interval> {
        if raw.is_some_and(|r| r.as_ref().trim().eq_ignore_ascii_case("auto")) {
            return Some(Interval::Auto);
        }
        let duration = self.duration(raw, what)?;
        if duration < MIN_INTERVAL {
            self.report(
                raw.map(Spanned::span),
                format!(
                    "{what} {} is shorter than the floor of {}; poll at most once a minute, or write \"auto\"",
                    humantime::format_duration(duration),
                    humantime::format_duration(MIN_INTERVAL)
                ),
            );
            return None;
        }
        Some(Interval::Fixed(duration))
    }

    pub(super) fn request_options(
        &mut self,
        headers: BTreeMap<String, Spanned<String>>,
        username: Option<String>,
        password: Option<String>,
        user_agent: Option<Spanned<String>>,
    ) -> RequestOptions {
        let mut checked = BTreeMap::new();
        for (name, value) in headers {
            if !is_header_name(&name) {
                self.report(
                    Some(value.span()),
                    format!("`{name}` is not a valid HTTP header name"),
                );
            } else if name.eq_ignore_ascii_case("proxy-authorization") {
                self.report(
                    Some(value.span()),
                    "Proxy-Authorization belongs to the proxy, not to the feed's server, which a source's headers go to; give the proxy's credentials in its URL (HTTPS_PROXY=http://user:password@proxy:3128)".to_string(),
                );
            } else if !is_header_value(value.as_ref()) {
                self.report(
                    Some(value.span()),
                    format!("the value of header `{name}` contains control characters"),
                );
            } else {
                checked.insert(name, value.into_inner());
            }
        }
        let user_agent = user_agent.and_then(|agent| {
            if is_header_value(agent.as_ref()) && !agent.as_ref().trim().is_empty() {
                Some(agent.into_inner())
            } else {
                self.report(
                    Some(agent.span()),
                    "user_agent must be non-empty text without control characters".to_string(),
                );
                None
            }
        });
        RequestOptions {
            headers: checked,
            basic_auth: username.map(|user| (user, password)),
            user_agent,
            addresses: AddressPolicy::default(),
            credentials_origin: None,
        }
    }

    /// A source's `secret_query`: query parameter names, lowercased.
    pub(super) fn secret_query(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut names = Vec::with_capacity(raw.len());
        for name in raw {
            let text = name.as_ref().trim().to_ascii_lowercase();
            if text.is_empty() || text.contains(['&', '=', '?', '#']) {
                self.report(
                    Some(name.span()),
                    format!(
                        "secret_query lists query parameter names, like \"token\"; `{}` is not one",
                        name.as_ref()
                    ),
                );
            } else {
                names.push(text);
            }
        }
        names
    }

    pub(super) fn at_least_one(
        &mut self,
        raw: Option<Spanned<usize>>,
        what: &str,
        default: usize,
    ) -> usize {
        match raw {
            Some(value) if *value.as_ref() == 0 => {
                self.report(Some(value.span()), format!("{what} must be at least 1"));
                default
            }
            Some(value) => value.into_inner(),
            None => default,
        }
    }
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}
