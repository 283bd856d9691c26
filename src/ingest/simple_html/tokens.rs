//! Reading the tokens of simple HTML as html5ever's tokenizer reads them: tags,
//! attributes, comments, raw text and character references (with the parser's own
//! table of names and its repairs). `None` wherever this reading could differ.

use std::borrow::Cow;

/// Reads the comment `text` begins with (ammonia drops comments); `None` for the
/// spellings the parser ends early (`<!-->`, `<!--->`, `--!>`) or never ends.
pub(super) fn comment(text: &str) -> Option<usize> {
    let body = &text[4..];
    if body.starts_with('>') || body.starts_with("->") {
        return None;
    }
    let end = body.find("-->")?;
    if body[..end + 3].contains("--!>") {
        return None;
    }
    Some(4 + end + 3)
}

/// What a raw-text element `name` holds, up to its end tag (`</name` and a space, `/`
/// or `>`, in any case), and how much of `text` the content and a plain end tag take.
pub(super) fn raw_content<'t>(name: &str, text: &'t str) -> Option<(&'t str, usize)> {
    let bytes = text.as_bytes();
    let mut from = 0;
    loop {
        let at = from + memchr::memmem::find(&bytes[from..], b"</")?;
        let after = at + 2 + name.len();
        let named = bytes
            .get(at + 2..after)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        if named
            && bytes
                .get(after)
                .is_some_and(|&b| is_space(b) || b == b'/' || b == b'>')
        {
            let (_, used) = end_tag(&text[at..])?;
            return Some((&text[..at], at + used));
        }
        from = at + 2;
    }
}

/// A start tag as read: its name (one of [`super::shape`]'s), attributes with their values
/// decoded, in order, the first of a repeated name kept, and its length.
pub(super) struct StartTag {
    pub(super) name: &'static str,
    pub(super) attributes: Vec<(String, String)>,
    pub(super) self_closing: bool,
    pub(super) used: usize,
}

/// Reads the start tag `text` begins with.
pub(super) fn start_tag(text: &str) -> Option<StartTag> {
    let bytes = text.as_bytes();
    let mut at = 1;
    let name_end = at
        + bytes[at..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())?;
    let name = known_name(&text[at..name_end])?;
    at = name_end;
    let mut attributes: Vec<(String, String)> = Vec::new();
    loop {
        let spaced = bytes[at..].iter().take_while(|b| is_space(**b)).count();
        at += spaced;
        match *bytes.get(at)? {
            b'>' => {
                return Some(StartTag {
                    name,
                    attributes,
                    self_closing: false,
                    used: at + 1,
                });
            }
            b'/' if bytes.get(at + 1) == Some(&b'>') => {
                return Some(StartTag {
                    name,
                    attributes,
                    self_closing: true,
                    used: at + 2,
                });
            }
            _ if spaced == 0 => return None,
            _ => {}
        }
        let (attribute, used) = attribute(&text[at..])?;
        at += used;
        if !attributes.iter().any(|(name, _)| *name == attribute.0) {
            attributes.push(attribute);
        }
    }
}

/// The lower-case name of an element of [`super::shape`]'s.
fn known_name(name: &str) -> Option<&'static str> {
    let mut lower = [0u8; 10];
    let lower = lower.get_mut(..name.len())?;
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    let at = KNOWN_NAMES
        .binary_search_by(|known| known.as_bytes().cmp(lower))
        .ok()?;
    Some(KNOWN_NAMES[at])
}

/// The elements of [`super::shape`], [`super::raw_text`] and [`super::is_ignored`],
/// sorted.
pub(super) const KNOWN_NAMES: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "big",
    "blockquote",
    "body",
    "br",
    "center",
    "cite",
    "code",
    "data",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "ins",
    "kbd",
    "li",
    "main",
    "mark",
    "meta",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "search",
    "section",
    "small",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// One attribute: its lower-case name and decoded value, and its length. The value
