//! Stores a fetched body: skips it when it did not change, reads it (off the async
//! workers), keeps the items the source's rules keep, and writes them to the store
//! together with the state they leave the source in.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use tracing::{debug, warn};
use url::Url;

use super::known::{Known, Reading, Remembered, read_feed, read_known};
use super::plan::Bounds;
use super::poll::{PollError, Taken};
use super::shared::Shared;
use super::{decide, document, plan};
use crate::config::{SourceConfig, SourceKind};
use crate::fetch::{Fetched, Response, Validators};
use crate::ingest::known::Layout;
use crate::ingest::normalize::Document;
use crate::item::{Item, Origin, SourceState};
use crate::ops::metrics::{Metrics, PollOutcome};
use crate::store::{Store, StoreError, UpsertReport};
use crate::websub::discover::discover;
use crate::websub::{Advert, Hubs};

impl Shared {
    /// Parses a fetched body and stores its items together with the new validators.
    /// Returns the freshness the server granted, and whether the body was new.
    pub(super) async fn ingest(
        &self,
        source: &Arc<SourceConfig>,
        state: &mut SourceState,
        fetched: Fetched,
        now: DateTime<Utc>,
    ) -> Taken {
        let Fetched {
            body,
            content_type,
            validators,
            response,
        } = fetched;
        let bytes = body.len();
        // A server without validators costs no parsing when nothing changed.
        let body_hash = xxhash_rust::xxh3::xxh3_64(&body);
        if state.body_hash == Some(body_hash) {
            debug!(source = %source.shown_url(), bytes, "body unchanged");
            crate::fetch::recycle(body);
            state.etag = validators.etag;
            state.last_modified = validators.last_modified;
            decide::succeeded(state, now);
            return Ok((response.fresh_for, PollOutcome::not_modified));
        }
        // Before the read: a store that forgets an identity meanwhile is seen next time.
        let forgotten = self.store.forgotten();
        let known = self.known.take(&source.id, state.body_hash, forgotten);
        let hubs = self.hubs_of(source, &body, &response);
        let step = Step {
            source: source.clone(),
            state: state.clone(),
            validators,
            body_hash,
            now,
            bounds: self.bounds(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
        };
        let base = response.base().clone();
        // One hop to a blocking thread and back for the read and the write together.
        let stored = tokio::task::spawn_blocking(move || step.run(body, content_type, base, known))
            .await
            .map_err(|err| {
                PollError::Parse(format!("reading or storing the body crashed: {err}"))
            })??;
        let Stored {
            report,
            next_state,
            held,
            context,
            remembered,
            count,
        } = stored;
        self.known
            .remember(&source.id, body_hash, forgotten, context, remembered);
        *state = next_state;
        self.metrics.record_stored(report.added);
        self.tally.stored(report.added, report.updated);
        if let Some(held) = held {
            self.metrics.set_source_items(&source.id, held);
        }
        log_report(source, &report, count, bytes);
        self.advertise(source, hubs, &response);
        Ok((response.fresh_for, PollOutcome::ok))
    }

    /// Tells the WebSub subscriber which hubs a new body of `source` names.
    fn advertise(&self, source: &SourceConfig, hubs: Option<Hubs>, response: &Response) {
        if let (Some(hubs), Some(websub)) = (hubs, &self.websub) {
            // Dropped when the subscriber is behind: the next new body says it again.
            let _ = websub.sender.try_send(Advert {
                source: source.id.clone(),
                hubs,
                fetched_from: response.final_url.clone(),
            });
        }
    }

    /// The hubs a new body names, when the source may subscribe to one.
    fn hubs_of(&self, source: &SourceConfig, body: &[u8], response: &Response) -> Option<Hubs> {
        (self.websub.is_some() && source.websub && matches!(source.kind, SourceKind::Feed))
            .then(|| discover(body, response.links.as_deref(), response.base()))
    }
}

/// What the blocking part of a poll that brought a new body needs besides the body:
/// the source, its state before the poll, what the fetch brought and where to store.
struct Step {
    source: Arc<SourceConfig>,
    state: SourceState,
    validators: Validators,
    body_hash: u64,
    now: DateTime<Utc>,
    bounds: Bounds,
    store: Store,
    metrics: Arc<Metrics>,
}

/// What the blocking part came to: the store's report (the poll's state is the
/// source's new state only once it is `Ok`), the source's item count when it was
/// recounted, and the entries to remember for the next poll (with the fingerprint
/// context they were taken in and where the document had them, and how many items
/// the document had).
struct Stored {
    report: UpsertReport,
    next_state: SourceState,
    held: Option<u64>,
    context: (u64, Option<Layout>),
    remembered: Vec<Fingerprinted>,
    count: usize,
}

impl Step {
    /// Reads the body and stores its items and the source's new state: CPU and disk
    /// work, run on a blocking thread (one hop there and back per new body). A panic
    /// comes back as a JoinError and costs this one poll.
    fn run(
        self,
        body: Vec<u8>,
        content_type: Option<String>,
        base: Url,
        known: Option<Known>,
    ) -> Result<Stored, PollError> {
        let source = &*self.source;
        let origin_url = origin_url(source, &self.state);
        let seed = read_seed(source, &origin_url, &base, content_type.as_deref());
        let reading = read(source, body, content_type, base, seed, known)?;
        let Reading {
            document,
            fingerprints,
            passed,
            context,
            layout,
        } = reading;
        // The new validators are kept only once the items are stored: saved without
        // them, the next poll would be a 304 and the items lost for good.
        let passed_dates: Vec<_> = passed.iter().filter_map(|(_, e)| e.date()).collect();
        let next_state = state_after(&self, &document, &passed_dates);
        let origin = Origin {
            source: source.id.clone(),
            name: source.display_name(next_state.title.as_deref()),
            url: origin_url,
            tags: source.tags.clone(),
        };
        if document.left_out > 0 {
            warn!(source = %source.shown_url(), left_out = document.left_out, kept = crate::ingest::normalize::MAX_ENTRIES, "the feed has more entries than are kept; only the newest are stored");
        }
        let passed_over = passed.len();
        let (items, count) = kept_items(source, document.items, fingerprints, self.now);
        let (items, entries): (Vec<Item>, Vec<_>) = items.into_iter().unzip();
        let (report, held, holds) = self.write(&origin, &items, &next_state);
        let report = report.map_err(PollError::Store)?;
        let mut remembered = passed;
        remembered.extend(
            entries
                .into_iter()
                .zip(holds)
                .filter_map(|(entry, held)| entry.filter(|_| held)),
        );
        if passed_over > 0 {
            debug!(source = %source.shown_url(), passed_over, "entries unchanged since the last poll, not read again");
        }
        Ok(Stored {
            report,
            next_state,
            held,
            context: (context, layout),
            remembered,
            count: count + passed_over,
        })
    }

