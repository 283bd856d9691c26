//! Pure: the allow-list sanitizer that item HTML (summaries, content) passes before it
//! is stored, since the merged feed is rendered by other people's readers.
//!
//! What it keeps follows feedparser's sanitizer (the reference reader): the elements
//! ammonia allows by default, the presentational attributes that give tables and
//! figures their shape (`align`, `width`, `colspan`, `summary`, `start`, `dir`, ...),
//! and the part of `style` that only paints (colours, fonts, spacing, borders,
//! alignment; never `url()`, `expression`, escapes, positioning or `@import`). Never
//! script, event handlers, `javascript:`/`data:` URLs, `<style>`, `<link>`, `<meta>`,
//! `<base>`, `<form>` or SVG. Relative URLs resolve against the item's base; 1×1
//! tracking images go. Called by `normalize` and `scrape`.

use ammonia::UrlRelative;
use std::borrow::Cow;
use std::sync::LazyLock;
use url::Url;

use super::simple_html::{self, Hooks, Policy};

/// The allow-list sanitizer for one item's HTML, with relative URLs made absolute
/// against the item's base.
pub(crate) struct Sanitizer {
    base: Option<Url>,
}

thread_local! {
    /// The base of the item being sanitized on this thread, read by [`ITEM_HTML`]'s
    /// URL rewriter: one shared ammonia set-up serves every item, since building its
    /// allow-list tables costs about as much as cleaning a short summary.
    static ITEM_BASE: std::cell::RefCell<Option<Url>> = const { std::cell::RefCell::new(None) };
}

/// ammonia's default allow-list, plus `<font>` and the attributes of [`GENERIC`]
/// (`style` through [`clean_style`]); relative URLs
/// resolve against [`ITEM_BASE`], and are dropped when the item has no base.
static ITEM_HTML: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder.url_relative(UrlRelative::Custom(Box::new(AgainstItemBase)));
    builder.add_tags(["font"]);
    builder.add_generic_attributes(GENERIC);
    builder.attribute_filter(filter_attribute);
    builder
});

/// [`ITEM_HTML`]'s allow-list, for the fast path of HTML built as written.
static ITEM_POLICY: LazyLock<Policy> = LazyLock::new(|| Policy::new(&ITEM_HTML));

/// [`ITEM_HTML`]'s attribute filter: `style` keeps only what paints ([`clean_style`]).
fn filter_attribute<'v>(_element: &str, attribute: &str, value: &'v str) -> Option<Cow<'v, str>> {
    match attribute {
        "style" => clean_style(value).map(Cow::Owned),
        _ => Some(value.into()),
    }
}

/// Attributes every element may keep, as feedparser keeps them
/// (`acceptable_attributes`): they set direction, alignment, size, colour or the
/// state of a control, describe (`abbr`, `summary`, `title`), or paint (`style`,
/// filtered). None of them loads or runs anything. Left out of feedparser's list:
/// every attribute that names a URL (`action`, `background`, `data`, `dynsrc`,
/// `lowsrc`, `longdesc`, `ping`, `poster`, `usemap`, `icon`, `urn`, `vrml`; ammonia
/// vets `href` and `src` where they belong), IE's data binding (`datafld`, `datasrc`,
/// `datapagesize`), what names or targets parts of the reader's own page (`id`,
/// `name`, `class`, `for`, `form`, `list`, `target`, `rel`), and what takes the
/// reader's focus or keys (`accesskey`, `autofocus`, `tabindex`, `contenteditable`,
/// `draggable`, `hidefocus`).
pub const GENERIC: &[&str] = &[
    "abbr",
    "accept",
    "accept-charset",
    "align",
    "axis",
    "balance",
    "bgcolor",
    "bgproperties",
    "border",
    "bordercolor",
    "bordercolordark",
    "bordercolorlight",
    "bottompadding",
    "cellpadding",
    "cellspacing",
    "ch",
    "char",
    "charoff",
    "charset",
    "checked",
    "choff",
    "clear",
    "color",
    "cols",
    "colspan",
    "compact",
    "controls",
    "coords",
    "datetime",
    "default",
    "delay",
    "dir",
    "disabled",
    "end",
    "face",
    "frame",
    "galleryimg",
    "gutter",
    "headers",
    "height",
    "hidden",
    "high",
    "hreflang",
    "hspace",
    "inputmode",
    "ismap",
    "keytype",
    "label",
    "lang",
    "leftspacing",
    "loop",
    "loopcount",
    "loopend",
    "loopstart",
    "low",
    "max",
    "maxlength",
    "media",
    "method",
    "min",
    "multiple",
    "nohref",
    "noshade",
    "nowrap",
    "open",
    "optimum",
    "pattern",
    "point-size",
    "pqg",
    "preload",
    "prompt",
    "radiogroup",
    "readonly",
    "repeat-max",
    "repeat-min",
    "replace",
    "required",
    "reversed",
    "rev",
    "rightspacing",
    "rows",
    "rowspan",
    "rules",
    "scope",
    "selected",
    "shape",
    "size",
    "span",
    "start",
    "step",
    "style",
    "summary",
    "suppress",
    "template",
    "title",
    "toppadding",
    "type",
    "unselectable",
    "valign",
    "value",
    "variable",
    "volume",
    "vspace",
    "width",
    "wrap",
];

