//! Response bodies sent from files with sendfile(2), the way nginx sends a static
//! file: the kernel passes the pages to the socket instead of copying them.
//!
//! `publish` stores each rendered document's variants in one file, mapped read-only,
//! and hands its bytes out as [`Bytes`] ([`file_backed`]). hyper queues a body as its
//! own buffer in a vectored write; [`Connection`], the socket hyper writes to,
//! recognizes a buffer that lies in such a mapping and sends it with sendfile after
//! the response head (sent with `MSG_MORE`, so both leave in the same packets).
//! Anything else is written as usual.
//!
//! On loopback with a 143 KB feed, copying the body into the socket was 12% of the
//! server's CPU (`bench/serve.sh`, perf). Short bodies are copied as before
//! ([`MIN_SENDFILE_BYTES`]).
//!
//! The file is an unnamed one (`O_TMPFILE`) in the directory [`keep_documents_in`]
//! names, the store's. A disk filesystem's page cache holds it in large folios, which
//! sendfile walks with far fewer lookups than a memfd's 4 KiB pages (tmpfs without
//! huge pages): the 143 KB feed took 12% less CPU per request, as little as nginx
//! (docs/PERFORMANCE.md). Where that directory cannot hold one (a full disk, a
//! filesystem without `O_TMPFILE`), the document goes into a sealed memfd. When the
//! kernel or a sandbox refuses both kinds of file, or sendfile, bodies are ordinary
//! memory or written from the mapping: slower, never wrong.

use crate::http::deadline::Progress;
use bytes::Bytes;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::{debug, warn};

/// Bodies shorter than this are copied into the socket: below it, sendfile's page
/// handling and second system call cost more than the copy. With `bench/serve.sh`'s
/// feed, sendfile made the 143 KB identity body 1.26× as fast and the 48 KB gzip
/// body 0.89×. A document none of whose variants reaches it stays in ordinary
/// memory, as does what remains of a body after a partial write when it is shorter.
pub const MIN_SENDFILE_BYTES: usize = 64 * 1024;

/// Set when sendfile was refused (a seccomp filter, a kernel without it): from then
/// on every write copies.
static SENDFILE_REFUSED: AtomicBool = AtomicBool::new(false);

/// Bytes sent with sendfile since the start: what shows the path is taken.
static SENT_WITH_SENDFILE: AtomicU64 = AtomicU64::new(0);

/// How many body bytes have left with sendfile (rather than a copy) so far.
pub fn bytes_sent_with_sendfile() -> u64 {
    SENT_WITH_SENDFILE.load(Ordering::Relaxed)
}

/// Where documents become unnamed files; `None` until [`keep_documents_in`].
static DOCUMENT_DIRECTORY: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Set once a document could not be kept in [`DOCUMENT_DIRECTORY`], so the warning
/// is not repeated at every render.
static DIRECTORY_REFUSED: AtomicBool = AtomicBool::new(false);

/// Keeps the documents rendered from now on as unnamed files in `directory`, which
/// should be on a disk filesystem (`app` gives the store's directory). Nothing is
/// ever visible there: the files have no name and vanish with their last reader.
pub fn keep_documents_in(directory: &Path) {
    *DOCUMENT_DIRECTORY
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(directory.to_path_buf());
    DIRECTORY_REFUSED.store(false, Ordering::Relaxed);
}

/// Every live mapping, by start address: its length and file.
static MAPPINGS: LazyLock<RwLock<BTreeMap<usize, (usize, RawFd)>>> =
    LazyLock::new(|| RwLock::new(BTreeMap::new()));

/// `parts` laid end to end in one file and returned as slices of its read-only
/// mapping, or as ordinary [`Bytes`] when none is long enough to be sent with
/// sendfile or no file can be made.
pub fn file_backed<const N: usize>(parts: [Vec<u8>; N]) -> [Bytes; N] {
    let directory = DOCUMENT_DIRECTORY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    file_backed_in(directory.as_deref(), parts)
}

/// [`file_backed`], with the file in `directory` when it can be made there.
fn file_backed_in<const N: usize>(directory: Option<&Path>, parts: [Vec<u8>; N]) -> [Bytes; N] {
    if parts.iter().all(|part| part.len() < MIN_SENDFILE_BYTES) {
        return parts.map(Bytes::from);
    }
    match MappedFile::new(directory, &parts) {
        Ok(file) => {
            let whole = Bytes::from_owner(file);
            let mut start = 0;
            parts.map(|part| {
                let slice = whole.slice(start..start + part.len());
                start += part.len();
                slice
            })
        }
        Err(err) => {
            debug!(error = %err, "cannot put a document in a memory file; keeping it in memory");
            parts.map(Bytes::from)
        }
    }
}

