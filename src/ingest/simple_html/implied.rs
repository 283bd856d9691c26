//! The elements html5ever's tree builder closes without their end tag, or adds,
//! where the tree it builds is still the text as written with those tags added: a
//! `<p>`, an `<li>`, a `<dt>` or a `<dd>` that is the current node when the parser
//! closes it, and a table's rows and sections. Each rule follows an insertion mode
//! of html5ever's `tree_builder` (`rules.rs`: "in body", "in table", "in table
//! body", "in row"); wherever the parser would also close an element that is not
//! one of these (an inline element inside the `<p>`, a `<div>` inside the `<li>`),
//! the fast path refuses, since the parser would then reopen formatting elements
//! or close elements whose end tags come later.

use super::{Content, Reader};

/// The elements read here that "generate implied end tags" closes (html5ever's
/// `cursory_implied_end`, less `<option>`, `<optgroup>` and the ruby elements, which
/// are not read here).
fn is_implied_end(name: &str) -> bool {
    matches!(name, "p" | "li" | "dd" | "dt")
}

/// The blocks of the "in body" mode read here: their start tag closes a `<p>` and
/// their end tag generates implied end tags.
fn is_body_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "div"
            | "dl"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "main"
            | "nav"
            | "ol"
            | "search"
            | "section"
            | "ul"
    )
}

/// The start tags read here before which the parser "closes a p element in button
/// scope" (`<table>` too, as a fragment is parsed in no-quirks mode).
fn closes_p(name: &str) -> bool {
    is_body_block(name)
        || matches!(
            name,
            "p" | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "pre"
                | "li"
                | "dd"
                | "dt"
                | "table"
                | "hr"
        )
}

/// The end tags read here before which the parser generates implied end tags
/// (closing every `<p>`, `<li>`, `<dt>` and `<dd>` on top of the stack): the blocks
/// of the "in body" mode, and a cell's (in the "in cell" mode).
fn generates_implied_ends(name: &str) -> bool {
    is_body_block(name) || matches!(name, "pre" | "td" | "th")
}

/// The elements read here that end the parser's search for an `<li>`, `<dt>` or
/// `<dd>` to close before a new one: html5ever's `special_tag` set without
/// `<address>`, `<div>` and `<p>` (`<search>` is not in its set).
fn ends_item_search(name: &str) -> bool {
    matches!(
        name,
        "article"
            | "aside"
            | "blockquote"
            | "center"
            | "dd"
            | "dl"
            | "dt"
            | "figcaption"
            | "figure"
            | "footer"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "pre"
            | "section"
            | "table"
            | "tbody"
            | "td"
            | "tfoot"
            | "th"
            | "thead"
            | "tr"
            | "ul"
    )
}

impl Reader<'_, '_> {
    /// Closes what the parser closes before it inserts the element of the start tag
    /// `name`: the `<li>` (or `<dt>`, `<dd>`) a new one ends, then a `<p>`. `None`
    /// where it would close more.
    pub(super) fn close_before_start(&mut self, name: &str) -> Option<()> {
        // A row, or a table's section, closes the row open (the "in row" mode), then
        // a section (the "in table body" mode).
        let section = |name: &str| matches!(name, "tbody" | "thead" | "tfoot");
        if matches!(name, "td" | "th" | "tr") || section(name) {
            self.close_cell()?;
        }
        if (name == "tr" || section(name)) && self.top_is(|open| open == "tr") {
            self.pop();
        }
        if section(name) && self.top_is(section) {
            self.pop();
        }
        if matches!(name, "li" | "dd" | "dt") {
            self.close_item(name)?;
        }
        if closes_p(name) {
            self.close_p_in_button_scope()?;
        }
        Some(())
    }

