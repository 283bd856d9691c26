//! The HTTP face: `GET /feed.xml` (the merged RSS 2.0 feed) and `GET /healthz`.
//!
//! Serves the bytes `publish` rendered, with a strong ETag and Last-Modified, and
//! answers conditional requests with 304. Never parses feeds, never renders per
//! request. `app` runs [`serve`] and cancels it at shutdown.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::publish::Snapshot;
use crate::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub store: Store,
}

/// 60 seconds of `Cache-Control: max-age`: readers and proxies in front may reuse the
/// feed that long, so a new item reaches them at most a minute late.
pub const FEED_MAX_AGE: Duration = Duration::from_secs(60);

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/feed.xml", get(feed))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves `router` on `listener` until `token` is cancelled, then stops accepting and
/// lets the requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    token: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(token.cancelled_owned())
        .await
}

async fn feed(State(state): State<HttpState>, request: HeaderMap) -> Response {
    let snapshot = state.snapshot.borrow().clone();
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/rss+xml; charset=utf-8"),
    );
    headers.insert(
        ETAG,
        HeaderValue::from_str(&snapshot.etag).expect("an ETag is hex in quotes"),
    );
    if let Some(modified) = snapshot.last_modified {
        headers.insert(LAST_MODIFIED, http_date(modified));
    }
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={}", FEED_MAX_AGE.as_secs()))
            .expect("digits are a valid header value"),
    );
    if is_fresh(&request, &snapshot) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, Body::from(snapshot.rss.clone())).into_response()
}

/// Whether the client's copy is current (RFC 9110 §13.2.2): `If-None-Match` when
/// present decides alone; otherwise `If-Modified-Since`.
fn is_fresh(request: &HeaderMap, snapshot: &Snapshot) -> bool {
    if let Some(if_none_match) = request.get(IF_NONE_MATCH) {
        let Ok(tags) = if_none_match.to_str() else {
            return false;
        };
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == snapshot.etag);
    }
    let (Some(since), Some(modified)) = (request.get(IF_MODIFIED_SINCE), snapshot.last_modified)
    else {
        return false;
    };
    since
        .to_str()
        .ok()
        .and_then(|s| DateTime::parse_from_rfc2822(s).ok())
        .is_some_and(|since| modified.timestamp() <= since.timestamp())
}

/// An HTTP date (IMF-fixdate).
fn http_date(time: DateTime<Utc>) -> HeaderValue {
    HeaderValue::from_str(&time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .expect("a formatted date is a valid header value")
}

async fn healthz(State(state): State<HttpState>) -> Response {
    let store = state.store.clone();
    let healthy = tokio::task::spawn_blocking(move || store.is_healthy())
        .await
        .unwrap_or(false);
    if healthy {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            rss: bytes::Bytes::from_static(b"<rss/>"),
            etag: "\"abc\"".into(),
            last_modified: DateTime::from_timestamp(1_000_000, 0),
            items: 1,
        }
    }

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn conditional_requests() {
        let s = snapshot();
        assert!(is_fresh(&headers(&[(IF_NONE_MATCH, "\"abc\"")]), &s));
        assert!(is_fresh(
            &headers(&[(IF_NONE_MATCH, "\"x\", W/\"abc\"")]),
            &s
        ));
        assert!(!is_fresh(&headers(&[(IF_NONE_MATCH, "\"x\"")]), &s));
        let at = http_date(s.last_modified.unwrap());
        let at = at.to_str().unwrap();
        assert!(is_fresh(&headers(&[(IF_MODIFIED_SINCE, at)]), &s));
        assert!(!is_fresh(
            &headers(&[(IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT")]),
            &s
        ));
        // A stale ETag wins over a matching date.
        assert!(!is_fresh(
            &headers(&[(IF_NONE_MATCH, "\"old\""), (IF_MODIFIED_SINCE, at)]),
            &s
        ));
        assert!(!is_fresh(&HeaderMap::new(), &s));
    }
}
