//! The system calls tributary makes beyond what std, tokio and rustix offer safely,
//! each behind a small safe function: the only `unsafe` code of the library.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{LazyLock, PoisonError, RwLock};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The largest block an HTTP thread keeps in its own cache: hyper's read buffer
/// (8 KiB, the HTTP layer's `MAX_REQUEST_HEAD_BYTES`) with room to spare.
const HTTP_THREAD_CACHE_MAX: usize = 16 * 1024;

/// Lets the calling thread cache freed blocks up to [`HTTP_THREAD_CACHE_MAX`].
///
/// hyper gives each keep-alive request a fresh 8 KiB read buffer (the previous one
/// is still shared with the request being answered). Above `tcache_max` every such
/// block came from the one arena, under a lock both HTTP threads take: that was 10%
/// of a 304's cost (`bench/serve.sh`). Only the HTTP threads get the larger cache,
/// so polling's memory stays as it was (raising `tcache_max` for every thread added
/// 7 MB to the daemon's first-cycle peak).
pub fn cache_request_buffers() -> io::Result<()> {
    let mut max = HTTP_THREAD_CACHE_MAX;
    // SAFETY: `thread.tcache.max` is a size_t control; the new value is a valid
    // pointer to one, with its size, and no old value is read.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"thread.tcache.max".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw mut max).cast(),
            size_of::<usize>(),
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(status))
    }
}

/// Restores the default disposition of SIGPIPE, so `tributary inspect … | head` ends
/// like any Unix tool when `head` stops reading, where Rust's default (the signal
/// ignored) makes `println!` panic. Not for the daemon, whose writes go to sockets and
/// the journal. Call before any thread starts.
pub fn stop_quietly_on_closed_pipe() {
    // SAFETY: sets the disposition of one signal to its default; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Raises the soft limit of open files to the hard one: `Some((from, to))` when it
/// did, `None` when the soft limit already is the hard one.
///
/// Every reader connection holds a descriptor, and so does every large rendered
/// document; the usual soft limit of 1024 would turn away readers long before the
/// machine is busy. tributary does not use select(), the reason the soft limit is low.
pub fn raise_open_file_limit() -> io::Result<Option<(u64, u64)>> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= limit.rlim_max {
        return Ok(None);
    }
    let wanted = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const wanted) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some((limit.rlim_cur, limit.rlim_max)))
}

/// The listening socket systemd passed (socket activation: `LISTEN_FDS`, with
/// `LISTEN_PID` naming this process), if any, now owned by the caller. Blocking;
/// the caller makes it non-blocking for tokio.
/// Only the first call can take it; later calls get `None`.
pub fn systemd_listener() -> io::Result<Option<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let mut fds = sd_notify::listen_fds()?;
    let Some(fd) = fds.next() else {
        return Ok(None);
    };
    if fds.len() > 0 {
        return Err(io::Error::other(
            "systemd passed several sockets; tributary serves on one",
        ));
    }
    if !is_listening_socket(fd) {
        return Err(io::Error::other(format!(
            "fd {fd} is not a listening stream socket (use ListenStream= in the .socket unit)"
        )));
    }
    // SAFETY: systemd hands this fd over to the process for it to own; `TAKEN` lets
    // only this one call take it, and it was just seen to be a listening socket.
    Ok(Some(unsafe { std::net::TcpListener::from_raw_fd(fd) }))
}

/// Whether `fd` is a socket that accepts connections (SO_ACCEPTCONN), checked before
/// taking ownership of it.
fn is_listening_socket(fd: std::os::fd::RawFd) -> bool {
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `accepting`; a closed or
    // non-socket fd makes it fail without side effects.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && accepting != 0
}

/// Registers `listener` with the current tokio runtime for readiness, taking it:
/// the accept loops wait on it without tokio's own `TcpListener`, so an accepted
/// socket is registered only by the worker that serves it.
pub fn register_listener(
    listener: socket2::Socket,
    interest: Interest,
) -> io::Result<AsyncFd<socket2::Socket>> {
    // SAFETY: the AsyncFd owns the socket, so its descriptor stays open and the same
    // until the AsyncFd is dropped.
    Ok(unsafe { AsyncFd::register_with_interest(listener, interest) }?)
}

