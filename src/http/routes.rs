//! Routing: a request's path, query and Host become a view of `publish`'s snapshot
//! (or an operator endpoint), and every answer is counted under its route pattern.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HOST};
use hyper::http::HeaderMap;
use hyper::service::{Service, service_fn};
use hyper::{Method, Request, Response, StatusCode, header::HeaderValue};
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use tracing::warn;

use super::conditional::respond;
use super::deadline::Progress;
use super::{Body, HttpState, MAX_URI_BYTES};
use crate::publish::urls::{self, route};
use crate::publish::{Format, Scope, View, ViewError};
use crate::websub::CALLBACK_PREFIX;

/// 255 bytes of Host: the longest DNS name plus a port fits.
const MAX_HOST_BYTES: usize = 255;

/// The service one connection runs: every request goes to [`handle`], after telling
/// the connection's `progress` that a request head is complete (its deadline stops
/// until the response is written).
pub fn service(
    state: Arc<HttpState>,
    progress: Arc<Progress>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
{
    service_fn(move |request| {
        progress.answering();
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, request).await) }
    })
}

/// What every response carries, whatever it is: no content-type sniffing (an error
/// body that repeats a request's words stays text), no referrer beyond the origin,
/// no framing. Static values, so the cost is a few inserts per response.
pub const SAFE_HEADERS: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("x-frame-options", "DENY"),
];

/// The Content-Security-Policy of every response: nothing may load or run (no
/// script, image, font, frame, form target or `<base>`), except the inline
/// `<style>` of the two HTML pages, allowed by the SHA-256 of its exact text.
pub fn content_security_policy() -> &'static HeaderValue {
    static POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
        let hashes: Vec<String> = [crate::render::html::STYLE, crate::ops::status::STYLE]
            .iter()
            .map(|style| format!("'sha256-{}'", style_hash(&format!("\n{style}"))))
            .collect();
        let policy = format!(
            "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hashes.join(" ")
        );
        HeaderValue::from_str(&policy).expect("a policy of ASCII words is a valid header value")
    });
    &POLICY
}

/// The CSP hash source of an inline style element's text: base64 of its SHA-256.
pub fn style_hash(text: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Answers one request and counts it.
pub async fn handle(state: &HttpState, request: Request<Incoming>) -> Response<Body> {
    let route = route_pattern(request.uri().path());
    let mut response = answer(state, request).await;
    let headers = response.headers_mut();
    for (name, value) in SAFE_HEADERS {
        headers.insert(
            hyper::header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        content_security_policy().clone(),
    );
    state
        .metrics
        .record_request(route, response.status().as_u16());
    response
}

/// The route `path` belongs to, as a pattern (`/tags/{tag}.xml`): the `route` label
/// of the request counter, so its series are bounded whatever paths clients send.
fn route_pattern(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/sources" => "/sources",
        "/sources.json" => "/sources.json",
        _ if path.starts_with("/sources/") && path.ends_with("/reset") => "/sources/{id}/reset",
        crate::hub::PATH => crate::hub::PATH,
        _ if path.starts_with(CALLBACK_PREFIX) => "/websub/{token}",
        _ => route(path).map_or("unknown", |(format, scope)| urls::pattern(format, &scope)),
    }
}

async fn answer(state: &HttpState, request: Request<Incoming>) -> Response<Body> {
    if request
        .uri()
        .path_and_query()
        .is_some_and(|pq| pq.as_str().len() > MAX_URI_BYTES)
    {
        return plain(StatusCode::URI_TOO_LONG, "the URI is too long");
    }
    // WebSub callbacks: hubs GET (verify) and POST (push) here.
    if request.uri().path().starts_with(CALLBACK_PREFIX) {
        return match &state.websub {
            Some(registry) => registry.answer(request).await,
            None => plain(StatusCode::NOT_FOUND, "no such page"),
        };
    }
    let (parts, body) = request.into_parts();
    if parts.method == Method::POST
        && let Some(response) = super::admin::post(state, parts.uri.path()).await
    {
        return response;
    }
    if parts.uri.path() == crate::hub::PATH && state.hub.is_on() {
        return hub(state, &parts, body).await;
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = parts.uri.path();
    if let Some(response) = super::admin::operator(state, path, parts.uri.query()).await {
        return response;
    }
    let Some((format, scope)) = route(path) else {
        return plain(StatusCode::NOT_FOUND, "no such page");
    };
    let limit = match parse_limit(parts.uri.query(), state.max_limit) {
        Ok(limit) => limit.filter(|_| format != Format::Opml),
        Err(reason) => return plain(StatusCode::BAD_REQUEST, &reason),
    };
    let authority = match authority(&parts.uri, &parts.headers) {
        Ok(authority) => authority,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
    };
    let authority = authority.as_deref();
    let snapshot = state.snapshot.borrow().clone();
    let representation = if scope == Scope::All
        && limit.is_none()
        && let Some(main) = snapshot.main(format, authority)
    {
        main.clone()
    } else {
        let view = View {
            format,
            scope,
            limit,
        };
        match snapshot.get(&view, authority).await {
            Ok(representation) => representation,
            Err(err) => return view_error(&err),
        }
    };
    respond(state, &representation, &parts.headers)
}

/// A request to the built-in WebSub hub, its form body read up to
/// [`crate::hub::MAX_REQUEST_BYTES`] within [`super::HEADER_READ_TIMEOUT`].
async fn hub(
    state: &HttpState,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, crate::hub::MAX_REQUEST_BYTES).collect();
    let body = match tokio::time::timeout(super::HEADER_READ_TIMEOUT, limited).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(_)) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "the request is too large"),
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "the request body is too slow"),
    };
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let answer = state
        .hub
        .answer(parts.method.as_str(), content_type, &body)
        .await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = plain(status, &answer.text);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// `?limit=N` with 1 <= N <= `max`; other parameters are ignored (cache-busting
