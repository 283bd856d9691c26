//! The HTTP face, on hyper directly: the outputs `publish` rendered, and `/healthz`.
//!
//! Routes (GET and HEAD only; anything else is 405 with `Allow`):
//! `/` (HTML), `/feed.xml` (RSS 2.0), `/atom.xml`, `/feed.json`, `/opml`,
//! `/tags/{tag}.xml|.atom|.json`, `/sources/{id}.xml|.atom|.json`, each taking
//! `?limit=N`; `/healthz`, `/readyz`, `/metrics`, `/sources` and `/sources.json` for
//! the operator. Unknown paths, tags and sources are 404, a bad `limit` or Host is
//! 400, each with a one-line reason. Every answer is counted in `metrics` under its
//! route pattern.
//!
//! Serving is a lookup: the representation (already compressed, with its ETag and
//! Last-Modified as header values) is picked by Accept-Encoding, compared with the
//! request's validators (304), and its bytes are handed to hyper as a `Bytes` clone.
//! Never parses feeds, never renders per request. Request heads are bounded
//! ([`MAX_REQUEST_HEAD_BYTES`], [`MAX_URI_BYTES`], [`MAX_HEADERS`]) and must arrive
//! within [`HEADER_READ_TIMEOUT`]; a response whose reader stopped reading is given
//! up after `[server] send_timeout` ([`crate::http::deadline`]). `app` runs [`serve`] and
//! cancels it at shutdown.

pub mod deadline;
pub mod zerocopy;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HOST,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, VARY,
};
use hyper::http::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper::{Method, Request, Response, StatusCode, header::HeaderValue};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::SourceConfig;
use crate::http::deadline::{Deadlines, Progress};
use crate::http::zerocopy::Connection;
use crate::ops::health::Health;
use crate::ops::metrics::{self, Metrics};
use crate::ops::status;
use crate::ops::watchdog::{HEARTBEAT_EVERY, Heartbeat};
use crate::publish::{Format, Representation, Scope, Snapshot, View, ViewError};
use crate::store::Store;

/// 8 KiB of request line and headers (hyper's floor): a feed reader sends a few
/// hundred bytes; more is 431.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// 2 KiB of path and query: every real URL here is far shorter; longer is 414.
pub const MAX_URI_BYTES: usize = 2048;
/// 100 header fields: browsers send about 20; more is 431. This is hyper's own
/// bound, left implicit: configuring any bound makes hyper set up a header array of
/// that size for each request, which cost 2% of a 304.
pub const MAX_HEADERS: usize = 100;
/// 10 seconds to send a request head, after connecting or after the previous
/// response: a slow client cannot hold a connection open with a trickle of header
/// bytes, nor an idle one forever ([`crate::http::deadline`]).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// 255 bytes of Host: the longest DNS name plus a port fits.
const MAX_HOST_BYTES: usize = 255;

/// What the handlers share.
pub struct HttpState {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub store: Store,
    /// `Cache-Control` of every output, built once (see `app`'s max-age).
    pub cache_control: HeaderValue,
    /// Largest `?limit` accepted: `[publish] max_items`.
    pub max_limit: usize,
    /// Readiness, for `/readyz`.
    pub health: Arc<Health>,
    /// What `/metrics` serves; every request is counted in it.
    pub metrics: Arc<Metrics>,
    /// What `/sources` lists; replaced on reload.
    pub sources: watch::Receiver<Arc<SourcesPage>>,
    /// `[server] send_timeout`: how long a response may wait for room in the socket.
    pub send_timeout: Duration,
}

/// What `/sources` lists: the configured sources, under the site's title.
pub struct SourcesPage {
    pub title: String,
    pub sources: Vec<SourceConfig>,
}

