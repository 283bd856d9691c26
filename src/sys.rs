//! The system calls tributary makes beyond what std, tokio and rustix offer safely,
//! each behind a small safe function: the only `unsafe` code of the library.

use std::io;

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