    /// A new `<li>` closes the `<li>` the parser finds first down the stack, unless a
    /// special element comes first; a `<dt>` or `<dd>`, the `<dt>` or `<dd>` it finds
    /// first. Above it, the parser closes the implied ends other than its name, then
    /// pops up to it: `None` unless those are all there is above it.
    fn close_item(&mut self, name: &str) -> Option<()> {
        let closes = |open: &str| match name {
            "li" => open == "li",
            _ => matches!(open, "dd" | "dt"),
        };
        let mut found = None;
        for (at, open) in self.open.iter().enumerate().rev() {
            if closes(open.name) {
                found = Some(at);
                break;
            }
            if ends_item_search(open.name) {
                break;
            }
        }
        let Some(at) = found else {
            return Some(());
        };
        let item = self.open[at].name;
        self.pop_through(at, |open| is_implied_end(open) && open != item)
    }

    /// Closes a `<p>` in button scope (down the stack to a table or a cell, the
    /// scope boundaries among the elements read here): only when it is the current
    /// node, else `None`, since the parser would also close the inline elements it
    /// holds and reopen the formatting ones.
    fn close_p_in_button_scope(&mut self) -> Option<()> {
        for (at, open) in self.open.iter().enumerate().rev() {
            if open.name == "p" {
                if at + 1 != self.open.len() {
                    return None;
                }
                self.pop();
                return Some(());
            }
            if matches!(open.name, "table" | "td" | "th") {
                break;
            }
        }
        Some(())
    }

    /// Closes the implied ends the parser closes before it reads the end tag `name`:
    /// all of them before a block's or a cell's, the others before `</li>`, `</dt>`
    /// and `</dd>`, none before the rest (`</p>` included: a `<p>` holds only inline
    /// elements here).
    pub(super) fn close_before_end(&mut self, name: &str) -> Option<()> {
        let closes = |open: &str| match name {
            "li" | "dd" | "dt" => is_implied_end(open) && open != name,
            _ => generates_implied_ends(name) && is_implied_end(open),
        };
        while self.top_is(closes) {
            self.pop();
        }
        // The end of a table, of its section or of a row closes the cell open (the
        // "in cell" mode); the end of a table or of its section, the row open; the end
        // of a table, the section open.
        if matches!(name, "table" | "tbody" | "thead" | "tfoot" | "tr") {
            self.close_cell()?;
        }
        if matches!(name, "table" | "tbody" | "thead" | "tfoot") && self.top_is(|open| open == "tr")
        {
            self.pop();
        }
        if name == "table" && self.top_is(|open| matches!(open, "tbody" | "thead" | "tfoot")) {
            self.pop();
        }
        Some(())
    }

    /// Closes the cell open in table scope (a `<td>` or `<th>` down the stack before a
    /// `<table>`), as the parser does before a cell, a row, a section or their end
    /// tags: the implied ends on top of it, then the cell. `None` when something else
    /// is open in the cell.
    fn close_cell(&mut self) -> Option<()> {
        let Some(at) = self
            .open
            .iter()
            .rposition(|open| matches!(open.name, "td" | "th" | "table"))
        else {
            return Some(());
        };
        if self.open[at].name == "table" {
            return Some(());
        }
        self.pop_through(at, is_implied_end)
    }

    /// Closes the element at `at` and those above it, when each of those is one
    /// `above` allows; `None` otherwise, closing nothing.
    fn pop_through(&mut self, at: usize, above: impl Fn(&str) -> bool) -> Option<()> {
        if !self.open[at + 1..].iter().all(|open| above(open.name)) {
            return None;
        }
        while self.open.len() > at {
            self.pop();
        }
        Some(())
    }

    /// Adds the parts of a table the parser adds before the start tag `name`: a
    /// `<tbody>` around a row (or a cell) right in a table, a `<tr>` around a cell
    /// out of a row.
    pub(super) fn imply_table_parts(&mut self, name: &str) {
        let cell = matches!(name, "td" | "th");
        if (cell || name == "tr") && self.here() == Content::Table {
            self.imply("tbody", Content::Rows);
        }
        if cell && self.here() == Content::Rows {
            self.imply("tr", Content::Cells);
        }
    }

    fn imply(&mut self, name: &'static str, holds: Content) {
        self.push(name, holds);
        if self.open.last().is_some_and(|open| open.written) {
            self.out.push('<');
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    /// Whether the current node's name is one of `names`.
    fn top_is(&self, names: impl Fn(&str) -> bool) -> bool {
        self.open.last().is_some_and(|open| names(open.name))
    }
}
