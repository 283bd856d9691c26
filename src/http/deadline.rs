//! The deadlines of HTTP connections:
//! - a client has [`HEADER_READ_TIMEOUT`](crate::http::HEADER_READ_TIMEOUT) after
//!   connecting, or after its previous response, to send a whole request head. A slow
//!   client cannot hold connections open with a trickle of bytes, nor an idle one
//!   forever;
//! - a response that waits for room in the socket must make progress within
//!   `[server] send_timeout` (60 s by default). A reader that stops reading a large
//!   feed would otherwise hold its connection, and the document it was sent, forever.
//!
//! In both cases the connection is closed.
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
    /// In [`now`]'s milliseconds: when the connection started waiting for its next
    /// request head or, while `write_blocked`, for room in the socket;
    /// [`ANSWERING`] while a request is being answered.
    waiting_since: AtomicU64,
    /// Set while a response waits for room in the socket: the send deadline holds,
    /// not the head deadline.
    write_blocked: AtomicBool,
}

/// `waiting_since` while a request is answered.
const ANSWERING: u64 = u64::MAX;

impl Progress {
    /// The request head is complete: the deadline stops until the response leaves.
    pub fn answering(&self) {
        self.waiting_since.store(ANSWERING, Ordering::Relaxed);
    }

    /// Response bytes left: the wait for the next head starts now. Or they could
    /// not (`blocked`): the wait for room starts now, unless it already had.
    pub fn wrote(&self, blocked: bool) {
        if !blocked {
            self.write_blocked.store(false, Ordering::Relaxed);
            self.waiting_since.store(now(), Ordering::Relaxed);
        } else if !self.write_blocked.swap(true, Ordering::Relaxed) {
            self.waiting_since.store(now(), Ordering::Relaxed);
        }
    }
}

/// Milliseconds of the monotonic clock at its coarse resolution (a few ms): read
/// from the vDSO in a few nanoseconds, unlike the precise clock or a timer.
fn now() -> u64 {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let millis = u64::try_from(time.tv_nsec).unwrap_or(0) / 1_000_000;
    seconds.saturating_mul(1000).saturating_add(millis)
}

/// One HTTP worker's connections and their progress.
pub struct Deadlines {
    /// The two limits in [`now`]'s milliseconds.
    head_ms: u64,
    send_ms: u64,
    connections: Vec<(Arc<Progress>, AbortHandle)>,
}

impl Deadlines {
    /// Connections get `head` to send each request head, and responses `send` to
    /// find room in the socket.
    pub fn new(head: Duration, send: Duration) -> Self {
        let millis = |limit: Duration| u64::try_from(limit.as_millis()).unwrap_or(u64::MAX / 2);
        Deadlines {
            head_ms: millis(head),
            send_ms: millis(send),
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
    /// connection is closed between its deadline and the deadline plus the period
    /// after it started waiting, however late the sweep runs.
    pub fn sweep(&mut self) {
        let clock = now();
        let (head, send) = (self.head_ms, self.send_ms);
        self.connections.retain(|(progress, task)| {
            if task.is_finished() {
                return false;
            }
            let since = progress.waiting_since.load(Ordering::Relaxed);
            let limit = if progress.write_blocked.load(Ordering::Relaxed) {
                send
            } else {
                head
            };
            if since != ANSWERING && clock.saturating_sub(since) >= limit {
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
    async fn heads_and_blocked_writes_each_have_their_deadline() {
        let ms = Duration::from_millis;
        let mut deadlines = Deadlines::new(ms(200), ms(600));
        let start = tokio::time::Instant::now();
        let pending = || tokio::spawn(std::future::pending::<()>());
        let tasks = [pending(), pending(), pending(), pending()];
        let [waiting, answering, blocked, progressing] =
            std::array::from_fn(|_| Deadlines::progress());
        answering.answering();
        for stuck in [&blocked, &progressing] {
            stuck.answering();
            stuck.wrote(true);
        }
        for (progress, task) in [&waiting, &answering, &blocked, &progressing]
            .into_iter()
            .zip(&tasks)
        {
            deadlines.watch(progress.clone(), task.abort_handle());
        }
        /// Sweeps at `when` and tells which tasks are still running.
        async fn sweep_at(
            deadlines: &mut Deadlines,
            when: tokio::time::Instant,
            tasks: &[tokio::task::JoinHandle<()>; 4],
        ) -> [bool; 4] {
            tokio::time::sleep_until(when).await;
            deadlines.sweep();
            tokio::task::yield_now().await;
            tasks.each_ref().map(|task| !task.is_finished())
        }

        deadlines.sweep();
        assert_eq!(deadlines.connections.len(), 4, "nobody is late yet");
        let alive = sweep_at(&mut deadlines, start + ms(250), &tasks).await;
        assert_eq!(alive, [false, true, true, true], "the head deadline");

        tokio::time::sleep_until(start + ms(400)).await;
        // Some bytes left, then the socket is full again: the send clock restarts.
        progressing.wrote(false);
        progressing.wrote(true);
        // Still blocked: the clock goes on from the first refusal.
        blocked.wrote(true);
        let alive = sweep_at(&mut deadlines, start + ms(700), &tasks).await;
        assert_eq!(alive, [false, true, false, true], "600 ms without room");

        let alive = sweep_at(&mut deadlines, start + ms(1100), &tasks).await;
        assert_eq!(alive, [false, true, false, false], "600 ms since progress");
        assert_eq!(
            deadlines.connections.len(),
            1,
            "a request being answered has no deadline"
        );

        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        deadlines.sweep();
        assert!(
            deadlines.connections.is_empty(),
            "finished connections are forgotten"
        );
    }
}