/// Serves on `listener` until `token` is cancelled, then stops accepting and waits
/// for the requests in progress (the caller bounds the wait). `heartbeat` is touched
/// while the accept loops turn, for the watchdog.
///
/// One thread per core, each with its own single-threaded runtime accepting from
/// the same socket, the way nginx runs one worker per core: a connection lives on
/// the thread it was given to, so serving a request never wakes another thread or
/// moves a task between cores. The threads share the connections evenly
/// ([`Balance`]). Polling and parsing stay on the main runtime.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    heartbeat: Heartbeat,
    token: CancellationToken,
) -> std::io::Result<()> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let listener = listener.into_std()?;
    // Responses are written whole; there is nothing to gain from Nagle's delay.
    // Accepted sockets inherit the option (Linux), which saves a system call per
    // connection; if the listener refuses it, each connection gets it instead.
    let nodelay_inherited = socket2::SockRef::from(&listener)
        .set_tcp_nodelay(true)
        .inspect_err(|err| debug!(error = %err, "cannot set TCP_NODELAY on the listener"))
        .is_ok();
    let state = Arc::new(state);
    let (balance, handed) = Balance::new(workers, &state.metrics);
    let balance = Arc::new(balance);
    // Each worker's result, in the order they end.
    let mut finished = tokio::task::JoinSet::new();
    // A worker that cannot start stops the ones already started.
    let stop_started = |err| {
        token.cancel();
        err
    };
    for (worker, handed) in handed.into_iter().enumerate() {
        let listener = listener.try_clone().map_err(stop_started)?;
        let state = state.clone();
        let balance = balance.clone();
        let heartbeat = heartbeat.clone();
        let worker_token = token.clone();
        let (done, finished_rx) = tokio::sync::oneshot::channel();
        finished.spawn(finished_rx);
        let spawned = std::thread::Builder::new()
            .name(format!("http-{worker}"))
            .spawn(move || {
                if let Err(err) = crate::sys::cache_request_buffers() {
                    warn!(error = %err, "cannot enlarge the HTTP thread's allocation cache");
                }
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    // `/tags` and `/sources` views render off the accept loop; two
                    // threads per worker bound that.
                    .max_blocking_threads(2)
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let worker = Worker {
                                number: worker,
                                state,
                                balance,
                                nodelay_inherited,
                            };
                            worker.run(listener, handed, heartbeat, worker_token).await
                        })
                    });
                let _ = done.send(result);
            });
        spawned.map_err(stop_started)?;
    }
    drop(listener);
    let mut result = Ok(());
    while let Some(outcome) = finished.join_next().await {
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            // The thread dropped its sender unsent: it panicked.
            _ => Err(std::io::Error::other("an HTTP worker thread panicked")),
        };
        if let Err(err) = outcome {
            // The first failure cancels the other workers: half a server is not served.
            token.cancel();
            result = result.and(Err(err));
        }
    }
    result
}

/// A connection accepted and not yet served, counted in the open connections of
/// the worker meant to serve it from the moment it is assigned until it closes.
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    counted: Counted,
}

/// One open connection in a worker's gauge, taken out again when dropped: when the
/// connection ends, is cut off by a deadline, or is dropped unserved at shutdown.
struct Counted(Gauge);

