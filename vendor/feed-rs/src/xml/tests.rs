use std::error::Error;
use std::io::BufRead;

use crate::util::test;

use super::*;

type TestResult = std::result::Result<(), Box<dyn Error>>;

fn handle_book<R: BufRead>(book: Element<R>) -> TestResult {
    // Iterate over the children of the book
    let mut count = 0;
    for child in book.children() {
        let child = child?;
        match child.name.as_str() {
            "author" => {
                count += 1;
                assert_eq!(child.child_as_text().unwrap(), "Gambardella, Matthew");
            }
            "title" => {
                count += 1;
                assert_eq!(child.child_as_text().unwrap(), "XML Developer's Guide");
            }
            "nest1" => {
                handle_nest1(child)?;
            }
            "empty1" | "empty2" => {
                assert!(child.child_as_text().is_none());
            }
            _ => panic!("Unexpected child node: {}", child.name),
        }
    }

    // Should have found two elements
    assert_eq!(count, 2);

    Ok(())
}

fn handle_catalog<R: BufRead>(catalog: Element<R>) -> TestResult {
    // Iterate over the children of the catalog
    let mut count = 0;
    for child in catalog.children() {
        let child = child?;
        // First child should be book
        assert_eq!(child.name, "book");

        // Should have an id attribute
        assert!(child.attributes.iter().any(|attr| &attr.name == "id" && &attr.value == "bk101"));

        // Should only have a single child at this level
        count += 1;

        // Handle the book
        handle_book(child)?;
    }
    assert_eq!(count, 1);

    Ok(())
}

fn handle_nest1<R: BufRead>(nest1: Element<R>) -> TestResult {
    // Should have a single child called "nest2"
    let mut count = 0;
    for child in nest1.children() {
        let child = child?;
        // First child should be nest2
        assert_eq!(child.name, "nest2");

        // It should have the expected text
        assert_eq!(child.child_as_text().unwrap(), "Nested");

        // Should only have a single child at this level
        count += 1;
    }
    assert_eq!(count, 1);

    Ok(())
}

#[test]
fn test_iterate_stream() -> TestResult {
    let test_data = test::fixture_as_string("xml/xml_sample_1.xml");

    // Root element should be "catalog"
    let source = ElementSource::new(test_data.as_bytes(), None)?;
    let catalog = source.root()?.unwrap();
    assert_eq!(catalog.name, "catalog");
    handle_catalog(catalog)?;

    Ok(())
}

// TODO expand test coverage (zero children, empty elements etc)
#[test]
fn test_children_as_string() -> TestResult {
    let test_data = test::fixture_as_string("xml/xml_sample_2.xml");

    // Root element should be "catalog"
    let source = ElementSource::new(test_data.as_bytes(), None)?;
    let catalog = source.root()?.unwrap();
    assert_eq!(catalog.name, "catalog");

    // Next element should be "book"
    let mut children = catalog.children();
    let book = children.next().unwrap()?;
    assert_eq!(book.name, "book");
    let expected = "\n        ";
    assert_eq!(book.child_as_text().unwrap(), expected);

    // Next element should be "content:encoded"
    let encoded = children.next().unwrap()?;
    assert_eq!(NS::Content, encoded.namespace);
    assert_eq!(encoded.name, "encoded");
    let text = encoded.child_as_text().unwrap();
    assert_eq!(text, "<p>10 km, 21.9072&deg; East, 37.102&deg; North. </p>");

    Ok(())
}

// Verifies the XML decoder handles the various encodings detailed in the RSS2 best practices guide (https://www.rssboard.org/rss-profile#data-types-characterdata)
#[test]
fn test_rss_decoding() -> TestResult {
    let tests = vec![
        ("<title>AT&#x26;T</title>", "AT&T"),
        ("<title>Bill &#x26; Ted's Excellent Adventure</title>", "Bill & Ted's Excellent Adventure"),
        ("<title>The &#x26;amp; entity</title>", "The &amp; entity"),
        ("<title>I &#x3C;3 Phil Ringnalda</title>", "I <3 Phil Ringnalda"),
        ("<title>A &#x3C; B</title>", "A < B"),
        ("<title>A&#x3C;B</title>", "A<B"),
        ("<title>Nice &#x3C;gorilla&#x3E;, what's he weigh?</title>", "Nice <gorilla>, what's he weigh?"),
    ];
    for (xml, expected) in tests {
        let source = ElementSource::new(xml.as_bytes(), None)?;
        let title = source.root()?.unwrap();
        let parsed = title.child_as_text().unwrap();
        assert_eq!(expected, parsed);
    }

    Ok(())
}

