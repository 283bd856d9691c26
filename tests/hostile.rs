//! Hostile sources against the real binary: malicious and broken XML, misbehaving
//! HTTP servers, script in every field, absurd sizes, and redirects towards internal
//! addresses. Each daemon polls several bad sources next to a healthy one; for every
//! case the daemon must stay up, keep publishing the healthy source, publish nothing
//! dangerous, name what went wrong in the bad source's status, and stay under
//! [`RSS_LIMIT_KB`] of resident memory.
//!
//! Inputs are generated here; the servers are raw sockets on 127.0.0.1, so a case can
//! misbehave below HTTP (never answer, reset mid-body, trickle).

mod daemon;

use daemon::{Daemon, config_text};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tributary::ops::status::{SourceStatus, Status, parse_json};

/// 256 MB: the most resident memory the daemon may ever reach in these tests.
const RSS_LIMIT_KB: u64 = 256 * 1024;
/// How long the first round of a test daemon may take.
const FIRST_ROUND: Duration = Duration::from_secs(60);

/// What the hostile server does on one path.
#[derive(Clone)]
enum Act {
    /// A complete response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Arc<Vec<u8>>,
    },
    /// `Content-Encoding: gzip` of 1 GiB of zeros (about 1 MB on the wire), streamed.
    GzipBomb(Arc<GzipBomb>),
    /// 200 with headers, then one byte per second, at most 120.
    Trickle,
    /// Accepts the connection and never answers.
    Silent,
    /// Promises 100 000 bytes, sends 1 000 of them, then resets the connection.
    ResetMidBody,
}

/// A raw HTTP/1.1 server on loopback whose every path misbehaves in its own way.
struct Hostile {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Act>>>,
}