/// The CSS properties kept whatever their value passes the gauntlet: they paint, set
/// type or size and align, or show a pointer (feedparser's `acceptable_css_properties`,
/// without the aural ones). Positioning (`position`, `z-index`, `top`, `left`...) is
/// not among them.
const CSS_PROPERTIES: &[&str] = &[
    "background-color",
    "border-bottom-color",
    "border-collapse",
    "border-color",
    "border-left-color",
    "border-right-color",
    "border-top-color",
    "clear",
    "color",
    "cursor",
    "direction",
    "display",
    "float",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "overflow",
    "text-align",
    "text-decoration",
    "text-indent",
    "unicode-bidi",
    "vertical-align",
    "white-space",
    "width",
];

/// The keywords a `background*`, `border*`, `margin*` or `padding*` value may hold
/// besides lengths and colours (feedparser's `acceptable_css_keywords`).
const CSS_KEYWORDS: &[&str] = &[
    "!important",
    "aqua",
    "auto",
    "black",
    "block",
    "blue",
    "bold",
    "both",
    "bottom",
    "brown",
    "center",
    "collapse",
    "dashed",
    "dotted",
    "fuchsia",
    "gray",
    "green",
    "italic",
    "left",
    "lime",
    "maroon",
    "medium",
    "navy",
    "none",
    "normal",
    "nowrap",
    "olive",
    "pointer",
    "purple",
    "red",
    "right",
    "silver",
    "solid",
    "teal",
    "top",
    "transparent",
    "underline",
    "white",
    "yellow",
];

/// The part of a `style` attribute that only paints, as feedparser's `sanitize_style`
/// keeps it: `url(…)` removed; a style holding anything but letters, digits, spaces,
/// `:;,#%.!`, hyphens inside words, quoted words and parenthesized numbers (so no
/// escape, `expression(`, `@import`, comment) is dropped whole; of the rest, the
/// declarations of [`CSS_PROPERTIES`], and those of `background*`, `border*`,
/// `margin*`, `padding*` made of [`CSS_KEYWORDS`], lengths and colours. `None` when
/// nothing is left.
pub fn clean_style(style: &str) -> Option<String> {
    static URL: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"(?i)url\s*\(\s*[^\s)]+?\s*\)\s*").expect("fixed"));
    static GAUNTLET: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"^(?:[:,;#%.\sa-zA-Z0-9!]|[A-Za-z0-9_]-[A-Za-z0-9_]|'[\sA-Za-z0-9_]+'|"[\sA-Za-z0-9_]+"|\([\d,\s]+\))*$"#,
        )
        .expect("fixed")
    });
    static DECLARATION: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"([-A-Za-z0-9_]+)\s*:\s*([^:;]*)").expect("fixed"));
    static WHOLE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"^(?:\s*[-A-Za-z0-9_]+\s*:\s*[^:;]*;?)*\s*$").expect("fixed")
    });
    static VALUE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)^(?:#[0-9a-f]+|rgb\(\d+%?,\d*%?,?\d*%?\)?|\d{0,2}\.?\d{0,2}(?:cm|em|ex|in|mm|pc|pt|px|%|,|\))?)$",
        )
        .expect("fixed")
    });
    let style = URL.replace_all(style, " ");
    if !GAUNTLET.is_match(&style) || !WHOLE.is_match(&style) {
        return None;
    }
    let mut kept = Vec::new();
    for declaration in DECLARATION.captures_iter(&style) {
        let (property, value) = (declaration[1].to_ascii_lowercase(), declaration[2].trim());
        if value.is_empty() {
            continue;
        }
        let painted = CSS_PROPERTIES.contains(&property.as_str())
            || (["background", "border", "margin", "padding"]
                .contains(&property.split('-').next().unwrap_or(""))
                && value.split_whitespace().all(|word| {
                    CSS_KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                        || VALUE.is_match(word)
                }));
        if painted {
            kept.push(format!("{property}: {value};"));
        }
    }
    (!kept.is_empty()).then(|| kept.join(" "))
}

