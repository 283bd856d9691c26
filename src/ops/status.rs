//! Each source's health, for people: `GET /sources` (HTML), `GET /sources.json` and
//! `tributary sources` (a text table).
//!
//! A status is built from the config (name, URL, tags), the source's remembered
//! [`SourceState`] in the store (last success, last error, next poll) and its item
//! count (the daemon's last count, kept in `item_counts`, or a fresh count when the
//! command reads a stopped daemon's store). Nothing here polls or writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write};

use crate::config::SourceConfig;
use crate::item::{SourceId, SourceState};
use crate::render::escape_markup;
use crate::store::{Store, StoreError};

/// Where a source stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not polled yet.
    Pending,
    /// The last poll succeeded.
    Ok,
    /// The last poll failed, once (or during a network outage): retried soon.
    Failing,
    /// Two or more polls in a row failed: each retry waits twice as long.
    BackingOff,
    /// The server answered 410 Gone: not polled until its entry in the config changes.
    Gone,
    /// `enabled = false` in the config: kept there, not polled.
    Disabled,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pending => "pending",
            Status::Ok => "ok",
            Status::Failing => "failing",
            Status::BackingOff => "backing off",
            Status::Gone => "gone",
            Status::Disabled => "disabled",
        })
    }
}

/// One row of the table: what `/sources.json` serves and `tributary sources` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The public id, as in `/sources/{id}.xml`.
    pub id: String,
    pub name: String,
    /// The URL in `feeds.toml`.
    pub url: String,
    /// Where it is fetched from now, when it has moved permanently.
    pub moved_to: Option<String>,
    pub tags: Vec<String>,
    pub status: Status,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub next_poll: Option<DateTime<Utc>>,
    /// Items in the store; `None` when not counted yet.
    pub items: Option<u64>,
    /// In a cluster: the partition of the source's host, the node holding it now
    /// (none while it is free or expired), and whether this node polls the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polled_here: Option<bool>,
}

/// The status of one source from its config and remembered state.
pub fn source_status(
    source: &SourceConfig,
    state: &SourceState,
    items: Option<u64>,
) -> SourceStatus {
    let status = if state.gone == Some(source.fingerprint()) {
        Status::Gone
    } else if state.consecutive_failures >= 2 {
        Status::BackingOff
    } else if state.last_error.is_some() {
        Status::Failing
    } else if state.last_attempt.is_none() && state.last_success.is_none() {
        Status::Pending
    } else {
        Status::Ok
    };
    SourceStatus {
        id: source.id.slug(),
        name: source.display_name(state.title.as_deref()),
        url: source.shown_url(),
        moved_to: state.effective_url.as_deref().map(|url| source.show(url)),
        tags: source.tags.clone(),
        status,
        last_success: state.last_success,
        last_attempt: state.last_attempt,
        last_error: state.last_error.as_deref().map(|error| source.scrub(error)),
        consecutive_failures: state.consecutive_failures,
        next_poll: state.next_poll,
        items,
        partition: None,
        owner: None,
        polled_here: None,
    }
}

/// The status of every configured source, in config order; `items` gives a source's
/// item count.
pub fn collect<'a>(
    sources: impl IntoIterator<Item = &'a SourceConfig>,
    store: &Store,
    mut items: impl FnMut(&SourceId) -> Option<u64>,
) -> Result<Vec<SourceStatus>, StoreError> {
    sources
        .into_iter()
        .map(|source| {
            let state = store.source_state(&source.id)?;
            Ok(source_status(source, &state, items(&source.id)))
        })
        .collect()
}

/// The status of every source with `enabled = false`: what it last did, marked
/// disabled, with no next poll.
pub fn collect_disabled<'a>(
    sources: impl IntoIterator<Item = &'a SourceConfig>,
    store: &Store,
    items: impl FnMut(&SourceId) -> Option<u64>,
) -> Result<Vec<SourceStatus>, StoreError> {
    let mut statuses = collect(sources, store, items)?;
    for status in &mut statuses {
        status.status = Status::Disabled;
        status.next_poll = None;
    }
    Ok(statuses)
}

/// What `tributary reset` forgot of a source's state, in words.
pub fn forgotten(before: &SourceState) -> String {
    let mut parts = vec![format!("{} failures", before.consecutive_failures)];
    if before.gone.is_some() {
        parts.push("410 Gone".to_string());
    }
    if let Some(at) = before.next_poll {
        parts.push(format!("next poll {}", at.format("%Y-%m-%d %H:%M:%S UTC")));
    }
    format!("forgot {}", parts.join(", "))
}