impl Hostile {
    fn start(runtime: &tokio::runtime::Runtime) -> Hostile {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Act>>> = Arc::default();
        let table = routes.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let table = table.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, table).await;
                });
            }
        });
        Hostile { addr, routes }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, act: Act) {
        self.routes.lock().unwrap().insert(path.to_string(), act);
    }

    fn body(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.respond(path, 200, &[("Content-Type", content_type)], body);
    }

    fn respond(&self, path: &str, status: u16, headers: &[(&str, &str)], body: Vec<u8>) {
        self.set(
            path,
            Act::Respond {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body: Arc::new(body),
            },
        );
    }

    fn redirect(&self, path: &str, location: &str) {
        self.respond(path, 302, &[("Location", location)], Vec::new());
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn answer(
    mut stream: TcpStream,
    routes: Arc<Mutex<HashMap<String, Act>>>,
) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let act = routes.lock().unwrap().get(&path).cloned();
    let Some(act) = act else {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    };
    match act {
        Act::Respond {
            status,
            headers,
            body,
        } => {
            let mut out = format!("HTTP/1.1 {status} Whatever\r\nConnection: close\r\n");
            for (name, value) in &headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            stream.write_all(out.as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Act::GzipBomb(bomb) => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n")
                .await?;
            stream.write_all(&bomb.head).await?;
            for _ in 0..bomb.repeat {
                stream.write_all(&bomb.block).await?;
            }
            stream.write_all(&bomb.tail).await?;
        }
        Act::Trickle => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 120\r\nConnection: close\r\n\r\n")
                .await?;
            for _ in 0..120 {
                stream.write_all(b" ").await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Act::Silent => {
            // Held open (bounded), reading nothing, answering nothing.
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        Act::ResetMidBody => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Reset</title>")
                .await?;
            stream.write_all(&[b' '; 1000]).await?;
            stream.flush().await?;
            // SO_LINGER 0: close() sends a RST instead of a FIN.
            stream.set_zero_linger()?;
            drop(stream);
        }
    }
    Ok(())
}

/// The parts of a gzip stream of 1 GiB of zeros: `head`, then `block` `repeat` times,
/// then `tail`. Each block is one MiB of zeros deflated with a full flush, which
/// resets the compressor, so every block after the first is the same bytes.
struct GzipBomb {
    head: Vec<u8>,
    block: Vec<u8>,
    repeat: usize,
    tail: Vec<u8>,
}

impl GzipBomb {
    fn new() -> GzipBomb {
        use flate2::{Compress, Compression, FlushCompress};
        let zeros = vec![0u8; 1 << 20];
        let mut compress = Compress::new(Compression::best(), false);
        let mut deflate = |input: &[u8], flush: FlushCompress| {
            let mut out = Vec::with_capacity(64 * 1024);
            compress.compress_vec(input, &mut out, flush).unwrap();
            out
        };
        let first = deflate(&zeros, FlushCompress::Full);
        let block = deflate(&zeros, FlushCompress::Full);
        let again = deflate(&zeros, FlushCompress::Full);
        assert_eq!(block, again, "a full flush makes the blocks repeat");
        let end = deflate(&[], FlushCompress::Finish);
        // gzip header: magic, deflate, no flags, no time, no extra flags, unix.
        let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        head.extend_from_slice(&first);
        let mut tail = end;
        // CRC-32 of 1 GiB of zeros is never checked: the reader stops long before.
        tail.extend_from_slice(&[0, 0, 0, 0]);
        tail.extend_from_slice(&(1u32 << 30).to_le_bytes());
        let bomb = GzipBomb {
            head,
            block,
            repeat: 1023,
            tail,
        };
        // The first 4 MiB decompress to zeros, as the stream promises.
        let mut sample = bomb.head.clone();
        for _ in 0..3 {
            sample.extend_from_slice(&bomb.block);
        }
        sample.extend_from_slice(&bomb.tail);
        let mut decoded = Vec::new();
        let _ = std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&sample[..]),
            &mut decoded,
        );
        assert_eq!(decoded.len(), 4 << 20);
        assert!(decoded.iter().all(|&b| b == 0));
        bomb
    }

    fn wire_len(&self) -> usize {
        self.head.len() + self.block.len() * self.repeat + self.tail.len()
    }
}

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
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, config_text(dir.path(), &rest)).unwrap();
    let started = Instant::now();
    let daemon = Daemon::start(&path);
    daemon.wait_for_log("every source polled once", FIRST_ROUND);
    Bench {
        daemon,
        started,
        _dir: dir,
    }
}

/// The body of an HTTP response.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
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
                if let Some(at) = lower.find(needle) {
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

/// Billion laughs: ten levels of ten references each, a billion "lol"s if expanded.
fn billion_laughs() -> Vec<u8> {
    let mut doctype = String::from("<!ENTITY lol0 \"lol\">");
    for level in 1..=9 {
        let refs = format!("&lol{};", level - 1).repeat(10);
        doctype.push_str(&format!("<!ENTITY lol{level} \"{refs}\">"));
    }
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [{doctype}]>\n<rss version=\"2.0\"><channel><title>Laughs &lol9;</title><link>https://example.org/</link><description>&lol9;</description><item><title>laugh &lol9;</title><guid>laugh-1</guid><description>&lol9;</description></item></channel></rss>"
    )
    .into_bytes()
}

/// An external entity naming a local file, used in the title and the body.
fn external_entity(secret_path: &Path) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM \"file://{}\"><!ENTITY % pe SYSTEM \"file://{}\"> %pe;]>\n<rss version=\"2.0\"><channel><title>XXE &xxe;</title><link>https://example.org/</link><description>d</description><item><title>xxe item &xxe;</title><guid>xxe-1</guid><description>&lt;p&gt;&xxe;&lt;/p&gt;</description></item></channel></rss>",
        secret_path.display(),
        secret_path.display()
    )
    .into_bytes()
}

fn deep_nesting(depth: usize) -> Vec<u8> {
    let mut doc = String::from(
        "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>Deep</title><item><title>deep item</title><guid>deep-1</guid>",
    );
    doc.push_str(&"<x>".repeat(depth));
    doc.push_str(&"</x>".repeat(depth));
    doc.push_str("</item></channel></rss>");
    doc.into_bytes()
}

