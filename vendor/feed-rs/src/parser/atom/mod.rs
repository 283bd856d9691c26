use std::io::BufRead;

use mediatype::{MediaTypeBuf, names};

use crate::model::LinkTarget::CommentsFeed;
use crate::model::{Category, Content, Entry, Feed, FeedType, Generator, Image, Link, Person, Text};
use crate::parser::util;
use crate::parser::util::if_some_then;
use crate::parser::{ParseFeedError, ParseFeedResult};
use crate::parser::{Parser, common};
use crate::xml::{Element, NS};
use url::Url;

#[cfg(test)]
mod tests;

/// Parses an Atom feed into our model
///
/// Atom 0.3 (`http://purl.org/atom/ns#`) is read by the same code: its elements are Atom 1.0's under older names
/// (`tagline`, `copyright`, `modified`, `issued`, `created`, `url`) and its text constructs say how they are
/// carried with `mode` and a MIME `type` (see [`Carriage`]).
///
/// A fault in one element (an unknown content type, an empty content, a broken media element) costs that element,
/// and a fault in an entry costs that entry: only a document that is not well-formed XML fails as a whole.
pub(crate) fn parse_feed<R: BufRead>(parser: &Parser, root: Element<R>) -> ParseFeedResult<Feed> {
    let mut feed = Feed::new(FeedType::Atom);

    // Extract top-level info
    feed.language = handle_language_attr(&root);

    for child in root.children() {
        let child = child?;
        match child.ns_and_tag() {
            (NS::Atom, "id") => if_some_then(child.child_as_text(), |id| feed.id = id),

            (NS::Atom, "title") => if_some_then(lenient(handle_text(child))?, |text| feed.title = Some(text)),

            (NS::Atom, "updated") | (NS::Atom, "modified") => if_some_then(child.child_as_text(), |text| feed.updated = parser.parse_timestamp(&text)),

            (NS::Atom, "published") | (NS::Atom, "issued") => if_some_then(child.child_as_text(), |text| feed.published = parser.parse_timestamp(&text)),

            (NS::Atom, "author") => if_some_then(handle_person("author", child)?, |person| feed.authors.push(person)),

            (NS::Atom, "link") => if_some_then(handle_link(child), |link| feed.links.push(link)),

            (NS::Atom, "category") => if_some_then(handle_category(child), |category| feed.categories.push(category)),

            (NS::Atom, "contributor") => if_some_then(handle_person("contributor", child)?, |person| feed.contributors.push(person)),

            (NS::Atom, "generator") => feed.generator = handle_generator(child),

            (NS::Atom, "icon") => feed.icon = handle_image(child),

            (NS::Atom, "logo") => feed.logo = handle_image(child),

            (NS::Atom, "rights") | (NS::Atom, "copyright") => if_some_then(lenient(handle_text(child))?, |text| feed.rights = Some(text)),

            (NS::Atom, "subtitle") | (NS::Atom, "tagline") => if_some_then(lenient(handle_text(child))?, |text| feed.description = Some(text)),

            (NS::Atom, "entry") => if_some_then(lenient(handle_entry(parser, child))?, |entry| feed.entries.push(entry)),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    Ok(feed)
}

// Keeps the error of a document that cannot be read further (XML, I/O) and drops the fault of one element, whose
// reading is then skipped: the element iterators resume at the next sibling whatever was consumed of this one.
fn lenient<T>(result: ParseFeedResult<Option<T>>) -> ParseFeedResult<Option<T>> {
    match result {
        Err(ParseFeedError::ParseError(_)) => Ok(None),
        other => other,
    }
}

/// Parses an Atom entry into our model
///
/// Note that the entry is wrapped in an empty Feed to keep the API consistent
pub(crate) fn parse_entry<R: BufRead>(parser: &Parser, root: Element<R>) -> ParseFeedResult<Feed> {
    let mut feed = Feed::new(FeedType::Atom);

    if_some_then(handle_entry(parser, root)?, |entry| feed.entries.push(entry));

    Ok(feed)
}

// The base URI in effect at an element: its xml:base resolved against those of its ancestors, or, when no
// absolute base is known, its own xml:base as written (a relative reference the caller may resolve).
fn base_of<R: BufRead>(element: &Element<R>) -> Option<String> {
    element.xml_base.as_ref().map(Url::to_string).or_else(|| element.attr_value("xml:base"))
}

// Handles an Atom <category>
fn handle_category<R: BufRead>(element: Element<R>) -> Option<Category> {
    // Always need a term
    if let Some(term) = element.attr_value("term") {
        let mut category = Category::new(&term);

        for attr in element.attributes {
            match attr.name.as_str() {
                "scheme" => category.scheme = Some(attr.value.clone()),
                "label" => category.label = Some(attr.value.clone()),

                // Nothing required for unknown attributes
                _ => {}
            }
        }

        Some(category)
    } else {
        // A missing category isn't fatal
        None
    }
}

// Handles an Atom <content> element
//
// Never fails for what the element holds: an empty content is `None`, an unknown type is read as text, content
// with a `src` keeps the link and ignores any body.
fn handle_content<R: BufRead>(element: Element<R>) -> ParseFeedResult<Option<Content>> {
    read_content(element, true)
}

// Reads a content element; `alternatives` says whether multipart/alternative is expanded (only at the top, so a
// hostile nesting of alternatives cannot recurse without bound)
fn read_content<R: BufRead>(element: Element<R>, alternatives: bool) -> ParseFeedResult<Option<Content>> {
    // Extract the content type so we can parse the body
    let content_type = element.attr_value("type");

    if let Some(src) = element.attr_value("src").filter(|src| !src.trim().is_empty()) {
        // > If the "src" attribute is present, the "type" attribute SHOULD be provided and MUST be a MIME media type, rather than "text", "html", or "xhtml".
        // According to the spec the content type only SHOULD be provided, but `Content` has a media type as required, so a missing or unusable
        // one is taken as text/html, probably the most common. `body` will be `None` so we are just providing a content type for nothing.
        // > If the "src" attribute is present, atom:content MUST be empty: a body is ignored.
        let mime = content_type
            .as_deref()
            .and_then(|ct| ct.trim().parse::<MediaTypeBuf>().ok())
            .unwrap_or_else(|| MediaTypeBuf::new(names::TEXT, names::HTML));
        let mut link = Link::new(src, element.xml_base.as_ref());
        link.media_type = content_type;
        let content = Content {
            body: None,
            content_type: mime,
            src: Some(link),
            ..Default::default()
        };
        return Ok(Some(content));
    }

    let carriage = Carriage::of(content_type.as_deref(), element.attr_value("mode").as_deref());
    if let Carriage::Alternatives = carriage {
        if !alternatives {
            return Ok(None);
        }
        // Atom 0.3 multipart/alternative: one content element per alternative, of which the richest is kept
        let mut best: Option<Content> = None;
        for child in element.children() {
            let child = child?;
            if child.name == "content" {
                if let Some(content) = lenient(read_content(child, false))? {
                    if best.as_ref().is_none_or(|b| richness(&content.content_type) > richness(&b.content_type)) {
                        best = Some(content);
                    }
                }
            }
        }
        return Ok(best);
    }

    let text = read_text(&element, carriage)?;
    if text.content.is_empty() {
        return Ok(None);
    }
    let content = Content {
        body: Some(text.content),
        content_type: text.content_type,
        ..Default::default()
    };
    Ok(Some(content))
}

// How much of a document an alternative of multipart/alternative content carries: HTML, then XHTML, then any other
// type, then plain text
fn richness(mime: &MediaTypeBuf) -> u8 {
    let (ty, subty) = (mime.ty(), mime.subty());
    if ty == names::TEXT && subty == names::HTML {
        3
    } else if subty == names::XHTML || mime.suffix() == Some(names::XML) {
        2
    } else if ty == names::TEXT && subty == names::PLAIN {
        0
    } else {
        1
    }
}

// Handles an Atom <entry>
fn handle_entry<R: BufRead>(parser: &Parser, element: Element<R>) -> ParseFeedResult<Option<Entry>> {
    // Note we have started a new MediaRSS entry scope
    parser.mediarss.entry_begin();

    // Parse the entry
    let mut entry = Entry::default();
    let read = read_entry(parser, &element, &mut entry);

    // Handle completion of an entry, potentially emitting media objects if we've found them along the way
    // (also after a fault, so the next entry starts a fresh scope)
    parser.mediarss.entry_end(&mut entry);
    read?;

    Ok(Some(entry))
}

// Reads the children of an Atom <entry>
fn read_entry<R: BufRead>(parser: &Parser, element: &Element<R>, entry: &mut Entry) -> ParseFeedResult<()> {
    let mut created = None;
    let mut content_base = None;
    let mut summary_base = None;
    for child in element.children() {
        let child = child?;
        match child.ns_and_tag() {
            // Extract the fields from the spec
            (NS::Atom, "id") => if_some_then(child.child_as_text(), |id| entry.id = id),

            (NS::Atom, "title") => if_some_then(lenient(handle_text(child))?, |text| entry.title = Some(text)),

            (NS::Atom, "updated") | (NS::Atom, "modified") => if_some_then(child.child_as_text(), |text| entry.updated = parser.parse_timestamp(&text)),

            (NS::Atom, "author") => if_some_then(handle_person("author", child)?, |person| entry.authors.push(person)),

            (NS::Atom, "content") => {
                content_base = base_of(&child);
                entry.language = handle_language_attr(&child);
                if_some_then(lenient(handle_content(child))?, |content| entry.content = Some(content));
            }

            (NS::Atom, "link") => if_some_then(handle_link(child), |link| entry.links.push(link)),

            (NS::Atom, "summary") => {
                summary_base = base_of(&child);
                if_some_then(lenient(handle_text(child))?, |text| entry.summary = Some(text));
            }

            (NS::Atom, "category") => if_some_then(handle_category(child), |category| entry.categories.push(category)),

            (NS::Atom, "contributor") => if_some_then(handle_person("contributor", child)?, |person| entry.contributors.push(person)),

            // Some feeds have "pubDate" instead of "published", Atom 0.3 has "issued"
            (NS::Atom, "published") | (NS::Atom, "pubDate") | (NS::Atom, "issued") => {
                if_some_then(child.child_as_text(), |text| entry.published = parser.parse_timestamp(&text))
            }

            // Atom 0.3: when the entry was created, which stands for its publication when it has no "issued"
            (NS::Atom, "created") => if_some_then(child.child_as_text(), |text| created = parser.parse_timestamp(&text)),

            (NS::Atom, "rights") | (NS::Atom, "copyright") => if_some_then(lenient(handle_text(child))?, |text| entry.rights = Some(text)),

            // According to https://validator.w3.org/feed/docs/warning/CommentRSS.html we need to support both
            (NS::WellFormedWebComments, "commentRss") | (NS::WellFormedWebComments, "commentRSS") => {
                if_some_then(common::handle_link(Some(CommentsFeed), child), |link| entry.links.push(link))
            }

            // Handle MediaRSS elements
            (NS::MediaRSS, _) => {
                lenient(parser.mediarss.handle_entry_mediarss_element(child).map(Some))?;
            }

            // Nothing required for unknown elements
            _ => {}
        }
    }

    if entry.published.is_none() {
        entry.published = created;
    }

    // Relative references in the content resolve against the base in effect there (xml:base is inherited from the
    // feed and the entry, and may be set on the content itself), else against that of the summary or the entry
    entry.base = content_base.or(summary_base).or_else(|| base_of(element));

    Ok(())
}

// Handles an Atom <generator>
fn handle_generator<R: BufRead>(element: Element<R>) -> Option<Generator> {
    element.child_as_text().map(|content| {
        let mut generator = Generator::new(&content);

        for attr in element.attributes {
            match attr.name.as_str() {
                // Atom 0.3 names it "url"
                "uri" | "url" => generator.uri = Some(attr.value.clone()),
                "version" => generator.version = Some(attr.value.clone()),
                // Nothing required for unknown attributes
                _ => {}
            }
        }

        generator
    })
}

// Handles an Atom <icon> or <logo>
fn handle_image<R: BufRead>(element: Element<R>) -> Option<Image> {
    element
        .child_as_text()
        .map(|raw_uri| {
            util::parse_uri(&raw_uri, element.xml_base.as_ref())
                .map(|parsed| parsed.to_string())
                .unwrap_or(raw_uri)
        })
        .map(Image::new)
}

// Handles "xml:lang" as an attribute (e.g. in Atom feeds); "en_US" is the language tag "en-US", as feedparser reads it
fn handle_language_attr<R: BufRead>(element: &Element<R>) -> Option<String> {
    element.attr_value("xml:lang").map(|lang| lang.trim().replace('_', "-"))
}

// Handles an Atom <link>
//
// A link without a target (no href, or an empty one outside any xml:base) is no link: dropped, so it cannot stand in
// for the real one.
// Some feeds write the target as the element's text, as in RSS; it is taken when there is no href.
pub(crate) fn handle_link<R: BufRead>(element: Element<R>) -> Option<Link> {
    let href = element.attr_value("href").or_else(|| element.child_as_text())?;
    // An empty reference is the base itself (RFC 3986); without a base it names nothing
    let mut link = Link::new(href, element.xml_base.as_ref());
    if link.href.is_empty() {
        return None;
    }

    for attr in element.attributes {
        match attr.name.as_str() {
            "rel" => link.rel = Some(attr.value.clone()),
            "type" => link.media_type = Some(attr.value.clone()),
            "hreflang" => link.href_lang = Some(attr.value.clone()),
            "title" => link.title = Some(attr.value.clone()),
            "length" => link.length = attr.value.trim().parse::<u64>().ok(),

            // Nothing required for unrecognised attributes
            _ => {}
        }
    }

    // Default "rel" to "alternate" if not set
    if link.rel.as_deref().is_none_or(|rel| rel.trim().is_empty()) {
        link.rel = Some(String::from("alternate"));
    }

    Some(link)
}

// Handles an Atom <author> or <contributor>
fn handle_person<R: BufRead>(role: &str, element: Element<R>) -> ParseFeedResult<Option<Person>> {
    let mut maybe_name = None;
    let mut maybe_uri = None;
    let mut maybe_email = None;
    for child in element.children() {
        let child = child?;
        let tag_name = child.name.as_str();
        let child_text = child.child_as_text().map(|text| text.trim().to_string()).filter(|text| !text.is_empty());
        match (tag_name, child_text) {
            // Extract the fields from the spec
            ("name", Some(name)) => maybe_name = Some(name),
            // Atom 0.3 names the URI "url" (and some feeds "homepage")
            ("uri", Some(uri)) | ("url", Some(uri)) | ("homepage", Some(uri)) => {
                maybe_uri = Some(util::parse_uri(&uri, child.xml_base.as_ref()).map_or(uri, |parsed| parsed.to_string()))
            }
            ("email", Some(email)) => maybe_email = Some(email),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    // Need a name, an email or a URI
    let person = if maybe_name.is_some() || maybe_email.is_some() || maybe_uri.is_some() {
        let mut person = Person::empty();
        person.name = maybe_name;
        person.email = maybe_email;
        person.role = Some(role.into());
        person.uri = maybe_uri;
        Some(person)
    } else {
        None
    };

    Ok(person)
}

// Directly handles an Atom <title>, <summary>, <rights> or <subtitle> element (and Atom 0.3's <tagline>, <copyright>)
//
// The type is never an error: an unknown, empty or odd one (`type=""`, `type="html "`, `type="TEXT"`) is read as
// what it most likely is (see `Carriage::of`). Only XML that cannot be read fails.
pub(crate) fn handle_text<R: BufRead>(element: Element<R>) -> ParseFeedResult<Option<Text>> {
    let carriage = Carriage::of(element.attr_value("type").as_deref(), element.attr_value("mode").as_deref());
    Ok(Some(read_text(&element, carriage)?))
}

/// How a text construct or a content element carries its text, from its `type` (Atom 1.0's `text`, `html`, `xhtml`,
/// or a MIME type as in Atom 0.3 and Atom 1.0 content) and Atom 0.3's `mode` (`escaped`, `xml`, `base64`).
#[derive(Debug, PartialEq)]
enum Carriage {
    /// Text of this type, escaped once by XML (`text`, `text/plain`, other `text/*` types)
    Text(MediaTypeBuf),
    /// Markup of this type (HTML, or XHTML in Atom 0.3's `mode="escaped"`), escaped once by XML
    Escaped(MediaTypeBuf),
    /// Atom 1.0 `xhtml`: XHTML inline, inside a wrapper `div` that is not part of the text
    Xhtml,
    /// An XML document of this type inline (`+xml` and `/xml` types, Atom 0.3's `mode="xml"`), kept whole
    Xml(MediaTypeBuf),
    /// A document of this type, base64-encoded (any other type, Atom 0.3's `mode="base64"`)
    Base64(MediaTypeBuf),
    /// Atom 0.3 `multipart/alternative` content: one content element per alternative
    Alternatives,
}

impl Carriage {
    // Reads the attributes the way feedparser does, forgiving case and stray white space; an empty or unparsable
    // type is text
    fn of(type_attr: Option<&str>, mode: Option<&str>) -> Carriage {
        let type_attr = type_attr.unwrap_or_default().trim().to_ascii_lowercase();
        let mime = match type_attr.as_str() {
            "" | "text" | "plain" => MediaTypeBuf::new(names::TEXT, names::PLAIN),
            "html" => MediaTypeBuf::new(names::TEXT, names::HTML),
            "xhtml" if mode.is_none_or(|mode| mode.trim().eq_ignore_ascii_case("xml")) => return Carriage::Xhtml,
            "xhtml" => MediaTypeBuf::new(names::APPLICATION, names::XHTML),
            other => other.parse::<MediaTypeBuf>().unwrap_or_else(|_| MediaTypeBuf::new(names::TEXT, names::PLAIN)),
        };
        let is_xml = mime.subty() == names::XML || mime.suffix() == Some(names::XML);
        let is_markup = mime.subty() == names::HTML || mime.subty() == names::XHTML || is_xml;
        match mode.map(|mode| mode.trim().to_ascii_lowercase()).as_deref() {
            Some("base64") => Carriage::Base64(mime),
            Some("xml") => Carriage::Xml(mime),
            Some("escaped") if is_markup => Carriage::Escaped(mime),
            Some("escaped") => Carriage::Text(mime),
            _ if mime.ty() == names::MULTIPART => Carriage::Alternatives,
            _ if is_xml => Carriage::Xml(mime),
            _ if mime.ty() == names::TEXT && mime.subty() == names::HTML => Carriage::Escaped(mime),
            _ if mime.ty() == names::TEXT => Carriage::Text(mime),
            _ => Carriage::Base64(mime),
        }
    }
}

// Reads the text of an element as its carriage says
fn read_text<R: BufRead>(element: &Element<R>, carriage: Carriage) -> ParseFeedResult<Text> {
    let (content, content_type) = match carriage {
        // Markup where text was announced (naked markup in a title) is markup: kept as HTML, not flattened
        Carriage::Text(mime) => match text_or_markup(element.children_as_string()?) {
            (text, false) => (text, mime),
            (markup, true) => (markup, MediaTypeBuf::new(names::TEXT, names::HTML)),
        },
        // Escaped markup is the text; markup written inline (Atom 0.3 and broken feeds) is taken as it is, without the
        // wrapper div some publishers put around escaped HTML
        Carriage::Escaped(mime) => (text_or_markup(element.children_as_xhtml()?).0, mime),
        Carriage::Xhtml => (
            element.children_as_xhtml()?.unwrap_or_default(),
            MediaTypeBuf::new(names::APPLICATION, names::XHTML),
        ),
        Carriage::Xml(mime) => (element.children_as_string()?.unwrap_or_default(), mime),
        Carriage::Alternatives => (element.children_as_string()?.unwrap_or_default(), MediaTypeBuf::new(names::TEXT, names::HTML)),
        // What does not decode is kept as written, as feedparser does
        Carriage::Base64(mime) => {
            let (raw, _) = text_or_markup(element.children_as_string()?);
            (decode_base64(&raw).unwrap_or(raw), mime)
        }
    };
    let mut text = Text::new(content);
    text.content_type = content_type;
    Ok(text)
}

// The children of an element serialized as markup: the text they hold, unescaped, when they are only text (with
// `false`), else the markup (with `true`)
fn text_or_markup(serialized: Option<String>) -> (String, bool) {
    let serialized = serialized.unwrap_or_default();
    if serialized.contains('<') {
        return (serialized, true);
    }
    // The serializer escapes "&", "<", ">" and carriage returns in text, and nothing else
    let mut text = String::with_capacity(serialized.len());
    let mut rest = serialized.as_str();
    while let Some(at) = rest.find('&') {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        let (unescaped, len) = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&#13;", '\r')]
            .iter()
            .find(|(escaped, _)| rest.starts_with(escaped))
            .map_or(('&', 1), |(escaped, unescaped)| (*unescaped, escaped.len()));
        text.push(unescaped);
        rest = &rest[len..];
    }
    text.push_str(rest);
    (text, false)
}

// Decodes base64 (standard alphabet, padding optional, white space ignored) to UTF-8 text; `None` if it is not base64
// or not text
fn decode_base64(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in encoded.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    String::from_utf8(bytes).ok()
}
