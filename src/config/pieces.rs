//! A large `feeds.toml` read piece by piece: the sections before the first
//! `[[source]]` (the head), then each `[[source]]` table on its own, each checked as
//! soon as it is read.
//!
//! Read at once, the file becomes toml's token list, its event list and its tree of
//! every table before serde sees any of it: for 100 000 sources (10 MB) about 250 MB
//! at the peak, and the kernel's time to hand out and zero those pages was about a
//! third of a reload. Piece by piece, only one source's tokens and table exist at a
//! time.
//!
//! The pieces are cut with toml's own lexer, so a `[[source]]` inside a multi-line
//! string or a comment is not a cut. Each piece is valid TOML on its own when the
//! file is (a `[[source]]` table ends where the next one starts), and a piece reads as
//! the file would: the same table, spans from the piece's start. Whenever a piece
//! does not read on its own (a syntax error, an unknown key, a section other than
//! `[source.…]` after the first source, a `source` key in the head, a header written
//! in another way), [`check`] gives up and the whole file is read at once as before:
//! the same config, and the same first error.
//!
//! A reload also takes over, unread, every source whose table is the same text as
//! in the config in force ([`Previous`]): a `[[source]]` table and `[poll] interval`
//! (the default of every source) are all a source is checked from, but for the
//! files some read their secrets from, which are read again. A reload that finds
//! any problem checks the file again without taking any source over, so its
//! problems are those of a first load.

use serde::Deserialize;
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use toml_parser::lexer::TokenKind;

use super::check::{Checker, Seen};
use super::raw::{RawConfig, RawSecret, RawSource};
use super::{Config, Interval, SourceConfig};

/// What the sources of a config were read from, for a reload to take over those
/// whose `[[source]]` table did not change: a hash of each source's table, in the
/// order of the config's `sources` and `disabled`; `None` for a source read again on
/// every load (its password or a header is read from a file).
pub struct SourceTexts {
    /// `[poll] interval` they were read under: the default of every source.
    interval: Interval,
    enabled: Vec<Option<u128>>,
    disabled: Vec<Option<u128>>,
}

impl std::fmt::Debug for SourceTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTexts")
            .field("sources", &self.enabled.len())
            .field("disabled", &self.disabled.len())
            .finish_non_exhaustive()
    }
}

/// The sources in force, and what they were read from ([`Config::texts`] of the
/// config they were taken out of).
pub struct Previous<'a> {
    pub texts: &'a SourceTexts,
    pub enabled: &'a [Arc<SourceConfig>],
    pub disabled: &'a [Arc<SourceConfig>],
}

/// A reloaded config: its settings, and its sources in lists of their own, in
/// which those taken over are the entries of the lists in force, not copies.
#[derive(Debug)]
pub struct Reloaded {
    /// Every setting, without sources (`sources` and `disabled` are empty).
    pub config: Config,
    pub enabled: Vec<Arc<SourceConfig>>,
    pub disabled: Vec<Arc<SourceConfig>>,
}

impl From<Config> for Reloaded {
    fn from(mut config: Config) -> Reloaded {
        let share = |sources: Vec<SourceConfig>| sources.into_iter().map(Arc::new).collect();
        Reloaded {
            enabled: share(std::mem::take(&mut config.sources)),
            disabled: share(std::mem::take(&mut config.disabled)),
            config,
        }
    }
}

/// The sources of a [`Previous`] config by the hash of their table, each with whether
/// it is enabled.
struct Reuse<'a>(HashMap<u128, (bool, &'a Arc<SourceConfig>)>);

impl<'a> Reuse<'a> {
    /// The sources of `previous` that may be taken over under `[poll] interval`;
    /// `None` when none may.
    fn of(previous: &Previous<'a>, interval: Interval) -> Option<Reuse<'a>> {
        let texts = previous.texts;
        if texts.interval != interval
            || texts.enabled.len() != previous.enabled.len()
            || texts.disabled.len() != previous.disabled.len()
        {
            return None;
        }
        let enabled = texts
            .enabled
            .iter()
            .zip(previous.enabled)
            .map(|s| (true, s));
        let disabled = texts
            .disabled
            .iter()
            .zip(previous.disabled)
            .map(|s| (false, s));
        let by_text = enabled
            .chain(disabled)
            .filter_map(|(on, (hash, source))| Some((hash.as_ref().copied()?, (on, source))))
            .collect();
        Some(Reuse(by_text))
    }
}

/// `text` cut before each `[[source]]` header that starts a line: the head, then
/// one piece per source.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Cut {
    pub(super) head: Range<usize>,
    pub(super) pieces: Vec<Range<usize>>,
}

