//! Inputs the fuzz targets (`fuzz/`) and the property tests (`tests/properties.rs`)
//! found, kept as plain tests so they never come back.

use chrono_tz::Tz;
use tributary::ingest::normalize::{normalize_document, plain_text};
use tributary::ingest::parse::ParseError;
use url::Url;

/// parse_normalize: an XML declaration inside an item makes quick-xml (under
/// feed-rs) panic ("set_encoding() called after prefix buffer was drained"). The
/// panic is contained: the document is rejected, the poller goes on.
#[test]
fn an_xml_declaration_inside_an_item_is_rejected_not_a_crash() {
    let body = br#"<rss version="2.0"><channel><title>T</title><item><title>A</title><?xml version="1.0" encoding="windows-1251"?><link>https://a.example/1</link></item><item><title>B</title></item></channel></rss>"#;
    let url = Url::parse("https://a.example/feed").unwrap();
    match normalize_document(body, None, Some(&url), Tz::UTC) {
        Err(ParseError::Panicked(message)) => assert!(message.contains("encoding"), "{message}"),
        // What a fixed feed-rs would do instead.
        Err(ParseError::Invalid(_)) => {}
        Ok(document) => assert!(document.items.len() <= 2),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

/// properties: titles a publisher escaped more than once came out with entities or
/// tags in them ("&amp;", "<b>").
#[test]
fn titles_escaped_several_times_are_decoded_all_the_way() {
    assert_eq!(
        plain_text("Tom &amp;amp; Jerry").as_deref(),
        Some("Tom & Jerry")
    );
    assert_eq!(plain_text("&amp;amp;amp;").as_deref(), Some("&"));
    assert_eq!(
        plain_text("&amp;lt;b&amp;gt;Bold&amp;lt;/b&amp;gt; news").as_deref(),
        Some("Bold news")
    );
    assert_eq!(plain_text("&#60;/").as_deref(), Some("</"));
    // Text that only looks like markup stays as it is.
    assert_eq!(
        plain_text("a < b && c > d").as_deref(),
        Some("a < b && c > d")
    );
}
