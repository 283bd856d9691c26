//! What the operator sees of a cluster: two nodes on one PostgreSQL (a throwaway
//! server the test starts; skipped when PostgreSQL is not installed, a failure under
//! CI) polling 30 feeds on 10 loopback hosts. Each node's `/readyz` names it and its
//! share, `/metrics` has the cluster's families, and `/sources(.json)` says of each
//! source which node polls it: exactly one node says "polled here" of each, and the
//! owner both name is the one in the lease table.

mod common;

use axum::extract::Request;
use axum::response::IntoResponse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary::ops::listing::Listing;
use tributary::store::postgres::{PARTITIONS, partition_of};

use common::RunningApp;
use common::postgres::TestPg;

const HOSTS: usize = 10;
const FEEDS: usize = 30;

async fn feed(request: Request) -> impl IntoResponse {
    let path = request.uri().path().to_string();
    (
        [("content-type", "application/rss+xml")],
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{path}</title>\
             <link>http://example.org{path}</link><description>d</description>\
             <item><guid>{path}-1</guid><title>One</title>\
             <pubDate>Thu, 01 Jan 2026 00:00:00 +0000</pubDate></item></channel></rss>"
        ),
    )
}

/// The feeds' URLs, on 10 loopback addresses.
async fn start_farm() -> Vec<String> {
    let mut hosts = Vec::new();
    for n in 0..HOSTS {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.{}:0", 60 + n))
            .await
            .unwrap();
        hosts.push(listener.local_addr().unwrap().to_string());
        let app = axum::Router::new().fallback(feed);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    (0..FEEDS)
        .map(|f| format!("http://{}/f/{f}", hosts[f % HOSTS]))
        .collect()
}

fn config(urls: &[String], db: &str, node: &str) -> tributary::config::Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [store]\nbackend = \"postgres\"\nurl = \"{db}\"\nnode_id = \"{node}\"\n\
         lease_ttl = \"3s\"\nwatch_every = \"200ms\"\n"
    );
    for url in urls {
        text.push_str(&format!("[[source]]\nurl = \"{url}\"\n"));
    }
    common::config_with_interval(&text, Duration::from_secs(60))
}

async fn get(app: &RunningApp, path: &str) -> String {
    let (addr, path) = (app.addr.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || common::daemon::http_get(&addr, &path))
        .await
        .unwrap()
}

async fn listing(app: &RunningApp) -> Listing {
    let response = get(app, "/sources.json?limit=1000").await;
    Listing::from_json(common::daemon::body(&response).as_bytes()).unwrap()
}

/// The value of the sample `name` in an OpenMetrics text.
fn sample(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_shows_its_partitions_and_the_clusters() {
    let Some(pg) = TestPg::start() else { return };
    let db = pg.database("views");
    let urls = start_farm().await;
    let (one, two) = tokio::join!(
        RunningApp::start(config(&urls, &db, "n1")),
        RunningApp::start(config(&urls, &db, "n2")),
    );
    let nodes = [("n1", &one), ("n2", &two)];

    // Both nodes hold their shares, and every partition is held.
    let listings: Vec<Listing> = common::eventually(Duration::from_secs(30), || async {
        let mut listings = Vec::new();
        for (_, app) in nodes {
            let listing = listing(app).await;
            let cluster = listing.cluster.as_ref()?;
            let shares: Vec<usize> = cluster.nodes.values().copied().collect();
            if cluster.unowned > 0 || shares != [128, 128] || cluster.held.len() != 128 {
                return None;
            }
            listings.push(listing);
        }
        Some(listings)
    })
    .await;

    let mut polled_by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for ((name, _), listing) in nodes.iter().zip(&listings) {
        let cluster = listing.cluster.as_ref().unwrap();
        assert_eq!(cluster.node, *name);
        assert_eq!(cluster.partitions, PARTITIONS);
        assert_eq!(listing.sources.len(), FEEDS);
        let held: BTreeSet<u32> = cluster.held.iter().copied().collect();
        for (status, url) in listing.sources.iter().zip(&urls) {
            let part = partition_of(url, PARTITIONS);
            assert_eq!(status.partition, Some(part), "{url}");
            let here = status.polled_here.unwrap();
            assert_eq!(here, held.contains(&part), "{url}");
            assert_eq!(here, status.owner.as_deref() == Some(*name), "{url}");
            if here {
                polled_by.entry(url.clone()).or_default().push(name);
            }
        }
    }
    // Each source is polled by one node, and here both poll some.
    assert_eq!(polled_by.len(), FEEDS, "{polled_by:?}");
    assert!(polled_by.values().all(|nodes| nodes.len() == 1));
    let pollers: BTreeSet<&str> = polled_by.values().map(|nodes| nodes[0]).collect();
    assert_eq!(pollers.len(), 2, "{polled_by:?}");

    for (name, app) in nodes {
        // Ready once its sources new to the store are polled.
        let ready = common::eventually(Duration::from_secs(30), || async {
            let ready = get(app, "/readyz").await;
            let ready = common::daemon::body(&ready).to_string();
            ready.starts_with("ready\n").then_some(ready)
        })
        .await;
        assert!(
            ready.starts_with(&format!(
                "ready\nnode {name} holds 128 of {PARTITIONS} partitions; 2 live nodes"
            )),
            "{ready}"
        );
        let metrics = get(app, "/metrics").await;
        let metrics = common::daemon::body(&metrics);
        assert_eq!(
            sample(metrics, "tributary_cluster_partitions").as_deref(),
            Some("128")
        );
        assert_eq!(
            sample(
                metrics,
                &format!("tributary_cluster_node_info{{node=\"{name}\"}}")
            )
            .as_deref(),
            Some("1")
        );
        for other in ["n1", "n2"] {
            let family = format!("tributary_cluster_node_partitions{{node=\"{other}\"}}");
            assert_eq!(
                sample(metrics, &family).as_deref(),
                Some("128"),
                "{metrics}"
            );
        }
        assert_eq!(
            sample(metrics, "tributary_cluster_partitions_unowned").as_deref(),
            Some("0")
        );
        assert!(metrics.ends_with("# EOF\n"));

        let html = get(app, "/sources?limit=1000").await;
        assert!(
            html.contains(&format!(
                "Node {name} polls 128 of {PARTITIONS} partitions; 2 live nodes: n1 (128), n2 (128)"
            )),
            "{html}"
        );
        let other = if name == "n1" { "n2" } else { "n1" };
        assert!(html.contains("polled here · partition "), "{html}");
        assert!(html.contains(&format!("polled by {other} · partition ")));
    }
    one.stop().await;
    two.stop().await;
}
