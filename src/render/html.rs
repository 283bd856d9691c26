//! The "latest news" page at `/`: the newest items, newest first, grouped under day
//! headings, each line a local time stamp (`22:20 06.02.2026`), the headline as a link
//! and the source's name.
//!
//! Plain HTML and a small inline stylesheet: readable on a phone, no JavaScript, every
//! piece of text escaped. Each headline and source name is isolated in `<bdi>`, so a
//! right-to-left override in one (U+202E) cannot reverse the text after it. Links to the feeds are relative, so the page works behind a
//! reverse proxy under any path. Called by `publish` through [`render_html`].

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::fmt::Write;

use super::{PageInfo, PageLinks, escape_markup};
use crate::item::StoredItem;

/// The stylesheet: system fonts, one readable column, muted time stamps and sources,
/// dark mode when the device asks for it.
/// The page's inline `<style>`; `http` allows exactly it in its Content-Security-Policy.
pub const STYLE: &str = "\
:root{color-scheme:light dark;--muted:#666;--rule:#ddd;--link:#0b57d0}
@media (prefers-color-scheme:dark){:root{--muted:#9a9a9a;--rule:#333;--link:#8ab4f8}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:48rem;padding:1rem;font:16px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}
header h1{margin:.2rem 0;font-size:1.5rem}
header p{margin:.2rem 0 .6rem;color:var(--muted)}
nav a{margin-right:.8rem}
a{color:var(--link);text-decoration:none}
a:hover{text-decoration:underline}
h2{font-size:1rem;margin:1.4rem 0 .3rem;padding-bottom:.2rem;border-bottom:1px solid var(--rule)}
ul{list-style:none;margin:0;padding:0}
li{padding:.3rem 0;overflow-wrap:anywhere}
time{color:var(--muted);font-variant-numeric:tabular-nums;white-space:nowrap;margin-right:.5rem}
.src{color:var(--muted);font-size:.875rem;margin-left:.4rem}
.src::before{content:\"— \"}
footer{margin-top:2rem;color:var(--muted);font-size:.875rem}
footer li{padding:.15rem 0}
";

/// Renders the page for `items` (newest first), linking to the feeds at `links`.
pub fn render_html(items: &[StoredItem], page: &PageInfo, links: &PageLinks) -> Vec<u8> {
    let mut out = String::with_capacity(4096 + items.len() * 256);
    let title = |out: &mut String| escape_markup(&page.title, out);
    out.push_str("<!DOCTYPE html>\n<html lang=\"");
    escape_markup(&page.language, &mut out);
    out.push_str("\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>");
    title(&mut out);
    out.push_str("</title>\n<meta name=\"description\" content=\"");
    escape_markup(&page.description, &mut out);
    out.push_str("\">\n");
    for (mime, href, format) in [
        ("application/rss+xml", links.rss, "RSS"),
        ("application/atom+xml", links.atom, "Atom"),
        ("application/feed+json", links.json, "JSON Feed"),
    ] {
        let _ = write!(out, "<link rel=\"alternate\" type=\"{mime}\" title=\"");
        title(&mut out);
        let _ = writeln!(out, " ({format})\" href=\"{href}\">");
    }
    let _ = writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>\n<header>");
    out.push_str("<h1>");
    title(&mut out);
    out.push_str("</h1>\n<p>");
    escape_markup(&page.description, &mut out);
    out.push_str("</p>\n<nav>");
    for (href, format) in [
        (links.rss, "RSS"),
        (links.atom, "Atom"),
        (links.json, "JSON Feed"),
        (links.opml, "OPML"),
    ] {
        let _ = write!(out, "<a href=\"{href}\">{format}</a>");
    }
    out.push_str("</nav>\n</header>\n<main>\n");

    let mut day: Option<NaiveDate> = None;
    for stored in items {
        let local = stored.timestamp.with_timezone(&page.timezone);
        if day != Some(local.date_naive()) {
            if day.is_some() {
                out.push_str("</ul>\n</section>\n");
            }
            day = Some(local.date_naive());
            let _ = writeln!(
                out,
                "<section>\n<h2>{}, {} {} {}</h2>\n<ul>",
                local.format("%A"),
                local.day(),
                local.format("%B"),
                local.year()
            );
        }
        item_line(stored, page, &mut out);
    }
    if day.is_some() {
        out.push_str("</ul>\n</section>\n");
    } else {
        out.push_str("<p>Nothing yet: the sources have not been polled.</p>\n");
    }
    out.push_str("</main>\n");
    footer(page, links, &mut out);
    out.push_str("</body>\n</html>\n");
    super::xml_chars_only(out.into_bytes())
}

fn item_line(stored: &StoredItem, page: &PageInfo, out: &mut String) {
    let local = stored.timestamp.with_timezone(&page.timezone);
    let _ = write!(
        out,
        "<li><time datetime=\"{}\">{}</time>",
        local.to_rfc3339(),
        local.format("%H:%M %d.%m.%Y")
    );
    let title = super::display_title(stored);
    match stored.item.link.as_deref().filter(|l| is_web_link(l)) {
        Some(link) => {
            out.push_str("<a href=\"");
            escape_markup(link, out);
            out.push_str("\"><bdi>");
            escape_markup(&title, out);
            out.push_str("</bdi></a>");
        }
        None => {
            out.push_str("<bdi>");
            escape_markup(&title, out);
            out.push_str("</bdi>");
        }
    }
    out.push_str("<span class=\"src\"><bdi>");
    escape_markup(&stored.origin.name, out);
    out.push_str("</bdi></span></li>\n");
}

/// Sources the page's footer lists by name; the rest are counted, with a link to the
/// OPML list of all (100 000 names would make the page tens of megabytes).
pub const MAX_LISTED_SOURCES: usize = 1000;

fn footer(page: &PageInfo, links: &PageLinks, out: &mut String) {
    out.push_str("<footer>\n");
    if !page.sources.is_empty() {
        out.push_str("<h2>Sources</h2>\n<ul>\n");
        for source in page.sources.iter().take(MAX_LISTED_SOURCES) {
            out.push_str("<li><a href=\"");
            escape_markup(&(links.source_rss)(&source.slug), out);
            out.push_str("\"><bdi>");
            escape_markup(&source.name, out);
            out.push_str("</bdi></a> · <a href=\"");
            escape_markup(&source.url, out);
            out.push_str("\">original feed</a></li>\n");
        }
        out.push_str("</ul>\n");
        if let Some(more) = page.sources.len().checked_sub(MAX_LISTED_SOURCES)
            && more > 0
        {
            out.push_str("<p>and ");
            out.push_str(&more.to_string());
            out.push_str(" more: every source is in the <a href=\"");
            escape_markup(links.opml, out);
            out.push_str("\">OPML list</a>.</p>\n");
        }
    }
    if !page.tags.is_empty() {
        out.push_str("<h2>Tags</h2>\n<p>");
        for (i, tag) in page.tags.iter().enumerate() {
            if i > 0 {
                out.push_str(" · ");
            }
            out.push_str("<a href=\"");
            escape_markup(&(links.tag_rss)(tag), out);
            out.push_str("\">");
            escape_markup(tag, out);
            out.push_str("</a>");
        }
        out.push_str("</p>\n");
    }
    let _ = writeln!(
        out,
        "<p>Times are {}. Made by {}.</p>\n</footer>",
        page.timezone.name(),
        super::GENERATOR
    );
}

/// Only http(s) links become `href`s; anything else is shown as text.
fn is_web_link(link: &str) -> bool {
    let lower = link.get(..8).unwrap_or(link).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The page's time stamp format for `time` in `page`'s zone, for tests and tools.
pub fn local_stamp(time: DateTime<Utc>, page: &PageInfo) -> String {
    time.with_timezone(&page.timezone)
        .format("%H:%M %d.%m.%Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{links, page, stored};
    use super::*;

    #[test]
    fn items_in_order_with_local_times_under_day_headings() {
        // 2026-02-06 19:20 UTC is 22:20 in Moscow; 21:30 UTC is already the 7th there.
        let items = vec![
            stored("b", Some("http://a.example/b?x=1&y=2"), 1_770_413_400),
            stored("a", Some("javascript:alert(1)"), 1_770_405_600),
        ];
        let html = String::from_utf8(render_html(
            &items,
            &page(chrono_tz::Europe::Moscow),
            &links(),
        ))
        .unwrap();
        let b = html
            .find("00:30 07.02.2026")
            .expect("first item's local time");
        let a = html
            .find("22:20 06.02.2026")
            .expect("second item's local time");
        assert!(b < a, "newest first");
        assert!(html.contains("<h2>Saturday, 7 February 2026</h2>"));
        assert!(html.contains("<h2>Friday, 6 February 2026</h2>"));
        assert!(
            html.contains("href=\"http://a.example/b?x=1&amp;y=2\"><bdi>Title &lt;b&gt;</bdi></a>")
        );
        assert!(!html.contains("javascript:"), "only web links are links");
        assert!(html.contains("<title>Latest &lt;news&gt;</title>"));
        assert!(html.contains("<span class=\"src\"><bdi>A &amp; B</bdi></span>"));
        assert!(html.contains("rel=\"alternate\" type=\"application/atom+xml\""));
        assert!(html.contains("href=\"tags/world.xml\""));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn past_a_thousand_sources_the_footer_counts_the_rest() {
        let mut page = page(chrono_tz::UTC);
        let one = page.sources[0].clone();
        let listed = |page: &PageInfo| {
            let html = String::from_utf8(render_html(&[], page, &links())).unwrap();
            (html.matches("original feed").count(), html)
        };
        page.sources = vec![one.clone(); MAX_LISTED_SOURCES];
        let (count, html) = listed(&page);
        assert_eq!(count, MAX_LISTED_SOURCES);
        assert!(!html.contains(" more: "));
        page.sources = vec![one; MAX_LISTED_SOURCES + 5];
        let (count, html) = listed(&page);
        assert_eq!(count, MAX_LISTED_SOURCES);
        assert!(
            html.contains(
                "<p>and 5 more: every source is in the <a href=\"opml\">OPML list</a>.</p>"
            ),
            "{html}"
        );
    }
}
