//! Test helpers: a loopback feed server, the daemon started in process on a temp
//! store, the binary run as a command, and (in [`daemon`]) `tributary run` as a child
//! process.
//!
//! Everything listens on 127.0.0.1 port 0; no test touches the internet.
#![allow(dead_code)]

pub mod daemon;
pub mod postgres;
pub mod python;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary::config::Config;

/// A fixture document from `tests/fixtures/feeds/`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/feeds")
        .join(name)
}

/// `text` in windows-1251; every character of it must have a byte there.
pub fn windows_1251(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

/// The `tributary` binary with `args`, without the environment variables that would
/// choose its config or state directory for it; for the caller to add to.
pub fn tributary_command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(args)
        .env_remove("TRIBUTARY_CONFIG")
        .env_remove("STATE_DIRECTORY");
    command
}

/// Runs the binary with `args` (see [`tributary_command`]) to the end.
pub fn tributary(args: &[&str]) -> std::process::Output {
    tributary_command(args).output().expect("the binary runs")
}

/// Writes `text` to `dir/feeds.toml`; returns that path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// How the feed server answers one path.
#[derive(Clone)]
pub enum Reply {
    /// A feed with an ETag; If-None-Match with it gets a 304.
    Feed { body: Vec<u8>, content_type: String },
    /// A bare status with extra headers (429 + Retry-After, 410, 500).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// `body` already gzip-compressed, sent with `Content-Encoding: gzip`.
    Gzipped { body: Vec<u8> },
    /// 200, then one byte every `every`, at most `bytes` bytes.
    Trickle { every: Duration, bytes: usize },
}

/// What the feed server saw, and switches that change how it answers.
#[derive(Default)]
pub struct FeedServerState {
    routes: Mutex<HashMap<String, Reply>>,
    pub requests: AtomicUsize,
    /// Requests that carried If-None-Match or If-Modified-Since.
    pub conditional: AtomicUsize,
    pub not_modified: AtomicUsize,
    /// When set, every request gets a 500.
    pub failing: AtomicBool,
    pub user_agents: Mutex<Vec<String>>,
    /// Requests per path.
    pub per_path: Mutex<HashMap<String, usize>>,
    /// Requests being answered right now, and the most at once.
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Every request's headers, in order.
    pub seen_headers: Mutex<Vec<axum::http::HeaderMap>>,
    /// Delay before every answer, to make concurrent requests overlap.
    pub latency_ms: AtomicUsize,
}

/// A loopback HTTP server serving feeds with ETags and 304s, like a well-behaved
/// publisher, and misbehaving on the paths told to.
pub struct FeedServer {
    pub addr: SocketAddr,
    pub state: Arc<FeedServerState>,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        // The tests' own reqwest clients need the process's rustls provider too.
        tributary::fetch::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(FeedServerState::default());
        let app = axum::Router::new()
            .fallback(serve_feed)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FeedServer { addr, state }
    }

    /// Serves `body` at `path` with `content_type`.
    pub fn route(&self, path: &str, body: Vec<u8>, content_type: &str) {
        self.reply(
            path,
            Reply::Feed {
                body,
                content_type: content_type.to_string(),
            },
        );
    }

    /// Answers `path` with `reply`.
    pub fn reply(&self, path: &str, reply: Reply) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub fn requests_for(&self, path: &str) -> usize {
        self.state
            .per_path
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn conditional(&self) -> usize {
        self.state.conditional.load(Ordering::SeqCst)
    }

    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }
}

/// Counts a request as in flight for as long as it lives.
struct InFlight(Arc<FeedServerState>);

