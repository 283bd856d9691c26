//! The request-head deadline of HTTP connections: a client has
//! [`HEADER_READ_TIMEOUT`](crate::http::HEADER_READ_TIMEOUT) after connecting, or
//! after its previous response, to send a whole request head; then the connection is
//! closed. A slow client cannot hold connections open with a trickle of bytes, nor
//! an idle one forever.
//!
//! hyper's own `header_read_timeout` arms a timer for every request: a boxed sleep
//! put in the runtime's timer wheel and taken out again. Without it a 304 was 5-10%
//! faster (wrk, alternating runs; docs/PERFORMANCE.md). Here a request costs two
//! relaxed atomic stores, and each HTTP worker sweeps its connections once a
//! second ([`Deadlines::sweep`]), so a connection is closed at most two seconds
//! after its deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// What a connection is doing, for its worker's sweep.
#[derive(Debug)]
pub struct Progress {
    /// When the connection started waiting for its next request head, as read
    /// from [`CLOCK`]; [`ANSWERING`] while a request is being answered.
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

/// Milliseconds since [`EPOCH`] as of the latest sweep of any worker, read by
/// connections as they write: a clock read per write is what this module avoids.
/// It lags the real time by up to a sweep period (about a second).
static CLOCK: AtomicU64 = AtomicU64::new(0);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now() -> u64 {
    CLOCK.load(Ordering::Relaxed)
}

/// One HTTP worker's connections and their progress.
pub struct Deadlines {
    limit: Duration,
    connections: Vec<(Arc<Progress>, AbortHandle)>,
}

impl Deadlines {
    /// Connections get `limit` to send each request head.
    pub fn new(limit: Duration) -> Self {
        LazyLock::force(&EPOCH);
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
    /// connection is closed between `limit` and `limit` + 2 s after it started
    /// waiting (the second allows for [`CLOCK`]'s lag, the other for the period).
    pub fn sweep(&mut self) {
        let elapsed = u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let clock = CLOCK.fetch_max(elapsed, Ordering::Relaxed).max(elapsed);
        let limit = u64::try_from(self.limit.as_millis()).unwrap_or(u64::MAX / 2) + 1000;
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

    /// How many connections are watched (finished ones until the next sweep).
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_connections_waiting_for_a_head_are_cut_off() {
        let mut deadlines = Deadlines::new(Duration::ZERO);
        deadlines.sweep();
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
        assert_eq!(deadlines.len(), 3, "nobody is late yet");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        deadlines.sweep();
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert!(!answering.is_finished() && !blocked.is_finished());
        assert_eq!(deadlines.len(), 2);
        for task in [answering, blocked] {
            task.abort();
            let _ = task.await;
        }
        deadlines.sweep();
        assert!(deadlines.is_empty(), "finished connections are forgotten");
    }
}
