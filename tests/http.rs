//! HTTP behaviour of the published outputs: validators and 304s, compression
//! negotiation (every encoding decompresses to the same bytes), HEAD, caching
//! headers, and the answers to bad requests (400, 404, 405, 414, 431).

mod common;

use common::{RIVER, River};
use reqwest::{Client, Method, StatusCode};
use std::io::Read;

/// A client that does not decompress, so the test sees the encoded bytes.
fn raw_client() -> Client {
    Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap();
    out
}

/// `body` decoded from its Content-Encoding `coding` (none, gzip or br).
fn decoded(coding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match coding {
        None => body.to_vec(),
        Some("gzip") => gunzip(body),
        Some("br") => unbrotli(body),
        Some(other) => panic!("unexpected coding {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_semantics_of_every_output() {
    let river = River::start("[publish]\ntitle = \"Test river\"\n").await;
    let client = raw_client();
    let newest = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(RIVER[0].time as u64),
    );

    for path in [
        "/",
        "/feed.xml",
        "/atom.xml",
        "/feed.json",
        "/opml",
        "/tags/news.xml",
    ] {
        let url = river.app.url(path);
        let plain = client.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        let headers = plain.headers().clone();
        assert!(headers.get("content-encoding").is_none(), "{path}");
        assert_eq!(headers["vary"], "Accept-Encoding", "{path}");
        // The fixtures' sources poll hourly: readers may keep any output that long.
        assert_eq!(headers["cache-control"], "public, max-age=3600", "{path}");
        let etag = headers["etag"].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong: {etag}"
        );
        if path == "/opml" {
            assert!(headers.get("last-modified").is_none());
        } else {
            assert_eq!(headers["last-modified"], newest.as_str(), "{path}");
        }
        let identity = plain.bytes().await.unwrap();
        assert_eq!(
            headers["content-length"],
            identity.len().to_string().as_str()
        );

        // gzip and brotli, by q-value, decompress to the same bytes, each under its
        // own strong ETag.
        for (accept, coding) in [
            ("gzip", "gzip"),
            ("gzip, deflate, br", "br"),
            ("br;q=0.5, gzip;q=0.9", "gzip"),
            ("*", "br"),
        ] {
            let response = client
                .get(&url)
                .header("Accept-Encoding", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.headers()["content-encoding"],
                coding,
                "{path} {accept}"
            );
            assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
            let body = response.bytes().await.unwrap();
            assert_eq!(decoded(Some(coding), &body), identity, "{path} {accept}");
            assert!(body.len() < identity.len(), "{path}: compression pays");
        }
        for accept in ["deflate", "gzip;q=0, br;q=0", "gzip;q=0.5, identity"] {
            let response = client
                .get(&url)
                .header("Accept-Encoding", accept)
                .send()
                .await
                .unwrap();
            assert!(
                response.headers().get("content-encoding").is_none(),
                "{accept}"
            );
            assert_eq!(response.bytes().await.unwrap(), identity);
        }

        // Conditional requests: the ETag (of any encoding) and the date give 304.
        let not_modified = client
            .get(&url)
            .header("If-None-Match", &etag)
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(not_modified.headers().get("etag").is_some());
        assert_eq!(not_modified.headers()["vary"], "Accept-Encoding");
        assert_eq!(
            not_modified.headers()["cache-control"],
            "public, max-age=3600"
        );
        // RFC 9110 15.4.5: no other metadata on a 304 that has an ETag.
        assert!(not_modified.headers().get("last-modified").is_none());
        assert!(not_modified.headers().get("content-type").is_none());
        assert!(not_modified.bytes().await.unwrap().is_empty());
        let stale = client
            .get(&url)
            .header("If-None-Match", "\"0123\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
        if path != "/opml" {
            let by_date = client
                .get(&url)
                .header("If-Modified-Since", &newest)
                .send()
                .await
                .unwrap();
            assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED, "{path}");
            let older = client
                .get(&url)
                .header("If-Modified-Since", "Thu, 05 Feb 2026 00:00:00 GMT")
                .send()
                .await
                .unwrap();
            assert_eq!(older.status(), 200, "{path}");
        }

        // HEAD: the same headers, no body.
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(
            head.headers()["content-length"],
            identity.len().to_string().as_str()
        );
        assert!(head.bytes().await.unwrap().is_empty());
    }
    river.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_status_and_a_one_line_reason() {
    let river = River::start("").await;
    let client = raw_client();
    let status_and_body = |method: Method, path: String| {
        let client = client.clone();
        let url = river.app.url(&path);
        async move {
            let response = client.request(method, url).send().await.unwrap();
            let status = response.status();
            let allow = response
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_string());
            (status, response.text().await.unwrap(), allow)
        }
    };
    for path in [
        "/nope",
        "/feed.xml/",
        "/tags/",
        "/tags/news.html",
        "/sources/x/y.xml",
    ] {
        let (status, body, _) = status_and_body(Method::GET, path.to_string()).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body.lines().count(), 1, "{path}: {body}");
    }
    let (status, body, _) = status_and_body(Method::GET, "/tags/nosuchtag.atom".into()).await;
    assert_eq!(status, 404);
    assert_eq!(body, "no tag `nosuchtag` in feeds.toml\n");
    let (status, _, _) =
        status_and_body(Method::GET, "/sources/0000000000000000.json".into()).await;
    assert_eq!(status, 404);
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "limit=-1",
        "limit=1&limit=2",
    ] {
        let (status, body, _) = status_and_body(Method::GET, format!("/feed.xml?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body.lines().count(), 1, "{query}: {body}");
        assert!(body.contains("limit"), "{body}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let (status, _, allow) = status_and_body(method.clone(), "/feed.xml".into()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(allow.as_deref(), Some("GET, HEAD"));
    }
    let long = format!("/feed.xml?x={}", "a".repeat(3000));
    let (status, _, _) = status_and_body(Method::GET, long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let huge_header = client
        .get(river.app.url("/feed.xml"))
        .header("X-Padding", "a".repeat(16 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        huge_header.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let headers = |count: usize| {
        let mut request = client.get(river.app.url("/feed.xml"));
        for n in 0..count {
            request = request.header(format!("X-Field-{n}"), "1");
        }
        request
    };
    // reqwest adds Accept and Host.
    let many = headers(tributary::http::MAX_HEADERS - 2)
        .send()
        .await
        .unwrap();
    assert_eq!(many.status(), 200);
    let too_many = headers(tributary::http::MAX_HEADERS).send().await.unwrap();
    assert_eq!(
        too_many.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let bad_host = client
        .get(river.app.url("/feed.xml"))
        .header("Host", "a b")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_host.status(), 400);
    // Unknown parameters are ignored: readers add their own cache-busters.
    let (status, _, _) = status_and_body(Method::GET, "/feed.xml?_=123".into()).await;
    assert_eq!(status, 200);
    let (status, body, _) = status_and_body(Method::GET, "/healthz".into()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    river.app.stop().await;
}

/// A river whose RSS is large enough to be sent from a file with sendfile
/// (`tributary::http::zerocopy`; its compressed variants, slices of the same file, are
/// copied): every encoding arrives whole and identical to the others, under
/// concurrent requests, and HEAD gives the length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_outputs_arrive_whole_in_every_encoding() {
    let store = tempfile::tempdir().unwrap();
    let (_server, app, identity) = common::start_long_reads(store.path()).await;
    let url = app.url("/feed.xml");
    let client = raw_client();

    let sent_before = tributary::http::zerocopy::bytes_sent_with_sendfile();
    let requests = (0..16).map(|n| {
        let (client, url) = (client.clone(), url.clone());
        let encoding = ["identity", "gzip", "br", "gzip, br"][n % 4];
        tokio::spawn(async move {
            let response = client
                .get(&url)
                .header("Accept-Encoding", encoding)
                .send()
                .await
                .unwrap();
            let coding = response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string());
            let length: usize = response.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body = response.bytes().await.unwrap();
            assert_eq!(body.len(), length, "{encoding}");
            decoded(coding.as_deref(), &body)
        })
    });
    for request in requests {
        assert!(
            request.await.unwrap() == identity[..],
            "a body arrived altered"
        );
    }
    // Four of the requests took the identity body: it went out with sendfile but for
    // a tail shorter than the threshold after a partial write.
    let least_by_sendfile = identity.len() - tributary::http::zerocopy::MIN_SENDFILE_BYTES;
    assert!(
        tributary::http::zerocopy::bytes_sent_with_sendfile() - sent_before
            >= 4 * least_by_sendfile as u64,
        "the identity bodies were copied, not sent with sendfile"
    );
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(
        head.headers()["content-length"],
        identity.len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    app.stop().await;
}

/// Reads until the server closes; returns what arrived and when it closed.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, std::time::Instant) {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return (received, std::time::Instant::now()),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The request-head deadline (`tributary::http::deadline`): a client trickling a head and
/// an idle keep-alive client are both cut off between 10 and 13 s; a head sent in
/// pieces within the limit is answered. Takes about 12 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_after_the_head_deadline() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let river = River::start("").await;
    let addr = river.app.addr;
    let limit = tributary::http::HEADER_READ_TIMEOUT;
    assert_eq!(
        limit,
        Duration::from_secs(10),
        "the bounds below assume 10 s"
    );

    let trickling = tokio::spawn(async move {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /feed.xml HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let (mut read, mut write) = stream.into_split();
        let trickle = tokio::spawn(async move {
            for n in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if write
                    .write_all(format!("X-{n}: a\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut received = Vec::new();
        let _ = read.read_to_end(&mut received).await;
        trickle.abort();
        (received, start.elapsed())
    });
    let idle = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"HEAD /feed.xml HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answered = Instant::now();
        let (received, closed) = until_closed(&mut stream).await;
        (received, closed - answered)
    });
    let slow_but_in_time = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /feed.xml HTT").await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stream
            .write_all(b"P/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        until_closed(&mut stream).await.0
    });

    async fn within<T>(task: tokio::task::JoinHandle<T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the server closes the connection within 20 s")
            .unwrap()
    }
    let (received, elapsed) = within(trickling).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        elapsed >= limit && elapsed < limit + Duration::from_secs(3),
        "a trickled head was cut off after {elapsed:?}"
    );
    let (received, idle_for) = within(idle).await;
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        idle_for >= limit - Duration::from_millis(100) && idle_for < limit + Duration::from_secs(3),
        "an idle connection was closed after {idle_for:?}"
    );
    let received = slow_but_in_time.await.unwrap();
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    river.app.stop().await;
}

/// The send deadline (`[server] send_timeout`, here 2 s): a client that asks for a
/// few MB of responses and stops reading is cut off once the server has waited that
/// long for room in the socket; one that reads slowly, taking longer than the
/// deadline in all but never pausing that long, gets every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_stop_reading_are_cut_off_after_the_send_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

    let river = River::start("[server]\nsend_timeout = \"2s\"").await;
    let addr = river.app.addr;
    let feed = reqwest::get(river.app.url("/feed.xml"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    /// A connection with a small receive buffer, so the server's writes soon wait.
    async fn connect(addr: std::net::SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(addr).await.unwrap()
    }
    /// `count` pipelined requests for /feed.xml.
    fn requests(count: usize) -> Vec<u8> {
        b"GET /feed.xml HTTP/1.1\r\nHost: x\r\n\r\n".repeat(count)
    }

    // 16 MB of responses: more than the kernel buffers on both sides hold.
    let count = (16 << 20) / feed.len() + 1;
    let mut stalled = connect(addr).await;
    stalled.write_all(&requests(count)).await.unwrap();
    let stalled_at = Instant::now();
    // Cut off between 2 and 3 s; reading earlier would let the server go on.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (received, closed) =
        tokio::time::timeout(Duration::from_secs(20), until_closed(&mut stalled))
            .await
            .expect("the server closes the connection");
    let buffered = received.len();
    assert!(
        buffered < count * feed.len(),
        "all {count} responses arrived ({buffered} bytes, closed after {:?}): the reader was never cut off",
        closed - stalled_at
    );
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received[..received.len().min(200)])
    );

    // 8 MB, more than the kernel buffers hold (the server's grows to 4 MB at most),
    // read in bursts of 2 MB with a pause of 1 s between: the server waits in every
    // pause and longer than 2 s in all, but never 2 s without progress.
    let count = (8 << 20) / feed.len() + 1;
    let mut slow = connect(addr).await;
    let mut pipelined = requests(count);
    pipelined.extend_from_slice(b"HEAD /feed.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    slow.write_all(&pipelined).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut closed = false;
    while !closed {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let burst_end = received.len() + (2 << 20);
        while received.len() < burst_end {
            match tokio::time::timeout(Duration::from_secs(20), slow.read(&mut chunk)).await {
                Ok(Ok(0)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) => panic!(
                    "the slow reader was cut off after {:?} and {} bytes: {err}",
                    started.elapsed(),
                    received.len()
                ),
                Err(_) => panic!("no byte for 20 s"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the slow read takes too long"
        );
    }
    let responses = received
        .windows(b"HTTP/1.1 200".len())
        .filter(|w| w == b"HTTP/1.1 200")
        .count();
    assert_eq!(responses, count + 1, "every response arrived");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "the slow read took {:?}: the server cannot have waited 2 s in all",
        started.elapsed()
    );
    river.app.stop().await;
}

/// Serving threads share the connections evenly, whichever thread the kernel lets
/// accept them: 16 connections per thread, opened one after the other, leave each
/// thread with 16 (`tributary_http_connections` in `/metrics`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_evenly_over_the_serving_threads() {
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    /// The body of `GET path` on a kept-alive connection.
    async fn get(connection: &mut BufReader<TcpStream>, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        connection.write_all(request.as_bytes()).await.unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            connection.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        connection.read_exact(&mut body).await.unwrap();
        String::from_utf8(body).unwrap()
    }
    /// Each serving thread's open connections, by thread number.
    fn open_connections(metrics: &str) -> Vec<u64> {
        let mut counts: Vec<(usize, u64)> = metrics
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("tributary_http_connections{worker=\"")?;
                let (worker, count) = rest.split_once("\"} ")?;
                Some((worker.parse().unwrap(), count.parse().unwrap()))
            })
            .collect();
        counts.sort();
        counts.into_iter().map(|(_, count)| count).collect()
    }

    let river = River::start("").await;
    let connect = || async { BufReader::new(TcpStream::connect(river.app.addr).await.unwrap()) };
    let mut first = connect().await;
    // Until the connections of the river's start-up have closed, this one is alone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let threads = loop {
        let counts = open_connections(&get(&mut first, "/metrics").await);
        if counts.iter().sum::<u64>() == 1 {
            break counts.len();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "other connections still open: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert_eq!(threads, expected_threads);

    let mut connections = Vec::new();
    for _ in 1..16 * threads {
        let mut connection = connect().await;
        assert_eq!(get(&mut connection, "/healthz").await, "ok\n");
        connections.push(connection);
    }
    let metrics = get(&mut first, "/metrics").await;
    assert_eq!(open_connections(&metrics), vec![16; threads], "{metrics}");
    river.app.stop().await;
}

/// Served connections have Nagle's algorithm off (`TCP_NODELAY`, set once on the
/// listener and inherited by each accepted socket): a response written in two
/// parts, a head and then a file, must not wait for the reader's ACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_connections_have_nagle_off() {
    use std::os::fd::{BorrowedFd, RawFd};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let river = River::start("").await;
    let mut client = tokio::net::TcpStream::connect(river.app.addr)
        .await
        .unwrap();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 12];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // The daemon runs in this process: find its end of the connection.
    let client_addr = client.local_addr().unwrap();
    let server_end = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find_map(|fd| {
            // SAFETY: borrowed only for getpeername and getsockopt, which merely read;
            // if another thread closed or reused the number meanwhile, they fail or
            // read something else, and the search goes on.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&borrowed);
            let peer = socket.peer_addr().ok()?.as_socket()?;
            (peer == client_addr).then(|| socket.tcp_nodelay().unwrap())
        });
    assert_eq!(server_end, Some(true));
    drop(client);
    river.app.stop().await;
}