impl InFlight {
    fn new(state: &Arc<FeedServerState>) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_feed(State(state): State<Arc<FeedServerState>>, request: Request) -> Response {
    let _in_flight = InFlight::new(&state);
    state.requests.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_string();
    *state
        .per_path
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    let headers = request.headers();
    state.seen_headers.lock().unwrap().push(headers.clone());
    if let Some(agent) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        state.user_agents.lock().unwrap().push(agent.to_string());
    }
    let if_none_match = headers.get(header::IF_NONE_MATCH).cloned();
    if if_none_match.is_some() || headers.contains_key(header::IF_MODIFIED_SINCE) {
        state.conditional.fetch_add(1, Ordering::SeqCst);
    }
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency as u64)).await;
    }
    if state.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    let reply = state.routes.lock().unwrap().get(&path).cloned();
    match reply {
        None => (StatusCode::NOT_FOUND, "no such feed").into_response(),
        Some(Reply::Feed { body, content_type }) => {
            let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&body));
            if if_none_match.is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
                state.not_modified.fetch_add(1, Ordering::SeqCst);
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
            }
            let mut response = Response::new(Body::from(body));
            let response_headers = response.headers_mut();
            response_headers.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
            response_headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&content_type).unwrap(),
            );
            response
        }
        Some(Reply::Status { status, headers }) => {
            let mut response = Response::new(Body::from("error"));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response.headers_mut().insert(
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            response
        }
        Some(Reply::Redirect { status, location }) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
            response
        }
        Some(Reply::Gzipped { body }) => {
            let mut response = Response::new(Body::from(body));
            let h = response.headers_mut();
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/rss+xml"),
            );
            response
        }
        Some(Reply::Trickle { every, bytes }) => {
            let stream = futures_util::stream::unfold(0usize, move |sent| async move {
                if sent >= bytes {
                    return None;
                }
                tokio::time::sleep(every).await;
                Some((Ok::<_, std::io::Error>(vec![b' ']), sent + 1))
            });
            let mut response = Response::new(Body::from_stream(stream));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/rss+xml"),
            );
            response
        }
    }
}

