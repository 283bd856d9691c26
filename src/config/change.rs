//! `tributary remove`, `enable` and `disable`: one source's `[[source]]` table taken
//! out of the text of `feeds.toml`, or its `enabled` key set, every other line and
//! comment kept (toml_edit, with `edit`'s byte-order mark and line endings).
//!
//! A source is named by its URL (as written, or any spelling that parses to the same
//! URL), its id (`/sources/{id}.xml`, `tributary sources`), or the start of its id
//! (at least [`MIN_ID_PREFIX`] digits) when that names one source only. Pure text in,
//! text out: the command checks the result with `config::parse` and writes the file.

use super::edit::{BOM, EditError, written_like};
use crate::item::SourceId;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value, value};
use url::Url;

/// The shortest start of an id that names a source.
pub const MIN_ID_PREFIX: usize = 6;

/// Why a source could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error(
        "no source matches `{0}`; give its URL as written in the config or its id (`tributary sources` lists both)"
    )]
    NoMatch(String),
    #[error("`{target}` matches {} sources ({}); give the whole URL or id", .matches.len(), .matches.join(", "))]
    Ambiguous {
        target: String,
        matches: Vec<String>,
    },
}

/// What to do with the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Remove,
    /// `enabled = false` set (`false`), or the key removed (`true`).
    Enable(bool),
}

/// `text` with `change` made to the one source `target` names; also that source's
/// URL as written.
pub fn change_source(
    text: &str,
    target: &str,
    change: Change,
) -> Result<(String, String), ChangeError> {
    let body = text.strip_prefix(BOM).unwrap_or(text);
    let mut document: DocumentMut = body.parse().map_err(EditError::from)?;
    let url = match document.get_mut("source") {
        Some(Item::ArrayOfTables(tables)) => {
            let urls: Vec<String> = tables.iter().map(|t| url_of(t.get("url"))).collect();
            let at = pick(&urls, target)?;
            match change {
                Change::Remove => {
                    let removed = tables.remove(at);
                    let kept = kept_comments(&removed);
                    match tables.get_mut(at) {
                        Some(next) => prepend(next, &kept),
                        None => prepend_trailing(&mut document, &kept),
                    }
                }
                Change::Enable(on) => set_enabled(tables.get_mut(at).expect("picked"), on),
            }
            urls[at].clone()
        }
        Some(Item::Value(Value::Array(array))) if array.iter().all(Value::is_inline_table) => {
            let urls: Vec<String> = array
                .iter()
                .map(|v| v.as_inline_table().and_then(|t| t.get("url")))
                .map(|v| v.and_then(Value::as_str).unwrap_or_default().to_string())
                .collect();
            let at = pick(&urls, target)?;
            match change {
                Change::Remove => array.remove(at),
                Change::Enable(on) => {
                    let entry = array.get_mut(at).and_then(Value::as_inline_table_mut);
                    set_enabled_inline(entry.expect("picked"), on);
                    return Ok((written_like(text, document.to_string()), urls[at].clone()));
                }
            };
            urls[at].clone()
        }
        None => return Err(ChangeError::NoMatch(target.to_string())),
        Some(_) => return Err(EditError::NotSources.into()),
    };
    Ok((written_like(text, document.to_string()), url))
}

fn url_of(item: Option<&Item>) -> String {
    item.and_then(Item::as_str).unwrap_or_default().to_string()
}

/// The index of the one URL of `urls` (as written in the config) that `target`
/// names.
pub fn pick(urls: &[String], target: &str) -> Result<usize, ChangeError> {
    let target = target.trim();
    let parsed = Url::parse(target).ok();
    let same = |url: &str| {
        url.trim() == target || (parsed.is_some() && Url::parse(url.trim()).ok() == parsed)
    };
    let slug = |url: &str| SourceId(url.trim().to_string()).slug();
    let lower = target.to_ascii_lowercase();
    let exact: Vec<usize> = (0..urls.len())
        .filter(|&i| same(&urls[i]) || slug(&urls[i]) == lower)
        .collect();
    let found = if exact.is_empty() && lower.len() >= MIN_ID_PREFIX {
        (0..urls.len())
            .filter(|&i| slug(&urls[i]).starts_with(&lower))
            .collect()
    } else {
        exact
    };
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(ChangeError::NoMatch(target.to_string())),
        many => Err(ChangeError::Ambiguous {
            target: target.to_string(),
            matches: many
                .iter()
                .map(|&i| format!("{} {}", slug(&urls[i]), super::shown_url(&urls[i], &[])))
                .collect(),
        }),
    }
}

