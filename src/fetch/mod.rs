//! HTTP: one shared reqwest client, conditional GET, redirects, timeouts and a body cap.
//!
//! Turns a URL, the validators of the last poll and the source's request options into
//! a [`FetchOutcome`] or a [`FetchError`]. Knows nothing about feeds or the store; the
//! scheduler decides what an outcome means for the source. Every request is held to
//! the source's [`AddressPolicy`] (see [`guard`]): no redirect or DNS answer takes it
//! to an internal address it was not configured for.

mod bodies;
pub mod discover;
pub mod push;
pub mod shown;

mod guard;
mod gunzip;
mod post;
mod tls;

use chrono::{DateTime, Utc};
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_TYPE, DATE, ETAG, EXPIRES, HeaderMap,
    HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
    RETRY_AFTER, USER_AGENT as USER_AGENT_HEADER,
};
use reqwest::{StatusCode, redirect};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

pub use bodies::recycle;
pub use guard::{AddressClass, AddressPolicy, GuardedResolver, Refused, classify};
pub use tls::install_crypto_provider;

/// Sent with every request, so publishers can see who polls them.
pub const USER_AGENT: &str = concat!(
    "tributary/",
    env!("CARGO_PKG_VERSION"),
    " (feed aggregator)"
);
/// At most 5 redirects: more is a misconfigured server or a loop.
pub const MAX_REDIRECTS: usize = 5;
/// The codings a feed may come in: gzip is inflated by the fetch ([`gunzip`]), the
/// others by reqwest.
const ACCEPT_CODINGS: &str = "gzip, deflate, br";
/// What feed readers accept, most specific first.
const ACCEPT_FEEDS: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";

/// The validators remembered from the last successful poll.
#[derive(Clone, Debug, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a source asks for in its requests (`feeds.toml`: `headers`, `username`,
/// `password`, `user_agent`, `allow_private`).
///
/// `headers` and `basic_auth` are credentials (an API key, a cookie, a token): they
/// are sent only to [`RequestOptions::credentials_origin`], as browsers and curl
/// do. A redirect, a discovered feed or a permanent move to another scheme, host or
/// port gets the request without them, so an `https` start never sends them over
/// plain `http`, and a publisher's redirect never hands them to another server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestOptions {
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<(String, Option<String>)>,
    pub user_agent: Option<String>,
    /// Which addresses the requests may reach; the default reaches public ones only.
    pub addresses: AddressPolicy,
    /// The only scheme, host and port `headers` and `basic_auth` are sent to: the
    /// configured URL's. `None`: the URL each fetch starts from.
    pub credentials_origin: Option<url::Origin>,
}

impl RequestOptions {
    /// No extra headers, and the address policy of a source configured at `url`
    /// without `allow_private`: what a URL typed on the command line gets.
    pub fn for_url(url: &Url) -> RequestOptions {
        RequestOptions {
            addresses: AddressPolicy::for_source(url, false),
            ..RequestOptions::default()
        }
    }
}

/// The limits every request of a [`Fetcher`] keeps to (`feeds.toml`: `[poll] timeout`,
/// `connect_timeout`, `max_body_bytes`; the config builds them from its poll section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// For a whole response, body and redirects included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Cap on a response body after decompression.
    pub max_body_bytes: usize,
}

/// A fetch that got an answer worth acting on.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the feed is unchanged since the validators were given out.
    NotModified(Response),
    Fetched(Fetched),
}

/// A 2xx response with its (decompressed, capped) body.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub validators: Validators,
    pub response: Response,
}

