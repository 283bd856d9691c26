//! Pages of the source list: `/sources` and `/sources.json` serve at most
//! [`MAX_PAGE`] sources at once (by default [`DEFAULT_PAGE`]), in config order, with a
//! link to the next page. A page is asked for with `?limit=N&after=ID`, `ID` being the
//! public id of the last source of the page before (a cursor, not an offset, so a
//! reload between two pages neither repeats nor skips a source that stays).
//!
//! With 100 000 sources one page costs what 100 rows cost: the sources' places by id
//! are indexed once per config ([`SourceList`]), and only the page's source states are
//! read from the store.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;

use super::status::SourceStatus;
use crate::config::{SharedSources, SourceConfig, share};
use crate::item::SourceId;

/// Sources on a page when the request names no `limit`.
pub const DEFAULT_PAGE: usize = 100;
/// The most sources one page holds.
pub const MAX_PAGE: usize = 1000;

/// The configured sources, in config order, then those with `enabled = false`, with
/// each one's place by public id. The lists are the ones the rest of the daemon
/// holds (shared, not copied), and the places are keyed by the number a public id
/// writes out, so a list of 100 000 sources is indexed without a string for each.
#[derive(Debug, Default)]
pub struct SourceList {
    enabled: SharedSources,
    disabled: SharedSources,
    places: HashMap<u64, usize>,
}

impl SourceList {
    pub fn new(enabled: Vec<SourceConfig>, disabled: Vec<SourceConfig>) -> SourceList {
        SourceList::shared(share(enabled), share(disabled))
    }

    /// The list of sources the daemon's other parts share.
    pub fn shared(enabled: SharedSources, disabled: SharedSources) -> SourceList {
        let places = enabled
            .iter()
            .chain(disabled.iter())
            .enumerate()
            .map(|(place, source)| (slug_number(&source.id), place))
            .collect();
        SourceList {
            enabled,
            disabled,
            places,
        }
    }

    /// How many sources are listed, the disabled ones included.
    pub fn len(&self) -> usize {
        self.enabled.len() + self.disabled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source at `place`.
    pub fn get(&self, place: usize) -> &SourceConfig {
        match place.checked_sub(self.enabled.len()) {
            None => &self.enabled[place],
            Some(disabled) => &self.disabled[disabled],
        }
    }

    /// The place of the source whose public id is `slug`.
    fn place(&self, slug: &str) -> Option<usize> {
        self.places.get(&parse_slug(slug)?).copied()
    }

    /// The source whose public id is `slug`, and whether it is enabled.
    pub fn find(&self, slug: &str) -> Option<(&SourceConfig, bool)> {
        let place = self.place(slug)?;
        Some((self.get(place), place < self.enabled.len()))
    }

    /// The statuses of the sources in `rows`, the disabled ones marked so.
    pub fn statuses(
        &self,
        rows: Range<usize>,
        store: &crate::store::Store,
        mut items: impl FnMut(&SourceId) -> Option<u64>,
    ) -> Result<Vec<SourceStatus>, crate::store::StoreError> {
        let count = self.enabled.len();
        let (start, end) = (rows.start, rows.end);
        let enabled = &self.enabled[start.min(count)..end.min(count)];
        let disabled = &self.disabled[start.max(count) - count..end.max(count) - count];
        let mut statuses = super::status::collect(enabled.iter().map(|s| &**s), store, &mut items)?;
        statuses.extend(super::status::collect_disabled(
            disabled.iter().map(|s| &**s),
            store,
            items,
        )?);
        Ok(statuses)
    }

    /// The rows `query` asks for; an error (for a `400`) names an unknown cursor.
    pub fn page(&self, query: &PageQuery) -> Result<Range<usize>, String> {
        let start = match &query.after {
            None => 0,
            Some(after) => match self.place(after) {
                Some(place) => place + 1,
                None => {
                    return Err(format!(
                        "no source `{after}` is listed (it may have been removed): start again without `after`"
                    ));
                }
            },
        };
        Ok(start..(start + query.limit).min(self.len()))
    }

    /// The query of the page after `rows`, when sources follow them.
    pub fn next(&self, query: &PageQuery, rows: &Range<usize>) -> Option<String> {
        (rows.end < self.len() && rows.end > rows.start).then(|| {
            format!(
                "limit={}&after={}",
                query.limit,
                self.get(rows.end - 1).id.slug()
            )
        })
    }
}

/// The number a source's public id ([`SourceId::slug`]) writes out in hex.
fn slug_number(id: &SourceId) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.0.as_bytes())
}

/// The number of a public id: exactly the 16 lowercase hex digits
/// [`SourceId::slug`] writes, else `None`.
fn parse_slug(slug: &str) -> Option<u64> {
    let digits = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    (slug.len() == 16 && slug.bytes().all(|b| digits(&b)))
        .then(|| u64::from_str_radix(slug, 16).ok())
        .flatten()
}

