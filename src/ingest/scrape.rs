//! Pure: a web page with a "latest news" list becomes a [`Document`] of the same
//! normalized [`Item`]s the feed path produces, read with CSS selectors.
//!
//! Used for `kind = "html"` sources (by the scheduler, in place of `normalize`) and by
//! `tributary inspect --item …`. [`Rules`] are compiled once, when the config is
//! checked; a page they no longer fit is a [`ScrapeError`], never an empty success, so
//! a site's redesign shows up in the source's status while its stored items stay.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use scraper::{ElementRef, Html, Selector};
use std::collections::HashSet;
use std::fmt;
use url::Url;

use crate::ingest::dates::parse_date;
use crate::ingest::normalize::{Document, FeedInfo, Sanitizer, absolute, plain_text};
use crate::ingest::parse::decode_html;
use crate::item::{Item, ItemId, identity_link};

/// `href`: where a link's target is on an `<a>`.
pub const DEFAULT_LINK_ATTRIBUTE: &str = "href";

/// How to read items off a page, as written in `[source.selectors]` or on the
/// `inspect` command line. Every selector but `item` is matched inside an item (or
/// against the item element itself when nothing inside matches).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RulesText {
    /// One element per news item.
    pub item: String,
    /// The headline.
    pub title: String,
    /// The element carrying the item's link, in `link_attribute`.
    pub link: String,
    /// Default `href`.
    pub link_attribute: Option<String>,
    /// The element carrying the date: its text, or `date_attribute`.
    pub date: Option<String>,
    pub date_attribute: Option<String>,
    /// chrono strftime, e.g. `%H:%M %d.%m.%Y`, read in the source's time zone; without
    /// it the date is read like a feed's (RFC 3339, RFC 2822 and common variants).
    pub date_format: Option<String>,
    /// The element whose HTML becomes the item's summary (sanitized).
    pub summary: Option<String>,
}

/// [`RulesText`] with its selectors compiled.
#[derive(Clone)]
pub struct Rules {
    pub text: RulesText,
    item: Selector,
    title: Selector,
    link: Selector,
    date: Option<Selector>,
    summary: Option<Selector>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source text says everything; compiled selectors only add noise.
        self.text.fmt(f)
    }
}

/// A rule that cannot be used, and which one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("selector `{field}` (`{selector}`) is not valid CSS: {message}")]
pub struct RuleError {
    /// The key: `item`, `title`, `link`, `date` or `summary`.
    pub field: &'static str,
    pub selector: String,
    pub message: String,
}

impl Rules {
    /// Compiles every selector; the first that does not parse is the error.
    pub fn new(text: RulesText) -> Result<Rules, RuleError> {
        let compile = |field: &'static str, css: &str| {
            Selector::parse(css).map_err(|err| RuleError {
                field,
                selector: css.to_string(),
                message: err.to_string(),
            })
        };
        Ok(Rules {
            item: compile("item", &text.item)?,
            title: compile("title", &text.title)?,
            link: compile("link", &text.link)?,
            date: text
                .date
                .as_deref()
                .map(|css| compile("date", css))
                .transpose()?,
            summary: text
                .summary
                .as_deref()
                .map(|css| compile("summary", css))
                .transpose()?,
            text,
        })
    }

    fn link_attribute(&self) -> &str {
        self.text
            .link_attribute
            .as_deref()
            .unwrap_or(DEFAULT_LINK_ATTRIBUTE)
    }
}

/// Why a page gave no items: the selectors no longer fit its markup.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    #[error("selector `item` (`{0}`) matched 0 elements")]
    NoItems(String),
    #[error(
        "selector `item` matched {items} elements, but `link` (`{selector}`) found no `{attribute}` link in any of them"
    )]
    NoLinks {
        items: usize,
        selector: String,
        attribute: String,
    },
    #[error(
        "selector `item` matched {items} elements, but `title` (`{selector}`) found no text in any of them"
    )]
    NoTitles { items: usize, selector: String },
    #[error(
        "selector `date` (`{selector}`) gave no date in {items} items that reads as {format} (the first: `{first}`)"
    )]
    NoDates {
        items: usize,
        selector: String,
        format: String,
        first: String,
    },
}

