//! The endpoint hubs call: `/websub/<token>`, one per subscription, the token 128
//! random bits. A path that is not a known token is 404 before anything else is
//! done; a known one is held to a rate ([`Registry::allow`]).
//!
//! - `GET` is a verification of intent ([`Registry::verify`]).
//! - `POST` is content distribution (§7): the body (capped as a polled one is) must
//!   carry a valid `X-Hub-Signature` under the subscription's secret, and, when the
//!   hub names the topic (`Link: <...>; rel="self"`), the subscription's topic. The
//!   document is queued for the scheduler and the hub answered `202` at once;
//!   `403` for a bad signature, `400` for another topic, `410` for a subscription
//!   being given up (the hub stops), `413` over the cap, `429` over the rate, `503`
//!   when the queue is full (the hub retries).
//!
//! `http` calls [`Registry::answer`] on its own threads; nothing here blocks but the
//! store write of a verification.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LINK, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use tracing::{debug, warn};
use url::Url;

use super::discover::from_link_header;
use super::registry::{Registry, Verified, VerifyQuery};
use super::{CALLBACK_PREFIX, Pushed, signature};
use crate::store::SubscriptionStatus;

/// Whether `token` has the shape of a callback token: 32 lowercase hex digits.
pub fn is_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Registry {
    /// Answers a request to `/websub/...`.
    pub async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let token = request
            .uri()
            .path()
            .strip_prefix(CALLBACK_PREFIX)
            .unwrap_or_default();
        if !is_token(token) || self.get(token).is_none() {
            return plain(StatusCode::NOT_FOUND, "no such subscription");
        }
        let token = token.to_string();
        if !self.allow(&token) {
            let mut response = plain(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        match *request.method() {
            Method::GET => {
                let query = VerifyQuery::parse(request.uri().query().unwrap_or_default());
                match self.verify(&token, &query) {
                    Verified::Echo(challenge) => plain_bytes(StatusCode::OK, challenge),
                    Verified::Unknown => plain(StatusCode::NOT_FOUND, "no such subscription"),
                }
            }
            Method::POST => self.distribution(&token, request).await,
            _ => plain(StatusCode::METHOD_NOT_ALLOWED, "GET and POST only"),
        }
    }

    /// A pushed document: checked, queued, answered.
    async fn distribution(&self, token: &str, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(subscription) = self.get(token) else {
            return plain(StatusCode::NOT_FOUND, "no such subscription");
        };
        if subscription.status == SubscriptionStatus::Unsubscribing {
            return plain(StatusCode::GONE, "unsubscribed");
        }
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "the body is over the cap");
        }
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "the body is over the cap");
            }
            Err(_) => return plain(StatusCode::BAD_REQUEST, "the body did not arrive whole"),
        };
        let signature = parts
            .headers
            .get("x-hub-signature")
            .map(HeaderValue::as_bytes);
        if let Err(err) = signature::verify(signature, subscription.secret.as_bytes(), &body) {
            warn!(topic = %subscription.topic, error = %err, "a pushed document was refused");
            return plain(StatusCode::FORBIDDEN, "the signature does not match");
        }
        let Ok(topic) = Url::parse(&subscription.topic) else {
            return plain(StatusCode::NOT_FOUND, "no such subscription");
        };
        let named = parts
            .headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|header| from_link_header(header, &topic).topic);
        if named.is_some_and(|named| named != topic) {
            warn!(topic = %subscription.topic, "a pushed document names another topic; refused");
            return plain(StatusCode::BAD_REQUEST, "not the subscribed topic");
        }
        let pushed = Pushed {
            source: subscription.source,
            topic,
            body: body.to_vec(),
            content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        if !self.queue(pushed) {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "busy; try again");
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        debug!(topic = %subscription.topic, bytes = body.len(), "pushed document queued");
        plain(StatusCode::ACCEPTED, "accepted")
    }
}

fn plain(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    plain_bytes(status, format!("{reason}\n"))
}

fn plain_bytes(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
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
    fn tokens_are_32_lowercase_hex_digits() {
        assert!(is_token("0123456789abcdef0123456789abcdef"));
        assert!(!is_token("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_token("0123456789abcdef"));
        assert!(!is_token("../../0123456789abcdef0123456789a"));
        assert!(!is_token(""));
    }
}