impl Counted {
    fn new(gauge: &Gauge) -> Counted {
        gauge.inc();
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Keeps the workers' shares of the open connections even.
///
/// The kernel wakes every worker waiting on the listening socket for each new
/// connection, and the one that is already running usually accepts it first. Left
/// to that, one thread could hold nearly all of a busy client's connections while
/// the other idled: in `bench/serve.sh` runs the split of CPU time between the two
/// threads went from even to 100:0, and a fifth of the machine stood idle. So a
/// worker that accepts a connection while another holds fewer hands it over, the
/// way a static server spreads connections with `SO_REUSEPORT` (which would let a
/// second daemon bind the same port by mistake and silently share it).
struct Balance {
    /// Each worker's open connections (`tributary_http_connections`).
    open: Vec<Gauge>,
    /// The way to each worker's accept loop.
    handoff: Vec<mpsc::UnboundedSender<Accepted>>,
    /// Set when a worker stops taking connections: at shutdown, or if it failed.
    stopped: Vec<AtomicBool>,
}

impl Balance {
    /// A balance of `workers`, counting in `metrics`, and the receiving end of each
    /// worker's handoff channel.
    fn new(workers: usize, metrics: &Metrics) -> (Balance, Vec<mpsc::UnboundedReceiver<Accepted>>) {
        let (handoff, handed) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let open = (0..workers)
            .map(|worker| metrics.http_connections(worker))
            .collect();
        let stopped = (0..workers).map(|_| AtomicBool::new(false)).collect();
        (
            Balance {
                open,
                handoff,
                stopped,
            },
            handed,
        )
    }

    /// The worker that should serve a connection `accepted_by` accepted: itself,
    /// unless another that still takes connections has fewer open (the first with
    /// the fewest).
    fn assign(&self, accepted_by: usize) -> usize {
        let mut least = accepted_by;
        let mut fewest = self.open[accepted_by].get();
        for (worker, open) in self.open.iter().enumerate() {
            let open = open.get();
            if open < fewest && !self.stopped[worker].load(Ordering::Relaxed) {
                (least, fewest) = (worker, open);
            }
        }
        least
    }
}

/// One serving thread's share: its number, what the handlers share, the balance.
struct Worker {
    number: usize,
    state: Arc<HttpState>,
    balance: Arc<Balance>,
    /// Accepted sockets come with `TCP_NODELAY` from the listener.
    nodelay_inherited: bool,
}

impl Worker {
    /// Accepts on `listener`, and takes the connections other workers hand over on
    /// `handed`, serving each on this thread until `token` is cancelled; then waits
    /// for its connections to finish.
    async fn run(
        self,
        listener: std::net::TcpListener,
        mut handed: mpsc::UnboundedReceiver<Accepted>,
        heartbeat: Heartbeat,
        token: CancellationToken,
    ) -> std::io::Result<()> {
        let listener =
            crate::sys::register_listener(socket2::Socket::from(listener), Interest::READABLE)?;
        let graceful = GracefulShutdown::new();
        let http = connection_builder();
        let mut deadlines = Deadlines::new(HEADER_READ_TIMEOUT, self.state.send_timeout);
        // Also the period of the deadline sweep, which needs about a second.
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            let Accepted {
                stream,
                peer,
                counted,
            } = tokio::select! {
                _ = token.cancelled() => break,
                _ = beat.tick() => {
                    heartbeat.beat();
                    deadlines.sweep();
                    continue;
                }
                Some(handed) = handed.recv() => handed,
                accepted = accept(&listener) => match accepted {
                    Ok((stream, peer)) => {
                        let worker = self.balance.assign(self.number);
                        let stream = if worker == self.number {
                            stream
                        } else {
                            match self.hand_over(worker, stream, peer) {
                                Some(returned) => returned,
                                None => continue,
                            }
                        };
                        Accepted {
                            stream,
                            peer,
                            counted: Counted::new(&self.balance.open[self.number]),
                        }
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        warn!(error = %err, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(err) => {
                    debug!(%peer, error = %err, "cannot serve an accepted connection");
                    continue;
                }
            };
            if !self.nodelay_inherited {
                let _ = stream.set_nodelay(true);
            }
            let progress = Deadlines::progress();
            let connection = graceful.watch(http.serve_connection(
                Connection::new(stream, progress.clone()),
                service(self.state.clone(), progress.clone()),
            ));
            let task = tokio::spawn(async move {
                let _counted = counted;
                if let Err(err) = connection.await {
                    debug!(%peer, error = %err, "connection ended with an error");
                }
            });
            deadlines.watch(progress, task.abort_handle());
        }
        // Connections handed over from now on are closed unserved.
        self.balance.stopped[self.number].store(true, Ordering::Relaxed);
        drop(handed);
        drop(listener);
        // hyper closes idle connections at once; the others finish their request, and
        // the deadlines still hold meanwhile (a half-sent head or a reader that stopped
        // reading would otherwise hold the drain open).
        let drained = graceful.shutdown();
        tokio::pin!(drained);
        loop {
            tokio::select! {
                () = &mut drained => break,
                _ = beat.tick() => deadlines.sweep(),
            }
        }
        Ok(())
    }

    /// Gives a connection this worker accepted to `worker`, whose runtime will
    /// register it. Gives it back, for this worker to serve, when that one has
    /// stopped taking connections (it failed, or the server is stopping), and marks
    /// it stopped so no other connection goes its way.
    fn hand_over(
        &self,
        worker: usize,
        stream: std::net::TcpStream,
        peer: SocketAddr,
    ) -> Option<std::net::TcpStream> {
        let accepted = Accepted {
            stream,
            peer,
            counted: Counted::new(&self.balance.open[worker]),
        };
        let Err(mpsc::error::SendError(returned)) = self.balance.handoff[worker].send(accepted)
        else {
            return None;
        };
        self.balance.stopped[worker].store(true, Ordering::Relaxed);
        Some(returned.stream)
    }
}

/// The next connection on `listener`, non-blocking and not yet registered with any
/// runtime: only the worker that serves it registers it, so handing it over costs
/// no system call.
async fn accept(
    listener: &AsyncFd<socket2::Socket>,
) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    let (socket, peer) = listener
        .async_io(Interest::READABLE, |listener| {
            listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })
        .await?;
    let peer = peer
        .as_socket()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((socket.into(), peer))
}

/// hyper's HTTP/1 settings for every connection: the request-head bounds
/// ([`MAX_HEADERS`] is hyper's default). The deadlines are not hyper's
/// `header_read_timeout` but [`crate::http::deadline`]'s cheaper sweep. [`serve`] uses it
/// for TCP; the HTTP fuzz target uses the same settings over an in-memory pipe.
pub fn connection_builder() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.max_buf_size(MAX_REQUEST_HEAD_BYTES);
    http
}

/// The service one connection runs: every request goes to [`handle`], after telling
/// the connection's `progress` that a request head is complete (its deadline stops
/// until the response is written).
pub fn service(
    state: Arc<HttpState>,
    progress: Arc<Progress>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    service_fn(move |request| {
        progress.answering();
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, request).await) }
    })
}