/// What a request for a page of sources asks: `?limit=N&after=ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    pub after: Option<String>,
}

impl PageQuery {
    /// Reads `limit` (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]) and `after`; other
    /// parameters are ignored, a bad or repeated one is an error.
    pub fn parse(query: Option<&str>) -> Result<PageQuery, String> {
        let mut page = PageQuery {
            limit: DEFAULT_PAGE,
            after: None,
        };
        let (mut limit_seen, mut after_seen) = (false, false);
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "limit" => {
                    if std::mem::replace(&mut limit_seen, true) {
                        return Err("give limit once".into());
                    }
                    page.limit = match value.parse::<usize>() {
                        Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                        _ => {
                            return Err(format!(
                                "limit must be a whole number from 1 to {MAX_PAGE}, not `{value}`"
                            ));
                        }
                    };
                }
                "after" => {
                    if std::mem::replace(&mut after_seen, true) {
                        return Err("give after once".into());
                    }
                    page.after = Some(value.into_owned());
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

/// `/sources.json`: one page of statuses, how many sources there are in all and how
/// many of them fail, and the link to the next page (relative to this one, as
/// `sources.json?limit=100&after=…`; absent on the last page).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub sources: Vec<SourceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// Sources whose last poll failed, among all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// In a cluster: this node, its partitions and the live nodes'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::cluster::ClusterSummary>,
}

impl Listing {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("statuses serialize")
    }

    pub fn from_json(body: &[u8]) -> Result<Listing, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> SourceList {
        let text: String = (0..n)
            .map(|i| format!("[[source]]\nurl = \"http://a.example/{i}.xml\"\n"))
            .collect();
        let config = crate::config::parse(std::path::Path::new("feeds.toml"), &text, None).unwrap();
        SourceList::new(config.sources, config.disabled)
    }

    #[test]
    fn pages_follow_each_other_to_the_end() {
        let list = list(250);
        let mut query = PageQuery::parse(None).unwrap();
        assert_eq!(query.limit, DEFAULT_PAGE);
        let mut seen = Vec::new();
        loop {
            let rows = list.page(&query).unwrap();
            assert!(rows.len() <= DEFAULT_PAGE);
            seen.extend(rows.clone());
            match list.next(&query, &rows) {
                Some(next) => query = PageQuery::parse(Some(&next)).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, (0..250).collect::<Vec<_>>());
        // A page that ends exactly at the end has no next.
        let query = PageQuery::parse(Some("limit=50&after=".to_string().as_str()));
        assert!(list.page(&query.unwrap()).is_err());
        let last = list.get(199).id.slug();
        let query = PageQuery::parse(Some(&format!("limit=50&after={last}"))).unwrap();
        let rows = list.page(&query).unwrap();
        assert_eq!(rows, 200..250);
        assert_eq!(list.next(&query, &rows), None);
    }

    #[test]
    fn a_page_of_statuses_spans_the_enabled_and_the_disabled_sources() {
        let text: String = (0..5)
            .map(|i| {
                let enabled = if i < 3 { "" } else { "enabled = false\n" };
                format!("[[source]]\nurl = \"http://a.example/{i}.xml\"\n{enabled}")
            })
            .collect();
        let config = crate::config::parse(std::path::Path::new("feeds.toml"), &text, None).unwrap();
        let list = SourceList::new(config.sources, config.disabled);
        let store = crate::store::Store::temporary().unwrap();
        let disabled = |rows: Range<usize>| {
            let statuses = list.statuses(rows, &store, |_| None).unwrap();
            statuses
                .iter()
                .map(|s| s.status == super::super::status::Status::Disabled)
                .collect::<Vec<_>>()
        };
        assert_eq!(disabled(0..2), [false, false]);
        assert_eq!(disabled(2..4), [false, true]);
        assert_eq!(disabled(4..5), [true]);
        assert_eq!(disabled(0..5), [false, false, false, true, true]);
        assert_eq!(
            list.find(&list.get(3).id.slug()).map(|(_, on)| on),
            Some(false)
        );
        assert!(list.find(&list.get(3).id.slug().to_uppercase()).is_none());
    }

    #[test]
    fn bad_queries_are_refused() {
        assert_eq!(
            PageQuery::parse(Some("limit=5&x=1")).unwrap(),
            PageQuery {
                limit: 5,
                after: None
            }
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "limit=1&limit=2",
            "after=a&after=b",
        ] {
            assert!(PageQuery::parse(Some(bad)).is_err(), "{bad}");
        }
        let unknown = PageQuery::parse(Some("after=0123456789abcdef")).unwrap();
        assert!(list(3).page(&unknown).unwrap_err().contains("start again"));
    }
}
