//! Live reload of the real daemon: SIGHUP, and `[config] watch = true`, apply an
//! edited `feeds.toml` without a restart; a broken edit changes nothing.

mod common;

use common::daemon::{Daemon, config_text};
use common::{FeedServer, fixture, write_config};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A feed server with two fixture feeds, on a runtime of its own.
fn feeds() -> (tokio::runtime::Runtime, FeedServer) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FeedServer::start());
    server.route("/rss2.xml", fixture("rss2.xml"), "application/rss+xml");
    server.route("/atom.xml", fixture("atom.xml"), "application/atom+xml");
    (runtime, server)
}

fn source(server: &FeedServer, path: &str) -> String {
    format!("[[source]]\nurl = \"{}\"\n", server.url(path))
}

#[test]
fn an_added_source_is_polled_and_published_after_sighup() {
    let (_runtime, server) = feeds();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(dir.path(), &source(&server, "/rss2.xml")),
    );
    let daemon = Daemon::start(&config);
    daemon.wait_for_body("/feed.xml", "Talks resume in Geneva", WAIT);
    assert!(!daemon.get("/feed.xml").contains("New compiler release"));
    // /opml rendered (and kept) before the reload.
    assert!(!daemon.get("/opml").contains("/atom.xml"));
    let pid_before = daemon.pid();

    let with_atom = format!(
        "[publish]\ntitle = \"Reloaded river\"\n{}{}",
        source(&server, "/rss2.xml"),
        source(&server, "/atom.xml")
    );
    std::fs::write(&config, config_text(dir.path(), &with_atom)).unwrap();
    let mark = daemon.log().len();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log_after(mark, "config reloaded", WAIT);
    daemon.wait_for_body("/feed.xml", "New compiler release", WAIT);
    // The new source's name shows on the page once the publisher re-rendered.
    daemon.wait_for_body("/", "Tech Log", WAIT);
    // /sources carries the new title and lists the new source.
    let sources = daemon.wait_for_body("/sources", "Reloaded river", WAIT);
    assert!(sources.contains("/atom.xml"), "{sources}");
    // /opml lists the new source, not the one kept from before.
    let opml = daemon.wait_for_body("/opml", "/atom.xml", WAIT);
    assert!(opml.contains("/rss2.xml"), "{opml}");
    assert!(daemon.get("/feed.xml").contains("Talks resume in Geneva"));
    assert_eq!(daemon.pid(), pid_before);
    // The untouched source was not restarted: it was fetched once, at start-up.
    assert_eq!(server.requests_for("/rss2.xml"), 1);
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn an_invalid_edit_keeps_the_running_config_and_names_the_place() {
    let (_runtime, server) = feeds();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(dir.path(), &source(&server, "/rss2.xml")),
    );
    let daemon = Daemon::start(&config);
    daemon.wait_for_body("/feed.xml", "Talks resume in Geneva", WAIT);

    // Line 8, column 12: the interval below the one-minute floor.
    let broken = format!(
        "{}interval = \"10s\"\n{}",
        source(&server, "/rss2.xml"),
        source(&server, "/atom.xml")
    );
    std::fs::write(&config, config_text(dir.path(), &broken)).unwrap();
    let mark = daemon.log().len();
    daemon.signal(libc::SIGHUP);
    let place = format!("{}:8:12:", config.display());
    let line = daemon.wait_for_log_after(mark, &place, WAIT);
    assert!(line.contains("interval"), "{line}");
    daemon.wait_for_log_after(mark, "the running one stays in force", WAIT);

    // Still serving the old sources, and not polling the one from the broken file.
    let feed = daemon.get("/feed.xml");
    assert!(feed.starts_with("HTTP/1.1 200"), "{feed}");
    assert!(feed.contains("Talks resume in Geneva"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.requests_for("/atom.xml"), 0);

    // A fixed file applies as usual.
    let fixed = format!(
        "{}{}",
        source(&server, "/rss2.xml"),
        source(&server, "/atom.xml")
    );
    std::fs::write(&config, config_text(dir.path(), &fixed)).unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_body("/feed.xml", "New compiler release", WAIT);
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn a_removed_source_stops_being_polled_and_a_listen_change_is_reported() {
    let (_runtime, server) = feeds();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");
    let both = format!(
        "{}interval = \"1m\"\n{}",
        source(&server, "/rss2.xml"),
        source(&server, "/atom.xml")
    );
    std::fs::write(&config, config_text(dir.path(), &both)).unwrap();
    let daemon = Daemon::start(&config);
    daemon.wait_for_body("/feed.xml", "New compiler release", WAIT);

    let text = config_text(dir.path(), &source(&server, "/rss2.xml"))
        .replace("127.0.0.1:0", "127.0.0.1:1");
    std::fs::write(&config, text).unwrap();
    let mark = daemon.log().len();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log_after(mark, "sources reloaded", WAIT);
    let log = daemon.log()[mark..].to_string();
    assert!(log.contains("source removed"), "{log}");
    assert!(
        log.contains("[server] listen") && log.contains("only when tributary restarts"),
        "{log}"
    );
    // The changed source (its interval went) restarts with its new settings.
    assert!(log.contains("source changed"), "{log}");
    // Still not applied on the next reload, so still reported.
    let mark = daemon.log().len();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log_after(mark, "sources reloaded", WAIT);
    assert!(
        daemon.log()[mark..].contains("[server] listen"),
        "{}",
        &daemon.log()[mark..]
    );
    // The removed source leaves the list of sources; its items stay until they age out.
    let deadline = std::time::Instant::now() + WAIT;
    while daemon.get("/opml").contains("/atom.xml") {
        assert!(
            std::time::Instant::now() < deadline,
            "/opml still lists the removed source"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(daemon.get("/opml").contains("/rss2.xml"));
    assert!(daemon.get("/feed.xml").contains("New compiler release"));
    // Nor does /metrics keep its series.
    let metrics = daemon.get("/metrics");
    assert!(!metrics.contains("/atom.xml"), "{metrics}");
    assert!(metrics.contains("/rss2.xml"), "{metrics}");
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn watch_mode_applies_a_saved_edit_without_a_signal() {
    let (_runtime, server) = feeds();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");
    let watching =
        |sources: &str| config_text(dir.path(), &format!("[config]\nwatch = true\n{sources}"));
    std::fs::write(&config, watching(&source(&server, "/rss2.xml"))).unwrap();
    let daemon = Daemon::start(&config);
    daemon.wait_for_log("watching the config file", WAIT);
    daemon.wait_for_body("/feed.xml", "Talks resume in Geneva", WAIT);

    // Saved the way many editors do: a new file renamed over the old one.
    let both = format!(
        "{}{}",
        source(&server, "/rss2.xml"),
        source(&server, "/atom.xml")
    );
    let temporary = dir.path().join(".feeds.toml.swp");
    std::fs::write(&temporary, watching(&both)).unwrap();
    std::fs::rename(&temporary, &config).unwrap();
    daemon.wait_for_log("the file changed", WAIT);
    daemon.wait_for_body("/feed.xml", "New compiler release", WAIT);
    // One save, one reload: reading the file does not count as a change.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(daemon.log().matches("reloading the config").count(), 1);
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn a_kept_source_keeps_its_timer_and_takes_the_new_secret_query() {
    let (_runtime, server) = feeds();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/rss2.xml?edition=morning");
    let plain = format!("[[source]]\nurl = \"{url}\"\n");
    let config = write_config(dir.path(), &config_text(dir.path(), &plain));
    let daemon = Daemon::start(&config);
    daemon.wait_for_body("/feed.xml", "Talks resume in Geneva", WAIT);
    daemon.wait_for_body("/sources.json", "edition=morning", WAIT);

    // What is shown of the URL is not what is polled: the source is kept (not
    // polled again), and its /sources row follows at once.
    let hidden = format!("{plain}secret_query = [\"edition\"]\n");
    std::fs::write(&config, config_text(dir.path(), &hidden)).unwrap();
    let mark = daemon.log().len();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for_log_after(mark, "sources reloaded", WAIT);
    let log = daemon.log()[mark..].to_string();
    assert!(log.contains("added=0 removed=0 changed=0"), "{log}");
    let sources = daemon.get("/sources.json");
    assert!(
        !sources.contains("morning") && sources.contains("edition=***"),
        "{sources}"
    );
    assert_eq!(server.requests_for("/rss2.xml"), 1);
    assert!(daemon.stop(WAIT).success());
}
