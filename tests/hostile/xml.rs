//! Malicious and broken XML, one scenario each: an entity bomb, an external entity
//! naming a local file, nesting past and just under the parser's limit, a 50 MB
//! line, a truncated document, invalid UTF-8, control characters, a huge DOCTYPE.

use crate::server::Hostile;
use crate::{FIRST_ROUND, Scenario, healthy, rss, runtime, scenario, start};
use std::path::Path;
use tributary::ops::status::Status;

const POLL: &str = "concurrency = 4\nper_host = 4";

/// `document` (made in the daemon's directory) at `path`, polled next to the healthy
/// feed, and the checks every case shares, none of `secrets` served. Returns the
/// scenario and its peak RSS in kB.
fn case(path: &str, document: impl FnOnce(&Path) -> Vec<u8>, secrets: &[&str]) -> (Scenario, u64) {
    let mut case = scenario("xml", POLL, |server, _, dir| {
        server.body(path, "application/rss+xml", document(dir));
        vec![(server.url(path), "")]
    });
    let peak = case.bench.assert_sound("xml", secrets);
    (case, peak)
}

/// The outputs stay small; prints the scenario's time and memory.
fn finish(case: &Scenario, name: &str, peak: u64) {
    case.assert_outputs_small();
    case.bench.report(name, peak);
}

/// Billion laughs: ten levels of ten references each, a billion "lol"s if expanded.
fn billion_laughs() -> Vec<u8> {
    let mut doctype = String::from("<!ENTITY lol0 \"lol\">");
    for level in 1..=9 {
        let refs = format!("&lol{};", level - 1).repeat(10);
        doctype.push_str(&format!("<!ENTITY lol{level} \"{refs}\">"));
    }
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [{doctype}]>\n<rss version=\"2.0\"><channel><title>Laughs &lol9;</title><link>https://example.org/</link><description>&lol9;</description><item><title>laugh &lol9;</title><guid>laugh-1</guid><description>&lol9;</description></item></channel></rss>"
    )
    .into_bytes()
}

/// An external entity naming a local file, used in the title and the body.
fn external_entity(secret_path: &Path) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM \"file://{}\"><!ENTITY % pe SYSTEM \"file://{}\"> %pe;]>\n<rss version=\"2.0\"><channel><title>XXE &xxe;</title><link>https://example.org/</link><description>d</description><item><title>xxe item &xxe;</title><guid>xxe-1</guid><description>&lt;p&gt;&xxe;&lt;/p&gt;</description></item></channel></rss>",
        secret_path.display(),
        secret_path.display()
    )
    .into_bytes()
}

fn deep_nesting(depth: usize) -> Vec<u8> {
    let mut doc = String::from(
        "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>Deep</title><item><title>deep item</title><guid>deep-1</guid>",
    );
    doc.push_str(&"<x>".repeat(depth));
    doc.push_str(&"</x>".repeat(depth));
    doc.push_str("</item></channel></rss>");
    doc.into_bytes()
}

/// One line of `size` bytes: a few items and an unknown element holding the rest.
fn single_line(size: usize) -> Vec<u8> {
    let head = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>One line</title><link>https://example.org/</link><description>d</description><item><title>one-line item</title><guid>line-1</guid></item><padding>";
    let tail = "</padding></channel></rss>";
    let mut doc = Vec::with_capacity(size);
    doc.extend_from_slice(head.as_bytes());
    doc.resize(size - tail.len(), b'a');
    doc.extend_from_slice(tail.as_bytes());
    doc
}

