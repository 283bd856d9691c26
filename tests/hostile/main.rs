//! Hostile sources against the real binary: malicious and broken XML, misbehaving
//! HTTP servers, script in every field, absurd sizes, and redirects towards internal
//! addresses. Each scenario is a test of its own: its own daemon polls the bad source
//! next to a healthy one, and the daemon must stay up, keep publishing the healthy
//! source, publish nothing dangerous, name what went wrong in the bad source's
//! status, and stay under [`RSS_LIMIT_KB`] of resident memory.
//!
//! Inputs are generated here; the servers ([`server`]) are raw sockets on 127.0.0.1,
//! so a case can misbehave below HTTP (never answer, reset mid-body, trickle). The
//! scenarios: [`xml`], [`http`], [`content`], and the commands in [`commands`].

#[path = "../common/mod.rs"]
mod common;

mod commands;
mod content;
mod http;
mod server;
mod xml;

use common::daemon::{Daemon, body, config_text};
use common::write_config;
use server::Hostile;
use std::path::Path;
use std::time::{Duration, Instant};
use tributary::ops::status::{SourceStatus, Status, parse_json};

/// 256 MB: the most resident memory the daemon may ever reach in these tests.
const RSS_LIMIT_KB: u64 = 256 * 1024;
/// How long the first round of a test daemon may take.
const FIRST_ROUND: Duration = Duration::from_secs(60);

fn rss(title: &str, items: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title><link>https://example.org/</link><description>d</description>{items}</channel></rss>\n"
    )
    .into_bytes()
}

/// A well-behaved feed whose items are named `{tag} healthy 1..3`.
fn healthy(tag: &str) -> Vec<u8> {
    let items: String = (1..=3)
        .map(|i| format!("<item><title>{tag} healthy {i}</title><link>https://example.org/{tag}/{i}</link><guid>{tag}-{i}</guid><pubDate>Mon, 0{i} Jun 2026 10:00:00 GMT</pubDate></item>"))
        .collect();
    rss(&format!("{tag} healthy"), &items)
}

/// A daemon under test, with the runtime its hostile server runs on.
struct Bench {
    daemon: Daemon,
    started: Instant,
    _dir: tempfile::TempDir,
}

fn start(dir: tempfile::TempDir, poll: &str, sources: &[(String, &str)]) -> Bench {
    let mut rest = format!("[poll]\n{poll}\n");
    for (url, extra) in sources {
        rest.push_str(&format!("[[source]]\nurl = \"{url}\"\n{extra}\n"));
    }
    let path = write_config(dir.path(), &config_text(dir.path(), &rest));
    let started = Instant::now();
    let daemon = Daemon::start(&path);
    daemon.wait_for_log("every source polled once", FIRST_ROUND);
    Bench {
        daemon,
        started,
        _dir: dir,
    }
}

/// Peak resident memory of `pid`, in kB.
fn peak_rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Markup that must never reach a reader, lower case. XML outputs are checked after
/// one level of entity decoding, since a reader decodes it before rendering.
const DANGEROUS: &[&str] = &[
    "<script",
    "onerror",
    "onload",
    "javascript:",
    "data:text/html",
    "<iframe",
    "<object",
    "<embed",
    "<svg",
    "expression(",
    "<base",
    "http-equiv",
    "<style",
    "<meta",
    "<form",
];

