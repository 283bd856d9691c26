//! The accept loops and the connections: one worker thread per core, each with its
//! own runtime, accepting from the same listener, the workers' shares of the open
//! connections kept even ([`Balance`]), each connection under its deadlines.

use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::deadline::Deadlines;
use super::routes::service;
use super::zerocopy::Connection;
use super::{HEADER_READ_TIMEOUT, HttpState, MAX_REQUEST_HEAD_BYTES};
use crate::ops::metrics::Metrics;
use crate::ops::watchdog::{HEARTBEAT_EVERY, Heartbeat};

/// Serves on `listener` until `token` is cancelled, then stops accepting and waits
/// for the requests in progress (the caller bounds the wait). `heartbeat` is touched
/// while the accept loops turn, for the watchdog.
///
/// One thread per core, each with its own single-threaded runtime accepting from
/// the same socket, the way nginx runs one worker per core: a connection lives on
/// the thread it was given to, so serving a request never wakes another thread or
/// moves a task between cores. The threads share the connections evenly
/// ([`Balance`]). Polling and parsing stay on the main runtime.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    heartbeat: Heartbeat,
    token: CancellationToken,
) -> std::io::Result<()> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let listener = listener.into_std()?;
    // Responses are written whole; there is nothing to gain from Nagle's delay.
    // Accepted sockets inherit the option (Linux), which saves a system call per
    // connection; if the listener refuses it, each connection gets it instead.
    let nodelay_inherited = socket2::SockRef::from(&listener)
        .set_tcp_nodelay(true)
        .inspect_err(|err| debug!(error = %err, "cannot set TCP_NODELAY on the listener"))
        .is_ok();
    let state = Arc::new(state);
    let (balance, handed) = Balance::new(workers, &state.metrics);
    let balance = Arc::new(balance);
    // Each worker's result, in the order they end.
    let mut finished = tokio::task::JoinSet::new();
    // A worker that cannot start stops the ones already started.
    let stop_started = |err| {
        token.cancel();
        err
    };
    for (worker, handed) in handed.into_iter().enumerate() {
        let listener = listener.try_clone().map_err(stop_started)?;
        let state = state.clone();
        let balance = balance.clone();
        let heartbeat = heartbeat.clone();
        let worker_token = token.clone();
        let (done, finished_rx) = tokio::sync::oneshot::channel();
        finished.spawn(finished_rx);
        let spawned = std::thread::Builder::new()
            .name(format!("http-{worker}"))
            .spawn(move || {
                if let Err(err) = crate::sys::cache_request_buffers() {
                    warn!(error = %err, "cannot enlarge the HTTP thread's allocation cache");
                }
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    // `/tags` and `/sources` views render off the accept loop; two
                    // threads per worker bound that.
                    .max_blocking_threads(2)
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let worker = Worker {
                                number: worker,
                                state,
                                balance,
                                nodelay_inherited,
                            };
                            worker.run(listener, handed, heartbeat, worker_token).await
                        })
                    });
                let _ = done.send(result);
            });
        spawned.map_err(stop_started)?;
    }
    drop(listener);
    let mut result = Ok(());
    while let Some(outcome) = finished.join_next().await {
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            // The thread dropped its sender unsent: it panicked.
            _ => Err(std::io::Error::other("an HTTP worker thread panicked")),
        };
        if let Err(err) = outcome {
            // The first failure cancels the other workers: half a server is not served.
            token.cancel();
            result = result.and(Err(err));
        }
    }
    result
}

/// A connection accepted and not yet served, counted in the open connections of
/// the worker meant to serve it from the moment it is assigned until it closes.
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    counted: Counted,
}

/// One open connection in a worker's gauge, taken out again when dropped: when the
/// connection ends, is cut off by a deadline, or is dropped unserved at shutdown.
struct Counted(Gauge);