    /// Writes the items and the state; adds the new items to the source's count, or
    /// recounts it (see [`recount`]). Also says of each item whether the source holds
    /// it: a story kept from another source is not the source's, and is read again on
    /// the next poll.
    fn write(
        &self,
        origin: &Origin,
        items: &[Item],
        next_state: &SourceState,
    ) -> (Result<UpsertReport, StoreError>, Option<u64>, Vec<bool>) {
        let store = &self.store;
        let report = store.record_fetch(origin, items, next_state, self.now);
        let held = match &report {
            Ok(report)
                if recount(report, || {
                    self.metrics
                        .add_source_items(&origin.source, report.added as u64)
                }) =>
            {
                store.count_items(&origin.source).ok()
            }
            _ => None,
        };
        let holds = match &report {
            Ok(report) if report.duplicates > 0 => store
                .holds(&origin.source, items.iter().map(|item| item.id.0.as_str()))
                .unwrap_or_else(|_| vec![false; items.len()]),
            _ => vec![true; items.len()],
        };
        (report, held, holds)
    }
}

/// The state a read document leaves the source in once its items are stored: its
/// title, validators, body hash, publishing hints and learned interval (from the
/// dates of its items and of the entries passed over).
fn state_after(step: &Step, document: &Document, passed_dates: &[DateTime<Utc>]) -> SourceState {
    let mut next_state = step.state.clone();
    next_state.title = document.feed.title.clone();
    next_state.etag = step.validators.etag.clone();
    next_state.last_modified = step.validators.last_modified.clone();
    next_state.body_hash = Some(step.body_hash);
    next_state.feed_hint = document.poll_hints.interval;
    next_state.skip_hours = document.poll_hints.skip_hours.clone();
    next_state.skip_days = document.poll_hints.skip_days.clone();
    let dates: Vec<_> = document
        .items
        .iter()
        .filter_map(|i| i.claimed_date())
        .chain(passed_dates.iter().copied())
        .collect();
    next_state.learned_interval = Some(plan::learn_interval(&dates, step.now, step.bounds));
    decide::succeeded(&mut next_state, step.now);
    next_state
}

/// Reads the body as the source's kind says, a feed without the entries `known`
/// holds (see `known`).
fn read(
    source: &SourceConfig,
    body: Vec<u8>,
    content_type: Option<String>,
    final_url: Url,
    seed: u64,
    known: Option<Known>,
) -> Result<Reading, PollError> {
    let zone = source.timezone;
    let kind = &source.kind;
    let read = |body: &[u8], content_type: Option<&str>| {
        document::read(body, content_type, &final_url, kind, zone).map_err(|err| match err {
            document::ReadError::Parse(err) => PollError::Parse(err.to_string()),
            document::ReadError::Scrape(err) => PollError::Scrape(err.to_string()),
        })
    };
    let reading = match kind {
        SourceKind::Feed => read_feed(&body, content_type.as_deref(), seed, known.as_ref(), read),
        // A page's items come from selectors, not from entries in its bytes.
        SourceKind::Html(_) => read_known(&body, seed, None, |body| {
            read(body, content_type.as_deref())
        }),
    };
    crate::fetch::recycle(body);
    reading
}

/// Whether a stored fetch needs the source's items counted again (a scan of its
/// index): not when nothing was added, nor when `add` could add the new items to the
/// source's count. A story taken over from another source is recounted here (the
/// other source's count waits for the next retention pass, as before).
fn recount(report: &UpsertReport, add: impl FnOnce() -> Option<u64>) -> bool {
    report.added > 0 && (report.taken_over > 0 || add().is_none())
}

/// The feed readers can subscribe to: for a web page, the one it led to.
fn origin_url(source: &SourceConfig, state: &SourceState) -> String {
    source.show(
        state
            .effective_url
            .as_deref()
            .or(state.discovered_feed.as_deref())
            .unwrap_or(source.url.as_str()),
    )
}

/// What, besides an entry's own bytes, its item is read and stored with: the origin
/// (name, shown URL, tags), the document's URL and type, the time zone of its dates.
fn read_seed(
    source: &SourceConfig,
    origin_url: &str,
    base: &Url,
    content_type: Option<&str>,
) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let zone = source.timezone.name();
    let name = source.name.as_deref().unwrap_or("\0");
    for part in [
        name,
        origin_url,
        base.as_str(),
        content_type.unwrap_or("\0"),
        zone,
    ]
    .into_iter()
    .chain(source.tags.iter().map(String::as_str))
    {
        hasher.update(part.as_bytes());
        hasher.update(&[0xff]);
    }
    hasher.digest()
}

