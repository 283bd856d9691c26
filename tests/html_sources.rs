//! `kind = "html"` sources: a Russian news site's article page with a "Новости" block
//! of ten time-stamped headlines, in UTF-8 and in windows-1251, read with selectors,
//! merged beside an ordinary RSS source by the real daemon; and a page whose markup
//! changes, which fails the source but keeps its items.

mod common;

use common::{FeedServer, RunningApp, config_with_interval, eventually, fixture, windows_1251};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tributary::fetch::Fetcher;
use tributary::item::SourceId;
use tributary::scheduler::Scheduler;
use tributary::store::Store;

/// The block's headlines: Moscow time stamp, headline, path of the story.
const HEADLINES: [(&str, &str, &str); 10] = [
    (
        "22:20 06.02.2026",
        "Госдума приняла закон о цифровых платформах",
        "/news/2026/02/06/platforms/",
    ),
    (
        "21:40 06.02.2026",
        "В Москве ожидается сильный снегопад",
        "/news/2026/02/06/snow/",
    ),
    (
        "20:55 06.02.2026",
        "ЦБ сохранил ключевую ставку",
        "/news/2026/02/06/rate/",
    ),
    (
        "19:30 06.02.2026",
        "«Зенит» обыграл «Спартак» в товарищеском матче",
        "/sport/2026/02/06/derby/",
    ),
    (
        "18:05 06.02.2026",
        "Аэрофлот возобновил рейсы в Калининград",
        "/news/2026/02/06/flights/",
    ),
    (
        "17:45 06.02.2026",
        "Учёные МГУ представили новый сплав",
        "/science/2026/02/06/alloy/",
    ),
    (
        "16:10 06.02.2026",
        "Курс рубля на торгах вырос",
        "/economy/2026/02/06/ruble/",
    ),
    (
        "15:00 06.02.2026",
        "В Эрмитаже открылась выставка Серова",
        "/culture/2026/02/06/serov/",
    ),
    (
        "13:25 06.02.2026",
        "Метро продлит работу в праздничные дни",
        "/news/2026/02/06/metro/",
    ),
    (
        "11:50 06.02.2026",
        "Синоптики пообещали потепление к выходным",
        "/news/2026/02/06/weather/",
    ),
];

/// The same times in UTC (Moscow is UTC+3 all year).
const UTC_TIMES: [&str; 10] = [
    "2026-02-06T19:20:00Z",
    "2026-02-06T18:40:00Z",
    "2026-02-06T17:55:00Z",
    "2026-02-06T16:30:00Z",
    "2026-02-06T15:05:00Z",
    "2026-02-06T14:45:00Z",
    "2026-02-06T13:10:00Z",
    "2026-02-06T12:00:00Z",
    "2026-02-06T10:25:00Z",
    "2026-02-06T08:50:00Z",
];

/// An article page as such sites build them: a menu, the article, and the "Новости"
/// sidebar with each headline preceded by its time stamp. `charset` goes in the
/// `<meta>`; the headline links are relative.
fn article_page(charset: &str) -> String {
    let mut news = String::new();
    for (stamp, title, path) in HEADLINES {
        news.push_str(&format!(
            "      <li class=\"news-item\">\n        <span class=\"news-date\">{stamp}</span>\n        <a class=\"news-link\" href=\"{path}\">{title}</a>\n      </li>\n"
        ));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="ru">
<head>
  <meta http-equiv="Content-Type" content="text/html; charset={charset}">
  <title>Правительство обсудило бюджет — Вести Примера</title>
</head>
<body>
  <nav><a href="/">Главная</a> <a href="/news/">Новости</a> <a href="/sport/">Спорт</a></nav>
  <article>
    <h1>Правительство обсудило бюджет</h1>
    <p>Текст статьи со <a href="/news/2026/02/05/old/">ссылкой</a> на другой материал.</p>
  </article>
  <aside class="sidebar">
    <h2>Новости</h2>
    <ul class="news-list">
{news}    </ul>
  </aside>
</body>
</html>
"#
    )
}

const SELECTORS: &str = r#"kind = "html"
timezone = "Europe/Moscow"
[source.selectors]
item = "aside .news-list li.news-item"
title = "a.news-link"
link = "a.news-link"
date = ".news-date"
date_format = "%H:%M %d.%m.%Y"
"#;

