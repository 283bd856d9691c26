//! Feed autodiscovery: from a web page to the feed it advertises.
//!
//! A source URL that answers with an HTML page is searched for
//! `<link rel="alternate">` elements naming a feed type; when the page advertises
//! none, a few common feed paths on its host are probed. A candidate counts only once
//! it has been fetched and parses as a feed. The scheduler's poll calls [`discover`]
//! for a feed source that answers with a page, and so do `tributary inspect`/`add`
//! (through the same poll path, which returns a [`Resolved`]). This module knows
//! nothing of the store: the scheduler remembers what was found in the source's state.

use chrono_tz::Tz;
use scraper::{Html, Selector};
use serde::Serialize;
use std::fmt;
use std::sync::LazyLock;
use url::Url;

use crate::fetch::{FetchError, FetchOutcome, Fetched, Fetcher, RequestOptions, Validators};
use crate::ingest::parse::parse_feed;

/// Paths probed on the page's host, in order, when the page advertises no feed: the
/// defaults of WordPress, Ghost, Hugo, Jekyll and most hand-rolled sites.
pub const FALLBACK_PATHS: &[&str] = &[
    "/feed",
    "/rss",
    "/rss.xml",
    "/atom.xml",
    "/feed.xml",
    "/index.xml",
];

/// The format a page's `<link type>` announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Rss,
    Atom,
    JsonFeed,
    /// Plain `application/json`: often a JSON Feed, sometimes an API document that is
    /// not a feed at all (WordPress advertises its REST API this way), so it comes last.
    Json,
}

impl FeedKind {
    fn from_type(mime: &str) -> Option<FeedKind> {
        let mime = mime.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/rss+xml" => Some(FeedKind::Rss),
            "application/atom+xml" => Some(FeedKind::Atom),
            "application/feed+json" => Some(FeedKind::JsonFeed),
            "application/json" => Some(FeedKind::Json),
            _ => None,
        }
    }
}

impl fmt::Display for FeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedKind::Rss => "RSS",
            FeedKind::Atom => "Atom",
            FeedKind::JsonFeed => "JSON Feed",
            FeedKind::Json => "JSON",
        })
    }
}

/// A feed a page advertises with `<link rel="alternate" type="…" href="…">`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Advertised {
    /// The `href`, resolved against the page's `<base href>` and its URL.
    pub url: Url,
    pub kind: FeedKind,
    /// The link's `title` attribute, e.g. "Comments feed".
    pub title: Option<String>,
}

/// How a feed was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The page advertised it.
    Link,
    /// The page advertised nothing; a common feed path answered with a feed.
    FallbackPath,
}

/// A feed found behind a page, with the response that proved it is one.
#[derive(Debug)]
pub struct Discovery {
    pub feed_url: Url,
    pub via: Via,
    /// Every feed the page advertised, in the order they were tried.
    pub advertised: Vec<Advertised>,
    pub fetched: Fetched,
}

/// Why no feed was found behind a page.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(
        "the server answered with a bot-protection challenge page instead of a feed; the site may let only browsers in, or accept a `user_agent` or `headers` it trusts"
    )]
    Challenge,
    #[error(
        "an HTML page where a feed was expected, and it advertises no feed (no <link rel=\"alternate\"> with a feed type; none of {} on its host answered with one); give the feed's own URL, or read the page with kind = \"html\" and selectors",
        FALLBACK_PATHS.join(", ")
    )]
    NothingFound,
    #[error("an HTML page whose advertised feeds cannot be read: {}", .tried.join("; "))]
    AdvertisedUnusable { tried: Vec<String> },
}

/// What a URL given on the command line turned out to be.
#[derive(Debug)]
pub struct Resolved {
    /// The feed: the URL itself, or the one discovered behind it.
    pub feed_url: Url,
    pub fetched: Fetched,
    /// Set when the URL was a page and the feed was discovered behind it.
    pub discovery: Option<(Via, Vec<Advertised>)>,
}

/// Why a URL given on the command line did not lead to a feed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("the server answered 304 to an unconditional request")]
    NotModified,
    #[error("{0}")]
    Discover(#[from] DiscoverError),
}