/// What every answer tells about the source, whatever its status.
#[derive(Clone, Debug)]
pub struct Response {
    /// Where the answer really came from, after redirects: the base for relative links.
    pub final_url: Url,
    /// The target when every redirect on the way was permanent (301/308): a candidate
    /// for the source's new address.
    pub moved_permanently: Option<Url>,
    /// How long the server says the content stays fresh (`Cache-Control: max-age`,
    /// else `Expires` minus `Date`).
    pub fresh_for: Option<Duration>,
    /// Where the server says this representation lives (`Content-Location`, resolved
    /// against `final_url`; http and https only).
    pub content_location: Option<Url>,
    /// The `Link` header fields, joined with `, ` (WebSub discovery reads their
    /// `rel="hub"` and `rel="self"`); `None` without any.
    pub links: Option<String>,
}

impl Response {
    /// The base for the document's relative links: its `Content-Location` when the
    /// server names one (RFC 7231 §3.1.4.2, as feedparser reads it), else where it was
    /// fetched from.
    pub fn base(&self) -> &Url {
        self.content_location.as_ref().unwrap_or(&self.final_url)
    }
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
    // URLs in messages are shown as every URL is (`config::shown_url`): a redirect
    // target can carry a token too.
    #[error("redirected to {}, which cannot be followed", shown(location))]
    BadRedirect { location: String },
    #[error("redirect loop: {} was already visited", shown(url.as_str()))]
    RedirectLoop { url: Url },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("{0}")]
    Refused(Refused),
    #[error(
        "server answered {status} at {origin}, where the source's username, password and headers are not sent: they go to the scheme, host and port of its url only; if the feed has moved there, update its url"
    )]
    CredentialsWithheld { status: StatusCode, origin: String },
    #[error("the server's TLS certificate is not trusted: {0}")]
    Certificate(String),
    #[error("cannot reach the server: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Request(String),
}

impl FetchError {
    fn from_reqwest(err: reqwest::Error, timeout: Duration) -> Self {
        if err.is_timeout() {
            return FetchError::Timeout { after: timeout };
        }
        // Without the URL: it is the source's, and may carry a secret in its query;
        // the caller knows which source failed and names it as it may be shown.
        let err = err.without_url();
        // The whole chain: "error sending request" alone tells the sysadmin nothing.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<Refused>() {
                return FetchError::Refused(refused.clone());
            }
            // rustls says "invalid peer certificate: UnknownIssuer" (or NotValidForName,
            // Expired, ...): the server answered, so this is the source's fault, not a
            // network outage, and the reason alone is what the sysadmin needs.
            let text = cause.to_string();
            if text.contains("invalid peer certificate") {
                return FetchError::Certificate(text);
            }
            // Layers of hyper and reqwest repeat one another's words.
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        if err.is_connect() {
            FetchError::Connect(message)
        } else {
            FetchError::Request(message)
        }
    }

    /// Whether the failure says more about this machine's network than about the
    /// server: nothing answered at all.
    pub fn is_network(&self) -> bool {
        matches!(self, FetchError::Connect(_))
    }

    /// 410 Gone: the publisher says the feed is gone for good.
    pub fn is_gone(&self) -> bool {
        matches!(self, FetchError::Status { status, .. } if *status == StatusCode::GONE)
    }

    /// 404 Not Found or 410 Gone: nothing is at this address any more.
    pub fn is_missing(&self) -> bool {
        matches!(self, FetchError::Status { status, .. } if *status == StatusCode::NOT_FOUND || *status == StatusCode::GONE)
    }

    /// The server's `Retry-After`, on 429 and 503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The HTTP clients every poll shares (connection pools, TLS sessions): one per
/// [`AddressPolicy`] in use, since each resolves names through its own
/// [`GuardedResolver`]. Most configs need one or two.
#[derive(Clone)]
pub struct Fetcher {
    clients: Arc<Mutex<HashMap<AddressPolicy, reqwest::Client>>>,
    timeout: Duration,
    connect_timeout: Duration,
    max_body_bytes: usize,
}

