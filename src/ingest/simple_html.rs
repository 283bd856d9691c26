//! Pure: the sanitizer's fast path, for item HTML written the way the HTML parser
//! would build it anyway: known elements, properly nested and closed, attributes
//! quoted, character references the parser's own table names. Such HTML (most item
//! HTML is) is sanitized in one pass over its text, to exactly what ammonia writes
//! for it: the same allow-list ([`Policy`], read off ammonia's own set-up), the same
//! attribute order and the same escaping as html5ever's serializer. Anything else
//! (`None`) takes ammonia's path: a tree built by html5ever, cleaned and serialized,
//! which costs about as much as reading the whole feed.
//!
//! The parser builds the tree as written when no element is reopened and none is
//! closed implicitly but those it closes the way their end tag would: so a `<p>`, a
//! heading, `<pre>` and every inline element hold only inline elements and text; an
//! `<li>` sits right in an `<ul>` or `<ol>`, a `<dt>` or `<dd>` right in a `<dl>`; no
//! `<a>` in an `<a>`; every end tag closes the element opened last. The implicit
//! closes read (see [`implied`]), each only when the element closed is the current
//! node (nothing else open inside it):
//! - a `<p>` left open, closed by the start of a block (`<p>`, `<div>`, a list, a
//!   heading, `<pre>`, `<table>`, `<hr>`...) or by the end tag of what holds it;
//! - an `<li>` left open, closed by the next `<li>` or by the end of its list; a
//!   `<dt>` or `<dd>` by the next `<dt>` or `<dd>` or by `</dl>`;
//! - a table's cell, row or section left open, closed by the next one or by the end
//!   of what holds it, and the `<tbody>` and `<tr>` the parser adds;
//! - what is open at the end of the fragment, closed there as the serializer closes
//!   it.
//!
//! Also read as the parser reads them: `</p>` with no `<p>` open (an empty `<p></p>`),
//! the newline dropped after `<pre>`, `<meta>` (inserted empty, dropped by ammonia).
//! Forms, scripts, raw-text elements other than `<style>` and `<iframe>`, and foreign
//! markup (SVG, MathML) are not read here at all.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

mod implied;
mod tokens;

use tokens::{StartTag, comment, end_tag, raw_content, reference, start_tag};

/// What an element may hold, for it to be built as written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    /// Blocks, inline elements and text (the fragment itself, `<div>`, `<li>`...).
    Flow,
    /// Inline elements and text only (`<p>`, headings, `<pre>`, inline elements).
    Phrasing,
    /// `<li>` and text (`<ul>`, `<ol>`).
    ListItems,
    /// `<dt>`, `<dd>` and text (`<dl>`).
    Terms,
    /// A table's sections, rows (in a `<tbody>` the parser adds) and spaces.
    Table,
    /// Rows and spaces (`<tbody>`, `<thead>`, `<tfoot>`).
    Rows,
    /// Cells and spaces (`<tr>`).
    Cells,
}

impl Content {
    /// Inside a table, out of its cells: text other than spaces is moved out of the
    /// table by the parser (foster parenting).
    fn is_table(self) -> bool {
        matches!(self, Content::Table | Content::Rows | Content::Cells)
    }
}

/// Where an element may stand, and what it holds.
#[derive(Clone, Copy)]
struct Shape {
    /// The content of the parent it may stand in.
    fits: fn(Content) -> bool,
    holds: Content,
    /// No end tag, no content (`<br>`, `<img>`, `<hr>`, `<wbr>`).
    void: bool,
}