/// Without `public_url`, documents name the Host a reader asked for only when it
/// belongs to the server; any other Host (or X-Forwarded-Host, or Forwarded) gets
/// the listen address's documents, byte for byte, so no client can make a shared
/// cache keep self links of its choosing, nor fill the view cache with names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_servers_own_host_names_are_named_in_documents() {
    let river =
        River::start("[server]\nhostnames = [\"news.example\", \"feeds.example:8443\"]\n").await;
    let client = raw_client();
    let port = river.app.addr.port();
    let get = |host: String, extra: Option<(&'static str, &'static str)>| {
        let mut request = client.get(river.app.url("/atom.xml")).header("Host", host);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let etag = response.headers()["etag"].to_str().unwrap().to_string();
            (
                etag,
                String::from_utf8(response.bytes().await.unwrap().to_vec()).unwrap(),
            )
        }
    };
    let canonical = get(river.app.addr.to_string(), None).await;
    assert!(
        canonical
            .1
            .contains(&format!("http://{}/atom.xml", river.app.addr))
    );
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        "news.example:1234".to_string(),
        "feeds.example".to_string(),
        format!("localhost.evil.example:{port}"),
    ] {
        let answer = get(host.clone(), None).await;
        assert_eq!(answer, canonical, "Host: {host}");
    }
    for (name, value) in [
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "host=evil.example;proto=https"),
        ("X-Forwarded-Proto", "https"),
    ] {
        let answer = get(river.app.addr.to_string(), Some((name, value))).await;
        assert_eq!(answer, canonical, "{name}: {value}");
    }
    for (host, named) in [
        ("news.example".to_string(), "http://news.example/atom.xml"),
        (
            "NEWS.example:443".to_string(),
            "http://news.example:443/atom.xml",
        ),
        (
            "feeds.example:8443".to_string(),
            "http://feeds.example:8443/atom.xml",
        ),
        (format!("localhost:{port}"), ""),
        ("[::1]".to_string(), "http://[::1]/atom.xml"),
    ] {
        let (_, body) = get(host.clone(), None).await;
        let named = if named.is_empty() {
            format!("http://localhost:{port}/atom.xml")
        } else {
            named.to_string()
        };
        assert!(body.contains(&named), "Host: {host}\n{body}");
    }
    river.app.stop().await;
}

