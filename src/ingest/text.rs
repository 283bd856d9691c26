//! Pure: the one-line texts of a feed (titles above all) as plain text.
//!
//! A title is plain text. Where the source says it is text (Atom `type="text"`, every
//! JSON Feed title) it is kept as written, `<` and `&` included; where it is HTML
//! (Atom `type="html"`/`"xhtml"`) its tags are stripped and its entities decoded, to a
//! fixed point, however many times the publisher escaped it. RSS does not say, so an
//! RSS title is read the way feedparser reads it: as text unless it looks like HTML
//! ([`looks_like_html`]). How a title holding `<` is written into each output is the
//! renderers' business (`render`). Called by `normalize` and `scrape`.

use std::sync::LazyLock;

/// How a format marks its one-line texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marking {
    /// The text is plain text (JSON Feed, Atom `type="text"`).
    Text,
    /// The text is HTML (Atom `type="html"`, `"xhtml"`).
    Html,
    /// The format does not say (RSS 0.9x, 1.0, 2.0): HTML when it looks like HTML.
    Guess,
}

/// A one-line text as plain text, read as `marking` says; `None` when nothing is left.
pub fn line_text(text: &str, marking: Marking) -> Option<String> {
    let html = match marking {
        Marking::Text => false,
        Marking::Html => true,
        Marking::Guess => looks_like_html(text),
    };
    if html {
        plain_text(text)
    } else {
        one_line(text)
    }
}

/// Whether an undeclared text is HTML, by feedparser's `looks_like_html` (which errs
/// on the side of text): it holds a closing tag or an entity reference, every tag it
/// holds is one of [`FEEDPARSER_ELEMENTS`] or of the [`REMOVED_ELEMENTS`], and every
/// named entity is one HTML defines. So `History of the <blink> tag` and `a < b` are
/// text, `<b>x</b>` and `Tom &amp; Jerry` are HTML. feedparser leaves out the elements
/// its sanitizer removes, which makes `<script>x()</script>News` text to it; here that
/// is HTML, and stripped.
pub fn looks_like_html(text: &str) -> bool {
    static CLOSING_TAG_OR_ENTITY: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"</\w+>|&#?\w+;").expect("a fixed pattern"));
    static TAG: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"</?(\w+)").expect("a fixed pattern"));
    static NAMED_ENTITY: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"&(\w+);").expect("a fixed pattern"));
    if !text.contains(['<', '&']) || !CLOSING_TAG_OR_ENTITY.is_match(text) {
        return false;
    }
    let known_tags = TAG.captures_iter(text).all(|tag| {
        let name = tag[1].to_ascii_lowercase();
        FEEDPARSER_ELEMENTS.binary_search(&name.as_str()).is_ok()
            || REMOVED_ELEMENTS.contains(&name.as_str())
    });
    known_tags
        && NAMED_ENTITY
            .captures_iter(text)
            .all(|entity| decode_once(&entity[0]) != entity[0])
}

/// The elements feedparser's sanitizer keeps (`_HTMLSanitizer.acceptable_elements`,
/// feedparser 6.0), sorted: an undeclared text with any other tag is text to it.
const FEEDPARSER_ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "area",
    "article",
    "aside",
    "audio",
    "b",
    "big",
    "blockquote",
    "br",
    "button",
    "canvas",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "command",
    "datagrid",
    "datalist",
    "dd",
    "del",
    "details",
    "dfn",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "em",
    "fieldset",
    "figcaption",
    "figure",
    "font",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "i",
    "img",
    "input",
    "ins",
    "kbd",
    "keygen",
    "label",
    "legend",
    "li",
    "m",
    "map",
    "menu",
    "meter",
    "multicol",
    "nav",
    "nextid",
    "noscript",
    "ol",
    "optgroup",
    "option",
    "output",
    "p",
    "pre",
    "progress",
    "q",
    "s",
    "samp",
    "section",
    "select",
    "small",
    "sound",
    "source",
    "spacer",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "video",
];

/// HTML elements feedparser's sanitizer removes, which are HTML all the same.
const REMOVED_ELEMENTS: &[&str] = &[
    "applet", "base", "body", "embed", "frame", "frameset", "head", "html", "iframe", "link",
    "math", "meta", "object", "param", "script", "style", "svg", "title",
];

/// 16 KiB of a title's source: a title longer than `normalize::MAX_TITLE_CHARS` is
/// cut anyway, and this leaves room for its markup and escapes while bounding what
/// decoding it costs.
pub const MAX_TITLE_BYTES: usize = 16 * 1024;

/// 16 rounds of decoding. A publisher escapes twice, a tool on the way once more;
/// runs of `&amp;amp;…` collapse in one round whatever their depth ([`collapse_amps`]),
/// so only tags hidden inside tags need a round per level, and nothing real nests 16.
const MAX_ROUNDS: usize = 16;