/// The body of every response: whole bytes, rendered or compressed beforehand.
pub type Body = Full<Bytes>;

/// Answers one request and counts it.
pub async fn handle(state: &HttpState, request: Request<Incoming>) -> Response<Body> {
    let route = route_pattern(request.uri().path());
    let response = answer(state, request).await;
    state
        .metrics
        .record_request(route, response.status().as_u16());
    response
}

/// The route `path` belongs to, as a pattern (`/tags/{tag}.xml`): the `route` label
/// of the request counter, so its series are bounded whatever paths clients send.
fn route_pattern(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/feed.xml" => "/feed.xml",
        "/atom.xml" => "/atom.xml",
        "/feed.json" => "/feed.json",
        "/opml" => "/opml",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/sources" => "/sources",
        "/sources.json" => "/sources.json",
        _ => match route(path) {
            Some((format, Scope::Tag(_))) => match format {
                Format::Atom => "/tags/{tag}.atom",
                Format::Json => "/tags/{tag}.json",
                _ => "/tags/{tag}.xml",
            },
            Some((format, Scope::Source(_))) => match format {
                Format::Atom => "/sources/{id}.atom",
                Format::Json => "/sources/{id}.json",
                _ => "/sources/{id}.xml",
            },
            _ => "unknown",
        },
    }
}

