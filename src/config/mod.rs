//! `feeds.toml`: reading it, checking it, and the defaults for everything it leaves out.
//!
//! [`load`] turns the file into a checked [`Config`] or a [`ConfigError`] that lists every
//! problem with its file, line and column. Nothing else in tributary reads the file;
//! `daemon` and `cli` receive a `Config`.
//!
//! The types are in `types`, the serde shapes of the file in `raw`, the checker in
//! `check` (sections) and `values` (single values), the file read a `[[source]]` at
//! a time (and a reload's unchanged sources taken over) in `pieces`, a source's fingerprint in `key`
//! (what of a source's URL may be shown is `fetch::shown`, re-exported); `add`, `import` and `edit` write
//! new sources into the file (`edit::replace_file` is the one way it is written).

pub mod add;
pub mod change;
mod check;
mod cluster;
mod edit;
mod error;
pub mod import;
mod key;
mod pieces;
pub mod push;
mod raw;
mod secrets;
mod types;
mod values;

pub use crate::fetch::shown::{self, shown_url};
pub use cluster::{ClusterConfig, DEFAULT_LEASE_TTL, DEFAULT_WATCH_EVERY};
pub use edit::replace_file;
pub use error::{ConfigError, Problem};
pub use pieces::{Previous, Reloaded, SourceTexts};
pub use types::{
    Config, Interval, PER_SOURCE_METRICS_AUTO_LIMIT, PerSourceMetrics, PollConfig, PublishConfig,
    Retention, SharedSources, SourceConfig, SourceKind, share, source_name,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use check::Checker;
use raw::RawConfig;

/// 127.0.0.1:8080: local only until the sysadmin decides to expose it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `./data` when systemd gives no `STATE_DIRECTORY`.
pub const DEFAULT_STORE_PATH: &str = "data";
/// 15 minutes: polite for most publishers, fresh enough for news; also where adaptive
/// polling starts before it has seen a source publish.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// 1 minute: polling faster than this only burdens the publisher.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// 5 minutes: the shortest interval adaptive polling and publisher hints choose.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// 6 hours: the longest interval adaptive polling and publisher hints choose, so a
/// quiet source is still seen a few times a day.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// 2 requests at once to one host: polite to a publisher that hosts many feeds.
pub const DEFAULT_PER_HOST: usize = 2;
/// 16 fetches in flight: enough to poll thousands of sources per interval on one machine.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// 30 seconds for a whole response, body included: cuts servers that trickle bytes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// 10 seconds to connect.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// 16 MiB after decompression: larger than any real feed, small enough to stop a gzip bomb.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// 30 days: news older than a month has left every "latest" list.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
/// 100 000 items: a few hundred MB on disk at most, whatever the sources publish.
pub const DEFAULT_STORE_MAX_ITEMS: usize = 100_000;
/// sled's page cache when `[store] cache_mb` is not set: the store's own default, the one
/// it opens with when no config is given.
pub const DEFAULT_STORE_CACHE_BYTES: u64 = crate::store::DEFAULT_CACHE_BYTES;

/// The merged feed's title when `[publish] title` is not set.
pub const DEFAULT_TITLE: &str = "Latest news";
/// 100 items: what readers expect from a "latest news" feed.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// Upper bound for `max_items`: rendering stays cheap and the feed stays a feed.
pub const MAX_MAX_ITEMS: usize = 10_000;
/// `en`: the language of the page's own words ("Sources", day names).
pub const DEFAULT_LANGUAGE: &str = "en";
/// UTC: the one zone that is right for nobody in particular and wrong for no one.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::UTC;

/// How long a response may wait for a reader that stopped reading: nginx's
/// `send_timeout` default. A reader on a slow link still takes in some bytes in that
/// time; one that takes none holds a connection and its buffers for nothing.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(path, &read(path)?, state_directory())
}

/// [`load`] again, taking over the sources of `previous` (the config in force)
/// whose `[[source]]` table did not change instead of checking them again (see
/// `pieces`): the same config, or the same problems.
pub fn reload(path: &Path, previous: Option<&Previous>) -> Result<Reloaded, ConfigError> {
    reparse(path, &read(path)?, state_directory(), previous)
}

