//! The config file's commands on the real binary: which file is read (`--config`,
//! `$TRIBUTARY_CONFIG`, `./feeds.toml`, `/etc/tributary/feeds.toml`), `remove`,
//! `enable` / `disable`, `--dry-run` on every edit, and `config`.

use crate::common::{FeedServer, fixture, tributary, tributary_command, write_config};
use std::path::Path;
use std::process::Output;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The binary with `args`, run in `dir`, with `$TRIBUTARY_CONFIG` set to `env` when given.
fn run_in(dir: &Path, env: Option<&str>, args: &[&str]) -> Output {
    let mut command = tributary_command(args);
    command.current_dir(dir);
    if let Some(env) = env {
        command.env("TRIBUTARY_CONFIG", env);
    }
    command.output().unwrap()
}

const FEEDS: &str = r#"# Our feeds. Keep this comment.
[server]
listen = "127.0.0.1:9"

# --- news ---
[[source]]
url = "https://wire.example/rss"
name = "World Wire"
tags = ["world"]

# Science, weekly.
[[source]]
url = "https://science.example/feed"   # the weekly one
username = "reader"
password = "hunter22"
headers = { X-Api-Key = "k3y-s3cret" }

# the end
"#;

#[test]
fn the_config_is_the_flag_else_the_variable_else_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let system_exists = Path::new("/etc/tributary/feeds.toml").exists();
    if !system_exists {
        let out = run_in(dir.path(), None, &["check"]);
        assert_eq!(out.status.code(), Some(78), "{out:?}");
        let message = stderr(&out);
        for place in [
            "--config",
            "$TRIBUTARY_CONFIG",
            "./feeds.toml",
            "/etc/tributary/feeds.toml",
        ] {
            assert!(message.contains(place), "{place}: {message}");
        }
    }
    write_config(dir.path(), "[publish]\ntitle = \"from cwd\"\n");
    std::fs::write(
        dir.path().join("env.toml"),
        "[publish]\ntitle = \"from env\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("flag.toml"),
        "[publish]\ntitle = \"from flag\"\n",
    )
    .unwrap();
    let cases = [
        (
            None,
            vec!["check"],
            "feeds.toml (found in the working directory)",
            "from cwd",
        ),
        (
            Some("env.toml"),
            vec!["check"],
            "env.toml (named by $TRIBUTARY_CONFIG)",
            "from env",
        ),
        (
            Some("env.toml"),
            vec!["check", "--config", "flag.toml"],
            "flag.toml (given with --config)",
            "from flag",
        ),
    ];
    for (env, args, said, title) in cases {
        let out = run_in(dir.path(), env, &args);
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout(&out).contains(&format!("reading {said}")),
            "{}",
            stdout(&out)
        );
        assert!(stdout(&out).contains(title), "{}", stdout(&out));
        // Every other command reads the same file.
        let mut args = args.clone();
        args[0] = "config";
        let shown = run_in(dir.path(), env, &args);
        assert!(shown.status.success(), "{shown:?}");
        assert!(
            stdout(&shown).contains(&format!("title = \"{title}\"")),
            "{}",
            stdout(&shown)
        );
    }
    // A file named by the variable or the flag is not silently replaced by another.
    let out = run_in(dir.path(), Some("missing.toml"), &["sources"]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
}

#[test]
fn remove_takes_out_one_source_and_keeps_every_other_comment() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), FEEDS);
    let path = config.to_str().unwrap();

    let out = tributary(&["remove", "https://nowhere.example/rss", "--config", path]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("no source matches"),
        "{}",
        stderr(&out)
    );

    // --dry-run: the diff, and the file untouched.
    let out = tributary(&[
        "remove",
        "https://science.example/feed",
        "--dry-run",
        "--config",
        path,
    ]);
    assert!(out.status.success(), "{out:?}");
    let diff = stdout(&out);
    assert!(
        diff.starts_with(&format!("--- {path}\n+++ {path}\n@@ ")),
        "{diff}"
    );
    assert!(
        diff.contains("\n-url = \"https://science.example/feed\"   # the weekly one\n"),
        "{diff}"
    );
    assert!(diff.contains("\n-# Science, weekly.\n"), "{diff}");
    assert!(!diff.contains("\n-# the end"), "{diff}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), FEEDS);

    let out = tributary(&["remove", "https://science.example/feed", "--config", path]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        FEEDS.replace(
            "# Science, weekly.\n[[source]]\nurl = \"https://science.example/feed\"   # the weekly one\nusername = \"reader\"\npassword = \"hunter22\"\nheaders = { X-Api-Key = \"k3y-s3cret\" }\n\n",
            ""
        )
    );
    // By id, as `tributary sources` lists it.
    let id = tributary::item::SourceId("https://wire.example/rss".into()).slug();
    let out = tributary(&["remove", &id, "--config", path]);
    assert!(out.status.success(), "{out:?}");
    let left = tributary::config::load(&config).unwrap();
    assert!(left.sources.is_empty());
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("# the end")
    );
}

