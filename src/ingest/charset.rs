//! Pure: the bytes of a document to UTF-8 text, with the charset the bytes, the HTTP
//! header and the document itself say (see [`decode`] and [`decode_html`]).

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use oem_cp::code_table::DECODING_TABLE_CP_MAP;
use oem_cp::code_table_type::TableType;
use std::borrow::Cow;

/// Decodes a feed to UTF-8: BOM, then UTF-16 told by its first characters, then the
/// HTTP charset, then the XML declaration (RFC 7303's order, and feedparser's), then
/// UTF-8. Bytes that are invalid in the chosen encoding become U+FFFD rather than
/// failing the whole feed.
///
/// The bytes overrule a declared charset where they prove it wrong: a document that
/// is valid UTF-8 and has multibyte sequences is read as UTF-8 whatever it declares
/// (a file saved as UTF-8 under an old `encoding="ISO-8859-1"` declaration, or served
/// with a server's blanket Latin-1; text in a single-byte charset is essentially never
/// valid UTF-8 once it has a few non-ASCII letters, so windows-1251 and KOI8-R feeds
/// keep theirs), and a server's blanket `charset=utf-8` loses to a declaration when
/// the bytes are not UTF-8.
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        return encoding.decode_without_bom_handling(&body[bom_len..]).0;
    }
    if let Some(encoding) = utf16_without_bom(body) {
        return encoding.decode_without_bom_handling(body).0;
    }
    if let Some(text) = utf8_beyond_ascii(body) {
        return Cow::Borrowed(text);
    }
    if let Some(table) = dos_code_page(body, content_type) {
        return Cow::Owned(table.decode_string_lossy(body));
    }
    let declared = xml_declared_encoding(body);
    let from_http = content_type.and_then(http_charset);
    let encoding = match (from_http, declared) {
        // Servers often send a blanket `charset=utf-8` for files written in another
        // charset; when the bytes prove it wrong, trust the document's own declaration.
        (Some(http), Some(declared))
            if http == UTF_8 && declared != UTF_8 && std::str::from_utf8(body).is_err() =>
        {
            declared
        }
        (Some(http), _) => http,
        (None, Some(declared)) => declared,
        // Nothing declared and not UTF-8: old Latin-1 feeds; windows-1252 reads them
        // correctly and is what browsers assume.
        (None, None) if std::str::from_utf8(body).is_err() => WINDOWS_1252,
        (None, None) => UTF_8,
    };
    // UTF-16 declared in text that has no BOM cannot be told from bytes; the
    // declaration is then read in an ASCII-compatible encoding and is wrong.
    let encoding = encoding.output_encoding();
    encoding.decode_without_bom_handling(body).0
}

/// A Content-Type under which [`decode`] reads the text [`to_utf8`] returns as that text:
/// an HTTP charset of UTF-8 comes before any declaration, and the bytes never prove it
/// wrong.
pub const DECODED: &str = "application/xml; charset=utf-8";

/// A feed that is not UTF-8 as the UTF-8 text [`decode`] makes of it, to be read
/// under the Content-Type [`DECODED`]: then it reads exactly as `body` under
/// `content_type` does, and its bytes can be compared with those of the last poll's
/// text (see `scheduler::known`). `None` when `body` already is that text (decoding it
/// only borrows it), or when the text could not be told from other bytes as the text
/// they are: it begins with a byte order mark or with what looks like UTF-16 (which
/// [`decode`] would read so again), or is only white space (an empty body).
pub fn to_utf8(body: &[u8], content_type: Option<&str>) -> Option<String> {
    let Cow::Owned(text) = decode(body, content_type) else {
        return None;
    };
    let bytes = text.as_bytes();
    let decodes_as_itself = Encoding::for_bom(bytes).is_none()
        && utf16_without_bom(bytes).is_none()
        && !bytes.iter().all(u8::is_ascii_whitespace);
    decodes_as_itself.then_some(text)
}

/// The DOS (OEM) code page a document is in, when the charset it names is one (`cp437`,
/// `IBM850`, `866`, `csPC8CodePage437`...): the Encoding Standard leaves these out
/// (except 866), and old feeds from DOS-era tools declare them. The same order as
/// [`decode`]: the HTTP charset, unless it is a blanket UTF-8 the bytes disprove, then
/// the XML declaration.
fn dos_code_page(body: &[u8], content_type: Option<&str>) -> Option<&'static TableType> {
    let from_http = content_type.and_then(http_charset_label);
    let label = match from_http {
        Some(http)
            if encoding_for_label(http) == Some(UTF_8) && std::str::from_utf8(body).is_err() =>
        {
            xml_declared_label(body)?
        }
        Some(http) => http,
        None => xml_declared_label(body)?,
    };
    let name = label
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase();
    let digits = [
        "cspc8codepage",
        "cspcp",
        "cspc",
        "csibm",
        "ibm",
        "cp",
        "dos-",
        "",
    ]
    .iter()
    .find_map(|prefix| {
        let rest = name.strip_prefix(prefix)?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })?;
    let page: u16 = digits.parse().ok()?;
    // 866 is in the Encoding Standard (IBM866), which reads it already.
    if page == 866 {
        return None;
    }
    DECODING_TABLE_CP_MAP.get(&page)
}

