//! Dublin Core (<http://purl.org/dc/elements/1.1/>) in place of, or beside, the core elements of RSS 0.9x, 1.0 and 2.0.
//!
//! Each element fills a field only while the core element has left it empty, so the core element wins when both are
//! present, in whichever order they come; the core handlers overwrite. Multi-valued elements (`dc:subject`,
//! `dc:creator`, `dc:contributor`) add to what is there. The DCMI terms that refine `dc:date` (`issued`, `modified`,
//! `created`) are read under the same namespace, which is where documents binding the dcterms namespace
//! (<http://purl.org/dc/terms/>) land once that namespace is mapped onto Dublin Core's.

use std::io::BufRead;

use crate::model::{Category, Entry, Feed, Person, Text};
use crate::parser::util::if_some_then;
use crate::parser::{ParseFeedResult, Parser, common};
use crate::xml::{Element, NS};

/// Reads one Dublin Core element of a channel into the feed.
pub(crate) fn handle_channel_element<R: BufRead>(parser: &Parser, element: Element<R>, feed: &mut Feed) -> ParseFeedResult<()> {
    match element.ns_and_tag() {
        (NS::DublinCore, "title") if feed.title.is_none() => feed.title = common::handle_text_or_markup(element)?,

        (NS::DublinCore, "description") if feed.description.is_none() => feed.description = common::handle_text_or_markup(element)?,

        (NS::DublinCore, "creator") | (NS::DublinCore, "author") => {
            if_some_then(element.child_as_text(), |name| feed.authors.push(Person::parse(&name).role("creator")))
        }

        (NS::DublinCore, "contributor") => if_some_then(element.child_as_text(), |name| feed.contributors.push(Person::parse(&name).role("contributor"))),

        (NS::DublinCore, "publisher") => if_some_then(element.child_as_text(), |name| feed.contributors.push(Person::parse(&name).role("publisher"))),

        (NS::DublinCore, "subject") => if_some_then(handle_subject(element), |category| feed.categories.push(category)),

        (NS::DublinCore, "date") | (NS::DublinCore, "modified") if feed.updated.is_none() => feed.updated = common::handle_timestamp(parser, element),

        (NS::DublinCore, "issued") | (NS::DublinCore, "created") if feed.published.is_none() => feed.published = common::handle_timestamp(parser, element),

        (NS::DublinCore, "language") if feed.language.is_none() => {
            feed.language = element.child_as_text().map(|text| text.trim().to_string()).filter(|text| !text.is_empty())
        }

        (NS::DublinCore, "rights") if feed.rights.is_none() => feed.rights = common::handle_text(element),

        // Nothing required for other elements, or for fields already filled
        _ => {}
    }

    Ok(())
}

/// Reads one Dublin Core element of an item into the entry.
pub(crate) fn handle_entry_element<R: BufRead>(parser: &Parser, element: Element<R>, entry: &mut Entry) -> ParseFeedResult<()> {
    match element.ns_and_tag() {
        (NS::DublinCore, "title") if entry.title.is_none() => entry.title = common::handle_text_or_markup(element)?,

        (NS::DublinCore, "description") if entry.summary.is_none() => entry.summary = common::handle_markup(element)?.map(Text::html),

        (NS::DublinCore, "creator") | (NS::DublinCore, "author") => {
            if_some_then(element.child_as_text(), |name| entry.authors.push(Person::parse(&name).role("creator")))
        }

        (NS::DublinCore, "contributor") => if_some_then(element.child_as_text(), |name| {
            entry.contributors.push(Person::parse(&name).role("contributor"))
        }),

        (NS::DublinCore, "publisher") => if_some_then(element.child_as_text(), |name| entry.contributors.push(Person::parse(&name).role("publisher"))),

        (NS::DublinCore, "subject") => if_some_then(handle_subject(element), |category| entry.categories.push(category)),

        (NS::DublinCore, "date") | (NS::DublinCore, "issued") | (NS::DublinCore, "created") if entry.published.is_none() => {
            entry.published = common::handle_timestamp(parser, element)
        }

        (NS::DublinCore, "modified") if entry.updated.is_none() => entry.updated = common::handle_timestamp(parser, element),

        (NS::DublinCore, "rights") if entry.rights.is_none() => entry.rights = common::handle_text(element),

        // Nothing required for other elements, or for fields already filled
        _ => {}
    }

    Ok(())
}

// Handles <dc:subject>, a category without a scheme
fn handle_subject<R: BufRead>(element: Element<R>) -> Option<Category> {
    element
        .child_as_text()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .map(|text| Category::new(&text))
}
