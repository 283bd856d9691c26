//! Pure: the lexical repair of a feed's XML before it is parsed, as an HTML tokenizer
//! (and feedparser's loose parser) would read the same text.
//!
//! An XML parser stops at the first `<` or `&` that begins no markup, and a feed is
//! then lost for one `AT&T` or `a < b` in a title. This pass walks the document once,
//! keeps every piece of real markup (tags, comments, CDATA sections, processing
//! instructions, the DOCTYPE before the root) as it is, and changes only what cannot
//! be markup:
//!
//! - a `<` that starts no tag, end tag, comment, CDATA section or processing
//!   instruction becomes `&lt;`;
//! - an `&` that starts no reference (`&name;`, `&#123;`, `&#x1F;`) becomes `&amp;`,
//!   in text and in attribute values;
//! - `<!` markup that XML does not have (`<![if !supportLists]>`, `<!x>`), and a
//!   `<!DOCTYPE` met inside the root element, are dropped as browsers drop them
//!   (a bogus comment, up to the next `>`).
//!
//! Ill-formed nesting (a mismatched or missing end tag) is left to the XML reader,
//! which recovers from it.

use std::borrow::Cow;

/// The longest entity name looked for after an `&`.
const MAX_REFERENCE: usize = 64;

/// `text` with its stray `<` and `&` escaped and its bogus `<!` markup dropped;
/// borrowed when nothing needed repair.
pub fn repair_markup(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Bytes of `text` before `copied` are in `out` (when it exists).
    let mut copied = 0;
    let mut root_seen = false;
    let mut at = 0;
    // Replaces `text[from..to]` with `with`.
    let replace =
        |out: &mut Option<String>, copied: &mut usize, from: usize, to: usize, with: &str| {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len() + 64));
            out.push_str(&text[*copied..from]);
            out.push_str(with);
            *copied = to;
        };
    while let Some(offset) = bytes[at..].iter().position(|b| *b == b'<' || *b == b'&') {
        at += offset;
        let rest = &text[at..];
        if bytes[at] == b'&' {
            if is_reference(&rest[1..]) {
                at += 1;
            } else {
                replace(&mut out, &mut copied, at, at + 1, "&amp;");
                at += 1;
            }
            continue;
        }
        match markup_at(rest, root_seen) {
            Markup::Kept(len) => at += len,
            Markup::Tag(len) => {
                root_seen = true;
                // `&` in attribute values, as in text.
                let tag = &rest[..len];
                let mut inner = 0;
                while let Some(amp) = tag[inner..].find('&') {
                    let amp = at + inner + amp;
                    if !is_reference(&text[amp + 1..]) {
                        replace(&mut out, &mut copied, amp, amp + 1, "&amp;");
                    }
                    inner = amp + 1 - at;
                }
                at += len;
            }
            Markup::Dropped(len) => {
                replace(&mut out, &mut copied, at, at + len, "");
                at += len;
            }
            Markup::Unterminated(len) => {
                let tag = format!("{}>", &text[at..at + len]);
                replace(&mut out, &mut copied, at, at + len, &tag);
                at += len;
            }
            Markup::Text => {
                replace(&mut out, &mut copied, at, at + 1, "&lt;");
                at += 1;
            }
        }
    }
    match out {
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    }
}

/// What a `<` begins, with the length of the markup in bytes.
enum Markup {
    /// A comment, CDATA section, processing instruction, end tag or leading DOCTYPE.
    Kept(usize),
    /// A start tag.
    Tag(usize),
    /// Markup that is no XML and is dropped.
    Dropped(usize),
    /// The document's last end tag, without its `>`: completed.
    Unterminated(usize),
    /// No markup: the `<` is text.
    Text,
}

/// Reads the markup `rest` (which starts with `<`) begins. Markup left unterminated
/// at the end of the document is kept, so that a truncated document stays one.
fn markup_at(rest: &str, root_seen: bool) -> Markup {
    let after = &rest[1..];
    let through = |end: &str| rest.find(end).map_or(rest.len(), |at| at + end.len());
    if after.starts_with("!--") {
        Markup::Kept(through("-->"))
    } else if after.starts_with("![CDATA[") {
        Markup::Kept(through("]]>"))
    } else if after
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("!DOCTYPE"))
        && !root_seen
    {
        Markup::Kept(doctype_len(rest))
    } else if after.starts_with('!') {
        // Up to the next `>`, unless another `<` comes first: then this one is text.
        match after.find(['<', '>']) {
            Some(end) if after.as_bytes()[end] == b'>' => Markup::Dropped(end + 2),
            Some(_) => Markup::Text,
            None => Markup::Kept(rest.len()),
        }
    } else if after.starts_with('?') {
        Markup::Kept(through("?>"))
    } else if let Some(name) = after.strip_prefix('/') {
        if name.starts_with(is_name_start) {
            match rest.find('>') {
                Some(end) => Markup::Kept(end + 1),
                // The last end tag lost its `>` and nothing else is missing
                None if name
                    .trim_end()
                    .chars()
                    .all(|c| !c.is_whitespace() && c != '<') =>
                {
                    Markup::Unterminated(name.trim_end().len() + 2)
                }
                None => Markup::Kept(rest.len()),
            }
        } else {
            Markup::Text
        }
    } else if after.starts_with(is_name_start) {
        Markup::Tag(tag_len(rest))
    } else {
        Markup::Text
    }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == ':'
}