fn assert_title_bases<R: BufRead>(feed: Element<R>, expected: Vec<&str>) -> TestResult {
    // Find the actual title bases
    let mut title_bases = Vec::new();
    for entry in feed.children() {
        let entry = entry?;
        for title in entry.children() {
            let title = title?;
            title_bases.push(title.xml_base.unwrap());
        }
    }

    // Verify the are as we expect
    let expected = expected.iter().map(|uri| Url::parse(uri).unwrap()).collect::<Vec<Url>>();
    assert_eq!(expected, title_bases);

    Ok(())
}

// Verifies the XML parser handles the xml:base schema
#[test]
fn test_xml_base() -> TestResult {
    let xml = r#"
        <feed version="0.3" xml:base="http://1.example.com/">
        <entry>
        <title type="application/xhtml+xml" xml:base="test/"><div xmlns="http://www.w3.org/1999/xhtml">Example <a href="test.html">test</a></div></title>
        </entry>
        <entry xml:base="http://2.example.com/">
        <title type="application/xhtml+xml" xml:base="test1/test2"><div xmlns="http://www.w3.org/1999/xhtml">Example <a href="test.html">test</a></div></title>
        </entry>
        <entry xml:base="http://3.example.com/">
        <title type="application/xhtml+xml" xml:base="/test3"><div xmlns="http://www.w3.org/1999/xhtml">Example <a href="test.html">test</a></div></title>
        </entry>
        </feed>
    "#;

    let source = ElementSource::new(xml.as_bytes(), None)?;
    let feed = source.root()?.unwrap();
    assert_eq!(&Url::parse("http://1.example.com/")?, feed.xml_base.as_ref().unwrap());

    assert_title_bases(
        feed,
        vec!["http://1.example.com/test/", "http://2.example.com/test1/test2", "http://3.example.com/test3"],
    )?;

    Ok(())
}

// Verifies the XML parser handles the xml:base schema
#[test]
fn test_xml_base_header() -> TestResult {
    let xml = r#"
        <feed version="0.3" xmlns="http://purl.org/atom/ns#" xml:base="feed/base/">
        <entry>
          <title type="application/xhtml+xml" xml:base="../"><div xmlns="http://www.w3.org/1999/xhtml">Example <a href="test.html">test</a></div></title>
        </entry>
        <entry xml:base="/feed2/entry/base/">
          <title type="application/xhtml+xml" xml:base="../"><div xmlns="http://www.w3.org/1999/xhtml">Example <a href="test.html">test</a></div></title>
        </entry>
        </feed>
    "#;

    let source = ElementSource::new(xml.as_bytes(), Some("http://example.com"))?;
    let feed = source.root()?.unwrap();
    assert_eq!(&Url::parse("http://example.com/feed/base/")?, feed.xml_base.as_ref().unwrap());

    assert_title_bases(feed, vec!["http://example.com/feed/", "http://example.com/feed2/entry/"])?;

    Ok(())
}

// Verifies the XML parser handles the xml:base schema
#[test]
fn test_xml_unescape_attrib() -> TestResult {
    let xml = r#"
        <feed xmlns="http://www.w3.org/2005/Atom">
            <link rel="self"
                  href="https://www.reddit.com/search.rss?q=site%3Akevincox.ca&amp;restrict_sr=&amp;sort=new&amp;t=all"
                  type="application/atom+xml"/>
        </feed>
    "#;

    let source = ElementSource::new(xml.as_bytes(), None)?;
    let root = source.root()?.unwrap();
    let link = root.children().next().unwrap()?;
    let href = link.attributes.iter().find(|a| a.name == "href").unwrap();
    assert_eq!(href.value, "https://www.reddit.com/search.rss?q=site%3Akevincox.ca&restrict_sr=&sort=new&t=all");

    Ok(())
}

// Verifies decoding of ISO 8859 content works correctly
#[test]
fn test_iso8859_decode() -> TestResult {
    let xml = test::fixture_as_raw("xml/xml_iso8859.xml");
    let source = ElementSource::new(xml.as_slice(), None)?;
    let root = source.root()?.unwrap();
    let item = root.children().next().unwrap()?;

    let mut elements = item.children();

    let title = elements.next().unwrap()?.child_as_text().unwrap();
    assert_eq!(title, "Digitalministerium: Neue Glasfaserförderung mit Schnellkasse");

    let expected = "Ab April soll es wieder Förderung für den Ausbau von Glasfaser geben.";

    let description = elements.next().unwrap()?.child_as_text().unwrap();
    assert_eq!(description, expected);

    let cdata = elements.next().unwrap()?.child_as_text().unwrap();
    assert_eq!(cdata, expected);

    // The nested XML (or HTML in feeds) breaks the decoding
    let nested = elements.next().unwrap()?.child_as_text().unwrap();
    assert_eq!(nested, format!("<p>{}</p>", expected));

    Ok(())
}