/// Resolves a relative URL against [`ITEM_BASE`].
struct AgainstItemBase;

impl ammonia::UrlRelativeEvaluate<'static> for AgainstItemBase {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        ITEM_BASE.with(|base| against(base.borrow().as_ref(), url).map(Cow::Owned))
    }
}

/// A relative URL made absolute against the item's base; `None` without a base.
fn against(base: Option<&Url>, url: &str) -> Option<String> {
    Some(String::from(base?.join(url).ok()?))
}

impl Sanitizer {
    pub(crate) fn new(base: Option<&Url>) -> Self {
        Sanitizer {
            base: base.cloned(),
        }
    }

    /// Sanitized HTML, or `None` when nothing is left. `plain` text is escaped, not parsed.
    pub(crate) fn clean(&self, text: &str, plain: bool) -> Option<String> {
        let html = if plain {
            escape_text(text)
        } else if let Some(html) = text_as_html(text) {
            html
        } else if let Some(html) = self.clean_simple(text) {
            drop_tracking_pixels(html)
        } else {
            ITEM_BASE.with(|base| base.replace(self.base.clone()));
            let document = ITEM_HTML.clean(text);
            ITEM_BASE.with(|base| base.replace(None));
            // Serialized straight into one buffer: `to_string` would serialize into
            // another and copy it over.
            let mut cleaned = Vec::with_capacity(text.len() + text.len() / 8);
            document
                .write_to(&mut cleaned)
                .expect("writing to memory cannot fail");
            let cleaned = String::from_utf8(cleaned).expect("html5ever writes UTF-8");
            drop_tracking_pixels(cleaned)
        };
        let trimmed = html.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == html.len() {
            Some(html)
        } else {
            Some(trimmed.to_string())
        }
    }
}

impl Sanitizer {
    /// `html` as ammonia would clean it, when the HTML parser builds its tree as
    /// written (see [`simple_html`]): ten times faster than building the tree.
    fn clean_simple(&self, html: &str) -> Option<String> {
        let resolve = |url: &str| against(self.base.as_ref(), url);
        let hooks = Hooks {
            filter: filter_attribute,
            resolve: &resolve,
        };
        simple_html::clean(html, &ITEM_POLICY, &hooks)
    }
}

/// Removes 1×1 (and 0×0) images: they carry no content, only tell the publisher who
/// read the item. Runs on ammonia's output, whose attributes are always quoted.
fn drop_tracking_pixels(html: String) -> String {
    // Most items have no image of either size: keep the string as it is.
    if !html.contains("<img") || !["=\"0\"", "=\"1\""].iter().any(|size| html.contains(size)) {
        return html;
    }
    let tiny = |tag: &str, attribute: &str| {
        ["0", "1"]
            .iter()
            .any(|size| tag.contains(&format!("{attribute}=\"{size}\"")))
    };
    let mut kept = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<img") {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start..start + len + 1];
        kept.push_str(&rest[..start]);
        if !(tiny(tag, "width") && tiny(tag, "height")) {
            kept.push_str(tag);
        }
        rest = &rest[start + len + 1..];
    }
    kept.push_str(rest);
    kept
}