async fn feed_json(app: &RunningApp) -> Value {
    let body = reqwest::get(app.url("/feed.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_news_block_is_read_in_both_charsets_and_merged_newest_first() {
    let server = FeedServer::start().await;
    server.route(
        "/politics/2026/02/06/budget/",
        article_page("utf-8").into_bytes(),
        "text/html; charset=utf-8",
    );
    // The 1251 site says so only in its <meta>. A site of its own: the same story at
    // the same address would be stored once, under the source that had it first.
    let site_1251 = FeedServer::start().await;
    site_1251.route(
        "/old-site/article.html",
        windows_1251(&article_page("windows-1251")),
        "text/html",
    );
    server.route("/rss2.xml", fixture("rss2.xml"), "application/rss+xml");
    let store = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\nmax_age = \"36500d\"\n\n[[source]]\nurl = \"{}\"\nname = \"World Wire\"\n\n[[source]]\nurl = \"{}\"\nname = \"Вести\"\n{SELECTORS}\n[[source]]\nurl = \"{}\"\nname = \"Вести 1251\"\n{SELECTORS}",
        store.path().display(),
        server.url("/rss2.xml"),
        server.url("/politics/2026/02/06/budget/"),
        site_1251.url("/old-site/article.html"),
    );
    let app = RunningApp::start(config_with_interval(&text, Duration::from_secs(3600))).await;
    let feed = eventually(Duration::from_secs(15), || {
        let app = &app;
        async move {
            let feed = feed_json(app).await;
            (feed["items"].as_array()?.len() >= 20).then_some(feed)
        }
    })
    .await;
    let items = feed["items"].as_array().unwrap();

    for (source, site) in [("Вести", &server), ("Вести 1251", &site_1251)] {
        let base = format!("http://{}", site.addr);
        let scraped: Vec<&Value> = items
            .iter()
            .filter(|i| i["_source"]["name"] == source)
            .collect();
        assert_eq!(scraped.len(), 10, "{source}: {scraped:?}");
        for (item, ((_, title, path), time)) in scraped.iter().zip(HEADLINES.iter().zip(UTC_TIMES))
        {
            assert_eq!(item["title"], *title, "{source}");
            assert_eq!(item["url"], format!("{base}{path}"), "{source}");
            assert_eq!(item["date_published"], time, "{source}: {title}");
        }
    }
    // Newest first across all sources, the RSS items among the scraped ones.
    let dates: Vec<&str> = items
        .iter()
        .map(|i| i["date_published"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted);
    let rss_at = items
        .iter()
        .position(|i| i["title"] == "Talks resume in Geneva")
        .expect("the RSS item is merged");
    assert!(rss_at > 0 && rss_at < items.len() - 1, "{dates:?}");
    assert!(
        !items
            .iter()
            .any(|i| i["title"] == "ссылкой" || i["title"] == "Главная"),
        "only the news block is read"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_page_that_changes_its_markup_fails_the_source_and_keeps_its_items() {
    let server = FeedServer::start().await;
    server.route("/", article_page("utf-8").into_bytes(), "text/html");
    let text = format!("[[source]]\nurl = \"{}\"\n{SELECTORS}", server.url("/"));
    let config = tributary::config::parse(Path::new("test.toml"), &text, None).unwrap();
    let store = Store::temporary().unwrap();
    let poll = || Scheduler {
        store: store.clone(),
        fetcher: Fetcher::new(&config.poll).unwrap(),
        sources: tributary::config::share(config.sources.clone()),
        poll: config.poll.clone(),
        metrics: Default::default(),
        health: Default::default(),
    };
    assert_eq!(poll().poll_once().await.ok, 1);
    assert_eq!(store.latest(100).unwrap().len(), 10);

    // The redesign: the list becomes a <div> of cards.
    let redesigned = article_page("utf-8")
        .replace("<ul class=\"news-list\">", "<div class=\"feed-cards\">")
        .replace("</ul>", "</div>")
        .replace("li class=\"news-item\"", "div class=\"card\"")
        .replace("</li>", "</div>");
    server.route("/", redesigned.into_bytes(), "text/html");
    assert_eq!(poll().poll_once().await.failed, 1);
    let state = store.source_state(&SourceId(server.url("/"))).unwrap();
    assert_eq!(
        state.last_error.as_deref(),
        Some("page: selector `item` (`aside .news-list li.news-item`) matched 0 elements")
    );
    assert_eq!(state.consecutive_failures, 1);
    assert_eq!(store.latest(100).unwrap().len(), 10, "the old items stay");

    // Items whose links moved to another attribute: the error says which rule broke.
    let no_links = article_page("utf-8").replace(
        "class=\"news-link\" href=",
        "class=\"news-link\" data-href=",
    );
    server.route("/", no_links.into_bytes(), "text/html");
    poll().poll_once().await;
    let state = store.source_state(&SourceId(server.url("/"))).unwrap();
    let error = state.last_error.unwrap();
    assert!(error.contains("found no `href` link"), "{error}");
    assert!(!error.contains("matched 0"), "{error}");
}