/// The comments before a removed table that do not describe it: everything up to
/// the last blank line of its prefix (the paragraph touching the table is its own).
fn kept_comments(removed: &Table) -> String {
    let prefix = removed
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("");
    match prefix.trim_end_matches([' ', '\t']).rfind("\n\n") {
        Some(at) if !prefix[..at].trim().is_empty() => prefix[..at + 2].to_string(),
        _ => String::new(),
    }
}

fn prepend(table: &mut Table, kept: &str) {
    if kept.is_empty() {
        return;
    }
    let own = table
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    table.decor_mut().set_prefix(format!("{kept}{own}"));
}

fn prepend_trailing(document: &mut DocumentMut, kept: &str) {
    if kept.is_empty() {
        return;
    }
    let own = document.trailing().as_str().unwrap_or("").to_string();
    document.set_trailing(format!("{kept}{own}"));
}

/// `enabled = false` right after `url` (`on` false), or no `enabled` key (`on` true).
fn set_enabled(table: &mut Table, on: bool) {
    if on {
        table.remove("enabled");
        return;
    }
    if let Some(enabled) = table.get_mut("enabled") {
        *enabled = value(false);
        return;
    }
    // Keys are kept in insertion order: the ones after `url` go after `enabled`.
    let keys: Vec<String> = table.iter().map(|(key, _)| key.to_string()).collect();
    let after_url = keys.iter().position(|k| k == "url").map_or(0, |at| at + 1);
    let moved: Vec<_> = keys[after_url..]
        .iter()
        .filter_map(|key| table.remove_entry(key))
        .collect();
    table.insert("enabled", value(false));
    for (key, item) in moved {
        table.insert_formatted(&key, item);
    }
}

