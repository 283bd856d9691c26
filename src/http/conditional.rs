//! Conditional GET and content negotiation: the precompressed encoding the client
//! accepts, and 304 when its copy is current.

use chrono::{DateTime, Utc};
use hyper::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, VARY,
};
use hyper::http::HeaderMap;
use hyper::{Response, StatusCode, header::HeaderValue};

use super::{Body, HttpState};
use crate::publish::Representation;

/// A content coding tributary has precompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// Picks the coding from Accept-Encoding (RFC 9110 §12.5.3): the highest q-value
/// among brotli and gzip (brotli on a tie, for its smaller bytes), unless identity is
/// preferred explicitly; identity when nothing else is acceptable, or when the header
/// is absent.
pub fn negotiate(accept: Option<&HeaderValue>) -> Encoding {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Encoding::Identity;
    };
    let (mut br, mut gzip, mut identity, mut star) = (None, None, None, None);
    for element in accept.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = Some(1.0f32);
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                q = parse_q(value.trim());
            }
        }
        let Some(q) = q else {
            continue; // A malformed q-value: ignore the element.
        };
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding.eq_ignore_ascii_case("identity") {
            identity = Some(q);
        } else if coding == "*" {
            star = Some(q);
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    let (best, q) = if br >= gzip {
        (Encoding::Brotli, br)
    } else {
        (Encoding::Gzip, gzip)
    };
    if q > 0.0 && q >= identity.unwrap_or(0.0) {
        best
    } else {
        Encoding::Identity
    }
}

/// A q-value: `0`, `1`, or either with up to three decimals; anything else is `None`.
fn parse_q(value: &str) -> Option<f32> {
    let valid = value.len() <= 5
        && matches!(value.as_bytes().first(), Some(b'0' | b'1'))
        && (value.len() == 1
            || value.as_bytes()[1] == b'.' && value[2..].bytes().all(|b| b.is_ascii_digit()));
    let q: f32 = value.parse().ok().filter(|_| valid)?;
    (0.0..=1.0).contains(&q).then_some(q)
}

/// Whether the client's copy is current (RFC 9110 §13.2.2): `If-None-Match` when
/// present decides alone (a match on any encoding's ETag of the same content counts:
/// the client holds that content); otherwise `If-Modified-Since`.
fn is_fresh(request: &HeaderMap, representation: &Representation) -> bool {
    if let Some(if_none_match) = request.get(IF_NONE_MATCH) {
        let Ok(tags) = if_none_match.to_str() else {
            return false;
        };
        return tags.split(',').map(str::trim).any(|tag| {
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
                return false;
            };
            let inner = inner
                .strip_suffix("-gz")
                .or_else(|| inner.strip_suffix("-br"))
                .unwrap_or(inner);
            inner == representation.hash
        });
    }
    let (Some(since), Some(modified)) =
        (request.get(IF_MODIFIED_SINCE), representation.last_modified)
    else {
        return false;
    };
    since
        .to_str()
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .is_some_and(|since| modified.timestamp() <= DateTime::<Utc>::from(since).timestamp())
}

/// The response for `representation`: the negotiated encoding, or 304.
pub(super) fn respond(
    state: &HttpState,
    representation: &Representation,
    request: &HeaderMap,
) -> Response<Body> {
    let encoding = negotiate(request.get(ACCEPT_ENCODING));
    let variant = match encoding {
        Encoding::Brotli => representation.brotli(),
        Encoding::Gzip => representation.gzip(),
        Encoding::Identity => &representation.identity,
    };
    let fresh = is_fresh(request, representation);
    let mut response = Response::new(if fresh {
        Body::default()
    } else {
        Body::new(variant.body.clone())
    });
    if fresh {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    headers.reserve(8);
    // A 304 carries what a cache must refresh (ETag, Cache-Control, Vary; hyper adds
    // Date) and no Last-Modified: RFC 9110 15.4.5 asks a sender with an ETag not to.
    headers.insert(ETAG, variant.etag.clone());
    headers.insert(CACHE_CONTROL, state.cache_control.clone());
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if !fresh {
        if let Some(modified) = &representation.last_modified_header {
            headers.insert(LAST_MODIFIED, modified.clone());
        }
        headers.insert(CONTENT_TYPE, representation.content_type.clone());
        if let Some(links) = &representation.links {
            headers.insert(hyper::header::LINK, links.clone());
        }
        match encoding {
            Encoding::Gzip => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            Encoding::Brotli => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
            }
            Encoding::Identity => {}
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::Format;

    fn representation() -> Representation {
        Representation::new(
            Format::Rss,
            b"<rss/>".to_vec(),
            DateTime::from_timestamp(1_000_000, 0),
            1,
        )
    }

    fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn conditional_requests() {
        let r = representation();
        let etag = r.identity.etag.to_str().unwrap().to_string();
        let gz = r.gzip().etag.to_str().unwrap().to_string();
        assert!(is_fresh(&headers(&[(IF_NONE_MATCH, &etag)]), &r));
        assert!(is_fresh(&headers(&[(IF_NONE_MATCH, &gz)]), &r));
        assert!(is_fresh(
            &headers(&[(IF_NONE_MATCH, &format!("\"x\", W/{etag}"))]),
            &r
        ));
        assert!(!is_fresh(&headers(&[(IF_NONE_MATCH, "\"x\"")]), &r));
        let at = r.last_modified_header.clone().unwrap();
        let at = at.to_str().unwrap();
        assert_eq!(at, "Mon, 12 Jan 1970 13:46:40 GMT");
        assert!(is_fresh(&headers(&[(IF_MODIFIED_SINCE, at)]), &r));
        assert!(!is_fresh(
            &headers(&[(IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT")]),
            &r
        ));
        // A stale ETag wins over a matching date.
        assert!(!is_fresh(
            &headers(&[(IF_NONE_MATCH, "\"old\""), (IF_MODIFIED_SINCE, at)]),
            &r
        ));
        assert!(!is_fresh(&HeaderMap::new(), &r));
    }

    #[test]
    fn accept_encoding_q_values() {
        let pick = |v: &str| negotiate(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip"), Encoding::Gzip);
        assert_eq!(pick("GZIP;Q=1.0"), Encoding::Gzip);
        assert_eq!(pick("x-gzip"), Encoding::Gzip);
        assert_eq!(pick("*"), Encoding::Brotli);
        assert_eq!(pick("*;q=0.5, br;q=0"), Encoding::Gzip);
        assert_eq!(pick("gzip;q=0.5, identity"), Encoding::Identity);
        assert_eq!(pick("deflate"), Encoding::Identity);
        assert_eq!(pick("gzip;q=0, br;q=0"), Encoding::Identity);
        assert_eq!(pick("identity;q=0, deflate"), Encoding::Identity);
        assert_eq!(pick("gzip;q=2"), Encoding::Identity);
        assert_eq!(pick("gzip;q=0.0001"), Encoding::Identity);
        assert_eq!(pick(""), Encoding::Identity);
    }
}