/// One line of `size` bytes: a few items and an unknown element holding the rest.
fn single_line(size: usize) -> Vec<u8> {
    let head = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>One line</title><link>https://example.org/</link><description>d</description><item><title>one-line item</title><guid>line-1</guid></item><padding>";
    let tail = "</padding></channel></rss>";
    let mut doc = Vec::with_capacity(size);
    doc.extend_from_slice(head.as_bytes());
    doc.resize(size - tail.len(), b'a');
    doc.extend_from_slice(tail.as_bytes());
    doc
}

/// A DOCTYPE whose internal subset declares `count` entities of 1 KB each.
fn huge_doctype(count: usize) -> Vec<u8> {
    let value = "v".repeat(1000);
    let mut doc = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [");
    for i in 0..count {
        doc.push_str(&format!("<!ENTITY e{i} \"{value}\">"));
    }
    doc.push_str("]>\n<rss version=\"2.0\"><channel><title>Doctype</title><link>https://example.org/</link><description>d</description><item><title>doctype item &e1;</title><guid>doctype-1</guid></item></channel></rss>");
    doc.into_bytes()
}

#[test]
fn hostile_xml() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("XXE-SECRET-{}", std::process::id());
    let secret_path = dir.path().join("secret.txt");
    std::fs::write(&secret_path, &secret).unwrap();

    server.body("/healthy", "application/rss+xml", healthy("xml"));
    server.body("/laughs", "application/rss+xml", billion_laughs());
    server.body("/xxe", "application/rss+xml", external_entity(&secret_path));
    server.body("/deep", "application/rss+xml", deep_nesting(100_000));
    // Just under quick-xml's own limit of 65 535: what feed-rs builds must hold too.
    server.body("/deep-60k", "application/rss+xml", deep_nesting(60_000));
    server.body("/huge-line", "application/rss+xml", single_line(50 << 20));
    let whole = healthy("truncated");
    server.body(
        "/truncated",
        "application/rss+xml",
        whole[..whole.len() / 2].to_vec(),
    );
    let mut invalid = rss(
        "Invalid UTF-8",
        "<item><title>bad bytes TITLE</title><guid>utf8-1</guid><description>x BODY y</description></item>",
    );
    for marker in [&b"TITLE"[..], b"BODY"] {
        let at = invalid
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap();
        invalid.splice(at..at + marker.len(), [0xff, 0xfe, 0xc3, 0x28, 0x80]);
    }
    server.body("/invalid-utf8", "application/rss+xml", invalid);
    let control = rss(
        "Control \u{1}\u{7}",
        "<item><title>nul &#x0; bell \u{7} esc \u{1b} del \u{7f} ffff \u{fffe}</title><guid>ctl-1</guid><description>&#x1;&#x8;body\u{0}</description></item><item><title>second control item \u{1}</title><guid>ctl-2</guid></item>",
    );
    server.body("/control", "application/rss+xml", control);
    server.body("/doctype", "application/rss+xml", huge_doctype(8_000));

    let url = |p: &str| server.url(p);
    let sources: Vec<(String, &str)> = [
        "/healthy",
        "/laughs",
        "/xxe",
        "/deep",
        "/deep-60k",
        "/huge-line",
        "/truncated",
        "/invalid-utf8",
        "/control",
        "/doctype",
    ]
    .iter()
    .map(|p| (url(p), ""))
    .collect();
    let mut bench = start(dir, "concurrency = 4\nper_host = 4", &sources);
    let peak = bench.assert_sound("xml", &[&secret]);
    bench.assert_failed(&url("/huge-line"), &["exceeds the cap"]);
    bench.assert_failed(&url("/truncated"), &["parse"]);
    bench.assert_failed(&url("/deep"), &["deeper than"]);
    // Entities are never expanded and nothing is read from disk; what parses is
    // published, with bad bytes as U+FFFD and control characters removed.
    for path in [
        "/laughs",
        "/xxe",
        "/deep-60k",
        "/invalid-utf8",
        "/control",
        "/doctype",
    ] {
        let status = bench.status(&url(path));
        assert_eq!(status.status, Status::Ok, "{status:?}");
    }
    assert_eq!(bench.status(&url("/control")).items, Some(2));
    bench
        .daemon
        .wait_for_body("/feed.xml", "bad bytes \u{fffd}", FIRST_ROUND);
    bench
        .daemon
        .wait_for_body("/feed.xml", "second control item", FIRST_ROUND);
    for path in ["/feed.xml", "/atom.xml", "/feed.json", "/"] {
        let size = body(&bench.daemon.get(path)).len();
        assert!(size < 256 * 1024, "{path} is {size} bytes");
    }
    bench.report("xml", peak);
}

