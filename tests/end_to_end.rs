//! The whole pipeline: a loopback publisher serving RSS 2.0, Atom, RSS 1.0 and a
//! KOI8-R feed (charset only in the HTTP header), the daemon polling it into a temp
//! store, and `/feed.xml` read back with the `rss` crate.

mod common;

use common::{FeedServer, RunningApp, config_with_interval, eventually, serve_river};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Newest first, over all four sources (UTC times of the fixtures).
const EXPECTED_TITLES: [&str; 10] = [
    "Talks resume in Geneva",       // 18:00, RSS 2.0
    "New compiler release",         // 17:00, Atom
    "Парк откроют после ремонта",   // 16:30, KOI8-R
    "Comet seen from Earth",        // 16:00, RSS 1.0
    "Markets steady",               // 14:00
    "Kernel notes",                 // 13:00
    "Cells that repair themselves", // 12:00
    "Storm warning for the coast",  // 10:00
    "Database tuning",              // 09:00
    "Antarctic ice cores",          // 08:00
];

fn config_text(server: &FeedServer, store: &std::path::Path) -> String {
    format!(
        r#"
[server]
# Self links name this URL, so the documents (and their ETags) do not depend on the
# port each run listens on.
public_url = "https://river.example/"

[store]
path = "{store}"
# The fixtures are dated February 2026: keep them whatever today's date.
max_age = "36500d"

[publish]
title = "Test river"
link = "https://river.example/"
max_items = 50

[[source]]
url = "{rss2}"
name = "World Wire"
tags = ["world"]

[[source]]
url = "{atom}"

[[source]]
url = "{rdf}"
name = "Science"

[[source]]
url = "{koi8}"
"#,
        store = store.display(),
        rss2 = server.url("/rss2.xml"),
        atom = server.url("/atom.xml"),
        rdf = server.url("/rss1.xml"),
        koi8 = server.url("/koi8.xml"),
    )
}

async fn get_feed(app: &RunningApp) -> (reqwest::header::HeaderMap, rss::Channel) {
    let response = reqwest::get(app.url("/feed.xml")).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    let channel = rss::Channel::read_from(&body[..]).expect("/feed.xml is well-formed RSS");
    (headers, channel)
}

