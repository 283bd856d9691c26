//! Three `tributary run` processes on one PostgreSQL (a throwaway server the test
//! starts; skipped when PostgreSQL is not installed, a failure under CI), polling a
//! loopback farm of 1000 feeds on 50 hosts (127.0.0.10-59) every minute. The third
//! is killed with SIGKILL (nothing released) once the first cycle is stored.
//!
//! Checked: every feed is fetched once per interval and no more; requests to one
//! host in flight at once never exceed `per_host`, across the nodes and the
//! take-over; the stored items are the farm's, each once; `/feed.xml` is the same
//! bytes on every node; the killed node's partitions are polled again within
//! TTL + interval.

mod common;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary::store::Store;
use tributary::store::postgres::{PARTITIONS, PgOptions, Postgres, partition_of};

use common::daemon::Daemon;
use common::postgres::TestPg;

const FEEDS: usize = 1000;
const HOSTS: usize = 50;
const ITEMS: usize = 3;
const INTERVAL: Duration = Duration::from_secs(60);
const TTL: Duration = Duration::from_secs(9);
const PER_HOST: usize = 2;

#[derive(Default)]
struct Farm {
    /// (feed, when) of every request.
    requests: Mutex<Vec<(usize, Instant)>>,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: AtomicUsize,
    /// host:port of each host, by index.
    hosts: Mutex<Vec<String>>,
}

impl Farm {
    fn url(&self, feed: usize) -> String {
        let hosts = self.hosts.lock().unwrap();
        format!("http://{}/f/{feed}", hosts[feed % HOSTS])
    }

    fn requests(&self) -> Vec<(usize, Instant)> {
        self.requests.lock().unwrap().clone()
    }
}

fn body(farm: &Farm, feed: usize) -> String {
    let mut items = String::new();
    for k in 0..ITEMS {
        let date = chrono::DateTime::from_timestamp(1_767_225_600 + (feed * 60 + k) as i64, 0)
            .unwrap()
            .to_rfc2822();
        items.push_str(&format!(
            "<item><guid isPermaLink=\"false\">f{feed}-{k}</guid><title>Item {feed}-{k}</title>\
             <link>{}/{k}</link><pubDate>{date}</pubDate></item>",
            farm.url(feed)
        ));
    }
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {feed}</title>\
         <link>{}</link><description>d</description>{items}</channel></rss>",
        farm.url(feed)
    )
}

async fn serve(State(farm): State<Arc<Farm>>, request: Request) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let feed: usize = request
        .uri()
        .path()
        .strip_prefix("/f/")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    farm.requests.lock().unwrap().push((feed, Instant::now()));
    let now = {
        let mut in_flight = farm.in_flight.lock().unwrap();
        let count = in_flight.entry(host.clone()).or_default();
        *count += 1;
        *count
    };
    farm.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Long enough for a host's requests to overlap when they are allowed to.
    tokio::time::sleep(Duration::from_millis(40)).await;
    *farm.in_flight.lock().unwrap().get_mut(&host).unwrap() -= 1;
    if feed >= FEEDS {
        return StatusCode::NOT_FOUND.into_response();
    }
    let etag = format!("\"f{feed}\"");
    if request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml".to_string()),
            (header::ETAG, etag),
        ],
        body(&farm, feed),
    )
        .into_response()
}

/// The farm on 50 loopback addresses, on a runtime of its own.
fn start_farm() -> (Arc<Farm>, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let farm = Arc::new(Farm::default());
    for n in 0..HOSTS {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(format!(
                "127.0.0.{}:0",
                10 + n
            )))
            .unwrap();
        farm.hosts
            .lock()
            .unwrap()
            .push(listener.local_addr().unwrap().to_string());
        let app = axum::Router::new().fallback(serve).with_state(farm.clone());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    (farm, runtime)
}

