//! Feed autodiscovery: a source whose URL is a web page is polled through the feed the
//! page advertises (RSS, Atom or JSON Feed `<link>`), or one at a common path; the
//! feed found is remembered in the source's state; a challenge page stays an error.

mod common;

use common::{
    FeedServer, Reply, fixture, latest_titles, poll_config, poll_once, source_state as state,
};
use tributary::config::Config;
use tributary::item::SourceId;
use tributary::store::Store;

/// A config with one source per path on `server`, its items kept for good.
fn config(server: &FeedServer, paths: &[&str]) -> Config {
    poll_config(server, paths, "[store]\nmax_age = \"36500d\"")
}

/// The titles in the store, sorted.
fn titles(store: &Store) -> Vec<String> {
    let mut titles = latest_titles(store);
    titles.sort();
    titles
}

fn page(head: &str) -> Vec<u8> {
    format!("<!DOCTYPE html>\n<html><head><title>Site</title>{head}</head><body><h1>Site</h1></body></html>").into_bytes()
}

const JSON_FEED: &str = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [{"id": "j1", "url": "https://json.example/1", "title": "From JSON Feed", "date_published": "2026-02-06T10:00:00Z"}]}"#;

#[tokio::test]
async fn each_kind_of_advertised_link_is_followed_and_remembered() {
    let server = FeedServer::start().await;
    server.route(
        "/feeds/news.rss",
        fixture("rss2.xml"),
        "application/rss+xml",
    );
    server.route("/feeds/atom", fixture("atom.xml"), "application/atom+xml");
    server.route(
        "/feed.json",
        JSON_FEED.as_bytes().to_vec(),
        "application/feed+json",
    );
    server.route(
        "/rss-site/",
        page(r#"<link rel="alternate" type="application/rss+xml" title="News" href="/feeds/news.rss">"#),
        "text/html; charset=utf-8",
    );
    server.route(
        "/atom-site/",
        page(r#"<base href="/feeds/"><link rel="alternate" type="application/atom+xml" href="atom">"#),
        "text/html",
    );
    server.route(
        "/json-site/",
        page(r#"<link rel="alternate" type="application/feed+json" href="../feed.json">"#),
        "text/html",
    );
    let config = config(&server, &["/rss-site/", "/atom-site/", "/json-site/"]);
    let store = Store::temporary().unwrap();

    let summary = poll_once(&store, &config).await;
    assert_eq!(summary.ok, 3, "{summary:?}");
    let rss = state(&store, &server, "/rss-site/");
    assert_eq!(rss.discovered_feed, Some(server.url("/feeds/news.rss")));
    assert_eq!(
        state(&store, &server, "/atom-site/").discovered_feed,
        Some(server.url("/feeds/atom"))
    );
    assert_eq!(
        state(&store, &server, "/json-site/").discovered_feed,
        Some(server.url("/feed.json"))
    );
    let stored = titles(&store);
    assert!(stored.contains(&"From JSON Feed".to_string()), "{stored:?}");
    let rss_items: Vec<_> = store
        .latest(100)
        .unwrap()
        .into_iter()
        .filter(|i| i.origin.source == SourceId(server.url("/rss-site/")))
        .collect();
    assert!(!rss_items.is_empty());
    // Readers are pointed at the feed, not the page.
    assert_eq!(rss_items[0].origin.url, server.url("/feeds/news.rss"));

    // From then on the feed is polled, not the page.
    let pages_before = server.requests_for("/rss-site/");
    let feeds_before = server.requests_for("/feeds/news.rss");
    poll_once(&store, &config).await;
    assert_eq!(server.requests_for("/rss-site/"), pages_before);
    assert_eq!(server.requests_for("/feeds/news.rss"), feeds_before + 1);
    assert_eq!(state(&store, &server, "/rss-site/").consecutive_failures, 0);
}

#[tokio::test]
async fn a_page_without_links_is_probed_at_common_paths() {
    let server = FeedServer::start().await;
    server.route("/", page(""), "text/html");
    server.route("/rss.xml", fixture("rss2.xml"), "application/rss+xml");
    // An earlier fallback path that answers with a page is not taken for a feed.
    server.route("/rss", page(""), "text/html");
    let config = config(&server, &["/"]);
    let store = Store::temporary().unwrap();
    let summary = poll_once(&store, &config).await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    assert_eq!(
        state(&store, &server, "/").discovered_feed,
        Some(server.url("/rss.xml"))
    );
    assert_eq!(server.requests_for("/feed"), 1);
    assert!(!titles(&store).is_empty());
}

#[tokio::test]
async fn a_page_with_no_feed_anywhere_is_a_clear_error() {
    let server = FeedServer::start().await;
    server.route("/", page(""), "text/html");
    let config = config(&server, &["/"]);
    let store = Store::temporary().unwrap();
    let summary = poll_once(&store, &config).await;
    assert_eq!(summary.failed, 1);
    let state = state(&store, &server, "/");
    let error = state.last_error.unwrap();
    assert!(
        error.contains("HTML page where a feed was expected"),
        "{error}"
    );
    assert!(error.contains("advertises no feed"), "{error}");
    assert_eq!(state.discovered_feed, None);
}

#[tokio::test]
async fn a_challenge_page_stays_an_error_and_probes_nothing() {
    let server = FeedServer::start().await;
    server.route(
        "/news/rss",
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><div id=\"cf-challenge-running\"></div></body></html>".to_vec(),
        "text/html",
    );
    let config = config(&server, &["/news/rss"]);
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.failed, 1);
    let error = state(&store, &server, "/news/rss").last_error.unwrap();
    assert!(error.contains("bot-protection challenge"), "{error}");
    assert_eq!(server.requests(), 1, "no fallback path was probed");
}

#[tokio::test]
async fn a_discovered_feed_that_disappears_sends_the_source_back_to_its_page() {
    let server = FeedServer::start().await;
    server.route(
        "/",
        page(r#"<link rel="alternate" type="application/rss+xml" href="/old.rss">"#),
        "text/html",
    );
    server.route("/old.rss", fixture("rss2.xml"), "application/rss+xml");
    let config = config(&server, &["/"]);
    let store = Store::temporary().unwrap();
    poll_once(&store, &config).await;
    assert_eq!(
        state(&store, &server, "/").discovered_feed,
        Some(server.url("/old.rss"))
    );

    // The site moves its feed: the old one answers 410, the page names the new one.
    server.reply(
        "/old.rss",
        Reply::Status {
            status: 410,
            headers: vec![],
        },
    );
    server.route(
        "/",
        page(r#"<link rel="alternate" type="application/atom+xml" href="/new.atom">"#),
        "text/html",
    );
    server.route("/new.atom", fixture("atom.xml"), "application/atom+xml");
    let summary = poll_once(&store, &config).await;
    assert_eq!(
        summary.failed, 1,
        "a 410 of a discovered feed is not the source's: {summary:?}"
    );
    let failed = state(&store, &server, "/");
    assert_eq!(failed.discovered_feed, None);
    assert_eq!(failed.gone, None);
    let summary = poll_once(&store, &config).await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    assert_eq!(
        state(&store, &server, "/").discovered_feed,
        Some(server.url("/new.atom"))
    );
}

#[tokio::test]
async fn a_feed_already_configured_is_not_discovered_again() {
    let server = FeedServer::start().await;
    server.route("/", page(""), "text/html");
    server.route("/rss.xml", fixture("rss2.xml"), "application/rss+xml");
    server.route(
        "/blog/",
        page(r#"<link rel="alternate" type="application/rss+xml" href="/rss.xml">"#),
        "text/html",
    );
    let config = config(&server, &["/", "/blog/", "/rss.xml"]);
    let store = Store::temporary().unwrap();
    let summary = poll_once(&store, &config).await;
    assert_eq!((summary.ok, summary.failed), (1, 2), "{summary:?}");
    let probed = state(&store, &server, "/").last_error.unwrap();
    assert!(probed.contains("advertises no feed"), "{probed}");
    let advertised = state(&store, &server, "/blog/").last_error.unwrap();
    assert!(
        advertised.contains("already polled as a source of its own"),
        "{advertised}"
    );
    assert_eq!(store.latest(100).unwrap().len(), 3, "the feed's items once");
}
