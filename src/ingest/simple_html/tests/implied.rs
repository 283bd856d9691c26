//! Elements the parser closes without their end tag: `<p>`, `<li>`, `<dt>` and
//! `<dd>` left open, and what is open at the end of the fragment.

use super::{Generator, base, same};

#[test]
fn elements_closed_without_their_end_tag_clean_as_ammonia_cleans_them() {
    let cases = [
        // Left open to the end of the fragment.
        "<p>open",
        "<b>unclosed",
        "<div><p>a <b>b</b>\n",
        "<table><tr><td>x",
        // A `<p>` closed by the start of a block.
        "<p>one<p>two",
        "<p>a\n\n<p class=x>b\n",
        "<p>a<div>b</div>",
        "<p>a\n<ul><li>b</li></ul>",
        "<p>a<ol><li>b</li></ol>",
        "<p>a<h2>h</h2><p>b<h6>i</h6>",
        "<p>a<blockquote>q</blockquote>",
        "<p>a<pre>c</pre>",
        "<p>a<table><tr><td>c</td></tr></table>",
        "<p>a<hr>b",
        "<p>a<dl><dt>t</dt></dl>",
        "<p>a<figure><img src=x></figure><p>b<center>c</center><p>d<section>e</section>",
        "<p>a<address>b</address><p>c<article>d</article><p>e<aside>f</aside><p>g<header>h</header>",
        "<p>a<footer>b</footer><p>c<nav>d</nav><p>e<main>f</main><p>g<search>h</search>",
        "<p>a<img src=x><br>b<wbr>c<iframe>i</iframe>d<p>e",
        // By the end tag of what holds it.
        "<div><p>a</div>",
        "<blockquote><p>a\n<p>b\n</blockquote>",
        "<ul><li><p>a</li><li>b<p>c</ul>",
        "<table><tr><td><p>a</td><th><p>b</th></tr></table>",
        "<dl><dt><p>a</dt><dd><p>b</dd></dl>",
        // `<li>`, `<dt>` and `<dd>` closed by the next one, or by the list's end tag.
        "<ul><li>a<li>b</ul>",
        "<ol>\n<li>a\n<li>b\n</ol>",
        "<ul><li>a<ul><li>b<li>c</ul><li>d</ul>",
        "<ul><li><p>a<li><p>b</ul>",
        "<ul><li>a</li><li>b</ul>",
        "<dl><dt>a<dd>b<dt>c<dd>d</dl>",
        "<dl><dt>a<dt>b<dd>c<dd>d</dl>",
        "<dl><dd><p>a<dt>b</dl>",
        "<ul><li><dl><dt>a<dd>b</dl><li>c</ul>",
        "<ul><li>a<p>b</ul>",
        "<ul><li>a<ol><li>b</ol></ul>",
        "<p><div>x</div></p>",
        "<p><ul><li>x</li></ul></p>",
        "<p><table></table></p>",
        // A `</p>` with no `<p>` open: the parser adds an empty one.
        "</p>",
        "<div></p></div>",
        "<p>a<hr>b</p>",
        "<b>x</p>y</b>",
        "<table><tr><td></p></td></tr></table>",
        // The newline the parser drops after `<pre>`.
        "<pre>\nfirst newline</pre>",
        "<pre class=x>\n\nsecond</pre>",
        "<p>a<pre>\n&gt; b</pre>",
        // `<meta>` in a post, which ammonia drops.
        "<div><meta itemprop=\"author\" content=\"A\" /><p>a<meta content=x>b</div>",
        // Rows and sections the parser adds, and closes.
        "<table><td>cell without a row</td></table>",
        "<table><tbody><tr><td>x</td></tr></table>",
        "<table><tbody>\n<th>h</th>\n<tr><td>x</td></tr>\n</tbody></table>",
        "<table><tr><th>a</th>\n<tr><td>b</td></table>",
        "<table><thead><tr><th>h</th><tbody><tr><td>x</td></table>",
        "<table><tr><td><p>x</table>",
        "<table><tr><td>a<td>b</table>",
        "<table><tr><th>a\n<th>b\n<tr><td><p>c\n<td>d</tr><tbody><tr><td>e</tbody></table>",
        "<table><tr><td>a</td></tr><tbody><tr><td>b</td></tr></tbody><tfoot><td>c</td></tfoot></table>",
    ];
    for html in cases {
        assert!(
            same(html, Some(&base())).is_some(),
            "the fast path does not read {html:?}"
        );
    }
    assert_eq!(
        same("<ul><li><p>a\n<li>b\n</ul>", None).as_deref(),
        Some("<ul><li><p>a\n</p></li><li>b\n</li></ul>")
    );
}

