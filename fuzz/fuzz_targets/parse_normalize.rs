//! Fetched bytes → items → published documents, the poller's path for one body: charset
//! decoding and feed-rs (`parse`), normalization, the source's include/exclude rules,
//! the store's place in time, and the RSS, Atom and JSON Feed renderers. The source
//! config and the fetch time are fixed; the first input byte picks the Content-Type
//! the server "sent", the rest is the body.
//!
//! feed-rs is known to panic on some hostile documents; `parse_feed` contains those
//! panics (DEPENDENCIES.md), so a panic raised inside feed-rs called from `parse_feed`
//! is not a finding here. Any other panic aborts, as libFuzzer expects.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;
use tributary::config::{self, SourceConfig};
use tributary::ingest::normalize::normalize_document;
use tributary::item::{Origin, StoredItem};
use tributary::render::{self, FeedInfo};
use tributary::store::timestamp_for;
use url::Url;

/// What a server might say the body is.
const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/rss+xml; charset=utf-8"),
    Some("text/xml; charset=windows-1251"),
    Some("application/feed+json"),
    Some("text/xml; charset=\"UTF-16\""),
    Some("application/atom+xml; charset=koi8-r"),
];

const CONFIG: &str = r#"
[[source]]
url = "http://127.0.0.1:1/feed.xml"
name = "Fuzzed"
tags = ["news"]
timezone = "Europe/Moscow"
exclude = ["sponsored"]
"#;

static SOURCE: LazyLock<SourceConfig> = LazyLock::new(|| {
    let config = config::parse(Path::new("feeds.toml"), CONFIG, None).expect("the config is valid");
    config.sources.into_iter().next().expect("one source")
});

static INFO: LazyLock<FeedInfo> = LazyLock::new(|| FeedInfo {
    title: "River".into(),
    description: "fuzz".into(),
    link: "http://127.0.0.1:8080/".into(),
    self_url: "http://127.0.0.1:8080/feed.xml".into(),
    language: "en".into(),
    ttl_minutes: 15,
    // A hub, so the renderers write the hub links too.
    hubs: vec!["http://127.0.0.1:8080/hub".into()],
});

fuzz_target!(
    init: {
        // Let panics inside feed-rs (and the quick-xml it calls) reach parse_feed's
        // catch_unwind; every other panic goes to libFuzzer's hook, which aborts. Told
        // apart by the stack, captured only when something panics.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let stack = std::backtrace::Backtrace::force_capture().to_string();
            // The closure parse_feed hands to catch_unwind is on the stack.
            if !stack.contains("AssertUnwindSafe<tributary::ingest::parse::parse_feed::") {
                abort(info);
            }
        }));
        LazyLock::force(&SOURCE);
    },
    |data: &[u8]| {
        let Some((&selector, body)) = data.split_first() else {
            return;
        };
        let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
        let source = &*SOURCE;
        let url = Url::parse("http://127.0.0.1:1/feed.xml").expect("valid URL");
        let Ok(document) = normalize_document(body, content_type, Some(&url), source.timezone)
        else {
            return;
        };
        let now: DateTime<Utc> = DateTime::from_timestamp(1_780_000_000, 0).expect("in range");
        let origin = Origin {
            source: source.id.clone(),
            name: "Fuzzed".into(),
            url: source.url.to_string(),
            tags: source.tags.clone(),
        };
        let stored: Vec<StoredItem> = document
            .items
            .into_iter()
            .filter(|item| source.filter.keeps(item))
            .map(|item| StoredItem {
                origin: origin.clone(),
                timestamp: timestamp_for(&item, now),
                first_seen: now,
                item,
            })
            .collect();
        let _ = render::render_rss(&stored, &INFO);
        let _ = render::render_atom(&stored, &INFO);
        let _ = render::render_json(&stored, &INFO);
    }
);
