//! Response bodies sent from files with sendfile(2), the way nginx sends a static
//! file: the kernel passes the pages to the socket instead of copying them.
//!
//! `publish` stores each large rendered document's variants in one file, mapped
//! read-only, and hands its bytes out as [`Bytes`](bytes::Bytes) ([`file_backed`], in
//! `publish::body`, which also says where the files live). hyper queues a body as
//! its own buffer in a vectored write; [`Connection`], the socket hyper writes to,
//! recognizes a buffer that lies in such a mapping and sends it with sendfile after
//! the response head (sent with `MSG_MORE`, so both leave in the same packets).
//! Anything else is written as usual.
//!
//! On loopback with a 143 KB feed, copying the body into the socket was 12% of the
//! server's CPU (`bench/serve.sh`, perf). Short bodies are copied as before
//! ([`MIN_SENDFILE_BYTES`]). When the kernel or a sandbox refuses sendfile, bodies
//! are written from the mapping: slower, never wrong.

use crate::http::deadline::Progress;
use crate::http::line_ends::LineEnds;
use crate::publish::body;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use rustix::net::{SendAncillaryBuffer, SendFlags};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::warn;

pub use crate::publish::body::{MIN_SENDFILE_BYTES, file_backed, keep_documents_in};

/// Set when sendfile was refused (a seccomp filter, a kernel without it): from then
/// on every write copies.
static SENDFILE_REFUSED: AtomicBool = AtomicBool::new(false);

/// Bytes sent with sendfile since the start: what shows the path is taken.
static SENT_WITH_SENDFILE: AtomicU64 = AtomicU64::new(0);

/// How many body bytes have left with sendfile (rather than a copy) so far.
pub fn bytes_sent_with_sendfile() -> u64 {
    SENT_WITH_SENDFILE.load(Ordering::Relaxed)
}

/// Where `buf` lies in a document file, when it is long enough to be worth sendfile
/// and sendfile is not refused: the file and the offset of its first byte.
fn file_of(buf: &[u8]) -> Option<(BorrowedFd<'_>, usize)> {
    if buf.len() < MIN_SENDFILE_BYTES || SENDFILE_REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    body::file_of(buf)
}

/// Bytes read from the socket at a time: a request head fits (hyper's own first
/// read is 8 KiB too).
const READ_CHUNK: usize = 8 * 1024;

/// An accepted connection as hyper sees it: reads refuse bare-LF line ends
/// ([`LineEnds`]); writes file-backed bodies with sendfile, and report each write to
/// the connection's [`Progress`].
pub struct Connection {
    io: TokioIo<TcpStream>,
    progress: Arc<Progress>,
    line_ends: LineEnds,
}

impl Connection {
    pub fn new(stream: TcpStream, progress: Arc<Progress>) -> Self {
        Connection {
            io: TokioIo::new(stream),
            progress,
            line_ends: LineEnds::default(),
        }
    }

    fn write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some((index, (file, offset))) = bufs
            .iter()
            .enumerate()
            .find_map(|(index, buf)| file_of(buf).map(|found| (index, found)))
        else {
            return Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        };
        let (head, body) = (&bufs[..index], &bufs[index]);
        let stream = self.io.inner();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_io(Interest::WRITABLE, || {
                send_head_and_file(stream.as_fd(), head, body, file, offset)
            }) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                outcome => return Poll::Ready(outcome),
            }
        }
    }
}

impl Read for Connection {
    /// Reads into a buffer of its own, so the bytes can be checked (and a bare LF
    /// refused) before hyper parses them; a head is copied once more, a few hundred
    /// bytes.
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        let mut read = tokio::io::ReadBuf::new(&mut chunk[..want]);
        ready!(tokio::io::AsyncRead::poll_read(
            Pin::new(self.io.inner_mut()),
            cx,
            &mut read
        ))?;
        let filled = read.filled_mut();
        self.line_ends.refuse_bare_lf(filled);
        buf.put_slice(filled);
        Poll::Ready(Ok(()))
    }
}

