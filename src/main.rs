//! The `tributary` binary: parse the command line, set up logging, dispatch to
//! [`tributary::cli`]. Also the process's memory allocator, which only the binary
//! sets, so tests, benches and fuzz targets keep the system allocator.

use clap::Parser;
use std::ffi::c_char;
use std::process::ExitCode;
use tributary::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tributary::ops::logging::init(cli.log_level);
    tributary::cli::dispatch(cli.command)
}

// The memory allocator of every tributary process: jemalloc instead of glibc's malloc.
//
// Storing a feed's items is mostly allocation (sled copies a tree node for each
// write), and so is sanitizing their HTML. With glibc, malloc and free took about a
// quarter of a 1000-source cold poll's CPU, part of it waiting on its arenas' locks;
// with jemalloc the same poll takes about a quarter less CPU (`bench/poll.sh`;
// figures in docs/PERFORMANCE.md).
//
// The settings keep memory close to what glibc used:
// - one arena for all threads: parsing runs on several, and each arena holds its
//   own free memory;
// - freed pages go back to the system after 100 ms, by jemalloc's background
//   thread, instead of after 10 s. Returning them at once cost most of the speed;
//   keeping them 250 ms added 15 MB to the peak of a daemon opening a store of a
//   million items, for no measurable speed;
// - each thread caches few and only small blocks, except the HTTP threads (see
//   `tributary::sys::cache_request_buffers`).
//
// An operator can override them with the `_RJEM_MALLOC_CONF` environment variable
// (jemalloc's `MALLOC_CONF` syntax).
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