/// UTF-16 without a byte order mark, told by a document's first two characters being
/// ASCII (`<?`, `<r`, ...) with a zero byte beside each (XML 1.0, appendix F).
fn utf16_without_bom(body: &[u8]) -> Option<&'static Encoding> {
    match body {
        [0, a, 0, b, ..] if a.is_ascii_graphic() && b.is_ascii_graphic() => {
            Some(encoding_rs::UTF_16BE)
        }
        [a, 0, b, 0, ..] if a.is_ascii_graphic() && b.is_ascii_graphic() => {
            Some(encoding_rs::UTF_16LE)
        }
        _ => None,
    }
}

/// `body` as text when it is valid UTF-8 with at least one multibyte sequence: proof
/// enough that it is UTF-8, whatever it declares. Validated once, and borrowed as
/// decoding valid UTF-8 would borrow it.
fn utf8_beyond_ascii(body: &[u8]) -> Option<&str> {
    if body.is_ascii() {
        return None;
    }
    std::str::from_utf8(body).ok()
}

/// The encoding a label names, also under the spellings documents use that the
/// Encoding Standard does not list (`utf_8`, `UTF-8 ` with spaces, `ISO_8859_1`).
fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(|c| c == '"' || c == '\'');
    Encoding::for_label(label.as_bytes())
        .or_else(|| Encoding::for_label(label.replace('_', "-").as_bytes()))
        .or_else(|| {
            // Python's names for encodings the Encoding Standard has under others
            // (feedparser reads documents that declare them).
            let known = match label.to_ascii_lowercase().replace('_', "-").as_str() {
                "macroman" | "mac-roman" => "macintosh",
                "maccyrillic" | "mac-cyrillic" => "x-mac-cyrillic",
                "ms-ansi" => "windows-1252",
                "ms-ee" => "windows-1250",
                "ms-cyrl" => "windows-1251",
                "ms-greek" => "windows-1253",
                "ms-turk" => "windows-1254",
                "ms-hebr" => "windows-1255",
                "ms-arab" => "windows-1256",
                "winbaltrim" => "windows-1257",
                _ => return None,
            };
            Encoding::for_label(known.as_bytes())
        })
}

/// Decodes an HTML page to UTF-8 as browsers do: BOM, then the HTTP charset, then a
/// `<meta charset>` or `<meta http-equiv="Content-Type">` in the first 1024 bytes, then
/// UTF-8. Bytes that are invalid in the chosen encoding become U+FFFD, so one bad byte
/// never costs the whole page.
pub fn decode_html<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        return encoding.decode_without_bom_handling(&body[bom_len..]).0;
    }
    let encoding = content_type
        .and_then(http_charset)
        .or_else(|| meta_charset(body))
        .unwrap_or(UTF_8)
        // A page that says UTF-16 without a BOM was read as ASCII to find that out.
        .output_encoding();
    encoding.decode_without_bom_handling(body).0
}

/// The charset a page declares in a `<meta>` element within its first 1024 bytes (the
/// window the HTML standard's prescan looks at): `<meta charset="…">`, or the
/// `charset=` inside `<meta http-equiv="Content-Type" content="…">`.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(1024)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(at) = rest.find("<meta") {
        rest = &rest[at + 5..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        let Some(at) = tag.find("charset") else {
            continue;
        };
        let value = tag[at + "charset".len()..].trim_start();
        let Some(value) = value.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start().trim_start_matches(['"', '\'']);
        let end = value
            .find(|c: char| c == '"' || c == '\'' || c == ';' || c == '/' || c.is_whitespace())
            .unwrap_or(value.len());
        if let Some(encoding) = Encoding::for_label(&value.as_bytes()[..end]) {
            return Some(encoding);
        }
    }
    None
}

/// The `charset` parameter of a Content-Type header, if it names a known encoding.
fn http_charset(content_type: &str) -> Option<&'static Encoding> {
    http_charset_label(content_type).and_then(encoding_for_label)
}

/// The `charset` parameter of a Content-Type header, as written.
fn http_charset_label(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then_some(value)
    })
}

/// The `encoding` of a leading `<?xml ...?>` declaration, if it names a known encoding.
fn xml_declared_encoding(body: &[u8]) -> Option<&'static Encoding> {
    xml_declared_label(body).and_then(encoding_for_label)
}