/// Reads the items `rules` find on `body`, a page fetched from `page_url`. Relative
/// links resolve against the page's `<base href>`, else its URL; dates without a zone
/// are read in `zone`.
pub fn scrape(
    body: &[u8],
    content_type: Option<&str>,
    page_url: &Url,
    rules: &Rules,
    zone: Tz,
) -> Result<Document, ScrapeError> {
    let text = decode_html(body, content_type);
    let page = Html::parse_document(&text);
    let base = page
        .select(&Selector::parse("base[href]").expect("a fixed selector parses"))
        .next()
        .and_then(|b| page_url.join(b.value().attr("href")?.trim()).ok())
        .unwrap_or_else(|| page_url.clone());
    let title = page
        .select(&Selector::parse("title").expect("a fixed selector parses"))
        .next()
        .and_then(|t| plain_text(&t.text().collect::<String>()));

    let elements: Vec<ElementRef> = page.select(&rules.item).collect();
    if elements.is_empty() {
        return Err(ScrapeError::NoItems(rules.text.item.clone()));
    }
    let reader = EntryReader {
        rules,
        zone,
        base: &base,
        // A summary's relative URLs are relative to the page it was read from.
        sanitizer: Sanitizer::new(Some(&base)),
    };
    let mut tally = Tally::default();
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    // Page order: the top of a "latest news" list is its newest.
    for element in elements.iter().take(crate::ingest::normalize::MAX_ENTRIES) {
        let Some(headline) = reader.headline(*element, &mut tally) else {
            continue;
        };
        let id = ItemId(identity_link(&headline.link));
        if !seen.insert(id.clone()) {
            continue;
        }
        items.push(reader.item(*element, id, headline));
    }
    tally.check(elements.len(), rules)?;
    let feed = FeedInfo {
        title,
        link: Some(page_url.to_string()),
        ..FeedInfo::default()
    };
    let left_out = elements
        .len()
        .saturating_sub(crate::ingest::normalize::MAX_ENTRIES);
    Ok(Document::new(feed, items, left_out))
}

/// Reads the listed elements of one page with one source's rules.
struct EntryReader<'a> {
    rules: &'a Rules,
    zone: Tz,
    base: &'a Url,
    sanitizer: Sanitizer,
}

/// What makes an element an item: a link and a title (and a date, when found).
struct Headline {
    link: Url,
    title: String,
    published: Option<DateTime<Utc>>,
}

/// How many elements each rule found something in, for the errors that say which
/// rule no longer fits the page.
#[derive(Default)]
struct Tally {
    linked: usize,
    titled: usize,
    dated: usize,
    first_date_text: Option<String>,
}

impl EntryReader<'_> {
    /// The element's link, title and date, counted in `tally`; `None` without a link
    /// or a title.
    fn headline(&self, element: ElementRef, tally: &mut Tally) -> Option<Headline> {
        let rules = self.rules;
        let link = first(element, &rules.link)
            .and_then(|e| e.value().attr(rules.link_attribute()))
            .and_then(|href| absolute(href, Some(self.base)));
        let title =
            first(element, &rules.title).and_then(|e| plain_text(&e.text().collect::<String>()));
        tally.linked += usize::from(link.is_some());
        tally.titled += usize::from(title.is_some());
        let published = rules.date.as_ref().and_then(|selector| {
            let raw = first(element, selector).and_then(|e| match &rules.text.date_attribute {
                Some(attribute) => e.value().attr(attribute).map(str::to_string),
                None => plain_text(&e.text().collect::<String>()),
            })?;
            let date = read_date(&raw, rules.text.date_format.as_deref(), self.zone);
            tally.first_date_text.get_or_insert(raw);
            tally.dated += usize::from(date.is_some());
            date
        });
        Some(Headline {
            link: link?,
            title: title?,
            published,
        })
    }

    /// The item of an element whose headline was read, with its sanitized summary.
    fn item(&self, element: ElementRef, id: ItemId, headline: Headline) -> Item {
        let summary = self.rules.summary.as_ref().and_then(|selector| {
            let html = first(element, selector)?.inner_html();
            self.sanitizer.clean(&html, false)
        });
        Item {
            id,
            title: Some(headline.title),
            link: Some(headline.link.to_string()),
            published: headline.published,
            updated: None,
            summary,
            content: None,
            authors: Vec::new(),
            categories: Vec::new(),
            enclosures: Vec::new(),
            comments: None,
        }
    }
}

