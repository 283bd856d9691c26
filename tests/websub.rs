//! WebSub, the subscriber side, against a real and independent hub: flask-websub's
//! (PyPI `flask-websub`), started by `tests/websub_hub.py` on loopback, which also
//! serves the topics with its publisher's `Link` headers. The daemon runs in this
//! process on a listener bound here, so its `public_url` (the callback) is known.
//!
//! Without flask-websub (and Celery) these tests say so and pass, unless `CI` is set,
//! where that is a failure: `.ci/run` installs them.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary::config::Config;

#[path = "common/python.rs"]
#[allow(dead_code)]
mod python;

/// The hub and publisher, as a child process; killed when dropped.
struct Hub {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether flask-websub can run here; panics under CI when it cannot.
fn hub_available() -> bool {
    python::can_import(
        "flask_websub.hub, celery",
        "python3 -m pip install flask-websub celery",
    )
}

impl Hub {
    fn start(dir: &Path, max_lease: Option<u64>) -> Hub {
        tributary::fetch::install_crypto_provider();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/websub_hub.py");
        let mut command = Command::new("python3");
        command.arg(script).arg("--storage").arg(dir.join("hub.db"));
        if let Some(lease) = max_lease {
            command.args(["--max-lease", &lease.to_string()]);
        }
        let (child, line) = python::spawn_ready(command.stdin(Stdio::piped()));
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the hub did not start ({e}): {line:?}"));
        Hub {
            child,
            base: format!("http://127.0.0.1:{}", ready["port"]),
            client: reqwest::Client::new(),
        }
    }

    fn topic(&self, feed: &str) -> String {
        format!("{}/feeds/{feed}.xml", self.base)
    }

    /// Adds an entry to `feed` (made on first use, advertising `hub` if given).
    async fn add_entry(&self, feed: &str, id: &str, title: &str, hub: Option<&str>) {
        let mut url = format!(
            "{}/admin/entry?feed={feed}&id={id}&title={title}",
            self.base
        );
        if let Some(hub) = hub {
            url.push_str(&format!("&hub={hub}"));
        }
        let response = self.client.post(url).send().await.unwrap();
        assert!(response.status().is_success());
    }