/// A file holding a document and its read-only mapping, registered in [`MAPPINGS`]
/// while alive. Nothing writes to the file once it is mapped: an unnamed file has no
/// other opener, and a memfd is sealed.
struct MappedFile {
    fd: OwnedFd,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and its file is never written again; it is
// unmapped only on drop.
unsafe impl Send for MappedFile {}
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// `parts` in an unnamed file in `directory`, else in a sealed memfd.
    fn new(directory: Option<&Path>, parts: &[Vec<u8>]) -> io::Result<Self> {
        if let Some(directory) = directory {
            match unnamed_file(directory, parts).and_then(|fd| Self::map(fd, parts)) {
                Ok(file) => return Ok(file),
                Err(err) => {
                    if !DIRECTORY_REFUSED.swap(true, Ordering::Relaxed) {
                        warn!(directory = %directory.display(), error = %err,
                            "cannot keep rendered documents on disk; keeping them in memory files");
                    }
                }
            }
        }
        Self::map(sealed_memfd(parts)?, parts)
    }

    /// Maps `fd`, which holds `parts`, and registers the mapping.
    fn map(fd: OwnedFd, parts: &[Vec<u8>]) -> io::Result<Self> {
        let len: usize = parts.iter().map(Vec::len).sum();
        // SAFETY: a read-only shared mapping of `len` bytes of a file that long; the
        // result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let file = MappedFile {
            fd,
            ptr: ptr.cast(),
            len,
        };
        MAPPINGS
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(file.ptr as usize, (len, file.fd.as_raw_fd()));
        Ok(file)
    }
}

/// `parts` written to a new unnamed file in `directory`, which can never be linked
/// into it (`O_EXCL`).
fn unnamed_file(directory: &Path, parts: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_EXCL | libc::O_CLOEXEC)
        .open(directory)?;
    for part in parts {
        io::Write::write_all(&mut file, part)?;
    }
    Ok(OwnedFd::from(file))
}

/// `parts` written to a new memfd, sealed against any change.
fn sealed_memfd(parts: &[Vec<u8>]) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and valid flags; the result is checked.
    let raw = unsafe {
        libc::memfd_create(
            c"tributary-document".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    for part in parts {
        io::Write::write_all(&mut file, part)?;
    }
    let fd = OwnedFd::from(file);
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes are mapped at `ptr` until drop, and sealed.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        MAPPINGS
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(self.ptr as usize));
        // SAFETY: unmaps exactly the mapping made in `new`, which no slice outlives
        // (each holds this owner).
        unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
    }
}

/// Where `buf` lies in a document file: the descriptor and the offset of its first byte.
/// The caller holds the [`Bytes`] `buf` comes from, so the file stays open.
fn file_of(buf: &[u8]) -> Option<(RawFd, usize)> {
    if buf.len() < MIN_SENDFILE_BYTES || SENDFILE_REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    let address = buf.as_ptr() as usize;
    let mappings = MAPPINGS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (&start, &(len, fd)) = mappings.range(..=address).next_back()?;
    (address + buf.len() <= start + len).then_some((fd, address - start))
}

/// An accepted connection as hyper sees it: reads as usual; writes file-backed
/// bodies with sendfile, and reports each write to the connection's [`Progress`].
pub struct Connection {
    io: TokioIo<TcpStream>,
    progress: Arc<Progress>,
}

impl Connection {
    pub fn new(stream: TcpStream, progress: Arc<Progress>) -> Self {
        Connection {
            io: TokioIo::new(stream),
            progress,
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
                send_head_and_file(stream.as_raw_fd(), head, body, file, offset)
            }) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                outcome => return Poll::Ready(outcome),
            }
        }
    }
}