fn titles(channel: &rss::Channel) -> Vec<String> {
    channel
        .items
        .iter()
        .map(|i| i.title.clone().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_merges_dedups_and_survives_a_restart() {
    let server = FeedServer::start().await;
    serve_river(&server);
    let store = tempfile::tempdir().unwrap();
    let text = config_text(&server, store.path());
    let app = RunningApp::start(config_with_interval(&text, Duration::from_millis(300))).await;

    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    // Every item present once, newest first, each attributed to its source.
    let channel = eventually(Duration::from_secs(15), || async {
        let (_, channel) = get_feed(&app).await;
        (channel.items.len() >= EXPECTED_TITLES.len()).then_some(channel)
    })
    .await;
    assert_eq!(channel.title, "Test river");
    assert_eq!(titles(&channel), EXPECTED_TITLES);
    let guids: HashSet<_> = channel
        .items
        .iter()
        .map(|i| i.guid.clone().unwrap().value)
        .collect();
    assert_eq!(guids.len(), EXPECTED_TITLES.len(), "guids are unique");
    for item in &channel.items {
        let source = item.source.as_ref().expect("every item has <source>");
        assert!(source.url.starts_with(&format!("http://{}/", server.addr)));
        assert!(item.pub_date.is_some() && item.link.is_some() && item.description.is_some());
    }
    let source_of = |title: &str| {
        let item = channel
            .items
            .iter()
            .find(|i| i.title.as_deref() == Some(title))
            .unwrap();
        let source = item.source.clone().unwrap();
        (source.url, source.title.unwrap())
    };
    assert_eq!(
        source_of("Talks resume in Geneva"),
        (server.url("/rss2.xml"), "World Wire".to_string())
    );
    // No name in the config: the feed's own title.
    assert_eq!(
        source_of("New compiler release"),
        (server.url("/atom.xml"), "Tech Log".to_string())
    );
    assert_eq!(source_of("Парк откроют после ремонта").1, "Вести по-русски");
    let talks = &channel.items[0];
    let categories: Vec<_> = talks.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(categories, ["Politics", "world"]);

    // Later polls are conditional, get 304s and add no duplicates.
    eventually(Duration::from_secs(15), || async {
        (server.not_modified() >= 8).then_some(())
    })
    .await;
    assert!(server.conditional() >= 8);
    let agents = server.state.user_agents.lock().unwrap().clone();
    assert!(
        agents.iter().all(|a| a.starts_with("tributary/")),
        "{agents:?}"
    );
    let (headers, channel) = get_feed(&app).await;
    assert_eq!(titles(&channel), EXPECTED_TITLES);

    // The ETag we were given gets a 304, and so does the Last-Modified.
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let client = reqwest::Client::new();
    let conditional = client
        .get(app.url("/feed.xml"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), 304);
    let last_modified = headers.get("last-modified").unwrap().to_str().unwrap();
    let by_date = client
        .get(app.url("/feed.xml"))
        .header("If-Modified-Since", last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), 304);
    app.stop().await;

    // A restart on the same store serves the same items at once, before any poll
    // could succeed (the publisher is now down), under the same ETag.
    server.state.failing.store(true, Ordering::SeqCst);
    let app = RunningApp::start(config_with_interval(&text, Duration::from_millis(300))).await;
    let (restarted_headers, channel) = get_feed(&app).await;
    assert_eq!(titles(&channel), EXPECTED_TITLES);
    assert_eq!(restarted_headers.get("etag").unwrap(), etag.as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_does_not_affect_the_others() {
    let server = FeedServer::start().await;
    serve_river(&server);
    server.route(
        "/broken.xml",
        b"<html><body>Checking your browser".to_vec(),
        "text/html",
    );
    let store = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[[source]]\nurl = \"{}\"\n[[source]]\nurl = \"{}\"\n",
        config_text(&server, store.path()),
        server.url("/broken.xml"),
        server.url("/missing.xml"),
    );
    let app = RunningApp::start(config_with_interval(&text, Duration::from_secs(3600))).await;
    let channel = eventually(Duration::from_secs(15), || async {
        let (_, channel) = get_feed(&app).await;
        (channel.items.len() >= EXPECTED_TITLES.len()).then_some(channel)
    })
    .await;
    assert_eq!(titles(&channel), EXPECTED_TITLES);
    // Wait until both bad sources have been tried, then read their status.
    eventually(Duration::from_secs(15), || async {
        (server.requests() >= 6).then_some(())
    })
    .await;
    app.stop().await;
    let store = tributary::store::Store::open(store.path()).unwrap();
    let status = |path: &str| {
        let id = tributary::item::SourceId(server.url(path));
        store.source_state(&id).unwrap()
    };
    let broken = status("/broken.xml");
    assert_eq!(broken.consecutive_failures, 1);
    assert!(
        broken
            .last_error
            .as_deref()
            .unwrap()
            .contains("bot-protection challenge page"),
        "{broken:?}"
    );
    let missing = status("/missing.xml");
    assert!(
        missing.last_error.as_deref().unwrap().contains("404"),
        "{missing:?}"
    );
    let healthy = status("/rss2.xml");
    assert_eq!(healthy.consecutive_failures, 0);
    assert!(healthy.etag.is_some() && healthy.last_success.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_items_on_start() {
    let server = FeedServer::start().await;
    serve_river(&server);
    let store = tempfile::tempdir().unwrap();
    let text = config_text(&server, store.path());
    let app = RunningApp::start(config_with_interval(&text, Duration::from_secs(3600))).await;
    eventually(Duration::from_secs(15), || async {
        let (_, channel) = get_feed(&app).await;
        (channel.items.len() == EXPECTED_TITLES.len()).then_some(())
    })
    .await;
    app.stop().await;

    // Restarted with a 30-day retention, the February items go within a second or two.
    let text = text.replace("max_age = \"36500d\"", "max_age = \"30d\"");
    let app = RunningApp::start(config_with_interval(&text, Duration::from_secs(3600))).await;
    eventually(Duration::from_secs(15), || async {
        let (_, channel) = get_feed(&app).await;
        channel.items.is_empty().then_some(())
    })
    .await;
    app.stop().await;
}

/// A diary (one page a day, an anchor per entry, no guids) and a podcast (every
/// episode links to the show's page): every entry is published, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_sharing_a_page_are_each_published() {
    let server = FeedServer::start().await;
    let rss = |items: String| {
        format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>F</title><link>https://f.example/</link>{items}</channel></rss>").into_bytes()
    };
    let diary = (1..=15)
        .map(|n| format!("<item><title>Diary {n}</title><link>https://diary.example/2006/01/01.html#p{n:02}</link><pubDate>Sun, 01 Jan 2006 {n:02}:00:00 GMT</pubDate></item>"))
        .collect();
    let podcast = (1..=15)
        .map(|n| format!("<item><title>Episode {n}</title><guid isPermaLink=\"false\">ep-{n}</guid><link>https://pod.example/show</link><pubDate>Mon, 02 Jan 2006 {n:02}:00:00 GMT</pubDate></item>"))
        .collect();
    server.route("/diary.xml", rss(diary), "application/rss+xml");
    server.route("/podcast.xml", rss(podcast), "application/rss+xml");
    let store = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\nmax_age = \"36500d\"\n[publish]\nmax_items = 100\n\
         [[source]]\nurl = \"{}\"\n[[source]]\nurl = \"{}\"\n",
        store.path().display(),
        server.url("/diary.xml"),
        server.url("/podcast.xml"),
    );
    let app = RunningApp::start(config_with_interval(&text, Duration::from_millis(300))).await;
    let channel = eventually(Duration::from_secs(15), || async {
        let (_, channel) = get_feed(&app).await;
        (channel.items.len() >= 30).then_some(channel)
    })
    .await;
    let titles: HashSet<String> = titles(&channel).into_iter().collect();
    assert_eq!(titles.len(), 30, "{titles:?}");
    assert!(titles.contains("Diary 7") && titles.contains("Episode 15"));
    // Later polls keep them all, once.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (_, channel) = get_feed(&app).await;
    assert_eq!(channel.items.len(), 30);
    app.stop().await;
}