#[test]
fn a_disabled_source_stays_in_the_file_and_is_listed_as_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let text = FEEDS.replace(
        "listen = \"127.0.0.1:9\"",
        &format!(
            "listen = \"127.0.0.1:9\"\n[store]\npath = \"{}\"",
            dir.path().join("store").display()
        ),
    );
    let config = write_config(dir.path(), &text);
    let path = config.to_str().unwrap();
    let out = tributary(&[
        "disable",
        "https://wire.example/rss",
        "--dry-run",
        "--config",
        path,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("\n+enabled = false\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    let out = tributary(&["disable", "https://wire.example/rss", "--config", path]);
    assert!(out.status.success(), "{out:?}");
    let check = tributary(&["check", "--config", path]);
    assert!(
        stdout(&check).contains("sources: 1\n  disabled: 1"),
        "{}",
        stdout(&check)
    );
    let listed = tributary(&["sources", "--json", "--config", path]);
    let listing: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let wire = listing["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == "https://wire.example/rss")
        .unwrap();
    assert_eq!(wire["status"], "disabled", "{listing}");
    let table = stdout(&tributary(&["sources", "--config", path]));
    let wire = table.lines().find(|l| l.contains("World Wire")).unwrap();
    assert!(wire.contains(" disabled "), "{table}");

    let out = tributary(&["enable", "https://wire.example/rss", "--config", path]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn config_prints_every_default_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), FEEDS);
    let out = tributary(&["config", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let shown = stdout(&out);
    for expected in [
        "listen = \"127.0.0.1:9\"",
        "max_age = \"30days\"",
        "concurrency = 16",
        "language = \"en\"",
        "password = \"<redacted>\"",
        "headers = { X-Api-Key = \"<redacted>\" }",
        "username = \"reader\"",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    for secret in ["hunter22", "k3y-s3cret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // It is a config itself: it reads back.
    let other = tempfile::tempdir().unwrap();
    let again = write_config(other.path(), &shown);
    let again = tributary::config::load(&again).unwrap();
    assert_eq!(again.sources.len(), 2);
}

#[test]
fn import_opml_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), FEEDS);
    let opml = dir.path().join("reader.opml");
    std::fs::write(
        &opml,
        r#"<opml version="1.0"><body><outline text="Comets" xmlUrl="https://comets.example/rss"/></body></opml>"#,
    )
    .unwrap();
    let out = tributary(&[
        "import-opml",
        opml.to_str().unwrap(),
        "--dry-run",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("+url = \"https://comets.example/rss\"\n+name = \"Comets\"\n"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("1 sources to add"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), FEEDS);
}

#[tokio::test(flavor = "multi_thread")]
async fn add_dry_run_fetches_and_writes_nothing() {
    let server = FeedServer::start().await;
    server.route("/wire.xml", fixture("rss2.xml"), "application/rss+xml");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), FEEDS);
    let url = server.url("/wire.xml");
    let path = config.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        tributary(&["add", &url, "--dry-run", "--config", &path])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains(&format!("+url = \"{}\"", server.url("/wire.xml"))),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("would add"), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), FEEDS);
    assert_eq!(server.requests_for("/wire.xml"), 1);

    // With no config anywhere, `add` starts ./feeds.toml.
    if Path::new("/etc/tributary/feeds.toml").exists() {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let url = server.url("/wire.xml");
    let cwd = empty.path().to_owned();
    let out = tokio::task::spawn_blocking(move || run_in(&cwd, None, &["add", &url]))
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let started = tributary::config::load(&empty.path().join("feeds.toml")).unwrap();
    assert_eq!(started.sources[0].url.as_str(), server.url("/wire.xml"));
}

#[test]
fn a_reload_stops_a_disabled_source_and_starts_it_again_when_enabled() {
    use crate::common::daemon::{Daemon, body, config_text};
    let wait = std::time::Duration::from_secs(15);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FeedServer::start());
    server.route("/rss2.xml", fixture("rss2.xml"), "application/rss+xml");
    server.route("/atom.xml", fixture("atom.xml"), "application/atom+xml");
    let dir = tempfile::tempdir().unwrap();
    let atom = server.url("/atom.xml");
    let sources = format!(
        "[[source]]\nurl = \"{}\"\n\n[[source]]\nurl = \"{atom}\"\n",
        server.url("/rss2.xml")
    );
    let config = write_config(dir.path(), &config_text(dir.path(), &sources));
    let path = config.to_str().unwrap();
    let daemon = Daemon::start(&config);
    daemon.wait_for_body("/feed.xml", "New compiler release", wait);
    let status = |daemon: &Daemon| {
        let listing: serde_json::Value =
            serde_json::from_str(body(&daemon.get("/sources.json"))).unwrap();
        listing["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["url"] == atom.as_str())
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&daemon), "ok");

    for (command, log, expected) in [
        ("disable", "source removed", "disabled"),
        ("enable", "source added", "ok"),
    ] {
        let out = tributary(&[command, &atom, "--config", path]);
        assert!(out.status.success(), "{out:?}");
        let mark = daemon.log().len();
        daemon.signal(libc::SIGHUP);
        daemon.wait_for_log_after(mark, "sources reloaded", wait);
        let line = daemon.wait_for_log_after(mark, log, wait);
        assert!(line.contains("/atom.xml"), "{line}");
        assert_eq!(status(&daemon), expected, "after {command}");
        if expected == "disabled" {
            // Its series are gone with it (they come back with its next poll).
            let metrics = daemon.get("/metrics");
            assert!(!metrics.contains("/atom.xml"), "{metrics}");
        }
    }
    assert!(daemon.stop(wait).success());
}
