//! RSS as its dialects write it, made readable by feed-rs: the `<rss>` root's version and
//! default namespace, and namespaces spelled in more ways than one. Part of
//! [`super::repair`].

use std::sync::LazyLock;

use super::Marker;

/// RSS's own namespace as feed-rs knows it (RSS 1.0's).
const RSS_NAMESPACE: &str = "http://purl.org/rss/1.0/";

/// The `<rss>` root tag made readable: without a `version` it is read as RSS 2.0, and a
/// default namespace it declares (UserLand's, Harvard's, or any other) is RSS's own, as
/// readers take it: elements in an unknown namespace would be ignored. `None` when the
/// root needs neither.
pub(super) fn repair_rss_root(text: &str) -> Option<String> {
    let at = text.find("<rss")?;
    if !text[at + 4..].starts_with(|c: char| c.is_whitespace() || c == '>') {
        return None;
    }
    let tag_end = at + text[at..].find('>')?;
    let tag = &text[at..tag_end];
    let namespace = default_namespace(tag)
        .filter(|(start, end)| &tag[*start..*end] != RSS_NAMESPACE)
        .map(|(start, end)| (at + start, at + end));
    let add_version = !tag.contains("version");
    if namespace.is_none() && !add_version {
        return None;
    }
    let mut fixed = String::with_capacity(text.len() + 32);
    fixed.push_str(&text[..at + 4]);
    if add_version {
        fixed.push_str(" version=\"2.0\"");
    }
    match namespace {
        Some((start, end)) => {
            fixed.push_str(&text[at + 4..start]);
            fixed.push_str(RSS_NAMESPACE);
            fixed.push_str(&text[end..]);
        }
        None => fixed.push_str(&text[at + 4..]),
    }
    Some(fixed)
}

/// Where the value of a start tag's default namespace declaration (`xmlns="..."`) lies
/// within it.
fn default_namespace(tag: &str) -> Option<(usize, usize)> {
    static DECLARATION: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"\sxmlns\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
            .expect("the declaration pattern is valid")
    });
    let caps = DECLARATION.captures(tag)?;
    let value = caps.get(1).or_else(|| caps.get(2))?;
    Some((value.start(), value.end()))
}

/// RSS's namespace as UserLand (0.9x, 2.0) and Harvard spelled it.
pub(super) const RSS_SPELLINGS: &str =
    r#""http://(?:backend\.userland\.com/rss2?|blogs\.law\.harvard\.edu/tech/rss)""#;
/// The iTunes namespace as publishers spell it, but for the spelling feed-rs knows:
/// `https`, or `DTDs`/`PodCast` in some mix of cases.
pub(super) const ITUNES_SPELLINGS: &str = concat!(
    r#""(?:https://www\.itunes\.com/(?i:dtds/podcast-1\.0\.dtd)"#,
    r#"|http://www\.itunes\.com/(?:DTDs|DTDS|Dtds)/(?i:podcast-1\.0\.dtd)"#,
    r#"|http://www\.itunes\.com/dtds/(?:PodCast|Podcast|PODCAST)-1\.0\.dtd)""#
);

/// Namespaces spelled in more ways than one (each a marker's pattern), and the spelling
/// feed-rs knows.
pub(super) static SPELLING_FIXES: LazyLock<[(Marker, regex::Regex, &str); 2]> =
    LazyLock::new(|| {
        [
            (Marker::RssNamespaceAlias, "\"http://purl.org/rss/1.0/\""),
            (
                Marker::ItunesNamespace,
                "\"http://www.itunes.com/dtds/podcast-1.0.dtd\"",
            ),
        ]
        .map(|(marker, right)| {
            let spellings =
                regex::Regex::new(&marker.pattern()).expect("the spellings are a pattern");
            (marker, spellings, right)
        })
    });
