// Entity and character references, resolved as feed readers do: the five XML entities, character references,
// the general entities a DOCTYPE's internal subset declares (text replacement only, bounded), and the HTML named
// entities feeds use without declaring them (`&nbsp;`, `&eacute;`, `&mdash;` ...). A reference that resolves to
// nothing is kept as written: an unknown entity costs nothing but itself.

use std::collections::HashMap;
use std::rc::Rc;

// The most text one reference may expand to
const EXPANSION_LIMIT: usize = 8 * 1024;
// The most work (bytes written plus references followed) all expansions of a document may cost
const DOCUMENT_BUDGET: usize = 1024 * 1024;
// Each reference followed costs this much of the budget, so that entities expanding to nothing still cost
const REFERENCE_COST: usize = 16;
// The deepest chain of entities referring to entities
const MAX_DEPTH: u32 = 16;
// The longest reference name looked for after an `&` in an attribute or an entity value
const MAX_NAME: usize = 64;

/// The entities of one document and what is left of its expansion budget.
pub(crate) struct Entities {
    declared: HashMap<String, Rc<str>>,
    budget: usize,
}

impl Default for Entities {
    fn default() -> Self {
        Entities {
            declared: HashMap::new(),
            budget: DOCUMENT_BUDGET,
        }
    }
}

impl Entities {
    /// Reads the general entities with a literal value from the internal subset of a DOCTYPE (`<!ENTITY id "value">`).
    /// Parameter entities and external entities (SYSTEM/PUBLIC) are ignored: nothing is ever fetched or read. The
    /// first declaration of a name binds, as in XML.
    pub(crate) fn declare(&mut self, doctype: &str) {
        let mut rest = doctype;
        while let Some(at) = rest.find('<') {
            rest = &rest[at..];
            if let Some(comment) = rest.strip_prefix("<!--") {
                rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            } else if let Some(entity) = rest.strip_prefix("<!ENTITY") {
                rest = self.declare_one(entity);
            } else {
                rest = &rest[1..];
            }
        }
    }

    // Reads one declaration after its `<!ENTITY`; returns the text after it
    fn declare_one<'a>(&mut self, text: &'a str) -> &'a str {
        let text = text.trim_start();
        if text.starts_with('%') {
            return text;
        }
        let name_end = text
            .find(|c: char| c.is_whitespace() || c == '>' || c == '"' || c == '\'')
            .unwrap_or(text.len());
        let (name, rest) = text.split_at(name_end);
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            // External (SYSTEM or PUBLIC) or malformed: not declared
            return rest;
        };
        let value = &rest[1..];
        let Some(end) = value.find(quote) else {
            return "";
        };
        if !name.is_empty() && !self.declared.contains_key(name) {
            self.declared.insert(name.to_string(), Rc::from(&value[..end]));
        }
        &value[end + 1..]
    }

    /// Appends the text `&name;` stands for to `out`, or the reference as written when it stands for nothing known.
    pub(crate) fn push_reference(&mut self, name: &str, out: &mut String) {
        if !self.resolve_into(name, out) {
            out.push('&');
            out.push_str(name);
            out.push(';');
        }
    }

    /// Unescapes an attribute value: references are resolved as in text, and an `&` that begins no reference is
    /// kept as it is (`?a=1&b=2`).
    pub(crate) fn unescape(&mut self, raw: &str) -> String {
        let mut out = String::with_capacity(raw.len());
        self.unescape_into(raw, &mut out);
        out
    }

    fn unescape_into(&mut self, raw: &str, out: &mut String) {
        let mut rest = raw;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            match reference_name(rest) {
                Some(name) => {
                    self.push_reference(name, out);
                    rest = &rest[name.len() + 1..];
                }
                None => out.push('&'),
            }
        }
        out.push_str(rest);
    }

    // Appends what `name` stands for; false (and nothing appended) when it stands for nothing known
    fn resolve_into(&mut self, name: &str, out: &mut String) -> bool {
        if let Some(number) = name.strip_prefix('#') {
            return match char_reference(number) {
                Some(c) => {
                    out.push(c);
                    true
                }
                None => false,
            };
        }
        if let Some(text) = quick_xml::escape::resolve_xml_entity(name) {
            out.push_str(text);
            return true;
        }
        if self.declared.contains_key(name) {
            let mut expanded = String::new();
            if self.budget > 0 && self.expand(name, 0, &mut expanded) {
                self.budget = self.budget.saturating_sub(expanded.len());
                out.push_str(&expanded);
                return true;
            }
            // Over a limit: this document expands no more entities
            self.budget = 0;
            return false;
        }
        html_entity(name, out)
    }

    // Expands a declared entity into `out`; false when a limit is reached
    fn expand(&mut self, name: &str, depth: u32, out: &mut String) -> bool {
        let Some(value) = self.declared.get(name).cloned() else {
            return false;
        };
        if depth > MAX_DEPTH || self.budget < REFERENCE_COST {
            return false;
        }
        self.budget -= REFERENCE_COST;
        let mut rest: &str = &value;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            match reference_name(rest) {
                Some(inner) => {
                    if self.declared.contains_key(inner) {
                        if !self.expand(inner, depth + 1, out) {
                            return false;
                        }
                    } else {
                        self.push_reference(inner, out);
                    }
                    rest = &rest[inner.len() + 1..];
                }
                None => out.push('&'),
            }
            if out.len() > EXPANSION_LIMIT || out.len() > self.budget {
                return false;
            }
        }
        out.push_str(rest);
        out.len() <= EXPANSION_LIMIT && out.len() <= self.budget
    }
}

// Appends the characters of an HTML named entity (the table html5ever reads HTML with); false when there is none
fn html_entity(name: &str, out: &mut String) -> bool {
    // The table's keys end with the `;`, and it also holds every prefix of a name, mapped to zeros
    let key = format!("{name};");
    match web_atoms::NAMED_ENTITIES.get(key.as_str()) {
        Some(&(first, second)) if first != 0 => {
            out.extend([first, second].into_iter().filter(|c| *c != 0).filter_map(char::from_u32));
            true
        }
        _ => false,
    }
}

// The name of the reference `text` begins with (the text after an `&`), when it is one: `name;`, `#123;` or `#x1F;`
fn reference_name(text: &str) -> Option<&str> {
    let end = text.bytes().take(MAX_NAME + 1).position(|b| b == b';')?;
    let name = &text[..end];
    let valid = match name.strip_prefix('#') {
        Some(number) => !number.is_empty() && number.bytes().all(|b| b.is_ascii_hexdigit() || b == b'x' || b == b'X'),
        None => {
            name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
                && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
        }
    };
    valid.then_some(name)
}

// The character a numeric reference names (the text after `&#`), if XML allows it. References to the C1 controls
// 0x80-0x9F name the windows-1252 characters at those bytes (`&#146;` is a right quote), as HTML reads them: feeds
// written from windows-1252 text mean those
fn char_reference(number: &str) -> Option<char> {
    let code = match number.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => number.parse::<u32>().ok()?,
    };
    if let Some(Some(c)) = code.checked_sub(0x80).and_then(|i| web_atoms::C1_REPLACEMENTS.get(i as usize)) {
        return Some(*c);
    }
    let allowed = matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
    allowed.then(|| char::from_u32(code)).flatten()
}
