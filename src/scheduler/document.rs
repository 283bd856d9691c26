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

/// Fetches `url` without validators, as a command does; for a feed source, a web page
/// leads to the feed behind it.
pub async fn fetch_unconditionally(
    fetcher: &Fetcher,
    url: &Url,
    request: &RequestOptions,
    kind: &SourceKind,
) -> Result<Resolved, ResolveError> {
    let fetched = match fetcher.fetch(url, &Validators::default(), request).await? {
        FetchOutcome::Fetched(fetched) => fetched,
        FetchOutcome::NotModified(_) => return Err(ResolveError::NotModified),
    };
    if !is_page_for_feed(kind, &fetched) {
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
