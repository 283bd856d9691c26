//! A source's identity as a number: [`SourceConfig::fingerprint`], a hash of every
//! configured field written out in a fixed order and encoding, so that it stays the
//! same across runs, builds and Rust versions (it is persisted: a source that answered
//! 410 Gone is marked with it).
//!
//! Adding a field to [`SourceConfig`] (or to the request options, filter or selector
//! rules it holds) means adding it to [`SourceConfig::fingerprint`] (at the end, to
//! keep the keys of existing configs), and to the test below; the fingerprint
//! destructures each of them whole, so a new field does not compile until then.

use super::{Interval, SourceConfig, SourceKind};
use crate::fetch::RequestOptions;
use crate::ingest::filter::{Filter, FilterOn};
use crate::ingest::scrape::RulesText;

impl SourceConfig {
    /// A hash of everything configured for the source: a source that answered 410
    /// Gone is polled again once any of it changes, and the scheduler restarts a
    /// source's task when it changes on reload.
    pub fn fingerprint(&self) -> u64 {
        // Destructured whole, so that a field added to any of these structs does not
        // compile until it is written into the key (or named here as left out).
        let SourceConfig {
            id,
            url,
            name,
            tags,
            interval,
            request,
            timezone,
            kind,
            filter,
            max_items,
            // What is shown of the URL, not what is polled: the outputs follow a
            // change at once, and the key (persisted) stays what it was.
            secret_query: _,
            // Whether pushes are taken, not what is polled: the subscriber follows a
            // change on reload, and the key (persisted) stays what it was.
            websub: _,
        } = self;
        let mut key = Key::default();
        key.text(&id.0);
        key.text(url.as_str());
        key.maybe_text(name.as_deref());
        key.list(tags);
        match interval {
            Interval::Auto => key.number(0),
            Interval::Fixed(every) => {
                key.number(1);
                key.number(every.as_secs());
                key.number(u64::from(every.subsec_nanos()));
            }
        }
        key.request(request);
        key.text(timezone.name());
        key.kind(kind);
        key.filter(filter);
        match max_items {
            None => key.number(0),
            Some(max) => {
                key.number(1);
                key.number(*max as u64);
            }
        }
        xxhash_rust::xxh3::xxh3_64(&key.0)
    }
}

/// The parts of a source's config that are structs of their own, each destructured
/// whole for the same reason as the source's.
impl Key {
    fn request(&mut self, request: &RequestOptions) {
        let RequestOptions {
            headers,
            basic_auth,
            user_agent,
            addresses,
            credentials_origin: _,
        } = request;
        self.number(headers.len() as u64);
        for (name, value) in headers {
            self.text(name);
            self.text(value);
        }
        match basic_auth {
            None => self.number(0),
            Some((user, password)) => {
                self.number(1);
                self.text(user);
                self.maybe_text(password.as_deref());
            }
        }
        self.maybe_text(user_agent.as_deref());
        // The rest of the policy, and where credentials go, follow from the URL.
        self.number(u64::from(addresses.allows_private()));
    }

    fn kind(&mut self, kind: &SourceKind) {
        let rules = match kind {
            SourceKind::Feed => return self.number(0),
            SourceKind::Html(rules) => rules,
        };
        let RulesText {
            item,
            title,
            link,
            link_attribute,
            date,
            date_attribute,
            date_format,
            summary,
        } = &rules.text;
        self.number(1);
        self.text(item);
        self.text(title);
        self.text(link);
        self.maybe_text(link_attribute.as_deref());
        self.maybe_text(date.as_deref());
        self.maybe_text(date_attribute.as_deref());
        self.maybe_text(date_format.as_deref());
        self.maybe_text(summary.as_deref());
    }

    fn filter(&mut self, filter: &Filter) {
        let Filter {
            include,
            exclude,
            on,
        } = filter;
        for rules in [include, exclude] {
            match rules {
                None => self.number(0),
                Some(set) => {
                    self.number(1);
                    self.list(set.patterns());
                }
            }
        }
        self.number(match on {
            FilterOn::Title => 0,
            FilterOn::Summary => 1,
            FilterOn::Both => 2,
        });
    }
}

/// The bytes hashed: numbers as 8 bytes little-endian, text as its length then its
/// UTF-8, so no two different configs write the same bytes.
#[derive(Default)]
struct Key(Vec<u8>);

impl Key {
    fn number(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.number(text.len() as u64);
        self.0.extend_from_slice(text.as_bytes());
    }

