//! Polling against a misbehaving loopback publisher: conditional GET, Retry-After,
//! backoff, per-host caps, body caps, gzip bombs, trickling servers, redirects, 410,
//! outages and charsets. Each pass is `Scheduler::poll_once`, so nothing sleeps.

mod common;

use chrono::Utc;
use common::{
    FeedServer, Reply, fixture, latest_titles as titles, poll_config, poll_once,
    source_state as state,
};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tributary::config::Interval;
use tributary::item::{SourceId, SourceState};
use tributary::store::Store;

const HOUR: Duration = Duration::from_secs(3600);

/// How far ahead the next poll is, in whole minutes.
fn minutes_until_next_poll(state: &SourceState) -> i64 {
    (state.next_poll.unwrap() - Utc::now()).num_minutes()
}

#[tokio::test]
async fn an_unchanged_feed_costs_one_conditional_request_and_no_parse() {
    let server = FeedServer::start().await;
    server.route("/feed.xml", fixture("rss2.xml"), "application/rss+xml");
    let config = poll_config(&server, &["/feed.xml"], "");
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.ok, 1);
    assert_eq!(poll_once(&store, &config).await.ok, 1);
    assert_eq!(server.requests(), 2);
    assert_eq!(server.conditional(), 1);
    assert_eq!(server.not_modified(), 1);
    assert_eq!(store.latest(100).unwrap().len(), 3);
    let state = state(&store, &server, "/feed.xml");
    assert_eq!(state.consecutive_failures, 0);
    assert!(state.etag.is_some());
}

#[tokio::test]
async fn retry_after_is_honoured_in_both_forms() {
    let server = FeedServer::start().await;
    server.reply(
        "/seconds.xml",
        Reply::Status {
            status: 429,
            headers: vec![("Retry-After".into(), "7200".into())],
        },
    );
    let in_three_hours = (Utc::now() + chrono::Duration::hours(3))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    server.reply(
        "/date.xml",
        Reply::Status {
            status: 503,
            headers: vec![("Retry-After".into(), in_three_hours)],
        },
    );
    let config = poll_config(&server, &["/seconds.xml", "/date.xml"], "");
    let store = Store::temporary().unwrap();
    seed_recent_success(&store, &server);
    assert_eq!(poll_once(&store, &config).await.failed, 2);
    let seconds = minutes_until_next_poll(&state(&store, &server, "/seconds.xml"));
    assert!((107..=132).contains(&seconds), "{seconds} minutes");
    let date = minutes_until_next_poll(&state(&store, &server, "/date.xml"));
    assert!((160..=198).contains(&date), "{date} minutes");
}

/// Records a recent success of some other source, so failures here are the
/// source's and not taken for a network outage.
fn seed_recent_success(store: &Store, server: &FeedServer) {
    let healthy = SourceState {
        last_success: Some(Utc::now()),
        ..SourceState::default()
    };
    store
        .put_source_state(&SourceId(server.url("/healthy-elsewhere.xml")), &healthy)
        .unwrap();
}

#[tokio::test]
async fn failures_back_off_exponentially_and_a_success_resets() {
    let server = FeedServer::start().await;
    server.reply(
        "/flaky.xml",
        Reply::Status {
            status: 500,
            headers: vec![],
        },
    );
    let mut config = poll_config(&server, &["/flaky.xml", "/healthy-elsewhere.xml"], "");
    config.sources.truncate(1);
    let store = Store::temporary().unwrap();
    seed_recent_success(&store, &server);
    let mut waits = Vec::new();
    for failures in 1..=3 {
        poll_once(&store, &config).await;
        let state = state(&store, &server, "/flaky.xml");
        assert_eq!(state.consecutive_failures, failures);
        assert!(state.last_error.as_deref().unwrap().contains("500"));
        waits.push(minutes_until_next_poll(&state));
    }
    // 15, 30, 60 minutes, each ±10%.
    assert!((13..=16).contains(&waits[0]), "{waits:?}");
    assert!((26..=33).contains(&waits[1]), "{waits:?}");
    assert!((53..=66).contains(&waits[2]), "{waits:?}");

    server.route("/flaky.xml", fixture("rss2.xml"), "application/rss+xml");
    poll_once(&store, &config).await;
    let state = state(&store, &server, "/flaky.xml");
    assert_eq!(state.consecutive_failures, 0);
    assert_eq!(state.last_error, None);
    assert!((13..=16).contains(&minutes_until_next_poll(&state)));
}

