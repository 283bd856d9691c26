//! A subscriber's request to the built-in hub (W3C WebSub §5.1), read from its form
//! and checked before it is accepted: pure, so every refusal is a unit test.

use std::time::Duration;
use url::Url;

use super::{DEFAULT_LEASE, MAX_CALLBACK_BYTES, MAX_LEASE, MAX_SECRET_BYTES};

/// What the subscriber asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Subscribe,
    Unsubscribe,
}

impl Mode {
    /// `hub.mode` as the verification request names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Unsubscribe => "unsubscribe",
        }
    }
}

/// A checked subscription request; its topic is still to be found among the feeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub mode: Mode,
    /// `hub.topic` exactly as sent: the verification echoes it, and subscribers
    /// compare it as a string.
    pub topic: String,
    /// `hub.topic` parsed, to find the feed it names.
    pub topic_url: Url,
    /// `hub.callback` exactly as sent, and parsed.
    pub callback: String,
    pub callback_url: Url,
    /// The lease granted: `hub.lease_seconds` within [`MAX_LEASE`], else
    /// [`DEFAULT_LEASE`].
    pub lease: Duration,
    /// `hub.secret`, when given and not empty.
    pub secret: Option<String>,
}

/// Reads `form` (an `application/x-www-form-urlencoded` body); the reason of a
/// refusal is the 400's text.
pub fn parse(form: &[u8]) -> Result<SubscriptionRequest, String> {
    let mut fields: [(&str, Option<String>); 5] = [
        ("hub.mode", None),
        ("hub.topic", None),
        ("hub.callback", None),
        ("hub.lease_seconds", None),
        ("hub.secret", None),
    ];
    for (key, value) in url::form_urlencoded::parse(form) {
        if let Some((name, slot)) = fields.iter_mut().find(|(name, _)| *name == key) {
            if slot.is_some() {
                return Err(format!("{name} is given twice"));
            }
            *slot = Some(value.into_owned());
        }
    }
    let [mode, topic, callback, lease, secret] = fields.map(|(_, value)| value);
    let mode = match mode.as_deref() {
        Some("subscribe") => Mode::Subscribe,
        Some("unsubscribe") => Mode::Unsubscribe,
        Some("publish") => {
            return Err("hub.mode=publish: this hub publishes tributary's own feeds, which tell it when they change".into());
        }
        Some(other) => {
            return Err(format!(
                "hub.mode `{other}` is not subscribe or unsubscribe"
            ));
        }
        None => return Err("hub.mode is missing".into()),
    };
    let topic = topic.ok_or("hub.topic is missing")?;
    let topic_url = Url::parse(&topic).map_err(|_| format!("hub.topic `{topic}` is not a URL"))?;
    let callback = callback.ok_or("hub.callback is missing")?;
    let callback_url = callback_url(&callback)?;
    let lease = match lease.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LEASE,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds > 0 => Duration::from_secs(seconds).min(MAX_LEASE),
            _ => {
                return Err(format!(
                    "hub.lease_seconds `{text}` is not a positive whole number"
                ));
            }
        },
    };
    let secret = secret.filter(|s| !s.is_empty());
    if secret.as_ref().is_some_and(|s| s.len() >= MAX_SECRET_BYTES) {
        return Err(format!(
            "hub.secret must be shorter than {MAX_SECRET_BYTES} bytes"
        ));
    }
    Ok(SubscriptionRequest {
        mode,
        topic,
        topic_url,
        callback,
        callback_url,
        lease,
        secret,
    })
}

/// `hub.callback`: an absolute http or https URL with a host, no user or password
/// (they would be sent in clear to whoever the name leads to), at most
/// [`MAX_CALLBACK_BYTES`].
fn callback_url(callback: &str) -> Result<Url, String> {
    if callback.len() > MAX_CALLBACK_BYTES {
        return Err(format!(
            "hub.callback is longer than {MAX_CALLBACK_BYTES} bytes"
        ));
    }
    let url =
        Url::parse(callback).map_err(|_| format!("hub.callback `{callback}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "hub.callback `{callback}` is not an http or https URL"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("hub.callback must not carry a user name or password".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    const TOPIC: (&str, &str) = ("hub.topic", "http://127.0.0.1:8080/feed.xml");
    const CALLBACK: (&str, &str) = ("hub.callback", "https://reader.example/cb?id=1");

    #[test]
    fn a_full_request() {
        let request = parse(&form(&[
            ("hub.mode", "subscribe"),
            TOPIC,
            CALLBACK,
            ("hub.lease_seconds", "3600"),
            ("hub.secret", "s3cret"),
            ("other", "ignored"),
        ]))
        .unwrap();
        assert_eq!(request.mode, Mode::Subscribe);
        assert_eq!(request.topic, TOPIC.1);
        assert_eq!(request.callback, CALLBACK.1);
        assert_eq!(request.lease, Duration::from_secs(3600));
        assert_eq!(request.secret.as_deref(), Some("s3cret"));
    }

    #[test]
    fn leases_default_and_are_capped() {
        let lease = |value: Option<&str>| {
            let mut pairs = vec![("hub.mode", "unsubscribe"), TOPIC, CALLBACK];
            pairs.extend(value.map(|v| ("hub.lease_seconds", v)));
            parse(&form(&pairs)).map(|r| r.lease)
        };
        assert_eq!(lease(None), Ok(DEFAULT_LEASE));
        assert_eq!(lease(Some("999999999999")), Ok(MAX_LEASE));
        assert!(lease(Some("0")).is_err());
        assert!(lease(Some("-5")).is_err());
        assert!(lease(Some("soon")).is_err());
    }

    #[test]
    fn refusals() {
        let refused = |pairs: &[(&str, &str)]| parse(&form(pairs)).unwrap_err();
        assert!(refused(&[TOPIC, CALLBACK]).contains("hub.mode"));
        assert!(refused(&[("hub.mode", "publish"), TOPIC]).contains("publish"));
        assert!(refused(&[("hub.mode", "subscribe"), CALLBACK]).contains("hub.topic"));
        assert!(refused(&[("hub.mode", "subscribe"), TOPIC]).contains("hub.callback"));
        for callback in [
            "ftp://reader.example/cb",
            "javascript:alert(1)",
            "/relative",
            "https://me:pw@reader.example/cb",
        ] {
            let reason = refused(&[("hub.mode", "subscribe"), TOPIC, ("hub.callback", callback)]);
            assert!(reason.contains("hub.callback"), "{callback}: {reason}");
        }
        let long = format!("https://reader.example/{}", "a".repeat(MAX_CALLBACK_BYTES));
        assert!(
            refused(&[("hub.mode", "subscribe"), TOPIC, ("hub.callback", &long)])
                .contains("longer")
        );
        let secret = "s".repeat(MAX_SECRET_BYTES);
        let reason = refused(&[
            ("hub.mode", "subscribe"),
            TOPIC,
            CALLBACK,
            ("hub.secret", &secret),
        ]);
        assert!(reason.contains("hub.secret"));
        let secret = "s".repeat(MAX_SECRET_BYTES - 1);
        assert!(
            parse(&form(&[
                ("hub.mode", "subscribe"),
                TOPIC,
                CALLBACK,
                ("hub.secret", &secret)
            ]))
            .is_ok()
        );
        assert!(refused(&[("hub.mode", "subscribe"), TOPIC, TOPIC, CALLBACK]).contains("twice"));
    }
}
