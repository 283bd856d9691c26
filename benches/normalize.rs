//! Parse + normalize throughput on real documents, beside feed-rs's parse-only
//! throughput on the same files in the same run.
//!
//! `cargo bench --bench normalize [-- DIR]`; DIR defaults to `$CORPUS`, else
//! `benches/corpus` (real documents shipped with the repository, see its SOURCES.md).
//! Prints the median of `ROUNDS` rounds for each and their ratio (the target: parse +
//! normalize costs at most 1.5× parsing alone).
//!
//! Times are the CPU time of the bench's thread, not wall time: on a machine shared
//! with other work, a wall clock counts the time the thread waited for a core, and the
//! ratio moved by half a point from run to run. Memory comes from jemalloc, the
//! daemon's allocator (`src/main.rs`), so allocation costs what it costs there.

use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The CPU time this thread has used so far.
fn thread_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Rounds over the whole corpus; the median is reported.
const ROUNDS: usize = 9;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("CORPUS").ok())
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/benches/corpus").to_string());
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let ext = path.extension()?.to_str()?;
            matches!(ext, "xml" | "json" | "rss" | "atom").then(|| {
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
        })
        .collect();
    files.sort();
    // Compare like with like: only documents both sides read.
    let total_files = files.len();
    files.retain(|(_, bytes)| {
        feed_rs::parser::parse(&bytes[..]).is_ok()
            && tributary::ingest::normalize::normalize_document(bytes, None, None, chrono_tz::UTC)
                .is_ok()
    });
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let mut items = 0;
    let mut parse_times = Vec::new();
    let mut normalize_times = Vec::new();
    // tributary's own parse stage alone (charset decoding, repairs, feed-rs without
    // its sanitizer, date fallbacks): what normalizing adds is the rest.
    let mut own_parse_times = Vec::new();
    for _ in 0..ROUNDS {
        let started = thread_cpu();
        for (_, body) in &files {
            let feed = feed_rs::parser::parse(&body[..]).expect("parsed before");
            std::hint::black_box(feed);
        }
        parse_times.push(thread_cpu() - started);
        let started = thread_cpu();
        items = 0;
        for (_, body) in &files {
            let document =
                tributary::ingest::normalize::normalize_document(body, None, None, chrono_tz::UTC)
                    .expect("normalized before");
            items += document.items.len();
            std::hint::black_box(document);
        }
        normalize_times.push(thread_cpu() - started);
        let started = thread_cpu();
        for (_, body) in &files {
            let parsed = tributary::ingest::parse::parse_feed(body, None, chrono_tz::UTC)
                .expect("normalized before");
            std::hint::black_box(parsed);
        }
        own_parse_times.push(thread_cpu() - started);
    }
    let parse = median(&mut parse_times);
    let normalize = median(&mut normalize_times);
    let own_parse = median(&mut own_parse_times);
    let mb = bytes as f64 / 1e6;
    println!(
        "corpus: {} of {total_files} documents read by both, {mb:.2} MB, {items} items; median of {ROUNDS} rounds of thread CPU time",
        files.len()
    );
    for (what, time) in [
        ("feed-rs parse only", parse),
        ("tributary parse stage only", own_parse),
        ("tributary parse + normalize", normalize),
    ] {
        let secs = time.as_secs_f64();
        println!(
            "{what:28} {:8.1} ms  {:7.1} MB/s  {:9.0} items/s",
            secs * 1e3,
            mb / secs,
            items as f64 / secs
        );
    }
    println!(
        "parse + normalize / parse-only time: {:.2}x (target <= 1.5x)",
        normalize.as_secs_f64() / parse.as_secs_f64()
    );
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
