//! A document a hub pushed (WebSub), read and stored exactly as a polled body is
//! (`record`): the same charset handling, normalization, filters, dedup and store
//! write, within the same global limit of fetches in flight. The source's
//! validators and next poll stay as they were; its body hash is updated, so a poll
//! that fetches the same document costs no parsing.

use chrono::Utc;
use std::sync::Arc;
use tracing::{debug, warn};

use super::shared::Shared;
use crate::config::SourceConfig;
use crate::fetch::{Fetched, Response, Validators};
use crate::websub::Pushed;

impl Shared {
    /// Reads and stores a pushed document of `source`.
    pub(super) async fn ingest_pushed(&self, source: &Arc<SourceConfig>, pushed: Pushed) {
        let _permit = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the global semaphore is never closed");
        let mut state = self.state(source);
        let fetched = Fetched {
            body: pushed.body,
            content_type: pushed.content_type,
            // Kept: the push is not an answer to the source's conditional GET.
            validators: Validators {
                etag: state.etag.clone(),
                last_modified: state.last_modified.clone(),
            },
            response: Response {
                final_url: pushed.topic,
                moved_permanently: None,
                fresh_for: None,
                content_location: None,
                links: None,
            },
        };
        match self.ingest(source, &mut state, fetched, Utc::now()).await {
            Ok(_) => debug!(source = %source.shown_url(), "pushed document stored"),
            Err(err) => {
                warn!(source = %source.shown_url(), error = %source.scrub(&err.to_string()), "a pushed document was not stored")
            }
        }
    }
}