impl Counted {
    fn new(gauge: &Gauge) -> Counted {
        gauge.inc();
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Keeps the workers' shares of the open connections even.
///
/// The kernel wakes every worker waiting on the listening socket for each new
/// connection, and the one that is already running usually accepts it first. Left
/// to that, one thread could hold nearly all of a busy client's connections while
/// the other idled: in `bench/serve.sh` runs the split of CPU time between the two
/// threads went from even to 100:0, and a fifth of the machine stood idle. So a
/// worker that accepts a connection while another holds fewer hands it over, the
/// way a static server spreads connections with `SO_REUSEPORT` (which would let a
/// second daemon bind the same port by mistake and silently share it).
struct Balance {
    /// Each worker's open connections (`tributary_http_connections`).
    open: Vec<Gauge>,
    /// The way to each worker's accept loop.
    handoff: Vec<mpsc::UnboundedSender<Accepted>>,
    /// Set when a worker stops taking connections: at shutdown, or if it failed.
    stopped: Vec<AtomicBool>,
}

impl Balance {
    /// A balance of `workers`, counting in `metrics`, and the receiving end of each
    /// worker's handoff channel.
    fn new(workers: usize, metrics: &Metrics) -> (Balance, Vec<mpsc::UnboundedReceiver<Accepted>>) {
        let (handoff, handed) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let open = (0..workers)
            .map(|worker| metrics.http_connections(worker))
            .collect();
        let stopped = (0..workers).map(|_| AtomicBool::new(false)).collect();
        (
            Balance {
                open,
                handoff,
                stopped,
            },
            handed,
        )
    }

    /// The worker that should serve a connection `accepted_by` accepted: itself,
    /// unless another that still takes connections has fewer open (the first with
    /// the fewest).
    fn assign(&self, accepted_by: usize) -> usize {
        let mut least = accepted_by;
        let mut fewest = self.open[accepted_by].get();
        for (worker, open) in self.open.iter().enumerate() {
            let open = open.get();
            if open < fewest && !self.stopped[worker].load(Ordering::Relaxed) {
                (least, fewest) = (worker, open);
            }
        }
        least
    }
}

/// One serving thread's share: its number, what the handlers share, the balance.
struct Worker {
    number: usize,
    state: Arc<HttpState>,
    balance: Arc<Balance>,
    /// Accepted sockets come with `TCP_NODELAY` from the listener.
    nodelay_inherited: bool,
}

impl Worker {
    /// Accepts on `listener`, and takes the connections other workers hand over on
    /// `handed`, serving each on this thread until `token` is cancelled; then waits
    /// for its connections to finish.
    async fn run(
        self,
        listener: std::net::TcpListener,
        mut handed: mpsc::UnboundedReceiver<Accepted>,
        heartbeat: Heartbeat,
        token: CancellationToken,
    ) -> std::io::Result<()> {
        let listener =
            crate::sys::register_listener(socket2::Socket::from(listener), Interest::READABLE)?;
        let graceful = GracefulShutdown::new();
        let http = connection_builder();
        let mut deadlines = Deadlines::new(HEADER_READ_TIMEOUT, self.state.send_timeout);
        // Also the period of the deadline sweep, which needs about a second.
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => break,
                _ = beat.tick() => {
                    heartbeat.beat();
                    deadlines.sweep();
                    continue;
                }
                Some(handed) = handed.recv() => handed,
                accepted = accept(&listener) => match self.take(accepted).await {
                    Some(accepted) => accepted,
                    None => continue,
                },
            };
            self.start(accepted, &graceful, &http, &mut deadlines);
        }
        // Connections handed over from now on are closed unserved.
        self.balance.stopped[self.number].store(true, Ordering::Relaxed);
        drop(handed);
        drop(listener);
        // hyper closes idle connections at once; the others finish their request, and
        // the deadlines still hold meanwhile (a half-sent head or a reader that stopped
        // reading would otherwise hold the drain open).
        let drained = graceful.shutdown();
        tokio::pin!(drained);
        loop {
            tokio::select! {
                () = &mut drained => break,
                _ = beat.tick() => deadlines.sweep(),
            }
        }
        Ok(())
    }

