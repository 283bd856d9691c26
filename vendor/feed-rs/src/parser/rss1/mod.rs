use std::io::BufRead;

use crate::model::{Feed, FeedType, Image, Link};
use crate::parser::util::if_some_then;
use crate::parser::{ParseFeedResult, Parser, rss2};
use crate::xml::{Element, NS};

#[cfg(test)]
mod tests;

/// Parses an RSS 1.0 feed into our model
///
/// The channel's elements and the items are those of RSS 2.0 (with the same modules), so they are read as such.
pub(crate) fn parse<R: BufRead>(parser: &Parser, root: Element<R>) -> ParseFeedResult<Feed> {
    let mut feed = Feed::new(FeedType::RSS1);

    for child in root.children() {
        let child = child?;
        match child.ns_and_tag() {
            (NS::RSS, "channel") => {
                for child in child.children() {
                    rss2::handle_channel_element(parser, &mut feed, child?)?;
                }
            }

            (NS::RSS, "image") => if_some_then(handle_image(child)?, |image| feed.logo = Some(image)),

            // Items without a link are kept: rdf:about names them
            (NS::RSS, "item") => if_some_then(rss2::handle_item(parser, child)?, |entry| feed.entries.push(entry)),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    // RSS 1.0 dates the channel with dc:date alone, which stands for its publication as well
    if feed.published.is_none() {
        feed.published = feed.updated;
    }

    Ok(feed)
}

// Handles <image>
fn handle_image<R: BufRead>(element: Element<R>) -> ParseFeedResult<Option<Image>> {
    let mut image = Image::new("".to_owned());

    for child in element.children() {
        let child = child?;
        match child.ns_and_tag() {
            (NS::RSS, "url") => if_some_then(child.child_as_text(), |url| image.uri = url),

            (NS::RSS, "title") => image.title = child.child_as_text(),

            (NS::RSS, "link") => if_some_then(child.child_as_text(), |uri| image.link = Some(Link::new(uri, element.xml_base.as_ref()))),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    // If we don't have a URI there is no point returning an image
    Ok(if !image.uri.is_empty() { Some(image) } else { None })
}
