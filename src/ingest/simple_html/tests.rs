//! The fast path against ammonia itself: wherever the fast path reads HTML, its
//! output must be ammonia's, byte for byte.

use url::Url;

use crate::ingest::sanitize::by_both_paths;

mod implied;

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
        // Misnested, or closed by another name.
        "<b><i>x</b></i>",
        "<h1>x</h2>",
        // Blocks where the parser closes what holds them.
        "<a href=\"/\"><div>block link</div></a>",
        "<ul><b>x</b></ul>",
        "<li>outside a list</li>",
        "<a href=\"/a\"><a href=\"/b\">nested</a></a>",
        "<p/>self-closing<span/>",
        // Elements read another way, or not allowed.
        "<table>text<tr><td>x</td></tr></table>",
        "<table><tr>&nbsp;<td>x</td></tr></table>",
        "<table><caption>c</caption></table>",
        "<table><tr><td><b>x</td></tr></table>",
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
    "<meta itemprop=\"a\" content=\"b\" />",
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
        if case % 3 == 2 {
            generator.blocks(2, &mut html);
        } else {
            generator.html(3, &mut html);
        }
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

/// Inputs the random generator does not write: the tree builder's rules around
/// formatting elements, tables and `<pre>`, references, the tokenizer's spellings,
/// attributes and URLs.
const EDGE_CASES: &[&str] = &[
    // The parser drops one byte order mark at the start, and only there.
    "\u{feff}x",
    "\u{feff}<p>x</p>",
    "\u{feff}\u{feff}x",
    "\u{feff}",
    "x\u{feff}",
    "<p>\u{feff}x</p>",
    "<pre><!---->\nx</pre>",
    "<pre><b></b>\nx</pre>",
    "<pre>&#10;x</pre>",
    "<p>&#10;x &#13; y</p>",
    "<b><b><b><b>x</b></b></b></b>",
    "<b class=x><b class=x><b class=x><b class=x>x</b></b></b></b>y",
    "<a href=\"x\">a</a><a href=\"y\">b</a>",
    "<table> <tr><td>x</td></tr> </table>",
    "<table><tr><td>x</td></tr></tbody></table>",
    "<table><tr><td>1</td></tr><tr><td>2</td></tr></table>",
    "<table><thead><tr><th>h</th></tr></thead><tr><td>d</td></tr></table>",
    "<table><tr><td><table><tr><td>n</td></tr></table></td></tr></table>",
    "<table><!-- c --><tr><td>x</td></tr></table>",
    "<table>\u{c}<tr>\t<td>x</td>\n</tr></table>",
    "<p>a</br>b</p>",
    "<p>a</br >b</p>",
    "<html><body><p>x</p></body></html>",
    "<html lang=x><head></head><body class=y>t</body></html>",
    "<p>a</img>b</hr>c</wbr>d</head></p>",
    "<span>&notit; &amp &ampx &#x80; &#128; &#129; &#0; &#xD800; &#x110000; &#99999999999;</span>",
    "<span>&#x; &#; &#xg; &# &; &a; &AMP; &AMP &lt;&gt &nbsp &NotEqualTilde; &fjlig;</span>",
    "<span>&#65 &#x41x &#65a</span>",
    "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a><a href=\"java&#9;script:alert(1)\">y</a>",
    "<a href=\"java\nscript:alert(1)\">x</a><a href=\"JAVASCRIPT:alert(1)\">y</a>",
    "<a href=\"&#1;javascript:alert(1)\">x</a><a href=\"\u{1}javascript:x\">y</a>",
    "<a href=\"javascript&colon;alert(1)\">x</a>",
    "<img src=\"x\" src=\"javascript:y\"><img src=\"javascript:y\" src=\"x\">",
    "<a href=\"/x\" HREF=\"/y\">d</a>",
    "<img alt=\"a<b>c\" title='q\"q'>",
    "<p title=\"&amp=x &ampx &amp; &amp;x &lt=\">t</p>",
    "<p title=\"&notit; &notin &noti\">t</p>",
    "<span title=a&amp;b>x</span><span title=a&b>y</span><span title=&lt;>z</span>",
    "<iframe>a<b>&amp;</iframe>",
    "<iframe src=\"javascript:x\">a</IFRAME >",
    "<p><iframe></iframe></p><p><style>p{}</style>x</p>",
    "<style>x</style ><style></STYLE>",
    "<iframe>x</iframes></iframe>",
    "a < b, a <3, <\u{e9} <. <1",
    "a <",
    "x<!-- -- -->y<!---x-->z<!-- a --->w<!-- --!-->v",
    "<ul> <li>a</li> text <li>b</li></ul>",
    "<ol><li><ul><li>n</li></ul></li></ol>",
    "<dl><dt><dl><dd>x</dd></dl></dt></dl>",
    "<font color=\"red\" face=\"x\" size=\"3\">f</font>",
    "<div lang=\"en\" xml:lang=\"en\" dir=\"rtl\" xmlns=\"x\">t</div>",
    "<span title=\"a\u{a0}b\">\u{a0}&nbsp;</span>",
    "<img src=\"//evil.example/x\"><img src=\"http:x\"><img src=\"x:y\"><img src=\"\\\\evil\">",
    "<img src=\"https://a.example/\u{1F600}\"><img src=\"a b\"><img src=\"%zz\">",
    "<img src=\" /x \"><img src=\"\"><img src>",
    "<a href=\"http://[::1]/\">v6</a><a href=\"http://a b/\">sp</a><a href=\"http://%41/\">pct</a>",
    "<time datetime=\"x\">t</time><data value=\"x\">d</data><bdo dir=\"rtl\">b</bdo>",
    "<q cite=\"javascript:alert(1)\">q</q><blockquote cite=\"/x\">b</blockquote>",
    "<del cite=\"/x\" datetime=\"d\">x</del><ins cite=\"x\">y</ins>",
    "<img src=\"x.png\"/><br/><hr/><wbr/>",
    "<br a=b/><b a=b/>x</b>",
    "<p>x</p >",
    "<a href=\"x\"\ntitle=\"t\">a</a>",
    "<a\thref=x\x0ctitle=y>a</a>",
    "<img src=x.png title= \"t\" alt =a>",
    "<hr></hr>",
    "<p>a<wbr>b</p>",
    "<h1>a<a href=x>b</a></h1><h6>c</h6>",
    "<ul><li><table><tr><td><ol><li>x</li></ol></td></tr></table></li></ul>",
    "<section><main><search><address>a</address></search></main></section>",
    "<center><big>x</big><acronym>y</acronym><strike>z</strike><tt>t</tt></center>",
    "<abbr title=\"t\">a</abbr><dfn>d</dfn><kbd>k</kbd><samp>s</samp><var>v</var><mark>m</mark><bdi>b</bdi>",
    "<figure><figcaption>c</figcaption></figure><nav><aside><header><footer><article>a</article></footer></header></aside></nav>",
    "<img src=x width=1 height=1>",
    "<div style=\"color: red\" style=\"x\">s</div>",
    "<div style=\"\">s</div><div style=\"color: red;;\">t</div>",
    "<div align=center style=\"position: absolute\" title=t style=x lang=fr dir=ltr>swap</div>",
    "<a title=t href=\"/r\" hreflang=en style=\"position:fixed\">a</a>",
    "<a style=\"position:fixed\" href=\"/r\" title=t>a</a>",
    "<img style=\"x:y\" src=\"/a\" alt=a title=t width=3>",
    "<img src=\"/a\" style=\"x:y\" alt=a>",
    "<a href=\"/a\" title=t>a</a>",
    "<td>x</td>",
    "<tr><td>x</td></tr>",
    "<li>x</li>",
    "<dd>x</dd>",
    "<p>x\r\ny\rz\r</p>\r",
    "<p title=\"a\r\nb\rc\">x</p>",
    "<span title=\"&#13;\">&#13;</span>",
    "<span title='&#x0D;&#x0c;'>&#x0c;&#x7f;&#xfffe;&#x1ffff;</span>",
    "&amp;&lt;&gt;&quot;&apos;",
    "<p>&</p><p>&&amp;</p><p>&#</p><p>&#x</p>",
    "<span title=\"&\">&</span><span title=\"&#\">x</span><span title=\"&#x\">x</span>",
    "<span title=\"&#38;amp;\">&#38;amp;</span>",
    "<span title=\"&#60;script&#62;\">&#60;script&#62;</span>",
    "<a href=\"https://b.example/?a=1&copy=2&amp;c\">x</a>",
    "<a href=\"https://b.example/?a=1&copy;=2\">x</a>",
    "<a href=\"?a&lang=en\">x</a><a href=\"?a&lang;\">y</a>",
    "<A HREF=\"/X\">Y</A>",
    "<Br><bR/>",
    "<p>x</P>",
    "<div><p>a</p>b</div>",
    "<p id=x class=y name=z onclick=w>t</p>",
    "<img src=\"data:image/png;base64,AAAA\">",
    "<a href=\"mailto:a@b\">m</a><a href=\"tel:1\">t</a><a href=\"ftp://x\">f</a><a href=\"irc://x\">i</a>",
    "<a href=\"#\">h</a><a href=\"#x y\">h</a>",
    "<img src=\"https://a.example/p.gif\" width=\"1\" height=\"1\" />",
    "<span \n title=\"x\"\n>y</span>",
    "<span title=\"x\" >y</span><span title=\"x\"\t/>y</span>",
    "<ul>\n<li>x</li>\n</ul >",
    "<table><tbody></tbody></table><table></table><table><tr></tr></table>",
    "<table><tfoot><tr><td>f</td></tr></tfoot><tbody><tr><th>b</th></tr></tbody></table>",
    "<td></td>",
    "<p></p><b></b><a></a><div></div>",
    "<pre>x\n</pre><pre></pre>",
    "<pre> \nx</pre>",
    "<img alt=&amp><img alt=a&gt><a href=x&gt>y</a><img alt=&amp;x>",
    "<img alt=&notit><img alt=&not><img alt='&not='><img alt=\"&not;=\">",
    "<span title=\"&NotEqualTilde;&nGt;&fjlig\">&nGt;&fjlig</span>",
    "<img alt=\"a\"title=\"b\">",
    "<img\nalt=\n\"a\"\n>",
    "<img alt=\"\" title=''>",
    "<img alt title=x><img alt\ntitle>",
    "<br/ ><img src=\"a\" / >",
    "<dl><dd><table><tr><td>x</td></tr></table></dd></dl>",
    "<table><tr><td><p>a</p><ul><li>x</li></ul></td><th><h2>h</h2></th></tr></table>",
    "<table><tr><td><a href=\"/x\">a</a></td></tr></table><a href=\"/y\">b</a>",
    "<a href=\"/x\">a</a><table><tr><td><a href=\"/y\">b</a></td></tr></table>",
    "<table><tr><td><b>x</b></td><td><b>y</b></td></tr></table><b>z</b>",
    "<table><tr><td></td></tr></table>",
    "<table>\n<thead>\n<tr>\n<th>a</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>b</td>\n</tr>\n</tbody>\n</table>",
    "<i><b><u><s><em>x</em></s></u></b></i>",
    "<font><font><font><font><font>x</font></font></font></font></font>",
    "<a href=x><b><b><b><b>y</b></b></b></b></a>",
    "<p><b>a</b><b>a</b><b>a</b><b>a</b>b</p>",
    "<iframe><p>x</p></iframe><p>y</p>",
    "<iframe>\n</iframe>",
    "<iframe></iframe\n>",
    "<iframe>&lt;</iframe>",
    "<iframe>a</iframe/>",
    "<style>a</style/>",
    "<p>\u{a0}&#160;&#xa0;&nbsp</p>",
    "<p>&#x85;&#x8D;&#x9F;&#150;</p>",
    "<p>&#xFFFF;&#xFDD0;&#x10FFFF;</p>",
    "<p>x</p><!---->",
    "<!--\r\n-->x",
    "<p>\r</p><pre>x\r\ny</pre>",
    "<pre>\r\nx</pre>",
    "<pre>\rx</pre>",
    "<ul><li>a</li><li>b</ul>",
    "<p>a</p></p>",
    "<span lang=\"en\" LANG=\"fr\" Lang=\"de\">x</span>",
    "<img src=\"/a\" SRC=\"/b\" width=1 WIDTH=2 height=\"1\">",
    "<a href=\"/a\" rel=\"x\" target=\"_blank\">x</a>",
    "<a hreflang=en href=\"\">x</a>",
    "<a href=\" \">x</a><a href=\"\t/x\n\">y</a>",
    "<a href=\"https:\">x</a><a href=\"https:/x\">y</a><a href=\"https:x\">z</a>",
    "<a href=\"HTTPS://A.EXAMPLE/\">x</a><a href=\"http://a.example:99999/\">y</a>",
    "<a href=\"&#x0a;/x\">x</a><a href=\"/x&#x09;y\">y</a>",
    "<img src=\"/a?x=1&y=2\"><img src=\"/a?x=1&amp=2\">",
    "<table border=\"1\" cellpadding=\"2\" summary=\"s\" width=\"100%\"><tr align=left><td colspan=2 rowspan=\"3\" valign=top>x</td></tr></table>",
    "<ol reversed start=3 type=a><li value=2>x</li></ol>",
    "<h1 id=a style=\"color:red\" align=center>t</h1>",
    "<span style=\"color: red; background: url(javascript:x)\">t</span>",
    "<span style=\"color:&#x72;ed\">t</span>",
    "<span style='font-family: \"x\"'>t</span>",
    "<a href=\"/x\" style=\"color:red\" title=\"t\">a</a>",
    "<a style=\"\" href=\"/x\" title=\"t\" lang=\"en\">a</a>",
    "<a href=\"/x\" style=\"\" title=\"t\" lang=\"en\">a</a>",
    "<img src=\"/x\" style=\"\" alt=\"t\" title=\"t2\">",
    "<img style=\"\" src=\"/x\" alt=\"t\" title=\"t2\">",
    "<img src=\"/x\" alt=\"t\" style=\"\" title=\"t2\" width=3>",
];

#[test]
fn edge_cases_clean_as_ammonia_cleans_them() {
    let cases = EDGE_CASES;
    let mut differ = Vec::new();
    for html in cases {
        for b in [Some(base()), None] {
            let (ammonia, fast) = by_both_paths(html, b.as_ref());
            if let Some(fast) = fast
                && fast != ammonia
            {
                differ.push(format!(
                    "input {html:?} base {}:\n  ammonia {ammonia:?}\n  fast    {fast:?}",
                    b.is_some()
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
