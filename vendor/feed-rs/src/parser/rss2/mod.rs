use mediatype::{MediaTypeBuf, names};
use std::collections::HashSet;
use std::io::BufRead;

use crate::model::{Category, Content, Entry, Feed, FeedType, Generator, Image, Link, LinkTarget, MediaContent, MediaObject, MediaObjectSource, Person, Text};
use crate::parser::ParseFeedResult;
use crate::parser::itunes::{handle_itunes_category, handle_itunes_channel_element, handle_itunes_item_element};
use crate::parser::mediarss::handle_media_category;
use crate::parser::podcast::{handle_podcast_channel_element, handle_podcast_item_element};
use crate::parser::util::{if_ok_then_some, if_some_then};
use crate::parser::{Parser, atom};
use crate::parser::{common, dublincore, util};
use crate::xml::{Element, NS};

#[cfg(test)]
mod tests;

/// Parses an RSS 2.0 feed into our model
pub(crate) fn parse<R: BufRead>(parser: &Parser, root: Element<R>) -> ParseFeedResult<Feed> {
    let mut feed = Feed::new(FeedType::RSS2);

    // Expecting a channel element; items outside it (a channel left out, or closed too early) are read as its items
    let mut channel_read = false;
    for child in root.children() {
        let child = match child {
            Ok(child) => child,
            // Ill-formed XML after a whole channel (a cut-off "</rss", trailing garbage) does not undo the channel: all
            // of it was read. A fault inside the channel or an item fails the document (it may have been cut short)
            Err(_) if channel_read => break,
            Err(error) => return Err(error.into()),
        };
        match child.name.as_str() {
            "channel" => {
                for child in child.children() {
                    handle_channel_element(parser, &mut feed, child?)?;
                }
                channel_read = true;
            }

            "item" => if_some_then(handle_item(parser, child)?, |item| feed.entries.push(item)),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    Ok(feed)
}

// Handles one child of the <channel> element (of RSS 0.9x, 1.0 and 2.0)
pub(crate) fn handle_channel_element<R: BufRead>(parser: &Parser, feed: &mut Feed, child: Element<R>) -> ParseFeedResult<()> {
    match child.ns_and_tag() {
        // Core elements replace what a module element (e.g. Dublin Core) filled in, but only with a value
        (NS::RSS, "title") => if_some_then(common::handle_text_or_markup(child)?, |title| feed.title = Some(title)),

        (NS::RSS, "link") => if_some_then(common::handle_link(None, child), |link| feed.links.push(link)),

        (NS::Atom, "link") => if_some_then(atom::handle_link(child), |link| feed.links.push(link)),

        (NS::RSS, "description") => if_some_then(common::handle_text_or_markup(child)?, |description| feed.description = Some(description)),

        (NS::RSS, "language") => if_some_then(child.child_as_text(), |text| feed.language = Some(text.to_lowercase())),

        (NS::RSS, "copyright") => if_some_then(common::handle_text(child), |rights| feed.rights = Some(rights)),

        (NS::RSS, "managingEditor") => if_some_then(handle_contact("managingEditor", child)?, |person| feed.contributors.push(person)),

        (NS::RSS, "webMaster") => if_some_then(handle_contact("webMaster", child)?, |person| feed.contributors.push(person)),

        (NS::RSS, "pubDate") => if_some_then(common::handle_timestamp(parser, child), |date| feed.published = Some(date)),

        // Some feeds have "updated" instead of "lastBuildDate"
        (NS::RSS, "lastBuildDate") | (NS::RSS, "updated") => if_some_then(common::handle_timestamp(parser, child), |date| feed.updated = Some(date)),

        (NS::RSS, "category") => if_some_then(handle_category(child), |category| feed.categories.push(category)),

        (NS::RSS, "generator") => feed.generator = handle_generator(child),

        (NS::RSS, "ttl") => if_some_then(child.child_as_text(), |text| if_ok_then_some(text.parse::<u32>(), |ttl| feed.ttl = ttl)),

        // An RSS 1.0 channel only refers to its image (rdf:resource), which must not unset one read already
        (NS::RSS, "image") => if_some_then(handle_image(child)?, |image| feed.logo = Some(image)),

        (NS::RSS, "item") => if_some_then(handle_item(parser, child)?, |item| feed.entries.push(item)),

        (NS::DublinCore, _) => dublincore::handle_channel_element(parser, child, feed)?,

        (NS::Itunes, _) => handle_itunes_channel_element(child, feed)?,

        (NS::Podcast, _) => handle_podcast_channel_element(child, feed)?,

        // Nothing required for unknown elements
        _ => {}
    }

    Ok(())
}

// Handles <category>
fn handle_category<R: BufRead>(element: Element<R>) -> Option<Category> {
    element.child_as_text().map(|text| {
        let mut category = Category::new(&text);
        category.scheme = element.attr_value("domain");
        category
    })
}

// Handles <author>, <managingEditor> and <webMaster>
//
// The text names the person (with an email address, in whichever of the usual forms); a person written as Atom writes
// one, with <name>, <email> and <uri> children, is read as well.
fn handle_contact<R: BufRead>(role: &str, element: Element<R>) -> ParseFeedResult<Option<Person>> {
    if let Some(text) = element.child_as_text().filter(|text| !text.trim().is_empty()) {
        return Ok(Some(Person::parse(&text).role(role)));
    }
    let mut person = Person::empty().role(role);
    for child in element.children() {
        let child = child?;
        let text = || child.child_as_text().map(|text| text.trim().to_string()).filter(|text| !text.is_empty());
        match child.name.as_str() {
            "name" => person.name = text(),
            "email" => person.email = text(),
            "uri" => person.uri = text(),
            _ => {}
        }
    }
    Ok((person.name.is_some() || person.email.is_some()).then_some(person))
}

// Authors named twice (<author> and dc:creator, say) are kept once, the first time
fn dedup_people(people: &mut Vec<Person>) {
    let mut seen = HashSet::new();
    people.retain(|person| {
        let key = person.name.as_deref().or(person.email.as_deref()).unwrap_or_default().to_lowercase();
        seen.insert(key)
    });
}

// Handles <categories> (not RSS, but written), a list of <category> elements
fn handle_categories<R: BufRead>(element: Element<R>, categories: &mut Vec<Category>) -> ParseFeedResult<()> {
    for child in element.children() {
        let child = child?;
        if child.name == "category" {
            if_some_then(handle_category(child), |category| categories.push(category));
        }
    }
    Ok(())
}

fn handle_generator<R: BufRead>(element: Element<R>) -> Option<Generator> {
    element.child_as_text().map(|c| {
        let mut generator = Generator::new(&c);

        for attr in element.attributes {
            let tag_name = attr.name.as_str();
            if tag_name == "uri" {
                generator.uri = Some(attr.value.clone());
            }
        }

        generator
    })
}

// Handles <enclosure>
//
// A url that is relative, with no base to resolve it against, cannot be a media object's (a `Url`): the enclosure is then
// kept as a link with rel "enclosure", for the reader to resolve against the document's address.
fn handle_enclosure<R: BufRead>(element: Element<R>, media_obj: &mut MediaObject, links: &mut Vec<Link>) {
    let mut content = MediaContent::new();
    let mut relative = None;

    for attr in &element.attributes {
        let tag_name = attr.name.as_str();
        match tag_name {
            "url" => {
                content.url = util::parse_uri(&attr.value, element.xml_base.as_ref());
                relative = Some(attr.value.trim()).filter(|url| content.url.is_none() && !url.is_empty() && !url.contains(':'));
            }
            "length" => content.size = attr.value.trim().parse::<u64>().ok(),
            "type" => if_ok_then_some(attr.value.parse::<MediaTypeBuf>(), |mime| content.content_type = mime),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    // Wrap in a media object if we have a sufficient definition of a media object
    if content.url.is_some() {
        media_obj.content.push(content);
    } else if let Some(href) = relative {
        let mut link = Link::new(href, None);
        link.rel = Some("enclosure".to_string());
        link.media_type = content.content_type.map(|mime| mime.to_string());
        link.length = content.size;
        links.push(link);
    }
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

            (NS::RSS, "width") => if_some_then(child.child_as_text(), |width| {
                if let Ok(width) = width.parse::<u32>() {
                    if width > 0 && width <= 144 {
                        image.width = Some(width)
                    }
                }
            }),

            (NS::RSS, "height") => if_some_then(child.child_as_text(), |height| {
                if let Ok(height) = height.parse::<u32>() {
                    if height > 0 && height <= 400 {
                        image.height = Some(height)
                    }
                }
            }),

            (NS::RSS, "description") => image.description = child.child_as_text(),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    // If we don't have a URI there is no point returning an image
    Ok(if !image.uri.is_empty() { Some(image) } else { None })
}

// Handles <content:encoded>, and the full text under other names (<fullitem>, an XHTML <body>)
fn handle_content_encoded<R: BufRead>(element: Element<R>, content_type: MediaTypeBuf) -> ParseFeedResult<Option<Content>> {
    let src = element.xml_base.as_ref().map(|xml_base| Link::new(xml_base, element.xml_base.as_ref()));

    Ok(common::handle_markup(element)?.and_then(|string| {
        if string.trim().is_empty() {
            None
        } else {
            Some(Content {
                body: Some(string.trim().to_string()),
                content_type,
                src,
                ..Default::default()
            })
        }
    }))
}

// Handles <guid>: the entry's id, and its link as well unless isPermaLink="false" says otherwise. Without the attribute
// (whose default is "true") only a guid that is an absolute web address is taken for the link.
fn handle_guid<R: BufRead>(element: Element<R>, entry: &mut Entry, permalink: &mut Option<String>) {
    let is_permalink = element.attr_value("isPermaLink").map(|value| value.trim().to_ascii_lowercase());
    if let Some(guid) = element.child_as_text() {
        let guid = guid.trim().to_string();
        let is_web_url = || url::Url::parse(&guid).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
        *permalink = match is_permalink.as_deref() {
            Some("true") => Some(guid.clone()).filter(|guid| !guid.is_empty()),
            None if is_web_url() => Some(guid.clone()),
            _ => None,
        };
        entry.id = guid;
    }
}

// Which element gave an item its summary
enum Summary {
    Description,
    Element,
}

// A text that turned out to be the content
fn text_as_content(text: Text) -> Content {
    Content {
        body: Some(text.content),
        content_type: text.content_type,
        ..Default::default()
    }
}

// Handles <itunes:keywords>: comma-separated keywords, each a category
fn handle_itunes_keywords<R: BufRead>(element: Element<R>, entry: &mut Entry) {
    if let Some(text) = element.child_as_text() {
        for keyword in text.split(',').map(str::trim).filter(|keyword| !keyword.is_empty()) {
            let mut category = Category::new(keyword);
            category.scheme = Some("http://www.itunes.com/".to_string());
            entry.categories.push(category);
        }
    }
}

// Handles <item>
//
// There is some complexity around "enclosure", "content:encoded", MediaRSS and iTunes support
// * "enclosure": the RSS spec states that <enclosure> "Describes a media object that is attached to the item." - https://validator.w3.org/feed/docs/rss2.html#ltenclosuregtSubelementOfLtitemgt
// * "content:encoded": RSS best practices state <content:encoded> "...defines the full content of an item (OPTIONAL). This element has a more precise purpose than the description element, which can be the full content, a summary or some other form of excerpt at the publisher's discretion." - https://www.rssboard.org/rss-profile#namespace-elements-content-encoded
// * The MediaRSS, iTunes and Podcast namespaces define media objects or attributes of items in the feed
//
// Handling is as follows:
// * "enclosure" is treated as if it was a MediaRSS MediaContent element and wrapped in a MediaObject
// * "content:encoded" is mapped to the content field of an Entry
// * MediaRSS elements are handle via the MediaRSSState parser extension
// * iTunes elements are added to an iTunes specific MediaObject
// * Podcast elements are added to a Podcast specific MediaObject
//
// Core elements win over module elements that say the same (Dublin Core, iTunes, MediaRSS), which fill what the core
// elements leave empty: the title, the summary (dc:description, itunes:summary, itunes:subtitle, media:description),
// the author (itunes:author), the dates, and the link (a permalink guid).
//
// Items of RSS 1.0 are read here too: their rdf:about is the id when there is no guid.
pub(crate) fn handle_item<R: BufRead>(parser: &Parser, element: Element<R>) -> ParseFeedResult<Option<Entry>> {
    let mut entry = Entry::default();
    let about = element
        .attributes
        .iter()
        .find(|attr| attr.name == "rdf:about")
        .map(|attr| attr.value.trim().to_string());
    let mut permalink = None;
    let mut itunes_subtitle = None;
    let mut summarized = None;

    // Instances for enclosure, iTunes + Podcasts
    let mut enclosure_media_obj = MediaObject::new(MediaObjectSource::RSS);
    let mut itunes_media_obj = MediaObject::new(MediaObjectSource::ITunes);
    let mut podcast_media_obj = MediaObject::new(MediaObjectSource::Podcast);

    // Note we have started a new MediaRSS entry scope
    parser.mediarss.entry_begin();

    for child in element.children() {
        let child = child?;
        match child.ns_and_tag() {
            // Core elements replace what a module element filled in, but only with a value
            (NS::RSS, "title") => if_some_then(common::handle_text_or_markup(child)?, |title| entry.title = Some(title)),

            (NS::RSS, "link") => if_some_then(common::handle_link(None, child), |link| entry.links.push(link)),

            (NS::Atom, "link") => if_some_then(atom::handle_link(child), |link| entry.links.push(link)),

            // Of <description> and a <summary> (not RSS, but written), the first is the summary and the second the content
            (NS::RSS, "description") => if_some_then(common::handle_encoded(child)?, |summary| match summarized {
                Some(Summary::Element) if entry.content.is_none() => entry.content = Some(text_as_content(summary)),
                _ => {
                    entry.summary = Some(summary);
                    summarized = Some(Summary::Description);
                }
            }),
            (NS::RSS, "summary") => if_some_then(common::handle_encoded(child)?, |summary| match summarized {
                Some(Summary::Description) => {
                    if entry.content.is_none() {
                        entry.content = Some(text_as_content(summary))
                    }
                }
                _ => {
                    entry.summary = Some(summary);
                    summarized = Some(Summary::Element);
                }
            }),

            (NS::RSS, "author") => if_some_then(handle_contact("author", child)?, |person| entry.authors.push(person)),

            (NS::RSS, "category") => if_some_then(handle_category(child), |category| entry.categories.push(category)),

            (NS::RSS, "categories") => handle_categories(child, &mut entry.categories)?,

            (NS::RSS, "guid") => handle_guid(child, &mut entry, &mut permalink),

            (NS::RSS, "enclosure") => handle_enclosure(child, &mut enclosure_media_obj, &mut entry.links),

            (NS::RSS, "pubDate") => if_some_then(common::handle_timestamp(parser, child), |date| entry.published = Some(date)),

            (NS::RSS, "updated") | (NS::Atom, "updated") => if_some_then(common::handle_timestamp(parser, child), |date| entry.updated = Some(date)),

            (NS::RSS, "source") => entry.source = child.attr_value("url").map(|url| url.trim().to_string()).filter(|url| !url.is_empty()),

            (NS::Content, "encoded") => if_some_then(handle_content_encoded(child, MediaTypeBuf::new(names::TEXT, names::HTML))?, |content| {
                entry.content = Some(content)
            }),

            // The full text under other names, read when content:encoded gives none
            (NS::RSS, "fullitem") if entry.content.is_none() => entry.content = handle_content_encoded(child, MediaTypeBuf::new(names::TEXT, names::HTML))?,
            (NS::RSS, "body") | (NS::Unknown, "body") if entry.content.is_none() => {
                entry.content = handle_content_encoded(child, MediaTypeBuf::new(names::APPLICATION, names::XHTML))?
            }

            (NS::DublinCore, _) => dublincore::handle_entry_element(parser, child, &mut entry)?,

            (NS::Itunes, "subtitle") => itunes_subtitle = common::handle_text_or_markup(child)?,

            (NS::Itunes, "category") => if_some_then(handle_itunes_category(child)?, |category| entry.categories.push(category)),

            (NS::Itunes, "keywords") => handle_itunes_keywords(child, &mut entry),

            // iTunes elements populate the corresponding MediaObject
            (NS::Itunes, _) => handle_itunes_item_element(child, &mut itunes_media_obj)?,

            (NS::MediaRSS, "category") => if_some_then(handle_media_category(child), |category| entry.categories.push(category)),

            // MediaRSS tags that are not grouped are parsed into the default object
            (NS::MediaRSS, _) => parser.mediarss.handle_entry_mediarss_element(child)?,

            // Podcast elements populate the default MediaObject
            (NS::Podcast, _) => handle_podcast_item_element(child, &mut podcast_media_obj)?,

            // Comments can use the Well Formed Web NS or the RSS comments element
            // According to https://validator.w3.org/feed/docs/warning/CommentRSS.html we need to support both
            (NS::WellFormedWebComments, "commentRss") | (NS::WellFormedWebComments, "commentRSS") => {
                if_some_then(common::handle_link(Some(LinkTarget::CommentsFeed), child), |link| entry.links.push(link))
            }
            (NS::RSS, "comments") => if_some_then(common::handle_link(Some(LinkTarget::Comments), child), |link| entry.links.push(link)),

            // Nothing required for unknown elements
            _ => {}
        }
    }

    // iTunes elements fill in the summary and the author
    if entry.summary.is_none() {
        entry.summary = itunes_media_obj.description.clone().or(itunes_subtitle);
    }
    if entry.authors.is_empty() {
        if let Some(credit) = itunes_media_obj.credits.first() {
            entry.authors.push(Person::parse(&credit.entity).role("author"));
        }
    }

    // Finalise parsing the MediaRSS namespace, emitting MediaObjects if found (and filling in the title and summary)
    parser.mediarss.entry_end(&mut entry);

    // Emit any other media objects with content
    for media_obj in [itunes_media_obj, podcast_media_obj, enclosure_media_obj] {
        if media_obj.is_not_empty() {
            entry.media.push(media_obj);
        }
    }

    // Post-process the media objects
    postprocess_media(&mut entry.media);

    // If we have a published date, copy this to updated too for consistency
    if entry.updated.is_none() && entry.published.is_some() {
        entry.updated = entry.published;
    }

    // A permalink guid is the link of an item that has none
    if let Some(permalink) = permalink {
        if !entry.links.iter().any(|link| link.target.is_none()) {
            entry.links.push(Link::new(permalink, element.xml_base.as_ref()));
        }
    }

    // An RSS 1.0 item names itself with rdf:about
    if entry.id.is_empty() {
        if let Some(about) = about {
            entry.id = about;
        }
    }

    // Remove any comment links that simply target the entry
    clean_links(&mut entry.links);

    dedup_people(&mut entry.authors);

    Ok(Some(entry))
}

// Remove comment links that are just the same target as another link we've already discovered
fn clean_links(links: &mut Vec<Link>) {
    // First we collect the set of links that are not of type Comment
    let non_comment_targets: HashSet<String> = links
        .iter()
        .filter(|link| link.target != Some(LinkTarget::Comments))
        .map(|link| link.href.clone())
        .collect::<HashSet<_>>();

    // Retain only those comment links that are distinct URLs
    links.retain(|link| link.target != Some(LinkTarget::Comments) || !non_comment_targets.contains(link.href.as_str()));
}

// Apply standard processing to the parsed set of media
fn postprocess_media(objects: &mut Vec<MediaObject>) {
    // Merge into the highest priority object, in order: MediaRSS, Podcast
    if let Some(mediarss_idx) = objects.iter().position(|mo| mo.source == Some(MediaObjectSource::MediaRSS)) {
        // Merge into MediaRSS source

        // Remove it from the list so we can update it with other elements
        let mut mediarss_obj = objects.swap_remove(mediarss_idx);

        // Run through the remaining objects merging in RSS and iTunes sources
        let len = objects.len();
        for idx in (0..len).rev() {
            if objects[idx].source == Some(MediaObjectSource::RSS) {
                let rss_obj = objects.swap_remove(idx);
                postprocess_merge_media(rss_obj, &mut mediarss_obj);
            } else if objects[idx].source == Some(MediaObjectSource::ITunes) {
                // If we don't have any itunes specific data, merge it into the standard mediarss obj
                let itunes_obj = &objects[idx];
                if itunes_obj.season.is_none() && itunes_obj.episode.is_none() {
                    let itunes_obj = objects.swap_remove(idx);
                    postprocess_merge_media(itunes_obj, &mut mediarss_obj);
                }
            }
        }

        // Push the updated mediarss object back into the list
        objects.push(mediarss_obj);
    } else if let Some(podcast_idx) = objects.iter().position(|mo| mo.source == Some(MediaObjectSource::Podcast)) {
        // Merge into podcast source

        // Remove it from the list so we can update it with other elements
        let mut postcast_obj = objects.swap_remove(podcast_idx);

        // Merge in other sources
        let len = objects.len();
        for idx in (0..len).rev() {
            let other = objects.swap_remove(idx);
            postprocess_merge_media(other, &mut postcast_obj);
        }

        // Push the updated mediarss object back into the list
        objects.push(postcast_obj);
    }
}

fn postprocess_merge_media(source: MediaObject, target: &mut MediaObject) {
    if target.title.is_none() {
        target.title = source.title;
    }
    if target.content.is_empty() {
        target.content = source.content;
    }
    if target.duration.is_none() {
        target.duration = source.duration;
    }
    if target.thumbnails.is_empty() {
        target.thumbnails = source.thumbnails;
    }
    if target.texts.is_empty() {
        target.texts = source.texts;
    }
    if target.description.is_none() {
        target.description = source.description;
    }
    if target.community.is_none() {
        target.community = source.community;
    }
    if target.credits.is_empty() {
        target.credits = source.credits;
    }
    if target.people.is_empty() {
        target.people = source.people;
    }
    if target.season.is_none() {
        target.season = source.season;
    }
    if target.episode.is_none() {
        target.episode = source.episode;
    }
    if target.transcripts.is_empty() {
        target.transcripts = source.transcripts;
    }
}
