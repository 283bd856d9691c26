//! Stores a fetched body: skips it when it did not change, reads it (off the async
//! workers), keeps the items the source's rules keep, and writes them to the store
//! together with the state they leave the source in.

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};
use url::Url;

use super::poll::{PollError, Taken};
use super::shared::Shared;
use super::{decide, document, plan};
use crate::config::{SourceConfig, SourceKind};
use crate::fetch::{Fetched, Response, Validators};
use crate::ingest::normalize::Document;
use crate::item::{Item, Origin, SourceState};
use crate::ops::metrics::PollOutcome;
use crate::store::{StoreError, UpsertReport};
use crate::websub::discover::discover;
use crate::websub::{Advert, Hubs};

impl Shared {
    /// Parses a fetched body and stores its items together with the new validators.
    /// Returns the freshness the server granted, and whether the body was new.
    pub(super) async fn ingest(
        &self,
        source: &SourceConfig,
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
            state.etag = validators.etag;
            state.last_modified = validators.last_modified;
            decide::succeeded(state, now);
            return Ok((response.fresh_for, PollOutcome::not_modified));
        }
        let hubs = self.hubs_of(source, &body, &response);
        let document = read(source, body, content_type, response.base().clone()).await?;
        // The new validators are kept only once the items are stored: saved without
        // them, the next poll would be a 304 and the items lost for good.
        let next_state = self.state_after(state, &document, validators, body_hash, now);
        let origin = Origin {
            source: source.id.clone(),
            name: source.display_name(next_state.title.as_deref()),
            // The feed readers can subscribe to: for a web page, the one it led to.
            url: source.show(
                next_state
                    .effective_url
                    .as_deref()
                    .or(next_state.discovered_feed.as_deref())
                    .unwrap_or(source.url.as_str()),
            ),
            tags: source.tags.clone(),
        };
        if document.left_out > 0 {
            warn!(source = %source.shown_url(), left_out = document.left_out, kept = crate::ingest::normalize::MAX_ENTRIES, "the feed has more entries than are kept; only the newest are stored");
        }
        let (items, count) = kept_items(source, document.items, now);
        let (report, next_state, held) = self.write(origin, items, next_state, now).await?;
        let report = report.map_err(PollError::Store)?;
        *state = next_state;
        self.metrics.record_stored(report.added);
        if let Some(held) = held {
            self.metrics.set_source_items(&source.id, held);
        }
        log_report(source, &report, count, bytes);
        if let (Some(hubs), Some(websub)) = (hubs, &self.websub) {
            // Dropped when the subscriber is behind: the next new body says it again.
            let _ = websub.sender.try_send(Advert {
                source: source.id.clone(),
                hubs,
                fetched_from: response.final_url.clone(),
            });
        }
        Ok((response.fresh_for, PollOutcome::ok))
    }

    /// The hubs a new body names, when the source may subscribe to one.
    fn hubs_of(&self, source: &SourceConfig, body: &[u8], response: &Response) -> Option<Hubs> {
        (self.websub.is_some() && source.websub && matches!(source.kind, SourceKind::Feed))
            .then(|| discover(body, response.links.as_deref(), response.base()))
    }

    /// The state a read document leaves the source in once its items are stored: its
    /// title, validators, body hash, publishing hints and learned interval.
    fn state_after(
        &self,
        state: &SourceState,
        document: &Document,
        validators: Validators,
        body_hash: u64,
        now: DateTime<Utc>,
    ) -> SourceState {
        let mut next_state = state.clone();
        next_state.title = document.feed.title.clone();
        next_state.etag = validators.etag;
        next_state.last_modified = validators.last_modified;
        next_state.body_hash = Some(body_hash);
        next_state.feed_hint = document.poll_hints.interval;
        next_state.skip_hours = document.poll_hints.skip_hours.clone();
        next_state.skip_days = document.poll_hints.skip_days.clone();
        let dates: Vec<_> = document
            .items
            .iter()
            .filter_map(|i| i.claimed_date())
            .collect();
        next_state.learned_interval = Some(plan::learn_interval(&dates, now, self.bounds()));
        decide::succeeded(&mut next_state, now);
        next_state
    }

    /// Writes the items and the state on a blocking thread; recounts the source's
    /// items when some were added.
    async fn write(
        &self,
        origin: Origin,
        items: Vec<Item>,
        next_state: SourceState,
        now: DateTime<Utc>,
    ) -> Result<(Result<UpsertReport, StoreError>, SourceState, Option<u64>), PollError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let report = store.record_fetch(&origin, &items, &next_state, now);
            // Recounted only when items were added: a scan of this source's index.
            let held = match &report {
                Ok(report) if report.added > 0 => store.count_items(&origin.source).ok(),
                _ => None,
            };
            (report, next_state, held)
        })
        .await
        .map_err(|err| PollError::Parse(format!("store write crashed: {err}")))
    }
}

/// Reads the body as the source's kind says. Parsing is CPU work, kept off the async
/// workers; a panic in the parser comes back as a JoinError and costs this one poll.
async fn read(
    source: &SourceConfig,
    body: Vec<u8>,
    content_type: Option<String>,
    final_url: Url,
) -> Result<Document, PollError> {
    let zone = source.timezone;
    let kind = source.kind.clone();
    tokio::task::spawn_blocking(move || {
        document::read(&body, content_type.as_deref(), &final_url, &kind, zone).map_err(|err| {
            match err {
                document::ReadError::Parse(err) => PollError::Parse(err.to_string()),
                document::ReadError::Scrape(err) => PollError::Scrape(err.to_string()),
            }
        })
    })
    .await
    .map_err(|err| PollError::Parse(format!("parser crashed: {err}")))?
}

/// The items to store: dates in the far future dropped, then the source's
/// include/exclude rules applied. Also returns how many there were before the rules.
fn kept_items(
    source: &SourceConfig,
    mut items: Vec<Item>,
    now: DateTime<Utc>,
) -> (Vec<Item>, usize) {
    // An update "in 2099" is no date: the outputs would carry it as the entry's
    // `updated`, and readers that sort by it would pin the item at the top.
    let horizon = now + crate::store::FUTURE_SKEW;
    for item in &mut items {
        if item.updated.is_some_and(|updated| updated > horizon) {
            item.updated = None;
        }
    }
    let count = items.len();
    items.retain(|item| source.filter.keeps(item));
    if items.len() < count {
        debug!(source = %source.shown_url(), filtered = count - items.len(), "items left out by the source's include/exclude rules");
    }
    (items, count)
}

/// Says what a stored poll brought: new and updated items at info, the rest at debug.
fn log_report(source: &SourceConfig, report: &UpsertReport, count: usize, bytes: usize) {
    if report.reidentified > 0 {
        // Once per poll: the publisher changed how it names its items (http→https,
        // a new host, edited slugs); the stored items took the new ids.
        warn!(source = %source.shown_url(), items = report.reidentified, "the source changed its item ids; matched them to stored items by link or by id without scheme and host");
    }
    if report.duplicates + report.taken_over > 0 {
        debug!(source = %source.shown_url(), duplicates = report.duplicates, taken_over = report.taken_over, "stories also published by other sources");
    }
    if report.added + report.updated > 0 {
        info!(source = %source.shown_url(), items = count, added = report.added, updated = report.updated, bytes, "fetched");
    } else {
        debug!(source = %source.shown_url(), items = count, bytes, "fetched, nothing new");
    }
}