/// The three nodes, started together so that they count each other before any
/// takes its share of the partitions.
fn start_nodes(dir: &std::path::Path, farm: &Farm, url: &str) -> Vec<Daemon> {
    let configs: Vec<std::path::PathBuf> = ["n1", "n2", "n3"]
        .iter()
        .map(|node| {
            let path = dir.join(format!("{node}.toml"));
            std::fs::write(&path, config(farm, url, node)).unwrap();
            path
        })
        .collect();
    std::thread::scope(|scope| {
        let starting: Vec<_> = configs
            .iter()
            .map(|path| {
                // A node joins after one renewal period (TTL / 3) and its first renewal.
                let command = common::daemon::command(path);
                scope.spawn(move || Daemon::spawn_within(command, TTL + Duration::from_secs(10)))
            })
            .collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

fn config(farm: &Farm, url: &str, node: &str) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://news.example/\"\n\
         [store]\nbackend = \"postgres\"\nurl = \"{url}\"\nnode_id = \"{node}\"\n\
         lease_ttl = \"{}ms\"\nwatch_every = \"200ms\"\nmax_age = \"36500d\"\n\
         [poll]\ninterval = \"{}s\"\nconcurrency = 64\nper_host = {PER_HOST}\n\
         [publish]\nmax_items = 100\n",
        TTL.as_millis(),
        INTERVAL.as_secs()
    );
    for feed in 0..FEEDS {
        text.push_str(&format!("[[source]]\nurl = \"{}\"\n", farm.url(feed)));
    }
    text
}

fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints what the nodes warned of when the test fails, to tell why.
struct Warnings<'a>(&'a std::cell::RefCell<Vec<Daemon>>);

impl Drop for Warnings<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (n, node) in self.0.borrow().iter().enumerate() {
            for line in node.log().lines() {
                if line.contains("WARN") || line.contains("ERROR") || line.contains("leases") {
                    eprintln!("node {}: {line}", n + 1);
                }
            }
        }
    }
}

fn owners(pg: &TestPg, url: &str) -> HashMap<String, BTreeSet<u32>> {
    let text = pg.psql_value(
        url,
        "SELECT coalesce(string_agg(owner || ':' || part, ',' ORDER BY part), '') \
         FROM leases WHERE owner IS NOT NULL AND expires_at > now()",
    );
    let mut owners: HashMap<String, BTreeSet<u32>> = HashMap::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (owner, part) = pair.split_once(':').unwrap();
        owners
            .entry(owner.to_string())
            .or_default()
            .insert(part.parse().unwrap());
    }
    owners
}

