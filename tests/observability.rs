//! The operator's endpoints on a real daemon: `/readyz`, `/metrics`, `/sources` and
//! `/sources.json`, against a loopback feed server with a healthy, a failing and a
//! gone source.

mod common;

use common::{FeedServer, Reply, RunningApp, config_with_interval, eventually, fixture};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Items in `rss2.xml`.
const WIRE_ITEMS: u64 = 3;

struct Daemon {
    server: FeedServer,
    app: RunningApp,
    _store: tempfile::TempDir,
}

impl Daemon {
    /// The daemon polling `/wire.xml` (ok), `/broken.xml` (500) and `/retired.xml`
    /// (410) every `interval`.
    async fn start(interval: Duration, latency_ms: usize) -> Daemon {
        Daemon::start_on(
            FeedServer::start().await,
            tempfile::tempdir().unwrap(),
            interval,
            latency_ms,
        )
        .await
    }

    /// As [`Daemon::start`], with `server` and the store in `store` (a warm one after
    /// a former run).
    async fn start_on(
        server: FeedServer,
        store: tempfile::TempDir,
        interval: Duration,
        latency_ms: usize,
    ) -> Daemon {
        server.route("/wire.xml", fixture("rss2.xml"), "application/rss+xml");
        server.reply(
            "/broken.xml",
            Reply::Status {
                status: 500,
                headers: vec![],
            },
        );
        server.reply(
            "/retired.xml",
            Reply::Status {
                status: 410,
                headers: vec![],
            },
        );
        server.state.latency_ms.store(latency_ms, Ordering::SeqCst);
        let text = format!(
            r#"[publish]
title = "Ops <test>"

[store]
path = "{}"
max_age = "36500d"

[[source]]
url = "{}"
name = "World Wire"
tags = ["world"]

[[source]]
url = "{}"
name = "Broken"

[[source]]
url = "{}"
"#,
            store.path().display(),
            server.url("/wire.xml"),
            server.url("/broken.xml"),
            server.url("/retired.xml"),
        );
        let app = RunningApp::start(config_with_interval(&text, interval)).await;
        Daemon {
            server,
            app,
            _store: store,
        }
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let response = reqwest::get(self.app.url(path)).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    async fn wait_ready(&self) {
        let url = self.app.url("/readyz");
        eventually(Duration::from_secs(15), || {
            let url = url.clone();
            async move {
                let response = reqwest::get(&url).await.ok()?;
                (response.status() == 200).then_some(())
            }
        })
        .await;
    }
}

#[tokio::test]
async fn readyz_waits_for_the_first_poll_cycle() {
    // Every answer of the feed server takes 1.5 s: the first cycle cannot be over yet.
    let daemon = Daemon::start(Duration::from_secs(3600), 1500).await;
    let (status, _, body) = daemon.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body, "sources new to the store have not been polled yet\n");
    // Alive all the same.
    assert_eq!(daemon.get("/healthz").await.0, 200);
    daemon.wait_ready().await;
    let (status, _, body) = daemon.get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    // Every source had its first poll.
    assert_eq!(daemon.server.requests(), 3);
    daemon.app.stop().await;
}

#[tokio::test]
async fn a_restart_on_a_warm_store_is_ready_before_any_source_falls_due() {
    let daemon = Daemon::start(Duration::from_secs(3600), 0).await;
    daemon.wait_ready().await;
    let polled = daemon.server.requests();
    assert_eq!(polled, 3);
    let Daemon {
        server,
        app,
        _store,
    } = daemon;
    app.stop().await;
    // Again on the same store: every source was polled a moment ago and is due in an
    // hour (the failing one later still, the gone one never); every answer would
    // now take 5 s.
    let started = std::time::Instant::now();
    let daemon = Daemon::start_on(server, _store, Duration::from_secs(3600), 5000).await;
    daemon.wait_ready().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Ready with no source polled, and serving what the store holds.
    assert_eq!(daemon.server.requests(), polled);
    let (status, _, feed) = daemon.get("/feed.xml").await;
    assert_eq!(status, 200);
    assert_eq!(feed.matches("<item>").count() as u64, WIRE_ITEMS);
    daemon.app.stop().await;
}

/// Checks `text` line by line against the OpenMetrics text format: comments are
/// HELP, TYPE or UNIT of a declared family, every sample belongs to a family declared
/// before it, label sets are well formed, values are numbers, and `# EOF` ends it.
/// Returns the samples as (name, labels, value).
fn strict_parse(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "the exposition ends with # EOF"
    );
    assert!(text.ends_with('\n'));
    let mut families: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next().unwrap(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("bad comment `{line}`"));
            assert!(name_ok(name), "bad family name in `{line}`");
            match kind {
                "TYPE" => {
                    let kind = rest.unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "info", "unknown"].contains(&kind),
                        "`{line}`"
                    );
                    families.insert(name.to_string(), kind.to_string());
                }
                "HELP" | "UNIT" => assert!(rest.is_some_and(|r| !r.is_empty()), "`{line}`"),
                _ => panic!("unexpected comment `{line}`"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in `{line}`"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in `{line}`"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in `{line}`"));
                let mut labels = HashMap::new();
                for pair in inner.split("\",") {
                    let (key, value) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label in `{line}`"));
                    assert!(name_ok(key), "bad label name in `{line}`");
                    labels.insert(key.to_string(), value.trim_end_matches('"').to_string());
                }
                (name, labels)
            }
            None => (series, HashMap::new()),
        };
        assert!(name_ok(name), "bad sample name in `{line}`");
        let family_known = families.iter().any(|(family, kind)| {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            suffixes
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(family.as_str()))
        });
        assert!(family_known, "sample `{line}` of no declared family");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

