//! Every output format read back by independent parsers: feed-rs (Rust) and Python's
//! feedparser (what many readers are built on), the JSON Feed against its required
//! fields, the HTML page for order and local times, the OPML list for every source.
//!
//! feedparser runs as `python3 tests/feedparser_check.py` on the served bytes. When
//! feedparser is missing, the tests install it once with pip into the build's temporary
//! directory; without python3 they fail and say so (a skip would only hide a gap).

mod common;

use common::{Expected, RIVER, River, python};

/// What `feedparser_check.py` prints.
#[derive(serde::Deserialize, Debug)]
struct Parsed {
    bozo: bool,
    bozo_exception: String,
    version: String,
    title: Option<String>,
    #[serde(rename = "self")]
    self_links: Vec<Option<String>>,
    entries: Vec<ParsedEntry>,
}

#[derive(serde::Deserialize, Debug)]
struct ParsedEntry {
    title: Option<String>,
    link: Option<String>,
    published: Option<i64>,
    source_title: Option<String>,
    source_href: Option<String>,
}

impl Parsed {
    /// The entries' titles, in document order.
    fn titles(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| e.title.as_deref())
            .collect()
    }
}

/// Fetches `path` and reads it with feedparser (well-formed, of `version`) and with
/// feed-rs; returns both readings.
async fn read_view(river: &River, path: &str, version: &str) -> (Parsed, feed_rs::model::Feed) {
    let (content_type, body) = get(&river.app.url(path)).await;
    let parsed = feedparser(&body, &content_type);
    assert!(!parsed.bozo, "{path}: {}", parsed.bozo_exception);
    assert_eq!(parsed.version, version, "{path}");
    let feed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{path}: feed-rs: {e}"));
    (parsed, feed)
}

async fn get(url: &str) -> (String, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.bytes().await.unwrap().to_vec())
}

fn feedparser(body: &[u8], content_type: &str) -> Parsed {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc");
    std::fs::write(&file, body).unwrap();
    let stdout = python::run_script(
        "feedparser_check.py",
        [file.as_os_str(), content_type.as_ref()],
    );
    serde_json::from_slice(&stdout).expect("feedparser_check.py prints JSON")
}

/// Checks feedparser's reading against the ingested river.
fn assert_feedparser_matches(parsed: &Parsed, river: &River, format: &str) {
    assert!(
        !parsed.bozo,
        "{format}: feedparser finds the document malformed: {}",
        parsed.bozo_exception
    );
    assert_eq!(parsed.entries.len(), RIVER.len(), "{format}: item count");
    for (entry, expected) in parsed.entries.iter().zip(&RIVER) {
        assert_eq!(entry.title.as_deref(), Some(expected.title), "{format}");
        assert_eq!(entry.link.as_deref(), Some(expected.link), "{format}");
        assert_eq!(
            entry.published,
            Some(expected.time),
            "{format}: {}",
            expected.title
        );
        assert_eq!(
            entry.source_title.as_deref(),
            Some(expected.source_name),
            "{format}"
        );
        assert_eq!(
            entry.source_href.as_deref(),
            Some(river.server.url(expected.source_path).as_str()),
            "{format}"
        );
    }
}

/// Checks every item's `<source>` against the ingested river. feed-rs (3.0) does not
/// read `<source>` at all, so the RSS and Atom documents are read back here with the
/// readers of the crates that wrote them; JSON's `_source` is checked in
/// [`check_json_feed`].
fn assert_sources_match(body: &[u8], river: &River, format: &str) {
    let sources: Vec<(String, Option<String>)> = match format {
        "rss" => rss::Channel::read_from(body)
            .unwrap()
            .items
            .into_iter()
            .map(|item| {
                let source = item.source.expect("every item has a <source>");
                (source.url, source.title)
            })
            .collect(),
        "atom" => atom_syndication::Feed::read_from(body)
            .unwrap()
            .entries
            .into_iter()
            .map(|entry| {
                let source = entry.source.expect("every entry has a <source>");
                let href = source
                    .links
                    .iter()
                    .find(|l| l.rel == "self")
                    .map(|l| l.href.clone());
                assert_eq!(href.as_deref(), Some(source.id.as_str()), "{format}");
                (source.id, Some(source.title.value))
            })
            .collect(),
        _ => unreachable!("{format}"),
    };
    let expected: Vec<(String, Option<String>)> = RIVER
        .iter()
        .map(|e| {
            (
                river.server.url(e.source_path),
                Some(e.source_name.to_string()),
            )
        })
        .collect();
    assert_eq!(sources, expected, "{format}: sources");
}