/// Where `needle` first occurs as markup a reader acts on: a tag it opens, or inside
/// a tag (an attribute). Text between tags, such as a title that reads
/// `&lt;img src=x onerror=…&gt;` (text about a tag, shown as such), is not markup.
fn in_markup(seen: &str, needle: &str) -> Option<usize> {
    let opens_tag = |at: usize| {
        seen[at + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'))
    };
    seen.match_indices(needle).map(|(at, _)| at).find(|&at| {
        if needle.starts_with('<') {
            return opens_tag(at);
        }
        let before = &seen[..at];
        let tag = before
            .rmatch_indices('<')
            .map(|(i, _)| i)
            .find(|&i| opens_tag(i));
        tag.is_some_and(|tag| !before[tag..].contains('>'))
    })
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl Bench {
    fn statuses(&self) -> Vec<SourceStatus> {
        let response = self.daemon.get("/sources.json");
        parse_json(body(&response).as_bytes())
            .unwrap_or_else(|e| panic!("/sources.json: {e}\n{response}"))
    }

    fn status(&self, url: &str) -> SourceStatus {
        self.statuses()
            .into_iter()
            .find(|s| s.url == url)
            .unwrap_or_else(|| panic!("no status for {url}"))
    }

    /// The source at `url` failed, and its error contains every one of `words`.
    fn assert_failed(&self, url: &str, words: &[&str]) -> String {
        let status = self.status(url);
        let error = status.last_error.clone().unwrap_or_default();
        assert!(
            matches!(status.status, Status::Failing | Status::BackingOff),
            "{url}: {status:?}"
        );
        for word in words {
            assert!(
                error.to_lowercase().contains(&word.to_lowercase()),
                "{url}: {error:?} does not say {word:?}"
            );
        }
        error
    }

    /// Every output, with what a reader would see of it.
    fn outputs(&self) -> Vec<(&'static str, String)> {
        ["/feed.xml", "/atom.xml", "/feed.json", "/", "/sources"]
            .into_iter()
            .map(|path| {
                let response = self.daemon.get(path);
                assert!(
                    response.starts_with("HTTP/1.1 200"),
                    "GET {path}: {}",
                    response.lines().next().unwrap_or("")
                );
                let body = body(&response).to_string();
                let seen = match path {
                    "/feed.xml" | "/atom.xml" => xml_unescape(&body),
                    // The page's own <head> holds its <meta> and <style>.
                    "/" | "/sources" => body
                        .split_once("</head>")
                        .map_or(body.clone(), |(_, b)| b.to_string()),
                    _ => body,
                };
                (path, seen)
            })
            .collect()
    }

    /// The checks every case shares: alive, no panic, the healthy items published,
    /// nothing dangerous and none of `secrets` in any output, the outputs well-formed,
    /// memory bounded. Returns the peak RSS in kB.
    fn assert_sound(&mut self, healthy_tag: &str, secrets: &[&str]) -> u64 {
        assert!(
            self.daemon.child_alive(),
            "the daemon died; the log:\n{}",
            self.daemon.log()
        );
        let log = self.daemon.log();
        assert!(!log.contains("panicked"), "a panic:\n{log}");
        self.daemon.wait_for_body(
            "/feed.xml",
            &format!("{healthy_tag} healthy 3"),
            FIRST_ROUND,
        );
        for (path, seen) in self.outputs() {
            let lower = seen.to_lowercase();
            for needle in DANGEROUS {
                if let Some(at) = in_markup(&lower, needle) {
                    let from = lower.floor_char_boundary(at.saturating_sub(200));
                    let to = lower.ceil_char_boundary((at + 200).min(lower.len()));
                    panic!("{path} carries {needle:?}: …{}…", &seen[from..to]);
                }
            }
            for secret in secrets {
                assert!(!seen.contains(secret), "{path} leaks {secret:?}");
            }
            assert!(
                !seen
                    .bytes()
                    .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')),
                "{path} carries a control character"
            );
        }
        for path in ["/feed.xml", "/atom.xml", "/feed.json"] {
            let response = self.daemon.get(path);
            feed_rs::parser::parse(body(&response).as_bytes())
                .unwrap_or_else(|e| panic!("{path} does not parse: {e}"));
        }
        let peak = peak_rss_kb(self.daemon.pid());
        assert!(
            peak < RSS_LIMIT_KB,
            "peak RSS {peak} kB is over {RSS_LIMIT_KB} kB"
        );
        peak
    }

    /// Prints the group's time and peak memory, and for each source how long after
    /// the scheduler started its first poll ended (from the log's time stamps).
    fn report(&self, case: &str, peak_kb: u64) {
        eprintln!(
            "hostile {case}: {:.1} s, peak RSS {} MB",
            self.started.elapsed().as_secs_f64(),
            peak_kb / 1024
        );
        let log = self.daemon.log();
        let stamp = |line: &str| {
            line.split_whitespace()
                .next()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        };
        let Some(start) = log
            .lines()
            .find(|l| l.contains("scheduler started"))
            .and_then(stamp)
        else {
            return;
        };
        for status in self.statuses() {
            let needle = format!("source={} ", status.url);
            if let Some(at) = log.lines().find(|l| l.contains(&needle)).and_then(stamp) {
                eprintln!(
                    "  {:>6} ms  {}  {}",
                    (at - start).num_milliseconds(),
                    status.url,
                    status.last_error.as_deref().unwrap_or("ok")
                );
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// One scenario with its own hostile server and daemon: the daemon polls the healthy
/// feed tagged `tag` (at `/healthy`) and the sources `serve` sets up on the server
/// and returns (URL, extra source lines), with `[poll]` lines `poll`. `serve` also
/// gets the runtime (for more servers) and the daemon's directory.
struct Scenario {
    bench: Bench,
    server: Hostile,
    _runtime: tokio::runtime::Runtime,
}

fn scenario(
    tag: &str,
    poll: &str,
    serve: impl FnOnce(&Hostile, &tokio::runtime::Runtime, &Path) -> Vec<(String, &'static str)>,
) -> Scenario {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    let dir = tempfile::tempdir().unwrap();
    server.body("/healthy", "application/rss+xml", healthy(tag));
    let mut sources = vec![(server.url("/healthy"), "")];
    sources.extend(serve(&server, &runtime, dir.path()));
    let bench = start(dir, poll, &sources);
    Scenario {
        bench,
        server,
        _runtime: runtime,
    }
}

impl Scenario {
    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The source at `path` was read: its status is ok.
    fn assert_ok(&self, path: &str) {
        let status = self.bench.status(&self.url(path));
        assert_eq!(status.status, Status::Ok, "{status:?}");
    }

    /// Every feed output and the page stay under 256 KB.
    fn assert_outputs_small(&self) {
        for path in ["/feed.xml", "/atom.xml", "/feed.json", "/"] {
            let size = body(&self.bench.daemon.get(path)).len();
            assert!(size < 256 * 1024, "{path} is {size} bytes");
        }
    }
}
