//! The wiring of the WebSub subscriber (`crate::websub`): only with `[server]
//! public_url`, the one address a hub can call back. The subscriptions are read from
//! the store; the scheduler gets the adverts' sender, the pushes and the "poll now"
//! channel; the HTTP server the registry; the subscriber the sources of each reload.

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;

use super::Settings;
use crate::config::{Config, SharedSources};
use crate::fetch::Fetcher;
use crate::store::Store;
use crate::websub::subscriber::Subscriber;
use crate::websub::{ADVERT_QUEUE, Advert, Adverts, Link, Registry};

/// The parts of WebSub the daemon starts.
pub(super) struct Wired {
    pub(super) link: Link,
    adverts: mpsc::Receiver<Advert>,
    sources: watch::Receiver<SharedSources>,
    public_url: Url,
}

/// Opens the subscriptions and makes the channels, when `config` has a public URL;
/// `settings` then also sends each reload's sources to the subscriber.
pub(super) fn wire(
    config: &Config,
    store: &Store,
    settings: &mut Settings,
) -> anyhow::Result<Option<Wired>> {
    let Some(public_url) = config.public_url.clone() else {
        return Ok(None);
    };
    let (registry, (pushes, poll_now)) = Registry::open(store.clone(), config.poll.max_body_bytes)
        .context("reading the WebSub subscriptions from the store")?;
    let (advert_tx, advert_rx) = mpsc::channel(ADVERT_QUEUE);
    let (sources_tx, sources_rx) = watch::channel(settings.lists.enabled.clone());
    settings.websub = Some(sources_tx);
    info!(subscriptions = registry.all().len(), callback = %public_url, "subscribing to the sources' WebSub hubs");
    Ok(Some(Wired {
        link: Link {
            adverts: Adverts {
                registry,
                sender: advert_tx,
            },
            pushes,
            poll_now,
        },
        adverts: advert_rx,
        sources: sources_rx,
        public_url,
    }))
}

impl Wired {
    /// The scheduler's link, and the subscriber's task.
    pub(super) fn start(
        self,
        fetcher: Fetcher,
        token: CancellationToken,
    ) -> (Link, impl Future<Output = ()> + use<>) {
        let subscriber = Subscriber {
            registry: self.link.adverts.registry.clone(),
            fetcher,
            public_url: self.public_url,
        };
        let task = subscriber.run(self.adverts, self.sources, token);
        (self.link, task)
    }
}