async fn answer(state: &HttpState, request: Request<Incoming>) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    if parts
        .uri
        .path_and_query()
        .is_some_and(|pq| pq.as_str().len() > MAX_URI_BYTES)
    {
        return plain(StatusCode::URI_TOO_LONG, "the URI is too long");
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = parts.uri.path();
    match path {
        "/healthz" => return healthz(state).await,
        "/readyz" => return readyz(state).await,
        "/metrics" => return metrics(state).await,
        "/sources" | "/sources.json" => return sources(state, path == "/sources.json").await,
        _ => {}
    }
    let Some((format, scope)) = route(path) else {
        return plain(StatusCode::NOT_FOUND, "no such page");
    };
    let limit = match parse_limit(parts.uri.query(), state.max_limit) {
        Ok(limit) => limit.filter(|_| format != Format::Opml),
        Err(reason) => return plain(StatusCode::BAD_REQUEST, &reason),
    };
    let authority = match authority(&parts.headers) {
        Ok(authority) => authority,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
    };
    let authority = authority.as_deref();
    let snapshot = state.snapshot.borrow().clone();
    let representation = if scope == Scope::All
        && limit.is_none()
        && let Some(main) = snapshot.main(format, authority)
    {
        main.clone()
    } else {
        let view = View {
            format,
            scope,
            limit,
        };
        match snapshot.get(&view, authority).await {
            Ok(representation) => representation,
            Err(err) => return view_error(&err),
        }
    };
    respond(state, &representation, &parts.headers)
}

/// The response for `representation`: the negotiated encoding, or 304.
fn respond(
    state: &HttpState,
    representation: &Representation,
    request: &HeaderMap,
) -> Response<Body> {
    let variant = match negotiate(request.get(ACCEPT_ENCODING)) {
        Encoding::Brotli => &representation.brotli,
        Encoding::Gzip => &representation.gzip,
        Encoding::Identity => &representation.identity,
    };
    let fresh = is_fresh(request, representation);
    let mut response = Response::new(if fresh {
        Body::default()
    } else {
        Body::new(variant.body.clone())
    });
    if fresh {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    headers.reserve(8);
    // A 304 carries what a cache must refresh (ETag, Cache-Control, Vary; hyper adds
    // Date) and no Last-Modified: RFC 9110 15.4.5 asks a sender with an ETag not to.
    headers.insert(ETAG, variant.etag.clone());
    headers.insert(CACHE_CONTROL, state.cache_control.clone());
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if !fresh {
        if let Some(modified) = &representation.last_modified_header {
            headers.insert(LAST_MODIFIED, modified.clone());
        }
        headers.insert(CONTENT_TYPE, representation.content_type.clone());
        if std::ptr::eq(variant, &representation.gzip) {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        } else if std::ptr::eq(variant, &representation.brotli) {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        }
    }
    response
}

/// The format and scope `path` names, or `None` for a path that does not exist.
fn route(path: &str) -> Option<(Format, Scope)> {
    let main = match path {
        "/" => Some(Format::Html),
        "/feed.xml" => Some(Format::Rss),
        "/atom.xml" => Some(Format::Atom),
        "/feed.json" => Some(Format::Json),
        "/opml" => Some(Format::Opml),
        _ => None,
    };
    if let Some(format) = main {
        return Some((format, Scope::All));
    }
    let (kind, file) = path.strip_prefix('/')?.split_once('/')?;
    let (name, ext) = file.rsplit_once('.')?;
    let format = match ext {
        "xml" => Format::Rss,
        "atom" => Format::Atom,
        "json" => Format::Json,
        _ => return None,
    };
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?
        .into_owned();
    match kind {
        "tags" => Some((format, Scope::Tag(name))),
        "sources" => Some((format, Scope::Source(name))),
        _ => None,
    }
}

/// `?limit=N` with 1 <= N <= `max`; other parameters are ignored (cache-busting
/// readers add their own).
fn parse_limit(query: Option<&str>, max: usize) -> Result<Option<usize>, String> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut limit = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "limit" {
            continue;
        }
        if limit.is_some() {
            return Err("give limit once".to_string());
        }
        match value.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => limit = Some(n),
            _ => {
                return Err(format!(
                    "limit must be a whole number from 1 to {max}, not `{value}`"
                ));
            }
        }
    }
    Ok(limit)
}

