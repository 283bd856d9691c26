//! A rendered document in every encoding (identity, gzip, brotli), each with its
//! strong ETag, and its Last-Modified: what `http` serves as it is.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::header::HeaderValue;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
///
/// The identity bytes are made with it; each compressed encoding (of a document up
/// to [`LARGE_DOCUMENT`]) is made when it is first asked for ([`Representation::gzip`], [`Representation::brotli`]), once: a
/// river re-rendered every few seconds is compressed only in the encodings its readers
/// use, and not at all while nobody reads it.
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
    gzip: OnceLock<Variant>,
    brotli: OnceLock<Variant>,
    /// Nanoseconds spent compressing so far (see [`Representation::compressing`]).
    compressing: AtomicU64,
    /// How many items the document holds.
    pub items: usize,
    /// The `Link` header (WebSub hubs and the document's own URL), for feeds
    /// published with hubs.
    pub links: Option<HeaderValue>,
}

impl Representation {
    /// The document `body` with its validators; compressed later, on demand.
    pub fn new(
        format: Format,
        body: Vec<u8>,
        last_modified: Option<DateTime<Utc>>,
        items: usize,
    ) -> Self {
        let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&body));
        let large = body.len() > LARGE_DOCUMENT;
        let [body] = body::file_backed([body]);
        let representation = Representation {
            format,
            content_type: HeaderValue::from_static(format.content_type()),
            last_modified_header: last_modified.map(|t| {
                HeaderValue::from_str(&httpdate::fmt_http_date(t.into()))
                    .expect("an HTTP date is a valid header value")
            }),
            last_modified,
            identity: variant(body, &hash, ""),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            compressing: AtomicU64::new(0),
            hash,
            items,
            links: None,
        };
        // A large document (`/opml` of many sources) is compressed now, on the
        // renderer's blocking thread, not in the first request that asks for it.
        if large {
            representation.gzip();
            representation.brotli();
        }
        representation
    }

    /// The gzip encoding, compressed on the first call.
    pub fn gzip(&self) -> &Variant {
        self.gzip.get_or_init(|| self.compressed(gzip, "-gz"))
    }

    /// The brotli encoding, compressed on the first call.
    pub fn brotli(&self) -> &Variant {
        self.brotli.get_or_init(|| self.compressed(brotli, "-br"))
    }

    /// The encodings made so far: 1 (identity) to 3.
    pub fn encodings(&self) -> usize {
        1 + usize::from(self.gzip.get().is_some()) + usize::from(self.brotli.get().is_some())
    }

    /// How long compressing this document took so far.
    pub fn compressing(&self) -> Duration {
        Duration::from_nanos(self.compressing.load(Ordering::Relaxed))
    }

    fn compressed(&self, compress: fn(&[u8]) -> Vec<u8>, suffix: &str) -> Variant {
        let started = Instant::now();
        let [bytes] = body::file_backed([compress(&self.identity.body)]);
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.compressing.fetch_add(took, Ordering::Relaxed);
        variant(bytes, &self.hash, suffix)
    }
}

/// One encoding with its strong ETag: the identity hash and `suffix`.
fn variant(body: Bytes, hash: &str, suffix: &str) -> Variant {
    Variant {
        body,
        etag: HeaderValue::from_str(&format!("\"{hash}{suffix}\""))
            .expect("hex digits in quotes are a valid header value"),
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
            &mut flate2::read::GzDecoder::new(&large.gzip().body[..]),
            &mut gunzipped,
        )
        .unwrap();
        assert_eq!(gunzipped, body);
        let mut unbrotlied = Vec::new();
        std::io::Read::read_to_end(
            &mut brotli::Decompressor::new(&large.brotli().body[..], 4096),
            &mut unbrotlied,
        )
        .unwrap();
        assert_eq!(unbrotlied, body);
        assert!(large.gzip().body.len() < body.len() / 4);
        assert!(large.brotli().body.len() < body.len() / 4);
    }

    #[test]
    fn encodings_are_compressed_when_first_asked_for_and_once() {
        let body = b"<rss>hello hello hello hello</rss>".repeat(100);
        let document = Representation::new(Format::Rss, body, None, 0);
        assert_eq!(document.encodings(), 1);
        assert_eq!(document.compressing(), Duration::ZERO);
        let gzip = document.gzip() as *const Variant;
        assert_eq!(document.encodings(), 2);
        assert!(std::ptr::eq(gzip, document.gzip()));
        let spent = document.compressing();
        assert!(spent > Duration::ZERO);
        document.gzip();
        assert_eq!(document.compressing(), spent, "compressed twice");
        document.brotli();
        assert_eq!(document.encodings(), 3);
    }

    #[test]
    fn compressed_variants_decompress_to_the_same_bytes_and_are_stable() {
        let body = b"<rss>hello hello hello hello</rss>".repeat(100);
        let a = Representation::new(Format::Rss, body.clone(), None, 0);
        let b = Representation::new(Format::Rss, body.clone(), None, 0);
        assert_eq!(a.gzip().body, b.gzip().body);
        assert_eq!(a.brotli().body, b.brotli().body);
        assert_eq!(a.identity.etag, b.identity.etag);
        let mut gunzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&a.gzip().body[..]),
            &mut gunzipped,
        )
        .unwrap();
        assert_eq!(gunzipped, body);
        let mut unbrotlied = Vec::new();
        brotli::BrotliDecompress(&mut &a.brotli().body[..], &mut unbrotlied).unwrap();
        assert_eq!(unbrotlied, body);
        assert_ne!(a.gzip().etag, a.identity.etag);
        assert_ne!(a.brotli().etag, a.gzip().etag);
    }
}