/// The 50 MB single-line document again, under a cap that lets it be parsed.
#[test]
fn hostile_xml_50_mb_parsed() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.body("/healthy", "application/rss+xml", healthy("big"));
    server.body("/huge-line", "application/rss+xml", single_line(50 << 20));
    let sources = [(server.url("/healthy"), ""), (server.url("/huge-line"), "")];
    let mut bench = start(
        tempfile::tempdir().unwrap(),
        "max_body_bytes = 67108864",
        &sources,
    );
    let peak = bench.assert_sound("big", &[]);
    let status = bench.status(&server.url("/huge-line"));
    assert_eq!(status.status, Status::Ok, "{status:?}");
    bench
        .daemon
        .wait_for_body("/feed.xml", "one-line item", FIRST_ROUND);
    bench.report("50 MB single line, parsed", peak);
}

/// A TLS server on loopback with a freshly made self-signed certificate, serving a
/// feed to whoever accepts the certificate (no one should).
fn start_tls(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    use tokio_rustls::rustls;
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let body = healthy("tls");
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[test]
fn hostile_http() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    // A second loopback server: the target of a loopback-to-loopback redirect.
    let other = Hostile::start(&runtime);
    other.body("/feed", "application/rss+xml", healthy("neighbour"));
    other.body("/zero", "application/rss+xml", healthy("unspecified"));
    let tls = start_tls(&runtime);

    server.body("/healthy", "application/rss+xml", healthy("http"));
    let bomb = Arc::new(GzipBomb::new());
    eprintln!("gzip bomb: {} bytes on the wire for 1 GiB", bomb.wire_len());
    server.set("/bomb", Act::GzipBomb(bomb));
    server.body("/large", "application/rss+xml", vec![b' '; 5 << 20]);
    server.set("/trickle", Act::Trickle);
    server.set("/silent", Act::Silent);
    server.set("/reset", Act::ResetMidBody);
    server.redirect("/loop-a", "/loop-b");
    server.redirect("/loop-b", "/loop-a");
    for i in 0..20 {
        server.redirect(&format!("/chain/{i}"), &format!("/chain/{}", i + 1));
    }
    server.body("/chain/20", "application/rss+xml", healthy("chain"));
    server.body(
        "/challenge",
        "text/html; charset=utf-8",
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><div id=\"cf-challenge-running\">Checking your browser before accessing the site.</div><script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1\"></script></body></html>".to_vec(),
    );
    server.body("/empty", "application/rss+xml", Vec::new());
    server.respond("/429-seconds", 429, &[("Retry-After", "7200")], Vec::new());
    let later =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3 * 3600));
    server.respond("/429-date", 429, &[("Retry-After", &later)], Vec::new());
    server.respond("/500", 500, &[], b"Internal Server Error".to_vec());
    server.redirect(
        "/to-metadata",
        "http://169.254.169.254/latest/meta-data/iam/",
    );
    server.redirect("/to-private", "http://10.0.0.1/feed");
    // 0.0.0.0 is not a public address, yet Linux connects it to this machine: the
    // one non-loopback class a test can reach without leaving loopback. (The tests
    // never connect to 169.254.169.254 or 10.0.0.1: something may well answer.)
    let zero = format!("http://0.0.0.0:{}/zero", other.addr.port());
    server.redirect("/to-unspecified", &zero);
    server.redirect("/allowed-unspecified", &zero);
    server.redirect("/to-loopback", &other.url("/feed"));
    // A source on 0.0.0.0 may reach that class only: a host name that resolves to
    // loopback is refused by the resolver, whatever the redirect says.
    server.redirect(
        "/to-localhost",
        &format!("http://localhost:{}/feed", other.addr.port()),
    );
    // A web page advertising a feed on the metadata service: discovery is refused too.
    server.body(
        "/page-metadata",
        "text/html",
        b"<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"http://169.254.169.254/latest/feed.xml\"></head><body>news</body></html>".to_vec(),
    );

    let url = |p: &str| server.url(p);
    let tls_url = format!("https://{tls}/feed");
    let mut sources: Vec<(String, &str)> = [
        "/healthy",
        "/bomb",
        "/large",
        "/trickle",
        "/silent",
        "/reset",
        "/loop-a",
        "/chain/0",
        "/challenge",
        "/empty",
        "/429-seconds",
        "/429-date",
        "/500",
        "/to-metadata",
        "/to-private",
        "/to-unspecified",
        "/to-loopback",
        "/page-metadata",
    ]
    .iter()
    .map(|p| (url(p), ""))
    .collect();
    sources.push((url("/allowed-unspecified"), "allow_private = true"));
    sources.push((tls_url.clone(), ""));
    let via_zero = format!("http://0.0.0.0:{}/to-localhost", server.addr.port());
    sources.push((via_zero.clone(), ""));
    let mut bench = start(
        tempfile::tempdir().unwrap(),
        "timeout = \"3s\"\nconnect_timeout = \"1s\"\nconcurrency = 32\nper_host = 32\nmax_body_bytes = 4194304",
        &sources,
    );
    let peak = bench.assert_sound("http", &[]);
    let failed = [
        ("/bomb", &["exceeds the cap of 4194304 bytes"][..]),
        ("/large", &["exceeds the cap of 4194304 bytes"]),
        ("/trickle", &["no complete response within 3s"]),
        ("/silent", &["no complete response within 3s"]),
        ("/reset", &["connection reset"]),
        ("/loop-a", &["redirect loop"]),
        ("/chain/0", &["more than 5 redirects"]),
        ("/challenge", &["bot-protection challenge page"]),
        ("/empty", &["the body is empty"]),
        ("/429-seconds", &["429 Too Many Requests"]),
        ("/429-date", &["429 Too Many Requests"]),
        ("/500", &["500 Internal Server Error"]),
        (
            "/to-metadata",
            &[
                "fetch: refused: redirect to 169.254.169.254 is a link-local address; set allow_private = true to allow",
            ],
        ),
        (
            "/to-private",
            &["refused: redirect to 10.0.0.1 is a private address"],
        ),
        (
            "/to-unspecified",
            &["refused: redirect to 0.0.0.0 is a reserved address"],
        ),
    ];
    for (path, words) in failed {
        let status = bench.status(&url(path));
        assert_eq!(status.consecutive_failures, 1, "{status:?}");
        bench.assert_failed(&url(path), words);
    }
    bench.assert_failed(
        &via_zero,
        &[
            "refused: localhost (",
            "is a loopback address; set allow_private = true",
        ],
    );
    bench.assert_failed(
        &url("/page-metadata"),
        &["refused: 169.254.169.254 is a link-local address"],
    );
    let tls_status = bench.status(&tls_url);
    assert_eq!(tls_status.consecutive_failures, 1, "{tls_status:?}");
    bench.assert_failed(
        &tls_url,
        &["TLS certificate is not trusted", "UnknownIssuer"],
    );
    // Retry-After in seconds (2 h) and as a date (3 h) sets the next poll, ±10%.
    for (path, hours) in [("/429-seconds", 2.0), ("/429-date", 3.0)] {
        let status = bench.status(&url(path));
        let wait = (status.next_poll.unwrap() - status.last_attempt.unwrap()).num_seconds() as f64;
        assert!(
            (wait / 3600.0 - hours).abs() <= hours * 0.1 + 0.01,
            "{path}: next poll in {wait} s"
        );
    }
    // Loopback may redirect to loopback; allow_private reaches the rest.
    for (path, tag) in [
        ("/to-loopback", "neighbour"),
        ("/allowed-unspecified", "unspecified"),
    ] {
        assert_eq!(bench.status(&url(path)).status, Status::Ok, "{path}");
        bench
            .daemon
            .wait_for_body("/feed.xml", &format!("{tag} healthy 3"), FIRST_ROUND);
    }
    bench.report("http", peak);
}

