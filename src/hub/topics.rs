//! Topics: which of tributary's own feeds a `hub.topic` URL names. Only the feeds
//! (RSS, Atom, JSON Feed of the river, a tag or a source) are topics, named by the
//! URL their self link gives: on `[server] public_url` when it is set, else on one
//! of the server's own Host names (`Site::accepts`), as readers find them.

use url::Url;

use crate::publish::urls::route;
use crate::publish::{Site, View};

/// A feed of this server, as a topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topic {
    pub view: View,
    /// The Host its self links are built on; `None` with a `public_url`.
    pub authority: Option<String>,
}

/// The feed `topic` names, or why it names none of ours. Whether its tag or source
/// exists is for the snapshot to say.
pub fn resolve(site: &Site, topic: &Url) -> Result<Topic, String> {
    let not_ours = || {
        format!(
            "hub.topic `{topic}` is not one of this server's feeds (/feed.xml, /atom.xml, /feed.json, /tags/…, /sources/…)"
        )
    };
    if topic.query().is_some() || topic.fragment().is_some() {
        return Err(not_ours());
    }
    let (path, authority) = match &site.public_url {
        Some(base) => {
            let relative = topic
                .as_str()
                .strip_prefix(base.as_str())
                .ok_or_else(not_ours)?;
            (format!("/{relative}"), None)
        }
        None => {
            let host = topic.host_str().ok_or_else(not_ours)?;
            let authority = match topic.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            };
            if topic.scheme() != "http" || !site.accepts(&authority) {
                return Err(not_ours());
            }
            (topic.path().to_string(), Some(authority))
        }
    };
    let (format, scope) = route(&path).ok_or_else(not_ours)?;
    if !format.names_itself() {
        return Err(not_ours());
    }
    Ok(Topic {
        view: View {
            format,
            scope,
            limit: None,
        },
        authority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Format, Scope};

    fn site(extra: &str) -> Site {
        let text = format!("{extra}[[source]]\nurl = \"http://wire.example/\"\ntags = [\"t\"]\n");
        let config = crate::config::parse(std::path::Path::new("feeds.toml"), &text, None).unwrap();
        Site::from_config(&config, "127.0.0.1:8080".into(), 1)
    }

    fn resolve_str(site: &Site, topic: &str) -> Result<Topic, String> {
        resolve(site, &Url::parse(topic).unwrap())
    }

    #[test]
    fn feeds_on_the_server_s_own_names() {
        let site = site("");
        let topic = resolve_str(&site, "http://127.0.0.1:8080/tags/t.atom").unwrap();
        assert_eq!(topic.view.format, Format::Atom);
        assert_eq!(topic.view.scope, Scope::Tag("t".into()));
        assert_eq!(topic.authority.as_deref(), Some("127.0.0.1:8080"));
        let topic = resolve_str(&site, "http://LOCALHOST:8080/feed.json").unwrap();
        assert_eq!(topic.authority.as_deref(), Some("localhost:8080"));
        for refused in [
            "http://evil.example:8080/feed.xml",
            "https://127.0.0.1:8080/feed.xml",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/opml",
            "http://127.0.0.1:8080/feed.xml?limit=5",
            "http://127.0.0.1:8080/metrics",
            "http://127.0.0.1:8080/hub",
        ] {
            assert!(resolve_str(&site, refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn feeds_on_the_public_url() {
        let site = site("[server]\npublic_url = \"https://news.example/river/\"\n");
        let topic = resolve_str(&site, "https://news.example/river/sources/abc.xml").unwrap();
        assert_eq!(topic.view.scope, Scope::Source("abc".into()));
        assert_eq!(topic.authority, None);
        assert!(resolve_str(&site, "https://news.example/feed.xml").is_err());
        assert!(resolve_str(&site, "http://127.0.0.1:8080/feed.xml").is_err());
    }
}