/// Finds the feed behind `page` (decoded HTML, fetched from `page_url`): the first
/// advertised feed that fetches and parses; when the page advertises none, the first
/// of [`FALLBACK_PATHS`] on its host that does. Feeds in `taken` (other sources
/// already poll them) are passed over: their items would come in twice.
pub async fn discover(
    fetcher: &Fetcher,
    page_url: &Url,
    page: &str,
    request: &RequestOptions,
    taken: &[Url],
) -> Result<Discovery, DiscoverError> {
    let advertised = advertised_feeds(page, page_url);
    if advertised.is_empty() {
        if is_challenge(page) {
            return Err(DiscoverError::Challenge);
        }
        for url in fallback_urls(page_url) {
            if taken.contains(&url) {
                continue;
            }
            if let Ok(fetched) = fetch_feed(fetcher, &url, request).await {
                return Ok(Discovery {
                    feed_url: url,
                    via: Via::FallbackPath,
                    advertised,
                    fetched,
                });
            }
        }
        return Err(DiscoverError::NothingFound);
    }
    let mut tried = Vec::new();
    for candidate in &advertised {
        if taken.contains(&candidate.url) {
            tried.push(format!(
                "{}: already polled as a source of its own",
                super::shown::shown_url(candidate.url.as_str(), &[])
            ));
            continue;
        }
        match fetch_feed(fetcher, &candidate.url, request).await {
            Ok(fetched) => {
                return Ok(Discovery {
                    feed_url: candidate.url.clone(),
                    via: Via::Link,
                    advertised,
                    fetched,
                });
            }
            Err(why) => tried.push(format!(
                "{}: {why}",
                super::shown::shown_url(candidate.url.as_str(), &[])
            )),
        }
    }
    Err(DiscoverError::AdvertisedUnusable { tried })
}

/// Fetches a candidate and keeps it only if it parses as a feed.
async fn fetch_feed(
    fetcher: &Fetcher,
    url: &Url,
    request: &RequestOptions,
) -> Result<Fetched, String> {
    let fetched = match fetcher.fetch(url, &Validators::default(), request).await {
        Ok(FetchOutcome::Fetched(fetched)) => fetched,
        Ok(FetchOutcome::NotModified(_)) => {
            return Err("answered 304 to an unconditional request".into());
        }
        Err(err) => return Err(err.to_string()),
    };
    if is_html(&fetched.body, fetched.content_type.as_deref()) {
        return Err("an HTML page, not a feed".into());
    }
    // Parsing is CPU work and feed-rs can panic: off the async workers, like ingest.
    let (body, content_type) = (fetched.body.clone(), fetched.content_type.clone());
    tokio::task::spawn_blocking(move || {
        parse_feed(&body, content_type.as_deref(), Tz::UTC).map(|_| ())
    })
    .await
    .map_err(|err| format!("parser crashed: {err}"))?
    .map_err(|err| err.to_string())?;
    Ok(fetched)
}

/// Whether a response is a web page rather than a feed: the body starts like HTML, or
/// the server calls it HTML and the body does not start like a feed (feeds served as
/// `text/html` are common enough to be read as feeds).
pub fn is_html(body: &[u8], content_type: Option<&str>) -> bool {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head =
        String::from_utf8_lossy(&body[start..body.len().min(start + 256)]).to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        return true;
    }
    if ["<?xml", "<rss", "<feed", "<rdf", "{"]
        .iter()
        .any(|p| head.starts_with(p))
    {
        return false;
    }
    content_type.is_some_and(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "text/html" || mime == "application/xhtml+xml"
    })
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("a fixed selector parses")
}

/// The feeds `page` advertises, RSS first, then Atom, JSON Feed and plain JSON, each
/// URL once.
pub fn advertised_feeds(page: &str, page_url: &Url) -> Vec<Advertised> {
    static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
    static LINKS: LazyLock<Selector> = LazyLock::new(|| selector("link[rel][href][type]"));
    let document = Html::parse_document(page);
    let base = document
        .select(&BASE)
        .next()
        .and_then(|base| page_url.join(base.attr("href")?.trim()).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut found: Vec<Advertised> = Vec::new();
    for link in document.select(&LINKS) {
        let element = link.value();
        let alternate = element.attr("rel").is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("alternate"))
        });
        let Some(kind) = element.attr("type").and_then(FeedKind::from_type) else {
            continue;
        };
        let Some(url) = element
            .attr("href")
            .and_then(|href| base.join(href.trim()).ok())
        else {
            continue;
        };
        if !alternate
            || !matches!(url.scheme(), "http" | "https")
            || found.iter().any(|f| f.url == url)
        {
            continue;
        }
        let title = element
            .attr("title")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        found.push(Advertised { url, kind, title });
    }
    // Stable: the page's own order within each kind (the main feed comes before the
    // comments feed on every blog engine).
    found.sort_by_key(|f| f.kind);
    found
}