/// [`parse`], taking over the sources of `previous` whose table did not change.
fn reparse(
    path: &Path,
    text: &str,
    state_dir: Option<PathBuf>,
    previous: Option<&Previous>,
) -> Result<Reloaded, ConfigError> {
    if let Some(previous) = previous {
        let mut checker = Checker::new(path, text);
        if let Some(reloaded) = pieces::reload(&mut checker, state_dir.clone(), previous)
            && checker.problems.is_empty()
        {
            return Ok(reloaded);
        }
    }
    parse(path, text, state_dir).map(Reloaded::from)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The first directory systemd gave in `STATE_DIRECTORY` (it may list several).
fn state_directory() -> Option<PathBuf> {
    let dirs = std::env::var_os("STATE_DIRECTORY")?;
    let first = dirs.to_str()?.split(':').next()?.trim();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// Checks config `text` read from `path`. `state_dir` is the store's home when the file
/// names none (systemd's `STATE_DIRECTORY`).
pub fn parse(path: &Path, text: &str, state_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
    let mut checker = Checker::new(path, text);
    match pieces::check(&mut checker, state_dir.clone()) {
        Some(config) => checker.finish(config),
        None => parse_whole(checker, state_dir),
    }
}

/// [`parse`] with the whole file read at once (toml's tree of every table): for the
/// files that do not read piece by piece (`pieces`), and their first error.
fn parse_whole(mut checker: Checker, state_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
    let raw: RawConfig = match toml::from_str(checker.text) {
        Ok(raw) => raw,
        Err(err) => {
            checker.report(err.span(), err.message().trim_end().to_string());
            return Err(checker.into_error());
        }
    };
    let config = checker.check(raw, state_dir);
    checker.finish(config)
}

#[cfg(test)]
mod tests {
    use super::check::line_column;
    use super::*;
    use crate::ingest::filter::FilterOn;
    use chrono_tz::Tz;

    fn check(text: &str) -> Result<Config, Vec<Problem>> {
        parse(Path::new("feeds.toml"), text, None).map_err(|err| match err {
            ConfigError::Invalid { problems } => problems,
            other => panic!("unexpected {other}"),
        })
    }

    fn places(problems: &[Problem]) -> Vec<(usize, usize)> {
        problems.iter().map(|p| (p.line, p.column)).collect()
    }

    #[test]
    fn html_sources_have_checked_selectors() {
        let config = check(
            "[[source]]\nurl = \"https://n.example/\"\nkind = \"html\"\ntimezone = \"Europe/Moscow\"\n[source.selectors]\nitem = \".news li\"\ntitle = \"a\"\nlink = \"a\"\ndate = \".time\"\ndate_format = \"%H:%M %d.%m.%Y\"\n",
        )
        .unwrap();
        let SourceKind::Html(rules) = &config.sources[0].kind else {
            panic!("not an html source");
        };
        assert_eq!(rules.text.item, ".news li");
        assert!(matches!(
            check("[[source]]\nurl = \"https://n.example/rss\"\n")
                .unwrap()
                .sources[0]
                .kind,
            SourceKind::Feed
        ));

        let problems = check(
            "[[source]]\nurl = \"https://a.example/\"\nkind = \"html\"\n[source.selectors]\nitem = \"div..x\"\ntitle = \"a\"\nlink = \"a\"\n\n[[source]]\nurl = \"https://b.example/\"\nkind = \"html\"\n\n[[source]]\nurl = \"https://c.example/\"\n[source.selectors]\nitem = \"li\"\n\n[[source]]\nurl = \"https://d.example/\"\nkind = \"page\"\n\n[[source]]\nurl = \"https://e.example/\"\nkind = \"html\"\n[source.selectors]\nitem = \"li\"\nlink = \"a\"\ndate_format = \"%Q\"\n",
        )
        .unwrap_err();
        let messages: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(places(&problems)[0], (5, 8), "{messages:?}");
        assert!(
            messages[0].contains("selector `item` (`div..x`) is not valid CSS"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("needs a [source.selectors] table"),
            "{messages:?}"
        );
        assert!(messages[2].contains("add kind = \"html\""), "{messages:?}");
        assert!(
            messages[3].contains("kind `page` is not a source kind"),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("needs `title`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("add `date`")),
            "{messages:?}"
        );
    }

    #[test]
    fn per_source_metrics_is_auto_true_or_false() {
        let mode = |value: &str| {
            check(&format!("[server]\nper_source_metrics = {value}\n"))
                .map(|config| config.per_source_metrics)
        };
        assert_eq!(
            check("").unwrap().per_source_metrics,
            PerSourceMetrics::Auto
        );
        assert_eq!(mode("\"auto\""), Ok(PerSourceMetrics::Auto));
        assert_eq!(mode("true"), Ok(PerSourceMetrics::On));
        assert_eq!(mode("false"), Ok(PerSourceMetrics::Off));
        let problems = mode("\"sometimes\"").unwrap_err();
        assert_eq!(places(&problems), [(2, 22)]);
        assert!(problems[0].message.contains("\"auto\""), "{problems:?}");
        assert!(mode("1").is_err());
        assert!(PerSourceMetrics::Auto.applies_to(PER_SOURCE_METRICS_AUTO_LIMIT));
        assert!(!PerSourceMetrics::Auto.applies_to(PER_SOURCE_METRICS_AUTO_LIMIT + 1));
    }

    #[test]
    fn credentials_in_urls_are_refused_and_secret_query_is_read() {
        let problems = check(
            "[server]\npublic_url = \"https://me:pw@news.example/\"\n[[source]]\nurl = \"https://me:hunter22@a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss?t=1\"\nsecret_query = [\"T\", \"a=b\"]\n",
        )
        .unwrap_err();
        assert_eq!(places(&problems), [(2, 14), (4, 7), (7, 22)]);
        assert!(problems[1].message.contains("`username` and `password`"));
        assert!(problems.iter().all(|p| !p.message.contains("hunter22")));
        let problems =
            check("[[source]]\nurl = \"https://a.example/\"\nheaders = { proxy-authorization = \"Basic x\" }\n")
                .unwrap_err();
        assert!(
            problems[0].message.contains("belongs to the proxy"),
            "{problems:?}"
        );
        let config = check(
            "[[source]]\nurl = \"https://b.example/rss?t=1&token=2\"\nsecret_query = [\"T\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.sources[0].shown_url(),
            "https://b.example/rss?t=***&token=***"
        );
    }

    #[test]
    fn empty_file_gives_every_default() {
        let config = check("").unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.store_path, PathBuf::from("data"));
        assert_eq!(config.store_cache_bytes, 2 * 1024 * 1024);
        let config = check("[store]\ncache_mb = 64\n").unwrap();
        assert_eq!(config.store_cache_bytes, 64 * 1024 * 1024);
        assert_eq!(
            places(&check("[store]\ncache_mb = 0\n").unwrap_err()),
            [(2, 12)]
        );
        assert_eq!(config.publish.title, DEFAULT_TITLE);
        assert_eq!(config.publish.max_items, DEFAULT_MAX_ITEMS);
        assert!(config.sources.is_empty());
    }

    #[test]
    fn state_directory_is_the_default_store() {
        let config = parse(
            Path::new("feeds.toml"),
            "",
            Some(PathBuf::from("/var/lib/tributary")),
        )
        .unwrap();
        assert_eq!(config.store_path, PathBuf::from("/var/lib/tributary"));
        let config = parse(
            Path::new("feeds.toml"),
            "[store]\npath = \"here\"\n",
            Some(PathBuf::from("/var/lib/tributary")),
        )
        .unwrap();
        assert_eq!(config.store_path, PathBuf::from("here"));
    }

    #[test]
    fn source_inherits_the_poll_interval() {
        let config = check(
            "[poll]\ninterval = \"20m\"\n[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"2h\"\nname = \"B\"\ntags = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.sources[0].interval,
            Interval::Fixed(Duration::from_secs(20 * 60))
        );
        assert_eq!(
            config.sources[1].interval,
            Interval::Fixed(Duration::from_secs(2 * 3600))
        );
        assert_eq!(config.sources[1].name.as_deref(), Some("B"));
        assert_eq!(config.sources[1].tags, vec!["x".to_string()]);
    }

    #[test]
    fn shortest_interval_counts_auto_sources_at_min_interval() {
        let fixed = |minutes: u64| Duration::from_secs(minutes * 60);
        // Fixed intervals only: the shortest of them.
        let config = check(
            "[poll]\ninterval = \"2h\"\n[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"45m\"\n",
        )
        .unwrap();
        assert_eq!(config.shortest_interval(), fixed(45));
        // An auto source may be polled as often as min_interval.
        let config = check(
            "[poll]\nmin_interval = \"15m\"\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"1h\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"auto\"\n",
        )
        .unwrap();
        assert_eq!(config.shortest_interval(), fixed(15));
        // A fixed interval shorter than min_interval wins over it.
        let config = check(
            "[poll]\nmin_interval = \"15m\"\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"auto\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"5m\"\n",
        )
        .unwrap();
        assert_eq!(config.shortest_interval(), fixed(5));
        // No sources: min_interval.
        let config = check("[poll]\nmin_interval = \"20m\"\n").unwrap();
        assert_eq!(config.shortest_interval(), fixed(20));
    }

    #[test]
    fn auto_is_the_default_interval_and_request_options_are_read() {
        let config = check(
            "[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"auto\"\nusername = \"u\"\npassword = \"p\"\nuser_agent = \"Reader/1\"\nheaders = { \"X-Key\" = \"k\" }\n",
        )
        .unwrap();
        assert_eq!(config.sources[0].interval, Interval::Auto);
        assert_eq!(config.sources[0].timezone, Tz::UTC);
        assert_eq!(config.sources[1].interval, Interval::Auto);
        let request = &config.sources[1].request;
        assert_eq!(request.basic_auth, Some(("u".into(), Some("p".into()))));
        assert_eq!(request.user_agent.as_deref(), Some("Reader/1"));
        assert_eq!(request.headers.get("X-Key").map(String::as_str), Some("k"));
        let problems = check(
            "[[source]]\nurl = \"https://a.example/rss\"\nheaders = { \"Bad Name\" = \"k\" }\n",
        )
        .unwrap_err();
        assert_eq!(places(&problems), vec![(3, 26)]);
        let problems =
            check("[[source]]\nurl = \"https://a.example/rss\"\ntimezone = \"Mars/Olympus\"\n")
                .unwrap_err();
        assert_eq!(places(&problems), vec![(3, 12)]);
        let config =
            check("[[source]]\nurl = \"https://a.example/rss\"\ntimezone = \"Europe/Moscow\"\n")
                .unwrap();
        assert_eq!(config.sources[0].timezone, chrono_tz::Europe::Moscow);
    }

    #[test]
    fn allow_private_and_the_configured_address_set_the_address_policy() {
        use crate::fetch::AddressClass;
        let config = check(
            "[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"http://127.0.0.1:8081/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\nallow_private = true\n",
        )
        .unwrap();
        let policy = |i: usize| config.sources[i].request.addresses;
        assert!(!policy(0).allows(AddressClass::Loopback));
        assert!(policy(1).allows(AddressClass::Loopback));
        assert!(!policy(1).allows(AddressClass::LinkLocal));
        assert!(policy(2).allows(AddressClass::LinkLocal));
        let problems =
            check("[[source]]\nurl = \"https://a.example/rss\"\nallow_private = \"yes\"\n")
                .unwrap_err();
        assert_eq!(problems[0].line, 3);
    }

    #[test]
    fn filters_and_per_source_caps_are_read_and_checked() {
        let config = check(
            "[[source]]\nurl = \"https://a.example/rss\"\ninclude = [\"(?i)rust\", \"^Go\"]\nexclude = [\"sponsored\"]\nfilter_on = \"title\"\nmax_items = 50\n[[source]]\nurl = \"https://b.example/rss\"\n",
        )
        .unwrap();
        let a = &config.sources[0];
        assert_eq!(a.filter.include.as_ref().unwrap().len(), 2);
        assert_eq!(a.filter.exclude.as_ref().unwrap().len(), 1);
        assert_eq!(a.filter.on, FilterOn::Title);
        assert_eq!(a.max_items, Some(50));
        let b = &config.sources[1];
        assert!(b.filter.is_empty());
        assert_eq!(b.filter.on, FilterOn::Both);
        assert_eq!(b.max_items, None);

        let problems = check(
            "[[source]]\nurl = \"https://a.example/rss\"\ninclude = [\"ok\", \"(unclosed\"]\nexclude = [\"a{2,1}\"]\nfilter_on = \"body\"\nmax_items = 0\n",
        )
        .unwrap_err();
        assert_eq!(
            places(&problems),
            vec![(3, 18), (4, 12), (5, 13), (6, 13)],
            "{problems:#?}"
        );
        assert!(
            problems[0].message.contains("`(unclosed`"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].message.contains("unclosed group"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].message.contains("exclude rule"),
            "{}",
            problems[1]
        );
        assert!(problems[2].message.contains("filter_on"), "{}", problems[2]);
        assert!(problems[3].message.contains("max_items"), "{}", problems[3]);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let problems =
            check("[[source]]\nurl = \"https://a.example/rss\"\nintervall = \"5m\"\n").unwrap_err();
        assert_eq!(places(&problems), vec![(3, 1)]);
        assert!(problems[0].message.contains("intervall"), "{problems:?}");
        assert!(problems[0].to_string().starts_with("feeds.toml:3:1: "));
    }

    #[test]
    fn toml_syntax_error_names_line_and_column() {
        let problems = check("[server]\nlisten = \"127.0.0.1:80\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
    }

    #[test]
    fn every_bad_source_is_reported() {
        let text = "[[source]]\nurl = \"not a url\"\n\n[[source]]\nurl = \"ftp://a.example/x\"\n\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"30s\"\n\n[[source]]\nurl = \"https://b.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\n[[source]]\nurl = \"https://c.example/rss\"\ninterval = \"soon\"\n";
        let problems = check(text).unwrap_err();
        assert_eq!(
            places(&problems),
            vec![(2, 7), (5, 7), (9, 12), (14, 7), (17, 12)],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("not a valid URL"));
        assert!(problems[1].message.contains("only http"));
        assert!(problems[2].message.contains("floor"));
        assert!(problems[3].message.contains("line 12"));
        assert!(problems[4].message.contains("not a duration"));
    }

    #[test]
    fn send_timeout_has_a_default_and_a_floor() {
        assert_eq!(check("").unwrap().send_timeout, DEFAULT_SEND_TIMEOUT);
        let config = check("[server]\nsend_timeout = \"5m\"\n").unwrap();
        assert_eq!(config.send_timeout, Duration::from_secs(300));
        for (text, message) in [
            ("[server]\nsend_timeout = \"500ms\"\n", "at least 1s"),
            ("[server]\nsend_timeout = \"0s\"\n", "longer than zero"),
            ("[server]\nsend_timeout = \"a minute\"\n", "not a duration"),
        ] {
            let problems = check(text).unwrap_err();
            assert_eq!(places(&problems), vec![(2, 16)], "{text}");
            assert!(problems[0].message.contains(message), "{problems:#?}");
        }
    }

    #[test]
    fn admin_listen_and_metrics_are_read_and_checked() {
        let config = check("").unwrap();
        assert_eq!((config.admin_listen, config.metrics), (None, true));
        let config =
            check("[server]\nadmin_listen = \"127.0.0.1:9091\"\nmetrics = false\n").unwrap();
        assert_eq!(config.admin_listen, Some("127.0.0.1:9091".parse().unwrap()));
        assert!(!config.metrics);
        let problems = check("[server]\nadmin_listen = \"localhost\"\n").unwrap_err();
        assert_eq!(places(&problems), vec![(2, 16)]);
        let problems =
            check("[server]\nlisten = \"127.0.0.1:80\"\nadmin_listen = \"127.0.0.1:80\"\n")
                .unwrap_err();
        assert_eq!(places(&problems), vec![(3, 16)]);
        assert!(problems[0].message.contains("another port"), "{problems:?}");
    }

    #[test]
    fn bad_listen_and_max_items_are_reported() {
        let problems =
            check("[server]\nlisten = \"localhost\"\n[publish]\nmax_items = 0\n").unwrap_err();
        assert_eq!(places(&problems), vec![(2, 10), (4, 13)]);
    }

    #[test]
    fn publishing_keys_have_defaults_and_are_checked() {
        let config = check("").unwrap();
        assert_eq!(config.public_url, None);
        assert_eq!(config.publish.language, "en");
        assert_eq!(config.publish.timezone, chrono_tz::UTC);
        let config = check(
            "[server]\npublic_url = \"https://news.example.org/river\"\n[publish]\nlanguage = \"pt-BR\"\ntimezone = \"Europe/Moscow\"\n",
        )
        .unwrap();
        assert_eq!(
            config.public_url.unwrap().as_str(),
            "https://news.example.org/river/"
        );
        assert_eq!(config.publish.language, "pt-BR");
        assert_eq!(config.publish.timezone, chrono_tz::Europe::Moscow);
        let problems = check(
            "[server]\npublic_url = \"news.example.org\"\n[publish]\ntimezone = \"Mars/Olympus\"\nlanguage = \"english!\"\n",
        )
        .unwrap_err();
        assert_eq!(
            places(&problems),
            vec![(2, 14), (5, 12), (4, 12)],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("public_url"));
        assert!(problems[1].message.contains("language"));
        assert!(problems[2].message.contains("Mars/Olympus"));
        let problems = check("[server]\npublic_url = \"https://a.example/?x=1\"\n").unwrap_err();
        assert_eq!(places(&problems), vec![(2, 14)]);
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = load(Path::new("/nonexistent/feeds.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/feeds.toml"), "{err}");
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ж\nжx", 5), (2, 2));
    }
}