    /// The publisher's ping: the hub fetches the topic and pushes it to subscribers.
    async fn publish(&self, feed: &str) {
        let response = self
            .client
            .post(format!("{}/hub", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("hub.mode", "publish"),
                ("hub.topic", &self.topic(feed)),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
    }

    async fn subscriptions(&self) -> Vec<Value> {
        let url = format!("{}/admin/subscriptions", self.base);
        let text = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        value.as_array().cloned().unwrap_or_default()
    }

    async fn fetches(&self, feed: &str) -> u64 {
        let url = format!("{}/admin/stats", self.base);
        let text = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        value[feed].as_u64().unwrap_or(0)
    }

    /// Waits until the hub holds `n` subscriptions; returns them.
    async fn wait_for_subscriptions(&self, n: usize, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let subscriptions = self.subscriptions().await;
            if subscriptions.len() == n {
                return subscriptions;
            }
            assert!(
                Instant::now() < deadline,
                "the hub holds {subscriptions:?}, not {n} subscriptions, after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The daemon in this process, serving on `listener`.
struct App {
    addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl App {
    fn start(config: Config, listener: TcpListener) -> App {
        tributary::fetch::install_crypto_provider();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(tributary::daemon::run(config, listener, async {
            let _ = rx.await;
        }));
        App {
            addr,
            shutdown: Some(tx),
            handle,
        }
    }

    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), &mut self.handle)
            .await
            .expect("the daemon stops within 15 s")
            .unwrap()
            .unwrap();
    }

    async fn river(&self) -> String {
        reqwest::get(format!("http://{}/feed.xml", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `/feed.xml` shows `needle`; how long that took.
    async fn wait_for(&self, needle: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.river().await.contains(needle) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "/feed.xml did not show {needle:?} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Writes the config (listening on `listener`'s port, which is also its public URL)
/// with `sources`, and reads it as the daemon would.
fn config(dir: &Path, listener: &TcpListener, sources: &str) -> (PathBuf, Config) {
    let port = listener.local_addr().unwrap().port();
    let text = format!(
        "[config]\nwatch = true\n[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}/\"\n[store]\npath = \"{}\"\nmax_age = \"36500d\"\n{sources}",
        dir.join("data").display()
    );
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).unwrap();
    let config = tributary::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (path, config)
}

fn source(url: &str, interval: &str) -> String {
    format!("[[source]]\nurl = \"{url}\"\ninterval = \"{interval}\"\n")
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// The form of a hub's verification request to `callback`.
async fn verification(callback: &str, mode: &str, topic: &str) -> reqwest::StatusCode {
    let url = reqwest::Url::parse_with_params(
        callback,
        &[
            ("hub.mode", mode),
            ("hub.topic", topic),
            ("hub.challenge", "abc"),
            ("hub.lease_seconds", "100"),
        ],
    )
    .unwrap();
    reqwest::get(url).await.unwrap().status()
}

async fn push(
    callback: &str,
    body: &str,
    signature: Option<String>,
    link: Option<String>,
) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new()
        .post(callback)
        .header("content-type", "application/atom+xml")
        .body(body.to_string());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature", signature);
    }
    if let Some(link) = link {
        request = request.header("link", link);
    }
    request.send().await.unwrap().status()
}

fn entry_feed(topic: &str, id: &str, title: &str) -> String {
    format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><id>urn:x</id><title>x</title><link rel=\"self\" href=\"{topic}\"/><entry><id>urn:{id}</id><title>{title}</title><link href=\"http://example.org/{id}\"/><updated>2026-01-01T00:00:00Z</updated></entry></feed>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reaches_the_river_without_a_poll_and_forgeries_are_refused() {
    if !hub_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), None);
    hub.add_entry("a", "1", "First-story", None).await;
    let listener = bind().await;
    let (_, config) = config(dir.path(), &listener, &source(&hub.topic("a"), "1h"));
    let app = App::start(config, listener);
    app.wait_for("First-story", Duration::from_secs(10)).await;
    let subscriptions = hub.wait_for_subscriptions(1, Duration::from_secs(10)).await;
    let callback = subscriptions[0]["callback"].as_str().unwrap().to_string();
    let secret = subscriptions[0]["secret"].as_str().unwrap().to_string();
    assert!(
        callback.starts_with(&format!("http://{}/websub/", app.addr)),
        "{callback}"
    );
    assert_eq!(subscriptions[0]["topic"], hub.topic("a"));

    // Published: the hub fetches the topic once and pushes it; tributary does not poll.
    let fetches = hub.fetches("a").await;
    hub.add_entry("a", "2", "Pushed-story", None).await;
    let started = Instant::now();
    hub.publish("a").await;
    app.wait_for("Pushed-story", Duration::from_secs(2)).await;
    eprintln!("push to river: {:?}", started.elapsed());
    assert_eq!(
        hub.fetches("a").await,
        fetches + 1,
        "only the hub fetched the topic"
    );

    // Verification requests that do not match a subscription are 404.
    let topic = hub.topic("a");
    assert_eq!(
        verification(&callback, "subscribe", "http://127.0.0.1:1/other.xml").await,
        404
    );
    assert_eq!(verification(&callback, "unsubscribe", &topic).await, 404);
    let unknown = format!(
        "http://{}/websub/0123456789abcdef0123456789abcdef",
        app.addr
    );
    assert_eq!(verification(&unknown, "subscribe", &topic).await, 404);

    // Pushes: forged, unsigned or for another topic are refused; signed ones taken.
    let forged = entry_feed(&topic, "f", "Forged-story");
    let wrong = tributary::websub::signature::sign(b"not the secret", forged.as_bytes());
    assert_eq!(push(&callback, &forged, Some(wrong), None).await, 403);
    assert_eq!(push(&callback, &forged, None, None).await, 403);
    let signed = tributary::websub::signature::sign(secret.as_bytes(), forged.as_bytes());
    let elsewhere = Some("<http://127.0.0.1:1/other.xml>; rel=\"self\"".to_string());
    assert_eq!(
        push(&callback, &forged, Some(signed.clone()), elsewhere).await,
        400
    );
    assert_eq!(
        push(&unknown, &forged, Some(signed.clone()), None).await,
        404
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!app.river().await.contains("Forged-story"));
    let own = entry_feed(&topic, "s", "Signed-story");
    let signed = tributary::websub::signature::sign(secret.as_bytes(), own.as_bytes());
    let named = Some(format!("<{topic}>; rel=\"self\""));
    assert_eq!(push(&callback, &own, Some(signed), named).await, 202);
    app.wait_for("Signed-story", Duration::from_secs(2)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_renewed_a_removed_source_unsubscribed_and_a_lapse_polled() {
    if !hub_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A hub that grants 3-second leases.
    let hub = Hub::start(dir.path(), Some(3));
    hub.add_entry("a", "1", "First-story", None).await;
    hub.add_entry("b", "1", "Other-story", None).await;
    let listener = bind().await;
    let sources = source(&hub.topic("a"), "1h") + &source(&hub.topic("b"), "1h");
    let (path, config) = config(dir.path(), &listener, &sources);
    let app = App::start(config, listener);
    let first = hub.wait_for_subscriptions(2, Duration::from_secs(10)).await;
    let expires = |subs: &[Value], topic: &str| {
        subs.iter()
            .find(|s| s["topic"] == topic)
            .and_then(|s| s["expires"].as_i64())
            .unwrap()
    };
    let before = expires(&first, &hub.topic("a"));
    // Renewed before the 3-second lease ends, again and again.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut renewals = 0;
    let mut last = before;
    while Instant::now() < deadline && renewals < 2 {
        let now = expires(&hub.subscriptions().await, &hub.topic("a"));
        if now > last {
            renewals += 1;
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewals >= 2, "the lease was renewed {renewals} times");
    // Still subscribed after several leases: a push arrives.
    hub.add_entry("a", "2", "After-renewal", None).await;
    hub.publish("a").await;
    app.wait_for("After-renewal", Duration::from_secs(2)).await;

    // The source b is removed from the config: the hub is told.
    let text = std::fs::read_to_string(&path).unwrap();
    let without_b = text.replace(&source(&hub.topic("b"), "1h"), "");
    std::fs::write(&path, without_b).unwrap();
    let left = hub.wait_for_subscriptions(1, Duration::from_secs(10)).await;
    assert_eq!(left[0]["topic"], hub.topic("a"));

    // The hub goes down: the renewal fails, the lease lapses, and the source (its
    // interval an hour) is polled again at once.
    let fetches = hub.fetches("a").await;
    hub.client
        .post(format!("{}/admin/down", hub.base))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while hub.fetches("a").await == fetches {
        assert!(
            Instant::now() < deadline,
            "not polled after the lease lapsed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_restart() {
    if !hub_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), None);
    hub.add_entry("a", "1", "First-story", None).await;
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let (_, config) = config(dir.path(), &listener, &source(&hub.topic("a"), "1h"));
    let app = App::start(config.clone(), listener);
    let before = hub.wait_for_subscriptions(1, Duration::from_secs(10)).await;
    app.wait_for("First-story", Duration::from_secs(10)).await;
    app.stop().await;

    // The stopped daemon's threads let go of the store a moment after it returns.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(err) = tributary::store::Store::open(&dir.path().join("data")) {
        assert!(Instant::now() < deadline, "the store stays locked: {err}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Back on the same address (the callback the hub knows), with the same store.
    let listener = TcpListener::bind(addr).await.unwrap();
    let app = App::start(config, listener);
    app.wait_for("First-story", Duration::from_secs(10)).await;
    let fetches = hub.fetches("a").await;
    hub.add_entry("a", "2", "After-restart", None).await;
    hub.publish("a").await;
    app.wait_for("After-restart", Duration::from_secs(2)).await;
    assert_eq!(
        hub.fetches("a").await,
        fetches + 1,
        "only the hub fetched the topic"
    );
    // Still the one subscription: same callback, same secret.
    assert_eq!(hub.subscriptions().await, before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_is_down_leaves_polling_in_charge() {
    if !hub_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), None);
    // Feed a names a hub where nothing listens.
    let dead = format!("http://127.0.0.1:{}/hub", {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    });
    hub.add_entry("a", "1", "First-story", Some(&dead)).await;
    let listener = bind().await;
    let (_, mut config) = config(dir.path(), &listener, &source(&hub.topic("a"), "1m"));
    config.sources[0].interval = tributary::config::Interval::Fixed(Duration::from_millis(300));
    let app = App::start(config, listener);
    app.wait_for("First-story", Duration::from_secs(10)).await;
    // Polled on at its interval, not stretched: a new entry arrives by the next poll.
    hub.add_entry("a", "2", "Polled-story", None).await;
    app.wait_for("Polled-story", Duration::from_secs(3)).await;
    let fetches = hub.fetches("a").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(hub.fetches("a").await >= fetches + 3, "polled every 300 ms");
    assert!(hub.subscriptions().await.is_empty());
    app.stop().await;
}
