//! Gzipped feed bodies, inflated once they are whole rather than as they arrive.
//!
//! reqwest inflates a gzipped body chunk by chunk as it streams in: an inflate call
//! and a window copy per 4 KiB handed up, through four layers of body wrappers. A
//! feed is small on the wire (a 100 KB document is 16 KB gzipped), so the fetch
//! reads the compressed bytes and inflates them here in one go, into a buffer the
//! size the gzip trailer gives: about half the CPU for the same bytes. The body cap
//! still holds on the inflated size, so a gzip bomb stops at the cap. Other codings
//! (br, deflate) are still decoded by reqwest.

use std::io::Read;

use reqwest::header::{CONTENT_ENCODING, HeaderMap};

/// Why a gzipped body could not be inflated.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Gunzip {
    /// It inflates to more than the cap.
    TooLarge,
    /// It is not gzip, or it is cut short.
    Corrupt(String),
}

/// Whether a response with `headers` says its body is gzip: its wire bytes are then
/// held to [`wire_cap`].
pub(super) fn is_gzip(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_ENCODING).is_some_and(|coding| {
        let coding = coding.as_bytes().trim_ascii();
        coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
    })
}

/// Whether `wire` is gzip, to [`inflate`]: it starts as a gzip member does. What the
/// server said is not what decides: a body said to be gzip that is not (servers that
/// label their plain files so) is read as it is, and a gzipped body not said to be
/// (a `.xml.gz` served as is) is inflated, as feed readers do. No feed document
/// starts with these two bytes.
pub(super) fn looks_gzipped(wire: &[u8]) -> bool {
    wire.starts_with(&[0x1f, 0x8b])
}

/// The most gzip bytes a body of at most `cap` bytes inflated takes: deflate's
/// stored blocks add 5 bytes per 64 KiB to what does not compress, and a member's
/// header and trailer take a few more.
pub(super) fn wire_cap(cap: usize) -> usize {
    cap.saturating_add(cap / 8192).saturating_add(1024)
}

/// `wire` inflated into `out` (emptied first), at most `cap` bytes of it. Members
/// that follow the first are inflated too, as browsers and curl do; what follows
/// the last member and is not one is ignored.
pub(super) fn inflate(wire: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), Gunzip> {
    out.clear();
    // The trailer's size (of the last member, modulo 4 GiB) is reserved at once.
    let declared = wire
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size) as usize);
    out.reserve(declared.min(cap).saturating_add(1));
    let mut rest = wire;
    loop {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        fill(&mut member, cap, out)?;
        rest = member.into_inner();
        if !looks_gzipped(rest) {
            return Ok(());
        }
    }
}

/// Reads all of `member` onto the end of `out`, in calls as large as the room left.
fn fill(member: &mut impl Read, cap: usize, out: &mut Vec<u8>) -> Result<(), Gunzip> {
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(8192));
        }
        // `out` holds at most `cap` bytes here; one byte more tells that it is over.
        let at = out.len();
        let room = (out.capacity() - at).min(cap.saturating_add(1) - at);
        out.resize(at + room, 0);
        let read = member.read(&mut out[at..]);
        let read = match read {
            Ok(read) => read,
            Err(err) => {
                out.truncate(at);
                return Err(Gunzip::Corrupt(err.to_string()));
            }
        };
        out.truncate(at + read);
        if out.len() > cap {
            return Err(Gunzip::TooLarge);
        }
        if read == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(body: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap()
    }

    fn inflated(wire: &[u8], cap: usize) -> Result<Vec<u8>, Gunzip> {
        let mut out = Vec::new();
        inflate(wire, cap, &mut out).map(|()| out)
    }

    #[test]
    fn a_body_inflates_whole_up_to_the_cap_and_not_a_byte_past_it() {
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let wire = gzip(&body);
        assert_eq!(inflated(&wire, body.len()).unwrap(), body);
        assert_eq!(inflated(&wire, body.len() - 1), Err(Gunzip::TooLarge));
        assert_eq!(inflated(&gzip(b""), 0).unwrap(), b"");
        // A bomb: a megabyte of zeros in about a kilobyte, against a smaller cap.
        let bomb = gzip(&vec![0; 1 << 20]);
        assert!(bomb.len() < 2048);
        assert_eq!(inflated(&bomb, 100_000), Err(Gunzip::TooLarge));
        // A trailer that lies about the size changes nothing but the first guess.
        let mut lying = wire.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(
            inflated(&lying, body.len()),
            Err(Gunzip::Corrupt(_))
        ));
    }

    #[test]
    fn every_member_is_inflated_and_what_follows_them_is_ignored() {
        let mut wire = gzip(b"<rss><channel>");
        wire.extend(gzip(b"</channel></rss>"));
        assert_eq!(
            inflated(&wire, 1000).unwrap(),
            b"<rss><channel></channel></rss>"
        );
        wire.extend_from_slice(b"\r\n\0\0");
        assert_eq!(
            inflated(&wire, 1000).unwrap(),
            b"<rss><channel></channel></rss>"
        );
        // The members together are held to the cap.
        assert_eq!(inflated(&wire, 20), Err(Gunzip::TooLarge));
    }

    #[test]
    fn what_is_not_gzip_or_is_cut_short_is_refused() {
        let wire = gzip(&[b'x'; 10_000]);
        for broken in [
            &b"<rss/>"[..],
            &wire[..wire.len() / 2],
            &wire[..wire.len() - 3],
            b"",
        ] {
            assert!(
                matches!(inflated(broken, 100_000), Err(Gunzip::Corrupt(_))),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn gzip_is_told_by_its_first_bytes() {
        assert!(looks_gzipped(&gzip(b"<rss/>")));
        for plain in [
            &b"<?xml version=\"1.0\"?><rss/>"[..],
            b"\xef\xbb\xbf<rss/>",
            b"{}",
            b"\x1f",
            b"",
        ] {
            assert!(!looks_gzipped(plain), "{plain:?}");
        }
    }

    #[test]
    fn gzip_is_told_by_its_content_encoding() {
        let headers = |coding: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, coding.parse().unwrap());
            headers
        };
        for coding in ["gzip", "GZIP", " x-gzip "] {
            assert!(is_gzip(&headers(coding)), "{coding}");
        }
        for coding in ["br", "deflate", "gzip, br", "identity"] {
            assert!(!is_gzip(&headers(coding)), "{coding}");
        }
        assert!(!is_gzip(&HeaderMap::new()));
    }
}