/// The elements the fast path reads, with their shapes: those ammonia allows, and a
/// few it drops while keeping what they hold (`<section>`, `<main>`, `<big>`...).
fn shape(name: &str) -> Option<Shape> {
    let flow = |c| c == Content::Flow;
    let inline = |c| matches!(c, Content::Flow | Content::Phrasing);
    let shape = |fits, holds, void| Some(Shape { fits, holds, void });
    match name {
        "div" | "blockquote" | "figure" | "figcaption" | "center" | "article" | "aside"
        | "header" | "footer" | "nav" | "section" | "main" | "address" | "search" => {
            shape(flow, Content::Flow, false)
        }
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "pre" => {
            shape(flow, Content::Phrasing, false)
        }
        "ul" | "ol" => shape(flow, Content::ListItems, false),
        "dl" => shape(flow, Content::Terms, false),
        "li" => shape(|c| c == Content::ListItems, Content::Flow, false),
        "dt" | "dd" => shape(|c| c == Content::Terms, Content::Flow, false),
        "hr" => shape(flow, Content::Flow, true),
        "a" | "abbr" | "acronym" | "b" | "bdi" | "bdo" | "cite" | "code" | "data" | "del"
        | "dfn" | "em" | "font" | "i" | "ins" | "kbd" | "mark" | "q" | "s" | "samp" | "small"
        | "span" | "strike" | "strong" | "sub" | "sup" | "time" | "tt" | "u" | "var" | "big" => {
            shape(inline, Content::Phrasing, false)
        }
        "br" | "img" | "wbr" => shape(inline, Content::Phrasing, true),
        "table" => shape(flow, Content::Table, false),
        "tbody" | "thead" | "tfoot" => shape(|c| c == Content::Table, Content::Rows, false),
        // A row right in a table goes in a `<tbody>` the parser adds.
        "tr" => shape(
            |c| matches!(c, Content::Table | Content::Rows),
            Content::Cells,
            false,
        ),
        // A cell out of a row goes in a `<tr>` (and a `<tbody>`) the parser adds.
        "td" | "th" => shape(Content::is_table, Content::Flow, false),
        _ => None,
    }
}

/// The allow-list, as ammonia's set-up holds it.
pub(crate) struct Policy {
    /// Whether the fast path can follow the set-up at all.
    followed: bool,
    tags: HashSet<&'static str>,
    /// Elements removed with what they hold.
    clean_content: HashSet<&'static str>,
    generic_attributes: HashSet<&'static str>,
    tag_attributes: HashMap<&'static str, HashSet<&'static str>>,
    url_schemes: HashSet<&'static str>,
    link_rel: Option<String>,
}

impl Policy {
    /// The allow-list of `builder`. ammonia's set-ups this path does not follow (class
    /// lists, id prefixes, attribute values it sets, prefixes of attribute names, a
    /// comment kept) leave the fast path unused.
    pub(crate) fn new(builder: &ammonia::Builder<'static>) -> Policy {
        let followed = builder.clone_allowed_classes().is_empty()
            && builder.clone_set_tag_attribute_values().is_empty()
            && builder.clone_generic_attribute_prefixes().is_none()
            && builder.will_strip_comments()
            && builder.is_url_relative_custom();
        Policy {
            followed,
            tags: builder.clone_tags(),
            clean_content: builder.clone_clean_content_tags(),
            generic_attributes: builder.clone_generic_attributes(),
            tag_attributes: builder.clone_tag_attributes(),
            url_schemes: builder.clone_url_schemes(),
            link_rel: builder.get_link_rel().map(str::to_string),
        }
    }

    fn allows(&self, element: &str, attribute: &str) -> bool {
        self.generic_attributes.contains(attribute)
            || self
                .tag_attributes
                .get(element)
                .is_some_and(|names| names.contains(attribute))
    }
}

/// What the caller's ammonia set-up does besides the allow-list: its attribute filter
/// (`None` drops the attribute) and how it makes a relative URL absolute (`None`
/// drops it).
pub(crate) struct Hooks<'h> {
    pub(crate) filter: for<'v> fn(&str, &str, &'v str) -> Option<Cow<'v, str>>,
    pub(crate) resolve: &'h dyn Fn(&str) -> Option<String>,
}

