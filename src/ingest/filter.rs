//! Per-source filters from `feeds.toml`: which normalized items a source keeps.
//!
//! `config` compiles the rules (a bad pattern is a config error with its line and
//! column); the scheduler applies them to each fetched document before the items
//! are stored, so a filtered item never reaches the river. Pure.

use regex::RegexSet;

use crate::ingest::normalize::plain_text;
use crate::item::Item;

/// Which text of an item the rules read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterOn {
    Title,
    /// The summary as plain text, else the content's.
    Summary,
    /// Either: a rule matches when it matches the title or the summary.
    #[default]
    Both,
}

/// A source's `include` and `exclude` rules.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// When set, an item is kept only if one of these matches.
    pub include: Option<RegexSet>,
    /// An item that any of these matches is dropped (even if included).
    pub exclude: Option<RegexSet>,
    pub on: FilterOn,
}

impl Filter {
    /// Whether the filter keeps every item (nothing configured).
    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// Whether `item` passes: matched by an include rule (when there are any) and by
    /// no exclude rule.
    pub fn keeps(&self, item: &Item) -> bool {
        if self.is_empty() {
            return true;
        }
        let title = match self.on {
            FilterOn::Summary => None,
            _ => item.title.as_deref(),
        };
        let summary = match self.on {
            FilterOn::Title => None,
            _ => item
                .summary
                .as_deref()
                .or(item.content.as_deref())
                .and_then(plain_text),
        };
        let matches = |rules: &RegexSet| {
            title.is_some_and(|t| rules.is_match(t))
                || summary.as_deref().is_some_and(|s| rules.is_match(s))
        };
        self.include.as_ref().is_none_or(matches) && !self.exclude.as_ref().is_some_and(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemId;

    fn item(title: &str, summary: &str) -> Item {
        Item {
            id: ItemId("1".into()),
            title: Some(title.into()),
            link: None,
            published: None,
            updated: None,
            summary: Some(summary.into()),
            content: None,
            authors: vec![],
            categories: vec![],
            enclosures: vec![],
            comments: None,
        }
    }

    fn filter(include: &[&str], exclude: &[&str], on: FilterOn) -> Filter {
        let set = |rules: &[&str]| (!rules.is_empty()).then(|| RegexSet::new(rules).unwrap());
        Filter {
            include: set(include),
            exclude: set(exclude),
            on,
        }
    }

    #[test]
    fn include_and_exclude_rules_on_title_summary_or_both() {
        let rust = item("Rust 2.0 released", "<p>A <b>sponsored</b> post</p>");
        let go = item("Go 2.0 released", "<p>Also about Rust</p>");
        let cases = [
            // (include, exclude, on, keeps rust, keeps go)
            (vec![], vec![], FilterOn::Both, true, true),
            (vec!["Rust"], vec![], FilterOn::Title, true, false),
            (vec!["Rust"], vec![], FilterOn::Both, true, true),
            (vec!["Rust"], vec![], FilterOn::Summary, false, true),
            (
                vec!["(?i)^go ", "^Rust"],
                vec![],
                FilterOn::Title,
                true,
                true,
            ),
            (vec![], vec!["sponsored"], FilterOn::Both, false, true),
            (vec![], vec!["sponsored"], FilterOn::Title, true, true),
            // Tags are stripped before matching: "A sponsored post".
            (
                vec![],
                vec!["A sponsored post"],
                FilterOn::Summary,
                false,
                true,
            ),
            (vec!["released"], vec!["^Go"], FilterOn::Title, true, false),
        ];
        for (include, exclude, on, keeps_rust, keeps_go) in cases {
            let filter = filter(&include, &exclude, on);
            assert_eq!(
                filter.keeps(&rust),
                keeps_rust,
                "{include:?} {exclude:?} {on:?}"
            );
            assert_eq!(
                filter.keeps(&go),
                keeps_go,
                "{include:?} {exclude:?} {on:?}"
            );
        }
    }

    #[test]
    fn an_item_without_the_text_is_not_included() {
        let mut bare = item("", "");
        bare.title = None;
        bare.summary = None;
        assert!(!filter(&["x"], &[], FilterOn::Both).keeps(&bare));
        assert!(filter(&[], &["x"], FilterOn::Both).keeps(&bare));
    }
}
