//! Keeps the rendered merged feed current: renders once per change of the store,
//! never per request, and hands `http` ready-made bytes with their validators.
//!
//! Owns the [`Snapshot`] that `http` serves. Reads the store (`latest`, `subscribe`);
//! rendering itself is `render`'s pure function.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::render::{ChannelInfo, render_rss};
use crate::store::{Store, StoreError};

/// 1 second: with thousands of sources the store changes many times a second;
/// readers see a new river at most this often.
pub const RENDER_DEBOUNCE: Duration = Duration::from_secs(1);

/// One rendered state of the merged feed.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub rss: Bytes,
    /// Strong ETag over the bytes: an unchanged river keeps its ETag across renders
    /// and restarts.
    pub etag: String,
    /// The newest item's time; `None` for an empty river.
    pub last_modified: Option<DateTime<Utc>>,
    pub items: usize,
}

/// Renders the merged feed from the store.
pub struct Publisher {
    pub store: Store,
    pub channel: ChannelInfo,
    pub max_items: usize,
}

impl Publisher {
    /// Renders the current river.
    pub fn render(&self) -> Result<Snapshot, StoreError> {
        let items = self.store.latest(self.max_items)?;
        let rss = render_rss(&items, &self.channel);
        Ok(Snapshot {
            etag: format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(&rss)),
            rss: Bytes::from(rss),
            last_modified: items.first().map(|i| i.timestamp),
            items: items.len(),
        })
    }

    /// Re-renders after every change of the store (at most once per
    /// [`RENDER_DEBOUNCE`]) until `token` is cancelled.
    pub async fn run(self, snapshot: watch::Sender<Arc<Snapshot>>, token: CancellationToken) {
        let mut changes = self.store.subscribe();
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(RENDER_DEBOUNCE) => {}
            }
            changes.mark_unchanged();
            match self.render() {
                Ok(next) => {
                    debug!(
                        items = next.items,
                        bytes = next.rss.len(),
                        "rendered the merged feed"
                    );
                    snapshot.send_if_modified(|current| {
                        let changed = current.etag != next.etag;
                        if changed {
                            *current = Arc::new(next);
                        }
                        changed
                    });
                }
                Err(err) => warn!(error = %err, "cannot render the merged feed"),
            }
        }
    }
}
