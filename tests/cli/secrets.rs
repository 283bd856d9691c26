//! Secrets from files on the real daemon: `password_file` and a header's `{ file =
//! "…" }`, looked up in `$CREDENTIALS_DIRECTORY` as systemd's `LoadCredential=` sets
//! it; sent to the feed's server, shown nowhere.

use crate::common::daemon::{self, Daemon, body, config_text};
use crate::common::{FeedServer, fixture, tributary_command, write_config};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const TOKEN: &str = "tok-7f3a9c-secret";
const PASSWORD: &str = "pw-91d2-secret";

#[test]
fn secrets_come_from_the_credentials_directory_and_are_shown_nowhere() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(FeedServer::start());
    server.route("/wire.xml", fixture("rss2.xml"), "application/rss+xml");
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("wire-token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(credentials.join("wire-password"), PASSWORD).unwrap();
    let source = format!(
        "[[source]]\nurl = \"{}\"\nusername = \"reader\"\npassword_file = \"wire-password\"\nheaders = {{ X-Api-Key = {{ file = \"wire-token\" }} }}\n",
        server.url("/wire.xml")
    );
    let config = write_config(dir.path(), &config_text(dir.path(), &source));
    let path = config.to_str().unwrap();

    // Without the directory the names are looked up beside the config: not there.
    let out = tributary_command(&["check", "--config", path])
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let said = String::from_utf8(out.stderr).unwrap();
    assert!(
        said.contains(&format!(
            "source {}: cannot read the secret of `password_file` from {}",
            server.url("/wire.xml"),
            dir.path().join("wire-password").display()
        )),
        "{said}"
    );

    let mut command = daemon::command(&config);
    // Every poll in the log, and what the libraries log at debug level too.
    command
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .env("RUST_LOG", "debug");
    let mut daemon = Daemon::spawn(command);
    daemon.wait_for_body("/feed.xml", "Talks resume in Geneva", WAIT);
    let seen = server.state.seen_headers.lock().unwrap().clone();
    let first = &seen[0];
    assert_eq!(first["x-api-key"], TOKEN);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("reader:{PASSWORD}"));
    assert_eq!(first["authorization"], format!("Basic {basic}").as_str());

    let mut shown = String::new();
    for page in [
        "/sources",
        "/sources.json",
        "/metrics",
        "/feed.xml",
        "/opml",
    ] {
        shown.push_str(body(&daemon.get(page)));
    }
    let effective = tributary_command(&["config", "--config", path])
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .output()
        .unwrap();
    assert!(effective.status.success(), "{effective:?}");
    let effective = String::from_utf8(effective.stdout).unwrap();
    assert!(
        effective.contains("password = \"<redacted>\"")
            && effective.contains("X-Api-Key = \"<redacted>\""),
        "{effective}"
    );
    shown.push_str(&effective);
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait(WAIT).success());
    shown.push_str(&daemon.log());
    for secret in [TOKEN, PASSWORD, basic.as_str()] {
        assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
    }
}