fn set_enabled_inline(table: &mut InlineTable, on: bool) {
    if on {
        table.remove("enabled");
    } else if let Some(enabled) = table.get_mut("enabled") {
        *enabled = Value::from(false).decorated(" ", " ");
    } else {
        table.insert("enabled", false.into());
        table.fmt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FILE: &str = "# My feeds\n\n[server]\nlisten = \"127.0.0.1:8080\"\n\n# World news\n[[source]]\nurl = \"https://a.example/rss\"\ntags = [\"world\"]\n\n# Tech, in English\n[[source]]\nurl = \"https://b.example/feed\"\nname = \"B\" # the best\n\n# the end\n";

    fn sources(text: &str) -> (Vec<String>, Vec<String>) {
        let config = crate::config::parse(Path::new("feeds.toml"), text, None).unwrap();
        let urls =
            |s: &[crate::config::SourceConfig]| s.iter().map(|s| s.url.to_string()).collect();
        (urls(&config.sources), urls(&config.disabled))
    }

    #[test]
    fn removing_keeps_every_other_line() {
        let (removed, url) = change_source(FILE, "https://a.example/rss", Change::Remove).unwrap();
        assert_eq!(url, "https://a.example/rss");
        assert_eq!(
            removed,
            "# My feeds\n\n[server]\nlisten = \"127.0.0.1:8080\"\n\n# Tech, in English\n[[source]]\nurl = \"https://b.example/feed\"\nname = \"B\" # the best\n\n# the end\n"
        );
        let id = SourceId("https://b.example/feed".into()).slug();
        let (removed, _) = change_source(FILE, &id, Change::Remove).unwrap();
        assert_eq!(sources(&removed).0, ["https://a.example/rss"]);
        assert!(
            removed.ends_with("tags = [\"world\"]\n\n# the end\n"),
            "{removed}"
        );
        assert!(!removed.contains("Tech"), "{removed}");
        // A first source carries the file's head comment: it stays.
        let text = "# My feeds\n\n# A\n[[source]]\nurl = \"https://a.example/rss\"\n";
        let (removed, _) = change_source(text, "https://a.example/rss", Change::Remove).unwrap();
        assert_eq!(removed, "# My feeds\n\n");
    }

    #[test]
    fn sources_are_named_by_url_id_or_id_prefix() {
        let a = SourceId("https://a.example/rss".into()).slug();
        for target in [
            "https://a.example/rss",
            " https://A.EXAMPLE:443/rss ",
            a.as_str(),
            &a.to_ascii_uppercase(),
            &a[..MIN_ID_PREFIX],
        ] {
            let (_, url) = change_source(FILE, target, Change::Remove).unwrap();
            assert_eq!(url, "https://a.example/rss", "{target}");
        }
        for target in [
            "https://c.example/rss",
            "a.example",
            &a[..MIN_ID_PREFIX - 1],
        ] {
            let err = change_source(FILE, target, Change::Remove).unwrap_err();
            assert!(matches!(err, ChangeError::NoMatch(_)), "{target}: {err}");
        }
        assert!(matches!(
            change_source("", "https://a.example/rss", Change::Remove),
            Err(ChangeError::NoMatch(_))
        ));
    }

    #[test]
    fn an_id_prefix_naming_two_sources_is_ambiguous() {
        // Two URLs whose ids share their first MIN_ID_PREFIX digits... found by search.
        let slug = |n: u32| SourceId(format!("https://x.example/{n}")).slug();
        let mut seen = std::collections::HashMap::new();
        let (one, two) = (0..1_000_000u32)
            .find_map(|n| {
                let prefix = slug(n)[..MIN_ID_PREFIX].to_string();
                seen.insert(prefix, n).map(|earlier| (earlier, n))
            })
            .expect("a shared prefix among a million ids");
        let text = format!(
            "[[source]]\nurl = \"https://x.example/{one}\"\n[[source]]\nurl = \"https://x.example/{two}\"\n"
        );
        let err = change_source(&text, &slug(one)[..MIN_ID_PREFIX], Change::Remove).unwrap_err();
        let ChangeError::Ambiguous { matches, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(matches.len(), 2, "{err}");
        assert!(
            err.to_string()
                .contains(&format!("https://x.example/{two}")),
            "{err}"
        );
    }

    #[test]
    fn disabling_and_enabling_round_trips() {
        let (off, _) =
            change_source(FILE, "https://b.example/feed", Change::Enable(false)).unwrap();
        assert!(
            off.contains(
                "url = \"https://b.example/feed\"\nenabled = false\nname = \"B\" # the best\n"
            ),
            "{off}"
        );
        assert_eq!(
            sources(&off),
            (
                vec!["https://a.example/rss".to_string()],
                vec!["https://b.example/feed".to_string()]
            )
        );
        // Disabling twice changes nothing more; enabling gives the file back.
        let (again, _) =
            change_source(&off, "https://b.example/feed", Change::Enable(false)).unwrap();
        assert_eq!(again, off);
        let (on, _) = change_source(&off, "https://b.example/feed", Change::Enable(true)).unwrap();
        assert_eq!(on, FILE);
    }

    #[test]
    fn inline_arrays_bom_and_crlf_are_kept() {
        let text = "\u{feff}source = [\r\n  { url = \"https://a.example/rss\" }, # first\r\n  { url = \"https://b.example/rss\" },\r\n]\r\n";
        let (off, _) = change_source(text, "https://a.example/rss", Change::Enable(false)).unwrap();
        assert!(off.starts_with('\u{feff}'));
        assert!(!off.replace("\r\n", "").contains('\n'), "{off:?}");
        assert_eq!(sources(&off).1, ["https://a.example/rss"]);
        let (removed, _) = change_source(&off, "https://a.example/rss", Change::Remove).unwrap();
        assert_eq!(
            sources(&removed),
            (vec!["https://b.example/rss".to_string()], vec![])
        );
        assert!(removed.starts_with('\u{feff}'));
    }
}
