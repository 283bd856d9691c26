//! A small runtime of the store's own that drives the database connections, and a
//! way to wait for a query from any thread: a blocking task, an async worker (as
//! sled's calls are made), or a plain thread.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::super::StoreError;

/// Owns the runtime; shuts it down without waiting when the store goes, so the last
/// clone may drop anywhere (a runtime dropped in async code would panic otherwise).
pub(super) struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    pub(super) fn new() -> Result<Bridge, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tributary-pg")
            .enable_all()
            .build()?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bridge")
            .handle()
    }

    /// Polls `fut` on this thread until it is done; what it spawns, its sockets and
    /// its timers belong to the store's runtime, whose threads drive them.
    ///
    /// Unconstrained: called from an async worker, the future runs inside the
    /// caller's task, whose cooperative budget (spent by its earlier calls) would
    /// otherwise make tokio's channels answer "not yet" forever.
    pub(super) fn block<F: Future>(&self, fut: F) -> F::Output {
        let _context = self.handle().enter();
        let mut fut = std::pin::pin!(tokio::task::unconstrained(fut));
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }

    pub(super) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle().spawn(fut);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Wakes the thread waiting in [`Bridge::block`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}