/// The Host the reader used, lowercased: `None` when absent (HTTP/1.0), an error
/// when it is not a plain `host[:port]`. Borrowed unless it needs lowercasing.
fn authority(headers: &HeaderMap) -> Result<Option<Cow<'_, str>>, &'static str> {
    let Some(host) = headers.get(HOST) else {
        return Ok(None);
    };
    let bytes = host.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_HOST_BYTES
        && bytes.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        });
    let Some(host) = host.to_str().ok().filter(|_| valid) else {
        return Err("the Host header is not a host name and port");
    };
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Ok(Some(Cow::Owned(host.to_ascii_lowercase())));
    }
    Ok(Some(Cow::Borrowed(host)))
}

/// A content coding tributary has precompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// Picks the coding from Accept-Encoding (RFC 9110 §12.5.3): the highest q-value
/// among brotli and gzip (brotli on a tie, for its smaller bytes), unless identity is
/// preferred explicitly; identity when nothing else is acceptable, or when the header
/// is absent.
pub fn negotiate(accept: Option<&HeaderValue>) -> Encoding {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Encoding::Identity;
    };
    let (mut br, mut gzip, mut identity, mut star) = (None, None, None, None);
    for element in accept.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = Some(1.0f32);
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = parse_q(value.trim());
            }
        }
        let Some(q) = q else {
            continue; // A malformed q-value: ignore the element.
        };
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding.eq_ignore_ascii_case("identity") {
            identity = Some(q);
        } else if coding == "*" {
            star = Some(q);
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    let (best, q) = if br >= gzip {
        (Encoding::Brotli, br)
    } else {
        (Encoding::Gzip, gzip)
    };
    if q > 0.0 && q >= identity.unwrap_or(0.0) {
        best
    } else {
        Encoding::Identity
    }
}

/// A q-value: `0`, `1`, or either with up to three decimals; anything else is `None`.
fn parse_q(value: &str) -> Option<f32> {
    let valid = value.len() <= 5
        && matches!(value.as_bytes().first(), Some(b'0' | b'1'))
        && (value.len() == 1
            || value.as_bytes()[1] == b'.' && value[2..].bytes().all(|b| b.is_ascii_digit()));
    let q: f32 = value.parse().ok().filter(|_| valid)?;
    (0.0..=1.0).contains(&q).then_some(q)
}

/// Whether the client's copy is current (RFC 9110 §13.2.2): `If-None-Match` when
/// present decides alone (a match on any encoding's ETag of the same content counts:
/// the client holds that content); otherwise `If-Modified-Since`.
fn is_fresh(request: &HeaderMap, representation: &Representation) -> bool {
    if let Some(if_none_match) = request.get(IF_NONE_MATCH) {
        let Ok(tags) = if_none_match.to_str() else {
            return false;
        };
        return tags.split(',').map(str::trim).any(|tag| {
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
                return false;
            };
            let inner = inner
                .strip_suffix("-gz")
                .or_else(|| inner.strip_suffix("-br"))
                .unwrap_or(inner);
            inner == representation.hash
        });
    }
    let (Some(since), Some(modified)) =
        (request.get(IF_MODIFIED_SINCE), representation.last_modified)
    else {
        return false;
    };
    since
        .to_str()
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .is_some_and(|since| modified.timestamp() <= DateTime::<Utc>::from(since).timestamp())
}

/// The one function that turns a view's failure into a status code.
fn view_error(err: &ViewError) -> Response<Body> {
    match err {
        ViewError::UnknownTag(_) | ViewError::UnknownSource(_) => {
            plain(StatusCode::NOT_FOUND, &err.to_string())
        }
        ViewError::Store(_) | ViewError::Render(_) => {
            warn!(error = %err, "cannot render a view");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot render this view now",
            )
        }
    }
}

