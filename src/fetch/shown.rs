//! The one rule for what of a source's URL may be shown: every output (the feeds'
//! `<source url>`, the page, `/opml`, `export-opml`, `/sources`), metric labels, log
//! lines and error messages show a source's URL through [`shown_url`], and error
//! text through [`scrub`].
//!
//! A URL can carry a secret in its query (`?token=…`, `?api_key=…`): the values of
//! the parameters named in [`DEFAULT_SECRET_QUERY`], those whose names end like
//! them, and those a source lists in `secret_query` are shown as `***`. A user and
//! password in the URL itself are refused by `check` (`username` and `password`
//! are the keys for them) and never shown either. Works on the text as written, so
//! a URL that does not parse is still redacted. It lives in `fetch`, whose error
//! messages quote URLs, and `config` (and through it every other room) re-exports it.

use std::borrow::Cow;

/// What a redacted value is shown as.
pub const REDACTED: &str = "***";

/// Query parameters whose values are secret in every source: the names API keys,
/// access tokens and signed URLs use.
pub const DEFAULT_SECRET_QUERY: &[&str] = &[
    "token",
    "key",
    "apikey",
    "api_key",
    "api-key",
    "access_token",
    "auth",
    "auth_token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "sig",
    "signature",
    "session",
    "sessionid",
    "sid",
];

/// Endings that make a name secret too: `feedtoken`, `client_secret`,
/// `X-Amz-Signature`, `private_key`.
const SECRET_ENDINGS: &[&str] = &["token", "secret", "password", "signature", "_key", "-key"];

/// Whether the query parameter `name` holds a secret, given a source's own
/// `secret_query` names (lowercase).
fn is_secret(name: &str, secret_query: &[String]) -> bool {
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    DEFAULT_SECRET_QUERY.contains(&name.as_str())
        || SECRET_ENDINGS.iter().any(|end| name.ends_with(end))
        || secret_query.contains(&name)
}

/// `url` as it may be shown: without a user or password, and with the value of
/// every secret query parameter replaced by [`REDACTED`]. Borrowed when nothing is
/// hidden.
pub fn shown_url<'a>(url: &'a str, secret_query: &[String]) -> Cow<'a, str> {
    let (before_fragment, fragment) = match url.find('#') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (before_fragment, None),
    };
    let base = without_userinfo(base);
    let query = query.map(|q| redacted_query(q, secret_query));
    let hidden = matches!(base, Cow::Owned(_)) || matches!(query, Some(Cow::Owned(_)));
    if !hidden {
        return Cow::Borrowed(url);
    }
    let mut shown = base.into_owned();
    if let Some(query) = query {
        shown.push('?');
        shown.push_str(&query);
    }
    shown.push_str(fragment);
    Cow::Owned(shown)
}

/// The part before the query, without `user:password@`.
fn without_userinfo(base: &str) -> Cow<'_, str> {
    let Some(scheme_end) = base.find("://") else {
        return Cow::Borrowed(base);
    };
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    match base[authority_start..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}{}",
            &base[..authority_start],
            &base[authority_start + at + 1..]
        )),
        None => Cow::Borrowed(base),
    }
}

fn redacted_query<'a>(query: &'a str, secret_query: &[String]) -> Cow<'a, str> {
    let secret = |pair: &str| {
        let name = pair.split('=').next().unwrap_or("");
        is_secret(name, secret_query) && pair.len() > name.len() + 1
    };
    if !query.split('&').any(secret) {
        return Cow::Borrowed(query);
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            if secret(pair) {
                let name = pair.split('=').next().unwrap_or("");
                format!("{name}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect();
    Cow::Owned(pairs.join("&"))
}

/// The secret values `url` carries: its password and user, and the values of its
/// secret query parameters, as written and decoded.
fn secrets_of(url: &str, secret_query: &[String]) -> Vec<String> {
    let mut secrets = Vec::new();
    let before_fragment = url.split('#').next().unwrap_or(url);
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, query),
        None => (before_fragment, ""),
    };
    if let Some(after_scheme) = base.split_once("://").map(|(_, rest)| rest) {
        let authority = after_scheme.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            secrets.extend(userinfo.split(':').map(str::to_string));
        }
    }
    for pair in query.split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && is_secret(name, secret_query)
        {
            secrets.push(value.to_string());
            let decoded = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned());
            secrets.extend(decoded);
        }
    }
    // Longest first, so a value that contains another is replaced whole; too short
    // a value would blank ordinary words of the message.
    secrets.retain(|s| s.len() >= 3);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// `text` (an error message, a log line) with every secret that `url` carries
/// replaced by [`REDACTED`], wherever the message repeats it: in a URL it quotes,
/// a redirect target, a server's words.
pub fn scrub(text: &str, url: &str, secret_query: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets_of(url, secret_query) {
        if text.contains(&secret) {
            text = text.replace(&secret, REDACTED);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_hidden_and_the_rest_kept() {
        let none: &[String] = &[];
        let shown = |url: &str| shown_url(url, none).into_owned();
        assert_eq!(
            shown("https://a.example/feed?token=abc&page=2"),
            "https://a.example/feed?token=***&page=2"
        );
        assert_eq!(
            shown("https://u:p@a.example:8443/feed?x=1#top"),
            "https://a.example:8443/feed?x=1#top"
        );
        assert_eq!(
            shown("https://a.example/f?API_KEY=1&X-Amz-Signature=2&feedToken=3&key="),
            "https://a.example/f?API_KEY=***&X-Amz-Signature=***&feedToken=***&key="
        );
        assert_eq!(
            shown("https://a.example/f?%74oken=abc"),
            "https://a.example/f?%74oken=***"
        );
        assert_eq!(
            shown("https://a.example/a@b/feed?q=mail@x"),
            "https://a.example/a@b/feed?q=mail@x"
        );
        assert!(matches!(
            shown_url("https://a.example/rss.xml?page=2", none),
            Cow::Borrowed(_)
        ));
        let own = ["feed_code".to_string()];
        assert_eq!(
            shown_url("https://a.example/f?feed_code=9&page=2", &own),
            "https://a.example/f?feed_code=***&page=2"
        );
    }

    #[test]
    fn errors_lose_the_secrets_they_repeat() {
        let url = "https://a.example/feed?token=s3cr%2Ft&page=2";
        let message = "error sending request for url (https://a.example/feed?token=s3cr%2Ft&page=2): the server said s3cr/t is wrong";
        let scrubbed = scrub(message, url, &[]);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        assert!(scrubbed.contains("page=2"), "{scrubbed}");
    }
}