/// An entry's fingerprint and what to remember of it.
type Fingerprinted = (u64, Remembered);

/// The items to store: dates in the far future dropped, then the source's
/// include/exclude rules applied. Also returns how many there were before the rules.
/// Each item comes with its entry's fingerprint, and goes with what to remember of it
/// (`None` for an item whose date the clock decides again on the next poll).
fn kept_items(
    source: &SourceConfig,
    items: Vec<Item>,
    fingerprints: Vec<Option<u64>>,
    now: DateTime<Utc>,
) -> (Vec<(Item, Option<Fingerprinted>)>, usize) {
    // An update "in 2099" is no date: the outputs would carry it as the entry's
    // `updated`, and readers that sort by it would pin the item at the top.
    let horizon = now + crate::store::FUTURE_SKEW;
    let mut items: Vec<_> = items
        .into_iter()
        .zip(fingerprints)
        .map(|(mut item, fingerprint)| {
            let remembered = fingerprint.map(|f| (f, Remembered::of(&item)));
            if item.updated.is_some_and(|updated| updated > horizon) {
                item.updated = None;
                return (item, None);
            }
            (item, remembered)
        })
        .collect();
    let count = items.len();
    items.retain(|(item, _)| source.filter.keeps(item));
    if items.len() < count {
        debug!(source = %source.shown_url(), filtered = count - items.len(), "items left out by the source's include/exclude rules");
    }
    (items, count)
}

/// Says what a stored poll brought (a changed id at warn, the rest at debug).
fn log_report(source: &SourceConfig, report: &UpsertReport, count: usize, bytes: usize) {
    if report.reidentified > 0 {
        // Once per poll: the publisher changed how it names its items (http→https,
        // a new host, edited slugs); the stored items took the new ids.
        warn!(source = %source.shown_url(), items = report.reidentified, "the source changed its item ids; matched them to stored items by link or by id without scheme and host");
    }
    if report.duplicates + report.taken_over > 0 {
        debug!(source = %source.shown_url(), duplicates = report.duplicates, taken_over = report.taken_over, "stories also published by other sources");
    }
    // At debug, as every poll's line: the tally says at info what a period's polls
    // brought.
    debug!(source = %source.shown_url(), items = count, added = report.added, updated = report.updated, bytes, "fetched");
}