    fn maybe_text(&mut self, text: Option<&str>) {
        match text {
            None => self.number(0),
            Some(text) => {
                self.number(1);
                self.text(text);
            }
        }
    }

    fn list(&mut self, items: &[String]) {
        self.number(items.len() as u64);
        for item in items {
            self.text(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A source with every field set, in the lines `variant` changes one by one.
    const BASE: [&str; 17] = [
        "url = \"https://a.example/news\"",
        "name = \"A\"",
        "tags = [\"x\", \"y\"]",
        "interval = \"20m\"",
        "headers = { \"X-Key\" = \"k\" }",
        "username = \"u\"",
        "password = \"p\"",
        "user_agent = \"Reader/1\"",
        "allow_private = false",
        "timezone = \"Europe/Moscow\"",
        "include = [\"rust\"]",
        "exclude = [\"ad\"]",
        "filter_on = \"title\"",
        "max_items = 50",
        "kind = \"html\"",
        "[source.selectors]",
        "item = \"li\"\ntitle = \"a\"\nlink = \"a\"\ndate = \".t\"\ndate_format = \"%d.%m.%Y\"\nsummary = \"p\"\nlink_attribute = \"href\"\ndate_attribute = \"title\"",
    ];

    fn key<S: AsRef<str>>(lines: &[S]) -> u64 {
        let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
        let text = format!("[[source]]\n{}\n", lines.join("\n"));
        let config = crate::config::parse(Path::new("feeds.toml"), &text, None)
            .unwrap_or_else(|err| panic!("{err}\n{text}"));
        config.sources[0].fingerprint()
    }

    #[test]
    fn the_key_is_fixed_for_a_fixed_config() {
        // Persisted in the store: a change here makes every gone source polled again.
        assert_eq!(key(&BASE), 1770189290801955937);
        assert_eq!(key(&BASE[..1]), 3423750802241678143);
    }

    /// `BASE` with line `i` replaced by `line`.
    fn changed(i: usize, line: &str) -> Vec<String> {
        let mut lines: Vec<String> = BASE.map(str::to_string).to_vec();
        lines[i] = line.to_string();
        lines
    }

    #[test]
    fn every_field_changes_the_key() {
        let mut variants = vec![
            changed(0, "url = \"HTTPS://A.example/news\""), // the same URL, another id
            changed(0, "url = \"https://b.example/news\""),
            changed(1, "name = \"B\""),
            changed(1, ""),
            changed(2, "tags = [\"x\"]"),
            changed(2, "tags = [\"y\", \"x\"]"),
            changed(3, "interval = \"auto\""),
            changed(3, "interval = \"21m\""),
            changed(4, "headers = { \"X-Key\" = \"l\" }"),
            changed(4, "headers = { \"X-Other\" = \"k\" }"),
            changed(5, "username = \"v\""),
            changed(6, "password = \"q\""),
            changed(6, ""),
            changed(7, "user_agent = \"Reader/2\""),
            changed(8, "allow_private = true"),
            changed(9, "timezone = \"UTC\""),
            changed(10, "include = [\"rust\", \"go\"]"),
            changed(10, ""),
            changed(11, "exclude = [\"promo\"]"),
            changed(12, "filter_on = \"summary\""),
            changed(12, "filter_on = \"both\""),
            changed(13, "max_items = 51"),
            changed(13, ""),
            changed(14, "").into_iter().take(14).collect(), // a feed, not a page
        ];
        let selectors = BASE[16];
        for (from, to) in [
            ("item = \"li\"", "item = \"tr\""),
            ("title = \"a\"", "title = \"b\""),
            ("link = \"a\"", "link = \"b\""),
            ("date = \".t\"", "date = \".u\""),
            ("%d.%m.%Y", "%m.%d.%Y"),
            ("summary = \"p\"", "summary = \"div\""),
            ("link_attribute = \"href\"", "link_attribute = \"src\""),
            (
                "date_attribute = \"title\"",
                "date_attribute = \"datetime\"",
            ),
        ] {
            assert!(selectors.contains(from), "{from}");
            variants.push(changed(16, &selectors.replace(from, to)));
        }
        let mut keys = vec![key(&BASE)];
        for variant in &variants {
            let k = key(variant);
            assert!(
                !keys.contains(&k),
                "{variant:?} has the key of another config"
            );
            keys.push(k);
        }
        assert_eq!(key(&BASE), keys[0], "the key is the same every time");
    }
}