/// Every way we know to carry script, styles or navigation in HTML.
const XSS_HTML: &str = r#"<p>Story text</p><script>alert('script')</script><img src="x.png" onerror="alert('onerror')"><body onload="alert('onload')"><a href="javascript:alert('a')">js link</a><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a><svg onload="alert('svg')"><circle r="1"/></svg><iframe src="https://evil.example/"></iframe><object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf"><style>body{background:url("javascript:alert('css')")}</style><div style="width: expression(alert('expr'))">expr</div><base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example/"><form action="https://evil.example/"><input name="p"></form><p>End of story</p>"#;

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xss_rss() -> Vec<u8> {
    let title = xml_escape(
        r#"RSS xss title <script>alert('t')</script><img src=x onerror=alert(1)><svg onload=alert(2)>"#,
    );
    let body = xml_escape(XSS_HTML);
    let items = format!(
        r#"<item><title>{title}</title><link>javascript:alert('link')</link><guid isPermaLink="false">xss-1</guid><description>{body}</description><content:encoded><![CDATA[{XSS_HTML}]]></content:encoded><enclosure url="javascript:alert('enc')" type="audio/mpeg" length="1"/><comments>javascript:alert('comments')</comments><author>x@example.org (<script>alert('author')</script>)</author><category>&lt;script&gt;alert('cat')&lt;/script&gt;</category></item><item><title>RSS xss data link</title><link>data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;</link><guid isPermaLink="false">xss-2</guid><description>{body}</description></item>"#
    );
    format!(
        "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>{title}</title><link>javascript:alert('channel')</link><description>{body}</description>{items}</channel></rss>"
    )
    .into_bytes()
}