#[test]
fn three_nodes_share_the_polling_and_serve_the_same_river() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("cluster");
    let (farm, _farm_runtime) = start_farm();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let nodes = std::cell::RefCell::new(start_nodes(dir.path(), &farm, &url));
    let _warnings = Warnings(&nodes);
    let mut options = PgOptions::new(url.clone());
    options.pool_size = 2;
    let store: Store = Postgres::connect(&options).unwrap().into();

    // The cold cycle: every feed fetched, every item stored.
    wait_until(Duration::from_secs(60), "every item stored", || {
        let stored = store.latest(FEEDS * ITEMS + 10).unwrap().len();
        eprintln!(
            "{:?}: {stored} items, {} requests",
            started.elapsed(),
            farm.requests().len()
        );
        stored == FEEDS * ITEMS
    });
    let cold = started.elapsed();
    eprintln!("cold cycle of {FEEDS} feeds on 3 nodes: {cold:?}");
    let owners_now = owners(&pg, &url);
    assert_eq!(owners_now.len(), 3, "{owners_now:?}");
    let held: usize = owners_now.values().map(BTreeSet::len).sum();
    assert_eq!(held, PARTITIONS as usize);

    // The same river from every node at the same watermark: each renders a change
    // after a pause of up to MAX_RENDER_PAUSE (paced by what its renders cost).
    let river = |node: &Daemon| common::daemon::body(&node.get("/feed.xml")).to_string();
    wait_until(
        tributary::publish::MAX_RENDER_PAUSE * 3,
        "the same /feed.xml on every node",
        || {
            let nodes = nodes.borrow();
            let first = river(&nodes[0]);
            first.matches("<item>").count() == 100 && nodes.iter().all(|n| river(n) == first)
        },
    );

    // A node dies without a word; the others take its partitions after the TTL and
    // poll its feeds when they fall due.
    let dead: BTreeSet<u32> = owners(&pg, &url).remove("n3").unwrap();
    let orphaned: HashSet<usize> = (0..FEEDS)
        .filter(|&f| dead.contains(&partition_of(&farm.url(f), PARTITIONS)))
        .collect();
    assert!(!orphaned.is_empty());
    nodes.borrow()[2].signal(libc::SIGKILL);
    let killed = Instant::now();
    nodes.borrow_mut()[2].wait(Duration::from_secs(5));
    wait_until(TTL * 3, "the dead node's partitions taken", || {
        let after = owners(&pg, &url);
        !after.contains_key("n3")
            && after.values().map(BTreeSet::len).sum::<usize>() == PARTITIONS as usize
    });
    // Every feed fetched a second time (the interval, ±10%, after its first).
    let second_round = started + cold + INTERVAL.mul_f64(1.1) + Duration::from_secs(5);
    wait_until(
        second_round.saturating_duration_since(Instant::now()) + Duration::from_secs(10),
        "every feed fetched twice",
        || {
            let requests = farm.requests();
            let mut counts: HashMap<usize, usize> = HashMap::new();
            for (feed, _) in &requests {
                *counts.entry(*feed).or_default() += 1;
            }
            counts.len() == FEEDS && counts.values().all(|&n| n >= 2)
        },
    );
    let requests = farm.requests();
    let limit = TTL + INTERVAL.mul_f64(1.1) + Duration::from_secs(2);
    for feed in &orphaned {
        let again = requests
            .iter()
            .filter(|(f, at)| f == feed && *at > killed)
            .map(|(_, at)| *at - killed)
            .min();
        assert!(
            again.is_some_and(|wait| wait <= limit),
            "feed {feed} of the dead node polled again after {again:?}"
        );
    }

    // Once per interval, no more, across the nodes and the take-over (the jitter is
    // ±10%).
    let mut times: HashMap<usize, Vec<Instant>> = HashMap::new();
    for (feed, at) in &requests {
        times.entry(*feed).or_default().push(*at);
    }
    assert_eq!(times.len(), FEEDS);
    for (feed, times) in &mut times {
        times.sort();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= INTERVAL.mul_f64(0.85),
                "feed {feed} fetched twice within {gap:?}"
            );
        }
    }
    // The per-host cap held across the nodes, the take-over included.
    let most = farm.max_in_flight.load(Ordering::SeqCst);
    eprintln!("most requests at once to one host: {most}");
    assert!(most <= PER_HOST, "{most} requests at once to one host");
    assert!(most >= 1);

    // Every item of the farm, each once.
    let stored = store.latest(FEEDS * ITEMS + 10).unwrap();
    let seen: HashSet<(String, String)> = stored
        .iter()
        .map(|i| (i.origin.source.0.clone(), i.item.id.0.clone()))
        .collect();
    let truth: HashSet<(String, String)> = (0..FEEDS)
        .flat_map(|f| (0..ITEMS).map(move |k| (f, k)))
        .map(|(f, k)| (farm.url(f), format!("f{f}-{k}")))
        .collect();
    assert_eq!(stored.len(), truth.len());
    assert_eq!(seen, truth);

    let survivors: Vec<Daemon> = nodes.borrow_mut().drain(..2).collect();
    for node in survivors {
        let status = node.stop(Duration::from_secs(15));
        assert!(status.success(), "{status:?}");
    }
    eprintln!("whole test: {:?}", started.elapsed());
}