impl Fetcher {
    /// A fetcher keeping to `options` (a `&PollConfig` converts into them).
    pub fn new(options: impl Into<ClientOptions>) -> Result<Fetcher, reqwest::Error> {
        let config = options.into();
        let fetcher = Fetcher {
            clients: Arc::default(),
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            max_body_bytes: config.max_body_bytes,
        };
        // Built now, so a broken TLS setup stops start-up rather than every poll.
        fetcher.client(AddressPolicy::default())?;
        Ok(fetcher)
    }

    /// The client whose resolver keeps to `policy`, built on first use.
    fn client(&self, policy: AddressPolicy) -> Result<reqwest::Client, reqwest::Error> {
        let mut clients = self
            .clients
            .lock()
            .expect("the client map is never poisoned");
        if let Some(client) = clients.get(&policy) {
            return Ok(client.clone());
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .read_timeout(self.timeout.min(Duration::from_secs(20)))
            // Redirects are followed here, hop by hop, to see which were permanent
            // and to check each hop's address.
            .redirect(redirect::Policy::none())
            // A feed's gzip is inflated once it is whole (`gunzip`); other requests
            // do not ask for it.
            .gzip(false)
            .dns_resolver(GuardedResolver { policy })
            .build()?;
        clients.insert(policy, client.clone());
        Ok(client)
    }

    /// GETs `url`, conditionally when validators are given, following at most
    /// [`MAX_REDIRECTS`] redirects, all within the total timeout.
    pub async fn fetch(
        &self,
        url: &Url,
        validators: &Validators,
        options: &RequestOptions,
    ) -> Result<FetchOutcome, FetchError> {
        match tokio::time::timeout(self.timeout, self.follow(url, validators, options)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                after: self.timeout,
            }),
        }
    }

    async fn follow(
        &self,
        url: &Url,
        validators: &Validators,
        options: &RequestOptions,
    ) -> Result<FetchOutcome, FetchError> {
        let trusted = options
            .credentials_origin
            .clone()
            .unwrap_or_else(|| url.origin());
        let mut current = url.clone();
        let mut visited = vec![url.clone()];
        let mut all_permanent = true;
        for _ in 0..=MAX_REDIRECTS {
            options
                .addresses
                .check_url(&current, current != *url)
                .map_err(FetchError::Refused)?;
            let credentials = carries_credentials(&trusted, &current);
            let response = self.get(&current, validators, options, credentials).await?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                let moved = (all_permanent && current != *url).then(|| current.clone());
                let withheld =
                    !credentials && (options.basic_auth.is_some() || !options.headers.is_empty());
                return match self.finish(response, current.clone(), moved).await {
                    Err(FetchError::Status { status, .. })
                        if withheld
                            && matches!(
                                status,
                                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                            ) =>
                    {
                        Err(FetchError::CredentialsWithheld {
                            status,
                            origin: current.origin().ascii_serialization(),
                        })
                    }
                    outcome => outcome,
                };
            }
            let location =
                header(response.headers(), LOCATION).ok_or_else(|| FetchError::BadRedirect {
                    location: "nowhere (no Location header)".to_string(),
                })?;
            let next = current
                .join(&location)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or(FetchError::BadRedirect { location })?;
            if visited.contains(&next) {
                return Err(FetchError::RedirectLoop { url: next });
            }
            all_permanent &= matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            visited.push(next.clone());
            current = next;
        }
        Err(FetchError::TooManyRedirects)
    }

    async fn get(
        &self,
        url: &Url,
        validators: &Validators,
        options: &RequestOptions,
        credentials: bool,
    ) -> Result<reqwest::Response, FetchError> {
        let client = self
            .client(options.addresses)
            .map_err(|e| FetchError::from_reqwest(e, self.timeout))?;
        let mut url = url.clone();
        if !credentials {
            // reqwest turns a user and password in the URL into basic auth of its own.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        let mut request = client
            .get(url)
            .header(ACCEPT, ACCEPT_FEEDS)
            .header(ACCEPT_ENCODING, ACCEPT_CODINGS);
        let headers = options.headers.iter().filter(|_| credentials);
        for (name, value) in headers {
            // Checked in config; a header that still does not convert is skipped.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                request = request.header(name, value);
            }
        }
        if let Some(agent) = &options.user_agent {
            request = request.header(USER_AGENT_HEADER, agent);
        }
        if let Some((user, password)) = options.basic_auth.as_ref().filter(|_| credentials) {
            request = request.basic_auth(user, password.as_ref());
        }
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
        request
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(e, self.timeout))
    }

    async fn finish(
        &self,
        mut response: reqwest::Response,
        final_url: Url,
        moved_permanently: Option<Url>,
    ) -> Result<FetchOutcome, FetchError> {
        let status = response.status();
        let headers = response.headers();
        let content_location = headers
            .get(reqwest::header::CONTENT_LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| final_url.join(value.trim()).ok())
            .filter(|url| matches!(url.scheme(), "http" | "https"));
        let info = Response {
            final_url,
            moved_permanently,
            fresh_for: fresh_for(headers),
            content_location,
            links: links(headers),
        };
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified(info));
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status,
                retry_after: retry_after(headers, Utc::now()),
            });
        }
        let content_type = header(headers, CONTENT_TYPE);
        let validators = Validators {
            etag: header(headers, ETAG),
            last_modified: header(headers, LAST_MODIFIED),
        };
        let body = self.read_body(&mut response).await?;
        Ok(FetchOutcome::Fetched(Fetched {
            body,
            content_type,
            validators,
            response: info,
        }))
    }

    /// The body of `response`, within the cap: read chunk by chunk (reqwest has no
    /// cap of its own on decompressed size), and inflated whole when it is gzip.
    async fn read_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, FetchError> {
        // Read chunk by chunk: reqwest has no cap of its own on decompressed size. The
        // declared length (within the cap) is reserved at once, so a large body is not
        // copied over and over as the buffer doubles; a buffer an earlier body left
        // (see `bodies`) is used when there is one. A gzipped body is read as it came
        // and inflated whole; see `gunzip` for what is taken for gzip.
        let too_large = FetchError::TooLarge {
            limit: self.max_body_bytes,
        };
        let cap = if gunzip::is_gzip(response.headers()) {
            gunzip::wire_cap(self.max_body_bytes)
        } else {
            self.max_body_bytes
        };
        let declared = response.content_length().unwrap_or(0);
        let mut body = bodies::take();
        body.reserve(declared.min(cap as u64) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::from_reqwest(e, self.timeout))?
        {
            if body.len() + chunk.len() > cap {
                bodies::recycle(body);
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        if gunzip::looks_gzipped(&body) {
            let mut inflated = bodies::take();
            let result = gunzip::inflate(&body, self.max_body_bytes, &mut inflated);
            bodies::recycle(std::mem::replace(&mut body, inflated));
            result.map_err(|err| match err {
                gunzip::Gunzip::TooLarge => too_large,
                gunzip::Gunzip::Corrupt(why) => {
                    FetchError::Request(format!("the gzipped body does not inflate: {why}"))
                }
            })?;
        } else if body.len() > self.max_body_bytes {
            // Said to be gzip, and is not: read as it is, within the cap.
            return Err(too_large);
        }
        Ok(body)
    }
}

/// `url` as an error message may show it: secret query values hidden.
fn shown(url: &str) -> std::borrow::Cow<'_, str> {
    shown::shown_url(url, &[])
}