fn xss_atom() -> Vec<u8> {
    let body = xml_escape(XSS_HTML);
    format!(
        r#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">Atom xss &lt;script&gt;alert('feed')&lt;/script&gt;</title><id>urn:xss</id><updated>2026-06-01T10:00:00Z</updated><link href="javascript:alert('feed')"/>
<entry><title type="html">Atom xss html title &lt;img src=x onerror=alert(1)&gt;</title><id>urn:xss:1</id><updated>2026-06-01T10:00:00Z</updated><link rel="alternate" href="javascript:alert('entry')"/><summary type="html">{body}</summary><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>xhtml</p><script>alert('xhtml')</script><a href="javascript:alert(1)">x</a><img src="x" onerror="alert(1)"/></div></content></entry>
<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Atom xss xhtml title <script>alert('t')</script></div></title><id>urn:xss:2</id><updated>2026-06-01T11:00:00Z</updated><link href="https://example.org/ok"/><content type="html">{body}</content></entry>
</feed>"#
    )
    .into_bytes()
}

fn xss_json() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON xss <script>alert('feed')</script>",
        "home_page_url": "javascript:alert('home')",
        "items": [{
            "id": "json-xss-1",
            "url": "javascript:alert('url')",
            "external_url": "data:text/html,<script>alert(1)</script>",
            "title": "JSON xss title <img src=x onerror=alert(1)>",
            "content_html": XSS_HTML,
            "summary": XSS_HTML,
            "image": "javascript:alert('image')",
            "date_published": "2026-06-01T10:00:00Z",
            "authors": [{"name": "<script>alert('author')</script>", "url": "javascript:alert(1)"}],
            "tags": ["<script>alert('tag')</script>"],
            "attachments": [{"url": "javascript:alert('att')", "mime_type": "audio/mpeg"}]
        }]
    }))
    .unwrap()
}