// Verifies inline markup is serialized as it was written: attribute values escaped again, namespace declarations
// dropped with the prefixes they bind, text escaped
#[test]
fn test_children_as_string_escapes_markup() -> TestResult {
    let xml = r#"<content><xhtml:div xmlns:xhtml="http://www.w3.org/1999/xhtml"><xhtml:p title="&quot;a&quot; &lt; b &amp; c">x &lt; y &gt; z &amp; w</xhtml:p><p xmlns="http://www.w3.org/1999/xhtml">&#169;</p></xhtml:div></content>"#;

    let source = ElementSource::new(xml.as_bytes(), None)?;
    let content = source.root()?.unwrap();
    let markup = content.children_as_string()?.unwrap();
    assert_eq!(
        markup,
        r#"<div><p title="&quot;a&quot; &lt; b &amp; c">x &lt; y &gt; z &amp; w</p><p>©</p></div>"#
    );

    Ok(())
}

// A malformed xml:base is ignored: the element keeps its parent's base, and the document is read
#[test]
fn test_malformed_xml_base_is_ignored() -> TestResult {
    let xml = r#"<feed xml:base="http://example.com/feed/"><entry xml:base="http://[bad/"><title>t</title></entry></feed>"#;

    let source = ElementSource::new(xml.as_bytes(), None)?;
    let feed = source.root()?.unwrap();
    let entry = feed.children().next().unwrap()?;
    assert_eq!(entry.xml_base.as_ref().map(Url::as_str), Some("http://example.com/feed/"));
    let title = entry.children().next().unwrap()?;
    assert_eq!(title.xml_base.as_ref().map(Url::as_str), Some("http://example.com/feed/"));

    Ok(())
}

// The titles of the items of an RSS 2.0 document, as the parser reads them
fn item_titles(xml: &str) -> Vec<String> {
    let feed = crate::parser::parse(xml.as_bytes()).unwrap();
    feed.entries.into_iter().map(|e| e.title.map(|t| t.content).unwrap_or_default()).collect()
}

// Verifies that entities declared in the internal subset are replaced by their text, in text and attributes, that
// HTML named entities are read although XML does not declare them, and that unknown entities are kept as written
#[test]
fn test_entities_declared_html_and_unknown() -> TestResult {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY id "tag:example.org,2026:">
  <!ENTITY nested "&id;7 &amp; &#233;">
  <!-- <!ENTITY id "not this one"> -->
  <!ENTITY id "a later declaration does not bind">
]>
<rss version="2.0"><channel><title>T&nbsp;&eacute;&mdash;&alpha;&amacr;&NotEqualTilde;&unknown;&nbs;</title>
<item><title>&nested;</title><description>don&#146;t &#x80;&#129;</description><guid>&id;1</guid><link>https://example.org/?a=1&amp;b=&id;</link></item>
</channel></rss>"#;
    let feed = crate::parser::parse(xml.as_bytes())?;
    assert_eq!(feed.title.unwrap().content, "T\u{a0}é—αā\u{2242}\u{338}&unknown;&nbs;");
    let entry = &feed.entries[0];
    assert_eq!(entry.id, "tag:example.org,2026:1");
    assert_eq!(entry.title.as_ref().unwrap().content, "tag:example.org,2026:7 & é");
    // References to C1 controls name the windows-1252 characters (0x81 has none)
    assert_eq!(entry.summary.as_ref().unwrap().content, "don\u{2019}t \u{20ac}\u{81}");
    assert_eq!(entry.links[0].href, "https://example.org/?a=1&b=tag:example.org,2026:");

    // Attributes too: declared, HTML and unknown entities, and an `&` that starts no reference
    let xml = r#"<!DOCTYPE feed [<!ENTITY base "https://example.org">]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id><link href="&base;/a?x=1&y=&eacute;&zz;"/></entry></feed>"#;
    let feed = crate::parser::parse(xml.as_bytes())?;
    assert_eq!(feed.entries[0].links[0].href, "https://example.org/a?x=1&y=%C3%A9&zz;");
    Ok(())
}