/// Whether `text` (what follows an `&`) begins a reference: `name;`, `#123;`, `#x1F;`.
fn is_reference(text: &str) -> bool {
    let Some(end) = text.bytes().take(MAX_REFERENCE + 1).position(|b| b == b';') else {
        return false;
    };
    let name = &text[..end];
    match name.strip_prefix('#') {
        Some(number) => match number.strip_prefix(['x', 'X']) {
            Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
        },
        None => {
            name.starts_with(is_name_start)
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
        }
    }
}

/// The length of a start tag: up to its `>`, skipping quoted attribute values; the
/// rest of the document when it never closes.
fn tag_len(rest: &str) -> usize {
    let mut quote = None;
    for (at, c) in rest.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return at + 1,
            _ => {}
        }
    }
    rest.len()
}

/// The length of a DOCTYPE: up to the `>` after its internal subset, skipping
/// quoted strings and comments inside the subset.
fn doctype_len(rest: &str) -> usize {
    let mut quote = None;
    let mut in_subset = false;
    let mut chars = rest.char_indices();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => in_subset = true,
            (None, ']') => in_subset = false,
            (None, '<') if in_subset && rest[at..].starts_with("<!--") => {
                let end = rest[at..].find("-->").map_or(rest.len(), |e| at + e + 3);
                while chars.next().is_some_and(|(next, _)| next + 1 < end) {}
            }
            (None, '>') if !in_subset => return at + 1,
            _ => {}
        }
    }
    rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stray_ampersands_and_angle_brackets_are_escaped() {
        for (text, repaired) in [
            ("<t>AT&T</t>", "<t>AT&amp;T</t>"),
            (
                "<t>a & b &amp; c &#38; &#x26; &nbsp;</t>",
                "<t>a &amp; b &amp; c &#38; &#x26; &nbsp;</t>",
            ),
            ("<t>a < b <3 </ c</t>", "<t>a &lt; b &lt;3 &lt;/ c</t>"),
            (
                "<a href=\"?x=1&y=2&amp;z=3\">",
                "<a href=\"?x=1&amp;y=2&amp;z=3\">",
            ),
            ("<t>&#xZZ; &#; &;</t>", "<t>&amp;#xZZ; &amp;#; &amp;;</t>"),
        ] {
            assert_eq!(repair_markup(text), repaired, "{text}");
        }
    }

    #[test]
    fn bogus_bang_markup_and_a_late_doctype_are_dropped() {
        for (text, repaired) in [
            ("<t><![if !supportLists]>x<![endif]></t>", "<t>x</t>"),
            ("<t>a <!x> b</t>", "<t>a  b</t>"),
            ("<t>a <! b</t>", "<t>a &lt;! b</t>"),
            (
                "<t>a <!-- c --> <![CDATA[<!x>&]]></t>",
                "<t>a <!-- c --> <![CDATA[<!x>&]]></t>",
            ),
            ("<rss><!DOCTYPE html><p>x</p></rss>", "<rss><p>x</p></rss>"),
            ("<t>a <! b <t>", "<t>a &lt;! b <t>"),
            ("<rss><t>x</t>\n</rss  \n", "<rss><t>x</t>\n</rss>  \n"),
        ] {
            assert_eq!(repair_markup(text), repaired, "{text}");
        }
    }

    #[test]
    fn well_formed_markup_is_borrowed_untouched() {
        let text = "<?xml-stylesheet href=\"s.xsl\"?><!DOCTYPE rss [<!ENTITY e \"a>&amp;\"><!-- ] > --><!ENTITY f 'x'>]>\
            <rss a='1>2' b=\"&e;\"><!-- <!x> & --><t>&e; &#169; <![CDATA[ < & ]]></t></rss>";
        assert!(
            matches!(repair_markup(text), Cow::Borrowed(_)),
            "{}",
            repair_markup(text)
        );
        // A truncated document stays truncated: its last tag is not made text.
        for truncated in ["<rss><item><tit", "<rss><item><![CD", "<rss><item></ti tle"] {
            assert!(
                matches!(repair_markup(truncated), Cow::Borrowed(_)),
                "{truncated}"
            );
        }
    }
}