fn many_items(count: usize) -> Vec<u8> {
    let items: String = (0..count)
        .map(|i| format!("<item><title>many {i}</title><guid>m{i}</guid></item>"))
        .collect();
    rss("Many", &items)
}

fn one_guid(count: usize) -> Vec<u8> {
    let items: String = (0..count)
        .map(|i| format!("<item><title>same guid {i}</title><link>https://example.org/same/{i}</link><guid isPermaLink=\"false\">the-one-guid</guid><pubDate>Mon, 01 Jun 2026 10:00:00 GMT</pubDate></item>"))
        .collect();
    rss("One guid", &items)
}

fn odd_dates() -> Vec<u8> {
    rss(
        "Odd dates",
        "<item><title>from 2099</title><guid>d2099</guid><pubDate>Thu, 01 Jan 2099 00:00:00 GMT</pubDate></item><item><title>from 1970</title><guid>d1970</guid><pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item><item><title>epoch zero</title><guid>d0</guid><pubDate>0</pubDate></item>",
    )
}

fn big_title(size: usize) -> Vec<u8> {
    let title = "T".repeat(size);
    rss(
        "Big title",
        &format!(
            "<item><title>big {title}</title><guid>big-1</guid><description>x</description></item>"
        ),
    )
}

#[test]
fn hostile_content() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.body("/healthy", "application/rss+xml", healthy("content"));
    server.body("/xss-rss", "application/rss+xml", xss_rss());
    server.body("/xss-atom", "application/atom+xml", xss_atom());
    server.body("/xss-json", "application/feed+json", xss_json());
    server.body("/many", "application/rss+xml", many_items(100_000));
    server.body("/one-guid", "application/rss+xml", one_guid(1000));
    server.body("/dates", "application/rss+xml", odd_dates());
    server.body("/big-title", "application/rss+xml", big_title(1 << 20));
    let url = |p: &str| server.url(p);
    let sources: Vec<(String, &str)> = [
        "/healthy",
        "/xss-rss",
        "/xss-atom",
        "/xss-json",
        "/many",
        "/one-guid",
        "/dates",
        "/big-title",
    ]
    .iter()
    .map(|p| (url(p), ""))
    .collect();
    let mut bench = start(
        tempfile::tempdir().unwrap(),
        "concurrency = 8\nper_host = 8\n[publish]\nmax_per_source = 10",
        &sources,
    );
    let peak = bench.assert_sound("content", &[]);
    for path in ["/xss-rss", "/xss-atom", "/xss-json", "/dates", "/big-title"] {
        let status = bench.status(&url(path));
        assert_eq!(status.status, Status::Ok, "{status:?}");
    }
    // Sanitized, not dropped: the story around the script survives.
    let json = body(&bench.daemon.get("/feed.json")).to_string();
    let feed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let items = feed["items"].as_array().unwrap();
    for title in ["RSS xss title", "Atom xss html title", "JSON xss title"] {
        let item = items
            .iter()
            .find(|i| i["title"].as_str().is_some_and(|t| t.starts_with(title)))
            .unwrap_or_else(|| panic!("no item {title:?} in {json}"));
        let html = item["content_html"].as_str().unwrap_or_default();
        assert!(
            html.contains("Story text") || html.contains("xhtml"),
            "{title}: {html}"
        );
    }
    // 100 000 entries: the newest 1 000 are kept, with a warning.
    assert_eq!(bench.status(&url("/many")).items, Some(1000));
    bench
        .daemon
        .wait_for_log("more entries than are kept", Duration::from_secs(1));
    // 1 000 items under one guid are one item.
    assert_eq!(bench.status(&url("/one-guid")).items, Some(1));
    // 2099 is clamped to the fetch time; 1970 stays in 1970 (and ages out by retention).
    if let Some(at) = json.find("2099-") {
        panic!(
            "a date in 2099: {}",
            &json[at.saturating_sub(600)..at + 100]
        );
    }
    let old = items.iter().find(|i| i["title"] == "from 1970").unwrap();
    assert!(old["date_published"].as_str().unwrap().starts_with("1970-"));
    // The 1 MB title is cut to 1 000 characters and an ellipsis.
    let big = items
        .iter()
        .find_map(|i| i["title"].as_str().filter(|t| t.starts_with("big TTT")))
        .unwrap();
    assert_eq!(big.chars().count(), 1001);
    for path in ["/feed.xml", "/atom.xml", "/feed.json", "/"] {
        let size = body(&bench.daemon.get(path)).len();
        assert!(size < 256 * 1024, "{path} is {size} bytes");
    }
    bench.report("content", peak);
}

