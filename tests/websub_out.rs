//! WebSub, publishing side, against an independent implementation: flask-websub's
//! subscriber (and hub), started by `tests/websub_peer.py`. The built-in hub
//! verifies its intent, delivers each change of the river with a signature it
//! accepts, refuses topics that are not ours, unsubscribes, ends leases and keeps
//! subscriptions across a restart; `[publish] hubs` are pinged on each change, and
//! flask-websub's hub fetches the feed (checking its Link header) and fans it out.
//!
//! Without flask-websub (`python3 -m pip install flask-websub celery`) each test
//! prints why it skips, unless `CI` is set, where that is a failure.

mod common;

use common::{FeedServer, RunningApp, config_with_interval, eventually};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The flask-websub peer as a child process, killed when dropped.
struct Peer {
    child: Child,
    port: u16,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    /// Starts the peer (with flask-websub's hub too when `hub`); `None` when
    /// flask-websub is not installed.
    fn start(hub: bool) -> Option<Peer> {
        let modules = if hub {
            "flask_websub, celery"
        } else {
            "flask_websub"
        };
        if !common::python::can_import(modules, "python3 -m pip install flask-websub celery") {
            return None;
        }
        tributary::fetch::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/websub_peer.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(dir.path());
        if hub {
            command.arg("--hub");
        }
        let (child, line) = common::python::spawn_ready(command.stderr(Stdio::null()));
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the peer did not start: {line:?}"));
        Some(Peer {
            child,
            port,
            client: reqwest::Client::new(),
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Asks flask-websub to subscribe to `topic` at `hub`: its callback id, or the
    /// hub's refusal as flask-websub reports it.
    async fn subscribe(&self, hub: &str, topic: &str, extra: Value) -> Result<String, String> {
        let mut args = json!({"hub_url": hub, "topic_url": topic});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let answer = self.control("/control/subscribe", &args).await;
        match answer["callback_id"].as_str() {
            Some(id) => Ok(id.to_string()),
            None => Err(answer["error"].to_string()),
        }
    }

    async fn unsubscribe(&self, id: &str) {
        let answer = self
            .control("/control/unsubscribe", &json!({"callback_id": id}))
            .await;
        assert_eq!(answer["ok"], true, "{answer}");
    }

    /// POSTs `args` as JSON to the control endpoint `path`; its JSON answer.
    async fn control(&self, path: &str, args: &Value) -> Value {
        let answer = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(args).unwrap())
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
    }

    async fn events(&self) -> Vec<Value> {
        let answer = self.client.get(self.url("/control/events")).send().await;
        serde_json::from_slice(&answer.unwrap().bytes().await.unwrap()).unwrap()
    }

    /// Waits (at most `limit`) for an event of `kind` for callback `id` whose
    /// `field` contains `needle`.
    async fn wait_for(
        &self,
        kind: &str,
        id: &str,
        field: &str,
        needle: &str,
        limit: Duration,
    ) -> Value {
        eventually(limit, || async {
            self.events().await.into_iter().find(|e| {
                e["kind"] == kind
                    && (id.is_empty() || e["id"] == id)
                    && e[field].as_str().is_some_and(|v| v.contains(needle))
            })
        })
        .await
    }

    /// POSTs (deliveries) the peer saw for callback `id` after Unix time `since`.
    async fn deliveries_since(&self, id: &str, since: f64) -> usize {
        self.events()
            .await
            .iter()
            .filter(|e| {
                e["kind"] == "request"
                    && e["id"] == id
                    && e["method"] == "POST"
                    && e["time"].as_f64().unwrap() >= since
            })
            .count()
    }
}

/// An RSS document with one item per title, the last the newest.
fn feed(titles: &[&str]) -> Vec<u8> {
    let mut items = String::new();
    for (n, title) in titles.iter().enumerate() {
        let date = chrono::DateTime::from_timestamp(1_780_000_000 + 3600 * n as i64, 0).unwrap();
        items.push_str(&format!(
            "<item><title>{title}</title><link>https://wire.example/{n}</link><guid>https://wire.example/{n}</guid><pubDate>{}</pubDate></item>",
            date.to_rfc2822()
        ));
    }
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title><link>https://wire.example/</link><description>d</description>{items}</channel></rss>").into_bytes()
}

/// A feed server with one source, and the daemon polling it every 300 ms with
/// `publish` as its `[publish]` table (and `server`'s lines under `[server]`),
/// its store in `store`. Returns once `/feed.xml` shows the first story.
async fn start(store: &Path, server_lines: &str, publish: &str) -> (FeedServer, RunningApp) {
    let server = FeedServer::start().await;
    server.route("/wire.xml", feed(&["First story"]), "application/rss+xml");
    let app = start_app(&server, store, server_lines, publish).await;
    (server, app)
}

async fn start_app(
    server: &FeedServer,
    store: &Path,
    server_lines: &str,
    publish: &str,
) -> RunningApp {
    let text = format!(
        "[server]\n{server_lines}\n[publish]\n{publish}\n[store]\npath = \"{}\"\nmax_age = \"36500d\"\n[[source]]\nurl = \"{}\"\ntags = [\"world\"]\n",
        store.display(),
        server.url("/wire.xml")
    );
    let app = RunningApp::start(config_with_interval(&text, Duration::from_millis(300))).await;
    let url = app.url("/feed.xml");
    eventually(Duration::from_secs(15), || async {
        let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
        body.contains("First story").then_some(())
    })
    .await;
    app
}

const BUILTIN: &str = "hub = \"builtin\"\nhub_allow_private = true";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_hub_verifies_signs_delivers_and_unsubscribes() {
    let Some(peer) = Peer::start(false) else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let (server, app) = start(store.path(), "", BUILTIN).await;
    let (hub, topic) = (app.url("/hub"), app.url("/feed.xml"));

    // Readers find the hub and the topic in the feed's Link header.
    let response = reqwest::get(&topic).await.unwrap();
    assert_eq!(
        response.headers()["link"],
        format!("<{hub}>; rel=\"hub\", <{topic}>; rel=\"self\"").as_str()
    );

    // Topics that are not our feeds are refused at once.
    for wrong in [
        app.url("/nope.xml"),
        app.url("/tags/nowhere.xml"),
        app.url("/opml"),
        "http://elsewhere.example/feed.xml".to_string(),
    ] {
        let refused = peer.subscribe(&hub, &wrong, json!({})).await.unwrap_err();
        assert!(refused.contains("400"), "{wrong}: {refused}");
    }

    let signed = peer
        .subscribe(
            &hub,
            &topic,
            json!({"secret": "a long shared secret", "lease_seconds": 600}),
        )
        .await
        .unwrap();
    let verified = peer
        .wait_for(
            "verified",
            &signed,
            "mode",
            "subscribe",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(verified["topic"], topic.as_str());
    let tag_topic = app.url("/tags/world.atom");
    let plain = peer.subscribe(&hub, &tag_topic, json!({})).await.unwrap();
    peer.wait_for(
        "verified",
        &plain,
        "mode",
        "subscribe",
        Duration::from_secs(10),
    )
    .await;

    // A change of the river reaches both in seconds: the feed as readers get it,
    // with a signature flask-websub checked (it drops a delivery whose does not match).
    let changed = Instant::now();
    server.route(
        "/wire.xml",
        feed(&["First story", "Second story"]),
        "application/rss+xml",
    );
    let delivered = peer
        .wait_for(
            "notification",
            &signed,
            "body",
            "Second story",
            Duration::from_secs(15),
        )
        .await;
    let latency = changed.elapsed();
    assert!(latency < Duration::from_secs(10), "{latency:?}");
    assert!(
        delivered["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/rss+xml")
    );
    assert!(
        delivered["link"]
            .as_str()
            .unwrap()
            .contains(&format!("<{topic}>; rel=\"self\""))
    );
    let atom = peer
        .wait_for(
            "notification",
            &plain,
            "body",
            "Second story",
            Duration::from_secs(15),
        )
        .await;
    assert!(
        atom["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let signatures: Vec<Value> = peer
        .events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "request" && e["method"] == "POST")
        .map(|e| e["signature"].clone())
        .collect();
    assert!(
        signatures
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("sha256=")))
    );
    assert!(
        signatures.iter().any(Value::is_null),
        "no secret, no signature"
    );

    // Unsubscribed, it gets nothing more, while the other subscriber does.
    peer.unsubscribe(&signed).await;
    peer.wait_for(
        "verified",
        &signed,
        "mode",
        "unsubscribe",
        Duration::from_secs(10),
    )
    .await;
    let since = now();
    server.route(
        "/wire.xml",
        feed(&["First story", "Second story", "Third story"]),
        "application/rss+xml",
    );
    peer.wait_for(
        "notification",
        &plain,
        "body",
        "Third story",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(peer.deliveries_since(&signed, since).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_end() {
    let Some(peer) = Peer::start(false) else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let (server, app) = start(store.path(), "", BUILTIN).await;
    let (hub, topic) = (app.url("/hub"), app.url("/feed.xml"));
    let short = peer
        .subscribe(&hub, &topic, json!({"lease_seconds": 2}))
        .await
        .unwrap();
    let verified = peer
        .wait_for(
            "request",
            &short,
            "mode",
            "subscribe",
            Duration::from_secs(10),
        )
        .await;
    peer.wait_for(
        "verified",
        &short,
        "mode",
        "subscribe",
        Duration::from_secs(10),
    )
    .await;
    let long = peer.subscribe(&hub, &topic, json!({})).await.unwrap();
    peer.wait_for(
        "verified",
        &long,
        "mode",
        "subscribe",
        Duration::from_secs(10),
    )
    .await;
    // Two seconds after its verification the short lease has ended.
    let ends = verified["time"].as_f64().unwrap() + 2.5;
    tokio::time::sleep(Duration::from_secs_f64((ends - now()).max(0.0))).await;
    server.route(
        "/wire.xml",
        feed(&["First story", "Second story"]),
        "application/rss+xml",
    );
    peer.wait_for(
        "notification",
        &long,
        "body",
        "Second story",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(peer.deliveries_since(&short, 0.0).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_restart() {
    let Some(peer) = Peer::start(false) else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    // Topics are named on the public URL, which stays the same across restarts
    // (the listen port does not).
    let public = "public_url = \"http://news.example/\"";
    let (server, app) = start(store.path(), public, BUILTIN).await;
    let topic = "http://news.example/feed.json";
    let id = peer
        .subscribe(&app.url("/hub"), topic, json!({"secret": "s"}))
        .await
        .unwrap();
    peer.wait_for(
        "verified",
        &id,
        "mode",
        "subscribe",
        Duration::from_secs(10),
    )
    .await;
    app.stop().await;

    let app = start_app(&server, store.path(), public, BUILTIN).await;
    server.route(
        "/wire.xml",
        feed(&["First story", "After the restart"]),
        "application/rss+xml",
    );
    let delivered = peer
        .wait_for(
            "notification",
            &id,
            "body",
            "After the restart",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(delivered["topic"], topic);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_hubs_are_told_of_each_change() {
    let Some(peer) = Peer::start(true) else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let hub = peer.url("/hub");
    let (server, app) = start(store.path(), "", &format!("hubs = [\"{hub}\"]")).await;
    let topic = app.url("/feed.xml");
    // flask-websub's subscriber subscribes to our feed at flask-websub's hub.
    let id = peer.subscribe(&hub, &topic, json!({})).await.unwrap();
    peer.wait_for(
        "verified",
        &id,
        "mode",
        "subscribe",
        Duration::from_secs(10),
    )
    .await;

    server.route(
        "/wire.xml",
        feed(&["First story", "Second story"]),
        "application/rss+xml",
    );
    // We ping the hub; it fetches the feed (refusing one without Link rel="hub" and
    // rel="self") and delivers it.
    peer.wait_for("publish", "", "topic", &topic, Duration::from_secs(15))
        .await;
    peer.wait_for(
        "notification",
        &id,
        "body",
        "Second story",
        Duration::from_secs(15),
    )
    .await;
    app.stop().await;
}

/// Unix time, as the peer's events are stamped.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A callback that confirms every verification (echoing `hub.challenge`) and
/// counts them; served on loopback by the test itself.
async fn echo_callback() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let verified = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = verified.clone();
    let app = axum::Router::new().fallback(move |query: axum::extract::RawQuery| {
        let counter = counter.clone();
        async move {
            let query = query.0.unwrap_or_default();
            let challenge = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "hub.challenge")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            counter.fetch_add(1, Ordering::SeqCst);
            challenge
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/cb"), verified)
}

/// POSTs `pairs` as a form to `url`: the status and the body.
async fn post_form(url: &str, pairs: &[(&str, &str)]) -> (u16, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_endpoint_refuses_what_it_must_and_holds_its_limit() {
    let store = tempfile::tempdir().unwrap();
    let publish = "hub = \"builtin\"\nhub_max_subscriptions = 1";
    let (server, app) = start(store.path(), "", publish).await;
    let (hub, topic) = (app.url("/hub"), app.url("/feed.xml"));
    let get = reqwest::get(&hub).await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let secret = "s".repeat(200);
    for (pairs, why) in [
        (
            vec![
                ("hub.callback", "http://127.0.0.1:1/cb"),
                ("hub.topic", topic.as_str()),
            ],
            "hub.mode",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", topic.as_str()),
                ("hub.callback", "ftp://127.0.0.1/cb"),
            ],
            "http",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", topic.as_str()),
                ("hub.callback", "http://127.0.0.1:1/cb"),
                ("hub.secret", &secret),
            ],
            "hub.secret",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "http://127.0.0.1:1/feed.xml"),
                ("hub.callback", "http://127.0.0.1:1/cb"),
            ],
            "not one of this server's feeds",
        ),
        // Without hub_allow_private, a callback on an internal address is refused.
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", topic.as_str()),
                ("hub.callback", "http://10.0.0.1/cb"),
            ],
            "private address",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", topic.as_str()),
                ("hub.callback", "http://127.0.0.1:1/cb"),
            ],
            "loopback address",
        ),
    ] {
        let (status, text) = post_form(&hub, &pairs).await;
        assert_eq!(status, 400, "{pairs:?}: {text}");
        assert!(text.contains(why), "{pairs:?}: {text}");
    }
    app.stop().await;

    // With internal callbacks allowed: one subscription is the limit; renewing it is
    // not a new one.
    let publish = "hub = \"builtin\"\nhub_max_subscriptions = 1\nhub_allow_private = true";
    let app = start_app(&server, store.path(), "", publish).await;
    let (hub, topic) = (app.url("/hub"), app.url("/feed.xml"));
    let (first, verified) = echo_callback().await;
    let (second, _) = echo_callback().await;
    let request = |callback: &str| {
        vec![
            ("hub.mode", "subscribe".to_string()),
            ("hub.topic", topic.clone()),
            ("hub.callback", callback.to_string()),
        ]
    };
    let send = |pairs: Vec<(&'static str, String)>| {
        let hub = hub.clone();
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&hub, &pairs).await
        }
    };
    assert_eq!(send(request(&first)).await.0, 202);
    eventually(Duration::from_secs(10), || async {
        (verified.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    // Once one of the two is stored (the first, unless the second's verification
    // overtook its store write), the other is refused; renewing the one held is not
    // a new subscription.
    let (held, limited) = eventually(Duration::from_secs(20), || async {
        for (this, other) in [(&first, &second), (&second, &first)] {
            let (status, text) = send(request(other)).await;
            if status == 503 {
                return Some((this.clone(), text));
            }
        }
        None
    })
    .await;
    assert!(limited.contains("most subscriptions"), "{limited}");
    assert_eq!(send(request(&held)).await.0, 202);
    app.stop().await;

    // The hub off: /hub is a path like any other.
    let app = start_app(&server, store.path(), "", "").await;
    assert_eq!(reqwest::get(app.url("/hub")).await.unwrap().status(), 404);
    assert_eq!(post_form(&app.url("/hub"), &[]).await.0, 405);
    app.stop().await;
}

/// What a scripted callback saw: each delivery's arrival, and how many
/// verifications it confirmed.
type Seen = (
    std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

/// A callback that confirms every verification and answers the deliveries with
/// the statuses in `answers`, in turn (the last one from then on).
async fn scripted_callback(answers: Vec<u16>) -> (String, Seen) {
    use axum::http::{Method, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let deliveries = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let verifications = std::sync::Arc::new(AtomicUsize::new(0));
    let (seen, verified) = (deliveries.clone(), verifications.clone());
    let app =
        axum::Router::new().fallback(move |method: Method, query: axum::extract::RawQuery| {
            let (seen, verified, answers) = (seen.clone(), verified.clone(), answers.clone());
            async move {
                if method == Method::GET {
                    verified.fetch_add(1, Ordering::SeqCst);
                    let query = query.0.unwrap_or_default();
                    let challenge = url::form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == "hub.challenge")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    return (StatusCode::OK, challenge);
                }
                let mut seen = seen.lock().unwrap();
                seen.push(Instant::now());
                let status = answers[(seen.len() - 1).min(answers.len() - 1)];
                (StatusCode::from_u16(status).unwrap(), String::new())
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/cb"), (deliveries, verifications))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_and_a_gone_callback_unsubscribed() {
    let store = tempfile::tempdir().unwrap();
    let (server, app) = start(store.path(), "", BUILTIN).await;
    let (hub, topic) = (app.url("/hub"), app.url("/feed.xml"));
    // A 500, then a 503: retried after about 1 s, then 2 s; then a 200. The
    // next version gets a 410, which ends the subscription.
    let (callback, (deliveries, verified)) = scripted_callback(vec![500, 503, 200, 410]).await;
    let form = [
        ("hub.mode", "subscribe"),
        ("hub.topic", topic.as_str()),
        ("hub.callback", callback.as_str()),
    ];
    assert_eq!(post_form(&hub, &form).await.0, 202);
    // Verified; stored at once after, well before the change below is rendered
    // (a poll and the 1 s render debounce away).
    eventually(Duration::from_secs(10), || async {
        (verified.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let count = || deliveries.lock().unwrap().len();

    server.route(
        "/wire.xml",
        feed(&["First story", "Second story"]),
        "application/rss+xml",
    );
    eventually(Duration::from_secs(20), || async {
        (count() == 3).then_some(())
    })
    .await;
    let times = deliveries.lock().unwrap().clone();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(400), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(900), "{gaps:?}");

    server.route(
        "/wire.xml",
        feed(&["First story", "Second story", "Third story"]),
        "application/rss+xml",
    );
    eventually(Duration::from_secs(15), || async {
        (count() == 4).then_some(())
    })
    .await;
    // Gone: the next change is delivered to nobody.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.route(
        "/wire.xml",
        feed(&["First story", "Second story", "Third story", "Fourth story"]),
        "application/rss+xml",
    );
    eventually(Duration::from_secs(15), || async {
        let body = reqwest::get(&topic).await.ok()?.text().await.ok()?;
        body.contains("Fourth story").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(), 4);
    app.stop().await;
}