/// The `encoding` of a leading `<?xml ...?>` declaration, as written.
fn xml_declared_label(body: &[u8]) -> Option<&str> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &body[start..body.len().min(start + 512)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    rest[1..].split(quote).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_order_is_bom_http_declaration_utf8() {
        let cp1251 =
            b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>\xcf\xf0\xe8\xe2\xe5\xf2</a>";
        assert!(decode(cp1251, None).contains("Привет"));
        assert!(decode(cp1251, Some("application/rss+xml")).contains("Привет"));
        // A blanket utf-8 from the server loses to a declaration the bytes agree with.
        assert!(decode(cp1251, Some("text/xml; charset=utf-8")).contains("Привет"));
        let koi8 = b"<a>\xf0\xd2\xc9\xd7\xc5\xd4</a>";
        assert!(decode(koi8, Some("text/xml; charset=\"KOI8-R\"")).contains("Привет"));
        let bom = b"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>\xd0\x96</a>";
        assert!(decode(bom, None).contains("<a>Ж</a>"));
        assert!(decode(b"<a>caf\xe9</a>", None).contains("café"));
    }

    #[test]
    fn bytes_that_prove_utf8_overrule_a_declared_charset() {
        let latin1_declared = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>café — naïve</a>";
        for content_type in [
            None,
            Some("application/rss+xml; charset=ISO-8859-1"),
            Some("text/xml; charset=windows-1252"),
        ] {
            let text = decode(latin1_declared.as_bytes(), content_type);
            assert!(
                text.contains("<a>café — naïve</a>"),
                "{content_type:?}: {text}"
            );
        }
        // Real single-byte text keeps its declared charset: windows-1251 and KOI8-R
        // Cyrillic is never valid UTF-8, and Latin-1 "café" is not either.
        let cp1251 = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><a>\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0</a>";
        assert!(decode(cp1251, None).contains("Привет, мир"));
        let koi8 = b"<a>\xf0\xd2\xc9\xd7\xc5\xd4</a>";
        assert!(decode(koi8, Some("text/xml; charset=koi8-r")).contains("Привет"));
        let latin1 = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><a>caf\xe9</a>";
        assert!(decode(latin1, None).contains("café"));
        // ASCII-only documents are read in what they declare.
        assert!(decode(b"<a>plain</a>", Some("text/xml; charset=iso-8859-1")).contains("plain"));
    }

    #[test]
    fn odd_labels_utf16_without_bom_and_bom_against_declaration() {
        for label in [
            "utf8",
            "UTF-8",
            "utf_8",
            " utf-8 ",
            "ISO_8859-1",
            "latin1",
            "cp1251",
            "koi8_r",
            "macroman",
            "mac-cyrillic",
            "ms-cyrl",
        ] {
            assert!(encoding_for_label(label).is_some(), "{label}");
        }
        let cp1251 = b"<?xml version=\"1.0\" encoding=\"cp1251\"?><a>\xcf\xf0\xe8\xe2\xe5\xf2</a>";
        assert!(decode(cp1251, None).contains("Привет"));
        let utf16 = |big_endian: bool| -> Vec<u8> {
            "<?xml version=\"1.0\" encoding=\"utf-16\"?><a>Привет é</a>"
                .encode_utf16()
                .flat_map(|u| {
                    if big_endian {
                        u.to_be_bytes()
                    } else {
                        u.to_le_bytes()
                    }
                })
                .collect()
        };
        assert!(decode(&utf16(false), None).contains("<a>Привет é</a>"));
        assert!(decode(&utf16(true), Some("application/xml")).contains("<a>Привет é</a>"));
        // A UTF-8 BOM wins over the declaration and the HTTP charset.
        let bom = "\u{feff}<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><a>é</a>".as_bytes();
        assert!(decode(bom, Some("text/xml; charset=windows-1251")).contains("<a>é</a>"));
        // HTTP wins over the declaration when the bytes do not decide.
        let latin1 = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><a>\xcf\xf0\xe8</a>";
        assert!(decode(latin1, Some("text/xml; charset=windows-1251")).contains("При"));
    }

    #[test]
    fn a_document_s_utf8_text_decodes_as_the_document_does() {
        let utf16le =
            |text: &str| -> Vec<u8> { text.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let decl = |label: &str| format!("<?xml version=\"1.0\" encoding=\"{label}\"?>");
        let cp1251 = [decl("windows-1251").as_bytes(), b"<a>\xcf\xf0\xe8 \x98</a>"].concat();
        let bodies: Vec<(Vec<u8>, Option<&str>, bool)> = vec![
            (cp1251.clone(), None, true),
            // The server's charset against the declaration: the server's is read.
            (cp1251.clone(), Some("text/xml; charset=koi8-r"), true),
            (cp1251, Some("text/xml; charset=utf-8"), true),
            (b"<a>caf\xe9</a>".to_vec(), None, true),
            (
                [decl("cp437").as_bytes(), b"<a>\x80</a>"].concat(),
                None,
                true,
            ),
            (
                [&[0xff, 0xfe][..], &utf16le("<a>\u{442}</a>")].concat(),
                None,
                true,
            ),
            (utf16le("<a>plain</a>"), None, true),
            // Text that would read as a BOM, as UTF-16 or as nothing: the body is read.
            (
                [&[0xff, 0xfe][..], &utf16le("\u{feff}<a>\u{442}</a>")].concat(),
                None,
                false,
            ),
            (
                [&[0xff, 0xfe][..], &utf16le("a\0b\0<a/>")].concat(),
                None,
                false,
            ),
            ([&[0xff, 0xfe][..], &utf16le(" \n ")].concat(), None, false),
            // Already UTF-8 text: read as it is.
            ("<a>\u{442}</a>".as_bytes().to_vec(), None, false),
            (decl("windows-1251").into_bytes(), None, false),
            ("\u{feff}<a>\u{442}</a>".as_bytes().to_vec(), None, false),
        ];
        for (body, content_type, transcoded) in bodies {
            let text = to_utf8(&body, content_type);
            assert_eq!(text.is_some(), transcoded, "{body:?}");
            if let Some(text) = text {
                assert_eq!(
                    decode(text.as_bytes(), Some(DECODED)),
                    decode(&body, content_type),
                    "{body:?}"
                );
            }
        }
    }

    #[test]
    fn dos_code_pages_are_read_by_their_tables() {
        // A title of one byte, 0x80, under a declared DOS code page.
        let doc = |label: &str| {
            let head = format!("<?xml version=\"1.0\" encoding=\"{label}\"?><rss><channel><title>");
            [head.as_bytes(), &[0x80], b"</title></channel></rss>"].concat()
        };
        for (label, expected) in [
            ("cp437", 'Ç'),
            ("IBM850", 'Ç'),
            ("csPC8CodePage437", 'Ç'),
            ("cspc850multilingual", 'Ç'),
            ("852", 'Ç'),
            ("cp737", 'Α'),
            ("ibm855", 'ђ'),
        ] {
            let text = decode(&doc(label), None).into_owned();
            assert!(
                text.contains(&format!("<title>{expected}</title>")),
                "{label}: {text}"
            );
        }
        // The HTTP charset comes first; 866 stays with the Encoding Standard's IBM866.
        let text = decode(&doc("cp437"), Some("text/xml; charset=cp737")).into_owned();
        assert!(text.contains("<title>Α</title>"), "{text}");
        assert!(decode(&doc("cp866"), None).contains("<title>А</title>"));
        // An unknown number is no code page.
        assert!(decode(&doc("cp9999"), None).contains("<title>€</title>"));
    }

    #[test]
    fn html_charset_order_is_bom_http_meta_utf8() {
        // "Новости" in windows-1251.
        let page = b"<html><head><meta charset=\"windows-1251\"><title>\xcd\xee\xe2\xee\xf1\xf2\xe8</title>";
        assert!(decode_html(page, None).contains("<title>Новости</title>"));
        assert!(decode_html(page, Some("text/html")).contains("Новости"));
        let http_equiv = b"<HTML><HEAD><META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=windows-1251\"></HEAD><p>\xcf\xf0\xe8\xe2\xe5\xf2</p>";
        assert!(decode_html(http_equiv, None).contains("<p>Привет</p>"));
        // The HTTP header wins over the page's own word.
        let koi8 = b"<meta charset=\"utf-8\"><p>\xf0\xd2\xc9\xd7\xc5\xd4</p>";
        assert!(decode_html(koi8, Some("text/html; charset=KOI8-R")).contains("Привет"));
        // And a BOM wins over both.
        let bom = b"\xef\xbb\xbf<meta charset=\"windows-1251\"><p>\xd0\x96</p>";
        assert!(decode_html(bom, Some("text/html; charset=windows-1251")).contains("<p>Ж</p>"));
        // Nothing declared: UTF-8, with a bad byte replaced rather than failing.
        let plain = b"<p>\xd0\x96 \xff</p>";
        assert_eq!(decode_html(plain, None), "<p>Ж \u{fffd}</p>");
        // A charset declared after the first 1024 bytes is not looked for.
        let mut late = vec![b' '; 1100];
        late.extend_from_slice(b"<meta charset=\"windows-1251\"><p>\xd0\x96</p>");
        assert!(decode_html(&late, None).contains("<p>Ж</p>"));
    }
}