impl Tally {
    /// An error naming the rule that found nothing in any of the `items` elements.
    fn check(self, items: usize, rules: &Rules) -> Result<(), ScrapeError> {
        if self.linked == 0 {
            return Err(ScrapeError::NoLinks {
                items,
                selector: rules.text.link.clone(),
                attribute: rules.link_attribute().to_string(),
            });
        }
        if self.titled == 0 {
            return Err(ScrapeError::NoTitles {
                items,
                selector: rules.text.title.clone(),
            });
        }
        if let Some(selector) = &rules.text.date
            && self.dated == 0
        {
            return Err(ScrapeError::NoDates {
                items,
                selector: selector.clone(),
                format: rules
                    .text
                    .date_format
                    .as_deref()
                    .map_or_else(|| "a date".to_string(), |f| format!("`{f}`")),
                first: self.first_date_text.unwrap_or_default(),
            });
        }
        Ok(())
    }
}

/// The first element inside `item` that `selector` matches, else `item` itself when
/// it matches (a list whose items are the links themselves).
fn first<'a>(item: ElementRef<'a>, selector: &Selector) -> Option<ElementRef<'a>> {
    item.select(selector)
        .next()
        .or_else(|| selector.matches(&item).then_some(item))
}

/// A date as a page writes it: with `format`, a local date and time (or a date alone,
/// taken at midnight) in `zone`, trailing text ignored; without, as feeds write them.
pub fn read_date(text: &str, format: Option<&str>, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let Some(format) = format else {
        return parse_date(text, zone);
    };
    if let Ok((aware, _)) = DateTime::parse_and_remainder(text, format) {
        return Some(aware.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_and_remainder(text, format)
        .map(|(naive, _)| naive)
        .or_else(|_| {
            NaiveDate::parse_and_remainder(text, format)
                .map(|(date, _)| date.and_hms_opt(0, 0, 0).expect("midnight exists"))
        })
        .ok()?;
    // In a DST gap the clock time never happened; the earlier reading of an ambiguous
    // one is as good as the later.
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|local| local.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(item: &str, title: &str, link: &str) -> RulesText {
        RulesText {
            item: item.into(),
            title: title.into(),
            link: link.into(),
            ..RulesText::default()
        }
    }

    const PAGE: &str = r#"<html><head><title>Вести — Новости</title></head><body>
        <div class="news"><h2>Новости</h2>
          <div class="item"><span class="time">22:20 06.02.2026</span> <a href="/news/1?utm_source=x">Первая&nbsp;новость</a><p>Кратко <script>x()</script><b>важно</b> <img src="img/1.jpg"></p></div>
          <div class="item"><span class="time">21:05 06.02.2026</span> <a href="https://other.example/2">Вторая</a></div>
          <div class="item"><span class="time">реклама</span> <span>no link here</span></div>
        </div></body></html>"#;

    fn page_url() -> Url {
        Url::parse("https://vesti.example/section/article-1.html").unwrap()
    }

    #[test]
    fn items_get_titles_absolute_links_local_dates_and_clean_summaries() {
        let mut text = rules("div.news .item", "a", "a");
        text.date = Some(".time".into());
        text.date_format = Some("%H:%M %d.%m.%Y".into());
        text.summary = Some("p".into());
        let rules = Rules::new(text).unwrap();
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        let doc = scrape(PAGE.as_bytes(), None, &page_url(), &rules, moscow).unwrap();
        assert_eq!(doc.feed.title.as_deref(), Some("Вести — Новости"));
        assert_eq!(doc.items.len(), 2);
        let first = &doc.items[0];
        assert_eq!(first.title.as_deref(), Some("Первая новость"));
        assert_eq!(
            first.link.as_deref(),
            Some("https://vesti.example/news/1?utm_source=x")
        );
        assert_eq!(first.id.0, "https://vesti.example/news/1");
        assert_eq!(
            first.published.unwrap().to_rfc3339(),
            "2026-02-06T19:20:00+00:00"
        );
        assert_eq!(
            first.summary.as_deref(),
            Some("Кратко <b>важно</b> <img src=\"https://vesti.example/section/img/1.jpg\">")
        );
        assert_eq!(
            doc.items[1].link.as_deref(),
            Some("https://other.example/2")
        );
    }

    #[test]
    fn selectors_that_no_longer_fit_are_errors() {
        let page = |r: RulesText| {
            scrape(
                PAGE.as_bytes(),
                None,
                &page_url(),
                &Rules::new(r).unwrap(),
                Tz::UTC,
            )
        };
        assert_eq!(
            page(rules("ul.latest li", "a", "a"))
                .unwrap_err()
                .to_string(),
            "selector `item` (`ul.latest li`) matched 0 elements"
        );
        assert!(matches!(
            page(rules(".item", "a", "span.none")),
            Err(ScrapeError::NoLinks { items: 3, .. })
        ));
        assert!(matches!(
            page(rules(".item", "h3", "a")),
            Err(ScrapeError::NoTitles { items: 3, .. })
        ));
        let mut dated = rules(".item", "a", "a");
        dated.date = Some(".time".into());
        dated.date_format = Some("%Y-%m-%d".into());
        let err = page(dated).unwrap_err().to_string();
        assert!(err.contains("the first: `22:20 06.02.2026`"), "{err}");
    }

    #[test]
    fn the_item_itself_can_be_the_link_and_dates_can_be_attributes() {
        let page = r#"<ul><li><a class="n" href="a.html"><time datetime="2026-02-06T10:00:00+03:00">10:00</time> One</a></li></ul>"#;
        let mut text = rules("a.n", "a.n", "a.n");
        text.date = Some("time".into());
        text.date_attribute = Some("datetime".into());
        let doc = scrape(
            page.as_bytes(),
            None,
            &page_url(),
            &Rules::new(text).unwrap(),
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(doc.items[0].title.as_deref(), Some("10:00 One"));
        assert_eq!(
            doc.items[0].link.as_deref(),
            Some("https://vesti.example/section/a.html")
        );
        assert_eq!(
            doc.items[0].published.unwrap().to_rfc3339(),
            "2026-02-06T07:00:00+00:00"
        );
    }

    #[test]
    fn without_a_date_rule_items_are_undated_for_the_store_to_place() {
        let rules = Rules::new(rules(".item", "a", "a")).unwrap();
        let doc = scrape(PAGE.as_bytes(), None, &page_url(), &rules, Tz::UTC).unwrap();
        assert_eq!(doc.items.len(), 2);
        // The store gives an undated item the time it was first seen.
        assert!(
            doc.items
                .iter()
                .all(|i| i.published.is_none() && i.updated.is_none())
        );
    }

    #[test]
    fn bad_css_is_a_rule_error_naming_the_field() {
        let err = Rules::new(rules("div..x", "a", "a")).unwrap_err();
        assert_eq!(err.field, "item");
        let mut text = rules("div", "a", "a");
        text.date = Some("[".into());
        assert_eq!(Rules::new(text).unwrap_err().field, "date");
    }

    #[test]
    fn dates_read_in_the_zone_with_or_without_time() {
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        let at = |text, format| read_date(text, Some(format), moscow).map(|d| d.to_rfc3339());
        assert_eq!(
            at("06.02.2026", "%d.%m.%Y").as_deref(),
            Some("2026-02-05T21:00:00+00:00")
        );
        assert_eq!(
            at("09:15 06.02.2026 — ТАСС", "%H:%M %d.%m.%Y").as_deref(),
            Some("2026-02-06T06:15:00+00:00")
        );
        assert_eq!(at("yesterday", "%H:%M %d.%m.%Y"), None);
    }
}
