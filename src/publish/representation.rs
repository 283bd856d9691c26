//! A rendered document in every encoding (identity, gzip, brotli), each with its
//! strong ETag, and its Last-Modified: what `http` serves as it is.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::header::HeaderValue;
use std::io::Write;

use super::{
    BROTLI_QUALITY, Format, GZIP_LEVEL, LARGE_BROTLI_QUALITY, LARGE_DOCUMENT, LARGE_GZIP_LEVEL,
    body,
};

/// Brotli window of 4 MiB (2^22): larger than any document we render.
const BROTLI_WINDOW: u32 = 22;

/// One encoding of a rendered document.
#[derive(Clone, Debug)]
pub struct Variant {
    pub body: Bytes,
    /// Strong ETag of these bytes: the content hash, with `-gz` or `-br` for the
    /// compressed variants (different bytes need different strong validators).
    pub etag: HeaderValue,
}

/// A rendered document in every encoding, with its validators as ready header values.
#[derive(Debug)]
pub struct Representation {
    pub format: Format,
    pub content_type: HeaderValue,
    /// 32 hex digits of the identity bytes' hash: what every variant's ETag is built on.
    pub hash: String,
    /// The newest item's time; `None` for an empty view and for the OPML list, which
    /// changes with the config, not with items.
    pub last_modified: Option<DateTime<Utc>>,
    pub last_modified_header: Option<HeaderValue>,
    pub identity: Variant,
    pub gzip: Variant,
    pub brotli: Variant,
    /// How many items the document holds.
    pub items: usize,
    /// The `Link` header (WebSub hubs and the document's own URL), for feeds
    /// published with hubs.
    pub links: Option<HeaderValue>,
}

impl Representation {
    /// Compresses `body` both ways and computes the validators.
    pub fn new(
        format: Format,
        body: Vec<u8>,
        last_modified: Option<DateTime<Utc>>,
        items: usize,
    ) -> Self {
        let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&body));
        let variant = |body: Bytes, suffix: &str| Variant {
            body,
            etag: HeaderValue::from_str(&format!("\"{hash}{suffix}\""))
                .expect("hex digits in quotes are a valid header value"),
        };
        let gzip = gzip(&body);
        let brotli = brotli(&body);
        let [body, gzip, brotli] = body::file_backed([body, gzip, brotli]);
        Representation {
            format,
            content_type: HeaderValue::from_static(format.content_type()),
            last_modified_header: last_modified.map(|t| {
                HeaderValue::from_str(&httpdate::fmt_http_date(t.into()))
                    .expect("an HTTP date is a valid header value")
            }),
            last_modified,
            identity: variant(body, ""),
            gzip: variant(gzip, "-gz"),
            brotli: variant(brotli, "-br"),
            hash,
            items,
            links: None,
        }
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    // GzEncoder writes mtime 0, so the same input always gives the same bytes.
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(if body.len() > LARGE_DOCUMENT {
            LARGE_GZIP_LEVEL
        } else {
            GZIP_LEVEL
        }),
    );
    encoder
        .write_all(body)
        .expect("compressing into memory cannot fail");
    encoder
        .finish()
        .expect("compressing into memory cannot fail")
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 4);
    {
        let quality = if body.len() > LARGE_DOCUMENT {
            LARGE_BROTLI_QUALITY
        } else {
            BROTLI_QUALITY
        };
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, quality, BROTLI_WINDOW);
        writer
            .write_all(body)
            .expect("compressing into memory cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_documents_compress_quickly_to_the_same_bytes() {
        let body: Vec<u8> = (0..60_000)
            .flat_map(|i| {
                format!("<outline text=\"Feed {i}\" xmlUrl=\"http://a.example/{i}.xml\"/>\n")
                    .into_bytes()
            })
            .collect();
        assert!(body.len() > LARGE_DOCUMENT);
        let large = Representation::new(Format::Opml, body.clone(), None, 0);
        let mut gunzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&large.gzip.body[..]),
            &mut gunzipped,
        )
        .unwrap();
        assert_eq!(gunzipped, body);
        let mut unbrotlied = Vec::new();
        std::io::Read::read_to_end(
            &mut brotli::Decompressor::new(&large.brotli.body[..], 4096),
            &mut unbrotlied,
        )
        .unwrap();
        assert_eq!(unbrotlied, body);
        assert!(large.gzip.body.len() < body.len() / 4);
        assert!(large.brotli.body.len() < body.len() / 4);
    }

    #[test]
    fn compressed_variants_decompress_to_the_same_bytes_and_are_stable() {
        let body = b"<rss>hello hello hello hello</rss>".repeat(100);
        let a = Representation::new(Format::Rss, body.clone(), None, 0);
        let b = Representation::new(Format::Rss, body.clone(), None, 0);
        assert_eq!(a.gzip.body, b.gzip.body);
        assert_eq!(a.brotli.body, b.brotli.body);
        assert_eq!(a.identity.etag, b.identity.etag);
        let mut gunzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&a.gzip.body[..]),
            &mut gunzipped,
        )
        .unwrap();
        assert_eq!(gunzipped, body);
        let mut unbrotlied = Vec::new();
        brotli::BrotliDecompress(&mut &a.brotli.body[..], &mut unbrotlied).unwrap();
        assert_eq!(unbrotlied, body);
        assert_ne!(a.gzip.etag, a.identity.etag);
        assert_ne!(a.brotli.etag, a.gzip.etag);
    }
}
