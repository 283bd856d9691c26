//! Raw request bytes → the daemon's HTTP service. The bytes are written into one
//! in-memory connection served by hyper with the daemon's own settings
//! (`http::connection_builder`) and service (`http::service`), so hyper's request
//! parser, the limits on request heads, routing, content negotiation, validators and
//! the lazily rendered views are all exercised. The river is a small fixed one: two
//! sources (one tagged), three stored items, rendered once at start.
//!
//! A connection must finish within a few seconds of the client closing its side; one
//! that does not is reported as a hang.
#![no_main]

use chrono::DateTime;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary::config;
use tributary::fetch::Fetcher;
use tributary::http::deadline::Deadlines;
use tributary::http::{self, HttpState, SourcesPage};
use tributary::hub::Hub;
use tributary::item::{Item, ItemId, Origin, SourceState};
use tributary::ops::health::Health;
use tributary::ops::listing::SourceList;
use tributary::ops::metrics::Metrics;
use tributary::publish::{Publisher, Site};
use tributary::store::Store;

const CONFIG: &str = r#"
[publish]
title = "Fuzz river"
max_items = 50

[[source]]
url = "http://127.0.0.1:1/a.xml"
name = "A & B"
tags = ["world", "tech news"]

[[source]]
url = "http://127.0.0.1:1/b.xml"
"#;

/// Most response bytes read back from one connection: pipelined requests for the
/// biggest document stay far below it.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

static STATE: LazyLock<Arc<HttpState>> = LazyLock::new(|| {
    let config = config::parse(Path::new("feeds.toml"), CONFIG, None).expect("valid config");
    let store = Store::temporary().expect("a temporary store");
    let now = DateTime::from_timestamp(1_780_000_000, 0).expect("in range");
    for (n, source) in config.sources.iter().enumerate() {
        let origin = Origin {
            source: source.id.clone(),
            name: source.name.clone().unwrap_or_default(),
            url: source.url.to_string(),
            tags: source.tags.clone(),
        };
        let items: Vec<Item> = (0..=n)
            .map(|i| Item {
                id: ItemId(format!("http://127.0.0.1:1/{n}/{i}")),
                title: Some(format!("Story {n}.{i} <&>")),
                link: Some(format!("http://127.0.0.1:1/{n}/{i}")),
                published: DateTime::from_timestamp(1_779_990_000 + i as i64 * 60, 0),
                updated: None,
                summary: Some("<p>Summary</p>".into()),
                content: None,
                authors: vec!["Anna".into()],
                categories: vec!["Tech".into()],
                enclosures: Vec::new(),
                comments: None,
            })
            .collect();
        store
            .record_fetch(&origin, &items, &SourceState::default(), now)
            .expect("stored");
    }
    let site = Site::from_config(&config, "127.0.0.1:8080".into(), 15);
    let snapshot = Publisher::new(store.clone(), Arc::new(site))
        .render()
        .expect("rendered");
    let health = Arc::new(Health::default());
    health.set_store_open();
    health.set_polling();
    health.set_new_sources_polled();
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(snapshot));
    let (sources_tx, sources) = watch::channel(Arc::new(SourcesPage {
        title: config.publish.title.clone(),
        sources: SourceList::new(config.sources.clone(), config.disabled.clone()),
    }));
    // The hub is off in this config: its tasks only watch the snapshot.
    let fetcher = Fetcher::new(&config.poll).expect("an HTTP client");
    let hub = {
        let _runtime = RUNTIME.enter();
        Hub::start(
            &config.publish.push,
            store.clone(),
            fetcher,
            snapshot.clone(),
            TaskTracker::new(),
            CancellationToken::new(),
        )
    };
    // The receivers keep the last value once the senders are gone.
    drop((snapshot_tx, sources_tx));
    Arc::new(HttpState {
        snapshot,
        store,
        cache_control: HeaderValue::from_static("public, max-age=900"),
        max_limit: config.publish.max_items,
        health,
        metrics: Arc::new(Metrics::new()),
        sources,
        send_timeout: config::DEFAULT_SEND_TIMEOUT,
        admin: Default::default(),
        hub,
        websub: None,
        cluster: None,
    })
});

fuzz_target!(
    init: {
        LazyLock::force(&STATE);
    },
    |data: &[u8]| {
        RUNTIME.block_on(async {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let mut builder = http::connection_builder();
            // The client closes its side after the request bytes; answers still go out.
            builder.half_close(true);
            let connection = builder.serve_connection(TokioIo::new(server), http::service(STATE.clone(), Deadlines::progress()));
            let (mut read, mut write) = tokio::io::split(client);
            let send = async move {
                // The server may close first (a bad request): then writing fails.
                let _ = write.write_all(data).await;
                let _ = write.shutdown().await;
            };
            let receive = async move {
                let mut response = Vec::new();
                let _ = (&mut read).take(MAX_RESPONSE_BYTES).read_to_end(&mut response).await;
                response
            };
            let exchange = async { tokio::join!(connection, send, receive) };
            if tokio::time::timeout(Duration::from_secs(5), exchange).await.is_err() {
                panic!("the connection was still open 5 s after the client closed its side");
            }
        });
    }
);
