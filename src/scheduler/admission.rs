//! How many polls exist at once. A due source's poll is a task from the moment it is
//! due, but a poll's future (request, body, parse, store write) is kilobytes: with
//! 100 000 sources due at once (a cold start, a restart after a long stop) that is
//! hundreds of megabytes of polls waiting for their turn. So a due source first waits
//! for admission in a small task, and its poll is built only once admitted.
//!
//! Admission is a global cap ([`ADMITTED_PER_FETCH`] times `[poll] concurrency`) and
//! one per host (the same times `per_host`), taken host first: sources of one host,
//! even when the config lists thousands of them together, take at most their host's
//! share of the global cap, and other hosts' sources are admitted beside them, as the
//! fetch limits would let them run. The fetch limits themselves (`shared`) still decide
//! how many requests are in flight; admission only keeps the waiting cheap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{PollConfig, SourceConfig};

/// Polls admitted per fetch slot: enough that a fetch slot never waits for a poll to
/// be admitted, few enough that the waiting ones cost little.
pub const ADMITTED_PER_FETCH: usize = 4;

/// The admission caps of one `[poll]` config.
pub(super) struct Admission {
    global: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A poll's admission: held until the poll ends.
pub(super) struct Admitted {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Admission {
    pub(super) fn new(poll: &PollConfig) -> Admission {
        Admission {
            global: Arc::new(Semaphore::new(poll.concurrency * ADMITTED_PER_FETCH)),
            per_host: poll.per_host * ADMITTED_PER_FETCH,
            hosts: Mutex::default(),
        }
    }

    /// Waits for `source`'s turn: its host's share first, then the global one.
    pub(super) async fn enter(&self, source: &SourceConfig) -> Admitted {
        let host = source.url.host_str().unwrap_or("").to_ascii_lowercase();
        let host = self
            .hosts
            .lock()
            .expect("the admission map is never poisoned")
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone();
        let host = host
            .acquire_owned()
            .await
            .expect("admission semaphores are never closed");
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("admission semaphores are never closed");
        Admitted {
            _host: host,
            _global: global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sources(text: &str) -> (PollConfig, Vec<SourceConfig>) {
        let config = crate::config::parse(std::path::Path::new("feeds.toml"), text, None).unwrap();
        (config.poll, config.sources)
    }

    #[tokio::test]
    async fn one_host_takes_its_share_and_others_are_admitted_beside_it() {
        let mut text = "[poll]\nconcurrency = 2\nper_host = 1\n".to_string();
        for i in 0..10 {
            text.push_str(&format!("[[source]]\nurl = \"http://a.example/{i}\"\n"));
        }
        text.push_str("[[source]]\nurl = \"http://b.example/0\"\n");
        let (poll, sources) = sources(&text);
        let admission = Admission::new(&poll);
        let mut held = Vec::new();
        // a.example's share: per_host x 4 = 4 of the global 8.
        for source in &sources[..4] {
            held.push(admission.enter(source).await);
        }
        let fifth = tokio::time::timeout(Duration::from_millis(50), admission.enter(&sources[4]));
        assert!(
            fifth.await.is_err(),
            "a fifth poll of one host was admitted"
        );
        // Another host still gets in.
        let other = tokio::time::timeout(Duration::from_millis(50), admission.enter(&sources[10]));
        assert!(other.await.is_ok());
        // One of a.example's ends: the next one is admitted.
        held.pop();
        let next = tokio::time::timeout(Duration::from_millis(50), admission.enter(&sources[4]));
        assert!(next.await.is_ok());
    }
}