/// Whether a request to `url` may carry the credentials given for `trusted`: only
/// when scheme, host and port are the same (the rule of browsers and curl).
fn carries_credentials(trusted: &url::Origin, url: &Url) -> bool {
    trusted.is_tuple() && url.origin() == *trusted
}

/// Every `Link` header field, joined as one list.
fn links(headers: &HeaderMap) -> Option<String> {
    let fields: Vec<&str> = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!fields.is_empty()).then(|| fields.join(", "))
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// `Retry-After` in either form: seconds, or an HTTP date (relative to `now`).
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER)?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let wait = http_date(&value)? - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Freshness the server grants: `Cache-Control: max-age` (and `s-maxage`), else
/// `Expires` minus `Date`. `no-cache`/`no-store` grant none.
fn fresh_for(headers: &HeaderMap) -> Option<Duration> {
    if let Some(cache_control) = header(headers, CACHE_CONTROL) {
        let mut max_age = None;
        for directive in cache_control.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-cache" || lower == "no-store" {
                return None;
            }
            if let Some(seconds) = lower
                .strip_prefix("max-age=")
                .or_else(|| lower.strip_prefix("s-maxage="))
                .and_then(|s| s.trim_matches('"').parse::<u64>().ok())
            {
                max_age = Some(max_age.map_or(seconds, |m: u64| m.max(seconds)));
            }
        }
        if let Some(seconds) = max_age {
            return Some(Duration::from_secs(seconds));
        }
    }
    let expires = http_date(&header(headers, EXPIRES)?)?;
    let date = header(headers, DATE)
        .and_then(|d| http_date(&d))
        .unwrap_or_else(Utc::now);
    (expires - date).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let h = headers(&[(RETRY_AFTER, "120")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        let h = headers(&[(RETRY_AFTER, "Wed, 21 Oct 2015 07:30:00 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        let h = headers(&[(RETRY_AFTER, "Wed, 21 Oct 2015 07:00:00 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        let h = headers(&[(RETRY_AFTER, "soon")]);
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn freshness_from_cache_control_or_expires() {
        let h = headers(&[(CACHE_CONTROL, "public, max-age=600")]);
        assert_eq!(fresh_for(&h), Some(Duration::from_secs(600)));
        let h = headers(&[(CACHE_CONTROL, "no-cache, max-age=600")]);
        assert_eq!(fresh_for(&h), None);
        let h = headers(&[
            (DATE, "Wed, 21 Oct 2015 07:00:00 GMT"),
            (EXPIRES, "Wed, 21 Oct 2015 08:00:00 GMT"),
        ]);
        assert_eq!(fresh_for(&h), Some(Duration::from_secs(3600)));
        assert_eq!(fresh_for(&HeaderMap::new()), None);
    }

    #[test]
    fn credentials_go_to_their_own_scheme_host_and_port_only() {
        let trusted = Url::parse("https://feeds.example/private")
            .unwrap()
            .origin();
        let to = |text: &str| carries_credentials(&trusted, &Url::parse(text).unwrap());
        assert!(to("https://feeds.example/other?page=2"));
        assert!(to("https://FEEDS.example:443/private"));
        assert!(to("https://u:p@feeds.example/private"));
        assert!(!to("http://feeds.example/private"), "https to plain http");
        assert!(!to("https://feeds.example:8443/private"), "another port");
        assert!(!to("https://cdn.feeds.example/private"), "another host");
        assert!(!to("https://feeds.example.evil.example/private"));
        let opaque = Url::parse("data:text/plain,x").unwrap().origin();
        assert!(!carries_credentials(
            &opaque,
            &Url::parse("data:text/plain,x").unwrap()
        ));
    }

    #[test]
    fn urls_in_errors_hide_their_secrets() {
        let bad = FetchError::BadRedirect {
            location: "ftp://x.example/f?token=abc123".into(),
        };
        assert_eq!(
            bad.to_string(),
            "redirected to ftp://x.example/f?token=***, which cannot be followed"
        );
        let looped = FetchError::RedirectLoop {
            url: Url::parse("https://x.example/f?sig=abc123").unwrap(),
        };
        assert!(!looped.to_string().contains("abc123"), "{looped}");
    }

    #[test]
    fn user_agent_names_tributary_and_its_version() {
        assert!(USER_AGENT.starts_with(&format!("tributary/{}", env!("CARGO_PKG_VERSION"))));
    }
}