#[test]
fn implicit_closes_the_parser_builds_another_way_are_left_to_ammonia() {
    let cases = [
        // The parser would close an inline element too, and reopen it after.
        "<p><b>x<div>y</div>",
        "<p><span>x<ul><li>y</li></ul>",
        "<p><a href=x>y<h2>z</h2>",
        "<ul><li><b>x<li>y</ul>",
        "<dl><dt><i>x<dd>y</dl>",
        // ... or a block whose end tag comes later.
        "<ul><li><div>x<li>y</div></ul>",
        "<ul><li>a<div><li>b</div></ul>",
        "<dl><dt>a<div><dd>b</div></dl>",
        "<div><ul><li>x</div>",
        // A `<p>` inside an inline element, or a block in a heading.
        "<b><p>x<div>y</div></b>",
        "<h2>a<p>b",
        // An `<li>` the parser puts outside any list.
        "<p>a<li>b",
        "<div><li>a<li>b</div>",
        // An end tag with nothing open to close: ignored, or `</p>` made `<p></p>`.
        "<ul><li>a</ol>",
        "<p>x</div>",
        "<dl><dt>x</dd></dl>",
        "<p><b>x</p>y",
        "<table></p><tr><td>x</td></tr></table>",
        "<pre>&#10;x</pre>",
        "<table><thead><tr><td>x</tbody></table>",
        "<table><meta content=x><tr><td>x</td></tr></table>",
        "<p>a</meta>",
        // A cell closed with an element open in it.
        "<table><tr><td><b>x<td>y</table>",
        "<table><tr><td><div>x</tr></table>",
        "<table><tr><td><span>x</table>",
    ];
    for html in cases {
        assert_eq!(same(html, Some(&base())), None, "read {html:?}");
    }
}

impl Generator {
    /// Random blocks as posts write them: paragraphs, list items, terms and
    /// definitions often left open, sometimes with an inline element left open inside
    /// or a stray end tag.
    pub(super) fn blocks(&mut self, depth: usize, out: &mut String) {
        for _ in 0..self.rng.usize(0..5) {
            let open = self.rng.u8(..2) == 0;
            match self.rng.u8(..if depth == 0 { 3 } else { 10 }) {
                0 => self.inline(out),
                1 => self.block("p", open, out, |g, out| g.inline(out)),
                2 => out.push_str(self.pick(&["\n", "\n\n", " ", "<hr>", "</p>", "</li>"])),
                3 => {
                    let list = self.pick(&["ul", "ol"]);
                    self.list(list, &["li"], depth, out);
                }
                4 => self.list("dl", &["dt", "dd"], depth, out),
                5 => {
                    let name = self.pick(&["div", "blockquote", "section", "li", "td"]);
                    self.block(name, open, out, |g, out| g.blocks(depth - 1, out));
                }
                6 => {
                    let name = self.pick(&["h2", "pre", "b", "span", "a"]);
                    self.block(name, open && name == "b", out, |g, out| g.inline(out));
                }
                7 => {
                    out.push_str(self.pick(&["<pre>\n", "<pre>\n\n", "<pre>&#10;", "<pre>\n<b>"]));
                    self.inline(out);
                    out.push_str("</pre>");
                }
                8 => self.table(depth - 1, out),
                _ => self.html(1, out),
            }
        }
    }

    /// A table with its rows and sections sometimes left to the parser to add or
    /// close.
    fn table(&mut self, depth: usize, out: &mut String) {
        out.push_str("<table>");
        out.push_str(self.pick(&["", "<tr>", "<tbody>", "<thead>\n<tr>", "\n"]));
        for _ in 0..self.rng.usize(0..4) {
            let cell = self.pick(&["td", "th"]);
            let open = self.rng.u8(..3) == 0;
            self.block(cell, open, out, |g, out| g.blocks(depth, out));
            let next = [
                "",
                "\n",
                "</tr>",
                "<tr>",
                "\n<tr>",
                "</tr><tr>",
                "<tbody>",
                "<tfoot>",
            ];
            out.push_str(self.pick(&next));
        }
        let end = [
            "</table>",
            "</tr></table>",
            "</tbody></table>",
            "</tr></tbody></table>",
            "",
        ];
        out.push_str(self.pick(&end));
    }

    /// `<name>`, what `inside` writes, and the end tag unless `open`.
    fn block(
        &mut self,
        name: &str,
        open: bool,
        out: &mut String,
        inside: impl FnOnce(&mut Self, &mut String),
    ) {
        out.push('<');
        out.push_str(name);
        out.push('>');
        inside(self, out);
        if !open {
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }

    fn list(&mut self, list: &str, items: &[&str], depth: usize, out: &mut String) {
        out.push('<');
        out.push_str(list);
        out.push('>');
        for _ in 0..self.rng.usize(0..4) {
            let item = self.pick(items);
            let open = self.rng.u8(..3) != 0;
            if depth == 0 {
                self.block(item, open, out, |g, out| g.inline(out));
            } else {
                self.block(item, open, out, |g, out| g.blocks(0, out));
            }
            if self.rng.u8(..3) == 0 {
                out.push('\n');
            }
        }
        if self.rng.u8(..6) != 0 {
            out.push_str("</");
            out.push_str(list);
            out.push('>');
        }
    }

    /// Text and inline elements, now and then one left open.
    fn inline(&mut self, out: &mut String) {
        for _ in 0..self.rng.usize(0..3) {
            match self.rng.u8(..6) {
                0 => {
                    let name = self.pick(&["b", "i", "span", "a", "code"]);
                    let open = self.rng.u8(..5) == 0;
                    self.block(name, open, out, |g, out| out.push_str(g.pick(super::TEXTS)));
                }
                1 => out.push_str(self.pick(&["<img src=x>", "<br>", "<wbr>"])),
                _ => out.push_str(self.pick(&["word", " ", "\n", "a &amp; b", "x y "])),
            }
        }
    }
}