// Verifies that entity expansion is bounded (billion laughs, entities referring to themselves, entities expanding to
// nothing) and that external entities are never read: their references stay as written
#[test]
fn test_entities_hostile() -> TestResult {
    let mut subset = String::from("<!ENTITY lol0 \"lol\"><!ENTITY e0 \"\">");
    for level in 1..=12 {
        subset.push_str(&format!("<!ENTITY lol{level} \"{}\">", format!("&lol{};", level - 1).repeat(10)));
        subset.push_str(&format!("<!ENTITY e{level} \"{}\">", format!("&e{};", level - 1).repeat(10)));
    }
    subset.push_str("<!ENTITY self \"a&self;\"><!ENTITY ping \"&pong;\"><!ENTITY pong \"&ping;\">");
    subset.push_str("<!ENTITY xxe SYSTEM \"file:///etc/passwd\"><!ENTITY pub PUBLIC \"-//X//\" \"http://x.invalid/\">");
    subset.push_str("<!ENTITY % pe \"<!ENTITY injected 'x'>\"> %pe;");
    let xml = format!(
        "<!DOCTYPE rss [{subset}]><rss version=\"2.0\"><channel><title>&lol2;</title>\
         <item><title>&lol12;</title></item><item><title>&e12;|&self;|&ping;</title></item>\
         <item><title>&xxe;&pub;&injected;</title></item><item><title>&lol1;</title></item></channel></rss>"
    );
    let started = std::time::Instant::now();
    let feed = crate::parser::parse(xml.as_bytes())?;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(feed.title.unwrap().content, "lol".repeat(100));
    let titles: Vec<_> = feed.entries.iter().map(|e| e.title.as_ref().unwrap().content.clone()).collect();
    assert_eq!(titles[0], "&lol12;");
    assert_eq!(titles[1], "&e12;|&self;|&ping;");
    assert_eq!(titles[2], "&xxe;&pub;&injected;");
    // Once a limit is reached the document expands no more entities
    assert_eq!(titles[3], "&lol1;");
    Ok(())
}

// Verifies that ill-formed documents are read as far as they go: a fault costs the element it is in at most
#[test]
fn test_ill_formed_documents_are_recovered() {
    let head = r#"<rss version="2.0"><channel><title>T</title><item><title>one</title></item>"#;
    let tail = r#"<item><title>three</title></item></channel></rss>"#;
    for (fault, expected) in [
        // A mismatched end tag inside an item
        ("<item><title>two</titel></item>", vec!["one", "two", "three"]),
        // An end tag that closes nothing open
        ("<item><title>two</title></p></b></item>", vec!["one", "two", "three"]),
        // An element left unclosed inside an item
        ("<item><title>two</title><p>open</item>", vec!["one", "two", "three"]),
        // An item left unclosed: the next one closes it
        ("<item><title>two</title>", vec!["one", "two", "three"]),
        // An undeclared prefix
        (
            "<item><title>two</title><itunes:subtitle>s</itunes:subtitle><x:y>z</x:y></item>",
            vec!["one", "two", "three"],
        ),
        // A bare `&` in text, and HTML end tags with another case
        (
            "<item><title>AT&T</title><description><P>x</p></description></item>",
            vec!["one", "AT&T", "three"],
        ),
        // `<` followed by no name
        ("<item><title>two</title><description>a < b</description></item>", vec!["one", "two", "three"]),
        // A stray DOCTYPE inside the root
        ("<item><title>two</title><!DOCTYPE html></item>", vec!["one", "two", "three"]),
    ] {
        let xml = format!("{head}{fault}{tail}");
        assert_eq!(item_titles(&xml), expected, "{xml}");
    }

    // A misspelt end tag ends the element holding only text: what follows is not lost inside it
    let xml = format!("{head}<item><title>two</titel><link>https://example.org/2</link></item>{tail}");
    let feed = crate::parser::parse(xml.as_bytes()).unwrap();
    assert_eq!(feed.entries[1].links[0].href, "https://example.org/2");

    // The root and channel never closed, and garbage after the root
    assert_eq!(item_titles(&format!("{head}<item><title>two</title></item>")), vec!["one", "two"]);
    assert_eq!(item_titles(&format!("{head}{tail}<garbage>&x</garbage> trailing </rss>")), vec!["one", "three"]);

    // A stray end tag does not unbind the namespaces declared outside it
    let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id><title>a</title></div></entry>
        <entry><id>2</id><title>b</title></entry></feed>"#;
    let feed = crate::parser::parse(xml.as_bytes()).unwrap();
    let titles: Vec<_> = feed.entries.iter().map(|e| e.title.as_ref().unwrap().content.clone()).collect();
    assert_eq!(titles, ["a", "b"]);

    // A document cut inside a tag is still an error
    assert!(crate::parser::parse(&format!("{head}<item><tit").as_bytes()[..]).is_err());
}