#[tokio::test]
async fn a_network_outage_does_not_grow_backoff() {
    // Nothing listens on these ports: every connection is refused, and nothing ever
    // succeeded, so it is this machine's outage.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let text = format!(
        "[[source]]\nurl = \"http://{addr}/a.xml\"\n[[source]]\nurl = \"http://{addr}/b.xml\"\n"
    );
    let config = tributary::config::parse(Path::new("t.toml"), &text, None).unwrap();
    let store = Store::temporary().unwrap();
    for _ in 0..3 {
        assert_eq!(poll_once(&store, &config).await.failed, 2);
    }
    for source in &config.sources {
        let state = store.source_state(&source.id).unwrap();
        assert_eq!(state.consecutive_failures, 0, "{state:?}");
        assert!(
            state
                .last_error
                .as_deref()
                .unwrap()
                .contains("cannot reach")
        );
        assert!(minutes_until_next_poll(&state) <= 16);
    }
}

#[tokio::test]
async fn a_dead_server_is_not_an_outage_when_others_answer() {
    let server = FeedServer::start().await;
    server.route("/ok.xml", fixture("rss2.xml"), "application/rss+xml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let mut config = poll_config(&server, &["/ok.xml"], "");
    let store = Store::temporary().unwrap();
    poll_once(&store, &config).await;
    let mut dead_source = config.sources[0].clone();
    dead_source.url = url::Url::parse(&format!("http://{dead}/feed.xml")).unwrap();
    dead_source.id = SourceId(dead_source.url.to_string());
    config.sources.push(dead_source.clone());
    poll_once(&store, &config).await;
    let state = store.source_state(&dead_source.id).unwrap();
    assert_eq!(state.consecutive_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_host_cap_is_never_exceeded() {
    let server = FeedServer::start().await;
    server.state.latency_ms.store(100, Ordering::SeqCst);
    let paths: Vec<String> = (0..8).map(|i| format!("/f{i}.xml")).collect();
    for path in &paths {
        server.route(path, fixture("rss2.xml"), "application/rss+xml");
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let config = poll_config(&server, &refs, "per_host = 2\nconcurrency = 16");
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.ok, 8);
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 2);

    let config = poll_config(&server, &refs, "per_host = 8\nconcurrency = 3");
    server.state.max_in_flight.store(0, Ordering::SeqCst);
    poll_once(&Store::temporary().unwrap(), &config).await;
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn bodies_are_capped_after_decompression() {
    let server = FeedServer::start().await;
    server.route("/huge.xml", vec![b' '; 2 << 20], "application/rss+xml");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..32 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(
        bomb.len() < 100_000,
        "32 MiB of zeros compress to {} bytes",
        bomb.len()
    );
    server.reply("/bomb.xml", Reply::Gzipped { body: bomb });
    let config = poll_config(
        &server,
        &["/huge.xml", "/bomb.xml"],
        "max_body_bytes = 1048576",
    );
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.failed, 2);
    for path in ["/huge.xml", "/bomb.xml"] {
        let error = state(&store, &server, path).last_error.unwrap();
        assert!(
            error.contains("exceeds the cap of 1048576 bytes"),
            "{path}: {error}"
        );
    }
}

#[tokio::test]
async fn a_gzipped_feed_is_asked_for_and_read_as_it_inflates() {
    let server = FeedServer::start().await;
    let gzip = |text: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    };
    let document = rss(&[
        ("a", "http://t.example/a", 1),
        ("b", "http://t.example/b", 2),
    ]);
    let (head, tail) = document.split_at(document.len() / 2);
    // Two gzip members, as a server that compresses as it writes may send them.
    let mut members = gzip(head);
    members.extend(gzip(tail));
    server.reply(
        "/whole.xml",
        Reply::Gzipped {
            body: gzip(&document),
        },
    );
    server.reply("/members.xml", Reply::Gzipped { body: members });
    let cut = gzip(&document);
    let cut = cut[..cut.len() - 10].to_vec();
    server.reply("/cut.xml", Reply::Gzipped { body: cut });
    // Servers that say gzip of a plain file, or serve a gzipped one as it is.
    server.reply(
        "/said.xml",
        Reply::Gzipped {
            body: document.clone(),
        },
    );
    server.route("/unsaid.xml", gzip(&document), "application/rss+xml");
    let paths = ["/whole.xml", "/members.xml", "/said.xml", "/unsaid.xml"];
    let config = poll_config(&server, &[&paths[..], &["/cut.xml"]].concat(), "");
    let store = Store::temporary().unwrap();
    let report = poll_once(&store, &config).await;
    assert_eq!((report.ok, report.failed), (4, 1));
    for seen in server.state.seen_headers.lock().unwrap().iter() {
        let accepted = seen["accept-encoding"].to_str().unwrap();
        assert!(
            accepted.split(',').any(|coding| coding.trim() == "gzip"),
            "{accepted}"
        );
    }
    for path in paths {
        assert_eq!(state(&store, &server, path).last_error, None, "{path}");
    }
    assert_eq!(titles(&store).len(), 2, "the sources share their stories");
    let error = state(&store, &server, "/cut.xml").last_error.unwrap();
    assert!(
        error.contains("the gzipped body does not inflate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_trickling_server_is_cut_at_the_total_timeout() {
    let server = FeedServer::start().await;
    server.reply(
        "/trickle.xml",
        Reply::Trickle {
            every: Duration::from_millis(100),
            bytes: 100,
        },
    );
    let config = poll_config(&server, &["/trickle.xml"], "timeout = \"1s\"");
    let store = Store::temporary().unwrap();
    let started = std::time::Instant::now();
    assert_eq!(poll_once(&store, &config).await.failed, 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = state(&store, &server, "/trickle.xml").last_error.unwrap();
    assert!(error.contains("no complete response within 1s"), "{error}");
}

#[tokio::test]
async fn redirect_loops_and_long_chains_are_errors() {
    let server = FeedServer::start().await;
    let redirect = |to: &str| Reply::Redirect {
        status: 302,
        location: to.to_string(),
    };
    server.reply("/a.xml", redirect("/b.xml"));
    server.reply("/b.xml", redirect("/a.xml"));
    for i in 0..20 {
        server.reply(
            &format!("/chain{i}.xml"),
            redirect(&format!("/chain{}.xml", i + 1)),
        );
    }
    server.reply("/file.xml", redirect("file:///etc/passwd"));
    let config = poll_config(&server, &["/a.xml", "/chain0.xml", "/file.xml"], "");
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.failed, 3);
    let error = |path| state(&store, &server, path).last_error.unwrap();
    assert!(
        error("/a.xml").contains("redirect loop"),
        "{}",
        error("/a.xml")
    );
    assert!(error("/chain0.xml").contains("more than 5 redirects"));
    assert!(error("/file.xml").contains("cannot be followed"));
    assert_eq!(server.requests_for("/chain5.xml"), 1);
    assert_eq!(server.requests_for("/chain6.xml"), 0);
}

#[tokio::test]
async fn a_permanent_redirect_moves_the_source_after_three_polls() {
    let server = FeedServer::start().await;
    server.route("/new.xml", fixture("rss2.xml"), "application/rss+xml");
    server.reply(
        "/old.xml",
        Reply::Redirect {
            status: 301,
            location: "/new.xml".into(),
        },
    );
    server.reply(
        "/temp.xml",
        Reply::Redirect {
            status: 302,
            location: "/new.xml".into(),
        },
    );
    let config = poll_config(&server, &["/old.xml", "/temp.xml"], "");
    let store = Store::temporary().unwrap();
    for pass in 1..=3 {
        assert_eq!(poll_once(&store, &config).await.ok, 2);
        let moved = state(&store, &server, "/old.xml").effective_url;
        if pass < 3 {
            assert_eq!(moved, None, "pass {pass}");
        } else {
            assert_eq!(moved, Some(server.url("/new.xml")));
        }
    }
    assert_eq!(state(&store, &server, "/temp.xml").effective_url, None);
    // From now on the new address is polled directly.
    let before = server.requests_for("/old.xml");
    poll_once(&store, &config).await;
    assert_eq!(server.requests_for("/old.xml"), before);
}

#[tokio::test]
async fn gone_stops_polling_until_the_config_changes() {
    let server = FeedServer::start().await;
    server.reply(
        "/gone.xml",
        Reply::Status {
            status: 410,
            headers: vec![],
        },
    );
    let mut config = poll_config(&server, &["/gone.xml"], "");
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.gone, 1);
    assert_eq!(poll_once(&store, &config).await.gone, 1);
    assert_eq!(server.requests_for("/gone.xml"), 1);
    assert!(state(&store, &server, "/gone.xml").gone.is_some());
    // Editing the source's entry tries again.
    config.sources[0].interval = Interval::Fixed(2 * HOUR);
    assert_eq!(poll_once(&store, &config).await.gone, 1);
    assert_eq!(server.requests_for("/gone.xml"), 2);
}

#[tokio::test]
async fn pages_and_empty_bodies_are_clear_errors() {
    let server = FeedServer::start().await;
    server.route(
        "/challenge.xml",
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>".to_vec(),
        "text/html",
    );
    server.route("/empty.xml", Vec::new(), "application/rss+xml");
    let config = poll_config(&server, &["/challenge.xml", "/empty.xml"], "");
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.failed, 2);
    let challenge = state(&store, &server, "/challenge.xml").last_error.unwrap();
    assert!(
        challenge.contains("bot-protection challenge page instead of a feed"),
        "{challenge}"
    );
    let empty = state(&store, &server, "/empty.xml").last_error.unwrap();
    assert!(empty.starts_with("parse: not a feed"), "{empty}");
    assert!(
        store.latest(10).unwrap().is_empty(),
        "errors never become items"
    );
}

#[tokio::test]
async fn cyrillic_charsets_are_read_wherever_they_are_named() {
    let server = FeedServer::start().await;
    let cp1251 = fixture("windows-1251.xml"); // declares windows-1251
    let undeclared_cp1251 = {
        let text = encoding_rs::WINDOWS_1251.decode(&cp1251).0;
        let text = text.replace(" encoding=\"windows-1251\"", "");
        encoding_rs::WINDOWS_1251.encode(&text).0.into_owned()
    };
    let koi8 = fixture("koi8-r-http-charset.xml"); // declares nothing
    let declared_koi8 = {
        let text = encoding_rs::KOI8_R.decode(&koi8).0;
        let text = text.replace(
            "<?xml version=\"1.0\"?>",
            "<?xml version=\"1.0\" encoding=\"koi8-r\"?>",
        );
        encoding_rs::KOI8_R.encode(&text).0.into_owned()
    };
    let routes = [
        (
            "/cp1251-declared.xml",
            cp1251.clone(),
            "application/rss+xml",
        ),
        (
            "/cp1251-http.xml",
            undeclared_cp1251,
            "application/rss+xml; charset=windows-1251",
        ),
        (
            "/cp1251-blanket-utf8.xml",
            cp1251,
            "text/xml; charset=utf-8",
        ),
        (
            "/koi8-http.xml",
            koi8,
            "application/rss+xml; charset=koi8-r",
        ),
        ("/koi8-declared.xml", declared_koi8, "application/rss+xml"),
    ];
    for (path, body, content_type) in &routes {
        server.route(path, body.clone(), content_type);
    }
    // One store per document: the five carry the same two stories, which one store
    // would keep once each.
    for (path, _, _) in &routes {
        let config = poll_config(&server, &[path], "");
        let store = Store::temporary().unwrap();
        assert_eq!(poll_once(&store, &config).await.ok, 1, "{path}");
        let titles = titles(&store);
        assert_eq!(titles.len(), 1, "{path}");
        assert!(
            titles[0] == "Мэрия объявила о ремонте моста"
                || titles[0] == "Парк откроют после ремонта",
            "{path}: {}",
            titles[0]
        );
    }
}

#[tokio::test]
async fn request_options_reach_the_server() {
    let server = FeedServer::start().await;
    server.route("/private.xml", fixture("rss2.xml"), "application/rss+xml");
    let text = format!(
        "[[source]]\nurl = \"{}\"\nusername = \"reader\"\npassword = \"secret\"\nuser_agent = \"Custom/1.0\"\nheaders = {{ \"X-Api-Key\" = \"k123\" }}\n",
        server.url("/private.xml")
    );
    let config = tributary::config::parse(Path::new("t.toml"), &text, None).unwrap();
    poll_once(&Store::temporary().unwrap(), &config).await;
    let headers = server.state.seen_headers.lock().unwrap()[0].clone();
    assert_eq!(headers["user-agent"], "Custom/1.0");
    assert_eq!(headers["x-api-key"], "k123");
    // base64("reader:secret")
    assert_eq!(headers["authorization"], "Basic cmVhZGVyOnNlY3JldA==");
}

#[tokio::test]
async fn publisher_hints_lengthen_the_interval() {
    let server = FeedServer::start().await;
    let body = String::from_utf8(fixture("rss2.xml")).unwrap().replace(
        "<language>en</language>",
        "<language>en</language><ttl>120</ttl>",
    );
    server.route("/ttl.xml", body.into_bytes(), "application/rss+xml");
    let config = poll_config(&server, &["/ttl.xml"], "");
    let store = Store::temporary().unwrap();
    poll_once(&store, &config).await;
    let state = state(&store, &server, "/ttl.xml");
    assert_eq!(state.feed_hint, Some(2 * HOUR));
    let minutes = minutes_until_next_poll(&state);
    assert!((107..=132).contains(&minutes), "{minutes}");
}

#[tokio::test]
async fn a_source_stores_only_what_its_filters_keep() {
    let server = FeedServer::start().await;
    server.route("/wire.xml", fixture("rss2.xml"), "application/rss+xml");
    let text = format!(
        "[store]\nmax_age = \"36500d\"\n[[source]]\nurl = \"{}\"\ninclude = [\"(?i)^(talks|markets|storm)\"]\nexclude = [\"(?i)storm\"]\nfilter_on = \"title\"\n",
        server.url("/wire.xml")
    );
    let config = tributary::config::parse(std::path::Path::new("feeds.toml"), &text, None).unwrap();
    let store = Store::temporary().unwrap();
    assert_eq!(poll_once(&store, &config).await.ok, 1);
    let mut titles = titles(&store);
    titles.sort();
    assert_eq!(titles, ["Markets steady", "Talks resume in Geneva"]);
}

/// An RSS document of `items`: (id, link, day of January 2026).
fn rss(items: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut text = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title><link>http://t.example/</link>",
    );
    for (id, link, day) in items {
        text.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{id}</guid><title>{id}</title><link>{link}</link>\
<pubDate>{day:02} Jan 2026 12:00:00 GMT</pubDate></item>"
        ));
    }
    text.push_str("</channel></rss>");
    text.into_bytes()
}

