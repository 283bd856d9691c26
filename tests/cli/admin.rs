//! The operator's listener on the real daemon: `[server] admin_listen` takes the
//! operator's endpoints off the public listener, `[server] metrics = false`, and
//! `tributary reset` through the running daemon or, stopped, the store.

use crate::common::daemon::{Daemon, body, config_text, http_get};
use crate::common::{FeedServer, Reply, fixture, tributary, write_config};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// A feed server with a good feed and one answering `status`, on a runtime of its own.
fn feeds(status: u16) -> (tokio::runtime::Runtime, FeedServer) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FeedServer::start());
    server.route("/wire.xml", fixture("rss2.xml"), "application/rss+xml");
    server.reply(
        "/broken.xml",
        Reply::Status {
            status,
            headers: vec![],
        },
    );
    (runtime, server)
}

fn sources(server: &FeedServer) -> String {
    format!(
        "[[source]]\nurl = \"{}\"\n[[source]]\nurl = \"{}\"\n",
        server.url("/wire.xml"),
        server.url("/broken.xml")
    )
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

fn post(addr: &str, path: &str) -> String {
    crate::common::daemon::http_request(addr, "POST", path, "Content-Length: 0\r\n")
}

/// Waits until `/sources.json` at `addr` says `status` for the source at `url`.
fn wait_for_status(addr: &str, url: &str, status: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let listing: serde_json::Value =
            serde_json::from_str(body(&http_get(addr, "/sources.json"))).unwrap();
        let source = listing["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["url"] == url)
            .cloned()
            .unwrap();
        if source["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "not {status}: {source}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The config, rewritten with the addresses the daemon actually took, for the
/// commands to find it.
fn rewrite(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn admin_listen_takes_the_operator_off_the_public_listener_and_reset_polls_at_once() {
    let (_runtime, server) = feeds(500);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), &sources(&server)).replace(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n",
    );
    let config = write_config(dir.path(), &text);
    let daemon = Daemon::start(&config);
    let admin = daemon
        .wait_for_log("serving /metrics", WAIT)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("admin_listen="))
        .unwrap()
        .to_string();
    rewrite(&config, "127.0.0.1:0", &daemon.addr);
    rewrite(&config, "127.0.0.1:0", &admin);

    for path in [
        "/metrics",
        "/sources",
        "/sources.json",
        "/healthz",
        "/readyz",
    ] {
        let public = daemon.get(path);
        assert_eq!(
            status_line(&public),
            "HTTP/1.1 404 Not Found",
            "{path}: {public}"
        );
        let here = http_get(&admin, path);
        assert!(!status_line(&here).contains("404"), "{path}: {here}");
    }
    daemon.wait_for_body("/feed.xml", "Talks resume in Geneva", WAIT);
    assert!(http_get(&admin, "/feed.xml").contains("Talks resume in Geneva"));
    let broken = server.url("/broken.xml");
    let id = tributary::item::SourceId(broken.clone()).slug();
    let public = post(&daemon.addr, &format!("/sources/{id}/reset"));
    assert_eq!(
        status_line(&public),
        "HTTP/1.1 405 Method Not Allowed",
        "{public}"
    );

    // Failing, so not polled again for 15 minutes; fixed, then reset: polled at once.
    wait_for_status(&admin, &broken, "failing");
    server.route("/broken.xml", fixture("atom.xml"), "application/atom+xml");
    let config = config.to_str().unwrap();
    let out = tributary(&["reset", &broken, "--config", config]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("forgot 1 failures"), "{said}");
    assert!(said.contains("polling it now"), "{said}");
    wait_for_status(&admin, &broken, "ok");
    daemon.wait_for_body("/feed.xml", "New compiler release", WAIT);

    let listed = tributary(&["sources", "--config", config]);
    let from = String::from_utf8(listed.stderr).unwrap();
    assert!(
        from.contains(&format!("from the daemon at http://{admin}/")),
        "{from}"
    );
    let out = tributary(&["reset", "https://nowhere.example/", "--config", config]);
    assert!(!out.status.success());
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn metrics_can_be_off_and_a_stopped_daemon_is_reset_in_its_store() {
    let (_runtime, server) = feeds(410);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), &sources(&server)).replace(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\nmetrics = false\n",
    );
    let config = write_config(dir.path(), &text);
    let daemon = Daemon::start(&config);
    rewrite(&config, "127.0.0.1:0", &daemon.addr);
    assert_eq!(
        status_line(&daemon.get("/metrics")),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(status_line(&daemon.get("/healthz")), "HTTP/1.1 200 OK");
    let broken = server.url("/broken.xml");
    wait_for_status(&daemon.addr, &broken, "gone");
    assert!(daemon.stop(WAIT).success());

    let config = config.to_str().unwrap();
    let out = tributary(&["reset", &broken, "--config", config]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("in the store at"), "{said}");
    assert!(said.contains("410 Gone"), "{said}");
    let listed = tributary(&["sources", "--json", "--config", config]);
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listing["sources"][1]["status"], "ok", "{listing}");
    assert_eq!(
        listing["sources"][1]["consecutive_failures"], 0,
        "{listing}"
    );

    // Running again, the loopback listener takes the reset itself.
    let daemon = Daemon::start(Path::new(config));
    let out = tributary(&["reset", &broken, "--config", config]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("polling it now")
    );
    assert!(daemon.stop(WAIT).success());
}