/// `/sources.json`: `{"sources": [...]}`.
pub fn render_json(statuses: &[SourceStatus]) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({ "sources": statuses }))
        .expect("statuses serialize")
}

/// Reads what [`render_json`] wrote.
pub fn parse_json(body: &[u8]) -> Result<Vec<SourceStatus>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Listing {
        sources: Vec<SourceStatus>,
    }
    serde_json::from_slice::<Listing>(body).map(|listing| listing.sources)
}

/// How long ago (or from now) `at` is, in the largest whole unit: `5m ago`, `in 2h`.
fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let (abs, ago) = (secs.unsigned_abs(), secs >= 0);
    let amount = match abs {
        0..60 => format!("{abs}s"),
        60..3600 => format!("{}m", abs / 60),
        3600..86400 => format!("{}h", abs / 3600),
        _ => format!("{}d", abs / 86400),
    };
    if ago {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

fn when(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    at.map_or_else(|| "never".to_string(), |at| relative(at, now))
}

/// The table `tributary sources` prints: one line per source, then its error.
pub fn render_table(statuses: &[SourceStatus], now: DateTime<Utc>) -> String {
    let mut table = Table::new(statuses, now);
    let mut out = table.header();
    out.push_str(&table.rows(statuses));
    out.push_str(&table.footer());
    out
}

/// The table of [`render_table`] written a page at a time, for lists too long to
/// hold at once: the name column is as wide as the first page needs, and the footer
/// sums every page.
pub struct Table {
    name_width: usize,
    now: DateTime<Utc>,
    sources: usize,
    failing: usize,
    items: u64,
}

impl Table {
    /// A table sized for `first`, its first page.
    pub fn new(first: &[SourceStatus], now: DateTime<Utc>) -> Table {
        let name_width = first
            .iter()
            .map(|s| s.name.chars().count())
            .chain([4])
            .max()
            .unwrap_or(4)
            .min(40);
        Table {
            name_width,
            now,
            sources: 0,
            failing: 0,
            items: 0,
        }
    }

    pub fn header(&self) -> String {
        let name_width = self.name_width;
        format!(
            "{:<16}  {:<name_width$}  {:<11}  {:>7}  {:<13}  {:<13}  URL\n",
            "ID", "NAME", "STATUS", "ITEMS", "LAST SUCCESS", "NEXT POLL"
        )
    }

    /// The lines of `statuses`, counted for the footer.
    pub fn rows(&mut self, statuses: &[SourceStatus]) -> String {
        let (name_width, now) = (self.name_width, self.now);
        let mut out = String::new();
        for s in statuses {
            let name: String = s.name.chars().take(name_width).collect();
            let items = s.items.map_or_else(|| "-".to_string(), |n| n.to_string());
            let next = match s.status {
                Status::Gone | Status::Disabled => "never".to_string(),
                _ => when(s.next_poll, now),
            };
            let _ = writeln!(
                out,
                "{:<16}  {name:<name_width$}  {:<11}  {items:>7}  {:<13}  {next:<13}  {}",
                s.id,
                s.status.to_string(),
                when(s.last_success, now),
                s.url
            );
            if let Some(error) = &s.last_error {
                let _ = writeln!(out, "{:<16}  error: {error}", "");
            }
            if let Some(part) = s.partition {
                let node = s.owner.as_deref().unwrap_or("no node now");
                let _ = writeln!(out, "{:<16}  partition {part}, polled by {node}", "");
            }
            self.sources += 1;
            self.failing += usize::from(matches!(s.status, Status::Failing | Status::BackingOff));
            self.items += s.items.unwrap_or(0);
        }
        out
    }

    pub fn footer(&self) -> String {
        format!(
            "{} sources, {} failing, {} items\n",
            self.sources, self.failing, self.items
        )
    }
}

/// The stylesheet, in the spirit of the `/` page: system fonts, a plain table, muted
/// details, dark mode when the device asks for it.
/// The page's inline `<style>`; `http` allows exactly it in its Content-Security-Policy.
pub const STYLE: &str = "\
:root{color-scheme:light dark;--muted:#666;--rule:#ddd;--link:#0b57d0;--bad:#b3261e;--warn:#8a5a00;--good:#1e7d32}
@media (prefers-color-scheme:dark){:root{--muted:#9a9a9a;--rule:#333;--link:#8ab4f8;--bad:#f2b8b5;--warn:#f0c674;--good:#81c995}}
body{margin:0 auto;max-width:72rem;padding:1rem;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}
h1{margin:.2rem 0;font-size:1.5rem}
header p{margin:.2rem 0 .6rem;color:var(--muted)}
nav a,nav span{margin-right:.8rem}
footer{margin-top:.6rem}
a{color:var(--link);text-decoration:none}
a:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--rule);vertical-align:top}
th{font-weight:600;font-size:.875rem}
td.n{text-align:right;font-variant-numeric:tabular-nums}
time{font-variant-numeric:tabular-nums;white-space:nowrap}
.url,.err{display:block;color:var(--muted);font-size:.8rem;overflow-wrap:anywhere}
.err{color:var(--bad)}
.ok{color:var(--good)}.failing,.backing_off,.gone{color:var(--bad)}.pending{color:var(--warn)}.disabled{color:var(--muted)}
";

/// Where a page of `/sources` stands in the whole list.
#[derive(Clone, Debug, Default)]
pub struct PageHeader<'a> {
    /// The site's title.
    pub title: &'a str,
    /// Sources in all, and those whose last poll failed.
    pub total: usize,
    pub failing: usize,
    /// The place (from 0) of the page's first source.
    pub first: usize,
    /// The query of the next page, when there is one.
    pub next: Option<String>,
    /// In a cluster, a line on the nodes and their partitions.
    pub cluster: Option<String>,
}