impl Read for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
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
    socket: RawFd,
    head: &[IoSlice<'_>],
    body: &[u8],
    file: RawFd,
    offset: usize,
) -> io::Result<usize> {
    let head_len: usize = head.iter().map(|buf| buf.len()).sum();
    let mut sent = 0;
    if head_len > 0 {
        // SAFETY: a msghdr naming only the iovecs of `head` (IoSlice is an iovec).
        let n = unsafe {
            let mut message: libc::msghdr = std::mem::zeroed();
            message.msg_iov = head.as_ptr().cast_mut().cast();
            message.msg_iovlen = head.len() as _;
            libc::sendmsg(socket, &message, libc::MSG_MORE | libc::MSG_NOSIGNAL)
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        sent = n as usize;
        if sent < head_len {
            return Ok(sent);
        }
    }
    let mut file_offset = offset as libc::off_t;
    // SAFETY: sendfile between two open descriptors, within the file's length.
    let n = unsafe { libc::sendfile(socket, file, &mut file_offset, body.len()) };
    if n >= 0 {
        SENT_WITH_SENDFILE.fetch_add(n as u64, Ordering::Relaxed);
        return Ok(sent + n as usize);
    }
    let err = io::Error::last_os_error();
    if sent > 0 {
        // The head left: report that; the body goes (or fails) at the next call.
        return Ok(sent);
    }
    match err.raw_os_error() {
        Some(libc::EPERM | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
            if !SENDFILE_REFUSED.swap(true, Ordering::Relaxed) {
                warn!(error = %err, "sendfile refused; response bodies are copied from now on");
            }
            // SAFETY: sends the mapped bytes of `body`, a live slice.
            let n =
                unsafe { libc::send(socket, body.as_ptr().cast(), body.len(), libc::MSG_NOSIGNAL) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        }
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_documents_stay_in_memory_and_large_ones_map_a_sealed_file() {
        let [small] = file_backed_in(None, [b"<rss/>".to_vec()]);
        assert_eq!(&small[..], b"<rss/>");
        assert!(file_of(&small).is_none());

        let identity: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
        let gzip = vec![7u8; 70_000];
        let [a, b] = file_backed_in(None, [identity.clone(), gzip.clone()]);
        assert_eq!(&a[..], &identity[..]);
        assert_eq!(&b[..], &gzip[..]);
        let (fd_a, offset_a) = file_of(&a).expect("the first part is file-backed");
        let (fd_b, offset_b) = file_of(&b).expect("the second part is file-backed");
        assert_eq!(offset_a, 0);
        assert_eq!(
            (fd_b, offset_b),
            (fd_a, identity.len()),
            "one file for both parts"
        );
        let inner = a.slice(100..80_000);
        assert_eq!(file_of(&inner), Some((fd_a, 100)));
        // Sealed: the file cannot be written to.
        // SAFETY: writes one byte to a descriptor this test holds open through `a`.
        let written = unsafe { libc::pwrite(fd_a, b"x".as_ptr().cast(), 1, 0) };
        assert_eq!(written, -1);
        drop((a, b, inner));
        let owned: Vec<u8> = vec![1; 100_000];
        assert!(
            file_of(&owned).is_none(),
            "ordinary memory is not mistaken for a file"
        );
    }

    /// What `/proc` says descriptor `fd` of this process is.
    fn target_of(fd: RawFd) -> String {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn documents_go_to_an_unnamed_file_in_the_directory_else_to_a_memfd() {
        let directory = tempfile::tempdir().unwrap();
        let document: Vec<u8> = (0..200_000u32).map(|n| (n % 241) as u8).collect();
        let [on_disk] = file_backed_in(Some(directory.path()), [document.clone()]);
        assert_eq!(&on_disk[..], &document[..]);
        let (fd, offset) = file_of(&on_disk).expect("file-backed");
        assert_eq!(offset, 0);
        let target = target_of(fd);
        assert!(
            target.starts_with(&*directory.path().to_string_lossy())
                && target.ends_with("(deleted)"),
            "{target}"
        );
        assert_eq!(
            std::fs::read_dir(directory.path()).unwrap().count(),
            0,
            "nothing is visible in the directory"
        );

        // A directory that cannot hold it (here: gone) leaves the memfd.
        let gone = directory.path().join("gone");
        let [in_memory] = file_backed_in(Some(&gone), [document.clone()]);
        assert_eq!(&in_memory[..], &document[..]);
        let (fd, _) = file_of(&in_memory).expect("file-backed");
        assert!(
            target_of(fd).starts_with("/memfd:tributary-document"),
            "{}",
            target_of(fd)
        );
    }

    /// Shrinks a socket's send or receive buffer to 16 KiB.
    fn set_buffer(socket: RawFd, option: libc::c_int) {
        let size: libc::c_int = 16 * 1024;
        // SAFETY: setsockopt with an int option on an open socket.
        let status = unsafe {
            libc::setsockopt(
                socket,
                libc::SOL_SOCKET,
                option,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(status, 0);
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
            set_buffer(stream.as_raw_fd(), libc::SO_SNDBUF);
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
            set_buffer(client.as_raw_fd(), libc::SO_RCVBUF);
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