/// What the sanitizer makes of `text` when it holds no markup, without parsing it:
/// `None` when it holds a `<` or `&` (markup or an entity), or a character html5ever
/// rewrites while parsing (a carriage return, a NUL). Otherwise the text as
/// html5ever's serializer writes a text node: `>` and U+00A0 escaped, a byte order
/// mark at the start dropped as the parser drops it, nothing else changed. Most
/// titles and many summaries are such text; parsing them costs ten times more.
fn text_as_html(text: &str) -> Option<String> {
    if text.contains(['<', '&', '\r', '\0']) {
        return None;
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut html = String::with_capacity(text.len() + 8);
    simple_html::escape(text, false, &mut html);
    Some(html)
}

/// Plain text as HTML: the five characters HTML gives meaning to, escaped.
fn escape_text(text: &str) -> String {
    let mut html = String::with_capacity(text.len());
    crate::render::escape_markup(text, &mut html);
    html
}

/// `html` cleaned by ammonia, and by the fast path when it reads it, against `base`.
#[cfg(test)]
pub(super) fn by_both_paths(html: &str, base: Option<&Url>) -> (String, Option<String>) {
    ITEM_BASE.with(|item_base| item_base.replace(base.cloned()));
    let ammonia = ITEM_HTML.clean(html).to_string();
    ITEM_BASE.with(|item_base| item_base.replace(None));
    (ammonia, Sanitizer::new(base).clean_simple(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> String {
        let base = Url::parse("https://a.example/post/").unwrap();
        Sanitizer::new(Some(&base)).clean(html, false).unwrap()
    }

    /// The sanitizer's output for `text`, always parsed.
    fn parsed(text: &str) -> String {
        ITEM_BASE.with(|base| base.replace(None));
        ITEM_HTML.clean(text).to_string()
    }

    #[test]
    fn text_without_markup_reads_as_the_parser_reads_it() {
        let texts = [
            "plain words",
            "  spaces\tand\nlines \n",
            "a > b, c >= d >>",
            "non\u{a0}breaking\u{a0}\u{a0}space",
            "é ü Ω 日本語 👍 \u{200b}\u{feff}",
            "\u{feff}byte order mark",
            "\u{feff}\u{feff}twice",
            "controls \u{1}\u{8}\u{b}\u{c}\u{7f}\u{85} and \u{fffe}\u{ffff}",
            "quotes \" ' ` = / \\ ; # %",
            "",
            " ",
        ];
        for text in texts {
            assert_eq!(
                text_as_html(text).as_deref(),
                Some(parsed(text).as_str()),
                "{text:?}"
            );
        }
        // Anything the parser rewrites takes the parser's path.
        for text in ["a < b", "Tom &amp; Jerry", "AT&T", "line\r\nend", "nul\0"] {
            assert_eq!(text_as_html(text), None, "{text:?}");
        }
        let sanitizer = Sanitizer::new(None);
        assert_eq!(
            sanitizer.clean(" x > y\u{a0}", false).as_deref(),
            Some("x &gt; y&nbsp;")
        );
        assert_eq!(sanitizer.clean(" \n ", false), None);
    }

    #[test]
    fn tables_and_figures_keep_their_shape() {
        let table = r##"<table border="1" cellpadding="4" cellspacing="0" width="100%" summary="s" align="center"><tr valign="top" bgcolor="#eee"><th scope="col" abbr="Q" width="30">Q</th><td colspan="2" rowspan="3" align="right" dir="rtl" lang="he">x</td></tr></table><ol start="3" type="a"><li value="4" type="i">i</li></ol><img src="/i.png" alt="A" title="T" width="600" height="400" border="0"><time datetime="2026-02-06">Feb 6</time><blockquote cite="https://q.example/">q</blockquote><font color="red" face="serif" size="2">f</font>"##;
        assert_eq!(
            clean(table),
            r##"<table border="1" cellpadding="4" cellspacing="0" width="100%" summary="s" align="center"><tbody><tr valign="top" bgcolor="#eee"><th scope="col" abbr="Q" width="30">Q</th><td colspan="2" rowspan="3" align="right" dir="rtl" lang="he">x</td></tr></tbody></table><ol start="3" type="a"><li value="4" type="i">i</li></ol><img src="https://a.example/i.png" alt="A" title="T" width="600" height="400" border="0"><time datetime="2026-02-06">Feb 6</time><blockquote cite="https://q.example/">q</blockquote><font color="red" face="serif" size="2">f</font>"##
        );
    }

    #[test]
    fn style_keeps_what_paints_and_nothing_that_loads_runs_or_moves() {
        let kept = [
            ("color: red", "color: red;"),
            (
                "text-align:center; font-weight: bold; background-color: #fff",
                "text-align: center; font-weight: bold; background-color: #fff;",
            ),
            (
                "margin: 0 auto; padding: 1em 2px; border: 1px solid rgb(0,0,0)",
                "margin: 0 auto; padding: 1em 2px; border: 1px solid rgb(0,0,0);",
            ),
            (
                "font-family: 'Times New Roman'",
                "font-family: 'Times New Roman';",
            ),
            (
                "background: url(http://t.example/x.png) red",
                "background: red;",
            ),
            (
                "color: blue; position: absolute; z-index: 9; top: 0",
                "color: blue;",
            ),
        ];
        for (style, expected) in kept {
            assert_eq!(clean_style(style).as_deref(), Some(expected), "{style}");
        }
        for style in [
            "width: expression(alert(1))",
            "behavior: url(x.htc)",
            "-moz-binding: url(x.xml#y)",
            "color: red; background: u\\72l(javascript:alert(1))",
            "@import 'x.css'",
            "position: fixed; top: 0; left: 0",
            "color: red /* x */",
            "background-image: url(javascript:alert(1))",
            "margin: -9999px",
        ] {
            assert_eq!(clean_style(style), None, "{style}");
        }
        assert_eq!(
            clean(r#"<p style="color: red; position: absolute" onclick="x()">p</p>"#),
            r#"<p style="color: red;">p</p>"#
        );
    }

    #[test]
    fn nothing_that_runs_or_loads_passes() {
        let hostile = r#"<img src="x" onerror="alert(1)"><a href="javascript:alert(1)" style="color:red">a</a><a href="data:text/html,x">d</a><style>p{}</style><link rel="stylesheet" href="/x.css"><meta http-equiv="refresh" content="0"><base href="https://evil.example/"><form action="/x"><input name="p"></form><svg><script>alert(1)</script></svg><iframe src="https://evil.example/"></iframe><div align="center" onmouseover="x()" style="behavior: url(x)">ok</div>"#;
        let cleaned = clean(hostile);
        for bad in [
            "onerror",
            "javascript",
            "data:",
            "<style",
            "<link",
            "<meta",
            "<base",
            "<form",
            "<input",
            "<svg",
            "<script",
            "<iframe",
            "onmouseover",
            "behavior",
        ] {
            assert!(!cleaned.contains(bad), "{bad} in {cleaned}");
        }
        assert!(
            cleaned.contains(r#"<div align="center">ok</div>"#),
            "{cleaned}"
        );
    }

    #[test]
    fn describing_attributes_stay_on_any_element_and_naming_ones_go() {
        let cleaned = clean(
            r#"<span abbr="a" title="t" lang="fr" width="3">x</span><td background="javascript:x()" id="main" name="n" class="c" accesskey="k" tabindex="1" datasrc="d">y</td><p lowsrc="javascript:x()" dynsrc="x" longdesc="javascript:x()" usemap="m">z</p>"#,
        );
        assert!(
            cleaned.contains(r#"<span abbr="a" title="t" lang="fr" width="3">x</span>"#),
            "{cleaned}"
        );
        for gone in [
            "background",
            "javascript",
            "id=",
            "name=",
            "class=",
            "accesskey",
            "tabindex",
            "datasrc",
            "lowsrc",
            "dynsrc",
            "longdesc",
            "usemap",
        ] {
            assert!(!cleaned.contains(gone), "{gone} in {cleaned}");
        }
    }
}