impl Write for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let outcome = self.write_vectored(cx, bufs);
        self.progress.wrote(outcome.is_pending());
        outcome
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Nothing to do: hyper drops the connection right after, and closing the socket
    /// sends the same FIN that a `shutdown(2)` would, one system call fewer for a
    /// reader that opens a connection per request.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes `head` (with `MSG_MORE`), then `body` from `file` at `offset`; returns how
/// many bytes of the two left, in order, as a vectored write does.
fn send_head_and_file(
    socket: BorrowedFd<'_>,
    head: &[IoSlice<'_>],
    body: &[u8],
    file: BorrowedFd<'_>,
    offset: usize,
) -> io::Result<usize> {
    let head_len: usize = head.iter().map(|buf| buf.len()).sum();
    let mut sent = 0;
    if head_len > 0 {
        sent = rustix::net::sendmsg(
            socket,
            head,
            &mut SendAncillaryBuffer::default(),
            SendFlags::MORE | SendFlags::NOSIGNAL,
        )?;
        if sent < head_len {
            return Ok(sent);
        }
    }
    let mut file_offset = offset as u64;
    let err = match rustix::fs::sendfile(socket, file, Some(&mut file_offset), body.len()) {
        Ok(n) => {
            SENT_WITH_SENDFILE.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(sent + n);
        }
        Err(err) => io::Error::from(err),
    };
    if sent > 0 {
        // The head left: report that; the body goes (or fails) at the next call.
        return Ok(sent);
    }
    match err.raw_os_error() {
        Some(libc::EPERM | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
            if !SENDFILE_REFUSED.swap(true, Ordering::Relaxed) {
                warn!(error = %err, "sendfile refused; response bodies are copied from now on");
            }
            Ok(rustix::net::send(socket, body, SendFlags::NOSIGNAL)?)
        }
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shrinks a socket's send or receive buffer to 16 KiB.
    fn set_buffer(socket: BorrowedFd<'_>, send: bool) {
        let socket = socket2::SockRef::from(&socket);
        let size = 16 * 1024;
        let status = if send {
            socket.set_send_buffer_size(size)
        } else {
            socket.set_recv_buffer_size(size)
        };
        status.unwrap();
    }

    /// A large file-backed body through hyper and [`Connection`] to a client that
    /// reads slowly, so sendfile writes it in many partial pieces.
    #[tokio::test]
    async fn a_file_backed_body_arrives_whole_through_partial_writes() {
        use http_body_util::Full;
        use hyper::service::service_fn;
        use std::io::{Read as _, Write as _};

        let document: Vec<u8> = (0..3_000_000u32).map(|n| (n % 253) as u8).collect();
        let [body] = file_backed([document.clone()]);
        assert!(file_of(&body).is_some());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            set_buffer(stream.as_fd(), true);
            let service = service_fn(move |_request| {
                let body = body.clone();
                async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body))) }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    Connection::new(stream, crate::http::deadline::Deadlines::progress()),
                    service,
                )
                .await
        });
        let received = tokio::task::spawn_blocking(move || {
            let mut client = std::net::TcpStream::connect(address).unwrap();
            set_buffer(client.as_fd(), false);
            client
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            // Let the server fill the socket buffers and wait for room a few times.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut received = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = client.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&chunk[..n]);
                if received.len() < 200_000 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            received
        })
        .await
        .unwrap();
        server.await.unwrap().unwrap();
        assert!(
            bytes_sent_with_sendfile() >= 3_000_000 - MIN_SENDFILE_BYTES as u64,
            "the body went out with sendfile, but for a short tail"
        );
        let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&received[..split]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("content-length: 3000000"), "{head}");
        assert!(
            received[split..] == document[..],
            "the body arrived altered"
        );
    }
}
