//! Thousands of sources: `/sources.json` and `/sources` a page at a time (and
//! `tributary sources` walking the pages), `/metrics` summing sources instead of
//! listing them past the threshold, and a reload of a file with thousands of sources.

mod common;

use common::daemon::{self, Daemon};
use common::{FeedServer, RunningApp, config_with_interval, tributary, write_config};
use std::time::{Duration, Instant};
use tributary::ops::listing::Listing;

const SOURCES: usize = 2500;

/// `[[source]]` tables for feeds `range` on `server` (answered 404: their polls are
/// quick failures).
fn sources(server: &FeedServer, range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            format!(
                "[[source]]\nurl = \"{}\"\n",
                server.url(&format!("/f/{i}.xml"))
            )
        })
        .collect()
}

async fn get(url: &str) -> (u16, Option<String>, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_string());
    (status, link, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_come_a_page_at_a_time_and_metrics_are_summed() {
    let server = FeedServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "[store]\npath = \"{}\"\n[poll]\nper_host = 32\nconcurrency = 32\n",
        dir.path().join("store").display()
    );
    let text = format!("{head}{}", sources(&server, 0..SOURCES));
    let config = config_with_interval(&text, Duration::from_secs(3600));
    let slugs: Vec<String> = config.sources.iter().map(|s| s.id.slug()).collect();
    let app = RunningApp::start(config).await;

    // The first page: the default 100, the count of all, a link to the next.
    let (status, link, body) = get(&app.url("/sources.json")).await;
    assert_eq!(status, 200);
    let first = Listing::from_json(body.as_bytes()).unwrap();
    assert_eq!(first.sources.len(), 100);
    assert_eq!(first.total, Some(SOURCES));
    let next = format!("sources.json?limit=100&after={}", slugs[99]);
    assert_eq!(first.next.as_deref(), Some(next.as_str()));
    assert_eq!(link, Some(format!("<{next}>; rel=\"next\"")));

    // Walked with the largest pages, every source once, in config order.
    let mut url = reqwest::Url::parse(&app.url("/sources.json?limit=1000")).unwrap();
    let (mut seen, mut pages) = (Vec::new(), 0);
    loop {
        let (status, _, body) = get(url.as_str()).await;
        assert_eq!(status, 200, "{body}");
        let page = Listing::from_json(body.as_bytes()).unwrap();
        pages += 1;
        seen.extend(page.sources.into_iter().map(|s| s.id));
        match page.next {
            Some(next) => url = url.join(&next).unwrap(),
            None => break,
        }
        assert!(pages < 10, "the pages do not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, slugs);

    for bad in [
        "/sources.json?limit=1001",
        "/sources.json?after=0000",
        "/sources?limit=0",
    ] {
        assert_eq!(get(&app.url(bad)).await.0, 400, "{bad}");
    }
    let (status, link, html) = get(&app.url(&format!("/sources?after={}", slugs[99]))).await;
    assert_eq!(status, 200);
    assert!(html.contains("2500 sources"), "{html}");
    assert!(html.contains("101–200 of 2500"), "{html}");
    let next = format!("sources?limit=100&amp;after={}", slugs[199]);
    assert!(
        html.contains(&format!("<a rel=\"next\" href=\"{next}\">")),
        "{html}"
    );
    assert_eq!(
        link,
        Some(format!(
            "<sources?limit=100&after={}>; rel=\"next\"",
            slugs[199]
        ))
    );
    assert!(html.matches("<tr>").count() <= 101);

    // Past 1000 sources, /metrics sums them: no series per source.
    let (_, _, metrics) = get(&app.url("/metrics")).await;
    assert!(
        !metrics.contains("source=\""),
        "per-source series in /metrics"
    );
    assert!(
        metrics.contains(&format!("tributary_sources {SOURCES}\n")),
        "{metrics}"
    );
    assert!(metrics.len() < 16 * 1024, "{} bytes", metrics.len());

    // `tributary sources` walks the daemon's pages.
    let config = write_config(
        dir.path(),
        &format!("[server]\nlisten = \"{}\"\n{text}", app.addr),
    );
    let out = tokio::task::spawn_blocking(move || {
        tributary(&["sources", "--json", "--config", config.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listing = Listing::from_json(&out.stdout).unwrap();
    let ids: Vec<String> = listing.sources.into_iter().map(|s| s.id).collect();
    assert_eq!(ids, slugs);
    app.stop().await;
}

#[test]
fn a_reload_of_thousands_of_sources_applies_the_difference() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FeedServer::start());
    let dir = tempfile::tempdir().unwrap();
    let text = |range, extra: &str| {
        daemon::config_text(
            dir.path(),
            &format!(
                "[poll]\ninterval = \"1h\"\nper_host = 32\nconcurrency = 32\n{extra}{}",
                sources(&server, range)
            ),
        )
    };
    let config = write_config(dir.path(), &text(0..3000, ""));
    let daemon = Daemon::start(&config);
    daemon.wait_for_log("scheduler started", Duration::from_secs(30));

    // A thousand removed, a thousand added, two thousand kept.
    std::fs::write(&config, text(1000..4000, "")).unwrap();
    let mark = daemon.log().len();
    let sent = Instant::now();
    daemon.signal(libc::SIGHUP);
    let line = daemon.wait_for_log_after(mark, "sources reloaded", Duration::from_secs(30));
    let took = sent.elapsed();
    for field in ["added=1000", "removed=1000", "changed=0", "sources=3000"] {
        assert!(line.contains(field), "{line}");
    }
    // Generous for a debug build on a busy machine; a release build takes well under
    // a tenth of this with 100 000 sources.
    assert!(took < Duration::from_secs(10), "the reload took {took:?}");
    let sources = daemon.get("/sources.json?limit=1");
    assert!(sources.contains("\"total\": 3000"), "{sources}");
    assert!(daemon.stop(Duration::from_secs(15)).success());
}
