//! Misbehaving HTTP servers, one scenario each: a gzip bomb, a body over the cap,
//! trickling, silence, a reset mid-body, redirect loops and chains, a challenge page,
//! an empty body, 429 with Retry-After in both forms, 500, redirects towards the
//! metadata service, private, reserved and loopback addresses, a page advertising an
//! internal feed, an untrusted TLS certificate; credentials that must not follow a
//! redirect or a discovered feed to another host, and secrets in source URLs that
//! must show nowhere.

use crate::server::{Act, GzipBomb, Hostile, start_tls};
use crate::{FIRST_ROUND, Scenario, healthy, scenario};
use std::sync::Arc;
use std::time::Duration;
use tributary::ops::status::Status;

const POLL: &str = "timeout = \"3s\"\nconnect_timeout = \"1s\"\nconcurrency = 32\nper_host = 32\nmax_body_bytes = 4194304";

/// The sources `serve` sets up, polled next to the healthy feed, and the checks every
/// case shares. Returns the scenario and its peak RSS in kB.
fn case(
    serve: impl FnOnce(&Hostile, &tokio::runtime::Runtime) -> Vec<(String, &'static str)>,
) -> (Scenario, u64) {
    let mut case = scenario("http", POLL, |server, runtime, _| serve(server, runtime));
    let peak = case.bench.assert_sound("http", &[]);
    (case, peak)
}

/// The source at `path`, set up by `serve`, failed its first poll with an error
/// saying every one of `words`.
fn fails(name: &str, path: &str, words: &[&str], serve: impl FnOnce(&Hostile)) -> Scenario {
    let (case, peak) = case(|server, _| {
        serve(server);
        vec![(server.url(path), "")]
    });
    let status = case.bench.status(&case.url(path));
    assert_eq!(status.consecutive_failures, 1, "{status:?}");
    case.bench.assert_failed(&case.url(path), words);
    case.bench.report(name, peak);
    case
}

/// Retry-After sets the next poll `hours` after the last attempt, ±10%.
fn assert_next_poll_in(case: &Scenario, path: &str, hours: f64) {
    let status = case.bench.status(&case.url(path));
    let wait = (status.next_poll.unwrap() - status.last_attempt.unwrap()).num_seconds() as f64;
    assert!(
        (wait / 3600.0 - hours).abs() <= hours * 0.1 + 0.01,
        "{path}: next poll in {wait} s"
    );
}

/// A second loopback server on `runtime` serving the healthy feed `tag` at `path`:
/// the target of a redirect.
fn other(runtime: &tokio::runtime::Runtime, path: &str, tag: &str) -> Hostile {
    let other = Hostile::start(runtime);
    other.body(path, "application/rss+xml", healthy(tag));
    other
}

/// `http://0.0.0.0:PORT/zero` on a second server. 0.0.0.0 is not a public address,
/// yet Linux connects it to this machine: the one non-loopback class a test can
/// reach without leaving loopback. (The tests never connect to 169.254.169.254 or
/// 10.0.0.1: something may well answer.)
fn unspecified(runtime: &tokio::runtime::Runtime) -> String {
    let other = other(runtime, "/zero", "unspecified");
    format!("http://0.0.0.0:{}/zero", other.addr.port())
}

#[test]
fn a_gzip_bomb_is_cut_at_the_cap() {
    fails(
        "http gzip bomb",
        "/bomb",
        &["exceeds the cap of 4194304 bytes"],
        |server| {
            let bomb = Arc::new(GzipBomb::new());
            eprintln!("gzip bomb: {} bytes on the wire for 1 GiB", bomb.wire_len());
            server.set("/bomb", Act::GzipBomb(bomb));
        },
    );
}

#[test]
fn a_body_over_the_cap_is_cut() {
    fails(
        "http large",
        "/large",
        &["exceeds the cap of 4194304 bytes"],
        |server| server.body("/large", "application/rss+xml", vec![b' '; 5 << 20]),
    );
}

#[test]
fn a_trickle_is_cut_at_the_timeout() {
    fails(
        "http trickle",
        "/trickle",
        &["no complete response within 3s"],
        |server| server.set("/trickle", Act::Trickle),
    );
}

#[test]
fn a_silent_server_is_cut_at_the_timeout() {
    fails(
        "http silent",
        "/silent",
        &["no complete response within 3s"],
        |server| server.set("/silent", Act::Silent),
    );
}

#[test]
fn a_reset_mid_body_is_named() {
    fails("http reset", "/reset", &["connection reset"], |server| {
        server.set("/reset", Act::ResetMidBody)
    });
}

#[test]
fn a_redirect_loop_is_named() {
    fails(
        "http redirect loop",
        "/loop-a",
        &["redirect loop"],
        |server| {
            server.redirect("/loop-a", "/loop-b");
            server.redirect("/loop-b", "/loop-a");
        },
    );
}

#[test]
fn a_long_redirect_chain_is_refused() {
    fails(
        "http redirect chain",
        "/chain/0",
        &["more than 5 redirects"],
        |server| {
            for i in 0..20 {
                server.redirect(&format!("/chain/{i}"), &format!("/chain/{}", i + 1));
            }
            server.body("/chain/20", "application/rss+xml", healthy("chain"));
        },
    );
}

#[test]
fn a_challenge_page_is_named() {
    fails(
        "http challenge",
        "/challenge",
        &["bot-protection challenge page"],
        |server| {
            server.body(
                "/challenge",
                "text/html; charset=utf-8",
                b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><div id=\"cf-challenge-running\">Checking your browser before accessing the site.</div><script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1\"></script></body></html>".to_vec(),
            )
        },
    );
}

#[test]
fn an_empty_body_is_named() {
    fails("http empty", "/empty", &["the body is empty"], |server| {
        server.body("/empty", "application/rss+xml", Vec::new())
    });
}

/// Retry-After in seconds (2 h) sets the next poll.
#[test]
fn retry_after_in_seconds_sets_the_next_poll() {
    let case = fails(
        "http 429 seconds",
        "/429-seconds",
        &["429 Too Many Requests"],
        |server| server.respond("/429-seconds", 429, &[("Retry-After", "7200")], Vec::new()),
    );
    assert_next_poll_in(&case, "/429-seconds", 2.0);
}

/// Retry-After as a date (3 h) sets the next poll.
#[test]
fn retry_after_as_a_date_sets_the_next_poll() {
    let case = fails(
        "http 429 date",
        "/429-date",
        &["429 Too Many Requests"],
        |server| {
            let later = httpdate::fmt_http_date(
                std::time::SystemTime::now() + Duration::from_secs(3 * 3600),
            );
            server.respond("/429-date", 429, &[("Retry-After", &later)], Vec::new());
        },
    );
    assert_next_poll_in(&case, "/429-date", 3.0);
}

#[test]
fn a_500_is_named() {
    fails(
        "http 500",
        "/500",
        &["500 Internal Server Error"],
        |server| server.respond("/500", 500, &[], b"Internal Server Error".to_vec()),
    );
}

#[test]
fn a_redirect_to_the_metadata_service_is_refused() {
    fails(
        "http redirect to metadata",
        "/to-metadata",
        &[
            "fetch: refused: redirect to 169.254.169.254 is a link-local address; set allow_private = true to allow",
        ],
        |server| {
            server.redirect(
                "/to-metadata",
                "http://169.254.169.254/latest/meta-data/iam/",
            )
        },
    );
}

#[test]
fn a_redirect_to_a_private_address_is_refused() {
    fails(
        "http redirect to private",
        "/to-private",
        &["refused: redirect to 10.0.0.1 is a private address"],
        |server| server.redirect("/to-private", "http://10.0.0.1/feed"),
    );
}

#[test]
fn a_redirect_to_an_unspecified_address_is_refused() {
    let (case, peak) = case(|server, runtime| {
        server.redirect("/to-unspecified", &unspecified(runtime));
        vec![(server.url("/to-unspecified"), "")]
    });
    let url = case.url("/to-unspecified");
    let status = case.bench.status(&url);
    assert_eq!(status.consecutive_failures, 1, "{status:?}");
    case.bench.assert_failed(
        &url,
        &["refused: redirect to 0.0.0.0 is a reserved address"],
    );
    case.bench.report("http redirect to 0.0.0.0", peak);
}

/// A source on 0.0.0.0 may reach that class only: a host name that resolves to
/// loopback is refused by the resolver, whatever the redirect says.
#[test]
fn a_source_on_0_0_0_0_may_not_reach_localhost() {
    let mut via_zero = String::new();
    let (case, peak) = case(|server, runtime| {
        let other = other(runtime, "/feed", "neighbour");
        server.redirect(
            "/to-localhost",
            &format!("http://localhost:{}/feed", other.addr.port()),
        );
        via_zero = format!("http://0.0.0.0:{}/to-localhost", server.addr.port());
        vec![(via_zero.clone(), "")]
    });
    case.bench.assert_failed(
        &via_zero,
        &[
            "refused: localhost (",
            "is a loopback address; set allow_private = true",
        ],
    );
    case.bench.report("http 0.0.0.0 to localhost", peak);
}

/// A web page advertising a feed on the metadata service: discovery is refused too.
#[test]
fn a_page_advertising_an_internal_feed_is_refused() {
    let (case, peak) = case(|server, _| {
        server.body(
            "/page-metadata",
            "text/html",
            b"<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"http://169.254.169.254/latest/feed.xml\"></head><body>news</body></html>".to_vec(),
        );
        vec![(server.url("/page-metadata"), "")]
    });
    case.bench.assert_failed(
        &case.url("/page-metadata"),
        &["refused: 169.254.169.254 is a link-local address"],
    );
    case.bench.report("http page advertising metadata", peak);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let mut tls_url = String::new();
    let (case, peak) = case(|_, runtime| {
        tls_url = format!("https://{}/feed", start_tls(runtime));
        vec![(tls_url.clone(), "")]
    });
    let tls_status = case.bench.status(&tls_url);
    assert_eq!(tls_status.consecutive_failures, 1, "{tls_status:?}");
    case.bench.assert_failed(
        &tls_url,
        &["TLS certificate is not trusted", "UnknownIssuer"],
    );
    case.bench.report("http TLS", peak);
}

/// Loopback may redirect to loopback.
#[test]
fn loopback_may_redirect_to_loopback() {
    let (case, peak) = case(|server, runtime| {
        let other = other(runtime, "/feed", "neighbour");
        server.redirect("/to-loopback", &other.url("/feed"));
        vec![(server.url("/to-loopback"), "")]
    });
    assert_eq!(
        case.bench.status(&case.url("/to-loopback")).status,
        Status::Ok,
        "/to-loopback"
    );
    case.bench
        .daemon
        .wait_for_body("/feed.xml", "neighbour healthy 3", FIRST_ROUND);
    case.bench.report("http loopback to loopback", peak);
}

/// allow_private reaches the rest.
#[test]
fn allow_private_reaches_an_unspecified_address() {
    let (case, peak) = case(|server, runtime| {
        server.redirect("/allowed-unspecified", &unspecified(runtime));
        vec![(server.url("/allowed-unspecified"), "allow_private = true")]
    });
    assert_eq!(
        case.bench.status(&case.url("/allowed-unspecified")).status,
        Status::Ok,
        "/allowed-unspecified"
    );
    case.bench
        .daemon
        .wait_for_body("/feed.xml", "unspecified healthy 3", FIRST_ROUND);
    case.bench.report("http allow_private", peak);
}

/// What a request head carries that only the configured host may see.
const CREDENTIALS: [&str; 3] = ["authorization:", "x-api-key:", "cookie:"];

const WITH_CREDENTIALS: &str = "username = \"reader\"\npassword = \"s3cret\"\nheaders = { \"X-Api-Key\" = \"k3y\", \"Cookie\" = \"session=c00kie\" }";

fn assert_carries(heads: &[String], carried: bool, what: &str) {
    assert!(!heads.is_empty(), "{what}: no request");
    for head in heads {
        for name in CREDENTIALS {
            assert_eq!(head.contains(name), carried, "{what} {name}\n{head}");
        }
    }
}

/// A source's credentials (basic auth, its headers) reach its own host and port
/// only: not the other server a redirect leads to.
#[test]
fn credentials_do_not_follow_a_redirect_to_another_host() {
    let mut target = None;
    let (case, peak) = case(|server, runtime| {
        let other = other(runtime, "/feed", "elsewhere");
        other.respond("/locked", 401, &[], b"who are you?".to_vec());
        server.redirect("/private", &other.url("/feed"));
        server.redirect("/private-locked", &other.url("/locked"));
        server.body("/private-feed", "application/rss+xml", healthy("own"));
        server.redirect("/private-same", "/private-feed");
        target = Some(other);
        vec![
            (server.url("/private"), WITH_CREDENTIALS),
            (server.url("/private-same"), WITH_CREDENTIALS),
            (server.url("/private-locked"), WITH_CREDENTIALS),
        ]
    });
    let other = target.unwrap();
    // A 401 there says why.
    case.bench.assert_failed(
        &case.url("/private-locked"),
        &[
            "401",
            &format!("at http://{}, where the source's username", other.addr),
        ],
    );
    assert_carries(&other.heads("/locked"), false, "another port, 401");
    case.assert_ok("/private");
    assert_carries(&case.server.heads("/private"), true, "the configured host");
    assert_carries(&other.heads("/feed"), false, "another port");
    // A redirect on the same host and port keeps them.
    case.assert_ok("/private-same");
    assert_carries(&case.server.heads("/private-feed"), true, "the same host");
    case.bench.report("http credentials and redirects", peak);
}

/// The feed a page advertises on another host is fetched without the page's
/// credentials.
#[test]
fn credentials_do_not_follow_discovery_to_another_host() {
    let mut target = None;
    let (case, peak) = case(|server, runtime| {
        let other = other(runtime, "/feed", "advertised");
        let page = format!(
            "<html><head><link rel=\"alternate\" type=\"application/rss+xml\" href=\"{}\"></head><body>news</body></html>",
            other.url("/feed")
        );
        server.body("/page-private", "text/html", page.into_bytes());
        target = Some(other);
        vec![(server.url("/page-private"), WITH_CREDENTIALS)]
    });
    let other = target.unwrap();
    case.assert_ok("/page-private");
    assert_carries(&case.server.heads("/page-private"), true, "the page");
    assert_carries(&other.heads("/feed"), false, "the advertised feed");
    case.bench.report("http credentials and discovery", peak);
}

/// Secrets written into source URLs (`?token=`, a source's own `secret_query`)
/// appear in no output, no metric label, no log line and no error message, even
/// where an error quotes the URL (a failed connection) or a redirect target.
#[test]
fn secrets_in_source_urls_are_never_shown() {
    const SECRETS: [&str; 4] = ["SECRETTOKEN1", "SECRETCODE2", "SECRETTOKEN3", "SECRETKEY4"];
    let (mut case, _) = case(|server, _| {
        server.body("/secret-feed", "application/rss+xml", healthy("secret"));
        server.redirect("/moving", "ftp://files.example/feed?api_key=SECRETKEY4");
        vec![
            (
                server.url("/secret-feed?token=SECRETTOKEN1&feed_code=SECRETCODE2&page=1"),
                "secret_query = [\"Feed_Code\"]",
            ),
            (
                "http://127.0.0.1:1/down?access_token=SECRETTOKEN3".to_string(),
                "",
            ),
            (server.url("/moving?api_key=SECRETKEY4"), ""),
        ]
    });
    case.bench.assert_sound("http", &SECRETS);
    case.bench
        .daemon
        .wait_for_body("/feed.xml", "secret healthy 3", FIRST_ROUND);
    let shown = case.url("/secret-feed?token=***&feed_code=***&page=1");
    assert_eq!(case.bench.status(&shown).status, Status::Ok);
    case.bench.assert_failed(
        "http://127.0.0.1:1/down?access_token=***",
        &["cannot reach the server"],
    );
    case.bench.assert_failed(
        &case.url("/moving?api_key=***"),
        &["ftp://files.example/feed?api_key=***"],
    );
    for path in [
        "/feed.xml",
        "/atom.xml",
        "/feed.json",
        "/opml",
        "/sources.json",
        "/metrics",
    ] {
        let body = case.bench.daemon.get(path);
        for secret in SECRETS {
            assert!(!body.contains(secret), "{path} leaks {secret}:\n{body}");
        }
    }
    assert!(
        case.bench
            .daemon
            .get("/feed.xml")
            .contains(&shown.replace('&', "&amp;"))
    );
    let log = case.bench.daemon.log();
    for secret in SECRETS {
        assert!(!log.contains(secret), "the log leaks {secret}:\n{log}");
    }
}