/// Cuts `text` before each line that starts with the header `[[source]]`, written
/// that way (other spellings of it are left in their piece, which then does not read
/// on its own).
pub(super) fn cut(text: &str) -> Cut {
    let mut tokens = toml_parser::Source::new(text).lex().peekable();
    let mut starts = Vec::new();
    let mut line_start = true;
    let is = |kind: TokenKind| move |token: &toml_parser::lexer::Token| token.kind() == kind;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => {
                line_start = true;
                continue;
            }
            TokenKind::Whitespace => continue,
            TokenKind::LeftSquareBracket if line_start => {
                let header = tokens.next_if(is(TokenKind::LeftSquareBracket)).is_some()
                    && tokens
                        .next_if(|t| {
                            t.kind() == TokenKind::Atom
                                && text.get(t.span().start()..t.span().end()) == Some("source")
                        })
                        .is_some()
                    && tokens.next_if(is(TokenKind::RightSquareBracket)).is_some()
                    && tokens.next_if(is(TokenKind::RightSquareBracket)).is_some();
                if header {
                    starts.push(token.span().start());
                }
            }
            _ => {}
        }
        line_start = false;
    }
    let head = 0..starts.first().copied().unwrap_or(text.len());
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    let pieces = starts.iter().zip(ends).map(|(&s, e)| s..e).collect();
    Cut { head, pieces }
}

/// One `[[source]]` table read on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPiece {
    source: Vec<RawSource>,
}

/// The checker's text read piece by piece into a config (its problems reported as
/// for the whole file); or `None` when a piece does not read on its own: then the
/// whole file must be read at once (the checker is left as it was given).
pub(super) fn check(checker: &mut Checker, state_dir: Option<PathBuf>) -> Option<Config> {
    attempt(checker, |checker| read(checker, state_dir, None)).map(|(config, _)| config)
}

/// [`check`], taking over the sources of `previous` whose table did not change.
pub(super) fn reload(
    checker: &mut Checker,
    state_dir: Option<PathBuf>,
    previous: &Previous,
) -> Option<Reloaded> {
    let (mut config, taken) = attempt(checker, |checker| read(checker, state_dir, Some(previous)))?;
    let mut fresh = std::mem::take(&mut config.sources).into_iter();
    let mut fresh_disabled = std::mem::take(&mut config.disabled).into_iter();
    let (mut enabled, mut disabled) = (Vec::with_capacity(taken.enabled), Vec::new());
    for slot in taken.order {
        let (list, fresh) = match slot.enabled {
            true => (&mut enabled, &mut fresh),
            false => (&mut disabled, &mut fresh_disabled),
        };
        match slot.source {
            Some(source) => list.push(source.clone()),
            None => list.extend(fresh.next().map(Arc::new)),
        }
    }
    Some(Reloaded {
        config,
        enabled,
        disabled,
    })
}

/// `read` on `checker`, which is left as it was given when it gives `None`.
fn attempt<T>(checker: &mut Checker, read: impl FnOnce(&mut Checker) -> Option<T>) -> Option<T> {
    let checked = read(checker);
    checker.base = 0;
    if checked.is_none() {
        checker.problems.clear();
    }
    checked
}

/// Where each source of a reload comes from, in the file's order.
#[derive(Default)]
struct Taken<'a> {
    order: Vec<Slot<'a>>,
    /// How many of them are enabled.
    enabled: usize,
}

/// One source of a reload: enabled or not, and taken over from the list in force or
/// (`None`) the next one read.
struct Slot<'a> {
    enabled: bool,
    source: Option<&'a Arc<SourceConfig>>,
}

