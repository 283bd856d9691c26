use crate::model::{Episode, Link, LinkTarget, Season, Text};
use crate::parser::{ParseFeedResult, Parser};
use crate::xml::Element;
use chrono::{DateTime, Utc};
use std::io::BufRead;

/// Handles <content:encoded>
pub(crate) fn handle_encoded<R: BufRead>(element: Element<R>) -> ParseFeedResult<Option<Text>> {
    Ok(handle_markup(element)?.map(Text::html))
}

/// The content of an element that holds HTML: its text when the HTML is escaped (or in CDATA), and when the publisher
/// wrote the markup unescaped, as child elements, that markup serialized back (namespace prefixes dropped, attributes
/// kept), after any text that precedes it. `None` for an empty element.
pub(crate) fn handle_markup<R: BufRead>(element: Element<R>) -> ParseFeedResult<Option<String>> {
    let text = element.child_as_text();
    let markup = element.children_as_string()?.unwrap_or_default();
    if markup.is_empty() {
        return Ok(text);
    }
    let mut html = text.map(|text| quick_xml::escape::minimal_escape(&text).into_owned()).unwrap_or_default();
    html.push_str(&markup);
    Ok(Some(html))
}

// Handles episode elements in the Podcast or iTunes namespace
pub fn handle_episode<R: BufRead>(element: Element<R>) -> Option<Episode> {
    element.child_as_text().and_then(|n| n.parse().ok()).map(|number| Episode {
        display: element.attr_value("display"),
        number,
    })
}

// Handles <link>; a blank one is no link
pub(crate) fn handle_link<R: BufRead>(target: Option<LinkTarget>, element: Element<R>) -> Option<Link> {
    element.child_as_text().filter(|s| !s.trim().is_empty()).map(|s| {
        let mut link = Link::new(s, element.xml_base.as_ref());
        link.target = target;
        link
    })
}

// Handles season elements in the Podcast or iTunes namespace
pub fn handle_season<R: BufRead>(element: Element<R>) -> Option<Season> {
    element.child_as_text().and_then(|n| n.parse().ok()).map(|number| Season {
        name: element.attr_value("name"),
        number,
    })
}

// Handles <title>, <description> etc
pub(crate) fn handle_text<R: BufRead>(element: Element<R>) -> Option<Text> {
    element.child_as_text().map(Text::new)
}

/// Handles <title>, <description> etc. that may hold unescaped markup (see [`handle_markup`])
pub(crate) fn handle_text_or_markup<R: BufRead>(element: Element<R>) -> ParseFeedResult<Option<Text>> {
    Ok(handle_markup(element)?.map(Text::new))
}

/// Handles date/time
pub(crate) fn handle_timestamp<R: BufRead>(parser: &Parser, element: Element<R>) -> Option<DateTime<Utc>> {
    if let Some(text) = element.child_as_text() {
        parser.parse_timestamp(&text)
    } else {
        None
    }
}
