//! The request-head deadline of HTTP connections: a client has
//! [`HEADER_READ_TIMEOUT`](crate::http::HEADER_READ_TIMEOUT) after connecting, or
//! after its previous response, to send a whole request head; then the connection is
//! closed. A slow client cannot hold connections open with a trickle of bytes, nor
//! an idle one forever.
//!
//! hyper's own `header_read_timeout` arms a timer for every request: a boxed sleep
//! put in the runtime's timer wheel and taken out again. Without it a 304 was 5-10%
//! faster (wrk, alternating runs; docs/PERFORMANCE.md). Here a request costs two
//! relaxed atomic stores and a read of the kernel's coarse clock, and each HTTP
//! worker sweeps its connections once a second ([`Deadlines::sweep`]), so a
//! connection is closed about a second after its deadline at most.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::AbortHandle;

/// What a connection is doing, for its worker's sweep.
#[derive(Debug)]
pub struct Progress {
    /// When the connection started waiting for its next request head, in [`now`]'s
    /// milliseconds; [`ANSWERING`] while a request is being answered.
    waiting_since: AtomicU64,
    /// Set while a response waits for room in the socket: the deadline is for
    /// request heads, not for slow readers.
    write_blocked: AtomicBool,
}

/// `waiting_since` while a request is answered.
const ANSWERING: u64 = u64::MAX;

impl Progress {
    /// The request head is complete: the deadline stops until the response leaves.
    pub fn answering(&self) {
        self.waiting_since.store(ANSWERING, Ordering::Relaxed);
    }

    /// Response bytes left (or could not, `blocked`): the wait for the next head
    /// starts now.
    pub fn wrote(&self, blocked: bool) {
        self.write_blocked.store(blocked, Ordering::Relaxed);
        if !blocked {
            self.waiting_since.store(now(), Ordering::Relaxed);
        }
    }
}

/// Milliseconds of the monotonic clock at its coarse resolution (a few ms): read
/// from the vDSO in a few nanoseconds, unlike the precise clock or a timer.
fn now() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; the coarse monotonic clock exists
    // on every Linux since 2.6.32, and `time` stays zero if it did not.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &raw mut time) };
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let millis = u64::try_from(time.tv_nsec).unwrap_or(0) / 1_000_000;
    seconds.saturating_mul(1000).saturating_add(millis)
}

/// One HTTP worker's connections and their progress.
pub struct Deadlines {
    limit: Duration,
    connections: Vec<(Arc<Progress>, AbortHandle)>,
}

impl Deadlines {
    /// Connections get `limit` to send each request head.
    pub fn new(limit: Duration) -> Self {
        Deadlines {
            limit,
            connections: Vec::new(),
        }
    }

    /// The progress record of a connection accepted now, to hand to its socket and
    /// service before [`Deadlines::watch`].
    pub fn progress() -> Arc<Progress> {
        Arc::new(Progress {
            waiting_since: AtomicU64::new(now()),
            write_blocked: AtomicBool::new(false),
        })
    }

    /// Puts the connection task `task` under the deadline.
    pub fn watch(&mut self, progress: Arc<Progress>, task: AbortHandle) {
        self.connections.push((progress, task));
    }

    /// Forgets finished connections and closes the ones past their deadline (by
    /// aborting their task, which drops the socket). Call about once a second: a
    /// connection is closed between `limit` and `limit` plus the period after it
    /// started waiting, however late the sweep runs.
    pub fn sweep(&mut self) {
        let clock = now();
        let limit = u64::try_from(self.limit.as_millis()).unwrap_or(u64::MAX / 2);
        self.connections.retain(|(progress, task)| {
            if task.is_finished() {
                return false;
            }
            let since = progress.waiting_since.load(Ordering::Relaxed);
            let blocked = progress.write_blocked.load(Ordering::Relaxed);
            if since != ANSWERING && !blocked && clock.saturating_sub(since) >= limit {
                task.abort();
                return false;
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_connections_waiting_for_a_head_are_cut_off() {
        let mut deadlines = Deadlines::new(Duration::from_millis(500));
        let pending = || tokio::spawn(std::future::pending::<()>());
        let (waiting, answering, blocked) = (pending(), pending(), pending());
        let progress = [
            Deadlines::progress(),
            Deadlines::progress(),
            Deadlines::progress(),
        ];
        progress[1].answering();
        progress[2].answering();
        progress[2].wrote(true);
        for (progress, task) in progress.iter().zip([&waiting, &answering, &blocked]) {
            deadlines.watch(progress.clone(), task.abort_handle());
        }
        deadlines.sweep();
        assert_eq!(deadlines.connections.len(), 3, "nobody is late yet");
        tokio::time::sleep(Duration::from_millis(600)).await;
        deadlines.sweep();
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert!(!answering.is_finished() && !blocked.is_finished());
        assert_eq!(deadlines.connections.len(), 2);
        for task in [answering, blocked] {
            task.abort();
            let _ = task.await;
        }
        deadlines.sweep();
        assert!(
            deadlines.connections.is_empty(),
            "finished connections are forgotten"
        );
    }
}
