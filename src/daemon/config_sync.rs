//! A reload on one node of a cluster reaches the others through the shared store:
//! the node that reloaded advances the store's config version
//! ([`Backend::bump_config_version`](crate::store::Backend::bump_config_version)),
//! and every node reads the version every `watch_every`; one that sees it move
//! reloads its own `feeds.toml` (the same file on every node), without advancing
//! the version again. With the embedded store there is nothing to tell.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::store::Store;

/// The version this node has seen, shared by the watcher and [`ConfigSync::announce`]
/// so a node does not answer its own announcement.
#[derive(Clone)]
pub(super) struct ConfigSync {
    store: Store,
    seen: Arc<Mutex<u64>>,
}

impl ConfigSync {
    /// Starts watching the version of a shared store; `None` for the embedded one.
    /// Each move of the version is one request on `reloads`.
    pub(super) async fn start(
        store: &Store,
        every: Duration,
        reloads: mpsc::UnboundedSender<()>,
        stop: CancellationToken,
    ) -> Option<ConfigSync> {
        let first = read(store).await?;
        let sync = ConfigSync {
            store: store.clone(),
            seen: Arc::new(Mutex::new(first)),
        };
        let watcher = sync.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let mut seen = watcher.seen.lock().await;
                if let Some(version) = read(&watcher.store).await
                    && version > *seen
                {
                    *seen = version;
                    if reloads.send(()).is_err() {
                        return;
                    }
                }
            }
        });
        Some(sync)
    }

    /// Tells the other nodes that this one reloaded.
    pub(super) async fn announce(&self) {
        let mut seen = self.seen.lock().await;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.backend().bump_config_version()).await {
            Ok(Ok(Some(version))) => *seen = version,
            Ok(Ok(None)) => {}
            Ok(Err(err)) => warn!(error = %err, "cannot tell the other nodes of the reload"),
            Err(err) => warn!(error = %err, "telling the other nodes of the reload crashed"),
        }
    }
}

/// The store's config version, `None` for the embedded store or when it cannot be
/// read (said in the log).
async fn read(store: &Store) -> Option<u64> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.backend().config_version()).await {
        Ok(Ok(version)) => version,
        Ok(Err(err)) => {
            warn!(error = %err, "cannot read the cluster's config version");
            None
        }
        Err(_) => None,
    }
}
