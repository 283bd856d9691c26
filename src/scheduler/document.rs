//! How a fetched body becomes a document: the part of a poll that the commands
//! `inspect` and `add` share with the scheduler. A feed source that answers with a
//! web page leads to the feed the page advertises (or one at a common path); then a
//! feed is normalized and a page (`kind = "html"`) scraped with its selectors. Both go
//! through here, so what a command shows is what the daemon would store.

use chrono_tz::Tz;
use url::Url;

use crate::config::SourceKind;
use crate::fetch::discover::{self, DiscoverError, Discovery, ResolveError, Resolved};
use crate::fetch::{FetchOutcome, Fetched, Fetcher, RequestOptions, Validators};
use crate::ingest::normalize::{Document, normalize_document};
use crate::ingest::parse::{ParseError, decode_html};
use crate::ingest::scrape::{ScrapeError, scrape};

/// Whether a source of `kind` got a web page where it expects a feed: then the feed
/// behind the page is looked for ([`feed_behind_page`]).
pub fn is_page_for_feed(kind: &SourceKind, fetched: &Fetched) -> bool {
    matches!(kind, SourceKind::Feed)
        && discover::is_html(&fetched.body, fetched.content_type.as_deref())
}

/// Finds the feed behind a fetched web page (see [`discover::discover`]), passing over
/// the feeds in `taken` (other sources already poll them).
pub async fn feed_behind_page(
    fetcher: &Fetcher,
    page: Fetched,
    request: &RequestOptions,
    taken: &[Url],
) -> Result<Discovery, DiscoverError> {
    let page_url = page.response.final_url.clone();
    let text = decode_html(&page.body, page.content_type.as_deref()).into_owned();
    drop(page);
    discover::discover(fetcher, &page_url, &text, request, taken).await
}

/// Fetches the feed at `url` without validators, as a command does; a web page leads
/// to the feed behind it.
pub async fn fetch_unconditionally(
    fetcher: &Fetcher,
    url: &Url,
    request: &RequestOptions,
) -> Result<Resolved, ResolveError> {
    let fetched = match fetcher.fetch(url, &Validators::default(), request).await? {
        FetchOutcome::Fetched(fetched) => fetched,
        FetchOutcome::NotModified(_) => return Err(ResolveError::NotModified),
    };
    if !is_page_for_feed(&SourceKind::Feed, &fetched) {
        return Ok(Resolved {
            feed_url: url.clone(),
            fetched,
            discovery: None,
        });
    }
    let found = feed_behind_page(fetcher, fetched, request, &[]).await?;
    Ok(Resolved {
        feed_url: found.feed_url,
        fetched: found.fetched,
        discovery: Some((found.via, found.advertised)),
    })
}

/// Why a body did not read as a document.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a feed that reads.
    #[error(transparent)]
    Parse(ParseError),
    /// A page the source's selectors cannot read.
    #[error(transparent)]
    Scrape(ScrapeError),
}

/// Reads a body as `kind` says: a feed is normalized, a page scraped with the source's
/// selectors. `url` is where the body came from: relative links resolve against it.
pub fn read(
    body: &[u8],
    content_type: Option<&str>,
    url: &Url,
    kind: &SourceKind,
    zone: Tz,
) -> Result<Document, ReadError> {
    match kind {
        SourceKind::Feed => {
            normalize_document(body, content_type, Some(url), zone).map_err(ReadError::Parse)
        }
        SourceKind::Html(rules) => {
            scrape(body, content_type, url, rules, zone).map_err(ReadError::Scrape)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Response;
    use crate::ingest::scrape::{Rules, RulesText};

    const PAGE: &[u8] =
        b"<!doctype html><html><body><ul class=\"news\"><li><a href=\"/one\">One</a></li></ul></body></html>";
    const RSS: &[u8] = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>\
<item><title>One</title><link>/one</link></item></channel></rss>";

    fn url() -> Url {
        Url::parse("https://a.example/news/").unwrap()
    }

    fn fetched(body: &[u8], content_type: &str) -> Fetched {
        Fetched {
            body: body.to_vec(),
            content_type: Some(content_type.to_string()),
            validators: Validators::default(),
            response: Response {
                final_url: url(),
                moved_permanently: None,
                fresh_for: None,
                content_location: None,
                links: None,
            },
        }
    }

    fn page_source() -> SourceKind {
        let rules = Rules::new(RulesText {
            item: ".news li".into(),
            title: "a".into(),
            link: "a".into(),
            ..RulesText::default()
        })
        .unwrap();
        SourceKind::Html(Box::new(rules))
    }

    #[test]
    fn only_a_feed_source_looks_behind_a_page() {
        assert!(is_page_for_feed(
            &SourceKind::Feed,
            &fetched(PAGE, "text/html")
        ));
        assert!(!is_page_for_feed(
            &SourceKind::Feed,
            &fetched(RSS, "application/rss+xml")
        ));
        assert!(!is_page_for_feed(
            &page_source(),
            &fetched(PAGE, "text/html")
        ));
    }

    #[test]
    fn a_feed_is_normalized_and_a_page_scraped_against_their_url() {
        let feed = read(RSS, None, &url(), &SourceKind::Feed, chrono_tz::UTC).unwrap();
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].link.as_deref(), Some("https://a.example/one"));
        let page = read(
            PAGE,
            Some("text/html"),
            &url(),
            &page_source(),
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(page.items[0].title.as_deref(), Some("One"));
        assert_eq!(page.items[0].link.as_deref(), Some("https://a.example/one"));
    }

    #[test]
    fn a_page_read_as_a_feed_is_a_parse_error() {
        let err = read(
            PAGE,
            Some("text/html"),
            &url(),
            &SourceKind::Feed,
            chrono_tz::UTC,
        );
        assert!(matches!(err, Err(ReadError::Parse(_))), "{err:?}");
    }
}
