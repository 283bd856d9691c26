//! Each source's remembered [`SourceState`] (validators, failures, next poll), in the
//! `sources` tree as MessagePack.

use super::{Store, StoreError};
use crate::item::{SourceId, SourceState};

impl Store {
    /// The remembered state of a source; the default when it was never polled.
    pub fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        match self.handles()?.sources.get(source.0.as_bytes())? {
            Some(bytes) => Ok(rmp_serde::from_slice(&bytes)?),
            None => Ok(SourceState::default()),
        }
    }

    /// Forgets a source's failures (`tributary reset`): its failure streak and last
    /// error, its backoff or Retry-After (the next-poll time) and a 410 Gone mark, so
    /// it is due at once. Validators, title and learned interval stay. Returns the
    /// state it had.
    pub fn reset_source(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        let before = self.source_state(source)?;
        let after = SourceState {
            consecutive_failures: 0,
            last_error: None,
            gone: None,
            next_poll: None,
            ..before.clone()
        };
        self.put_source_state(source, &after)?;
        Ok(before)
    }

    /// Saves a source's state after a poll that stored no items (304, error).
    pub fn put_source_state(
        &self,
        source: &SourceId,
        state: &SourceState,
    ) -> Result<(), StoreError> {
        let state = rmp_serde::to_vec_named(state)?;
        self.write(|h| {
            h.sources.insert(source.0.as_bytes(), state)?;
            Ok(())
        })
    }
}
