//! Telling external hubs (`[publish] hubs`) that the river changed: after each new
//! snapshot, debounced by [`NOTIFY_DEBOUNCE`], a form POST `hub.mode=publish` with
//! the feed's URL as `hub.url` (the PubSubHubbub convention most hubs read) and as
//! `hub.topic` (what others read) for each of the river's three feeds whose bytes
//! changed. The hub then fetches the feed and fans it out. Tag and source feeds are
//! not announced: which of them changed is not known without rendering them all.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{NOTIFY_DEBOUNCE, RETRY_BASE};
use crate::fetch::push::Push;
use crate::fetch::{AddressPolicy, Fetcher};
use crate::publish::urls::main_path;
use crate::publish::{Format, Snapshot, View};

/// 3 attempts per ping, 1 s then 2 s apart: a hub that is down misses this
/// change, and hears of the next.
const PING_ATTEMPTS: u32 = 3;

/// The feeds announced to external hubs.
const FEEDS: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

/// Announces every change of the river's feeds after `first` to the configured
/// hubs until `token` is cancelled.
pub(super) async fn run(
    fetcher: Fetcher,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    first: Arc<Snapshot>,
    token: CancellationToken,
) {
    if !first.site().hubs.is_empty() && first.site().public_url.is_none() {
        warn!(
            "websub: [publish] hubs are told of feeds on the listen address; set [server] public_url to the address hubs and readers reach"
        );
    }
    let mut announced: HashMap<Format, String> = HashMap::new();
    if !first.site().hubs.is_empty() {
        for format in FEEDS {
            if let Ok(document) = first.get(&View::main(format), None).await {
                announced.insert(format, document.hash.clone());
            }
        }
    }
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            changed = snapshots.changed() => if changed.is_err() { return },
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(NOTIFY_DEBOUNCE) => {}
        }
        let snapshot = snapshots.borrow_and_update().clone();
        let site = snapshot.site().clone();
        let base = site.base(None);
        if site.hubs.is_empty() {
            // No hub to tell: the feeds are not rendered for it.
            continue;
        }
        let mut topics = Vec::new();
        for format in FEEDS {
            let Ok(document) = snapshot.get(&View::main(format), None).await else {
                continue;
            };
            if announced.insert(format, document.hash.clone()).as_ref() != Some(&document.hash) {
                topics.push(format!("{base}{}", main_path(format)));
            }
        }
        for hub in &site.hubs {
            for topic in &topics {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = ping(&fetcher, hub, topic) => {}
                }
            }
        }
    }
}

/// One `hub.mode=publish` POST of `topic` to `hub`, retried on failure.
async fn ping(fetcher: &Fetcher, hub: &url::Url, topic: &str) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("hub.mode", "publish")
        .append_pair("hub.url", topic)
        .append_pair("hub.topic", topic)
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    for attempt in 0..PING_ATTEMPTS {
        let push = Push {
            method: Method::POST,
            url: hub,
            headers: headers.clone(),
            body: body.clone().into(),
            policy: AddressPolicy::for_source(hub, false),
        };
        let why = match fetcher.push(push).await {
            Ok(answer) if answer.status.is_success() => {
                return debug!(%hub, topic, "websub: hub notified");
            }
            Ok(answer) => format!(
                "answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).trim()
            ),
            Err(err) => err.to_string(),
        };
        if attempt + 1 == PING_ATTEMPTS {
            return warn!(%hub, topic, why, "websub: cannot notify the hub");
        }
        tokio::time::sleep(RETRY_BASE * 2u32.pow(attempt)).await;
    }
}