/// `tributary` with `args`, its stdout, stderr and whether it succeeded.
fn cli(args: &[&str]) -> (String, String, bool) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_remove("TRIBUTARY_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

/// A server that answers 500 forever is retried later and later, never given up.
#[test]
fn hostile_500_forever_backs_off() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.respond("/500", 500, &[], b"Internal Server Error".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        config_text(
            dir.path(),
            &format!("[[source]]\nurl = \"{}\"\n", server.url("/500")),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let started = Instant::now();
    let mut waits = Vec::new();
    for round in 1..=4 {
        let (_, stderr, _) = cli(&["poll", "--config", config]);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let (stdout, stderr, ok) = cli(&["sources", "--config", config, "--json"]);
        assert!(ok, "{stderr}");
        let status = parse_json(stdout.as_bytes()).unwrap().remove(0);
        assert_eq!(status.consecutive_failures, round, "{status:?}");
        assert!(
            status
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("500 Internal Server Error"),
            "{status:?}"
        );
        assert_ne!(status.status, Status::Gone);
        waits.push((status.next_poll.unwrap() - status.last_attempt.unwrap()).num_seconds());
    }
    // Doubling, ±10% jitter: each wait is well above the one before.
    for pair in waits.windows(2) {
        assert!(pair[1] as f64 > pair[0] as f64 * 1.5, "waits {waits:?}");
    }
    eprintln!(
        "hostile 500 forever: waits {waits:?} s, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `tributary inspect` refuses a redirect to the metadata service or a private
/// address at once, without trying to connect.
#[test]
fn hostile_inspect_refuses_internal_redirects() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/");
    server.redirect("/to-private", "http://10.0.0.1/feed");
    server.redirect("/to-loopback", &server.url("/feed"));
    server.body("/feed", "application/rss+xml", healthy("inspect"));
    for (path, expected) in [
        (
            "/to-metadata",
            "refused: redirect to 169.254.169.254 is a link-local address; set allow_private = true to allow",
        ),
        (
            "/to-private",
            "refused: redirect to 10.0.0.1 is a private address",
        ),
    ] {
        let started = Instant::now();
        let (_, stderr, ok) = cli(&["inspect", &server.url(path)]);
        let took = started.elapsed();
        assert!(!ok && stderr.contains(expected), "{path}: {stderr}");
        assert!(took < Duration::from_secs(5), "{path} took {took:?}");
        eprintln!("hostile inspect {path}: refused in {took:?}");
    }
    let (stdout, stderr, ok) = cli(&["inspect", &server.url("/to-loopback")]);
    assert!(
        ok && stdout.contains("inspect healthy 3"),
        "{stdout}{stderr}"
    );
}