fn read<'a>(
    checker: &mut Checker,
    state_dir: Option<PathBuf>,
    previous: Option<&Previous<'a>>,
) -> Option<(Config, Taken<'a>)> {
    let text = checker.text;
    let cut = cut(text);
    let head: RawConfig = toml::from_str(&text[cut.head]).ok()?;
    if head.source.is_some() {
        return None;
    }
    let mut config = checker.head(head, state_dir);
    let reuse = previous.and_then(|previous| Reuse::of(previous, config.poll.interval));
    config.sources.reserve(cut.pieces.len());
    let mut seen = Seen::with_capacity(cut.pieces.len());
    let mut texts = SourceTexts {
        interval: config.poll.interval,
        enabled: Vec::with_capacity(cut.pieces.len()),
        disabled: Vec::new(),
    };
    let mut taken = Taken::default();
    for piece in cut.pieces {
        let hash = xxhash_rust::xxh3::xxh3_128(text[piece.clone()].as_bytes());
        let kept = reuse.as_ref().and_then(|reuse| reuse.0.get(&hash));
        if let Some(&(enabled, source)) = kept
            && !seen.contains_key(source.url.as_str())
        {
            // Where it is matters only for a problem, and a reload with a problem
            // reads every source again.
            seen.insert(source.url.as_str().to_owned(), piece.start);
            let hashes = match enabled {
                true => &mut texts.enabled,
                false => &mut texts.disabled,
            };
            hashes.push(Some(hash));
            taken.enabled += usize::from(enabled);
            taken.order.push(Slot {
                enabled,
                source: Some(source),
            });
            continue;
        }
        let RawPiece { source } = toml::from_str(&text[piece.clone()]).ok()?;
        let [raw] = <[RawSource; 1]>::try_from(source).ok()?;
        let hash = (!reads_files(&raw)).then_some(hash);
        let counts = (config.sources.len(), config.disabled.len());
        checker.base = piece.start;
        checker.add_source(&mut config, &mut seen, raw);
        let enabled = if config.sources.len() > counts.0 {
            texts.enabled.push(hash);
            true
        } else if config.disabled.len() > counts.1 {
            texts.disabled.push(hash);
            false
        } else {
            continue;
        };
        taken.enabled += usize::from(enabled);
        taken.order.push(Slot {
            enabled,
            source: None,
        });
    }
    config.texts = Some(Arc::new(texts));
    Some((config, taken))
}

