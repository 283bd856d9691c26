//! HTTP: one shared reqwest client, conditional GET, timeouts and a body cap.
//!
//! Turns a URL plus the validators of the last poll into a [`FetchOutcome`] or a
//! [`FetchError`]. Knows nothing about feeds or the store; the scheduler decides what
//! an outcome means for the source.

use reqwest::header::{
    ACCEPT, CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    RETRY_AFTER,
};
use reqwest::{StatusCode, redirect};
use std::time::Duration;
use url::Url;

use crate::config::PollConfig;

/// Sent with every request, so publishers can see who polls them.
pub const USER_AGENT: &str = concat!(
    "tributary/",
    env!("CARGO_PKG_VERSION"),
    " (feed aggregator)"
);
/// At most 5 redirects: more is a misconfigured server or a loop.
const MAX_REDIRECTS: usize = 5;
/// What feed readers accept, most specific first.
const ACCEPT_FEEDS: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";

/// The validators remembered from the last successful poll.
#[derive(Clone, Debug, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A fetch that got an answer worth acting on.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the feed is unchanged since the validators were given out.
    NotModified,
    Fetched(Fetched),
}

/// A 2xx response with its (decompressed, capped) body.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// Where the body really came from, after redirects: the base for relative links.
    pub final_url: Url,
}

/// Why a fetch produced no body. The scheduler picks retry or backoff from the variant.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no complete response within {after:?}")]
    Timeout { after: Duration },
    #[error("server answered {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("body exceeds the cap of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("redirected to {location}, which cannot be followed")]
    BadRedirect { location: String },
    #[error("request failed: {0}")]
    Request(String),
}

impl FetchError {
    fn from_reqwest(err: reqwest::Error, timeout: Duration) -> Self {
        if err.is_timeout() {
            return FetchError::Timeout { after: timeout };
        }
        // The whole chain: "error sending request" alone tells the sysadmin nothing.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        FetchError::Request(message)
    }
}

/// The HTTP client every poll shares (connection pool, TLS sessions).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body_bytes: usize,
}

impl Fetcher {
    pub fn new(config: &PollConfig) -> Result<Fetcher, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .read_timeout(config.timeout.min(Duration::from_secs(20)))
            .redirect(redirect::Policy::limited(MAX_REDIRECTS))
            .build()?;
        Ok(Fetcher {
            client,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// GETs `url`, conditionally when validators are given.
    pub async fn fetch(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let mut request = self.client.get(url.clone()).header(ACCEPT, ACCEPT_FEEDS);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(e, self.timeout))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if status.is_redirection() {
            // reqwest hands back redirects it would not follow (file://, too many).
            let location = header(response.headers(), reqwest::header::LOCATION)
                .unwrap_or_else(|| "nowhere".to_string());
            return Err(FetchError::BadRedirect { location });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status,
                retry_after: retry_after(response.headers()),
            });
        }
        let headers = response.headers();
        let content_type = header(headers, CONTENT_TYPE);
        let validators = Validators {
            etag: header(headers, ETAG),
            last_modified: header(headers, LAST_MODIFIED),
        };
        let final_url = response.url().clone();

        // Read chunk by chunk: reqwest has no cap of its own on decompressed size.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::from_reqwest(e, self.timeout))?
        {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched(Fetched {
            body,
            content_type,
            validators,
            final_url,
        }))
    }
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Retry-After` in either form: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER)?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(&value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn user_agent_names_tributary_and_its_version() {
        assert!(USER_AGENT.starts_with(&format!("tributary/{}", env!("CARGO_PKG_VERSION"))));
    }
}