/// The value of the one sample named `name` whose labels include `want`.
fn sample(
    samples: &[(String, HashMap<String, String>, f64)],
    name: &str,
    want: &[(&str, &str)],
) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, value)| *value)
        .collect();
    assert!(matching.len() <= 1, "{name} {want:?} matches {matching:?}");
    matching.first().copied()
}

#[tokio::test]
async fn metrics_parse_and_move_after_a_poll() {
    let daemon = Daemon::start(Duration::from_millis(700), 0).await;
    daemon.wait_ready().await;
    let _ = daemon.get("/wp-login.php").await;
    let (status, content_type, text) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );

    // A Prometheus parser reads every sample we see line by line.
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let samples = strict_parse(&text);
    let histogram_lines = samples
        .iter()
        .filter(|(n, _, _)| n.ends_with("_bucket"))
        .count();
    assert_eq!(scrape.samples.len(), samples.len() - histogram_lines + 1);

    let wire = daemon.server.url("/wire.xml");
    let broken = daemon.server.url("/broken.xml");
    let retired = daemon.server.url("/retired.xml");
    let polls = "tributary_polls_total";
    assert!(sample(&samples, polls, &[("source", &wire), ("result", "ok")]) >= Some(1.0));
    assert!(
        sample(
            &samples,
            polls,
            &[("source", &broken), ("result", "failed")]
        ) >= Some(1.0)
    );
    assert_eq!(
        sample(&samples, polls, &[("source", &retired), ("result", "gone")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&samples, "tributary_items_stored_total", &[]),
        Some(WIRE_ITEMS as f64)
    );
    assert_eq!(
        sample(&samples, "tributary_source_items", &[("source", &wire)]),
        Some(WIRE_ITEMS as f64)
    );
    assert_eq!(
        sample(&samples, "tributary_source_items", &[("source", &broken)]),
        Some(0.0)
    );
    assert!(
        sample(&samples, "tributary_fetched_bytes_total", &[]).unwrap()
            >= fixture("rss2.xml").len() as f64
    );
    assert!(sample(&samples, "tributary_fetch_duration_seconds_count", &[]).unwrap() >= 3.0);
    assert!(sample(&samples, "tributary_store_size_bytes", &[]).unwrap() > 0.0);
    let last_success = sample(
        &samples,
        "tributary_source_last_success_timestamp_seconds",
        &[("source", &wire)],
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - 60.0..=now + 1.0).contains(&last_success),
        "{last_success}"
    );
    assert_eq!(
        sample(
            &samples,
            "tributary_source_last_success_timestamp_seconds",
            &[("source", &broken)]
        ),
        None
    );
    // Requests are counted by route pattern: the probe is `unknown`, not its path.
    let requests = "tributary_http_requests_total";
    assert!(
        sample(
            &samples,
            requests,
            &[("route", "/readyz"), ("status", "200")]
        ) >= Some(1.0)
    );
    assert_eq!(
        sample(
            &samples,
            requests,
            &[("route", "unknown"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert!(!text.contains("wp-login"));

    // The healthy source is polled again (a 304 now): its counters move; the gone one
    // is left alone.
    let polled = sample(&samples, polls, &[("source", &wire), ("result", "ok")]).unwrap()
        + sample(
            &samples,
            polls,
            &[("source", &wire), ("result", "not_modified")],
        )
        .unwrap_or(0.0);
    let fetches = sample(&samples, "tributary_fetch_duration_seconds_count", &[]).unwrap();
    let later = eventually(Duration::from_secs(10), || async {
        let (_, _, text) = daemon.get("/metrics").await;
        let samples = strict_parse(&text);
        let not_modified = sample(
            &samples,
            polls,
            &[("source", &wire), ("result", "not_modified")],
        )?;
        let ok = sample(&samples, polls, &[("source", &wire), ("result", "ok")])?;
        // The first scrape may already have seen a 304: wait for one more poll.
        let moved = not_modified >= 1.0 && ok + not_modified > polled;
        moved.then_some(samples)
    })
    .await;
    let ok = sample(&later, polls, &[("source", &wire), ("result", "ok")]).unwrap();
    let not_modified = sample(
        &later,
        polls,
        &[("source", &wire), ("result", "not_modified")],
    )
    .unwrap();
    assert!(ok + not_modified > polled);
    assert!(sample(&later, "tributary_fetch_duration_seconds_count", &[]).unwrap() > fetches);
    assert_eq!(
        sample(&later, polls, &[("source", &retired), ("result", "gone")]),
        Some(1.0)
    );
    assert!(
        sample(
            &later,
            requests,
            &[("route", "/metrics"), ("status", "200")]
        ) >= Some(1.0)
    );
    assert_eq!(
        sample(&later, "tributary_items_stored_total", &[]),
        Some(WIRE_ITEMS as f64),
        "nothing new to store"
    );
    daemon.app.stop().await;
}

#[tokio::test]
async fn process_and_build_metrics_describe_this_process() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let daemon = Daemon::start(Duration::from_secs(3600), 0).await;
    daemon.wait_ready().await;
    let (_, _, text) = daemon.get("/metrics").await;
    let samples = strict_parse(&text);
    let value =
        |name: &str| sample(&samples, name, &[]).unwrap_or_else(|| panic!("no {name} in:\n{text}"));

    // The daemon runs in this test's process: the values are this process's.
    let cpu = value("process_cpu_seconds_total");
    assert!(cpu > 0.0 && cpu < 3600.0, "{cpu}");
    let resident = value("process_resident_memory_bytes");
    let virt = value("process_virtual_memory_bytes");
    assert!(resident > 1e6 && resident <= virt, "{resident} {virt}");
    let open = value("process_open_fds");
    let max = value("process_max_fds");
    // At least stdio, the listener and the store's files.
    assert!(open >= 5.0 && open <= max, "{open} {max}");
    let limit = std::fs::read_to_string("/proc/self/limits").unwrap();
    assert!(limit.contains(&format!(" {max} ")), "{max} in {limit}");
    // Started before this test began, and not an hour before.
    let started = value("process_start_time_seconds");
    assert!(
        started <= before + 1.0 && started > before - 3600.0,
        "{started} {before}"
    );
    assert!(
        text.contains("# TYPE process_cpu_seconds counter\n"),
        "{text}"
    );

    let build = sample(
        &samples,
        "tributary_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
    );
    assert_eq!(build, Some(1.0), "{text}");
    let (_, labels, _) = samples
        .iter()
        .find(|(n, _, _)| n == "tributary_build_info")
        .unwrap();
    assert_eq!(labels["arch"], std::env::consts::ARCH);
    assert!(["debug", "release"].contains(&labels["profile"].as_str()));
    daemon.app.stop().await;
}

#[tokio::test]
async fn sources_json_and_html_show_each_source() {
    let daemon = Daemon::start(Duration::from_secs(3600), 0).await;
    daemon.wait_ready().await;
    let (status, content_type, body) = daemon.get("/sources.json").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sources = listing["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    let by_url = |path: &str| {
        let url = daemon.server.url(path);
        sources
            .iter()
            .find(|s| s["url"] == url.as_str())
            .unwrap()
            .clone()
    };
    let wire = by_url("/wire.xml");
    assert_eq!(wire["name"], "World Wire");
    assert_eq!(wire["status"], "ok");
    assert_eq!(wire["items"], WIRE_ITEMS);
    assert_eq!(wire["tags"], serde_json::json!(["world"]));
    assert!(wire["last_error"].is_null());
    assert_eq!(wire["id"].as_str().unwrap().len(), 16);
    let last_success: chrono::DateTime<chrono::Utc> =
        wire["last_success"].as_str().unwrap().parse().unwrap();
    let next_poll: chrono::DateTime<chrono::Utc> =
        wire["next_poll"].as_str().unwrap().parse().unwrap();
    assert!(next_poll > last_success + chrono::Duration::minutes(50));
    // The source's own feed is where the id says.
    let id = wire["id"].as_str().unwrap();
    assert_eq!(daemon.get(&format!("/sources/{id}.xml")).await.0, 200);

    let broken = by_url("/broken.xml");
    assert_eq!(broken["status"], "failing");
    assert!(broken["last_success"].is_null());
    assert!(
        broken["last_error"].as_str().unwrap().contains("500"),
        "{broken}"
    );
    assert_eq!(broken["consecutive_failures"], 1);
    assert_eq!(broken["items"], 0);
    assert!(broken["next_poll"].is_string());

    let retired = by_url("/retired.xml");
    assert_eq!(retired["status"], "gone");
    assert!(
        retired["last_error"].as_str().unwrap().contains("410"),
        "{retired}"
    );

    let (status, content_type, html) = daemon.get("/sources").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>Sources · Ops &lt;test&gt;</title>"));
    assert!(html.contains("3 sources, 1 failing"));
    assert!(html.contains(&format!("<a href=\"sources/{id}.xml\">World Wire</a>")));
    assert!(html.contains("<td class=\"failing\">failing</td>"));
    assert!(html.contains("<td class=\"gone\">gone</td>"));
    assert!(html.contains("<td class=\"ok\">ok</td>"));
    daemon.app.stop().await;
}