#[tokio::test]
async fn a_source_item_count_follows_new_items_and_stories_taken_over() {
    let server = FeedServer::start().await;
    let config = poll_config(&server, &["/a.xml", "/b.xml"], "");
    let store = Store::temporary().unwrap();
    let metrics = std::sync::Arc::new(tributary::ops::metrics::Metrics::default());
    let poll = || async {
        tributary::scheduler::Scheduler {
            store: store.clone(),
            fetcher: tributary::fetch::Fetcher::new(&config.poll).unwrap(),
            sources: tributary::config::share(config.sources.clone()),
            poll: config.poll.clone(),
            metrics: metrics.clone(),
            health: Default::default(),
        }
        .poll_once()
        .await
    };
    let (a, b) = (
        SourceId(server.url("/a.xml")),
        SourceId(server.url("/b.xml")),
    );
    // The counts the metrics hold are the counts of the store.
    let check = |step: &str, want_a: u64, want_b: u64| {
        assert_eq!(store.count_items(&a).unwrap(), want_a, "{step}");
        assert_eq!(store.count_items(&b).unwrap(), want_b, "{step}");
        assert_eq!(metrics.source_items(&a), Some(want_a), "{step}");
        assert_eq!(metrics.source_items(&b), Some(want_b), "{step}");
    };
    let a_items = vec![
        ("a1", "http://a.example/1", 1),
        ("a2", "http://a.example/2", 2),
    ];
    server.route("/a.xml", rss(&a_items), "application/rss+xml");
    server.route(
        "/b.xml",
        rss(&[("b1", "http://shared.example/story", 20)]),
        "application/rss+xml",
    );
    assert_eq!(poll().await.ok, 2);
    check("first polls", 2, 1);
    // Unchanged: a 304 each, the counts stay.
    assert_eq!(poll().await.ok, 2);
    check("304s", 2, 1);
    // One new item, then two more.
    let mut a_items = a_items;
    a_items.push(("a3", "http://a.example/3", 3));
    server.route("/a.xml", rss(&a_items), "application/rss+xml");
    poll().await;
    check("one new item", 3, 1);
    a_items.push(("a4", "http://a.example/4", 4));
    a_items.push(("a5", "http://a.example/5", 5));
    server.route("/a.xml", rss(&a_items), "application/rss+xml");
    poll().await;
    check("two new items", 5, 1);
    // The first source publishes b's story with an earlier date: it takes it over, so
    // one source gains an item and the other loses one, however its count was kept.
    a_items.push(("a6", "http://shared.example/story", 6));
    server.route("/a.xml", rss(&a_items), "application/rss+xml");
    poll().await;
    assert_eq!(store.count_items(&a).unwrap(), 6);
    assert_eq!(metrics.source_items(&a), Some(6));
    assert_eq!(store.count_items(&b).unwrap(), 0);
}