/// A DOCTYPE whose internal subset declares `count` entities of 1 KB each.
fn huge_doctype(count: usize) -> Vec<u8> {
    let value = "v".repeat(1000);
    let mut doc = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [");
    for i in 0..count {
        doc.push_str(&format!("<!ENTITY e{i} \"{value}\">"));
    }
    doc.push_str("]>\n<rss version=\"2.0\"><channel><title>Doctype</title><link>https://example.org/</link><description>d</description><item><title>doctype item &e1;</title><guid>doctype-1</guid></item></channel></rss>");
    doc.into_bytes()
}

// Entity expansion is bounded and nothing is read from disk; what parses is
// published, with bad bytes as U+FFFD and control characters removed.

#[test]
fn billion_laughs_are_never_expanded() {
    let (case, peak) = case("/laughs", |_| billion_laughs(), &[]);
    case.assert_ok("/laughs");
    finish(&case, "xml billion laughs", peak);
}

#[test]
fn an_external_entity_reads_nothing_from_disk() {
    let secret = format!("XXE-SECRET-{}", std::process::id());
    let (case, peak) = case(
        "/xxe",
        |dir| {
            let secret_path = dir.join("secret.txt");
            std::fs::write(&secret_path, &secret).unwrap();
            external_entity(&secret_path)
        },
        &[&secret],
    );
    case.assert_ok("/xxe");
    finish(&case, "xml external entity", peak);
}

#[test]
fn nesting_past_the_limit_fails_the_source() {
    let (case, peak) = case("/deep", |_| deep_nesting(100_000), &[]);
    case.bench
        .assert_failed(&case.url("/deep"), &["deeper than"]);
    finish(&case, "xml deep nesting", peak);
}

/// Just under quick-xml's own limit of 65 535: what feed-rs builds must hold too.
#[test]
fn nesting_just_under_the_limit_is_read() {
    let (case, peak) = case("/deep-60k", |_| deep_nesting(60_000), &[]);
    case.assert_ok("/deep-60k");
    finish(&case, "xml nesting under the limit", peak);
}

#[test]
fn a_50_mb_line_over_the_cap_fails_the_source() {
    let (case, peak) = case("/huge-line", |_| single_line(50 << 20), &[]);
    case.bench
        .assert_failed(&case.url("/huge-line"), &["exceeds the cap"]);
    finish(&case, "xml 50 MB line", peak);
}

#[test]
fn a_truncated_document_fails_the_source() {
    let whole = healthy("truncated");
    let (case, peak) = case("/truncated", |_| whole[..whole.len() / 2].to_vec(), &[]);
    case.bench
        .assert_failed(&case.url("/truncated"), &["parse"]);
    finish(&case, "xml truncated", peak);
}

#[test]
fn invalid_utf8_is_read_as_replacement_characters() {
    let mut invalid = rss(
        "Invalid UTF-8",
        "<item><title>bad bytes TITLE</title><guid>utf8-1</guid><description>x BODY y</description></item>",
    );
    for marker in [&b"TITLE"[..], b"BODY"] {
        let at = invalid
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap();
        invalid.splice(at..at + marker.len(), [0xff, 0xfe, 0xc3, 0x28, 0x80]);
    }
    let (case, peak) = case("/invalid-utf8", |_| invalid, &[]);
    case.assert_ok("/invalid-utf8");
    case.bench
        .daemon
        .wait_for_body("/feed.xml", "bad bytes \u{fffd}", FIRST_ROUND);
    finish(&case, "xml invalid UTF-8", peak);
}

#[test]
fn control_characters_are_removed() {
    let control = rss(
        "Control \u{1}\u{7}",
        "<item><title>nul &#x0; bell \u{7} esc \u{1b} del \u{7f} ffff \u{fffe}</title><guid>ctl-1</guid><description>&#x1;&#x8;body\u{0}</description></item><item><title>second control item \u{1}</title><guid>ctl-2</guid></item>",
    );
    let (case, peak) = case("/control", |_| control, &[]);
    case.assert_ok("/control");
    assert_eq!(case.bench.status(&case.url("/control")).items, Some(2));
    case.bench
        .daemon
        .wait_for_body("/feed.xml", "second control item", FIRST_ROUND);
    finish(&case, "xml control characters", peak);
}

#[test]
fn a_huge_doctype_is_read_without_expanding_it() {
    let (case, peak) = case("/doctype", |_| huge_doctype(8_000), &[]);
    case.assert_ok("/doctype");
    finish(&case, "xml huge DOCTYPE", peak);
}

/// The 50 MB single-line document again, under a cap that lets it be parsed.
#[test]
fn a_50_mb_line_under_a_larger_cap_is_parsed() {
    let runtime = runtime();
    let server = Hostile::start(&runtime);
    server.body("/healthy", "application/rss+xml", healthy("big"));
    server.body("/huge-line", "application/rss+xml", single_line(50 << 20));
    let sources = [(server.url("/healthy"), ""), (server.url("/huge-line"), "")];
    let mut bench = start(
        tempfile::tempdir().unwrap(),
        "max_body_bytes = 67108864",
        &sources,
    );
    let peak = bench.assert_sound("big", &[]);
    let status = bench.status(&server.url("/huge-line"));
    assert_eq!(status.status, Status::Ok, "{status:?}");
    bench
        .daemon
        .wait_for_body("/feed.xml", "one-line item", FIRST_ROUND);
    bench.report("50 MB single line, parsed", peak);
}

/// A document that parses but whose entries the parser cannot read (items outside
/// the RSS 2.0 channel) fails its source with a reason on /sources and
/// /sources.json, instead of a silent "ok" with nothing; a feed that truly has no
/// entries stays ok.
#[test]
fn entries_that_cannot_be_read_fail_the_source() {
    // Items in a namespace that is not RSS's: the parser reads none of them.
    let lost = String::from_utf8(rss("Lost items", "")).unwrap().replace(
        "</channel></rss>",
        "<x:item xmlns:x=\"http://example.org/\"><x:title>lost one</x:title></x:item><x:item xmlns:x=\"http://example.org/\"><x:title>lost two</x:title></x:item></channel></rss>",
    );
    let mut case = scenario("lost", POLL, |server, _, _| {
        server.body("/lost", "application/rss+xml", lost.into_bytes());
        server.body("/empty", "application/rss+xml", rss("Nothing yet", ""));
        vec![(server.url("/lost"), ""), (server.url("/empty"), "")]
    });
    let peak = case.bench.assert_sound("lost", &[]);
    case.bench.assert_failed(
        &case.url("/lost"),
        &["no entries could be read", "2 <item> elements"],
    );
    case.assert_ok("/empty");
    let page = case.bench.daemon.get("/sources");
    assert!(
        page.contains("no entries could be read, yet the document holds 2 &lt;item&gt; elements"),
        "{page}"
    );
    finish(&case, "xml entries lost", peak);
}
