//! The memory allocator of every tributary process: jemalloc instead of glibc's malloc.
//!
//! Storing a feed's items is mostly allocation (sled copies a tree node for each
//! write), and so is sanitizing their HTML. With glibc, malloc and free took about a
//! quarter of a 1000-source cold poll's CPU, part of it waiting on its arenas' locks;
//! with jemalloc the same poll takes about a quarter less CPU (`bench/poll.sh`;
//! figures in docs/PERFORMANCE.md).
//!
//! The settings keep memory close to what glibc used:
//! - one arena for all threads: parsing runs on several, and each arena holds its
//!   own free memory;
//! - freed pages go back to the system after 100 ms, by jemalloc's background
//!   thread, instead of after 10 s. Returning them at once cost most of the speed;
//!   keeping them 250 ms added 15 MB to the peak of a daemon opening a store of a
//!   million items, for no measurable speed;
//! - each thread caches few and only small blocks, except the HTTP threads (see
//!   [`cache_request_buffers`]).
//!
//! An operator can override them with the `_RJEM_MALLOC_CONF` environment variable
//! (jemalloc's `MALLOC_CONF` syntax).

use std::ffi::c_char;

#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A C string pointer that jemalloc reads once, at its first allocation.
#[repr(transparent)]
pub struct MallocConf(*const c_char);

// SAFETY: the pointer is to a static, immutable C string.
unsafe impl Sync for MallocConf {}

/// jemalloc's built-in options (`malloc_conf`, under tikv-jemalloc-sys's prefix).
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: MallocConf = MallocConf(
    c"narenas:1,background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0,\
      tcache_max:1024,tcache_nslots_small_max:32"
        .as_ptr(),
);

/// The largest block an HTTP thread keeps in its own cache: hyper's read buffer
/// (8 KiB, [`crate::http::MAX_REQUEST_HEAD_BYTES`]) with room to spare.
const HTTP_THREAD_CACHE_MAX: usize = 16 * 1024;

/// Lets the calling thread cache freed blocks up to [`HTTP_THREAD_CACHE_MAX`].
///
/// hyper gives each keep-alive request a fresh 8 KiB read buffer (the previous one
/// is still shared with the request being answered). Above `tcache_max` every such
/// block came from the one arena, under a lock both HTTP threads take: that was 10%
/// of a 304's cost (`bench/serve.sh`). Only the HTTP threads get the larger cache,
/// so polling's memory stays as it was (raising `tcache_max` for every thread added
/// 7 MB to the daemon's first-cycle peak).
pub fn cache_request_buffers() -> std::io::Result<()> {
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
        Err(std::io::Error::from_raw_os_error(status))
    }
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
        std::thread::spawn(|| {
            assert_eq!(thread_cache_max(), 1024, "the built-in tcache_max");
            cache_request_buffers().unwrap();
            assert_eq!(thread_cache_max(), HTTP_THREAD_CACHE_MAX);
        })
        .join()
        .unwrap();
        std::thread::spawn(|| assert_eq!(thread_cache_max(), 1024))
            .join()
            .unwrap();
    }
}