/// Markup-free text from HTML: tags stripped, entities decoded (to a fixed point:
/// also those a publisher escaped twice or ten times), whitespace collapsed, control
/// characters removed. `None` when nothing is left. The result has no markup and
/// nothing left to decode: read as HTML once more, it is the same text.
pub fn plain_text(text: &str) -> Option<String> {
    let mut text = collapse_amps(text);
    let mut settled = false;
    for _ in 0..MAX_ROUNDS {
        if !text.contains(['<', '&']) {
            settled = true;
            break;
        }
        let decoded = collapse_amps(&decode_once(&text));
        if decoded == text {
            settled = true;
            break;
        }
        text = decoded;
    }
    if !settled {
        // Nested deeper than any publisher nests: what could still open markup or an
        // entity goes, so the title stays text.
        text = drop_markup_openers(&text);
    }
    one_line(&text)
}

/// One round of reading `text` as HTML: tags dropped (`script` and `style` with their
/// content), entities decoded.
fn decode_once(text: &str) -> String {
    static STRIP: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut builder = ammonia::Builder::empty();
        builder.clean_content_tags(["script", "style"].into_iter().collect());
        builder
    });
    // html5ever decodes every entity and drops every tag; its serializer then escapes
    // just these four, which are undone here (`&amp;` last).
    STRIP
        .clean(text)
        .to_string()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// `text` with every run of escaped ampersands (`&amp;amp;amp;`, `&#38;amp;`,
/// `&#x26;`) written as the `&` that decoding it to a fixed point gives.
fn collapse_amps(text: &str) -> String {
    static AMPS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)&(?:amp;|#0*38;|#x0*26;)+").expect("a fixed pattern")
    });
    if !text.contains('&') {
        return text.to_string();
    }
    AMPS.replace_all(text, "&").into_owned()
}

/// `text` without the `<` that could open a tag, comment or declaration and the `&`
/// that could open an entity.
fn drop_markup_openers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut kept = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let opens = match c {
            '<' => next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?'),
            '&' => next.is_ascii_alphanumeric() || next == '#',
            _ => false,
        };
        if !opens {
            kept.push(c);
        }
    }
    kept
}

/// `text` on one line: runs of white space, control characters and characters XML
/// cannot carry become one space, and the ends are trimmed. `None` when empty.
pub fn one_line(text: &str) -> Option<String> {
    let collapsed = text
        .split(|c: char| c.is_whitespace() || c.is_control() || !crate::item::is_xml_char(c))
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_elements_are_sorted_for_binary_search() {
        assert!(FEEDPARSER_ELEMENTS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn html_is_told_from_text_as_feedparser_tells_it() {
        for html in [
            "<b>Bold</b>",
            "Tom &amp; Jerry",
            "a &lt;b&gt; c",
            "&#169; 2026",
            "<p>One<br>two</p>",
            "<script>alert(1)</script>News",
        ] {
            assert!(looks_like_html(html), "{html}");
        }
        for text in [
            "History of the <blink> tag",
            "a < b && c > d",
            "Tom & Jerry",
            "<blink>x</blink>",
            "&bogus; entity",
            "<img src=x onerror=alert(1)>",
        ] {
            assert!(!looks_like_html(text), "{text}");
        }
    }

    #[test]
    fn text_titles_keep_their_angle_brackets() {
        let title = "History of the <blink> tag &amp; more";
        assert_eq!(line_text(title, Marking::Text).as_deref(), Some(title));
        assert_eq!(
            line_text("History of the <blink> tag", Marking::Guess).as_deref(),
            Some("History of the <blink> tag")
        );
        assert_eq!(
            line_text("&lt;i&gt;Hi&lt;/i&gt; <b>there</b>", Marking::Html).as_deref(),
            Some("Hi there")
        );
        assert_eq!(
            line_text("a\u{1}b\u{fffe}  c\n", Marking::Text).as_deref(),
            Some("a b c")
        );
    }

    #[test]
    fn html_is_decoded_to_a_fixed_point_whatever_the_nesting() {
        for depth in [1, 2, 4, 5, 40, 5000] {
            let amps = "amp;".repeat(depth);
            let title = format!("a &{amps}lt;img src=x onerror=alert(1)&{amps}gt; b &{amps}amp; c");
            assert_eq!(plain_text(&title).as_deref(), Some("a b & c"), "{depth}");
        }
        // Tags hidden inside tags, one level per round, deeper than any feed goes.
        let deep = format!("x {}img{} y", "&lt;".repeat(40), "&gt;".repeat(40));
        let title = plain_text(&deep).unwrap();
        assert!(!title.contains("<i"), "{title}");
        assert_eq!(plain_text(&title).as_deref(), Some(title.as_str()));
    }
}