/// Every answer, documents, operator pages and errors alike, carries the safe
/// headers; an error body that repeats the request's words is never sniffed as HTML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_safe_headers() {
    let river = River::start("").await;
    let client = raw_client();
    let cases = [
        (Method::GET, "/", 200),
        (Method::GET, "/feed.xml", 200),
        (Method::HEAD, "/atom.xml", 200),
        (Method::GET, "/feed.json", 200),
        (Method::GET, "/opml", 200),
        (Method::GET, "/sources", 200),
        (Method::GET, "/sources.json", 200),
        (Method::GET, "/metrics", 200),
        (Method::GET, "/healthz", 200),
        (
            Method::GET,
            "/tags/%3Cscript%3Ealert(1)%3C%2Fscript%3E.xml",
            404,
        ),
        (Method::GET, "/feed.xml?limit=%3Cscript%3E", 400),
        (Method::POST, "/feed.xml", 405),
    ];
    for (method, path, status) in cases {
        let response = client
            .request(method.clone(), river.app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let headers = response.headers();
        for (name, value) in tributary::http::SAFE_HEADERS {
            assert_eq!(
                headers.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{method} {path}: {name}"
            );
        }
        assert_eq!(
            headers.get("content-security-policy"),
            Some(tributary::http::content_security_policy()),
            "{method} {path}"
        );
    }
    // And a 304.
    let first = client.get(river.app.url("/feed.xml")).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = client
        .get(river.app.url("/feed.xml"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["x-content-type-options"], "nosniff");
    // The policy lets in exactly the inline style of each HTML page.
    let csp = tributary::http::content_security_policy().to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    for path in ["/", "/sources"] {
        let response = client.get(river.app.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["content-security-policy"], csp);
        let page = response.text().await.unwrap();
        let style = page
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(style, _)| style)
            .unwrap_or_else(|| panic!("{path} has no style"));
        let hash = format!("'sha256-{}'", tributary::http::style_hash(style));
        assert!(csp.contains(&hash), "{path}: {hash} not in {csp}");
    }
    river.app.stop().await;
}

