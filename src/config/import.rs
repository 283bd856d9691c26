//! `tributary import-opml`: reads an OPML subscription list and appends its feeds to
//! `feeds.toml` as `[[source]]` tables, keeping the file's comments and formatting
//! (toml_edit edits the document in place instead of re-serializing it).
//!
//! Every `<outline>` with an `xmlUrl` is a feed, whatever its `type`; the outlines it
//! sits in (folders) become its tags, as do the entries of its `category` attribute
//! (`/world,/news`, as `export-opml` and `/opml` write them). A feed whose URL is
//! already configured, or appears twice, is skipped. The command (`cli::edit`) calls
//! [`read_opml`] and [`append_sources`], checks the result with `config::parse` and
//! writes the file.

use super::edit::{EditError, append_tables, source_table};
use std::collections::HashSet;
use url::Url;

/// A feed listed in an OPML file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpmlFeed {
    pub url: String,
    /// `text` (else `title`), unless it only repeats the URL.
    pub name: Option<String>,
    /// Enclosing folders, outermost first, then categories; no repeats.
    pub tags: Vec<String>,
}

/// Why an OPML file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("not well-formed XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("the document is not OPML: its root element is <{0}>, not <opml>")]
    NotOpml(String),
}

/// The feeds of an OPML document, in document order.
pub fn read_opml(bytes: &[u8]) -> Result<Vec<OpmlFeed>, OpmlError> {
    use quick_xml::events::Event;

    let text = std::str::from_utf8(bytes).map_err(|_| OpmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let xml_error =
        |reader: &quick_xml::Reader<&[u8]>, err: &dyn std::fmt::Display| OpmlError::Xml {
            position: reader.buffer_position(),
            message: err.to_string(),
        };
    let mut feeds = Vec::new();
    // The folder names enclosing the current element; `None` for an outline that is
    // a feed (its children, if any, get no tag from it).
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&reader, &e))?;
        let (element, has_children) = match &event {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(e) => {
                if e.name().as_ref() == "outline" {
                    folders.pop();
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.name();
        if !root_seen {
            root_seen = true;
            if name.as_ref() != "opml" {
                return Err(OpmlError::NotOpml(name.as_ref().to_string()));
            }
            continue;
        }
        if name.as_ref() != "outline" {
            continue;
        }
        let label = attribute(element, "text").or_else(|| attribute(element, "title"));
        let folder = match attribute(element, "xmlUrl") {
            Some(url) => {
                feeds.push(OpmlFeed {
                    name: label.filter(|l| *l != url),
                    url,
                    tags: feed_tags(&folders, attribute(element, "category")),
                });
                None
            }
            None => label,
        };
        if has_children {
            folders.push(folder);
        }
    }
    if !root_seen {
        return Err(OpmlError::NotOpml("nothing".to_string()));
    }
    Ok(feeds)
}

/// An attribute's value, trimmed; `None` when missing or blank.
fn attribute(element: &quick_xml::events::BytesStart, name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A feed's tags: the enclosing folders, outermost first, then the entries of its
/// `category` attribute (`/world,/news`); no repeats.
fn feed_tags(folders: &[Option<String>], categories: Option<String>) -> Vec<String> {
    let categories = categories.unwrap_or_default();
    let from_categories = categories
        .split(',')
        .flat_map(|path| path.split('/'))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let mut tags: Vec<String> = Vec::new();
    for tag in folders.iter().flatten().cloned().chain(from_categories) {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

/// What [`append_sources`] did with each feed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub added: Vec<OpmlFeed>,
    /// Already in the config (or listed twice).
    pub already: Vec<String>,
    /// Not importable, with the reason.
    pub invalid: Vec<(String, String)>,
}

/// `text` (a `feeds.toml`) with `feeds` appended to its sources, everything else left
/// as it was written; `None` when there is nothing to add. `configured` are the URLs
/// of the sources it already has (from `config::parse`, whatever shape the file gives
/// them); URLs are compared after parsing, so `HTTP://Example.org/rss` and
/// `http://example.org/rss` are one feed.
pub fn append_sources(
    text: &str,
    configured: &[Url],
    feeds: &[OpmlFeed],
) -> Result<(Option<String>, ImportReport), EditError> {
    let mut known: HashSet<String> = configured.iter().map(Url::to_string).collect();
    let mut report = ImportReport::default();
    let mut new_tables = Vec::new();
    for feed in feeds {
        let url = match Url::parse(&feed.url) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                let reason = "a user name or password in the URL would be published with it; add the feed by hand with `username` and `password`".to_string();
                let shown = super::shown_url(&feed.url, &[]).into_owned();
                report.invalid.push((shown, reason));
                continue;
            }
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(url) => {
                let reason = format!("a {} URL, not http(s)", url.scheme());
                report.invalid.push((feed.url.clone(), reason));
                continue;
            }
            Err(err) => {
                report.invalid.push((feed.url.clone(), err.to_string()));
                continue;
            }
        };
        if !known.insert(url.to_string()) {
            report.already.push(feed.url.clone());
            continue;
        }
        new_tables.push(source_table(&feed.url, feed.name.as_deref(), &feed.tags));
        report.added.push(feed.clone());
    }
    if new_tables.is_empty() {
        return Ok((None, report));
    }
    Ok((Some(append_tables(text, new_tables)?), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
<head><title>Mine</title></head>
<body>
  <outline text="News">
    <outline text="World">
      <outline type="rss" text="Wire &amp; Co" xmlUrl="https://wire.example/rss" category="/breaking"/>
    </outline>
    <outline type="rss" text="https://plain.example/feed" xmlUrl="https://plain.example/feed"/>
  </outline>
  <outline type="rss" title="Tech" xmlUrl="https://tech.example/atom.xml" category="/tech,/en"/>
  <outline type="link" text="Not a feed" url="https://example.org/"/>
</body>
</opml>"#;

    #[test]
    fn folders_and_categories_become_tags() {
        let feeds = read_opml(OPML.as_bytes()).unwrap();
        assert_eq!(
            feeds,
            vec![
                OpmlFeed {
                    url: "https://wire.example/rss".into(),
                    name: Some("Wire & Co".into()),
                    tags: vec!["News".into(), "World".into(), "breaking".into()],
                },
                OpmlFeed {
                    url: "https://plain.example/feed".into(),
                    name: None,
                    tags: vec!["News".into()],
                },
                OpmlFeed {
                    url: "https://tech.example/atom.xml".into(),
                    name: Some("Tech".into()),
                    tags: vec!["tech".into(), "en".into()],
                },
            ]
        );
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(matches!(read_opml(b"<rss/>"), Err(OpmlError::NotOpml(_))));
        assert!(matches!(read_opml(b""), Err(OpmlError::NotOpml(_))));
        assert!(matches!(
            read_opml(b"<opml><body><outline></body></opml>"),
            Err(OpmlError::Xml { .. })
        ));
        assert!(matches!(
            read_opml(b"<opml>\xff</opml>"),
            Err(OpmlError::NotUtf8)
        ));
    }

    #[test]
    fn appends_keeping_comments_and_skipping_known_urls() {
        let text = "# My feeds\n[server]\nlisten = \"127.0.0.1:8080\" # local only\n\n# Wire\n[[source]]\nurl = \"HTTPS://wire.example/rss\"\n";
        let configured = [Url::parse("https://wire.example/rss").unwrap()];
        let feeds = read_opml(OPML.as_bytes()).unwrap();
        let mut with_bad = feeds.clone();
        with_bad.push(OpmlFeed {
            url: "ftp://old.example/feed".into(),
            name: None,
            tags: vec![],
        });
        with_bad.push(OpmlFeed {
            url: "https://me:pa55@private.example/feed".into(),
            name: None,
            tags: vec![],
        });
        with_bad.push(feeds[1].clone());
        let (out, report) = append_sources(text, &configured, &with_bad).unwrap();
        assert_eq!(report.added, feeds[1..].to_vec());
        assert_eq!(
            report.already,
            vec!["https://wire.example/rss", "https://plain.example/feed"]
        );
        assert_eq!(report.invalid.len(), 2);
        assert_eq!(report.invalid[1].0, "https://private.example/feed");
        assert!(report.invalid[1].1.contains("`username` and `password`"));
        let out = out.unwrap();
        assert!(out.starts_with(text), "{out}");
        assert_eq!(
            &out[text.len()..],
            "\n[[source]]\nurl = \"https://plain.example/feed\"\ntags = [\"News\"]\n\n[[source]]\nurl = \"https://tech.example/atom.xml\"\nname = \"Tech\"\ntags = [\"tech\", \"en\"]\n"
        );
    }

    #[test]
    fn appends_to_an_empty_file() {
        let feeds = read_opml(OPML.as_bytes()).unwrap();
        let (out, report) = append_sources("", &[], &feeds).unwrap();
        assert_eq!(report.added.len(), 3);
        let config =
            crate::config::parse(std::path::Path::new("t.toml"), &out.unwrap(), None).unwrap();
        assert_eq!(config.sources.len(), 3);
        assert_eq!(config.sources[0].name.as_deref(), Some("Wire & Co"));
        assert_eq!(config.sources[0].tags, ["News", "World", "breaking"]);
    }
}