/// `/sources`: a page of the table. Times are UTC, with the relative time beside them.
pub fn render_html(statuses: &[SourceStatus], page: &PageHeader, now: DateTime<Utc>) -> Vec<u8> {
    let title = page.title;
    let mut out = String::with_capacity(2048 + statuses.len() * 600);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>Sources · ");
    escape_markup(title, &mut out);
    let _ = writeln!(out, "</title>\n<style>\n{STYLE}</style>\n</head>\n<body>");
    out.push_str("<header>\n<h1>Sources</h1>\n<p>");
    let _ = write!(out, "{} sources, {} failing · ", page.total, page.failing);
    escape_markup(title, &mut out);
    out.push_str("</p>\n");
    if let Some(cluster) = &page.cluster {
        out.push_str("<p>");
        escape_markup(cluster, &mut out);
        out.push_str("</p>\n");
    }
    let nav = page_nav(statuses.len(), page);
    out.push_str(&nav);
    out.push_str("</header>\n<main>\n");
    out.push_str("<table>\n<thead><tr><th>Source</th><th>Status</th><th>Items</th><th>Last success</th><th>Next poll</th></tr></thead>\n<tbody>\n");
    for s in statuses {
        out.push_str("<tr><td><a href=\"sources/");
        escape_markup(&s.id, &mut out);
        out.push_str(".xml\">");
        escape_markup(&s.name, &mut out);
        out.push_str("</a><span class=\"url\">");
        escape_markup(&s.url, &mut out);
        out.push_str("</span>");
        if let Some(moved) = &s.moved_to {
            out.push_str("<span class=\"url\">moved to ");
            escape_markup(moved, &mut out);
            out.push_str("</span>");
        }
        if let Some(part) = s.partition {
            node_note(s, part, &mut out);
        }
        if let Some(error) = &s.last_error {
            out.push_str("<span class=\"err\">");
            escape_markup(error, &mut out);
            out.push_str("</span>");
        }
        let status = serde_json::to_value(s.status).expect("a unit variant serializes");
        let _ = write!(
            out,
            "</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td>",
            status.as_str().unwrap_or_default(),
            s.status,
            s.items.map_or_else(|| "–".to_string(), |n| n.to_string())
        );
        time_cell(s.last_success, now, &mut out);
        out.push_str("</td><td>");
        if matches!(s.status, Status::Gone | Status::Disabled) {
            out.push_str("never");
        } else {
            time_cell(s.next_poll, now, &mut out);
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</main>\n<footer>\n");
    out.push_str(&nav);
    out.push_str("</footer>\n</body>\n</html>\n");
    out.into_bytes()
}

/// Which node polls a source of a cluster: "polled here", "polled by n2" or "no
/// node holds it now", with its partition.
fn node_note(s: &SourceStatus, part: u32, out: &mut String) {
    out.push_str("<span class=\"url\">");
    match (s.polled_here, &s.owner) {
        (Some(true), _) => out.push_str("polled here"),
        (_, Some(owner)) => {
            out.push_str("polled by ");
            escape_markup(owner, out);
        }
        (_, None) => out.push_str("no node holds it now"),
    }
    let _ = write!(out, " · partition {part}</span>");
}

/// The links of a page of `/sources`: the other outputs, which sources it shows, the
/// first and the next page.
fn page_nav(rows: usize, page: &PageHeader) -> String {
    let mut nav = String::from(
        "<nav><a href=\"./\">Latest news</a><a href=\"sources.json\">JSON</a><a href=\"opml\">OPML</a>",
    );
    if rows < page.total {
        let _ = write!(
            nav,
            "<span>{}–{} of {}</span>",
            page.first + usize::from(rows > 0),
            page.first + rows,
            page.total
        );
    }
    if page.first > 0 {
        nav.push_str("<a href=\"sources\">First page</a>");
    }
    if let Some(next) = &page.next {
        nav.push_str("<a rel=\"next\" href=\"sources?");
        escape_markup(next, &mut nav);
        nav.push_str("\">Next page</a>");
    }
    nav.push_str("</nav>\n");
    nav
}

fn time_cell(at: Option<DateTime<Utc>>, now: DateTime<Utc>, out: &mut String) {
    match at {
        Some(at) => {
            let _ = write!(
                out,
                "<time datetime=\"{}\" title=\"{}\">{}</time>",
                at.to_rfc3339(),
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                relative(at, now)
            );
        }
        None => out.push_str("never"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Interval;

    fn source(url: &str) -> SourceConfig {
        let text = format!("[[source]]\nurl = \"{url}\"\nname = \"A <&> B\"\n");
        let mut config = crate::config::parse(std::path::Path::new("t.toml"), &text, None).unwrap();
        let mut source = config.sources.remove(0);
        source.interval = Interval::Fixed(std::time::Duration::from_secs(60));
        source
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn statuses_follow_the_remembered_state() {
        let s = source("http://a.example/rss");
        let mut state = SourceState::default();
        assert_eq!(source_status(&s, &state, None).status, Status::Pending);
        state.last_attempt = Some(at(100));
        state.last_success = Some(at(100));
        assert_eq!(source_status(&s, &state, Some(3)).status, Status::Ok);
        state.last_error = Some("fetch: boom".into());
        state.consecutive_failures = 1;
        assert_eq!(source_status(&s, &state, None).status, Status::Failing);
        state.consecutive_failures = 2;
        assert_eq!(source_status(&s, &state, None).status, Status::BackingOff);
        state.gone = Some(s.fingerprint());
        assert_eq!(source_status(&s, &state, None).status, Status::Gone);
        // Gone under an older entry for the same URL: polled again, so not gone.
        state.gone = Some(s.fingerprint().wrapping_add(1));
        assert_eq!(source_status(&s, &state, None).status, Status::BackingOff);
    }

    #[test]
    fn json_round_trips_and_html_escapes() {
        let s = source("http://a.example/rss");
        let state = SourceState {
            last_attempt: Some(at(100)),
            last_error: Some("parse: <bad>".into()),
            consecutive_failures: 1,
            ..SourceState::default()
        };
        let statuses = vec![source_status(&s, &state, Some(7))];
        let json = render_json(&statuses);
        assert_eq!(parse_json(&json).unwrap(), statuses);
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["sources"][0]["status"], "failing");
        assert_eq!(value["sources"][0]["items"], 7);
        let page = PageHeader {
            title: "News",
            total: 1,
            failing: 1,
            ..PageHeader::default()
        };
        let html = String::from_utf8(render_html(&statuses, &page, at(160))).unwrap();
        assert!(html.contains("1 sources, 1 failing"));
        assert!(!html.contains("Next page"));
        let page = PageHeader {
            total: 300,
            first: 100,
            next: Some("limit=1&after=a&b".into()),
            ..page
        };
        let html = String::from_utf8(render_html(&statuses, &page, at(160))).unwrap();
        assert!(html.contains("101–101 of 300"), "{html}");
        assert!(
            html.contains("<a rel=\"next\" href=\"sources?limit=1&amp;after=a&amp;b\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"sources\">First page</a>"),
            "{html}"
        );
        assert!(html.contains("A &lt;&amp;&gt; B"));
        assert!(html.contains("parse: &lt;bad&gt;"));
        assert!(!html.contains("<bad>"));
        let table = render_table(&statuses, at(160));
        assert!(table.contains("failing"), "{table}");
        assert!(table.contains("error: parse: <bad>"), "{table}");
        assert!(
            table.ends_with("1 sources, 1 failing, 7 items\n"),
            "{table}"
        );
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(at(0), at(30)), "30s ago");
        assert_eq!(relative(at(0), at(7200)), "2h ago");
        assert_eq!(relative(at(7200), at(0)), "in 2h");
        assert_eq!(relative(at(0), at(3 * 86400)), "3d ago");
    }
}