/// [`FALLBACK_PATHS`] on the page's host.
pub fn fallback_urls(page_url: &Url) -> Vec<Url> {
    FALLBACK_PATHS
        .iter()
        .filter_map(|path| page_url.join(path).ok())
        .filter(|url| url != page_url)
        .collect()
}

/// Whether a page is a bot-protection challenge (Cloudflare, DDoS-Guard, a captcha)
/// rather than the site: worth telling apart, since no feed path will get past it.
pub fn is_challenge(page: &str) -> bool {
    const MARKERS: &[&str] = &[
        "<title>just a moment",
        "<title>attention required",
        "checking your browser",
        "cf-challenge",
        "challenge-platform",
        "__cf_chl_",
        "ddos-guard",
        "g-recaptcha",
        "h-captcha",
        "captcha-container",
    ];
    let lower = page.to_ascii_lowercase();
    MARKERS.iter().any(|marker| lower.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn links_of_every_feed_type_are_found_and_resolved() {
        let page = r#"<!doctype html><html><head>
            <link rel="stylesheet" type="text/css" href="/s.css">
            <link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/1">
            <link rel="alternate" type="application/atom+xml" href="atom.xml" title="Atom">
            <link rel="alternate" type="application/rss+xml" href="/rss.xml" title=" News ">
            <link rel="alternate" type="application/rss+xml" href="/comments/rss.xml">
            <link rel="alternate" type="application/feed+json" href="https://cdn.example/feed.json">
            <link rel="alternate" type="application/rss+xml" href="/rss.xml">
            <link rel="alternate" hreflang="de" type="text/html" href="/de/">
            <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
            </head><body></body></html>"#;
        let found = advertised_feeds(page, &url("https://news.example/section/page.html"));
        let urls: Vec<_> = found.iter().map(|f| (f.kind, f.url.as_str())).collect();
        assert_eq!(
            urls,
            [
                (FeedKind::Rss, "https://news.example/rss.xml"),
                (FeedKind::Rss, "https://news.example/comments/rss.xml"),
                (FeedKind::Atom, "https://news.example/section/atom.xml"),
                (FeedKind::JsonFeed, "https://cdn.example/feed.json"),
                (FeedKind::Json, "https://news.example/wp-json/wp/v2/pages/1"),
            ]
        );
        assert_eq!(found[0].title.as_deref(), Some("News"));
    }

    #[test]
    fn base_href_is_honoured() {
        let page = r#"<html><head><base href="https://static.example/blog/"><link rel="alternate feed" type="application/atom+xml; charset=utf-8" href="atom.xml"></head></html>"#;
        let found = advertised_feeds(page, &url("https://www.example/"));
        assert_eq!(
            found[0].url.as_str(),
            "https://static.example/blog/atom.xml"
        );
    }

    #[test]
    fn fallbacks_are_on_the_host_root() {
        let urls = fallback_urls(&url("https://site.example/news/today?x=1"));
        assert_eq!(urls[0].as_str(), "https://site.example/feed");
        assert_eq!(urls.len(), FALLBACK_PATHS.len());
    }

    #[test]
    fn html_is_told_from_feeds() {
        assert!(is_html(b"\n<!DOCTYPE html><html>", None));
        assert!(is_html(
            b"\xef\xbb\xbf<html lang=ru>",
            Some("application/rss+xml")
        ));
        assert!(is_html(
            b"<head><title>x</title>",
            Some("text/html; charset=utf-8")
        ));
        assert!(!is_html(b"<?xml version=\"1.0\"?><rss>", Some("text/html")));
        assert!(!is_html(b"<rss version=\"2.0\">", Some("text/html")));
        assert!(!is_html(
            b"{\"version\": \"https://jsonfeed.org/version/1.1\"}",
            Some("text/html")
        ));
        assert!(!is_html(
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\">",
            None
        ));
    }

    #[test]
    fn challenge_pages_are_recognized() {
        assert!(is_challenge(
            "<html><head><title>Just a moment...</title></head><body><div id=\"cf-challenge-running\"></div>"
        ));
        assert!(is_challenge(
            "<html><body><script src=\"https://check.ddos-guard.net/check.js\"></script>"
        ));
        assert!(!is_challenge(
            "<html><head><title>Новости</title></head><body><p>Hello</p>"
        ));
    }
}
