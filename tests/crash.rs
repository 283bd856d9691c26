//! Crash safety: the daemon is killed with SIGKILL at random points while it ingests,
//! restarted on the same store each time, and must open it and still serve every item
//! it had served in `/feed.xml` before the kill.
//!
//! `CRASH_KILLS` sets the number of kills (default 20, under a minute);
//! `bench/crashloop.sh` runs the long version.

mod common;

use common::{FeedServer, write_config};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// New sources per restart, and items in each: every restart has fresh work to ingest,
/// and the river stays small enough to render quickly in a debug build.
const SOURCES_PER_ROUND: usize = 5;
const ITEMS_PER_SOURCE: usize = 8;

/// 2026-02-06 00:00:00 UTC.
const FEB_6: i64 = 1_770_336_000;

#[test]
fn served_items_survive_sigkill_during_ingest() {
    let kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    // Enough slots that nothing served is ever pushed out of the feed by newer items.
    let max_items = (kills + 1) * SOURCES_PER_ROUND * ITEMS_PER_SOURCE;
    assert!(max_items <= 10_000, "CRASH_KILLS too large for one feed");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FeedServer::start());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let mut rng = fastrand::Rng::with_seed(4);
    let mut served: BTreeSet<String> = BTreeSet::new();
    let started = Instant::now();

    for round in 0..=kills {
        let config = write_round(&server, dir.path(), &store, round, max_items);
        let (mut child, addr) = start(&config);
        // What it serves right after opening the store: everything served before.
        let first = feed_links(&addr).expect("the restarted daemon serves /feed.xml");
        let missing: Vec<_> = served.difference(&first).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} served items lost after SIGKILL, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        if round == kills {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        // Read the feed while it ingests, then kill it at a random moment.
        let kill_at = Instant::now() + Duration::from_millis(rng.u64(0..1500));
        served.extend(first);
        while Instant::now() < kill_at {
            if let Some(links) = feed_links(&addr) {
                served.extend(links);
            }
            std::thread::sleep(Duration::from_millis(rng.u64(0..60)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(
        !served.is_empty(),
        "the daemon never served an item: the test would prove nothing"
    );
    eprintln!(
        "{kills} kills in {:.1} s; {} items served, none lost",
        started.elapsed().as_secs_f64(),
        served.len()
    );
}

/// Routes this round's new feeds and writes a config that lists them.
fn write_round(
    server: &FeedServer,
    dir: &Path,
    store: &Path,
    round: usize,
    max_items: usize,
) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\nmax_age = \"36500d\"\n[publish]\nmax_items = {max_items}\n",
        store.display()
    );
    for source in 0..SOURCES_PER_ROUND {
        let path = format!("/r{round}/s{source}.xml");
        let mut body = String::from(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>crash</title><link>http://crash.example/</link><description>d</description>",
        );
        for item in 0..ITEMS_PER_SOURCE {
            let n = (round * SOURCES_PER_ROUND + source) * ITEMS_PER_SOURCE + item;
            let date = chrono::DateTime::from_timestamp(FEB_6 + n as i64 * 60, 0).unwrap();
            body.push_str(&format!(
                "<item><title>Story {n}</title><link>http://crash.example/story/{n}</link><guid>story-{n}</guid><pubDate>{}</pubDate><description>Text of story {n}, long enough to be a real item.</description></item>",
                date.to_rfc2822()
            ));
        }
        body.push_str("</channel></rss>");
        server.route(&path, body.into_bytes(), "application/rss+xml");
        text.push_str(&format!("[[source]]\nurl = \"{}\"\n", server.url(&path)));
    }
    let config = write_config(dir, &text);
    config.display().to_string()
}

/// Starts the daemon and returns it with the address it listens on.
fn start(config: &str) -> (Child, String) {
    let mut child = common::daemon::command(Path::new(config))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let up = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("tributary is up"));
    let Some(up) = up else {
        let status = child.wait().unwrap();
        panic!("the daemon did not start on the store ({status})");
    };
    // Keep draining the log so the daemon never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let addr = up
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .expect("the log line names the address")
        .to_string();
    (child, addr)
}

/// The item links of `/feed.xml`, or `None` when the daemon did not answer.
fn feed_links(addr: &str) -> Option<BTreeSet<String>> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /feed.xml HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let start = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if !response.starts_with(b"HTTP/1.1 200") {
        return None;
    }
    let channel = rss::Channel::read_from(&response[start..]).ok()?;
    Some(
        channel
            .items()
            .iter()
            .filter_map(|i| i.link().map(str::to_string))
            .collect(),
    )
}