/// is quoted, unquoted (without the characters the parser warns of) or absent.
fn attribute(text: &str) -> Option<((String, String), usize)> {
    let bytes = text.as_bytes();
    let name_len = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.')))
        .unwrap_or(bytes.len());
    if name_len == 0 || !bytes[0].is_ascii_alphabetic() {
        return None;
    }
    let name = text[..name_len].to_ascii_lowercase();
    let mut at = name_len
        + bytes[name_len..]
            .iter()
            .take_while(|b| is_space(**b))
            .count();
    if bytes.get(at) != Some(&b'=') {
        // No value: the spaces read are those before the next attribute.
        return Some(((name, String::new()), name_len));
    }
    at += 1;
    at += bytes[at..].iter().take_while(|b| is_space(**b)).count();
    let (raw, used) = match *bytes.get(at)? {
        quote @ (b'"' | b'\'') => {
            let len = bytes[at + 1..].iter().position(|&b| b == quote)?;
            let after = bytes.get(at + len + 2).copied();
            // The parser reads `a="x"b="y"` as two attributes; not here.
            if !matches!(after, Some(b'>' | b'/')) && !after.is_some_and(is_space) {
                return None;
            }
            (&text[at + 1..at + 1 + len], at + len + 2)
        }
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|&b| is_space(b) || b == b'>')
                .unwrap_or(bytes.len() - at);
            let raw = &text[at..at + len];
            if len == 0 || raw.contains(['"', '\'', '<', '=', '`']) {
                return None;
            }
            (raw, at + len)
        }
    };
    Some(((name, decode(raw)), used))
}

/// Reads the end tag `text` begins with: `</name>`, spaces allowed before the `>`.
pub(super) fn end_tag(text: &str) -> Option<(&'static str, usize)> {
    let bytes = text.as_bytes();
    let name_len = bytes[2..].iter().position(|b| !b.is_ascii_alphanumeric())?;
    let name = known_name(&text[2..2 + name_len])?;
    let at = 2
        + name_len
        + bytes[2 + name_len..]
            .iter()
            .take_while(|b| is_space(**b))
            .count();
    (bytes.get(at) == Some(&b'>')).then_some((name, at + 1))
}

/// The parser's spaces inside a tag (a carriage return never reaches it).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c')
}

/// An attribute value with its character references decoded.
fn decode(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        decoded.push_str(&rest[..at]);
        let (text, used) = reference(&rest[at..], true);
        decoded.push_str(&text);
        rest = &rest[at + used..];
    }
    decoded.push_str(rest);
    decoded
}

/// What the `&` that `text` begins with stands for, and how much of `text` it takes,
/// as html5ever's tokenizer reads it: `&#n;`, `&#xh;` (the `;` optional) numbered,
/// with the repairs the parser makes; a name looked up in the parser's own table, the
/// longest that matches (`&notit;` is `¬it;`), a name without `;` inside an attribute
/// value not when `=` or a letter or digit follows; else the `&` itself.
pub(super) fn reference(text: &str, in_attribute: bool) -> (Cow<'static, str>, usize) {
    let bytes = text.as_bytes();
    let literal = (Cow::Borrowed("&"), 1);
    match bytes.get(1) {
        Some(b'#') => numeric(text).unwrap_or(literal),
        Some(b) if b.is_ascii_alphanumeric() => {
            // The table holds every prefix of a name, as (0, 0).
            let mut matched = None;
            let mut end = 2;
            while end <= bytes.len() && bytes[end - 1].is_ascii() {
                match html5ever::data::NAMED_ENTITIES.get(&text[1..end]) {
                    Some(&(0, _)) => {}
                    Some(&(first, second)) => matched = Some((end, first, second)),
                    None => break,
                }
                end += 1;
            }
            let Some((end, first, second)) = matched else {
                return literal;
            };
            let next = bytes.get(end).copied();
            if bytes[end - 1] != b';'
                && in_attribute
                && next.is_some_and(|b| b == b'=' || b.is_ascii_alphanumeric())
            {
                return literal;
            }
            let decoded: String = [first, second]
                .into_iter()
                .filter(|&c| c != 0)
                .filter_map(char::from_u32)
                .collect();
            (Cow::Owned(decoded), end)
        }
        _ => literal,
    }
}

/// A numeric reference (`text` begins with `&#`): the character, U+FFFD for none, the
/// Windows-1252 character for a C1 control; `None` without digits.
fn numeric(text: &str) -> Option<(Cow<'static, str>, usize)> {
    let bytes = text.as_bytes();
    let (radix, from) = match bytes.get(2) {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let digits = bytes[from..]
        .iter()
        .take_while(|&&b| (b as char).is_digit(radix))
        .count();
    if digits == 0 {
        return None;
    }
    let number = bytes[from..from + digits].iter().fold(0u32, |n, &b| {
        let digit = (b as char).to_digit(radix).expect("a digit");
        n.saturating_mul(radix).saturating_add(digit).min(0x11_0000)
    });
    let c = match number {
        0 | 0xd800..=0xdfff | 0x11_0000.. => '\u{fffd}',
        0x80..=0x9f => html5ever::data::C1_REPLACEMENTS[(number - 0x80) as usize]
            .or_else(|| char::from_u32(number))?,
        n => char::from_u32(n)?,
    };
    let end = from + digits + usize::from(bytes.get(from + digits) == Some(&b';'));
    Some((Cow::Owned(c.to_string()), end))
}
