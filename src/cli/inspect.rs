//! `inspect`: fetch (or read) one feed or page and print it as the daemon would
//! store it, with what was found behind a web page.

use crate::config::{self, SourceKind};
use crate::fetch::discover;
use crate::fetch::{FetchOutcome, Fetcher, RequestOptions, Validators};
use crate::ingest::normalize::{Document, normalize_document};
use crate::scheduler::document;
use anyhow::Context;
use url::Url;

pub(super) fn inspect(target: &str, json: bool, zone: chrono_tz::Tz) -> anyhow::Result<()> {
    let (document, discovery) = if target.starts_with("http://") || target.starts_with("https://") {
        inspect_url(target, zone)?
    } else {
        let body = std::fs::read(target).with_context(|| format!("reading {target}"))?;
        let base = std::path::absolute(target)
            .ok()
            .and_then(|p| Url::from_file_path(p).ok());
        if discover::is_html(&body, None) {
            let page = crate::ingest::parse::decode_html(&body, None);
            let advertised = base
                .as_ref()
                .map(|base| discover::advertised_feeds(&page, base))
                .unwrap_or_default();
            anyhow::bail!("{target}: {}", page_without_feed(&advertised));
        }
        let document = normalize_document(&body, None, base.as_ref(), zone)
            .with_context(|| target.to_string())?;
        (document, None)
    };
    if json {
        let mut value = serde_json::to_value(&document)?;
        if let Some(discovery) = &discovery {
            value["discovery"] = serde_json::to_value(discovery)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        if let Some(discovery) = &discovery {
            print_discovery(discovery);
        }
        print_summary(&document);
    }
    Ok(())
}

/// What `inspect` found behind a web page.
#[derive(serde::Serialize)]
struct FoundBehindPage {
    page: Url,
    feed: Url,
    via: discover::Via,
    advertised: Vec<discover::Advertised>,
}

fn print_discovery(found: &FoundBehindPage) {
    println!("{} is a web page", found.page);
    if found.advertised.is_empty() {
        println!(
            "  it advertises no feed; found one at a common path: {}",
            found.feed
        );
    } else {
        println!("  it advertises {} feed(s):", found.advertised.len());
        for feed in &found.advertised {
            let title = feed
                .title
                .as_deref()
                .map(|t| format!("  \"{t}\""))
                .unwrap_or_default();
            println!("    {:9}  {}{title}", feed.kind.to_string(), feed.url);
        }
        println!("  inspecting {}", found.feed);
    }
    println!();
}

/// The error for a local page: files cannot be probed, so only its links can help.
fn page_without_feed(advertised: &[discover::Advertised]) -> String {
    if advertised.is_empty() {
        return "not a feed but an HTML page that advertises none; inspect the site's URL to probe common feed paths, or try selectors with --item, --title and --link".to_string();
    }
    let list: Vec<_> = advertised
        .iter()
        .map(|feed| format!("{} ({})", feed.url, feed.kind))
        .collect();
    format!(
        "not a feed but an HTML page; it advertises {}; inspect one of those",
        list.join(", ")
    )
}

fn inspect_url(
    target: &str,
    zone: chrono_tz::Tz,
) -> anyhow::Result<(Document, Option<FoundBehindPage>)> {
    let url = Url::parse(target).with_context(|| format!("`{target}` is not a valid URL"))?;
    let fetcher = Fetcher::new(&config::PollConfig::default())?;
    let (resolved, document) = fetch_feed(&fetcher, &url, zone)?;
    let found = resolved.discovery.map(|(via, advertised)| FoundBehindPage {
        page: url,
        feed: resolved.feed_url,
        via,
        advertised,
    });
    Ok((document, found))
}

/// Fetches `url` (following a web page to the feed it advertises) and normalizes the
/// feed, as a poll of a feed source does: what both `inspect` and `add` check before
/// they report or write anything.
pub(super) fn fetch_feed(
    fetcher: &Fetcher,
    url: &Url,
    zone: chrono_tz::Tz,
) -> anyhow::Result<(discover::Resolved, Document)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resolved = runtime
        .block_on(document::fetch_unconditionally(
            fetcher,
            url,
            &RequestOptions::for_url(url),
        ))
        .with_context(|| url.to_string())?;
    let fetched = &resolved.fetched;
    let document = document::read(
        &fetched.body,
        fetched.content_type.as_deref(),
        fetched.response.base(),
        &SourceKind::Feed,
        zone,
    )
    .with_context(|| resolved.feed_url.to_string())?;
    Ok((resolved, document))
}

/// Fetches a page (or reads a file) and prints the items `rules` find on it, as a
/// poll of a kind = "html" source does.
pub(super) fn inspect_page(
    target: &str,
    json: bool,
    zone: chrono_tz::Tz,
    rules: crate::ingest::scrape::Rules,
    base_url: Option<Url>,
) -> anyhow::Result<()> {
    let kind = SourceKind::Html(Box::new(rules));
    let (body, content_type, url) = if target.starts_with("http://")
        || target.starts_with("https://")
    {
        let url = Url::parse(target).with_context(|| format!("`{target}` is not a valid URL"))?;
        let fetcher = Fetcher::new(&config::PollConfig::default())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // A page is read where it is: no feed is looked for behind it.
        let fetched = match runtime
            .block_on(fetcher.fetch(&url, &Validators::default(), &RequestOptions::for_url(&url)))
            .with_context(|| target.to_string())?
        {
            FetchOutcome::Fetched(fetched) => fetched,
            FetchOutcome::NotModified(_) => {
                anyhow::bail!("{target}: server answered 304 to an unconditional request")
            }
        };
        (
            fetched.body,
            fetched.content_type,
            fetched.response.base().clone(),
        )
    } else {
        let body = std::fs::read(target).with_context(|| format!("reading {target}"))?;
        let url = match base_url {
            Some(url) => url,
            None => std::path::absolute(target)
                .ok()
                .and_then(|p| Url::from_file_path(p).ok())
                .with_context(|| format!("{target}: cannot make a file URL of it"))?,
        };
        (body, None, url)
    };
    let document = document::read(&body, content_type.as_deref(), &url, &kind, zone)
        .with_context(|| target.to_string())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print_summary(&document);
    }
    Ok(())
}

fn print_summary(document: &Document) {
    let feed = &document.feed;
    println!("{}", feed.title.as_deref().unwrap_or("(untitled feed)"));
    if let Some(link) = &feed.link {
        println!("{link}");
    }
    println!("{} items", document.items.len());
    for item in &document.items {
        let date = item.published.or(item.updated).map_or_else(
            || "no date".to_string(),
            |d| d.format("%Y-%m-%d %H:%M").to_string(),
        );
        println!(
            "  {date:16}  {}",
            item.title.as_deref().unwrap_or("(untitled)")
        );
        if let Some(link) = &item.link {
            println!("  {:16}  {link}", "");
        }
    }
}
