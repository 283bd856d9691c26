//! The misbehaving servers: a raw HTTP/1.1 server on loopback whose every path
//! misbehaves in its own way (down to never answering, resetting mid-body or
//! trickling), a gzip bomb, and a TLS server no client should trust.

use crate::healthy;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the hostile server does on one path.
#[derive(Clone)]
pub enum Act {
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
pub struct Hostile {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Act>>>,
    /// The head of every request received, in order.
    heads: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    pub fn start(runtime: &tokio::runtime::Runtime) -> Hostile {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Act>>> = Arc::default();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let (table, seen) = (routes.clone(), heads.clone());
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (table, seen) = (table.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = answer(stream, table, seen).await;
                });
            }
        });
        Hostile {
            addr,
            routes,
            heads,
        }
    }

    /// The heads of the requests received for `path`, lower-cased.
    pub fn heads(&self, path: &str) -> Vec<String> {
        let prefix = format!("get {} ", path.to_lowercase());
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|head| head.to_lowercase())
            .filter(|head| head.starts_with(&prefix))
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, act: Act) {
        self.routes.lock().unwrap().insert(path.to_string(), act);
    }

    pub fn body(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.respond(path, 200, &[("Content-Type", content_type)], body);
    }

    pub fn respond(&self, path: &str, status: u16, headers: &[(&str, &str)], body: Vec<u8>) {
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

    pub fn redirect(&self, path: &str, location: &str) {
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
    heads: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    heads.lock().unwrap().push(head.clone());
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
pub struct GzipBomb {
    head: Vec<u8>,
    block: Vec<u8>,
    repeat: usize,
    tail: Vec<u8>,
}

impl GzipBomb {
    pub fn new() -> GzipBomb {
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

    pub fn wire_len(&self) -> usize {
        self.head.len() + self.block.len() * self.repeat + self.tail.len()
    }
}

/// A TLS server on loopback with a freshly made self-signed certificate, serving a
/// feed to whoever accepts the certificate (no one should).
pub fn start_tls(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    use tokio_rustls::rustls;
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
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
