//! The URL space: the one definition of every output's path. `http` routes requests
//! with [`route`] and labels them with [`pattern`]; the documents' self links
//! ([`path`]) and the page's links to the feeds ([`PAGE_LINKS`]) are built here too.
//!
//! | path | format, scope |
//! | --- | --- |
//! | `/feed.xml`, `/atom.xml`, `/feed.json`, `/`, `/opml` | the whole river |
//! | `/tags/{tag}.xml`, `.atom`, `.json` | the sources carrying `{tag}` |
//! | `/sources/{id}.xml`, `.atom`, `.json` | one source, by its slug |

use super::{Format, Scope};
use crate::render::PageLinks;

/// The built-in WebSub hub's endpoint, relative to the base URL (`[publish] hub =
/// "builtin"`); served by the `hub` room, not rendered here.
pub const HUB: &str = "hub";
/// The first segment of a tag's feeds.
const TAGS: &str = "tags";
/// The first segment of a source's feeds.
const SOURCES: &str = "sources";

/// The whole river's path in `format`, relative to the base URL (the page is the
/// base itself).
pub const fn main_path(format: Format) -> &'static str {
    match format {
        Format::Rss => "feed.xml",
        Format::Atom => "atom.xml",
        Format::Json => "feed.json",
        Format::Html => "",
        Format::Opml => "opml",
    }
}

/// The extension of a tag's or a source's feed in `format`; the page and the OPML
/// list exist only for the whole river.
fn extension(format: Format) -> &'static str {
    match format {
        Format::Rss => "xml",
        Format::Atom => "atom",
        Format::Json => "json",
        Format::Html | Format::Opml => "",
    }
}

/// The formats a tag or a source is served in.
const VIEW_FORMATS: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

/// The path (relative to the base URL) that serves `format` of `scope`.
pub fn path(format: Format, scope: &Scope) -> String {
    let ext = extension(format);
    match (scope, format) {
        (Scope::All, format) | (_, format @ Format::Opml) => main_path(format).to_string(),
        (Scope::Tag(tag), _) => format!("{TAGS}/{}.{ext}", tag_segment(tag)),
        (Scope::Source(slug), _) => format!("{SOURCES}/{slug}.{ext}"),
    }
}

/// The format and scope `path` (absolute, as requested) names, or `None` for a path
/// that does not exist.
pub fn route(path: &str) -> Option<(Format, Scope)> {
    let relative = path.strip_prefix('/')?;
    if let Some(&format) = Format::ALL.iter().find(|&&f| main_path(f) == relative) {
        return Some((format, Scope::All));
    }
    let (kind, file) = relative.split_once('/')?;
    let (name, ext) = file.rsplit_once('.')?;
    let &format = VIEW_FORMATS.iter().find(|&&f| extension(f) == ext)?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?
        .into_owned();
    match kind {
        TAGS => Some((format, Scope::Tag(name))),
        SOURCES => Some((format, Scope::Source(name))),
        _ => None,
    }
}

/// The route of `format` of `scope` as a pattern (`/tags/{tag}.xml`), the same for
/// every tag and every source: bounded, for labels. A test checks it against [`path`].
pub fn pattern(format: Format, scope: &Scope) -> &'static str {
    match (scope, format) {
        (Scope::All, Format::Rss) => "/feed.xml",
        (Scope::All, Format::Atom) => "/atom.xml",
        (Scope::All, Format::Json) => "/feed.json",
        (Scope::All, Format::Html) => "/",
        (_, Format::Opml) => "/opml",
        (Scope::Tag(_), Format::Atom) => "/tags/{tag}.atom",
        (Scope::Tag(_), Format::Json) => "/tags/{tag}.json",
        (Scope::Tag(_), _) => "/tags/{tag}.xml",
        (Scope::Source(_), Format::Atom) => "/sources/{id}.atom",
        (Scope::Source(_), Format::Json) => "/sources/{id}.json",
        (Scope::Source(_), _) => "/sources/{id}.xml",
    }
}

/// A tag as one URL path segment (percent-encoded), as [`route`] decodes it.
pub fn tag_segment(tag: &str) -> String {
    percent_encoding::utf8_percent_encode(tag, PATH_SEGMENT).to_string()
}

/// Everything but unreserved characters (RFC 3986 §2.3) is encoded.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where the page at `/` links to, relative to it.
pub const PAGE_LINKS: PageLinks = PageLinks {
    rss: main_path(Format::Rss),
    atom: main_path(Format::Atom),
    json: main_path(Format::Json),
    opml: main_path(Format::Opml),
    source_rss,
    tag_rss,
};

/// A source's RSS feed, by its slug, relative to the base URL.
fn source_rss(slug: &str) -> String {
    path(Format::Rss, &Scope::Source(slug.to_string()))
}

/// A tag's RSS feed, relative to the base URL.
fn tag_rss(tag: &str) -> String {
    path(Format::Rss, &Scope::Tag(tag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Some((Format::Html, Scope::All)));
        assert_eq!(route("/feed.json"), Some((Format::Json, Scope::All)));
        assert_eq!(
            route("/tags/a%20b.atom"),
            Some((Format::Atom, Scope::Tag("a b".into())))
        );
        assert_eq!(
            route("/sources/0123abcd.xml"),
            Some((Format::Rss, Scope::Source("0123abcd".into())))
        );
        assert_eq!(route("/tags/x.html"), None);
        assert_eq!(route("/tags/.xml"), None);
        assert_eq!(route("/tags/a/b.xml"), None);
        assert_eq!(route("/feed.xml/"), None);
        assert_eq!(route("/nope"), None);
    }

    #[test]
    fn tags_become_one_path_segment() {
        assert_eq!(tag_segment("world"), "world");
        assert_eq!(tag_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(tag_segment("мир"), "%D0%BC%D0%B8%D1%80");
    }

    #[test]
    fn every_path_routes_back_and_matches_its_pattern() {
        let scopes = [
            Scope::All,
            Scope::Tag("a b".into()),
            Scope::Source("0123abcd".into()),
        ];
        for scope in &scopes {
            let formats: &[Format] = match scope {
                Scope::All => &Format::ALL,
                _ => &VIEW_FORMATS,
            };
            for &format in formats {
                let path = format!("/{}", path(format, scope));
                assert_eq!(route(&path), Some((format, scope.clone())), "{path}");
                let pattern = pattern(format, scope)
                    .replace("{tag}", "a%20b")
                    .replace("{id}", "0123abcd");
                assert_eq!(pattern, path);
            }
        }
        assert_eq!(PAGE_LINKS.rss, main_path(Format::Rss));
        assert_eq!(PAGE_LINKS.atom, main_path(Format::Atom));
        assert_eq!(PAGE_LINKS.json, main_path(Format::Json));
        assert_eq!(PAGE_LINKS.opml, main_path(Format::Opml));
        assert_eq!((PAGE_LINKS.tag_rss)("a b"), "tags/a%20b.xml");
        assert_eq!((PAGE_LINKS.source_rss)("0123"), "sources/0123.xml");
    }
}
