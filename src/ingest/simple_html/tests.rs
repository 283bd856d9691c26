//! The fast path against ammonia itself: wherever the fast path reads HTML, its
//! output must be ammonia's, byte for byte.

use url::Url;

use crate::ingest::sanitize::by_both_paths;

fn base() -> Url {
    Url::parse("https://a.example/post/1").unwrap()
}

/// The fast path's output for `html`, checked against ammonia's.
fn same(html: &str, base: Option<&Url>) -> Option<String> {
    let (ammonia, fast) = by_both_paths(html, base);
    if let Some(fast) = &fast {
        assert_eq!(fast, &ammonia, "fast path and ammonia differ on {html:?}");
    }
    fast
}

#[test]
fn html_built_as_written_cleans_as_ammonia_cleans_it() {
    let cases = [
        "<p>One</p>\n<p>Two <b>bold</b> and <i>italic</i>.</p>",
        r#"<p><a href="https://b.example/x?a=1&amp;b=2" title="T" rel="nofollow" target="_blank" class="c">link</a></p>"#,
        r##"<a href="/relative/path">r</a> <a href="../up">u</a> <a href="#frag">f</a> <a href="?q=1">q</a>"##,
        r#"<a href="javascript:alert(1)">js</a><a href="data:text/html,x">d</a><a href="mailto:x@y.example">m</a>"#,
        r#"<a href="http://[bad">broken</a><a href="tel:+1">tel</a><a href="">empty</a>"#,
        r#"<img src="/i.png" alt="A &amp; B" width="600" height="400" loading="lazy"><br><br/><br />"#,
        r#"<img src="https://t.example/p.gif" width="1" height="1">"#,
        r#"<div style="color: red; position: absolute" onclick="x()" id="d" align="center">s</div>"#,
        r#"<span style="background: url(x)" title="t" style="color: blue">dup</span>"#,
        // ammonia drops a filtered attribute by swapping the last one into its place.
        r#"<div style="background: url(x)" align="center" title="t" lang="fr">swapped</div>"#,
        r#"<P ALIGN="left" Class=x>Upper <EM>case</EM></P>"#,
        "<ul>\n<li>a</li>\n<li><p>b</p><ul><li>c</li></ul></li>\n</ul><ol start=\"3\"><li>d</li></ol>",
        "<dl><dt>term</dt><dd>def <code>x</code></dd></dl>",
        "<blockquote cite=\"/q\"><p>quoted</p></blockquote><figure><img src=a.png><figcaption>cap</figcaption></figure>",
        "<h2>Head</h2><hr><pre>code  here\n  indented</pre>",
        "Tom &amp; Jerry &lt;tag&gt; &quot;q&quot; &#39;s &#x2014; &mdash; &nbsp;&hellip; &notin; &NotNestedGreaterGreater; &acE;",
        "a & b && c &<b>x</b> 1 < 2 > 0 <3 <= \"quotes\" 'single' \u{a0}nbsp",
        r#"<a title="a &quot;quoted&quot; &lt;value&gt; &amp; more" href=https://u.example/a/b/>unquoted</a>"#,
        r#"<font color="red" face='serif' size=2>f</font><span lang="fr" dir="rtl" xml:lang="fr">s</span>"#,
        "<b><b><b><b><b>deep</b></b></b></b></b><i><b><u><s>mixed</s></u></b></i>",
        "<p>é ü Ω 日本語 👍 \u{200b}</p><p>controls \u{1}\u{7f}</p>",
        "<q cite=\"javascript:x\">q</q><time datetime=\"2026-01-01\">t</time><del cite=\"/d\" datetime=\"x\">d</del><ins>i</ins>",
        "<center><article><header>h</header><nav>n</nav><aside>a</aside><footer>f</footer></article></center>",
        r#"<a href="https://a.example/" hreflang="en" HREF="javascript:x">first href wins</a>"#,
        "<p>text</p   ><p\n\tclass=\"x\"\n>spaced</p>",
        "<wbr><sub>1</sub><sup>2</sup><small>s</small><mark>m</mark><abbr title=\"t\">a</abbr><kbd>k</kbd>",
        "",
        "   ",
        // References as the parser reads them, repairs and all.
        "&copy 2026 AT&T &notit; &unknown; &#0; &#128; &#x9d; &#xD800; &#13; &# &#x; &#39s &#1114112;",
        r#"<a href="/r?a=1&reg=2&copy;x&amp=3&lt" title="&copy=&notin &notit;">attribute</a>"#,
        // Dropped, or kept as text, as ammonia does.
        "<!-- a comment --><p>after <!-- <b> --> it</p>",
        "<section><main><p>unwrapped <big>big</big></p></main></section><address>a</address>",
        r#"<p>video: <iframe src="https://v.example/e" allowfullscreen>fallback &amp; <b>text</b></IFRAME ></p>"#,
        "<style>p { color: red }</style><p>styled</p>",
        "<br></br><p>x</br></p>",
        "line\r\nend\rlone\n\r\n",
        // Tables, with the `<tbody>` the parser adds.
        "<table><tr><td><a href=\"/r\"><img src=\"t.jpg\" alt=\"a\"></img></a></td><td>by <b>x</b></td></tr></table>",
        "<table border=\"1\" width=\"100%\" onclick=\"x()\">\n <tr valign=\"top\">\n <th scope=\"col\">h</th><td colspan=2>c</td>\n </tr>\n</table>",
        "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td><table><tr><td>nested</td></tr></table></td></tr></tbody></table>",
        // A document's own wrapper, which a fragment's parser ignores.
        "<html><head></head><body><div>page</div></body></html>",
    ];
    for html in cases {
        assert!(
            same(html, Some(&base())).is_some(),
            "the fast path does not read {html:?}"
        );
    }
    // Without a base, relative URLs go, as ammonia drops them.
    assert_eq!(
        same(
            r#"<a href="/x">x</a><img src="i.png" alt="a" width="2" title="t">"#,
            None
        )
        .as_deref(),
        Some(r#"<a rel="noopener noreferrer">x</a><img title="t" alt="a" width="2">"#)
    );
}

#[test]
fn html_the_parser_would_rebuild_is_left_to_ammonia() {
    let cases = [
        // Closed implicitly, or not at all.
        "<p>one<p>two",
        "<p>open",
        "<b>unclosed",
        "<ul><li>a<li>b</ul>",
        // Misnested, or closed by another name.
        "<b><i>x</b></i>",
        "<h1>x</h2>",
        "</p>",
        "<p></br>",
        // Blocks where the parser closes what holds them.
        "<p><div>x</div></p>",
        "<a href=\"/\"><div>block link</div></a>",
        "<p><ul><li>x</li></ul></p>",
        "<ul><b>x</b></ul>",
        "<li>outside a list</li>",
        "<a href=\"/a\"><a href=\"/b\">nested</a></a>",
        "<pre>\nfirst newline</pre>",
        "<p/>self-closing<span/>",
        // Elements read another way, or not allowed.
        "<table>text<tr><td>x</td></tr></table>",
        "<table><tr>&nbsp;<td>x</td></tr></table>",
        "<table><td>cell without a row</td></table>",
        "<table><tr><td>unclosed</td></tr>",
        "<table><tbody><tr><td>x</td></tr></table>",
        "<table><caption>c</caption></table>",
        "<table><tr><td><b>x</td></tr></table>",
        "<p><table></table></p>",
        "<script>alert(1)</script>",
        "<svg><a>x</a></svg>",
        "<textarea>x</textarea>",
        "<image src=x>",
        "<!-->",
        "<!--->",
        "<!-- a --!> b -->",
        "<!-- unclosed",
        "<script>alert(1)</script>",
        "<iframe>x</iframe y>",
        "<!DOCTYPE html>",
        "<?pi?>",
        // Attributes the parser reads its own way.
        "<a href=\"x\"title=\"y\">x</a>",
        "<a href=>x</a>",
        "<a href=a\"b>x</a>",
        "<a 1a=\"x\">x</a>",
        // What the parser rewrites before reading.
        "nul\0",
        "trailing <",
    ];
    for html in cases {
        assert_eq!(same(html, Some(&base())), None, "read {html:?}");
    }
}

/// Random HTML: elements of every kind (some the fast path leaves to ammonia), with
/// attributes of every kind, sometimes unclosed, then sometimes cut or spliced.
struct Generator {
    rng: fastrand::Rng,
}

const ELEMENTS: &[&str] = &[
    "p",
    "div",
    "span",
    "a",
    "b",
    "i",
    "em",
    "strong",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "h2",
    "font",
    "q",
    "img",
    "br",
    "hr",
    "wbr",
    "figure",
    "figcaption",
    "table",
    "td",
    "section",
    "script",
    "u",
    "s",
    "sub",
    "center",
    "P",
    "A",
    "main",
    "big",
    "iframe",
    "style",
    "address",
];

const ATTRIBUTES: &[&str] = &[
    r#"href="https://b.example/p?a=1&amp;b=2""#,
    r#"href="/root""#,
    r#"href="rel/ative""#,
    r#"href="javascript:alert(1)""#,
    r#"href='#top'"#,
    "href=//cdn.example/x",
    r#"src="i.png""#,
    r#"src="data:image/png;base64,AA==""#,
    r#"width="1" height="1""#,
    r#"title="a &quot;b&quot; &lt;c&gt; &amp; d""#,
    r#"style="color: red; position: fixed""#,
    r#"style="background: url(javascript:x)""#,
    "class=x",
    r#"id="i""#,
    r#"onclick="x()""#,
    r#"align="center""#,
    "lang=fr",
    r#"TITLE="upper""#,
    "hidden",
    r#"alt="&eacute;t&eacute;""#,
    r#"cite="/c""#,
    r#"rel="nofollow""#,
];

const TEXTS: &[&str] = &[
    "\r\n",
    "\r",
    "&copy 1",
    "&reg=",
    "&#x80;",
    "&#39",
    "<!-- c -->",
    "</br>",
    "<iframe src=x>raw <b> &amp;</iframe>",
    "<style>b{}</style>",
    "<table><tr><td>cell</td></tr></table>",
    "<table> <tr><td>a</td><td>b</td></tr> </table>",
    "<table><tbody><tr><th>h</th></tr></tbody></table>",
    "<html><head></head><body>",
    "</body></html>",
    "</img>",
    "</hr>",
    "word",
    " ",
    "\n",
    "Tom &amp; Jerry",
    "&nbsp;",
    "\u{a0}",
    "&#8217;",
    "&#x1F600;",
    "1 < 2",
    "a > b",
    "\"q\" 'q'",
    "&mdash;",
    "é日本",
    "&copy",
    "&",
    "x & y",
    "&lt;script&gt;",
];

impl Generator {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    fn html(&mut self, depth: usize, out: &mut String) {
        for _ in 0..self.rng.usize(0..4) {
            if depth == 0 || self.rng.u8(..3) == 0 {
                out.push_str(self.pick(TEXTS));
                continue;
            }
            let name = self.pick(ELEMENTS);
            out.push('<');
            out.push_str(name);
            for _ in 0..self.rng.usize(0..5) {
                out.push(' ');
                out.push_str(self.pick(ATTRIBUTES));
            }
            out.push('>');
            if matches!(name, "img" | "br" | "hr" | "wbr") {
                continue;
            }
            self.html(depth - 1, out);
            if self.rng.u8(..12) != 0 {
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
    }

    /// Cuts a random range out, or splices a random piece of markup in.
    fn mutate(&mut self, html: &mut String) {
        let at = |rng: &mut fastrand::Rng, html: &str| {
            let mut at = rng.usize(..=html.len());
            while !html.is_char_boundary(at) {
                at -= 1;
            }
            at
        };
        if self.rng.bool() {
            let (a, b) = (at(&mut self.rng, html), at(&mut self.rng, html));
            html.replace_range(a.min(b)..a.max(b), "");
        } else {
            let piece = match self.rng.u8(..3) {
                0 => self.pick(ATTRIBUTES),
                1 => self.pick(TEXTS),
                _ => self.pick(&[
                    "<", ">", "</", "/>", "\"", "'", "=", "&", ";", "</p>", "<p>",
                ]),
            };
            let a = at(&mut self.rng, html);
            html.insert_str(a, piece);
        }
    }
}

/// 6000 cases by default; `SIMPLE_HTML_CASES=200000 SIMPLE_HTML_SEED=n cargo test
/// --release --lib random_html` runs a longer search.
#[test]
fn random_html_cleans_as_ammonia_cleans_it_wherever_the_fast_path_reads_it() {
    let mut generator = Generator {
        rng: fastrand::Rng::with_seed(
            std::env::var("SIMPLE_HTML_SEED").map_or(27, |v| v.parse().unwrap()),
        ),
    };
    let (mut read, total) = (
        0,
        std::env::var("SIMPLE_HTML_CASES").map_or(6000, |v| v.parse().unwrap()),
    );
    for case in 0..total {
        let mut html = String::new();
        generator.html(3, &mut html);
        if case % 2 == 1 {
            for _ in 0..generator.rng.usize(1..3) {
                generator.mutate(&mut html);
            }
        }
        let base = (case % 5 != 0).then(base);
        read += usize::from(same(&html, base.as_ref()).is_some());
    }
    // The fast path must be exercised, not only refused.
    assert!(
        read * 5 > total,
        "the fast path read only {read} of {total}"
    );
}

#[test]
fn real_item_html_cleans_as_ammonia_cleans_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (mut read, mut total) = (0, 0);
    for dir in ["benches/corpus", "tests/fidelity"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            let Ok(feed) = feed_rs::parser::parse(&std::fs::read(&path).unwrap()[..]) else {
                continue;
            };
            for entry in feed.entries {
                let html = entry
                    .summary
                    .map(|s| s.content)
                    .into_iter()
                    .chain(entry.content.and_then(|c| c.body));
                for html in html {
                    total += 1;
                    read += usize::from(same(&html, Some(&base())).is_some());
                }
            }
        }
    }
    assert!(
        read * 4 > total,
        "the fast path read only {read} of {total}"
    );
}

#[test]
fn the_names_read_are_sorted_for_their_binary_search() {
    assert!(super::tokens::KNOWN_NAMES.is_sorted());
}