/// Checks feed-rs's reading against the ingested river.
fn assert_feed_rs_matches(body: &[u8], format: &str) -> feed_rs::model::Feed {
    let feed = feed_rs::parser::parse(body).unwrap_or_else(|e| panic!("{format}: feed-rs: {e}"));
    assert_eq!(feed.entries.len(), RIVER.len(), "{format}: item count");
    for (entry, expected) in feed.entries.iter().zip(&RIVER) {
        assert_eq!(
            entry.title.as_ref().map(|t| t.content.as_str()),
            Some(expected.title),
            "{format}"
        );
        assert_eq!(entry.links[0].href, expected.link, "{format}");
        assert_eq!(
            entry.published.map(|p| p.timestamp()),
            Some(expected.time),
            "{format}: {}",
            expected.title
        );
    }
    feed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_read_back_in_feed_rs_and_feedparser() {
    let river = River::start(
        "[server]\nhostnames = [\"news.example:8080\"]\n[publish]\ntitle = \"Test river\"\nlanguage = \"en\"\n",
    )
    .await;
    let host = river.app.addr.to_string();

    // RSS 2.0, with the request's Host in the self link (no public_url is set).
    let (content_type, rss) = get(&river.app.url("/feed.xml")).await;
    assert_eq!(content_type, "application/rss+xml; charset=utf-8");
    let parsed = feedparser(&rss, &content_type);
    assert_eq!(parsed.version, "rss20");
    assert_eq!(parsed.title.as_deref(), Some("Test river"));
    assert_eq!(parsed.self_links, [Some(format!("http://{host}/feed.xml"))]);
    assert_feedparser_matches(&parsed, &river, "rss");
    let feed = assert_feed_rs_matches(&rss, "rss");
    assert_sources_match(&rss, &river, "rss");
    assert_eq!(feed.language.as_deref(), Some("en"));
    let channel = rss::Channel::read_from(&rss[..]).unwrap();
    assert!(
        channel.ttl.is_some() && channel.generator.is_some() && channel.last_build_date.is_some()
    );

    // Atom 1.0: every entry names its origin in <source>.
    let (content_type, atom) = get(&river.app.url("/atom.xml")).await;
    assert_eq!(content_type, "application/atom+xml; charset=utf-8");
    let parsed = feedparser(&atom, &content_type);
    assert_eq!(parsed.version, "atom10");
    assert_eq!(parsed.self_links, [Some(format!("http://{host}/atom.xml"))]);
    assert_feedparser_matches(&parsed, &river, "atom");
    assert_feed_rs_matches(&atom, "atom");
    assert_sources_match(&atom, &river, "atom");

    // JSON Feed 1.1: no feedparser release reads it, so the script reads it with
    // Python's json module against the 1.1 required fields (sources included, from
    // the `_source` extension).
    let (content_type, json) = get(&river.app.url("/feed.json")).await;
    assert_eq!(content_type, "application/feed+json; charset=utf-8");
    let parsed = feedparser(&json, &content_type);
    assert_eq!(parsed.version, "json11");
    assert_eq!(
        parsed.self_links,
        [Some(format!("http://{host}/feed.json"))]
    );
    assert_feedparser_matches(&parsed, &river, "json");
    assert_feed_rs_matches(&json, "json");
    check_json_feed(&json, &river, &format!("http://{host}/feed.json"));

    // The same river under one of its `hostnames` links to itself under that name.
    let other = reqwest::Client::new()
        .get(river.app.url("/feed.xml"))
        .header("Host", "news.example:8080")
        .send()
        .await
        .unwrap();
    let other = rss::Channel::read_from(&other.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(
        other.extensions["atom"]["link"][0].attrs["href"],
        "http://news.example:8080/feed.xml"
    );
    assert_eq!(other.items.len(), RIVER.len());
    river.app.stop().await;
}

/// JSON Feed 1.1's required fields (version, title, items; per item id and content),
/// the optional ones we promise, and each item's `_source`.
fn check_json_feed(body: &[u8], river: &River, self_url: &str) {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(doc["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(doc["title"], "Test river");
    assert_eq!(doc["feed_url"], self_url);
    assert!(doc["home_page_url"].is_string());
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), RIVER.len());
    for (item, expected) in items.iter().zip(&RIVER) {
        assert!(item["id"].is_string(), "id is a string: {item}");
        assert!(
            item["content_html"].is_string() || item["content_text"].is_string(),
            "content: {item}"
        );
        assert_eq!(item["title"], expected.title);
        assert_eq!(item["url"], expected.link);
        let published =
            chrono::DateTime::parse_from_rfc3339(item["date_published"].as_str().unwrap()).unwrap();
        assert_eq!(published.timestamp(), expected.time);
        assert_eq!(item["_source"]["name"], expected.source_name);
        assert_eq!(
            item["_source"]["url"],
            river.server.url(expected.source_path)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_names_every_self_link_and_views_parse() {
    let river = River::start(
        "[server]\npublic_url = \"https://news.example.org/river\"\n[publish]\ntitle = \"Test river\"\n",
    )
    .await;

    let (_, rss) = get(&river.app.url("/feed.xml")).await;
    let channel = rss::Channel::read_from(&rss[..]).unwrap();
    assert_eq!(
        channel.extensions["atom"]["link"][0].attrs["href"],
        "https://news.example.org/river/feed.xml"
    );
    assert_eq!(channel.link, "https://news.example.org/river/");

    // A tag view: the items of the sources tagged `news` (World Wire and Science),
    // in every feed format.
    let in_news: Vec<&Expected> = RIVER
        .iter()
        .filter(|e| matches!(e.source_name, "World Wire" | "Science"))
        .collect();
    for (path, version) in [
        ("/tags/news.xml", "rss20"),
        ("/tags/news.atom", "atom10"),
        ("/tags/news.json", "json11"),
    ] {
        let (parsed, feed) = read_view(&river, path, version).await;
        let expected: Vec<_> = in_news.iter().map(|e| e.title).collect();
        assert_eq!(parsed.titles(), expected, "{path}");
        assert_eq!(feed.entries.len(), in_news.len(), "{path}");
    }
    let (_, body) = get(&river.app.url("/tags/news.xml")).await;
    let channel = rss::Channel::read_from(&body[..]).unwrap();
    assert_eq!(
        channel.extensions["atom"]["link"][0].attrs["href"],
        "https://news.example.org/river/tags/news.xml"
    );
    assert_eq!(channel.title, "Test river — news");

    // A source view, found through the OPML list, and a limit.
    let (content_type, opml) = get(&river.app.url("/opml")).await;
    assert_eq!(content_type, "text/x-opml; charset=utf-8");
    let opml = String::from_utf8(opml).unwrap();
    let slug = tributary::item::SourceId(river.server.url("/atom.xml")).slug();
    assert!(opml.contains(&format!("tributaryId=\"{slug}\"")), "{opml}");
    let (_, body) = get(&river.app.url(&format!("/sources/{slug}.xml?limit=2"))).await;
    let channel = rss::Channel::read_from(&body[..]).unwrap();
    let titles: Vec<_> = channel
        .items
        .iter()
        .filter_map(|i| i.title.as_deref())
        .collect();
    assert_eq!(titles, ["New compiler release", "Kernel notes"]);
    assert_eq!(channel.title, "Test river — Tech Log");
    // The same source in every feed format, read by feedparser and feed-rs.
    let tech_log: Vec<&str> = RIVER
        .iter()
        .filter(|e| e.source_name == "Tech Log")
        .map(|e| e.title)
        .collect();
    for (suffix, version) in [("xml", "rss20"), ("atom", "atom10"), ("json", "json11")] {
        let path = format!("/sources/{slug}.{suffix}");
        let (parsed, feed) = read_view(&river, &path, version).await;
        assert_eq!(
            parsed.self_links,
            [Some(format!("https://news.example.org/river{path}"))]
        );
        assert_eq!(parsed.titles(), tech_log, "{path}");
        for entry in &parsed.entries {
            assert_eq!(entry.source_title.as_deref(), Some("Tech Log"), "{path}");
            assert_eq!(
                entry.source_href.as_deref(),
                Some(river.server.url("/atom.xml").as_str()),
                "{path}"
            );
        }
        let titles: Vec<_> = feed
            .entries
            .iter()
            .filter_map(|e| e.title.as_ref().map(|t| t.content.as_str()))
            .collect();
        assert_eq!(titles, tech_log, "{path}: feed-rs");
    }
    let (_, body) = get(&river.app.url("/feed.json?limit=3")).await;
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        doc["feed_url"],
        "https://news.example.org/river/feed.json?limit=3"
    );
    river.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_page_lists_every_item_in_order_in_local_time() {
    let river = River::start(
        "[publish]\ntitle = \"News <& more>\"\ntimezone = \"Europe/Moscow\"\nlanguage = \"ru\"\n",
    )
    .await;
    let (content_type, html) = get(&river.app.url("/")).await;
    assert_eq!(content_type, "text/html; charset=utf-8");
    let html = String::from_utf8(html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"ru\">"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("<title>News &lt;&amp; more&gt;</title>"));
    for (mime, href) in [
        ("application/rss+xml", "feed.xml"),
        ("application/atom+xml", "atom.xml"),
        ("application/feed+json", "feed.json"),
    ] {
        assert!(
            html.contains(&format!("<link rel=\"alternate\" type=\"{mime}\""))
                && html.contains(&format!("href=\"{href}\">")),
            "autodiscovery of {href}"
        );
    }
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(html.contains("<h2>Friday, 6 February 2026</h2>"));
    // Every item, in order, with its Moscow time, its link and its source.
    let mut at = 0;
    for expected in &RIVER {
        let line = format!(
            "{}</time><a href=\"{}\"><bdi>{}</bdi></a><span class=\"src\"><bdi>{}</bdi></span>",
            expected.moscow, expected.link, expected.title, expected.source_name
        );
        let found = html[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("{line} after byte {at} in\n{html}"));
        at += found + line.len();
    }
    // Every source is listed with its own view.
    for path in ["/rss2.xml", "/atom.xml", "/rss1.xml", "/koi8.xml"] {
        let slug = tributary::item::SourceId(river.server.url(path)).slug();
        assert!(
            html.contains(&format!("href=\"sources/{slug}.xml\"")),
            "{path}"
        );
    }
    assert!(html.contains("Times are Europe/Moscow."));
    river.app.stop().await;
}

/// A title that is text about markup, read back by feedparser: in RSS and Atom it is
/// HTML (`text/html`) whose text is the title, never a tag; a title HTML reads as
/// itself stays plain.
#[test]
fn feedparser_reads_a_title_about_markup_as_text() {
    use tributary::item::{Item, ItemId, Origin, SourceId, StoredItem};
    let time = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let stored = |n: u32, title: &str| StoredItem {
        origin: Origin {
            source: SourceId("https://a.example/feed".into()),
            name: "<i>Wire</i>".into(),
            url: "https://a.example/feed".into(),
            tags: Vec::new(),
        },
        item: Item {
            id: ItemId(format!("https://a.example/{n}")),
            title: Some(title.into()),
            link: Some(format!("https://a.example/{n}")),
            published: Some(time),
            updated: None,
            summary: Some("<p>s</p>".into()),
            content: None,
            authors: Vec::new(),
            categories: Vec::new(),
            enclosures: Vec::new(),
            comments: None,
        },
        first_seen: time,
        timestamp: time,
    };
    let items = [
        stored(1, "History of the <blink> tag <img src=x onerror=alert(1)>"),
        stored(2, "Tom & Jerry <3"),
    ];
    let info = tributary::render::FeedInfo {
        title: "River".into(),
        description: "d".into(),
        link: "https://river.example/".into(),
        self_url: "https://river.example/feed.xml".into(),
        language: "en".into(),
        ttl_minutes: 15,
        hubs: Vec::new(),
    };
    for (format, content_type, bytes) in [
        (
            "RSS",
            "application/rss+xml",
            tributary::render::render_rss(&items, &info),
        ),
        (
            "Atom",
            "application/atom+xml",
            tributary::render::render_atom(&items, &info),
        ),
    ] {
        let parsed = feedparser(&bytes, content_type);
        assert!(!parsed.bozo, "{format}: {}", parsed.bozo_exception);
        assert_eq!(
            parsed.titles(),
            [
                "History of the &lt;blink&gt; tag &lt;img src=x onerror=alert(1)&gt;",
                "Tom & Jerry <3"
            ],
            "{format}"
        );
        assert_eq!(
            parsed.entries[0].source_title.as_deref(),
            Some("&lt;i&gt;Wire&lt;/i&gt;"),
            "{format}"
        );
    }
}