/// `html` sanitized as ammonia would with `policy` and `hooks`, when html5ever would
/// build its tree exactly as written; `None` otherwise.
pub(crate) fn clean(html: &str, policy: &Policy, hooks: &Hooks) -> Option<String> {
    if html.contains('\0') || !policy.followed {
        return None;
    }
    // The parser drops a byte order mark at the start, then reads a CR LF pair, or a
    // lone CR, as one LF before anything else.
    let html = html.strip_prefix('\u{feff}').unwrap_or(html);
    let html = if html.contains('\r') {
        Cow::Owned(html.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(html)
    };
    let mut reader = Reader {
        policy,
        hooks,
        out: String::with_capacity(html.len() + html.len() / 8),
        open: Vec::new(),
        in_link: false,
    };
    let mut rest = &html[..];
    while !rest.is_empty() {
        let cut = rest.find(['<', '&']).unwrap_or(rest.len());
        let text = &rest[..cut];
        if reader.here().is_table() && !text.bytes().all(tokens::is_space) {
            return None;
        }
        escape(text, false, &mut reader.out);
        rest = &rest[cut..];
        let used = match rest.as_bytes() {
            [] => break,
            [b'&', ..] if reader.here().is_table() => return None,
            [b'&', ..] => {
                let (text, used) = reference(rest, false);
                escape(&text, false, &mut reader.out);
                used
            }
            [b'<', b'/', ..] => reader.end(rest)?,
            [b'<', b'!', b'-', b'-', ..] => comment(rest)?,
            [b'<', c, ..] if c.is_ascii_alphabetic() => reader.start(rest)?,
            // `<` before anything but a tag, a comment or a declaration is text.
            [b'<', c, ..] if !matches!(c, b'!' | b'?') && !reader.here().is_table() => {
                reader.out.push_str("&lt;");
                1
            }
            _ => return None,
        };
        rest = &rest[used..];
    }
    // The end of the fragment leaves open what is open: the serializer writes the
    // end tags.
    while reader.pop().is_some() {}
    Some(reader.out)
}

/// An open element.
struct Open {
    name: &'static str,
    holds: Content,
    /// Whether its tags are written: ammonia drops the tags of an element off its
    /// list, and keeps what it holds.
    written: bool,
}

/// Reading one fragment: what is written so far, and the elements open.
struct Reader<'r, 'h> {
    policy: &'r Policy,
    hooks: &'r Hooks<'h>,
    out: String,
    open: Vec<Open>,
    /// Inside an `<a>`: another would make the parser close this one.
    in_link: bool,
}

impl Reader<'_, '_> {
    /// What the innermost open element may hold.
    fn here(&self) -> Content {
        self.open.last().map_or(Content::Flow, |open| open.holds)
    }

    /// Reads the start tag `text` begins with (and a raw-text element whole); returns
    /// how much it read.
    fn start(&mut self, text: &str) -> Option<usize> {
        let tag = start_tag(text)?;
        if is_ignored(tag.name, false) && !self.here().is_table() {
            return Some(tag.used);
        }
        if let Some(remove) = raw_text(tag.name) {
            if !matches!(self.here(), Content::Flow | Content::Phrasing) || tag.self_closing {
                return None;
            }
            let clean_content = self.policy.clean_content.contains(tag.name);
            if self.policy.tags.contains(tag.name) || clean_content != remove {
                return None;
            }
            let (content, used) = raw_content(tag.name, &text[tag.used..])?;
            if !remove {
                escape(content, false, &mut self.out);
            }
            return Some(tag.used + used);
        }
        let shape = shape(tag.name)?;
        self.close_before_start(tag.name)?;
        if !(shape.fits)(self.here()) || (tag.name == "a" && self.in_link) {
            return None;
        }
        if tag.self_closing && !shape.void {
            // `<p/>` opens a paragraph in HTML.
            return None;
        }
        let mut used = tag.used;
        if tag.name == "pre" {
            // The parser drops a newline right after `<pre>` (a referenced one too:
            // not read here).
            if text[used..].starts_with('&') {
                return None;
            }
            used += usize::from(text[used..].starts_with('\n'));
        }
        if self.policy.clean_content.contains(tag.name) {
            return None;
        }
        self.imply_table_parts(tag.name);
        let written = self.policy.tags.contains(tag.name);
        if written {
            write_start(&tag, self.policy, self.hooks, &mut self.out);
        }
        if !shape.void {
            self.push(tag.name, shape.holds);
            self.in_link |= tag.name == "a";
        }
        Some(used)
    }

    fn push(&mut self, name: &'static str, holds: Content) {
        let written = self.policy.tags.contains(name);
        self.open.push(Open {
            name,
            holds,
            written,
        });
    }

    /// Writes the end tag of the element opened last, and closes it.
    fn pop(&mut self) -> Option<Open> {
        let open = self.open.pop()?;
        if open.written {
            self.out.push_str("</");
            self.out.push_str(open.name);
            self.out.push('>');
        }
        Some(open)
    }

    /// Reads the end tag `text` begins with: it must close the element opened last.
    /// `</br>` is read as the parser reads it, as `<br>`.
    fn end(&mut self, text: &str) -> Option<usize> {
        let (name, used) = end_tag(text)?;
        if name == "br" {
            let shape = shape(name)?;
            if !(shape.fits)(self.here()) {
                return None;
            }
            if self.policy.tags.contains(name) {
                self.out.push_str("<br>");
            }
            return Some(used);
        }
        if is_ignored(name, true) && !self.here().is_table() {
            return Some(used);
        }
        self.close_before_end(name)?;
        if name == "p" && !self.open.iter().any(|open| open.name == "p") {
            // The parser closes a `<p>` it adds: `<p></p>`, where it stands.
            if self.here().is_table() {
                return None;
            }
            if self.policy.tags.contains("p") {
                self.out.push_str("<p></p>");
            }
            return Some(used);
        }
        if self.open.last()?.name != name {
            return None;
        }
        self.pop();
        self.in_link &= name != "a";
        Some(used)
    }
}

/// The tags that leave nothing in ammonia's output wherever they stand (out of a
/// table): those a fragment's parser ignores (a document's own `<html>`, `<head>` and
/// `<body>` and their end tags, the end tags of elements that have none: `</img>`;
/// `</br>` is read as `<br>`), and `<meta>`, which the parser inserts where it stands,
/// empty and closing nothing, and ammonia drops.
fn is_ignored(name: &str, end: bool) -> bool {
    matches!(name, "html" | "head" | "body")
        || (end && matches!(name, "img" | "hr" | "wbr"))
        || (!end && name == "meta")
}

/// The raw-text elements read here (the parser takes what they hold as text up to
/// their end tag), and whether ammonia removes what they hold (`<style>`) or keeps it
/// as text (`<iframe>`, whose tags it drops).
fn raw_text(name: &str) -> Option<bool> {
    match name {
        "style" => Some(true),
        "iframe" => Some(false),
        _ => None,
    }
}

/// Writes the start tag as ammonia leaves it: attributes off the allow-list dropped
/// and URLs vetted, `rel` added to links, then the attribute filter run and relative
/// URLs resolved, each dropping by `swap_remove` as ammonia does, so the order of
/// what is left is ammonia's too.
fn write_start(tag: &StartTag, policy: &Policy, hooks: &Hooks, out: &mut String) {
    let element = tag.name;
    let mut kept: Vec<(Cow<str>, Cow<str>, bool)> = Vec::with_capacity(tag.attributes.len() + 1);
    for (name, value) in &tag.attributes {
        if !policy.allows(element, name) {
            continue;
        }
        let mut relative = false;
        if is_url_attribute(name) {
            match url::Url::parse(value) {
                Ok(url) if policy.url_schemes.contains(url.scheme()) => {}
                Err(url::ParseError::RelativeUrlWithoutBase) => relative = true,
                _ => continue,
            }
        }
        kept.push((Cow::Borrowed(name), Cow::Borrowed(value), relative));
    }
    if element == "a"
        && let Some(rel) = &policy.link_rel
    {
        kept.push((Cow::Borrowed("rel"), Cow::Borrowed(rel), false));
    }
    let mut dropped = Vec::new();
    for (i, (name, value, _)) in kept.iter_mut().enumerate() {
        let verdict = match (hooks.filter)(element, name, value) {
            None => None,
            Some(new) if *new != **value => Some(Some(new.into_owned())),
            Some(_) => Some(None),
        };
        match verdict {
            None => dropped.push(i),
            Some(Some(new)) => *value = Cow::Owned(new),
            Some(None) => {}
        }
    }
    for i in dropped.into_iter().rev() {
        kept.swap_remove(i);
    }
    let mut dropped = Vec::new();
    for (i, (_, value, relative)) in kept.iter_mut().enumerate() {
        if *relative {
            match (hooks.resolve)(value) {
                Some(absolute) => *value = Cow::Owned(absolute),
                None => dropped.push(i),
            }
        }
    }
    for i in dropped.into_iter().rev() {
        kept.swap_remove(i);
    }
    out.push('<');
    out.push_str(element);
    for (name, value, _) in &kept {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape(value, true, out);
        out.push('"');
    }
    out.push('>');
}

/// The attributes of the fast path's elements that ammonia reads as URLs.
fn is_url_attribute(name: &str) -> bool {
    matches!(name, "href" | "src")
}

/// Escapes as html5ever's serializer does: `&`, `<`, `>` and U+00A0 always, `"` in an
/// attribute value.
pub(super) fn escape(text: &str, attribute: bool, out: &mut String) {
    let bytes = text.as_bytes();
    let mut from = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..]
        .iter()
        .position(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | 0xc2))
    {
        at += found;
        let (escaped, len) = match bytes[at] {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' if attribute => ("&quot;", 1),
            0xc2 if bytes.get(at + 1) == Some(&0xa0) => ("&nbsp;", 2),
            _ => {
                at += 1;
                continue;
            }
        };
        out.push_str(&text[from..at]);
        out.push_str(escaped);
        at += len;
        from = at;
    }
    out.push_str(&text[from..]);
}

#[cfg(test)]
mod tests;