/// What a raw request gets back, read until the server closes the connection (or
/// 5 s pass, for a connection it keeps open).
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(
        deadline,
        tokio::io::AsyncReadExt::read(&mut stream, &mut chunk),
    )
    .await
    {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Request-smuggling classics: bare-LF line endings are refused with 400 (as nginx
/// and Apache do; a proxy in front may read such a head differently), as are
/// differing Content-Lengths and obs-folded headers; a request with both
/// Content-Length and Transfer-Encoding is read by Transfer-Encoding and its
/// connection closed after the answer, so nothing after it is read as a request;
/// an absolute-form target naming another host cannot choose the self links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_smuggling_classics_are_refused() {
    let river = River::start("").await;
    let addr = river.app.addr;
    for request in [
        &b"GET /feed.xml HTTP/1.1\nHost: x\n\n"[..],
        b"GET /feed.xml HTTP/1.1\r\nHost: x\n\r\n",
        b"GET /feed.xml HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n",
        b"GET /feed.xml HTTP/1.1\r\nHost: x\r\n\n",
        b"GET /feed.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /feed.xml HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    ] {
        let answer = raw_exchange(addr, request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?}: {answer:?}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer:?}");
    }
    // A good request on the same connection after one with bare LF is never read.
    let answer = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\nHost: x\n\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 1, "{answer:?}");
    assert!(answer.contains("HTTP/1.1 400"), "{answer:?}");
    // Both lengths: one request, answered, and the connection closed.
    let answer = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer:?}");
    // The target's host is held to the same names as Host.
    let request = format!(
        "GET http://evil.example/atom.xml HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_exchange(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(!answer.contains("evil.example"), "{answer}");
    assert!(
        answer.contains(&format!("http://{addr}/atom.xml")),
        "{answer}"
    );
    let request = format!(
        "GET http://localhost:{}/atom.xml HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    let answer = raw_exchange(addr, request.as_bytes()).await;
    assert!(
        answer.contains(&format!("http://localhost:{}/atom.xml", addr.port())),
        "{answer}"
    );
    river.app.stop().await;
}