    /// What becomes of a connection this worker accepted: served here (`Some`), or
    /// handed over to the worker with the fewest (`None`). After a failed accept (out
    /// of file descriptors and the like), `None` after a pause instead of spinning.
    async fn take(
        &self,
        accepted: std::io::Result<(std::net::TcpStream, SocketAddr)>,
    ) -> Option<Accepted> {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(error = %err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return None;
            }
        };
        let worker = self.balance.assign(self.number);
        let stream = if worker == self.number {
            stream
        } else {
            self.hand_over(worker, stream, peer)?
        };
        Some(Accepted {
            stream,
            peer,
            counted: Counted::new(&self.balance.open[self.number]),
        })
    }

    /// Serves `accepted` on this thread, under `graceful` and the deadlines.
    fn start(
        &self,
        accepted: Accepted,
        graceful: &GracefulShutdown,
        http: &http1::Builder,
        deadlines: &mut Deadlines,
    ) {
        let Accepted {
            stream,
            peer,
            counted,
        } = accepted;
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(err) => {
                debug!(%peer, error = %err, "cannot serve an accepted connection");
                return;
            }
        };
        if !self.nodelay_inherited {
            let _ = stream.set_nodelay(true);
        }
        let progress = Deadlines::progress();
        let connection = graceful.watch(http.serve_connection(
            Connection::new(stream, progress.clone()),
            service(self.state.clone(), progress.clone()),
        ));
        let task = tokio::spawn(async move {
            let _counted = counted;
            if let Err(err) = connection.await {
                debug!(%peer, error = %err, "connection ended with an error");
            }
        });
        deadlines.watch(progress, task.abort_handle());
    }

    /// Gives a connection this worker accepted to `worker`, whose runtime will
    /// register it. Gives it back, for this worker to serve, when that one has
    /// stopped taking connections (it failed, or the server is stopping), and marks
    /// it stopped so no other connection goes its way.
    fn hand_over(
        &self,
        worker: usize,
        stream: std::net::TcpStream,
        peer: SocketAddr,
    ) -> Option<std::net::TcpStream> {
        let accepted = Accepted {
            stream,
            peer,
            counted: Counted::new(&self.balance.open[worker]),
        };
        let Err(mpsc::error::SendError(returned)) = self.balance.handoff[worker].send(accepted)
        else {
            return None;
        };
        self.balance.stopped[worker].store(true, Ordering::Relaxed);
        Some(returned.stream)
    }
}

/// The next connection on `listener`, non-blocking and not yet registered with any
/// runtime: only the worker that serves it registers it, so handing it over costs
/// no system call.
async fn accept(
    listener: &AsyncFd<socket2::Socket>,
) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    let (socket, peer) = listener
        .async_io(Interest::READABLE, |listener| {
            listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })
        .await?;
    let peer = peer
        .as_socket()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((socket.into(), peer))
}

/// hyper's HTTP/1 settings for every connection: the request-head bounds
/// ([`MAX_HEADERS`](super::MAX_HEADERS) is hyper's default). The deadlines are not hyper's
/// `header_read_timeout` but [`crate::http::deadline`]'s cheaper sweep. [`serve`] uses it
/// for TCP; the HTTP fuzz target uses the same settings over an in-memory pipe.
pub fn connection_builder() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.max_buf_size(MAX_REQUEST_HEAD_BYTES);
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_worker_with_the_fewest() {
        let metrics = Metrics::new();
        let (balance, _handed) = Balance::new(3, &metrics);
        // Worker 0 wins every accept, as a running thread does.
        let mut connections = Vec::new();
        let mut assigned = Vec::new();
        for _ in 0..7 {
            let worker = balance.assign(0);
            assigned.push(worker);
            connections.push(Counted::new(&balance.open[worker]));
        }
        assert_eq!(assigned, [0, 1, 2, 0, 1, 2, 0]);
        let open = |worker: usize| balance.open[worker].get();
        assert_eq!((open(0), open(1), open(2)), (3, 2, 2));
        // Closing connections frees their worker's share: worker 1 is next.
        connections.remove(1);
        connections.remove(3);
        assert_eq!((open(0), open(1), open(2)), (3, 0, 2));
        assert_eq!(balance.assign(2), 1);
        // A tie keeps the connection where it was accepted.
        connections.push(Counted::new(&balance.open[1]));
        connections.push(Counted::new(&balance.open[1]));
        assert_eq!(balance.assign(2), 2);
        // A worker that stopped taking connections gets none, however few it holds.
        balance.stopped[1].store(true, Ordering::Relaxed);
        connections.truncate(2);
        assert_eq!((open(0), open(1), open(2)), (1, 0, 1));
        assert_eq!(balance.assign(0), 0);
        connections.push(Counted::new(&balance.open[0]));
        assert_eq!(balance.assign(0), 2);
        drop(connections);
        assert_eq!((open(0), open(1), open(2)), (0, 0, 0));
        assert!(
            metrics
                .encode(0)
                .contains("tributary_http_connections{worker=\"2\"} 0")
        );
    }
}
