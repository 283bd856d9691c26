//! The binary on web pages: `inspect` with selectors and on a page that advertises a
//! feed, and `add` (comments kept, autodiscovery followed, duplicates refused).

use crate::common::{FeedServer, fixture, windows_1251, write_config};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// [`crate::common::tributary`] off the runtime's thread, so the feed server on it
/// can answer the binary.
async fn tributary(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::common::tributary(&args)
    })
    .await
    .unwrap()
}

const NEWS_PAGE: &str = r#"<!DOCTYPE html><html><head><meta charset="windows-1251"><title>Вести</title>
<link rel="alternate" type="application/rss+xml" title="Все новости" href="/rss2.xml"></head><body>
<div class="lenta"><h2>Новости</h2>
<div class="row"><span class="t">22:20 06.02.2026</span> <a href="/news/1/">Первая</a></div>
<div class="row"><span class="t">21:05 06.02.2026</span> <a href="/news/2/">Вторая</a></div>
</div></body></html>"#;

fn news_page_1251() -> Vec<u8> {
    windows_1251(NEWS_PAGE)
}

fn selector_args(target: &str) -> Vec<&str> {
    vec![
        "inspect",
        target,
        "--item",
        ".lenta .row",
        "--title",
        "a",
        "--link",
        "a",
        "--date",
        ".t",
        "--date-format",
        "%H:%M %d.%m.%Y",
        "--timezone",
        "Europe/Moscow",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_tries_selectors_on_a_live_page_and_a_file() {
    let server = FeedServer::start().await;
    server.route("/news/", news_page_1251(), "text/html");
    let url = server.url("/news/");

    let mut args = selector_args(&url);
    args.push("--json");
    let out = tributary(&args).await;
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["title"], "Первая");
    assert_eq!(items[0]["link"], server.url("/news/1/"));
    assert_eq!(items[0]["published"], "2026-02-06T19:20:00Z");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.html");
    std::fs::write(&file, news_page_1251()).unwrap();
    let mut args = selector_args(file.to_str().unwrap());
    args.extend(["--base-url", "https://vesti.example/news/"]);
    let out = tributary(&args).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("2 items"), "{stdout}");
    assert!(stdout.contains("2026-02-06 19:20  Первая"), "{stdout}");
    assert!(stdout.contains("https://vesti.example/news/1/"), "{stdout}");

    // Selectors that match nothing say so, and fail.
    let out = tributary(&[
        "inspect",
        &url,
        "--item",
        "ul.news li",
        "--title",
        "a",
        "--link",
        "a",
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("selector `item` (`ul.news li`) matched 0 elements"),
        "{stderr}"
    );
    // --item needs --title and --link.
    let out = tributary(&["inspect", &url, "--item", "li"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_on_a_page_says_what_it_advertises_and_reads_the_feed() {
    let server = FeedServer::start().await;
    server.route("/news/", news_page_1251(), "text/html");
    server.route("/rss2.xml", fixture("rss2.xml"), "application/rss+xml");
    let out = tributary(&["inspect", &server.url("/news/")]).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("is a web page"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "RSS        {}  \"Все новости\"",
            server.url("/rss2.xml")
        )),
        "{stdout}"
    );
    assert!(stdout.contains("World Wire"), "{stdout}");
    assert!(stdout.contains("Talks resume in Geneva"), "{stdout}");

    let out = tributary(&["inspect", &server.url("/news/"), "--json"]).await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["discovery"]["feed"], server.url("/rss2.xml"));
    assert_eq!(doc["discovery"]["advertised"][0]["kind"], "rss");
}

const CONFIG: &str = "# My sources, kept by hand.\n\n[store]\nmax_age = \"36500d\" # keep the archive\n\n# World news\n[[source]]\nurl = \"https://world.example/rss\"\nname = \"World\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_follows_discovery_keeps_comments_and_refuses_duplicates() {
    let server = FeedServer::start().await;
    server.route("/news/", news_page_1251(), "text/html");
    server.route("/rss2.xml", fixture("rss2.xml"), "application/rss+xml");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), CONFIG);
    let config = path.to_str().unwrap();

    let out = tributary(&[
        "add",
        &server.url("/news/"),
        "--name",
        "Вести",
        "--tag",
        "ru",
        "--tag",
        "news",
        "--config",
        config,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("adding {}", server.url("/rss2.xml"))),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!(
            "{CONFIG}\n[[source]]\nurl = \"{}\"\nname = \"Вести\"\ntags = [\"ru\", \"news\"]\n",
            server.url("/rss2.xml")
        )
    );
    let check = tributary(&["check", "--config", config]).await;
    assert!(check.status.success(), "{check:?}");

    // The page again, or the feed itself: both are already there.
    for again in [server.url("/news/"), server.url("/rss2.xml")] {
        let out = tributary(&["add", &again, "--config", config]).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("already a source"), "{stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_refuses_bad_urls_pages_without_feeds_and_invalid_configs() {
    let server = FeedServer::start().await;
    server.route(
        "/plain/",
        b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(),
        "text/html",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), CONFIG);
    let config = path.to_str().unwrap();

    let out = tributary(&["add", "not a url", "--config", config]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("is not an http(s) URL")
    );

    let out = tributary(&["add", &server.url("/plain/"), "--config", config]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("advertises no feed"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG);

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[source]]\nurl = 5\n").unwrap();
    let out = tributary(&[
        "add",
        &server.url("/plain/"),
        "--config",
        broken.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(78));
    assert!(Path::new(&broken).exists());
}

/// The commented html-source example at the end of `feeds.toml` is valid once
/// uncommented, so it can be copied as it stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commented_html_example_is_valid() {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds.toml")).unwrap();
    let start = example
        .rfind("# [[source]]")
        .expect("the html example is there");
    let uncommented: String = example[start..]
        .lines()
        .map(|line| format!("{}\n", line.trim_start_matches("# ")))
        .collect();
    assert!(uncommented.contains("kind = \"html\""), "{uncommented}");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &uncommented);
    let out = tributary(&["check", "--config", path.to_str().unwrap()]).await;
    assert!(out.status.success(), "{uncommented}\n{out:?}");
}