/// The daemon running in this process on a port-0 listener.
pub struct RunningApp {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    pub async fn start(config: Config) -> RunningApp {
        tributary::fetch::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(tributary::daemon::run(config, listener, async {
            let _ = rx.await;
        }));
        RunningApp {
            addr,
            shutdown: Some(tx),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown and waits (at most 10 s) for a clean exit.
    pub async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the daemon stops within 10 s")
            .expect("the daemon task does not panic")
            .expect("the daemon exits cleanly");
    }
}

/// A config read from `text` (as `feeds.toml` would be), with every source's interval
/// replaced by `interval` so tests need not wait the one-minute floor.
pub fn config_with_interval(text: &str, interval: Duration) -> Config {
    let mut config = tributary::config::parse(Path::new("test.toml"), text, None)
        .unwrap_or_else(|e| panic!("test config: {e}"));
    for source in &mut config.sources {
        source.interval = tributary::config::Interval::Fixed(interval);
    }
    config
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One item of the standard river, as ingested from the fixtures.
pub struct Expected {
    pub title: &'static str,
    pub link: &'static str,
    /// Unix seconds (UTC).
    pub time: i64,
    /// Local time on the HTML page with `timezone = "Europe/Moscow"`.
    pub moscow: &'static str,
    pub source_name: &'static str,
    /// Path of the source feed on the fixture server.
    pub source_path: &'static str,
}

/// 2026-02-06 00:00:00 UTC.
const FEB_6: i64 = 1_770_336_000;

/// The standard river (four fixture feeds of different formats), newest first.
pub const RIVER: [Expected; 10] = [
    expected(
        "Talks resume in Geneva",
        "https://wire.example/2026/02/talks",
        18 * 60,
        "21:00 06.02.2026",
        "World Wire",
        "/rss2.xml",
    ),
    expected(
        "New compiler release",
        "https://techlog.example/release",
        17 * 60,
        "20:00 06.02.2026",
        "Tech Log",
        "/atom.xml",
    ),
    expected(
        "Парк откроют после ремонта",
        "https://novosti.example/park",
        16 * 60 + 30,
        "19:30 06.02.2026",
        "Вести по-русски",
        "/koi8.xml",
    ),
    expected(
        "Comet seen from Earth",
        "https://science.example/comet",
        16 * 60,
        "19:00 06.02.2026",
        "Science",
        "/rss1.xml",
    ),
    expected(
        "Markets steady",
        "https://wire.example/2026/02/markets",
        14 * 60,
        "17:00 06.02.2026",
        "World Wire",
        "/rss2.xml",
    ),
    expected(
        "Kernel notes",
        "https://techlog.example/kernel",
        13 * 60,
        "16:00 06.02.2026",
        "Tech Log",
        "/atom.xml",
    ),
    expected(
        "Cells that repair themselves",
        "https://science.example/cells",
        12 * 60,
        "15:00 06.02.2026",
        "Science",
        "/rss1.xml",
    ),
    expected(
        "Storm warning for the coast",
        "https://wire.example/2026/02/storm",
        10 * 60,
        "13:00 06.02.2026",
        "World Wire",
        "/rss2.xml",
    ),
    expected(
        "Database tuning",
        "https://techlog.example/db",
        9 * 60,
        "12:00 06.02.2026",
        "Tech Log",
        "/atom.xml",
    ),
    expected(
        "Antarctic ice cores",
        "https://science.example/ice",
        8 * 60,
        "11:00 06.02.2026",
        "Science",
        "/rss1.xml",
    ),
];

const fn expected(
    title: &'static str,
    link: &'static str,
    minutes: i64,
    moscow: &'static str,
    source_name: &'static str,
    source_path: &'static str,
) -> Expected {
    Expected {
        title,
        link,
        time: FEB_6 + minutes * 60,
        moscow,
        source_name,
        source_path,
    }
}

/// Serves the standard river's four fixture feeds on `server`.
pub fn serve_river(server: &FeedServer) {
    server.route("/rss2.xml", fixture("rss2.xml"), "application/rss+xml");
    server.route("/atom.xml", fixture("atom.xml"), "application/atom+xml");
    server.route("/rss1.xml", fixture("rss1.xml"), "application/rdf+xml");
    server.route(
        "/koi8.xml",
        fixture("koi8-r-http-charset.xml"),
        "application/rss+xml; charset=koi8-r",
    );
}

/// The `[[source]]` tables of the standard river: World Wire tagged `world` and
/// `news`, Science tagged `science` and `news`, the other two untagged and unnamed.
pub fn river_sources(server: &FeedServer) -> String {
    format!(
        r#"
[[source]]
url = "{}"
name = "World Wire"
tags = ["world", "news"]

[[source]]
url = "{}"

[[source]]
url = "{}"
name = "Science"
tags = ["science", "news"]

[[source]]
url = "{}"
"#,
        server.url("/rss2.xml"),
        server.url("/atom.xml"),
        server.url("/rss1.xml"),
        server.url("/koi8.xml"),
    )
}

/// The fixture server and the daemon with the whole standard river stored and
/// published. `head` is the config above the sources (`[server]`, `[publish]`).
pub struct River {
    pub server: FeedServer,
    pub app: RunningApp,
    _store: tempfile::TempDir,
}

impl River {
    pub async fn start(head: &str) -> River {
        let server = FeedServer::start().await;
        serve_river(&server);
        let store = tempfile::tempdir().unwrap();
        let text = format!(
            // The fixtures are dated February 2026: retention must keep them.
            "{head}\n[store]\npath = \"{}\"\nmax_age = \"36500d\"\n{}",
            store.path().display(),
            river_sources(&server)
        );
        let app = RunningApp::start(config_with_interval(&text, Duration::from_secs(3600))).await;
        let url = app.url("/feed.json");
        eventually(Duration::from_secs(15), || {
            let url = url.clone();
            async move {
                let body = reqwest::get(&url).await.ok()?.bytes().await.ok()?;
                let doc: serde_json::Value = serde_json::from_slice(&body).ok()?;
                (doc["items"].as_array()?.len() == RIVER.len()).then_some(())
            }
        })
        .await;
        River {
            server,
            app,
            _store: store,
        }
    }
}

/// The daemon on a store in `store` with one source of 100 long articles, started
/// and waited for until `/feed.xml` lists them all: its RSS (returned as served,
/// uncompressed) is large enough to be sent from a file with sendfile.
pub async fn start_long_reads(store: &Path) -> (FeedServer, RunningApp, bytes::Bytes) {
    let server = FeedServer::start().await;
    let mut feed = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Long reads</title>\
         <link>https://long.example/</link><description>d</description>",
    );
    for n in 0..100 {
        let paragraph = format!("<p>Paragraph {n} of a long article, with varied words.</p>");
        feed.push_str(&format!(
            "<item><title>Long read {n}</title><link>https://long.example/{n}</link>\
             <guid>https://long.example/{n}</guid>\
             <pubDate>Fri, 06 Feb 2026 {:02}:{:02}:00 GMT</pubDate>\
             <description><![CDATA[{}]]></description></item>",
            n / 60,
            n % 60,
            paragraph.repeat(20)
        ));
    }
    feed.push_str("</channel></rss>");
    server.route("/long.xml", feed.into_bytes(), "application/rss+xml");
    let text = format!(
        "[store]\npath = \"{}\"\nmax_age = \"36500d\"\n[[source]]\nurl = \"{}\"\n",
        store.display(),
        server.url("/long.xml")
    );
    let app = RunningApp::start(config_with_interval(&text, Duration::from_secs(3600))).await;
    let url = app.url("/feed.xml");
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap();
    let identity = eventually(Duration::from_secs(15), || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = client.get(&url).send().await.ok()?.bytes().await.ok()?;
            let feed = feed_rs::parser::parse(&body[..]).ok()?;
            (feed.entries.len() == 100).then_some(body)
        }
    })
    .await;
    assert!(
        identity.len() >= tributary::http::zerocopy::MIN_SENDFILE_BYTES,
        "the test needs a large document, not {} bytes",
        identity.len()
    );
    (server, app, identity)
}