/// Whether checking `raw` reads a file (its password, a header), which may have
/// changed since.
fn reads_files(raw: &RawSource) -> bool {
    raw.password_file.is_some()
        || raw
            .headers
            .values()
            .any(|value| matches!(value.as_ref(), RawSecret::File(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The file read piece by piece when it can be, and read whole: as text, to compare.
    fn both(text: &str) -> (Option<String>, String, String) {
        let path = Path::new("feeds.toml");
        let mut checker = Checker::new(path, text);
        let piecewise = check(&mut checker, None).map(|config| show(checker.finish(config)));
        let parsed = show(super::super::parse(path, text, None));
        let whole = show(super::super::parse_whole(Checker::new(path, text), None));
        (piecewise, parsed, whole)
    }

    /// A config as text without what its sources were read from (only reading piece
    /// by piece records it), or its problems.
    fn show(result: Result<Config, super::super::ConfigError>) -> String {
        match result {
            Ok(config) => format!(
                "{:?}",
                Config {
                    texts: None,
                    ..config
                }
            ),
            Err(err) => format!("error: {err}"),
        }
    }

    const HEAD: &str =
        "# sources below\n[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"20m\"\n\n";

    #[test]
    fn the_file_is_cut_before_each_source_header_that_starts_a_line() {
        let text = "a = 1\n[[source]]\nx = \"\"\"\n[[source]]\n\"\"\"\n# [[source]]\n  [[source]] # two\n[source.selectors]\n[[source]]";
        let cut = cut(text);
        assert_eq!(cut.head, 0..6);
        let pieces: Vec<&str> = cut.pieces.iter().map(|p| &text[p.clone()]).collect();
        assert_eq!(
            pieces,
            [
                "[[source]]\nx = \"\"\"\n[[source]]\n\"\"\"\n# [[source]]\n  ",
                "[[source]] # two\n[source.selectors]\n",
                "[[source]]",
            ]
        );
        let cut = super::cut("[[ source ]]\n[[\"source\"]]\n");
        assert_eq!((cut.head, cut.pieces.len()), (0..26, 0));
    }

    #[test]
    fn sources_read_piece_by_piece_make_the_config_of_the_whole_file() {
        let text = format!(
            "{HEAD}[[source]]\nurl = \"https://a.example/rss\"\nname = \"A\"\ntags = [\"x\", \"y\"]\n\n  [[source]] # indented\r\nurl = \"https://b.example/rss\"\r\ninterval = \"2h\"\r\nheaders = {{ \"X-Key\" = \"k\" }}\r\n[[source]]\nurl = \"https://c.example/\"\nkind = \"html\"\nname = \"\"\"C\n[[source]]\nurl = \"https://z.example/\"\n\"\"\"\n[source.selectors]\nitem = \"li\"\ntitle = \"a\"\nlink = \"a\"\n# [[source]]\n[[source]]\nurl = \"https://d.example/rss\"\nenabled = false\ninclude = [\"(?i)rust\"]\n"
        );
        let (piecewise, parsed, whole) = both(&text);
        assert_eq!(piecewise.as_ref(), Some(&whole));
        assert_eq!(parsed, whole);
        assert!(whole.contains("https://c.example/"), "{whole}");
        assert!(!whole.contains("z.example/\""), "{whole}");
        assert!(
            whole.contains("disabled: [SourceConfig { id: SourceId(\"https://d.example/rss\")"),
            "{whole}"
        );
    }

    #[test]
    fn problems_of_sources_read_piece_by_piece_name_their_place_in_the_file() {
        let text = format!(
            "{HEAD}[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"not a url\"\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"soon\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"5s\"\n"
        );
        let (piecewise, parsed, whole) = both(&text);
        assert_eq!(piecewise.as_ref(), Some(&whole));
        assert_eq!(parsed, whole);
        assert!(
            whole.contains("feeds.toml:10:7: source url `not a url`"),
            "{whole}"
        );
        assert!(whole.contains("feeds.toml:12:7: duplicate source https://a.example/rss: it is already listed on line 8"), "{whole}");
        assert!(whole.contains("feeds.toml:16:12: interval 5s"), "{whole}");
        assert!(!whole.contains("feeds.toml:13:"), "{whole}");
    }

    #[test]
    fn a_file_that_does_not_read_piece_by_piece_is_read_whole_with_the_same_error() {
        let source = "[[source]]\nurl = \"https://a.example/rss\"\n";
        for text in [
            format!("{HEAD}{source}[[source]]\nurl = \"https://b.example/rss\n"),
            format!(
                "{HEAD}{source}[[source]]\nurl = \"https://b.example/rss\"\nintervall = \"5m\"\n"
            ),
            format!("{HEAD}{source}[publish]\ntitle = \"T\"\n{source}"),
            format!(
                "{HEAD}{source}[[source]]\nurl = \"https://b.example/rss\"\n[source]\nname = \"x\"\n"
            ),
            format!("{HEAD}source = []\n{source}"),
            format!("{HEAD}[source.selectors]\nitem = \"li\"\n{source}"),
            format!("{HEAD}{source}[[source]]\n"),
            format!("{HEAD}{source}x = 1\n"),
        ] {
            let (piecewise, parsed, whole) = both(&text);
            assert_eq!(piecewise, None, "{text}");
            assert_eq!(parsed, whole, "{text}");
            assert!(whole.starts_with("error: "), "{text}: {whole}");
        }
        // Valid, but read only whole: a section after the sources, a source header
        // written in another way.
        for text in [
            format!("{source}[server]\nlisten = \"127.0.0.1:0\"\n"),
            format!("{HEAD}[[ source ]]\nurl = \"https://b.example/rss\"\n{source}"),
        ] {
            let (piecewise, parsed, whole) = both(&text);
            assert_eq!(piecewise, None);
            assert_eq!(parsed, whole);
            assert!(
                whole.contains("SourceId(\"https://a.example/rss\")"),
                "{whole}"
            );
        }
    }

    /// What `config` holds as a daemon holds it, each source marked so that one
    /// taken over by a reload can be told from one read again.
    fn in_force(
        config: Config,
    ) -> (
        Arc<SourceTexts>,
        Vec<Arc<SourceConfig>>,
        Vec<Arc<SourceConfig>>,
    ) {
        let mark = |mut source: SourceConfig| {
            source.tags.push("taken over".into());
            Arc::new(source)
        };
        let enabled = config.sources.into_iter().map(mark).collect();
        let disabled = config.disabled.into_iter().map(mark).collect();
        (
            config.texts.expect("read piece by piece"),
            enabled,
            disabled,
        )
    }

    #[test]
    fn a_reload_takes_over_the_sources_whose_table_did_not_change() {
        let path = Path::new("feeds.toml");
        let a = "[[source]]\nurl = \"https://a.example/rss\"\nname = \"A\"\n";
        let b = "[[source]]\nurl = \"https://b.example/rss\"\nenabled = false\n";
        let first = super::super::parse(path, &format!("{HEAD}{a}{b}"), None).unwrap();
        let (texts, enabled, disabled) = in_force(first);
        let previous = Previous {
            texts: &texts,
            enabled: &enabled,
            disabled: &disabled,
        };
        let reload = |text: &str| super::super::reparse(path, text, None, Some(&previous));
        let tags = |sources: &[Arc<SourceConfig>]| -> Vec<(String, Vec<String>)> {
            sources
                .iter()
                .map(|s| (s.id.0.clone(), s.tags.clone()))
                .collect()
        };
        let taken = |url: &str| (url.to_string(), vec!["taken over".to_string()]);
        let read = |url: &str| (url.to_string(), vec![]);

        let same = reload(&format!("{HEAD}{a}{b}")).unwrap();
        assert_eq!(tags(&same.enabled), [taken("https://a.example/rss")]);
        assert_eq!(tags(&same.disabled), [taken("https://b.example/rss")]);
        // The entries in force themselves, not copies.
        assert!(Arc::ptr_eq(&same.enabled[0], &enabled[0]));
        assert!(Arc::ptr_eq(&same.disabled[0], &disabled[0]));
        assert!(same.config.sources.is_empty() && same.config.disabled.is_empty());
        // A new source and a changed one are read, in the file's order.
        let c = "[[source]]\nurl = \"https://c.example/rss\"\n";
        let b_on = "[[source]]\nurl = \"https://b.example/rss\"\n";
        let changed = reload(&format!("{HEAD}{c}{a}{b_on}")).unwrap();
        assert_eq!(
            tags(&changed.enabled),
            [
                read("https://c.example/rss"),
                taken("https://a.example/rss"),
                read("https://b.example/rss")
            ]
        );
        assert!(changed.disabled.is_empty());
        // Another default interval: every source is read again.
        let slower = reload(&format!("[poll]\ninterval = \"30m\"\n{a}")).unwrap();
        assert_eq!(tags(&slower.enabled), [read("https://a.example/rss")]);
        // A problem: those of a first load, the first of two sources read again.
        let text = format!("{HEAD}{a}{b_on}{a}");
        let problems = reload(&text).unwrap_err().to_string();
        assert_eq!(
            problems,
            super::super::parse(path, &text, None)
                .unwrap_err()
                .to_string()
        );
        assert!(
            problems.contains(
                ":13:7: duplicate source https://a.example/rss: it is already listed on line 8"
            ),
            "{problems}"
        );
        // A file that does not read piece by piece is read whole.
        let whole = reload(&format!("{a}[poll]\ninterval = \"20m\"\n")).unwrap();
        assert_eq!(tags(&whole.enabled), [read("https://a.example/rss")]);
        // A reload of a config that was read whole: nothing to take over.
        let whole = super::super::reparse(path, &format!("{HEAD}{a}"), None, None).unwrap();
        assert_eq!(tags(&whole.enabled), [read("https://a.example/rss")]);
    }

    #[test]
    fn a_reload_reads_again_the_secret_files_of_a_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds.toml");
        std::fs::write(dir.path().join("password"), "one\n").unwrap();
        let text = format!(
            "{HEAD}[[source]]\nurl = \"https://a.example/rss\"\nusername = \"me\"\npassword_file = \"password\"\n"
        );
        let (texts, enabled, disabled) = in_force(super::super::parse(&path, &text, None).unwrap());
        assert_eq!(
            enabled[0].request.basic_auth,
            Some(("me".into(), Some("one".into())))
        );
        std::fs::write(dir.path().join("password"), "two\n").unwrap();
        let previous = Previous {
            texts: &texts,
            enabled: &enabled,
            disabled: &disabled,
        };
        let again = super::super::reparse(&path, &text, None, Some(&previous)).unwrap();
        assert_eq!(
            again.enabled[0].request.basic_auth,
            Some(("me".into(), Some("two".into())))
        );
        assert!(again.enabled[0].tags.is_empty());
    }
}
