//! The sources as OPML 2.0 (`/opml`), so a reader can subscribe to each of them
//! directly instead of to the merged river.
//!
//! One `<outline type="rss">` per configured source: its name, its feed URL
//! (`xmlUrl`), its tags as OPML categories (`/world,/en`), and its tributary id
//! (`tributaryId`, the `{id}` of `/sources/{id}.xml`). Called by `publish` through
//! [`render_opml`].

use super::{PageInfo, escape_markup};

/// Renders `page.sources` as an OPML 2.0 subscription list.
pub fn render_opml(page: &PageInfo) -> Vec<u8> {
    let mut out = String::with_capacity(256 + page.sources.len() * 200);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n<head>\n<title>",
    );
    escape_markup(&page.title, &mut out);
    out.push_str("</title>\n<docs>http://opml.org/spec2.opml</docs>\n</head>\n<body>\n");
    for source in &page.sources {
        // A name is text, as readers (and `import-opml`) read `text` back.
        out.push_str("<outline type=\"rss\" text=\"");
        escape_markup(&source.name, &mut out);
        out.push_str("\" title=\"");
        escape_markup(&source.name, &mut out);
        out.push_str("\" xmlUrl=\"");
        escape_markup(&source.url, &mut out);
        out.push('"');
        if !source.tags.is_empty() {
            let categories: Vec<String> = source
                .tags
                .iter()
                .map(|t| format!("/{}", t.replace([',', '/'], " ")))
                .collect();
            out.push_str(" category=\"");
            escape_markup(&categories.join(","), &mut out);
            out.push('"');
        }
        out.push_str(" tributaryId=\"");
        escape_markup(&source.slug, &mut out);
        out.push_str("\"/>\n");
    }
    out.push_str("</body>\n</opml>\n");
    super::xml_chars_only(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::page;
    use super::*;

    #[test]
    fn lists_every_source_escaped() {
        let opml = String::from_utf8(render_opml(&page(chrono_tz::UTC))).unwrap();
        assert!(
            opml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">")
        );
        assert!(opml.contains(
            "<outline type=\"rss\" text=\"A &amp; B\" title=\"A &amp; B\" xmlUrl=\"http://a.example/rss\" category=\"/world\" tributaryId=\""
        ));
        assert!(opml.contains("<title>Latest &lt;news&gt;</title>"));
    }
}