/// A one-line plain-text answer.
fn plain(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from(format!("{reason}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn healthz(state: &HttpState) -> Response<Body> {
    let store = state.store.clone();
    let healthy = tokio::task::spawn_blocking(move || store.is_healthy())
        .await
        .unwrap_or(false);
    if healthy {
        plain(StatusCode::OK, "ok")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    }
}

/// 200 when the daemon should get traffic, else 503 with the reason (before the
/// first poll cycle, while draining, when the store stops answering).
async fn readyz(state: &HttpState) -> Response<Body> {
    if let Err(reason) = state.health.readiness() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    let store = state.store.clone();
    let healthy = tokio::task::spawn_blocking(move || store.is_healthy())
        .await
        .unwrap_or(false);
    if healthy {
        plain(StatusCode::OK, "ready")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
    }
}

async fn metrics(state: &HttpState) -> Response<Body> {
    let store = state.store.clone();
    let size = tokio::task::spawn_blocking(move || store.size_on_disk())
        .await
        .ok()
        .and_then(|size| {
            size.map_err(|err| warn!(error = %err, "cannot measure the store"))
                .ok()
        })
        .unwrap_or(0);
    let mut response = Response::new(Body::new(Bytes::from(state.metrics.encode(size))));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// `/sources` or `/sources.json`: each source's status, read from the store's source
/// states (one small read per source) and the cached item counts.
async fn sources(state: &HttpState, json: bool) -> Response<Body> {
    let store = state.store.clone();
    let page = state.sources.borrow().clone();
    let metrics = state.metrics.clone();
    let listed = page.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        status::collect(&listed.sources, &store, |id| metrics.source_items(id))
    })
    .await;
    let statuses = match statuses {
        Ok(Ok(statuses)) => statuses,
        Ok(Err(err)) => {
            warn!(error = %err, "cannot read the source states");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "cannot read the store now");
        }
        Err(err) => {
            warn!(error = %err, "reading the source states crashed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "cannot read the store now");
        }
    };
    let (body, content_type) = if json {
        (status::render_json(&statuses), "application/json")
    } else {
        (
            status::render_html(&statuses, &page.title, Utc::now()),
            "text/html; charset=utf-8",
        )
    };
    let mut response = Response::new(Body::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A status is true for a moment: caches must not keep it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_worker_with_the_fewest() {
        let metrics = Metrics::new();
        let (balance, _handed) = Balance::new(3, &metrics);
        // Worker 0 wins every accept, as a running thread does.
        let mut connections = Vec::new();
        let mut assigned = Vec::new();
        for _ in 0..7 {
            let worker = balance.assign(0);
            assigned.push(worker);
            connections.push(Counted::new(&balance.open[worker]));
        }
        assert_eq!(assigned, [0, 1, 2, 0, 1, 2, 0]);
        let open = |worker: usize| balance.open[worker].get();
        assert_eq!((open(0), open(1), open(2)), (3, 2, 2));
        // Closing connections frees their worker's share: worker 1 is next.
        connections.remove(1);
        connections.remove(3);
        assert_eq!((open(0), open(1), open(2)), (3, 0, 2));
        assert_eq!(balance.assign(2), 1);
        // A tie keeps the connection where it was accepted.
        connections.push(Counted::new(&balance.open[1]));
        connections.push(Counted::new(&balance.open[1]));
        assert_eq!(balance.assign(2), 2);
        // A worker that stopped taking connections gets none, however few it holds.
        balance.stopped[1].store(true, Ordering::Relaxed);
        connections.truncate(2);
        assert_eq!((open(0), open(1), open(2)), (1, 0, 1));
        assert_eq!(balance.assign(0), 0);
        connections.push(Counted::new(&balance.open[0]));
        assert_eq!(balance.assign(0), 2);
        drop(connections);
        assert_eq!((open(0), open(1), open(2)), (0, 0, 0));
        assert!(
            metrics
                .encode(0)
                .contains("tributary_http_connections{worker=\"2\"} 0")
        );
    }

    fn representation() -> Representation {
        Representation::new(
            Format::Rss,
            b"<rss/>".to_vec(),
            DateTime::from_timestamp(1_000_000, 0),
            1,
        )
    }

    fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn conditional_requests() {
        let r = representation();
        let etag = r.identity.etag.to_str().unwrap().to_string();
        let gz = r.gzip.etag.to_str().unwrap().to_string();
        assert!(is_fresh(&headers(&[(IF_NONE_MATCH, &etag)]), &r));
        assert!(is_fresh(&headers(&[(IF_NONE_MATCH, &gz)]), &r));
        assert!(is_fresh(
            &headers(&[(IF_NONE_MATCH, &format!("\"x\", W/{etag}"))]),
            &r
        ));
        assert!(!is_fresh(&headers(&[(IF_NONE_MATCH, "\"x\"")]), &r));
        let at = r.last_modified_header.clone().unwrap();
        let at = at.to_str().unwrap();
        assert_eq!(at, "Mon, 12 Jan 1970 13:46:40 GMT");
        assert!(is_fresh(&headers(&[(IF_MODIFIED_SINCE, at)]), &r));
        assert!(!is_fresh(
            &headers(&[(IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT")]),
            &r
        ));
        // A stale ETag wins over a matching date.
        assert!(!is_fresh(
            &headers(&[(IF_NONE_MATCH, "\"old\""), (IF_MODIFIED_SINCE, at)]),
            &r
        ));
        assert!(!is_fresh(&HeaderMap::new(), &r));
    }

    #[test]
    fn accept_encoding_q_values() {
        let pick = |v: &str| negotiate(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip"), Encoding::Gzip);
        assert_eq!(pick("GZIP;Q=1.0"), Encoding::Gzip);
        assert_eq!(pick("x-gzip"), Encoding::Gzip);
        assert_eq!(pick("*"), Encoding::Brotli);
        assert_eq!(pick("*;q=0.5, br;q=0"), Encoding::Gzip);
        assert_eq!(pick("gzip;q=0.5, identity"), Encoding::Identity);
        assert_eq!(pick("deflate"), Encoding::Identity);
        assert_eq!(pick("gzip;q=0, br;q=0"), Encoding::Identity);
        assert_eq!(pick("identity;q=0, deflate"), Encoding::Identity);
        assert_eq!(pick("gzip;q=2"), Encoding::Identity);
        assert_eq!(pick("gzip;q=0.0001"), Encoding::Identity);
        assert_eq!(pick(""), Encoding::Identity);
    }

    #[test]
    fn routes() {
        assert_eq!(route("/"), Some((Format::Html, Scope::All)));
        assert_eq!(route("/feed.json"), Some((Format::Json, Scope::All)));
        assert_eq!(
            route("/tags/a%20b.atom"),
            Some((Format::Atom, Scope::Tag("a b".into())))
        );
        assert_eq!(
            route("/sources/0123abcd.xml"),
            Some((Format::Rss, Scope::Source("0123abcd".into())))
        );
        assert_eq!(route("/tags/x.html"), None);
        assert_eq!(route("/tags/.xml"), None);
        assert_eq!(route("/tags/a/b.xml"), None);
        assert_eq!(route("/feed.xml/"), None);
        assert_eq!(route("/nope"), None);
    }

    #[test]
    fn route_patterns_are_bounded() {
        assert_eq!(route_pattern("/"), "/");
        assert_eq!(route_pattern("/metrics"), "/metrics");
        assert_eq!(route_pattern("/sources.json"), "/sources.json");
        assert_eq!(route_pattern("/tags/a%20b.atom"), "/tags/{tag}.atom");
        assert_eq!(route_pattern("/sources/0123.json"), "/sources/{id}.json");
        assert_eq!(route_pattern("/sources/0123.xml"), "/sources/{id}.xml");
        assert_eq!(route_pattern("/wp-login.php"), "unknown");
        assert_eq!(route_pattern("/tags/x.html"), "unknown");
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None, 100), Ok(None));
        assert_eq!(parse_limit(Some("limit=5"), 100), Ok(Some(5)));
        assert_eq!(parse_limit(Some("x=1&limit=100"), 100), Ok(Some(100)));
        assert!(parse_limit(Some("limit=0"), 100).is_err());
        assert!(parse_limit(Some("limit=101"), 100).is_err());
        assert!(parse_limit(Some("limit=ten"), 100).is_err());
        assert!(parse_limit(Some("limit=1&limit=2"), 100).is_err());
    }
}
