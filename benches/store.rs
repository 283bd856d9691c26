//! The store at scale: insert rate, newest-100 read latency and disk bytes per item
//! with `ITEMS` stored items (default 1 million), then the daemon's resident memory
//! serving that store.
//!
//! `cargo bench --bench store`; `ITEMS=100000` for a quicker run, `CORPUS=dir` for
//! the documents whose items are stored (default `benches/corpus`, real documents
//! shipped with the repository).
//! Targets: newest-100 under 1 ms, daemon RSS under 128 MB.

use chrono::DateTime;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tributary::item::{Item, ItemId, Origin, SourceId, SourceState};
use tributary::store::Store;

/// Items per `record_fetch`, as one poll of a busy source.
const BATCH: usize = 100;
/// Sources the items are spread over.
const SOURCES: usize = 1000;

fn main() {
    let total: usize = std::env::var("ITEMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let corpus = std::env::var("CORPUS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/benches/corpus").into());
    let templates = corpus_items(Path::new(&corpus));
    let template_bytes: usize = templates.iter().map(json_size).sum::<usize>() / templates.len();
    println!(
        "{} template items from {corpus}, {template_bytes} bytes each on average (as JSON, before compression)",
        templates.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::open(&path).unwrap();
    let base = DateTime::from_timestamp(1_760_000_000, 0).unwrap();
    let now = base + chrono::Duration::days(400);
    let started = Instant::now();
    let mut batch_times = Vec::new();
    let mut inserted = 0;
    while inserted < total {
        let source = (inserted / BATCH) % SOURCES;
        let origin = origin(source);
        let items: Vec<Item> = (inserted..(inserted + BATCH).min(total))
            .map(|n| {
                let mut item = templates[n % templates.len()].clone();
                item.id = ItemId(format!("bench-{n}"));
                item.link = Some(format!("https://source{source}.example/story/{n}"));
                item.published = Some(base + chrono::Duration::seconds(n as i64 * 30));
                item.updated = None;
                item
            })
            .collect();
        let batch = Instant::now();
        let report = store
            .record_fetch(&origin, &items, &SourceState::default(), now)
            .unwrap();
        batch_times.push(batch.elapsed());
        assert_eq!(report.added, items.len());
        inserted += items.len();
        if inserted % 100_000 == 0 {
            eprintln!(
                "  {inserted} items, {:.0} items/s so far",
                inserted as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let insert_secs = started.elapsed().as_secs_f64();
    let flush = Instant::now();
    block_on(store.flush()).unwrap();
    let flush_secs = flush.elapsed().as_secs_f64();
    println!(
        "insert: {total} items in {insert_secs:.1} s = {:.0} items/s (batches of {BATCH}: median {:.2} ms); final flush {flush_secs:.2} s",
        total as f64 / insert_secs,
        median(&mut batch_times).as_secs_f64() * 1e3
    );

    let mut reads = Vec::new();
    for _ in 0..1000 {
        let read = Instant::now();
        let latest = store.latest(100).unwrap();
        reads.push(read.elapsed());
        assert_eq!(latest.len(), 100);
    }
    reads.sort();
    println!(
        "newest 100, warm: median {:.3} ms, p99 {:.3} ms (target < 1 ms)",
        reads[reads.len() / 2].as_secs_f64() * 1e3,
        reads[reads.len() * 99 / 100].as_secs_f64() * 1e3
    );
    drop(store);
    let bytes = disk_bytes(&path);
    println!(
        "disk: {:.1} MB, {:.0} bytes per item",
        bytes as f64 / 1e6,
        bytes as f64 / total as f64
    );
    let store = Store::open(&path).unwrap();
    let read = Instant::now();
    store.latest(100).unwrap();
    println!(
        "newest 100, cold (just reopened): {:.3} ms",
        read.elapsed().as_secs_f64() * 1e3
    );
    drop(store);

    daemon_rss(dir.path(), &path);
}

/// Starts the release daemon on the store (no sources, retention that keeps
/// everything), requests the feeds, and reports its resident memory.
fn daemon_rss(dir: &Path, store: &Path) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = dir.join("feeds.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\nmax_age = \"36500d\"\nmax_items = 100000000\n",
            store.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    while get(port, "/healthz").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "daemon: serving after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The startup retention pass walks every key; let it finish, then read every output.
    std::thread::sleep(Duration::from_secs(10));
    for _ in 0..20 {
        for path in ["/feed.xml", "/atom.xml", "/feed.json", "/"] {
            get(port, path).expect("served");
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "daemon RSS: {} now, {} peak (target < 128 MB)",
        field("VmRSS:"),
        field("VmHWM:")
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn get(port: u16, path: &str) -> Option<usize> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    response
        .starts_with(b"HTTP/1.1 200")
        .then_some(response.len())
}

fn corpus_items(dir: &Path) -> Vec<Item> {
    let mut items = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(document) =
                tributary::ingest::normalize::normalize_document(&bytes, None, None, chrono_tz::UTC)
        {
            items.extend(document.items);
        }
    }
    assert!(!items.is_empty(), "no items in {}", dir.display());
    items
}

fn origin(n: usize) -> Origin {
    let url = format!("https://source{n}.example/feed.xml");
    Origin {
        source: SourceId(url.clone()),
        name: format!("Source {n}"),
        url,
        tags: vec!["bench".into()],
    }
}

fn json_size(item: &Item) -> usize {
    serde_json::to_vec(item).map_or(0, |v| v.len())
}

fn disk_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Runs the store's one async call without pulling a runtime into the measurement.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}