/// readers add their own).
fn parse_limit(query: Option<&str>, max: usize) -> Result<Option<usize>, String> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut limit = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "limit" {
            continue;
        }
        if limit.is_some() {
            return Err("give limit once".to_string());
        }
        match value.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => limit = Some(n),
            _ => {
                return Err(format!(
                    "limit must be a whole number from 1 to {max}, not `{value}`"
                ));
            }
        }
    }
    Ok(limit)
}

/// The Host the reader used, lowercased: the request target's own when it is in
/// absolute form (`GET http://host/feed.xml`, which RFC 9112 §3.2.2 puts before the
/// Host header), else the Host header; `None` when absent (HTTP/1.0), an error when
/// it is not a plain `host[:port]`. Borrowed unless it needs lowercasing. Publishing
/// names it only when it is one of the server's own (`Site::accepts`); forwarding
/// headers (`X-Forwarded-Host`, `Forwarded`) are never read.
fn authority<'a>(
    uri: &'a hyper::Uri,
    headers: &'a HeaderMap,
) -> Result<Option<Cow<'a, str>>, &'static str> {
    const NOT_A_HOST: &str = "the Host header is not a host name and port";
    let host = match (uri.authority(), headers.get(HOST)) {
        (Some(target), _) => target.as_str(),
        (None, Some(host)) => host.to_str().map_err(|_| NOT_A_HOST)?,
        (None, None) => return Ok(None),
    };
    let bytes = host.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_HOST_BYTES
        && bytes.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        });
    if !valid {
        return Err(NOT_A_HOST);
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Ok(Some(Cow::Owned(host.to_ascii_lowercase())));
    }
    Ok(Some(Cow::Borrowed(host)))
}

/// The one function that turns a view's failure into a status code.
fn view_error(err: &ViewError) -> Response<Body> {
    match err {
        ViewError::UnknownTag(_) | ViewError::UnknownSource(_) => {
            plain(StatusCode::NOT_FOUND, &err.to_string())
        }
        ViewError::Store(_) | ViewError::Render(_) => {
            warn!(error = %err, "cannot render a view");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot render this view now",
            )
        }
    }
}

/// A one-line plain-text answer.
pub(super) fn plain(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from(format!("{reason}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_are_bounded() {
        assert_eq!(route_pattern("/"), "/");
        assert_eq!(route_pattern("/metrics"), "/metrics");
        assert_eq!(route_pattern("/hub"), "/hub");
        assert_eq!(route_pattern("/sources.json"), "/sources.json");
        assert_eq!(route_pattern("/tags/a%20b.atom"), "/tags/{tag}.atom");
        assert_eq!(route_pattern("/sources/0123.json"), "/sources/{id}.json");
        assert_eq!(route_pattern("/sources/0123.xml"), "/sources/{id}.xml");
        assert_eq!(route_pattern("/wp-login.php"), "unknown");
        assert_eq!(route_pattern("/websub/0123"), "/websub/{token}");
        assert_eq!(route_pattern("/tags/x.html"), "unknown");
    }

    #[test]
    fn style_hashes_are_base64_sha256() {
        assert_eq!(
            style_hash("abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None, 100), Ok(None));
        assert_eq!(parse_limit(Some("limit=5"), 100), Ok(Some(5)));
        assert_eq!(parse_limit(Some("x=1&limit=100"), 100), Ok(Some(100)));
        assert!(parse_limit(Some("limit=0"), 100).is_err());
        assert!(parse_limit(Some("limit=101"), 100).is_err());
        assert!(parse_limit(Some("limit=ten"), 100).is_err());
        assert!(parse_limit(Some("limit=1&limit=2"), 100).is_err());
    }
}