/// Polls every source of `config` once into `store`, as `tributary poll` does.
pub async fn poll_once(
    store: &tributary::store::Store,
    config: &Config,
) -> tributary::scheduler::RoundSummary {
    tributary::scheduler::Scheduler {
        store: store.clone(),
        fetcher: tributary::fetch::Fetcher::new(&config.poll).unwrap(),
        sources: tributary::config::share(config.sources.clone()),
        poll: config.poll.clone(),
        metrics: Default::default(),
        health: Default::default(),
    }
    .poll_once()
    .await
}

/// A config with one source per path on `server`, polled every 15 minutes, with
/// more `[poll]` lines (or sections after them) in `extra_poll`.
pub fn poll_config(server: &FeedServer, paths: &[&str], extra_poll: &str) -> Config {
    let mut text = format!("[poll]\ninterval = \"15m\"\n{extra_poll}\n");
    for path in paths {
        text.push_str(&format!("[[source]]\nurl = \"{}\"\n", server.url(path)));
    }
    tributary::config::parse(Path::new("test.toml"), &text, None).unwrap()
}

/// What `store` remembers of the source at `path` on `server`.
pub fn source_state(
    store: &tributary::store::Store,
    server: &FeedServer,
    path: &str,
) -> tributary::item::SourceState {
    store
        .source_state(&tributary::item::SourceId(server.url(path)))
        .unwrap()
}

/// The titles of the newest 100 items in `store`, newest first.
pub fn latest_titles(store: &tributary::store::Store) -> Vec<String> {
    store
        .latest(100)
        .unwrap()
        .into_iter()
        .map(|i| i.item.title.unwrap_or_default())
        .collect()
}