/// Every live [`ReadOnlyMapping`], by start address: its length and file.
static MAPPINGS: LazyLock<RwLock<BTreeMap<usize, (usize, RawFd)>>> =
    LazyLock::new(|| RwLock::new(BTreeMap::new()));

/// A file mapped read-only and shared, with the descriptor that keeps it: unmapped,
/// then closed, on drop. While it lives it is registered, so a slice of it leads
/// back to its file ([`mapped_file_of`]).
pub struct ReadOnlyMapping {
    fd: OwnedFd,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and its file is never written again (see
// `ReadOnlyMapping::new`); it is unmapped only on drop, by its one owner.
unsafe impl Send for ReadOnlyMapping {}
// SAFETY: shared references only ever read the mapping, which does not change.
unsafe impl Sync for ReadOnlyMapping {}

impl ReadOnlyMapping {
    /// Maps the first `len` bytes (not zero) of the file `fd` reads, taking the
    /// descriptor. The mapping is read as memory that never changes: nothing may
    /// write to or shrink the file any more (an unnamed file that only `fd` opens,
    /// or a sealed memfd).
    pub fn new(fd: OwnedFd, len: usize) -> io::Result<Self> {
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
        let mapping = ReadOnlyMapping {
            fd,
            ptr: ptr.cast(),
            len,
        };
        MAPPINGS
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(mapping.ptr as usize, (len, mapping.fd.as_raw_fd()));
        Ok(mapping)
    }
}

impl AsRef<[u8]> for ReadOnlyMapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes are mapped at `ptr` until drop, and never change.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for ReadOnlyMapping {
    fn drop(&mut self) {
        MAPPINGS
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(self.ptr as usize));
        // SAFETY: unmaps exactly the mapping made in `new`, which no slice outlives
        // (each borrows this owner). The descriptor closes after, with the field.
        unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
    }
}

/// Where `buf` lies in a live [`ReadOnlyMapping`]: its file, borrowed for as long as
/// `buf`, and the offset of `buf`'s first byte in it. `None` for any other memory.
pub fn mapped_file_of(buf: &[u8]) -> Option<(BorrowedFd<'_>, usize)> {
    let address = buf.as_ptr() as usize;
    let mappings = MAPPINGS.read().unwrap_or_else(PoisonError::into_inner);
    let (&start, &(len, fd)) = mappings.range(..=address).next_back()?;
    if address + buf.len() > start + len {
        return None;
    }
    // SAFETY: `buf` lies in the mapping registered at `start`, which is registered
    // from its creation until its drop, and closes `fd` only after unregistering and
    // unmapping. `buf` borrows the mapping (safe code has no other way to reach its
    // bytes), so the mapping and `fd` outlive the borrow returned.
    Some((unsafe { BorrowedFd::borrow_raw(fd) }, address - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's `thread.tcache.max`.
    fn thread_cache_max() -> usize {
        let mut max = 0usize;
        let mut len = size_of::<usize>();
        // SAFETY: reads a size_t control into a size_t, with its size.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"thread.tcache.max".as_ptr(),
                (&raw mut max).cast(),
                &raw mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(status, 0);
        max
    }

    #[test]
    fn an_http_thread_caches_hypers_read_buffer_and_others_do_not() {
        // The built-in value is whatever the process configured (the daemon's
        // `malloc_conf`, or jemalloc's own default in this test binary).
        let built_in = std::thread::spawn(thread_cache_max).join().unwrap();
        assert_ne!(built_in, HTTP_THREAD_CACHE_MAX);
        std::thread::spawn(|| {
            cache_request_buffers().unwrap();
            assert_eq!(thread_cache_max(), HTTP_THREAD_CACHE_MAX);
        })
        .join()
        .unwrap();
        std::thread::spawn(move || assert_eq!(thread_cache_max(), built_in))
            .join()
            .unwrap();
    }
}
