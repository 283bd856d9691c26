//! The commands on hostile servers: `poll` against a server that answers 500 forever,
//! and `inspect` on redirects towards internal addresses.

use crate::common::daemon::config_text;
use crate::common::{tributary_command, write_config};
use crate::server::Hostile;
use crate::{healthy, runtime};
use std::time::{Duration, Instant};
use tributary::ops::status::{Status, parse_json};

/// `tributary` with `args`, its stdout, stderr and whether it succeeded.
fn cli(args: &[&str]) -> (String, String, bool) {
    let output = tributary_command(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

/// A server that answers 500 forever is retried later and later, never given up.
#[test]
fn a_server_answering_500_forever_is_backed_off() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.respond("/500", 500, &[], b"Internal Server Error".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(
            dir.path(),
            &format!("[[source]]\nurl = \"{}\"\n", server.url("/500")),
        ),
    );
    let config = config.to_str().unwrap();
    let started = Instant::now();
    let mut waits = Vec::new();
    for round in 1..=4 {
        let (_, stderr, _) = cli(&["poll", "--config", config]);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let (stdout, stderr, ok) = cli(&["sources", "--config", config, "--json"]);
        assert!(ok, "{stderr}");
        let status = parse_json(stdout.as_bytes()).unwrap().remove(0);
        assert_eq!(status.consecutive_failures, round, "{status:?}");
        assert!(
            status
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("500 Internal Server Error"),
            "{status:?}"
        );
        assert_ne!(status.status, Status::Gone);
        waits.push((status.next_poll.unwrap() - status.last_attempt.unwrap()).num_seconds());
    }
    // Doubling, ±10% jitter: each wait is well above the one before.
    for pair in waits.windows(2) {
        assert!(pair[1] as f64 > pair[0] as f64 * 1.5, "waits {waits:?}");
    }
    eprintln!(
        "hostile 500 forever: waits {waits:?} s, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `tributary inspect` on `path`, which redirects to `location`, is refused at once,
/// without trying to connect, with an error saying `expected`.
fn inspect_refuses(path: &str, location: &str, expected: &str) {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.redirect(path, location);
    let started = Instant::now();
    let (_, stderr, ok) = cli(&["inspect", &server.url(path)]);
    let took = started.elapsed();
    assert!(!ok && stderr.contains(expected), "{path}: {stderr}");
    assert!(took < Duration::from_secs(5), "{path} took {took:?}");
    eprintln!("hostile inspect {path}: refused in {took:?}");
}

#[test]
fn inspect_refuses_a_redirect_to_the_metadata_service() {
    inspect_refuses(
        "/to-metadata",
        "http://169.254.169.254/latest/meta-data/",
        "refused: redirect to 169.254.169.254 is a link-local address; set allow_private = true to allow",
    );
}

#[test]
fn inspect_refuses_a_redirect_to_a_private_address() {
    inspect_refuses(
        "/to-private",
        "http://10.0.0.1/feed",
        "refused: redirect to 10.0.0.1 is a private address",
    );
}

#[test]
fn inspect_follows_a_redirect_within_loopback() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.redirect("/to-loopback", &server.url("/feed"));
    server.body("/feed", "application/rss+xml", healthy("inspect"));
    let (stdout, stderr, ok) = cli(&["inspect", &server.url("/to-loopback")]);
    assert!(
        ok && stdout.contains("inspect healthy 3"),
        "{stdout}{stderr}"
    );
}
